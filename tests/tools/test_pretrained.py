#!/usr/bin/python3
"""Reference test of tools/train/pretrained.py: the nsfwjs MobileNetV2 run by TensorFlow.js in
node (tools/pretrained/run_tfjs.js, weights dequantised by TF.js itself) against the converted
torch module plus a torch re-creation of nsfwjs's 5-class head, on a radiograph replicated to
RGB and two seeded noise images. Then the one-channel module (cxrd's input, Conv1 folded)
against the RGB one, the CLI's saved state dict, output_stride 16 under ContractModel, and that
a transposed kernel or a symmetric padding would be caught.

usage: test_pretrained.py DATA_DIR SCRATCH_DIR   (exit 77: node or npm absent)"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from torch import nn

sys.dont_write_bytecode = True  # never leave __pycache__ in the source tree
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
sys.path.insert(0, os.path.join(ROOT, "tools", "export"))
import pretrained as P  # noqa: E402

RADIOGRAPH = "images/covidrad_normal_256_via_lundis/Normal-10014.png"
SEED = 20261203
# max |torch - reference| <= TOLERANCE * max |reference| (features reach 6, ReLU6)
TOLERANCE = 1e-4
PROB_TOLERANCE = 1e-4  # absolute, on probabilities
failures = []


def check(name, ok, detail):
    print("%s %s: %s" % ("ok  " if ok else "FAIL", name, detail))
    if not ok:
        failures.append(name)


def rel_diff(got, ref):
    return float(np.abs(got.astype(np.float64) - ref).max() / np.abs(ref).max())


def ensure_node_modules():
    """npm ci when the installed direct dependencies are not the locked versions."""
    with open(os.path.join(P.NPM_DIR, "package-lock.json")) as f:
        lock = json.load(f)["packages"]
    for name in ("nsfwjs", "@tensorflow/tfjs"):
        installed = os.path.join(P.NPM_DIR, "node_modules", name, "package.json")
        if not os.path.exists(installed) or \
                json.load(open(installed))["version"] != lock["node_modules/" + name]["version"]:
            print("npm ci --prefix tools/pretrained (%s missing or not the locked version)" % name)
            P.npm_ci()
            return


class NsfwHead(nn.Module):
    """nsfwjs's top: 7x7 average pool, Dense 256 ReLU, Dense 128 ReLU, Dense 5 softmax (the
    dropouts are identities at inference)."""

    def __init__(self, arrays):
        super().__init__()
        self.dense = nn.ModuleList()
        for name in ("dense_1", "dense_2", "dense_3"):
            w = torch.from_numpy(arrays[name + "/kernel"].T.copy())  # Keras [in,out]
            d = nn.Linear(w.shape[1], w.shape[0])
            d.weight.data, d.bias.data = w, torch.from_numpy(arrays[name + "/bias"].copy())
            self.dense.append(d)

    def forward(self, features):
        x = torch.flatten(nn.functional.avg_pool2d(features, 7), 1)
        x = torch.relu(self.dense[1](torch.relu(self.dense[0](x))))
        return torch.softmax(self.dense[2](x), 1)


def inputs(data_dir):
    """u8 [3,224,224,3]: the radiograph (grey, replicated), RGB noise, grey noise (replicated)."""
    with Image.open(os.path.join(data_dir, "cxr", RADIOGRAPH)) as im:
        xray = np.asarray(im.convert("L").resize((224, 224), Image.BOX), np.uint8)
    rng = np.random.default_rng(SEED)
    rgb_noise = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    grey_noise = rng.integers(0, 256, (224, 224), dtype=np.uint8)
    grey = lambda g: np.repeat(g[:, :, None], 3, 2)  # noqa: E731
    return np.stack([grey(xray), rgb_noise, grey(grey_noise)]), [0, 2]


def model(arrays, rgb, output_stride=32):
    m = P.MobileNetV2Features(output_stride, rgb=rgb)
    m.load_state_dict(P.convert(arrays, rgb=rgb))
    return m.eval()


def run(m, x_nchw):
    with torch.no_grad():
        return m(torch.from_numpy(x_nchw)).numpy()


def main(argv):
    data_dir, scratch = argv[1:3]
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            print("SKIP: %s not found (scripts/install-deps installs nodejs and npm)" % tool)
            return 77
    torch.set_num_threads(1)
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    ensure_node_modules()
    export = os.path.join(scratch, "export")
    P.node_export(export)
    arrays, topology = P.read_export(export)
    P.check_topology(P.keras_layers(topology))

    u8, grey_rows = inputs(data_dir)
    x = (u8.astype(np.float32) / np.float32(255.0))  # nsfwjs: pixel / 255, NHWC
    x.tofile(os.path.join(scratch, "input.bin"))
    subprocess.run(["node", os.path.join(P.NPM_DIR, "run_tfjs.js"),
                    os.path.join(scratch, "input.bin"), str(len(x)), scratch], check=True,
                   cwd=P.NPM_DIR)
    ref_f = np.fromfile(os.path.join(scratch, "features.bin"), "<f4").reshape(-1, 7, 7, 1280)
    ref_f = ref_f.transpose(0, 3, 1, 2).astype(np.float64)
    ref_p = np.fromfile(os.path.join(scratch, "probabilities.bin"), "<f4").reshape(-1, 5)
    ref_b10 = np.fromfile(os.path.join(scratch, "block_10.bin"), "<f4").reshape(-1, 14, 14, 96)
    ref_b10 = ref_b10.transpose(0, 3, 1, 2).astype(np.float64)

    rgb = model(arrays, True)
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    feats = run(rgb, x_nchw)
    with torch.no_grad():
        probs = NsfwHead(arrays)(torch.from_numpy(feats)).numpy()
    names = ["radiograph", "rgb noise", "grey noise"]
    for j, name in enumerate(names):
        check("features %s (RGB torch vs TF.js)" % name, rel_diff(feats[j], ref_f[j]) <= TOLERANCE,
              "relative max diff %.3g, max |ref| %.3g" % (rel_diff(feats[j], ref_f[j]),
                                                         np.abs(ref_f[j]).max()))
        d = float(np.abs(probs[j] - ref_p[j]).max())
        check("probabilities %s" % name, d <= PROB_TOLERANCE,
              "max diff %.3g (TF.js %s)" % (d, np.round(ref_p[j].astype(np.float64), 4).tolist()))
    # the references must not be degenerate, or the comparisons above prove little
    check("reference features vary", all(np.std(ref_f[j]) > 0.05 for j in range(3)),
          "std %s" % [round(float(np.std(f)), 3) for f in ref_f])

    # One channel, cxrd's input: pixel * 2/255 - 1, Conv1 folded. Against TF.js directly and
    # against the RGB module on the same replicated grey images.
    grey = model(arrays, False)
    y = u8[grey_rows, :, :, :1].transpose(0, 3, 1, 2).astype(np.float32) * np.float32(
        2.0 / 255.0) - np.float32(1.0)
    y = np.ascontiguousarray(y)
    gf = run(grey, y)
    for i, j in enumerate(grey_rows):
        check("one-channel %s vs RGB torch" % names[j], rel_diff(gf[i], feats[j]) <= TOLERANCE,
              "relative max diff %.3g" % rel_diff(gf[i], feats[j]))
        check("one-channel %s vs TF.js" % names[j], rel_diff(gf[i], ref_f[j]) <= TOLERANCE,
              "relative max diff %.3g" % rel_diff(gf[i], ref_f[j]))

    # Truncated after block_10 (linear output, 1/16), one channel, from the CLI's weights below.
    b10 = P.MobileNetV2Features(last="block_10")
    b10.load_state_dict({k: v for k, v in P.convert(arrays).items() if k in b10.state_dict()})
    b10.eval()
    bf = run(b10, y)
    for i, j in enumerate(grey_rows):
        d = rel_diff(bf[i], ref_b10[j])
        check("block_10 one-channel %s vs TF.js" % names[j], d <= TOLERANCE and
              bf.shape[1:] == (96, 14, 14), "relative max diff %.3g, max |ref| %.3g" % (
                  d, np.abs(ref_b10[j]).max()))

    # The comparisons can fail: each mistake below must be far outside the tolerance.
    bad = model(arrays, True)
    bad.k["Conv1"].weight.data = bad.k["Conv1"].weight.data.transpose(2, 3).contiguous()
    d = rel_diff(run(bad, x_nchw), ref_f)
    check("caught: Conv1 kernel H/W transposed", d > 100 * TOLERANCE, "relative diff %.3g" % d)
    bad = model(arrays, True)
    bad.pad = ((1, 1), (1, 1))
    d = rel_diff(run(bad, x_nchw), ref_f)
    check("caught: symmetric padding", d > 100 * TOLERANCE, "relative diff %.3g" % d)
    bad = model(arrays, False)
    bad.input_pad_value = 0.0
    d = rel_diff(run(bad, y), feats[grey_rows])
    check("caught: one-channel input padded with 0", d > 100 * TOLERANCE,
          "relative diff %.3g" % d)

    # The CLI's saved state dict and provenance.
    pt = os.path.join(scratch, "mobilenet_v2.pt")
    P.main(["--out", pt])
    saved = P.load_features(pt)
    saved.eval()
    check("CLI state dict", np.array_equal(run(saved, y), gf), "same outputs as the conversion")
    saved = P.load_features(pt, last="block_10").eval()
    check("CLI state dict, last=block_10", saved.out_channels == 96 and
          np.array_equal(run(saved, y), bf), "same outputs as the conversion")
    with open(os.path.join(scratch, "mobilenet_v2.json")) as f:
        prov = json.load(f)
    lock = P.lock_entry("nsfwjs")
    check("provenance", prov["npm_integrity"] == lock["integrity"] and prov["license"] == "MIT"
          and prov["version"] == "4.4.0", "%s@%s %s" % (prov["package"], prov["version"],
                                                        prov["npm_integrity"][:20]))

    # output_stride 16 keeps the weights, halves the stride, and fits ContractModel.
    from contract import ContractModel
    os16 = model(arrays, False, output_stride=16)
    cm = ContractModel(os16, os16.out_channels).eval()
    with torch.no_grad():
        p, cam = cm(torch.zeros(1, 1, 256, 256))
    check("output_stride 16 under ContractModel", cam.shape[2:] == (16, 16) and
          p.shape == (1, len(cm.labels)), "cam %s" % (tuple(cam.shape),))
    print("%d checks failed" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
