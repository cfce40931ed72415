"""Writes a copy of an exported decoder whose weight matrices are int8, through ONNX Runtime's com.microsoft.MatMulNBits
(bits 8, a scale per block of 32 input rows per output column; accuracy level 4: activations quantized per row and
block inside the op), float32 in and out as the Hub's `model_quantized.onnx` files are.

Why that op: DynamicQuantizeMatMul (what onnxruntime's quantize_dynamic writes) quantizes the activations with one
scale for the whole input, so a token's logits depend on the other tokens in its pass. MatMulNBits at accuracy
level 4 quantizes each row on its own and runs the 1-token target pass in ~0.65x the fp32 time (at accuracy level
0, float compute, it is 5x slower). Its kernels still round a many-row pass differently from a 1-token one, so
greedy speculative output can leave target mode at a near-tie: bench:q8 measures how often.

- Every MatMul on a 2-D float initializer, and the tied LM head Gemm(x, E, transB=1) on an int8 copy of E^T (the
  embedding lookup keeps the float32 matrix: it reads one row per token).
- `--head-only`: the LM head alone. For the bundled draft the head is 4 MB of its 5.8 MB of fp32 weights, streamed
  back from memory after every target pass (bench:draft-cost measures what int8 saves there).

    /usr/bin/python3 scripts/models/quantize.py IN.onnx OUT.onnx [--head-only]
"""
import argparse

import numpy as np
import onnx
from onnx import helper, numpy_helper


BLOCK = 32


def _int8_blocks(W: np.ndarray):
    """W [K, N] as MatMulNBits stores it: uint8 [N, K/BLOCK, BLOCK] (zero point 128), a scale per block."""
    K, N = W.shape
    nb = (K + BLOCK - 1) // BLOCK
    padded = np.zeros((nb * BLOCK, N), np.float32)
    padded[:K] = W
    blocks = padded.T.reshape(N, nb, BLOCK)
    scale = (np.maximum(np.abs(blocks).max(axis=2), 1e-8) / 127.0).astype(np.float32)
    q = np.clip(np.round(blocks / scale[..., None]), -127, 127)
    err = float(np.abs(q * scale[..., None] - blocks).max())
    return (q + 128).astype(np.uint8), scale.reshape(-1), np.full(N * nb, 128, np.uint8), err


def quantize(model: onnx.ModelProto, head_only: bool = False) -> dict:
    """Rewrites `model` in place; returns how many matrices were quantized and the largest weight error."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    head = producer["logits"]
    if head.op_type == "Reshape":  # export.py's tied head: Reshape(Gemm(Reshape(hidden)))
        head = producer[head.input[0]]
    todo = []
    for node in g.node:
        weight = inits.get(node.input[1]) if len(node.input) > 1 else None
        if weight is None or weight.data_type != onnx.TensorProto.FLOAT or len(weight.dims) != 2:
            continue
        if node.op_type == "Gemm" and any(a.name == "transB" and a.i == 1 for a in node.attribute) and len(node.input) == 2:
            todo.append((node, numpy_helper.to_array(weight).T))
        elif node.op_type == "MatMul" and not head_only:
            todo.append((node, numpy_helper.to_array(weight)))
    todo = [t for t in todo if not head_only or t[0] is head]
    if not todo:
        raise RuntimeError("no weight matrix to quantize (did the graph change?)")
    worst = 0.0
    for k, (node, W) in enumerate(todo):
        q, scale, zero, err = _int8_blocks(W.astype(np.float32))
        worst = max(worst, err)
        name = f"int8.{k}.{node.name or node.output[0]}"
        g.initializer.extend([numpy_helper.from_array(q, f"{name}.weight"), numpy_helper.from_array(scale, f"{name}.scale"),
                              numpy_helper.from_array(zero, f"{name}.zero_point")])
        op = helper.make_node("MatMulNBits", [node.input[0], f"{name}.weight", f"{name}.scale", f"{name}.zero_point"],
                              list(node.output), domain="com.microsoft", name=f"{node.name}_int8",
                              K=W.shape[0], N=W.shape[1], bits=8, block_size=BLOCK, accuracy_level=4)
        at = list(g.node).index(node)
        g.node.remove(node)
        g.node.insert(at, op)
    # Weights no node reads any more (the MatMuls' float copies) leave the file; the embedding stays for its Gather.
    used = {x for n in g.node for x in n.input}
    for init in list(g.initializer):
        if init.name not in used:
            g.initializer.remove(init)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return {"matrices": len(todo), "largest_weight_error": worst}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--head-only", action="store_true")
    args = ap.parse_args()
    m = onnx.load(args.src)
    info = quantize(m, args.head_only)
    onnx.save(m, args.dst)
    print(f"{args.dst}: {info['matrices']} matrices in int8 (largest weight error {info['largest_weight_error']:.4g})")
