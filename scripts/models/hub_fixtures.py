"""Tiny random-weight miniatures of the decoder exports people download from the Hugging Face Hub, for tests.

Each family reproduces the *interface* of its real exports (input/output names, dtypes and shapes, merged or plain
decoder, the file names transformers.js asks for per dtype, config.json / generation_config.json as those repos ship
them), not their size: a target (2 layers, hidden 16) and a smaller sibling (1 layer, hidden 8) per family, sharing
the bundled tokenizer so each family can run speculative.

  llama   SmolLM2 / Llama: RMSNorm, RoPE, SwiGLU, grouped-query attention (the draft: multi-query), tied embeddings;
          onnx/model.onnx, model_fp16.onnx (float16 KV and logits), model_quantized.onnx (int8 weights)
  qwen2   Qwen2.5: as llama with q/k/v biases and an untied LM head; <|im_end|> only in generation_config.json
  gpt2    GPT-2: LayerNorm, learned positions, GELU, multi-head attention, tied embeddings; a merged decoder
          (`use_cache_branch`) with no position_ids input (positions follow the past's length)
  refuse-no-past, refuse-embeds   two layouts specd cannot run (no KV cache; embeddings instead of input_ids)

Weights are random with a wide spread (logits ~N(0, 16)) so greedy choices are far from ties and token-identical
comparisons across runtimes mean something. Deterministic (seeded); run from the repo root:

    /usr/bin/python3 scripts/models/hub_fixtures.py test/fixtures/hub
"""
import inspect, json, math, os, shutil, sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from common import BOS_ID, EOS_ID, IM_END_ID, PAD_ID, ROOT, VOCAB_SIZE  # noqa: E402
from export import Exportable, decoder_io  # noqa: E402  (the bundled pair's export signature)

CONTEXT = 512
TOKENIZER_DIR = os.path.join(ROOT, "target-models", "specd-story-16m")
SIZES = {
    "target": dict(hidden=16, layers=2, heads=4, kv_heads=2, ffn=32),
    "draft": dict(hidden=8, layers=1, heads=2, kv_heads=1, ffn=16),
}


