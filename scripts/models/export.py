"""Exports a trained (or, with --random, a random-weight) model to the transformers.js folder layout:
config.json, generation_config.json, tokenizer files, onnx/model.onnx (+ a parity fixture for parity.ts).

The graph follows optimum's decoder-with-past signature so transformers.js and specd's engine load it like any
Hugging Face Llama export: input_ids, attention_mask, position_ids, past_key_values.{i}.key|value → logits,
present.{i}.key|value, batch axis named batch_size. Legacy exporter (dynamo=False) so torch 1.13 and 2.x agree."""
import argparse, inspect, json, os, shutil
import numpy as np
import onnx
from logits_to_keep import add_logits_to_keep
import fused_graph
import torch
from onnx import helper, numpy_helper
from common import (BOS_ID, DRAFT, EOS_ID, IM_END_ID, MAX_POSITIONS, PAD_ID, RMS_EPS, ROPE_THETA, SEED, TARGET,
                    VOCAB_SIZE, WORK, model_dir)
from model import Llama


class Exportable(torch.nn.Module):
    """Flattens the per-layer past into positional inputs/outputs, as the ONNX signature needs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, *flat_past):
        past = [(flat_past[2 * i], flat_past[2 * i + 1]) for i in range(len(flat_past) // 2)]
        logits, presents = self.model(input_ids, attention_mask, position_ids, past)
        return (logits, *[t for kv in presents for t in kv])


def hf_config(cfg):
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB_SIZE,
        "hidden_size": cfg["hidden_size"], "intermediate_size": cfg["intermediate_size"],
        "num_hidden_layers": cfg["num_hidden_layers"], "num_attention_heads": cfg["num_attention_heads"],
        "num_key_value_heads": cfg["num_key_value_heads"], "head_dim": cfg["head_dim"], "hidden_act": "silu",
        "max_position_embeddings": MAX_POSITIONS, "rms_norm_eps": RMS_EPS, "rope_theta": ROPE_THETA,
        "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False, "torch_dtype": "float32",
        "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": PAD_ID, "use_cache": True,
    }


def decoder_io(n_layers, total="past_sequence_length + sequence_length"):
    """optimum's decoder-with-past names and dynamic axes: past/present names per layer and the axes of every I/O.
    `total` names the past-plus-new axis (optimum's own exports call it "past_sequence_length + 1")."""
    past_names = [f"past_key_values.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]
    present_names = [f"present.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: total},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    axes.update({n: {0: "batch_size", 2: "past_sequence_length"} for n in past_names})
    axes.update({n: {0: "batch_size", 2: total} for n in present_names})
    return past_names, present_names, axes


def export(model, cfg, out):
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    n_layers, kvh, hd = cfg["num_hidden_layers"], cfg["num_key_value_heads"], cfg["head_dim"]
    B, P, T = 1, 3, 2
    ids = torch.randint(5, VOCAB_SIZE, (B, T))
    mask = torch.ones(B, P + T, dtype=torch.long)
    pos = torch.arange(P, P + T).unsqueeze(0)
    past = [torch.randn(B, kvh, P, hd) for _ in range(2 * n_layers)]
    past_names, present_names, axes = decoder_io(n_layers)
    kwargs = dict(input_names=["input_ids", "attention_mask", "position_ids", *past_names],
                  output_names=["logits", *present_names], dynamic_axes=axes, opset_version=17,
                  do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # torch >= 2.5 defaults to the dynamo exporter, which renames the axes
    path = os.path.join(out, "onnx", "model.onnx")
    with torch.no_grad():
        torch.onnx.export(Exportable(model).eval(), (ids, mask, pos, *past), path, **kwargs)
    tie_output_embedding(path)
    m = onnx.load(path)
    add_logits_to_keep(m)  # prefill computes the LM head on the rows it keeps only
    onnx.save(m, path)
    # The graph specd's engine runs (fused_graph.py), sharing model.onnx's weights; model.onnx stays for
    # transformers.js and every other tool.
    fused_graph.write(model, cfg, out)


def tie_output_embedding(path):
    """The exporter folds the LM head's transpose of the shared embedding into a second initializer, storing the
    largest matrix twice. Point the head back at the embedding through Gemm(transB=1) and drop the copy."""
    m = onnx.load(path)
    inits = {i.name: i for i in m.graph.initializer}
    embed = inits["model.embed_tokens.weight"]
    rows, cols = embed.dims
    for node in m.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits and list(inits[node.input[1]].dims) == [cols, rows]:
            copy = inits[node.input[1]]
            if not np.array_equal(numpy_helper.to_array(copy), numpy_helper.to_array(embed).T):
                continue
            gemm = helper.make_node("Gemm", [node.input[0], embed.name], list(node.output), name=node.name + "_tied",
                                    transB=1)
            node.CopyFrom(gemm)
            m.graph.initializer.remove(copy)
            onnx.checker.check_model(m)
            onnx.save(m, path)
            return
    raise RuntimeError("no folded copy of the tied embedding found: did the LM head change?")


def write_folder(model, cfg, out, tokenizer_dir):
    export(model, cfg, out)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(hf_config(cfg), f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": BOS_ID, "eos_token_id": [EOS_ID, IM_END_ID], "pad_token_id": PAD_ID,
                   "do_sample": False, "max_length": MAX_POSITIONS}, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(out, name))


@torch.no_grad()
def parity_fixture(model, cfg, path):
    """torch logits for a prefill (no past) and a 3-token step on top of its cache; parity.ts replays both in ORT."""
    g = torch.Generator().manual_seed(SEED)
    ids = torch.randint(5, VOCAB_SIZE, (1, 12), generator=g)
    logits_full, presents = model(ids[:, :9])
    step_ids = ids[:, 9:]
    mask = torch.ones(1, 12, dtype=torch.long)
    logits_step, _ = model(step_ids, mask, torch.arange(9, 12).unsqueeze(0), presents)
    with open(path, "w") as f:
        json.dump({"prefill_ids": ids[0, :9].tolist(), "step_ids": step_ids[0].tolist(),
                   "prefill_logits": logits_full[0].flatten().tolist(), "step_logits": logits_step[0].flatten().tolist(),
                   "vocab": VOCAB_SIZE, "layers": cfg["num_hidden_layers"], "kv_heads": cfg["num_key_value_heads"],
                   "head_dim": cfg["head_dim"]}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["target", "draft"], required=True)
    ap.add_argument("--weights", help="state_dict .pt; omitted with --random")
    ap.add_argument("--random", action="store_true", help="random weights of the same shape (engine development)")
    ap.add_argument("--out", help="model folder (default: the bundled folder for --kind)")
    ap.add_argument("--tokenizer", default=os.path.join(WORK, "tokenizer"))
    args = ap.parse_args()
    cfg = TARGET if args.kind == "target" else DRAFT
    torch.manual_seed(SEED + (0 if args.kind == "target" else 1))
    model = Llama(cfg, VOCAB_SIZE).eval()
    if not args.random:
        model.load_state_dict(torch.load(args.weights))
    out = args.out or model_dir(args.kind)
    write_folder(model, cfg, out, args.tokenizer)
    fixture = os.path.join(WORK, f"parity-{args.kind}.json")
    os.makedirs(WORK, exist_ok=True)
    parity_fixture(model, cfg, fixture)
    size = os.path.getsize(os.path.join(out, "onnx", "model.onnx"))
    print(json.dumps({"out": out, "params": model.num_params(), "onnx_bytes": size,
                      "bytes_per_param": round(size / model.num_params(), 3), "parity_fixture": fixture}))


if __name__ == "__main__":
    main()
