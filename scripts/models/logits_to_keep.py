"""Adds Hugging Face's `num_logits_to_keep` input to an exported decoder, in place.

The LM head is the widest matrix of the bundled pair (8,192 x hidden): computing it on every row of a prefill
chunk, when only the last row (or none) is used, is most of the draft's prefill and a fifth of the target's.
With this input the graph slices the hidden states before the head: `num_logits_to_keep` = 0 keeps every row
(transformers.js feeds 0 in forward()), N > 0 the last N rows (transformers.js feeds 1 in generate()).

Handles the two head shapes our exports and the Hub's have: MatMul on [B, T, H] hidden states, and export.py's
tied head (Reshape [B*T, H] -> Gemm(transB) -> Reshape [B, T, V]).

    /usr/bin/python3 scripts/models/logits_to_keep.py target-models/specd-story-16m/onnx/model.onnx ...
"""
import sys

import onnx
from onnx import TensorProto, helper

NAME = "num_logits_to_keep"


def _const(graph, name, values):
    t = helper.make_tensor(name, TensorProto.INT64, [len(values)] if isinstance(values, list) else [], values if isinstance(values, list) else [values])
    graph.initializer.append(t)
    return name


def add_logits_to_keep(model: onnx.ModelProto) -> bool:
    """Rewrites `model`; False if it already has the input."""
    g = model.graph
    if any(i.name == NAME for i in g.input):
        return False
    producer = {o: n for n in g.node for o in n.output}
    head = producer["logits"]
    unflatten = None
    if head.op_type == "Reshape":  # export.py's tied head: Reshape(Gemm(Reshape(hidden)))
        unflatten, head = head, producer[head.input[0]]
    if head.op_type not in ("MatMul", "Gemm"):
        raise RuntimeError(f"unexpected LM head {head.op_type} ({head.name})")
    flatten = producer.get(head.input[0])
    hidden = flatten.input[0] if unflatten is not None else head.input[0]
    if unflatten is not None and (flatten is None or flatten.op_type != "Reshape"):
        raise RuntimeError("tied head without its flattening Reshape")

    g.input.append(helper.make_tensor_value_info(NAME, TensorProto.INT64, []))
    p = "/logits_to_keep/"
    nodes = [
        helper.make_node("Shape", [hidden], [p + "shape"]),
        helper.make_node("Gather", [p + "shape", _const(g, p + "one", 1)], [p + "T"], axis=0),
        helper.make_node("Sub", [p + "T", NAME], [p + "start_raw"]),
        helper.make_node("Max", [p + "start_raw", _const(g, p + "zero", 0)], [p + "start_pos"]),
        helper.make_node("Equal", [NAME, p + "zero"], [p + "keep_all"]),
        helper.make_node("Where", [p + "keep_all", p + "zero", p + "start_pos"], [p + "start"]),
        helper.make_node("Unsqueeze", [p + "start", _const(g, p + "axis0", [0])], [p + "starts"]),
        helper.make_node("Slice", [hidden, p + "starts", _const(g, p + "ends", [2**62]), _const(g, p + "axes", [1])], [p + "hidden"]),
    ]
    if unflatten is None:
        head.input[0] = p + "hidden"
    else:
        # The original Reshapes take their shapes from input_ids ([B*T, H] and [B, T, V]); T is now T' <= T.
        weight = next(t for t in g.initializer if t.name == head.input[1])  # Gemm(transB=1): [V, H]
        nodes.append(helper.make_node("Reshape", [p + "hidden", _const(g, p + "flat_shape", [-1, weight.dims[1]])], [p + "flat"]))
        head.input[0] = p + "flat"
        vocab_dim = next(d.dim_value for d in g.output[[o.name for o in g.output].index("logits")].type.tensor_type.shape.dim[2:3])
        nodes += [
            helper.make_node("Shape", ["input_ids"], [p + "ids_shape"]),
            helper.make_node("Gather", [p + "ids_shape", _const(g, p + "zero1", [0])], [p + "B"], axis=0),
            helper.make_node("Concat", [p + "B", _const(g, p + "rest", [-1, vocab_dim])], [p + "out_shape"], axis=0),
        ]
        unflatten.input[1] = p + "out_shape"
    # Insert right after the node that produces the hidden states, keeping the graph topologically sorted.
    at = list(g.node).index(producer[hidden]) + 1
    for i, n in enumerate(nodes):
        g.node.insert(at + i, n)
    # T' instead of T: the logits' sequence axis is no longer the input's.
    dims = g.output[[o.name for o in g.output].index("logits")].type.tensor_type.shape.dim
    dims[1].dim_param = "logits_sequence_length"
    onnx.checker.check_model(model)
    return True


def main(paths):
    for path in paths:
        model = onnx.load(path)
        if add_logits_to_keep(model):
            onnx.save(model, path)
            print(f"{path}: added {NAME}")
        else:
            print(f"{path}: already has {NAME}")


if __name__ == "__main__":
    main(sys.argv[1:])