class Tiny(nn.Module):
    """One decoder that can be each family: the switches are the families' differences."""

    def __init__(self, size, family):
        super().__init__()
        self.family, d, self.h = family, size["hidden"], size["heads"]
        self.kvh = self.h if family == "gpt2" else size["kv_heads"]
        self.hd = d // self.h
        self.embed = nn.Embedding(VOCAB_SIZE, d)
        self.pos = nn.Embedding(CONTEXT, d) if family == "gpt2" else None
        bias = family in ("qwen2", "gpt2")
        self.layers = nn.ModuleList()
        for _ in range(size["layers"]):
            layer = nn.Module()
            layer.q = nn.Linear(d, self.h * self.hd, bias=bias)
            layer.k = nn.Linear(d, self.kvh * self.hd, bias=bias)
            layer.v = nn.Linear(d, self.kvh * self.hd, bias=bias)
            layer.o = nn.Linear(self.h * self.hd, d, bias=family == "gpt2")
            if family == "gpt2":
                layer.ln1, layer.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
                layer.fc, layer.proj = nn.Linear(d, size["ffn"]), nn.Linear(size["ffn"], d)
            else:
                layer.ln1, layer.ln2 = nn.Parameter(torch.ones(d)), nn.Parameter(torch.ones(d))
                layer.gate, layer.up = nn.Linear(d, size["ffn"], bias=False), nn.Linear(d, size["ffn"], bias=False)
                layer.down = nn.Linear(size["ffn"], d, bias=False)
            self.layers.append(layer)
        self.norm = nn.LayerNorm(d) if family == "gpt2" else nn.Parameter(torch.ones(d))
        self.head = nn.Linear(d, VOCAB_SIZE, bias=False) if family == "qwen2" else None
        nn.init.normal_(self.embed.weight, std=1.0)
        if self.head is not None:
            nn.init.normal_(self.head.weight, std=1.0)
        self.register_buffer("inv_freq", 1.0 / (10000.0 ** (torch.arange(0, self.hd, 2).float() / self.hd)), persistent=False)

    def _norm(self, w, x):
        if isinstance(w, nn.LayerNorm):
            return w(x)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w

    def forward(self, input_ids, attention_mask, position_ids, past):
        B, T = input_ids.shape
        P = past[0][0].shape[2]
        x = self.embed(input_ids)
        if self.pos is not None:  # GPT-2: positions follow the past's length, as HF's GPT-2 does without position_ids
            x = x + self.pos(torch.arange(T) + P).unsqueeze(0)
        else:
            freqs = position_ids.unsqueeze(-1).float() * self.inv_freq
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)
        allowed = (torch.arange(P + T).unsqueeze(0) <= (torch.arange(T) + P).unsqueeze(1)).unsqueeze(0)
        allowed = allowed & attention_mask.bool().unsqueeze(1)
        bias = (~allowed).float().unsqueeze(1) * -1e9
        presents = []
        for i, layer in enumerate(self.layers):
            hdn = self._norm(layer.ln1, x)
            q = layer.q(hdn).view(B, T, self.h, self.hd).transpose(1, 2)
            k = layer.k(hdn).view(B, T, self.kvh, self.hd).transpose(1, 2)
            v = layer.v(hdn).view(B, T, self.kvh, self.hd).transpose(1, 2)
            if self.pos is None:
                rot = lambda t: torch.cat((-t[..., self.hd // 2:], t[..., : self.hd // 2]), dim=-1)  # noqa: E731
                q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
            k = torch.cat([past[i][0], k], dim=2)
            v = torch.cat([past[i][1], v], dim=2)
            presents.append((k, v))
            rep = self.h // self.kvh
            # Each KV head serves `rep` query heads (expand + reshape: repeat_interleave exports with a fixed batch).
            grow = lambda t: t.unsqueeze(2).expand(-1, -1, rep, -1, -1).reshape(B, self.h, t.shape[2], self.hd)  # noqa: E731
            kk, vv = (grow(k), grow(v)) if rep > 1 else (k, v)
            att = torch.softmax(q @ kk.transpose(2, 3) / math.sqrt(self.hd) + bias, dim=-1)
            x = x + layer.o((att @ vv).transpose(1, 2).reshape(B, T, -1))
            hdn = self._norm(layer.ln2, x)
            if self.family == "gpt2":
                x = x + layer.proj(F.gelu(layer.fc(hdn), approximate="tanh"))
            else:
                x = x + layer.down(F.silu(layer.gate(hdn)) * layer.up(hdn))
        x = self._norm(self.norm, x)
        logits = self.head(x) if self.head is not None else x @ self.embed.weight.t()
        return logits, presents


def export(model, size, path, family):
    layers = size["layers"]
    past = [torch.randn(1, model.kvh, 3, model.hd) for _ in range(2 * layers)]
    past_names, present_names, axes = decoder_io(layers, total="past_sequence_length + 1")  # optimum's axis name
    inputs = ["input_ids", "attention_mask", "position_ids", *past_names]
    # No constant folding: folding would store the tied embedding a second time, transposed for the LM head.
    kwargs = dict(input_names=inputs, output_names=["logits", *present_names], dynamic_axes=axes, opset_version=17,
                  do_constant_folding=False)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    args = (torch.randint(5, VOCAB_SIZE, (1, 2)), torch.ones(1, 5, dtype=torch.long), torch.arange(3, 5).unsqueeze(0), *past)
    with torch.no_grad():
        torch.onnx.export(Exportable(model).eval(), args, path, **kwargs)
    m = onnx.load(path)
    if family == "gpt2":
        make_merged(m)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def make_merged(m):
    """GPT-2's exports are optimum's merged decoder: a `use_cache_branch` input picks the with-past or the first-pass
    branch of an If. Here both branches return the same logits (the graph accepts an empty past), which keeps the
    interface: a bool [1] input the runtime must feed. GPT-2 exports of that kind take no position_ids either."""
    g = m.graph
    for inp in list(g.input):
        if inp.name == "position_ids":
            g.input.remove(inp)  # the exporter dropped its uses already: GPT-2 derives positions from the past
    producer = next(n for n in g.node if "logits" in n.output)
    producer.output[list(producer.output).index("logits")] = "logits_computed"
    branch = lambda name: helper.make_graph(  # noqa: E731
        [helper.make_node("Identity", ["logits_computed"], [f"logits_{name}"])], name, [],
        [helper.make_tensor_value_info(f"logits_{name}", TensorProto.FLOAT, None)])
    g.node.append(helper.make_node("If", ["use_cache_branch"], ["logits"], name="optimum::if",
                                   then_branch=branch("with_past"), else_branch=branch("first_pass")))
    g.input.append(helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1]))


def to_fp16(src, dst):
    """model_fp16.onnx as transformers.js users get it: float16 weights, KV and logits. The arithmetic stays float32
    (Casts after each float16 input and weight), since ONNX Runtime's CPU provider lacks float16 kernels for most
    ops; the interface, which is what this reproduces, is the real one's."""
    m = onnx.load(src)
    g = m.graph
    rename = {}
    for init in list(g.initializer):
        if init.data_type == TensorProto.FLOAT and np.prod(init.dims) > 1:
            arr = numpy_helper.to_array(init).astype(np.float16)
            g.initializer.remove(init)
            g.initializer.append(numpy_helper.from_array(arr, init.name + "_fp16"))
            g.node.insert(0, helper.make_node("Cast", [init.name + "_fp16"], [init.name], to=TensorProto.FLOAT))
    for inp in g.input:
        if inp.name.startswith("past_key_values."):
            rename[inp.name] = inp.name + "_f32"
            inp.type.tensor_type.elem_type = TensorProto.FLOAT16
    for node in g.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    for old, new in rename.items():
        g.node.insert(0, helper.make_node("Cast", [old], [new], to=TensorProto.FLOAT))
    for out in g.output:
        for node in g.node:  # present.* also feed the attention that follows them
            for i, name in enumerate(node.input):
                if name == out.name:
                    node.input[i] = out.name + "_f32"
        producer = next(n for n in g.node if out.name in n.output)
        producer.output[list(producer.output).index(out.name)] = out.name + "_f32"
        g.node.append(helper.make_node("Cast", [out.name + "_f32"], [out.name], to=TensorProto.FLOAT16))
        out.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.checker.check_model(m)
    onnx.save(m, dst)


def to_int8(src, dst):
    """model_quantized.onnx: int8 weights (per-tensor, symmetric) dequantized in the graph; float32 in and out, as the
    Hub's dynamically quantized exports are."""
    m = onnx.load(src)
    g = m.graph
    for init in list(g.initializer):
        if init.data_type == TensorProto.FLOAT and len(init.dims) == 2 and np.prod(init.dims) >= 64:
            arr = numpy_helper.to_array(init)
            scale = np.float32(max(np.abs(arr).max(), 1e-8) / 127)
            q = np.clip(np.round(arr / scale), -127, 127).astype(np.int8)
            g.initializer.remove(init)
            g.initializer.extend([numpy_helper.from_array(q, init.name + "_q"),
                                  numpy_helper.from_array(np.array(scale, np.float32), init.name + "_scale"),
                                  numpy_helper.from_array(np.array(0, np.int8), init.name + "_zero")])
            g.node.insert(0, helper.make_node("DequantizeLinear", [init.name + "_q", init.name + "_scale", init.name + "_zero"],
                                              [init.name]))
    onnx.checker.check_model(m)
    onnx.save(m, dst)


def configs(family, size):
    base = {"vocab_size": VOCAB_SIZE, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "torch_dtype": "float32",
            "transformers_version": "4.46.0", "use_cache": True}
    if family == "gpt2":
        config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": size["hidden"],
                  "n_head": size["heads"], "n_layer": size["layers"], "n_positions": CONTEXT, "n_ctx": CONTEXT,
                  "n_inner": size["ffn"], "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, **base}
        generation = {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID}
    else:
        config = {"architectures": ["Qwen2ForCausalLM" if family == "qwen2" else "LlamaForCausalLM"],
                  "model_type": family, "hidden_size": size["hidden"], "intermediate_size": size["ffn"],
                  "num_hidden_layers": size["layers"], "num_attention_heads": size["heads"],
                  "num_key_value_heads": size["kv_heads"], "max_position_embeddings": CONTEXT, "rope_theta": 10000.0,
                  "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": family != "qwen2", **base}
        # Qwen2.5 lists <|im_end|> as an end only in generation_config.json; SmolLM2's Instruct repos in both.
        generation = {"bos_token_id": BOS_ID, "eos_token_id": [IM_END_ID, EOS_ID] if family == "qwen2" else EOS_ID,
                      "pad_token_id": PAD_ID}
        if family == "llama":
            config["eos_token_id"] = generation["eos_token_id"] = [EOS_ID, IM_END_ID]
    return config, generation


def write_repo(out, family, kind, seed):
    size = SIZES[kind]
    torch.manual_seed(seed)
    model = Tiny(size, family).eval()
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    path = os.path.join(out, "onnx", "model.onnx")
    export(model, size, path, family)
    if family == "llama":
        to_fp16(path, os.path.join(out, "onnx", "model_fp16.onnx"))
        to_int8(path, os.path.join(out, "onnx", "model_quantized.onnx"))
    config, generation = configs(family, size)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump(generation, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(TOKENIZER_DIR, name), os.path.join(out, name))


def write_refusal(out, kind):
    """A graph specd must refuse at start: without a KV cache, or taking inputs_embeds instead of input_ids."""
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    # One hidden unit: the graph only has to load (and be refused), so it is as small as its interface allows.
    emb = numpy_helper.from_array(np.random.default_rng(0).standard_normal((VOCAB_SIZE, 1)).astype(np.float32), "embed")
    if kind == "no-past":
        nodes = [helper.make_node("Gather", ["embed", "input_ids"], ["h"]),
                 helper.make_node("MatMul", ["h", "embed_t"], ["logits"])]
        inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
                  helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "sequence_length"])]
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", VOCAB_SIZE])]
        inits = [emb, numpy_helper.from_array(numpy_helper.to_array(emb).T.copy(), "embed_t")]
    else:
        nodes = [helper.make_node("MatMul", ["inputs_embeds", "embed_t"], ["logits"]),
                 helper.make_node("Identity", ["past_key_values.0.key"], ["present.0.key"]),
                 helper.make_node("Identity", ["past_key_values.0.value"], ["present.0.value"])]
        kv = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch_size", 1, "past_sequence_length", 1])  # noqa: E731
        inputs = [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, ["batch_size", "sequence_length", 1]),
                  helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
                  kv("past_key_values.0.key"), kv("past_key_values.0.value")]
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", VOCAB_SIZE]),
                   kv("present.0.key"), kv("present.0.value")]
        inits = [numpy_helper.from_array(numpy_helper.to_array(emb).T.copy(), "embed_t")]
    m = helper.make_model(helper.make_graph(nodes, f"refuse_{kind}", inputs, outputs, inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "onnx", "model.onnx"))
    config, _ = configs("llama", {**SIZES["draft"], "hidden": 1, "heads": 1, "kv_heads": 1})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(TOKENIZER_DIR, name), os.path.join(out, name))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "test", "fixtures", "hub")
    for i, family in enumerate(("llama", "qwen2", "gpt2")):
        for j, kind in enumerate(("target", "draft")):
            write_repo(os.path.join(root, f"{family}-{kind}"), family, kind, seed=100 + 10 * i + j)
    write_refusal(os.path.join(root, "refuse-no-past"), "no-past")
    write_refusal(os.path.join(root, "refuse-embeds"), "embeds")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
    print(json.dumps({"out": root, "bytes": total}))


if __name__ == "__main__":
    main()
