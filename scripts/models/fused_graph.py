"""Writes the bundled models' pooled graph (onnx/model_pooled.onnx) by hand, from the torch model's weights.

Why by hand: `torch.onnx.export` writes a graph in which most nodes compute shapes (Shape, Gather, Unsqueeze,
Concat, Reshape …); profiled in ONNX Runtime, those small nodes cost more than the MatMuls on a 1-token pass of
the bundled target. This graph computes every shape it needs once, packs the projections (one MatMul for q, k and v,
one for gate and up), and uses the CPU provider's contrib operators: SimplifiedLayerNormalization and
SkipSimplifiedLayerNormalization (RMSNorm with the residual add), RotaryEmbedding, FusedMatMul (a MatMul with a
transposed operand and a scale, so K is never transposed in memory).

Why not GroupQueryAttention: ONNX Runtime's CPU kernel refuses a batch of more than one row when a pass has more
than one new token and a past ("batch_size must be 1 when sequence_length > 1 and past context is given"), and a
batched verify pass is exactly that.

The layout: past_key_values.{i}.key|value are slot-major, [P, B, kvH, hd]; present.{i}.key|value are only this
pass's new slots, [T, B, kvH, hd]. The engine keeps each cache in one preallocated slot-major buffer, feeds its first
P slots without a copy, and writes the T new slots after them: no pass copies the whole cache on the JavaScript side
or returns it through the binding. Inside the graph each layer concatenates past and new slots once (slot-major, so
one contiguous copy) and ONNX Runtime folds the transposition to [B, kvH, S, hd] into FusedMatMul (transBatchB).
Scores against the past and the new slots computed separately, with no concatenation, were slower at every shape
measured (more nodes; a long prefill chunk slicing its large probability matrix).

Semantics are model.Llama's exactly: causal by slot index, attention_mask per row and slot, positions from
position_ids, num_logits_to_keep as in logits_to_keep.py; parity with torch is checked by export.py."""
import hashlib
import json
import math
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from common import MAX_POSITIONS, RMS_EPS, VOCAB_SIZE

MS = "com.microsoft"


