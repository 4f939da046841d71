"""Runs a contract ONNX model in PyTorch, node by node, for batches of images: the shipped model
can be re-scored (thresholds, the input gate) without its training checkpoints. Only the
operators the default model uses are implemented; any other is refused by name."""
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(x, w, b, a):
    pads = a.get("pads", [0, 0, 0, 0])
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise ValueError("asymmetric Conv padding is not supported")
    return F.conv2d(x, w, b, stride=a.get("strides", [1, 1]), padding=pads[:2],
                    dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))


def _gemm(x, w, c, a):
    if a.get("transA", 0):
        x = x.t()
    y = x @ (w.t() if a.get("transB", 0) else w) * a.get("alpha", 1.0)
    return y if c is None else y + c * a.get("beta", 1.0)


def _pad(x, pads, value):
    """ONNX Pad (constant): pads = [begin of each axis..., end of each axis...]."""
    pads = [int(p) for p in pads]
    rank = len(pads) // 2
    if len(pads) != 2 * x.dim() or min(pads) < 0:
        raise ValueError("Pad: pads %s for a %d-D input" % (pads, x.dim()))
    torch_pads = []
    for axis in reversed(range(rank)):  # F.pad lists the last axis first
        torch_pads += [pads[axis], pads[axis + rank]]
    return F.pad(x, torch_pads, value=0.0 if value is None else float(value))


class OnnxTorch:
    """model = OnnxTorch(path); outputs = model(x, names) with x float32 [N,1,H,W]: a dict of
    the named tensors (graph outputs or any intermediate value) as numpy arrays."""

    def __init__(self, path):
        self.proto = onnx.load(path)
        graph = self.proto.graph
        self.weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
                        for t in graph.initializer}
        self.nodes = list(graph.node)
        self.input = graph.input[0].name
        # the last node reading each value: run() drops activations after it, so a batch of
        # large inputs needs the live tensors only, not every intermediate at once
        self.last_use = {name: k for k, node in enumerate(self.nodes) for name in node.input}
        self.metadata = {p.key: p.value for p in self.proto.metadata_props}

    @torch.no_grad()
    def run(self, x, names):
        env = dict(self.weights)
        env[self.input] = torch.as_tensor(x)
        keep = set(names)
        for k, node in enumerate(self.nodes):
            ins = [env[i] if i else None for i in node.input]
            a = _attrs(node)
            op = node.op_type
            if op == "Conv":
                y = _conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
            elif op == "Relu":
                y = F.relu(ins[0])
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "Sub":
                y = ins[0] - ins[1]
            elif op == "Mul":
                y = ins[0] * ins[1]
            elif op == "Concat":
                y = torch.cat(ins, a["axis"])
            elif op == "MaxPool" and set(a) <= {"kernel_shape"}:
                y = F.max_pool2d(ins[0], a["kernel_shape"])
            elif op == "GlobalAveragePool":
                y = ins[0].mean((2, 3), keepdim=True)
            elif op == "Flatten":
                y = ins[0].reshape(ins[0].shape[0], -1)
            elif op == "Sigmoid":
                y = torch.sigmoid(ins[0])
            elif op == "Gemm":
                y = _gemm(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
            elif op == "MatMul":
                y = ins[0] @ ins[1]
            elif op == "Constant" and set(a) == {"value"}:
                y = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
            elif op == "Clip":  # opset 11+: min and max are inputs
                y = torch.clamp(ins[0], *[None if t is None else float(t)
                                          for t in (ins + [None, None])[1:3]])
            elif op == "Pad" and a.get("mode", b"constant") in (b"constant", "constant"):
                y = _pad(ins[0], ins[1], ins[2] if len(ins) > 2 else None)
            else:
                raise ValueError("operator %s is not supported here" % op)
            env[node.output[0]] = y
            for i in node.input:
                if i and self.last_use[i] == k and i not in keep and i not in self.weights:
                    env.pop(i, None)  # (a node may read one value twice)
        return {n: env[n].numpy() for n in names}

    def __call__(self, x, names, batch=128):
        parts = [self.run(x[i:i + batch], names) for i in range(0, len(x), batch)]
        return {n: np.concatenate([p[n] for p in parts]) for n in names}
