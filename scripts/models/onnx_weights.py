"""Reads an exported decoder's weights back into the torch model (the committed models ship ONNX only), so a
fine-tune can continue from the bundled model without the checkpoint it was exported from.

The legacy exporter keeps norm and embedding names but stores every Linear as an anonymous, transposed MatMul
initializer, in module order (q, k, v, o, gate, up, down per layer). The order is checked against each
parameter's shape; `verify` then compares the torch logits with the exporter's parity fixture when one exists."""
import numpy as np
import onnx
import torch
from onnx import numpy_helper

LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def state_dict_from_onnx(path: str, model) -> dict:
    m = onnx.load(path)
    named = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    anonymous = [numpy_helper.to_array(i) for i in m.graph.initializer if i.name.startswith("onnx::MatMul")]
    want = model.state_dict()
    out, k = {}, 0
    for name, p in want.items():
        key = "model." + name if not name.startswith("model.") else name
        if key in named:
            out[name] = torch.from_numpy(named[key].copy())
            continue
        layer_linear = next((l for l in LINEARS if name.endswith(l + ".weight")), None)
        if layer_linear is None:
            raise KeyError(f"{name}: not in {path}")
        w = anonymous[k].T
        k += 1
        if tuple(w.shape) != tuple(p.shape):
            raise ValueError(f"{name}: expected {tuple(p.shape)}, the graph's MatMul #{k} holds {tuple(w.shape)}")
        out[name] = torch.from_numpy(np.ascontiguousarray(w))
    if k != len(anonymous):
        raise ValueError(f"{len(anonymous) - k} MatMul initializers left unmapped in {path}")
    return out
