"""The cxrd model contract in PyTorch: a CNN backbone wrapped so that its ONNX export has the
input `image` [1,1,H,W] and the outputs `probabilities` [1,K] and `cam` [1,K,h,w].

The classifier is a 1x1 convolution applied before global average pooling, which is the same
function as pooling first and then a linear layer (both are linear), so the class activation
maps come out of the forward pass at no extra cost:

    cam = conv1x1(features)                    # [1,K,h,w], no bias, in logit units
    logit = mean_hw(cam) + bias                # [1,K]
    probabilities = sigmoid(logit * a + c)     # per-class Platt scaling (a=1, c=0 untrained)

With max_pool_labels, those classes' logits are max_hw(cam) + bias instead (the most
lesion-like cell), exported as MaxPool over the whole map and constant 0/1 masks that pick the
mean or the max per class (the graph tools/train/lesion_head.py builds), not ReduceMax.

Run with /usr/bin/python3 (Debian's python3-torch, python3-onnx).
"""
import json
import warnings

import torch
from torch import nn

FINDINGS = [
    "Tuberculosis", "Cardiomegaly", "Pleural Thickening", "Pleural Effusion", "Pneumothorax",
    "Consolidation", "Atelectasis", "Nodule Mass", "Fibrosis", "Infiltration", "Calcification",
]


class _MapMax(torch.autograd.Function):
    """The maximum of each map [N,K,h,w] -> [N,K,1,1], exported as one MaxPool node whose only
    attribute is kernel_shape (what cxrd's runtime and tools/train/onnx_torch.py run)."""

    @staticmethod
    def forward(ctx, x):
        return torch.amax(x, (2, 3), keepdim=True)

    @staticmethod
    def symbolic(g, x):
        shape = x.type().sizes()
        with warnings.catch_warnings():  # torch 1.13 flags g.op on a Function's graph (1.14)
            warnings.simplefilter("ignore", FutureWarning)
            return g.op("MaxPool", x, kernel_shape_i=list(shape[2:4]))


def map_max(cam):
    """[N,K,h,w] -> [N,K]: each map's maximum (differentiable; one MaxPool when exported)."""
    if torch.onnx.is_in_onnx_export():
        return torch.flatten(_MapMax.apply(cam), 1)
    return torch.amax(cam, (2, 3))


class ContractModel(nn.Module):
    """backbone: module mapping [N,1,H,W] to a feature map [N,C,h,w]. max_pool_labels: the
    classes whose logit is the maximum of their map rather than its mean."""

    def __init__(self, backbone, feature_channels, labels=FINDINGS, max_pool_labels=()):
        super().__init__()
        self.backbone = backbone
        self.labels = list(labels)
        k = len(self.labels)
        self.classifier = nn.Conv2d(feature_channels, k, kernel_size=1, bias=False)
        self.bias = nn.Parameter(torch.zeros(k))
        # Platt scaling, fitted after training on validation data; identity until then.
        self.register_buffer("platt_scale", torch.ones(k))
        self.register_buffer("platt_offset", torch.zeros(k))
        self.max_pool_labels = [c for c in self.labels if c in set(max_pool_labels)]
        if len(self.max_pool_labels) != len(set(max_pool_labels)):
            raise ValueError("max_pool_labels names a class the model does not have")
        if self.max_pool_labels:
            # only then: checkpoints of mean-pooled models keep their state-dict keys
            max_mask = torch.tensor([float(c in self.max_pool_labels) for c in self.labels])
            self.register_buffer("pool_max_mask", max_mask)
            self.register_buffer("pool_mean_mask", 1 - max_mask)

    def pool(self, cam):
        """[N,K,h,w] -> [N,K]: the spatial mean of each map (the max for max_pool_labels)."""
        # GlobalAveragePool + Flatten in ONNX (ReduceMean is not among the runtime's operators).
        mean = torch.flatten(nn.functional.adaptive_avg_pool2d(cam, 1), 1)
        if not self.max_pool_labels:
            return mean
        return mean * self.pool_mean_mask + map_max(cam) * self.pool_max_mask

    def cam_and_logits(self, image):
        cam = self.classifier(self.backbone(image))
        return cam, self.pool(cam) + self.bias

    def forward(self, image):
        cam, logits = self.cam_and_logits(image)
        probabilities = torch.sigmoid(logits * self.platt_scale + self.platt_offset)
        return probabilities, cam


def preprocess_json(height, width, scale, offset, equalize=False):
    """cxr.preprocess: the network input is the rendered 8-bit grey image (bone bright), resized
    to width x height without keeping the aspect ratio, its grey histogram equalised when
    `equalize` (true or "histogram"; "clahe": contrast-limited adaptive, with the training
    tools' tiles and clip), then pixel * scale + offset."""
    preprocess = {"height": height, "width": width, "resize": "stretch",
                  "scale": scale, "offset": offset}
    if equalize == "clahe":
        import data
        preprocess.update(equalize="clahe", clahe_tiles=data.CLAHE_TILES,
                          clahe_clip=data.CLAHE_CLIP)
    elif equalize:
        preprocess["equalize"] = "histogram"
    return json.dumps(preprocess)


def export_onnx(model, path, height, width, metadata, opset=13):
    """Exports model (a ContractModel, in eval mode) to path and stores metadata (dict of str ->
    str, e.g. cxr.labels, cxr.thresholds, cxr.preprocess, cxr.model_version, cxr.model_card)
    in the ONNX metadata_props."""
    import onnx

    model.eval()
    example = torch.zeros(1, 1, height, width)
    with torch.no_grad():
        torch.onnx.export(model, example, path, input_names=["image"],
                          output_names=["probabilities", "cam"], opset_version=opset,
                          do_constant_folding=True)
    proto = onnx.load(path)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def default_metadata(labels, thresholds, preprocess, model_version, model_card=""):
    return {
        "cxr.labels": json.dumps(list(labels)),
        "cxr.thresholds": json.dumps(thresholds),
        "cxr.preprocess": preprocess,
        "cxr.model_version": model_version,
        "cxr.model_card": model_card,
    }
