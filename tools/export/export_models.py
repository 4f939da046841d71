#!/usr/bin/python3
"""Exports torchvision CNN classifiers as cxrd contract models (ONNX) with random weights, for
the runtime's parity tests and benchmarks, and optionally writes PyTorch's outputs for a given
input so that a test compares both frameworks on exactly the same model and input.

    /usr/bin/python3 tools/export/export_models.py --arch densenet121 --size 224 --out m.onnx \
        [--seed 0] [--reference-input in.npy --reference-out refdir/]

Random weights are not left at their initial values: BatchNorm statistics are calibrated on
random images and the classifier is scaled so that logits spread around 0. An untouched random
network saturates (probabilities stuck at 0 or 1), which would make a parity test pass
trivially. Run with /usr/bin/python3 (Debian's python3-torch, python3-torchvision, python3-onnx).
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import torch
import torchvision
from torch import nn

sys.dont_write_bytecode = True  # never leave __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contract  # noqa: E402  (the model contract lives next to this script)

ARCHS = ("densenet121", "resnet50", "mobilenet_v3_large", "efficientnet_b0",
         "mobilenet_v2_keras", "mobilenet_v2_keras_os16", "mobilenet_v2_keras_b10")
TRAIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train")

# The input mapping stored in cxr.preprocess: 8-bit pixel / 127.5 - 1, i.e. [-1, 1].
INPUT_SCALE = 1.0 / 127.5
INPUT_OFFSET = -1.0
CALIBRATION_SIZE = 256


def one_channel(conv):
    """A copy of conv's configuration taking a single (grey) input channel."""
    return nn.Conv2d(1, conv.out_channels, conv.kernel_size, stride=conv.stride,
                     padding=conv.padding, dilation=conv.dilation, groups=1,
                     bias=conv.bias is not None)


def build_backbone(arch):
    """Returns (backbone, feature_channels): torchvision's feature extractor up to the last
    feature map, with a one-channel stem. Exactly the layers torchvision's own forward runs
    before its pooling and classifier."""
    models = torchvision.models
    if arch == "densenet121":
        net = models.densenet121(weights=None)
        net.features.conv0 = one_channel(net.features.conv0)
        # DenseNet's forward applies a ReLU after norm5, outside `features`.
        return nn.Sequential(net.features, nn.ReLU()), net.classifier.in_features
    if arch == "resnet50":
        net = models.resnet50(weights=None)
        net.conv1 = one_channel(net.conv1)
        layers = [net.conv1, net.bn1, net.relu, net.maxpool,
                  net.layer1, net.layer2, net.layer3, net.layer4]
        return nn.Sequential(*layers), net.fc.in_features
    if arch == "mobilenet_v3_large":
        net = models.mobilenet_v3_large(weights=None)
        net.features[0][0] = one_channel(net.features[0][0])
        return net.features, net.features[-1][0].out_channels
    if arch == "efficientnet_b0":
        net = models.efficientnet_b0(weights=None)
        net.features[0][0] = one_channel(net.features[0][0])
        return net.features, net.features[-1][0].out_channels
    if arch.startswith("mobilenet_v2_keras"):
        # tools/train/pretrained.py's one-channel Keras MobileNetV2 (asymmetric Pad nodes,
        # Pad value -1, dilated depthwise at output stride 16); random weights here too.
        sys.path.insert(0, TRAIN_DIR)
        import pretrained

        net = pretrained.MobileNetV2Features(16 if arch.endswith("_os16") else 32,
                                             last="block_10" if arch.endswith("_b10") else None)
        return net, net.out_channels
    raise ValueError("unknown architecture %r (one of %s)" % (arch, ", ".join(ARCHS)))


