"""MobileNetV2 (keras_applications, alpha 1.0) as a one-channel feature extractor for cxrd, with
natural-image weights from the npm package nsfwjs 4.4.0 (MIT): ImageNet weights fine-tuned on
five NSFW classes and uint8-quantised. See docs/pretrained.md.

The module takes cxrd's network input directly: y = pixel * 2/255 - 1 on one grey channel.
nsfwjs feeds its network x = pixel / 255 on RGB, so for a grey image replicated to RGB
x = (y + 1) / 2 on every channel. That is folded into Conv1: its RGB kernels are summed and
halved, the bias is half the kernel sum, and the input is padded with -1 (which is x = 0, the
zero padding Keras applies) so the borders are exact too.

  /usr/bin/python3 tools/train/pretrained.py --out build/pretrained/mobilenet_v2.pt
runs `npm ci` in tools/pretrained when needed, the node export, and the conversion, and writes
the state dict plus a provenance JSON beside it (same name, .json)."""
import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NPM_DIR = os.path.join(ROOT, "tools", "pretrained")
DEFAULT_OUT = os.path.join(ROOT, "build", "pretrained", "mobilenet_v2.pt")
PACKAGE = "nsfwjs"

# keras_applications MobileNetV2 inverted residual settings: (expansion, channels, repeats,
# first stride). Block ids run 0 ("expanded_conv"), 1, 2, ... 16.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))
# ZeroPadding2D before every stride-2 convolution ((top, bottom), (left, right)), as
# keras_applications' correct_pad computed it for the 224x224 model. It is a fixed layer, so
# Keras applies it at every input size; checked against the shipped topology on conversion.
KERAS_PAD = ((0, 1), (0, 1))
BN_EPS = 1e-3  # Keras BatchNormalization epsilon


def block_specs():
    """[(name prefix, cin, expansion, cout, stride)] for the 17 inverted residual blocks."""
    specs, cin, bid = [], 32, 0
    for t, c, n, s in SETTINGS:
        for i in range(n):
            prefix = "expanded_conv" if bid == 0 else "block_%d" % bid
            specs.append((prefix, cin, t, c, s if i == 0 else 1))
            cin, bid = c, bid + 1
    return specs


def torch_pad(pad):
    """((top, bottom), (left, right)) -> F.pad's (left, right, top, bottom)."""
    return (pad[1][0], pad[1][1], pad[0][0], pad[0][1])


class _OnnxPad(torch.autograd.Function):
    """F.pad as one ONNX Pad node with constant pads and value: torch 1.13 builds the pads of
    an exported F.pad from Shape/ConstantOfShape/Concat/... nodes, which cxrd's loader refuses
    ("a layer applied to a constant")."""

    @staticmethod
    def forward(ctx, x, pads, value):
        return F.pad(x, pads, value=value)

    @staticmethod
    def symbolic(g, x, pads, value):
        left, right, top, bottom = pads
        onnx_pads = torch.tensor([0, 0, top, left, 0, 0, bottom, right], dtype=torch.int64)
        with warnings.catch_warnings():  # torch 1.13 flags g.op on a Function's graph (1.14)
            warnings.simplefilter("ignore", FutureWarning)
            return g.op("Pad", x, g.op("Constant", value_t=onnx_pads),
                        g.op("Constant", value_t=torch.tensor(value, dtype=torch.float32)),
                        mode_s="constant")


def keras_pad(x, pad, value=0.0):
    """Zero (or value) padding ((top, bottom), (left, right)), exportable to cxrd's ONNX."""
    pads = torch_pad(pad)
    if torch.onnx.is_in_onnx_export():
        return _OnnxPad.apply(x, pads, float(value))
    return F.pad(x, pads, value=value)


