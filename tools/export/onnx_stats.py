"""Counts computed from an ONNX file in Python, independently of the C runtime: the FLOPs of a
forward pass (2 x multiply-adds of Conv, Gemm and MatMul, elementwise work ignored, the rule
`cxrd model-info` states) and the parameter count (elements of the float initializers).
Used by bench/nn and by the parity tests to cross-check `cxrd model-info`.
"""
import numpy as np
import onnx
from onnx import shape_inference


def count_flops(path):
    """2 x multiply-adds of Conv, Gemm and MatMul, shapes from ONNX shape inference."""
    model = shape_inference.infer_shapes(onnx.load(path))
    shapes = {}
    for value in list(model.graph.input) + list(model.graph.value_info) + list(
            model.graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.dim_value > 0 else 1 for d in dims]
    for tensor in model.graph.initializer:
        shapes[tensor.name] = list(tensor.dims)
    flops = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out = shapes[node.output[0]]
            weight = shapes[node.input[1]]
            flops += 2 * int(np.prod(out)) * int(np.prod(weight[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            a, out = shapes[node.input[0]], shapes[node.output[0]]
            trans_a = any(att.name == "transA" and att.i for att in node.attribute)
            k = a[-2] if trans_a else a[-1]
            flops += 2 * int(np.prod(out)) * k
    return flops


def count_parameters(path):
    """Elements of the float initializers."""
    model = onnx.load(path)
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer
               if t.data_type == onnx.TensorProto.FLOAT)