class _Graph:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, n_out=1, domain=None, name=None, **attrs):
        self.n += 1
        base = name or f"{op_type.lower()}_{self.n}"
        outs = [base] if n_out == 1 else [f"{base}:{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=base, domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs


def _w(t):
    return t.detach().float().numpy()


def share_weights(graph: onnx.ModelProto, standard_path: str, min_bytes: int = 4096) -> int:
    """Points the graph's large initializers at the same bytes inside the standard export (ONNX external data:
    location, offset, length), so the pooled graph adds its structure, not a second copy of the weights, to the
    model folder. Each weight is found by its bytes (the standard export stores every matrix exactly as this graph
    uses it); one that is not found stays embedded. Returns the bytes shared."""
    with open(standard_path, "rb") as f:
        blob = f.read()
    location, shared = os.path.basename(standard_path), 0
    for t in graph.graph.initializer:
        raw = t.raw_data
        if len(raw) < min_bytes:
            continue
        at = blob.find(raw)
        if at < 0:
            continue
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", str(at)), ("length", str(len(raw)))):
            e = t.external_data.add()
            e.key, e.value = k, v
        shared += len(raw)
    return shared


def build(model, cfg, int8_head: bool = False) -> onnx.ModelProto:
    """int8_head: the tied LM head as an int8 copy of the embedding (MatMulNBits, as quantize.py --head-only writes
    it); for the draft, whose head is most of its weights and streams back from memory after every target pass."""
    d, h, kvh, hd = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    m, n_layers, rep = cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"] // cfg["num_key_value_heads"]
    sd = {k: _w(v) for k, v in model.state_dict().items()}
    g = _Graph()
    i64 = lambda *v: np.array(v, dtype=np.int64)

    # Shapes, computed once for every layer: P (past slots), T (new tokens), S = P + T.
    P = g.op("Gather", [g.op("Shape", ["past_key_values.0.key"]), g.const("c_0", np.array(0, np.int64))], name="P", axis=0)
    T = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("c_1", np.array(1, np.int64))], name="T", axis=0)
    S = g.op("Add", [P, T], name="S")
    g.const("ax0", i64(0))

    # Bias [B, 1, rep*T, S]: 0 where row b's new token t may see slot s (s <= P + t and the slot is live), else -1e9
    # (finite, so a fully masked pad row stays NaN-free), tiled over the query heads that share a KV head.
    slot = g.op("Range", [g.const("z", np.array(0, np.int64)), S, g.const("one", np.array(1, np.int64))], name="slot")
    qpos = g.op("Unsqueeze", [g.op("Range", [P, S, "one"], name="qpos"), g.const("ax1", i64(1))])  # [T, 1]
    causal = g.op("LessOrEqual", [slot, qpos])  # [T, S]
    live = g.op("Cast", [g.op("Unsqueeze", ["attention_mask", g.const("ax1_", i64(1))])], to=TensorProto.BOOL)  # [B,1,S]
    allowed = g.op("And", [causal, live])  # [B, T, S]
    bias = g.op("Where", [allowed, g.const("zero_f", np.array(0, np.float32)), g.const("neg", np.array(-1e9, np.float32))])
    bias = g.op("Unsqueeze", [bias, g.const("ax1__", i64(1))])  # [B, 1, T, S]
    bias = g.op("Tile", [bias, g.const("tile", i64(1, 1, rep, 1))], name="bias") if rep > 1 else bias

    # Rotary tables as the torch model computes them (float32 position x inv_freq), for every position.
    pos = torch.arange(MAX_POSITIONS).float().unsqueeze(-1) * model.inv_freq
    cos_cache = g.const("cos_cache", pos.cos().numpy().astype(np.float32))
    sin_cache = g.const("sin_cache", pos.sin().numpy().astype(np.float32))

    # The residual stream runs token-major, [T, B, d]: then a layer's new keys and values come out of their
    # projection already in the cache's slot-major layout ([T, B, kvH, hd], the present outputs as they are), and
    # attention reads them the way it reads the past (ONNX Runtime folds both transposes into FusedMatMul).
    ids = g.op("Transpose", ["input_ids"], perm=[1, 0])
    positions = g.op("Transpose", ["position_ids"], perm=[1, 0])  # RotaryEmbedding's (batch, sequence) = our (T, B)
    x = g.op("Gather", [g.const("embed", sd["embed_tokens.weight"]), ids], name="embed_out", axis=0)
    xn = g.op("SimplifiedLayerNormalization", [x, g.const("ln_0", sd["layers.0.input_layernorm.weight"])],
              name="ln_in_0", axis=-1, epsilon=RMS_EPS, stash_type=1)
    alpha = 1.0 / math.sqrt(hd)
    for i in range(n_layers):
        p = f"layers.{i}."
        # Packed by a Concat of the three matrices, which ONNX Runtime folds at load: the file keeps them as the
        # standard export stores them, so they can be shared with it (see share_weights).
        wqkv = g.op("Concat", [g.const(f"wq_{i}", sd[p + "self_attn.q_proj.weight"].T), g.const(f"wk_{i}", sd[p + "self_attn.k_proj.weight"].T),
                               g.const(f"wv_{i}", sd[p + "self_attn.v_proj.weight"].T)], axis=1)
        qkv = g.op("MatMul", [xn, wqkv], name=f"qkv_{i}")
        q, k, v = g.op("Split", [qkv, g.const(f"qkv_split_{i}", i64(h * hd, kvh * hd, kvh * hd))], n_out=3,
                       name=f"split_{i}", axis=-1)
        q = g.op("RotaryEmbedding", [q, positions, cos_cache, sin_cache], domain=MS, name=f"rope_q_{i}",
                 num_heads=h, interleaved=0)
        k = g.op("RotaryEmbedding", [k, positions, cos_cache, sin_cache], domain=MS, name=f"rope_k_{i}",
                 num_heads=kvh, interleaved=0)
        kv4 = g.const(f"kv4_{i}", i64(0, 0, kvh, hd))
        g.nodes.append(helper.make_node("Reshape", [k, kv4], [f"present.{i}.key"]))  # [T, B, kvH, hd]
        g.nodes.append(helper.make_node("Reshape", [v, kv4], [f"present.{i}.value"]))
        # Past and new slots alike, [slots, B, kvH, hd] -> [B, kvH, slots, hd] (folded into the MatMuls).
        # Query heads grouped by the KV head they share: [B, kvH, rep*T, hd], rows ordered (r, t) like the bias.
        qg = g.op("Reshape", [q, g.const(f"q5_{i}", i64(0, 0, kvh, rep, hd))])  # [T, B, kvH, rep, hd]
        qg = g.op("Reshape", [g.op("Transpose", [qg], perm=[1, 2, 3, 0, 4]), g.const(f"qg_{i}", i64(0, 0, -1, hd))])
        # Past and new slots, [S, B, kvH, hd] (one copy of the past per layer, inside the graph), read as
        # [B, kvH, S, hd]: ONNX Runtime folds that transposition into the MatMuls (FusedMatMul transBatchB).
        ka = g.op("Transpose", [g.op("Concat", [f"past_key_values.{i}.key", f"present.{i}.key"], axis=0)], perm=[1, 2, 0, 3])
        va = g.op("Transpose", [g.op("Concat", [f"past_key_values.{i}.value", f"present.{i}.value"], axis=0)], perm=[1, 2, 0, 3])
        scores = g.op("Add", [g.op("FusedMatMul", [qg, ka], domain=MS, transB=1, alpha=alpha), bias])
        att = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), va])  # [B, kvH, rep*T, hd]
        att = g.op("Reshape", [att, g.const(f"b5_{i}", i64(0, 0, rep, -1, hd))])  # [B, kvH, rep, T, hd]
        att = g.op("Reshape", [g.op("Transpose", [att], perm=[3, 0, 1, 2, 4]), g.const(f"flat_{i}", i64(0, 0, h * hd))])
        o = g.op("MatMul", [att, g.const(f"wo_{i}", sd[p + "self_attn.o_proj.weight"].T)], name=f"o_{i}")
        xn2, _, _, x = g.op("SkipSimplifiedLayerNormalization", [x, o, g.const(f"ln_post_{i}", sd[p + "post_attention_layernorm.weight"])],
                            n_out=4, domain=MS, name=f"ln_post_{i}", epsilon=RMS_EPS)
        wgu = g.op("Concat", [g.const(f"wg_{i}", sd[p + "mlp.gate_proj.weight"].T), g.const(f"wu_{i}", sd[p + "mlp.up_proj.weight"].T)], axis=1)
        gu = g.op("MatMul", [xn2, wgu], name=f"gu_{i}")
        gate, up = g.op("Split", [gu, g.const(f"gu_split_{i}", i64(m, m))], n_out=2, axis=-1)
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up])
        down = g.op("MatMul", [act, g.const(f"wd_{i}", sd[p + "mlp.down_proj.weight"].T)], name=f"down_{i}")
        nxt = sd[f"layers.{i + 1}.input_layernorm.weight"] if i + 1 < n_layers else sd["norm.weight"]
        xn, _, _, x = g.op("SkipSimplifiedLayerNormalization", [x, down, g.const(f"ln_next_{i}", nxt)], n_out=4, domain=MS,
                           name=f"ln_next_{i}", epsilon=RMS_EPS)

    # num_logits_to_keep: 0 keeps every row, N > 0 the last N (logits_to_keep.py's semantics).
    keep = "num_logits_to_keep"
    start = g.op("Where", [g.op("Equal", [keep, "z"]), "z", g.op("Max", [g.op("Sub", [T, keep]), "z"])])
    kept = g.op("Slice", [xn, g.op("Unsqueeze", [start, "ax0"]), g.const("big", i64(2**62)), "ax0"])  # [T', B, d]
    kept = g.op("Transpose", [kept], perm=[1, 0, 2])
    if int8_head:
        from quantize import BLOCK, _int8_blocks
        E = sd["embed_tokens.weight"]
        q, scale, zero, _ = _int8_blocks(np.ascontiguousarray(E.T))
        g.nodes.append(helper.make_node("MatMulNBits", [kept, g.const("head_q", q), g.const("head_scale", scale), g.const("head_zero", zero)],
                                        ["logits"], domain=MS, name="lm_head", K=E.shape[1], N=E.shape[0], bits=8,
                                        block_size=BLOCK, accuracy_level=4))
    else:
        g.nodes.append(helper.make_node("FusedMatMul", [kept, "embed"], ["logits"], domain=MS, transB=1, name="lm_head"))

    f32, i64t = TensorProto.FLOAT, TensorProto.INT64
    inputs = [helper.make_tensor_value_info("input_ids", i64t, ["batch_size", "sequence_length"]),
              helper.make_tensor_value_info("attention_mask", i64t, ["batch_size", "past_sequence_length + sequence_length"]),
              helper.make_tensor_value_info("position_ids", i64t, ["batch_size", "sequence_length"])]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch_size", "logits_sequence_length", VOCAB_SIZE])]
    for i in range(n_layers):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", f32,
                                                        ["past_sequence_length", "batch_size", kvh, hd]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", f32, ["sequence_length", "batch_size", kvh, hd]))
    inputs.append(helper.make_tensor_value_info(keep, i64t, []))
    graph = helper.make_graph(g.nodes, "specd_pooled_decoder", inputs, outputs, g.inits)
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)],
                            producer_name="specd fused_graph.py")
    out.ir_version = 8  # onnx.checker is not run: it knows no SimplifiedLayerNormalization (ONNX Runtime's, in the
    return out          # default domain); ONNX Runtime loading it and parity.ts are the checks