class MobileNetV2Features(nn.Module):
    """[N,1,H,W] (cxrd input, pixel*2/255-1) -> [N,1280,H/s,W/s] after Conv_1, BN and ReLU6,
    s = output_stride (32, or 16: block_13's stride-2 depthwise made stride 1, blocks 14-16
    dilated by 2). last="block_N" stops after that block instead: its linear output, e.g.
    block_10 -> [N,96,H/16,W/16], the last block the Keras topology marks not trainable
    (likely still ImageNet's weights). rgb=True takes nsfwjs's own input instead ([N,3,H,W],
    pixel/255), for the reference test. Modules are named after the Keras layers they came
    from."""

    def __init__(self, output_stride=32, rgb=False, last=None):
        super().__init__()
        if output_stride not in (16, 32):
            raise ValueError("output_stride must be 16 or 32")
        self.output_stride = output_stride
        self.rgb = rgb
        # Before Conv1 and every stride-2 depthwise (plain attributes: the reference test
        # swaps them to show that a wrong padding is caught).
        self.pad = KERAS_PAD
        # Keras zero-pads nsfwjs's input; in cxrd's input that zero is -1 (see the module doc).
        self.input_pad_value = 0.0 if rgb else -1.0
        k = nn.ModuleDict()
        # Conv1 has a bias only to carry the folded input offset (zero in rgb mode).
        k["Conv1"] = nn.Conv2d(3 if rgb else 1, 32, 3, 2, 0, bias=True)
        k["bn_Conv1"] = nn.BatchNorm2d(32, eps=BN_EPS)
        self.blocks = []
        stride, rate = 2, 1
        for prefix, cin, t, cout, s in block_specs():
            hidden = cin * t
            dilation, pad = rate, False
            if s == 2 and stride == output_stride:
                s, rate = 1, rate * 2  # the rate applies from the next layer on
            elif s == 2:
                stride, pad = stride * 2, True
            if t != 1:
                k[prefix + "_expand"] = nn.Conv2d(cin, hidden, 1, bias=False)
                k[prefix + "_expand_BN"] = nn.BatchNorm2d(hidden, eps=BN_EPS)
            k[prefix + "_depthwise"] = nn.Conv2d(
                hidden, hidden, 3, s, padding=0 if pad else dilation, dilation=dilation,
                groups=hidden, bias=False)
            k[prefix + "_depthwise_BN"] = nn.BatchNorm2d(hidden, eps=BN_EPS)
            k[prefix + "_project"] = nn.Conv2d(hidden, cout, 1, bias=False)
            k[prefix + "_project_BN"] = nn.BatchNorm2d(cout, eps=BN_EPS)
            residual = cin == cout and s == 1
            self.blocks.append((prefix, t != 1, pad, residual))
            self.out_channels = cout
            if prefix == last:
                break
        else:
            if last is not None:
                raise ValueError("last must name a block (expanded_conv, block_1..block_16)")
            k["Conv_1"] = nn.Conv2d(320, 1280, 1, bias=False)
            k["Conv_1_bn"] = nn.BatchNorm2d(1280, eps=BN_EPS)
            self.out_channels = 1280
        self.k = k
        self.act = nn.ReLU6()

    def forward(self, x):
        k = self.k
        x = keras_pad(x, self.pad, self.input_pad_value)
        x = self.act(k["bn_Conv1"](k["Conv1"](x)))
        for prefix, expand, pad, residual in self.blocks:
            y = x
            if expand:
                y = self.act(k[prefix + "_expand_BN"](k[prefix + "_expand"](y)))
            if pad:
                y = keras_pad(y, self.pad)
            y = self.act(k[prefix + "_depthwise_BN"](k[prefix + "_depthwise"](y)))
            y = k[prefix + "_project_BN"](k[prefix + "_project"](y))
            x = x + y if residual else y
        if "Conv_1" not in k:
            return x
        return self.act(k["Conv_1_bn"](k["Conv_1"](x)))


def read_export(folder):
    """The node export (tools/pretrained/export_weights.js): {name: float32 array}, topology."""
    with open(os.path.join(folder, "index.json")) as f:
        index = json.load(f)
    blob = np.fromfile(os.path.join(folder, "weights.bin"), dtype="<f4")
    arrays = {}
    for e in index:
        a = blob[e["offset"]:e["offset"] + e["count"]]
        if a.size != e["count"]:
            raise ValueError("weights.bin is short at %s" % e["name"])
        arrays[e["name"]] = a.reshape(e["shape"]).astype(np.float32)
    with open(os.path.join(folder, "topology.json")) as f:
        topology = json.load(f)
    return arrays, topology