def random_images(generator, count, size):
    """Smooth random grey images in the model's input range [-1, 1]: white noise blurred and
    rescaled, closer to radiograph statistics than raw noise."""
    noise = torch.rand(count, 1, size // 8, size // 8, generator=generator)
    up = nn.functional.interpolate(noise, size=(size, size), mode="bilinear",
                                   align_corners=False)
    detail = torch.rand(count, 1, size, size, generator=generator)
    return (0.8 * up + 0.2 * detail) * 2.0 - 1.0


def sample_input(size, seed):
    """One float32 [1,1,size,size] test image from the calibration distribution (activations of
    pure noise, unlike anything the BatchNorm statistics saw, would explode)."""
    generator = torch.Generator().manual_seed(seed)
    return random_images(generator, 1, size).numpy().astype(np.float32)


def calibrate(model, size, generator):
    """Gives the random network realistic activations: random BatchNorm affine parameters,
    running statistics measured on random images, a classifier scaled to logits of spread ~1.5
    around 0, and non-trivial Platt parameters (so the Mul/Add after the pooling are exercised).
    Statistics are measured at no more than CALIBRATION_SIZE pixels (they hardly depend on the
    image size, and large exports would otherwise take minutes)."""
    size = min(size, CALIBRATION_SIZE)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
                module.reset_running_stats()
                module.momentum = None  # cumulative average over the calibration batches
        model.train()
        model(random_images(generator, 4, size))
        model.eval()
        cam, logits = model.cam_and_logits(random_images(generator, 4, size))
        spread = float(logits.std())
        if spread > 0:
            model.classifier.weight.mul_(1.5 / spread)
            logits = (logits - model.bias) * (1.5 / spread) + model.bias
        model.bias.sub_(logits.mean(dim=0))
        k = model.bias.numel()
        model.platt_scale.copy_(torch.empty(k).uniform_(0.7, 1.3, generator=generator))
        model.platt_offset.copy_(torch.empty(k).normal_(0.0, 0.3, generator=generator))


def build_model(arch, size, seed):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    backbone, channels = build_backbone(arch)
    model = contract.ContractModel(backbone, channels)
    calibrate(model, size, generator)
    return model.eval()


def metadata(arch, size, seed):
    labels = contract.FINDINGS
    return contract.default_metadata(
        labels, {name: 0.5 for name in labels},
        contract.preprocess_json(size, size, INPUT_SCALE, INPUT_OFFSET),
        "test-%s-%d-seed%d" % (arch, size, seed),
        "Test model for the cxrd runtime: %s at %dx%d with random weights (seed %d). "
        "It detects nothing; not a medical device, never for clinical use." % (arch, size, size,
                                                                                seed))


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_atomic(path, write):
    """write(tmp_path) into a temporary file next to path, fsync, then rename over path."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_npy_atomic(path, array):
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)
    save_atomic(path, write)


def export(arch, size, seed, out):
    model = build_model(arch, size, seed)
    save_atomic(out, lambda tmp: contract.export_onnx(model, tmp, size, size,
                                                      metadata(arch, size, seed)))
    return model


def write_reference(model, size, input_path, out_dir):
    """PyTorch's probabilities and cam for the float32 [1,1,size,size] array in input_path."""
    image = np.load(input_path)
    if image.dtype != np.float32 or image.shape != (1, 1, size, size):
        raise SystemExit("export_models: %s must be float32 [1,1,%d,%d], not %s %s"
                         % (input_path, size, size, image.dtype, image.shape))
    os.makedirs(out_dir, exist_ok=True)
    with torch.no_grad():
        probabilities, cam = model(torch.from_numpy(image))
    save_npy_atomic(os.path.join(out_dir, "probabilities.npy"),
                    probabilities.numpy().astype(np.float32))
    save_npy_atomic(os.path.join(out_dir, "cam.npy"), cam.numpy().astype(np.float32))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, choices=ARCHS)
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-input", metavar="PATH",
                        help="also write a test image (float32 .npy [1,1,size,size]) drawn "
                        "from the calibration distribution with --input-seed")
    parser.add_argument("--input-seed", type=int, default=1)
    parser.add_argument("--reference-input", help="float32 .npy [1,1,size,size] to run")
    parser.add_argument("--reference-out", help="folder for PyTorch's probabilities.npy, cam.npy")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if (args.reference_input is None) != (args.reference_out is None):
        parser.error("--reference-input and --reference-out go together")
    if args.size < 32 or args.size > 4096:
        parser.error("--size must be within 32..4096")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model = export(args.arch, args.size, args.seed, args.out)
    if args.write_input:
        save_npy_atomic(args.write_input, sample_input(args.size, args.input_seed))
    if args.reference_input:
        write_reference(model, args.size, args.reference_input, args.reference_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