def write(model, cfg, folder, int8_head=False):
    """onnx/model_pooled.onnx beside the folder's onnx/model.onnx, sharing its weights, and model_pooled.json naming
    the exact model.onnx it points into (size and SHA-256): ONNX Runtime reads external data by offset without any
    check, so the engine refuses a pooled graph whose model.onnx has changed since."""
    standard = os.path.join(folder, "onnx", "model.onnx")
    graph = build(model, cfg, int8_head)
    share_weights(graph, standard)
    onnx.save(graph, os.path.join(folder, "onnx", "model_pooled.onnx"))
    with open(standard, "rb") as f:
        blob = f.read()
    with open(os.path.join(folder, "onnx", "model_pooled.json"), "w") as f:
        json.dump({"weights": "model.onnx", "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
                   "int8_head": int8_head}, f, indent=1)
        f.write("\n")


def main():
    """For folders whose model.onnx exists already (the committed pair): reads the weights back from it."""
    import sys
    from model import Llama
    from onnx_weights import state_dict_from_onnx
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size", "head_dim")
    int8_head = "--int8-head" in sys.argv
    for folder in [a for a in sys.argv[1:] if not a.startswith("--")]:
        with open(os.path.join(folder, "config.json")) as f:
            cfg = {k: v for k, v in json.load(f).items() if k in keys}
        model = Llama(cfg, VOCAB_SIZE).eval()
        model.load_state_dict(state_dict_from_onnx(os.path.join(folder, "onnx", "model.onnx"), model))
        write(model, cfg, folder, int8_head)
        print(json.dumps({"folder": folder, "bytes": os.path.getsize(os.path.join(folder, "onnx", "model_pooled.onnx"))}))


if __name__ == "__main__":
    main()