def keras_layers(topology):
    return {layer["name"]: layer for layer in topology["model_config"]["config"]["layers"]}


def check_topology(layers):
    """Every convolution in the torch module must match the shipped Keras layer (kernel,
    stride, padding mode, dilation), every stride-2 one must be preceded by KERAS_PAD, and no
    Keras layer between the input and out_relu may be left out."""
    ref = MobileNetV2Features(32, rgb=True)  # the Keras strides, before any output_stride change
    used = set()
    for name, m in ref.k.items():
        layer = layers.get(name)
        if layer is None:
            raise ValueError("the topology has no layer %s" % name)
        c = layer["config"]
        used.add(name)
        if isinstance(m, nn.BatchNorm2d):
            if layer["class_name"] != "BatchNormalization" or abs(c["epsilon"] - BN_EPS) > 1e-9:
                raise ValueError("%s: not a BatchNormalization with epsilon 1e-3" % name)
            continue
        depthwise = m.groups > 1
        want = "DepthwiseConv2D" if depthwise else "Conv2D"
        if layer["class_name"] != want or list(c["kernel_size"]) != list(m.kernel_size) \
                or list(c["strides"]) != list(m.stride) or c["dilation_rate"] != [1, 1] \
                or c["use_bias"] or c["activation"] != "linear":
            raise ValueError("%s: %s differs from the torch layer" % (name, layer["class_name"]))
        if not depthwise and c["filters"] != m.out_channels:
            raise ValueError("%s: %d filters" % (name, c["filters"]))
        if m.stride == (2, 2):
            src = layer["inbound_nodes"][0][0][0]
            if layers[src]["class_name"] != "ZeroPadding2D" or c["padding"] != "valid" or \
                    tuple(map(tuple, layers[src]["config"]["padding"])) != KERAS_PAD:
                raise ValueError("%s: not the expected ZeroPadding2D + valid" % name)
            used.add(src)
        elif m.kernel_size != (1, 1) and c["padding"] != "same":
            raise ValueError("%s: padding %s" % (name, c["padding"]))
    for name, layer in layers.items():
        if name == "out_relu":
            break
        if layer["class_name"] in ("Conv2D", "DepthwiseConv2D", "BatchNormalization",
                                   "ZeroPadding2D") and name not in used:
            raise ValueError("Keras layer %s has no torch counterpart" % name)
        if layer["class_name"] == "ReLU" and layer["config"]["max_value"] != 6:
            raise ValueError("%s is not ReLU6" % name)


def convert(arrays, rgb=False):
    """Keras arrays -> state dict of MobileNetV2Features (any output_stride)."""
    sd = {}
    for name in MobileNetV2Features(32, rgb=True).k.keys():
        if name in ("Conv1",):
            continue
        if name + "/gamma" in arrays:
            for torch_name, keras_name in (("weight", "gamma"), ("bias", "beta"),
                                           ("running_mean", "moving_mean"),
                                           ("running_var", "moving_variance")):
                sd["k.%s.%s" % (name, torch_name)] = arrays["%s/%s" % (name, keras_name)]
            sd["k.%s.num_batches_tracked" % name] = np.array(0, dtype=np.int64)
        elif name + "/depthwise_kernel" in arrays:  # H W C 1 -> C 1 H W
            sd["k.%s.weight" % name] = arrays[name + "/depthwise_kernel"].transpose(2, 3, 0, 1)
        else:  # H W I O -> O I H W
            sd["k.%s.weight" % name] = arrays[name + "/kernel"].transpose(3, 2, 0, 1)
    w = arrays["Conv1/kernel"].transpose(3, 2, 0, 1).astype(np.float64)  # [32,3,3,3]
    if rgb:
        sd["k.Conv1.weight"], sd["k.Conv1.bias"] = w, np.zeros(32)
    else:  # x = (y + 1) / 2 on all three channels: see the module doc
        sd["k.Conv1.weight"] = 0.5 * w.sum(1, keepdims=True)
        sd["k.Conv1.bias"] = 0.5 * w.sum((1, 2, 3))
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(
        torch.int64 if v.dtype == np.int64 else torch.float32) for k, v in sd.items()}


