"""Writes a copy of an exported decoder whose tied LM head runs in int8: Gemm(x, E, transB=1) becomes ONNX Runtime's
com.microsoft.DynamicQuantizeMatMul on an int8 copy of E^T with a scale per vocabulary column (activations are
quantized per pass by the op). For the bundled draft the head is 4 MB of its 5.8 MB of fp32 weights, and after
each target pass those bytes stream back from memory: int8 moves a quarter of them. The embedding lookup keeps
the fp32 matrix (it reads one row per token).

    /usr/bin/python3 scripts/models/quantize_head.py IN.onnx OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def quantize_head(model: onnx.ModelProto) -> float:
    """Rewrites `model` in place; returns the largest weight error of the int8 head."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    head = producer["logits"]
    if head.op_type == "Reshape":  # export.py's tied head: Reshape(Gemm(Reshape(hidden)))
        head = producer[head.input[0]]
    if head.op_type != "Gemm" or not any(a.name == "transB" and a.i == 1 for a in head.attribute):
        raise RuntimeError(f"expected the tied head Gemm(transB=1), found {head.op_type} ({head.name})")
    E = numpy_helper.to_array(next(i for i in g.initializer if i.name == head.input[1]))  # [vocab, hidden]
    W = E.T.astype(np.float32)  # [hidden, vocab]
    scale = (np.maximum(np.abs(W).max(axis=0), 1e-8) / 127.0).astype(np.float32)
    q = np.clip(np.round(W / scale), -127, 127).astype(np.int8)
    g.initializer.extend([numpy_helper.from_array(q, "lm_head.int8"), numpy_helper.from_array(scale, "lm_head.scale"),
                          numpy_helper.from_array(np.zeros(W.shape[1], np.int8), "lm_head.zero_point")])
    op = helper.make_node("DynamicQuantizeMatMul", [head.input[0], "lm_head.int8", "lm_head.scale", "lm_head.zero_point"],
                          list(head.output), domain="com.microsoft", name="lm_head_int8")
    at = list(g.node).index(head)
    g.node.remove(head)
    g.node.insert(at, op)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return float(np.abs(q.astype(np.float32) * scale - W).max())


if __name__ == "__main__":
    m = onnx.load(sys.argv[1])
    err = quantize_head(m)
    onnx.save(m, sys.argv[2])
    print(f"int8 head written to {sys.argv[2]} (largest weight error {err:.4g})")