def load_features(state_path=DEFAULT_OUT, output_stride=32, last=None):
    """The one-channel module with the converted weights saved by this tool's CLI (all of
    them, or up to block `last`)."""
    model = MobileNetV2Features(output_stride, last=last)
    state = torch.load(state_path, map_location="cpu")
    model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()})
    return model


def npm_ci(npm="npm"):
    """Installs tools/pretrained/node_modules from the lock (no install scripts needed)."""
    subprocess.run([npm, "ci", "--prefix", NPM_DIR, "--ignore-scripts", "--no-audit",
                    "--no-fund"], check=True)


def node_export(folder, node="node", npm="npm"):
    if not os.path.isdir(os.path.join(NPM_DIR, "node_modules", PACKAGE)):
        npm_ci(npm)
    subprocess.run([node, os.path.join(NPM_DIR, "export_weights.js"), folder], check=True,
                   cwd=NPM_DIR)


def lock_entry(name):
    with open(os.path.join(NPM_DIR, "package-lock.json")) as f:
        return json.load(f)["packages"]["node_modules/" + name]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="state dict path (.pt)")
    ap.add_argument("--node", default="node")
    ap.add_argument("--npm", default="npm")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        node_export(tmp, args.node, args.npm)
        arrays, topology = read_export(tmp)
        with open(os.path.join(tmp, "package.json")) as f:
            package = json.load(f)
        with open(os.path.join(tmp, "index.json")) as f:
            index = json.load(f)
        weights_sha = sha256(os.path.join(tmp, "weights.bin"))
    layers = keras_layers(topology)
    model = MobileNetV2Features(32)
    check_topology(layers)
    model.load_state_dict(convert(arrays))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(model.state_dict(), args.out)
    lock = lock_entry(PACKAGE)
    used = sorted(n for n in arrays if n.split("/")[0] in model.k.keys())
    provenance = {
        "package": PACKAGE, "version": package["version"], "npm_integrity": lock["integrity"],
        "npm_resolved": lock.get("resolved"), "license": package["license"],
        "license_file": "tools/pretrained/node_modules/nsfwjs/LICENSE",
        "homepage": package.get("homepage"),
        "model": "dist/models/mobilenet_v2 (Keras %s layers model, keras_applications "
                 "MobileNetV2 alpha 1.0, 224x224 RGB, pixel/255), ImageNet weights fine-tuned "
                 "on 5 NSFW classes" % topology.get("keras_version"),
        "quantisation": sorted({(e["quantization"] or {}).get("dtype", "float32")
                                for e in index}),
        "converted": "%d of %d arrays (Conv1 .. Conv_1_bn; the dense_1..3 head left out); "
                     "Conv1's RGB kernels summed and halved, bias = half their sum, input "
                     "padded with -1: the module takes pixel*2/255-1 on one channel" % (
                         len(used), len(arrays)),
        # The topology as saved: layers marked not trainable were frozen (at least in the last
        # phase) of the NSFW fine-tuning, so they likely hold the ImageNet weights.
        "keras_not_trainable": [n for n in model.k.keys()
                                if not layers[n]["config"].get("trainable", True)],
        "exported_weights_sha256": weights_sha,
        "state_dict_sha256": sha256(args.out),
        "parameters": sum(p.numel() for p in model.parameters()),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(provenance, f, indent=1)
        f.write("\n")
    print("pretrained: %s (%d parameters) from %s@%s" % (
        args.out, provenance["parameters"], PACKAGE, package["version"]))


if __name__ == "__main__":
    sys.exit(main())
