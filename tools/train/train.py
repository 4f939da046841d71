#!/usr/bin/python3
"""Trains cxrd's default model from the labelled folder, validates it (the checks that the
source confound cannot fake), calibrates it, exports models/cxr-default.onnx through
tools/export/contract.py and writes models/MODEL_CARD.md with the run's numbers.

    /usr/bin/python3 tools/train/train.py --data ../shared/data/cxr --out models/

Fixed seeds; the work folder (--work) keeps the image cache, the checkpoint and the metrics, so
`--eval-only` can redo validation, export and card from a finished run."""
import argparse
import copy
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "export"))

import contract  # noqa: E402
import data as D  # noqa: E402
import labels as L  # noqa: E402
import teacher as KD  # noqa: E402
from model import Backbone, Ensemble, SourceHeads  # noqa: E402

TB = L.INDEX["Tuberculosis"]
CALC = L.INDEX["Calcification"]
LESION_INSIDE = 0.25  # a map cell at least this much covered by a box is lesion (as lesion_head)


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


BACKBONES = ("resnet", "mobilenet_v2", "mobilenet_v2_b10")


def make_backbone(cfg):
    """One member's backbone, randomly initialised: the narrow ResNet (model.py) or MobileNetV2
    (pretrained.py), whole or up to block_10 (96 channels at 1/16). Settings a checkpoint of
    an older recipe lacks take their 1.x values."""
    kind = cfg.get("backbone", "resnet")
    stride = cfg.get("output_stride", 16)
    if kind == "resnet":
        if stride != 16:
            raise SystemExit("the ResNet backbone has output stride 16 only")
        return Backbone(tuple(cfg["widths"]), tuple(cfg["blocks"]))
    import pretrained as P
    if kind == "mobilenet_v2":
        return P.MobileNetV2Features(stride)
    if kind == "mobilenet_v2_b10":
        return P.MobileNetV2Features(stride, last="block_10")
    raise SystemExit("unknown backbone %r (known: %s)" % (kind, ", ".join(BACKBONES)))


def pretrained_path(cfg):
    """cfg['pretrained'] (relative paths from the repository root, so that recipes compare
    equal across machines), or None for random initialisation."""
    path = cfg.get("pretrained", "") if cfg.get("backbone", "resnet") != "resnet" else ""
    return (path if os.path.isabs(path) else os.path.join(ROOT, path)) if path else None


def load_pretrained(backbone, cfg):
    """Loads the converted natural-image weights into a MobileNetV2 backbone; returns their
    provenance (the JSON tools/train/pretrained.py wrote beside them, checked against the
    file's SHA-256) or None when the backbone starts from random weights."""
    path = pretrained_path(cfg)
    if path is None:
        return None
    if not os.path.exists(path):
        raise SystemExit("%s: no pretrained weights (make them with tools/train/pretrained.py, "
                         "or --set pretrained='\"\"' for random initialisation)" % path)
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    with open(os.path.splitext(path)[0] + ".json") as fh:
        prov = json.load(fh)
    if prov.get("state_dict_sha256") != digest:
        raise SystemExit("%s: its SHA-256 differs from its provenance JSON's" % path)
    own = backbone.state_dict()
    state = torch.load(path, map_location="cpu")
    backbone.load_state_dict({k: v for k, v in state.items() if k in own})
    prov = {k: v for k, v in prov.items() if k != "keras_not_trainable"}
    return dict(prov, file=cfg["pretrained"], tensors_loaded=len(own))


def build_model(cfg):
    """The contract model of cfg (cfg['members'] backbones side by side when above 1) and the
    source heads that train one member."""
    backbones = [make_backbone(cfg) for _ in range(cfg.get("members", 1))]
    backbone = backbones[0] if len(backbones) == 1 else Ensemble(backbones)
    pool = cfg.get("tb_pool", "mean")
    if pool not in ("mean", "max"):
        raise SystemExit("tb_pool must be mean or max")
    model = contract.ContractModel(backbone, backbone.out_channels, L.FINDINGS,
                                   ["Tuberculosis"] if pool == "max" else ())
    heads = SourceHeads(backbone.out_channels, len(D.TB_SOURCES), len(D.OTHER_SOURCES))
    return model, heads


def sampling_weights(folder, train_idx, cfg):
    """Per-image sampling probabilities: NIH images (the nine findings) get cfg['nih_share'] of
    each batch; TB and non-TB non-NIH images split the rest, each collection equally within its
    class, so that no single source dominates a class."""
    ds = folder.dataset[train_idx]
    tb = folder.targets[train_idx, TB]
    w = np.zeros(len(train_idx))
    nih = np.isin(ds, D.NIH_ALL)
    w[nih] = cfg["nih_share"] / nih.sum()
    rest = 1.0 - cfg["nih_share"]
    for cls in (0, 1):
        groups = sorted({d for d, k, t in zip(ds, nih, tb) if not k and t == cls})
        for g in groups:
            sel = (ds == g) & (tb == cls) & ~nih
            w[sel] = rest / 2 / len(groups) / sel.sum()
    return w / w.sum()


def source_targets(folder, idx):
    """Class-conditional source labels: index into TB_SOURCES for TB images, into
    OTHER_SOURCES for non-TB images."""
    tb_t = np.full(len(idx), -100, np.int64)
    ot_t = np.full(len(idx), -100, np.int64)
    for j, i in enumerate(idx):
        g = D.source_group(folder.dataset[i])
        if folder.targets[i, TB] == 1:
            tb_t[j] = D.TB_SOURCES.index(g)
        else:
            ot_t[j] = D.OTHER_SOURCES.index(g)
    return torch.from_numpy(tb_t), torch.from_numpy(ot_t)


def label_weights(folder, normal_weight):
    """Per-image, per-finding loss weights: the labels' mask, plus (normal_weight > 0) the nine
    NIH findings as negatives of that weight on the normals of the other collections. Those are
    radiographs read as normal on other machines, so the findings learn what a normal chest
    looks like beyond NIH's scanners."""
    weights = folder.mask.copy()
    if normal_weight > 0:
        normals = ~np.isin(folder.dataset, D.NIH_ALL) & (folder.targets[:, TB] == 0)
        cols = [L.INDEX[f] for f in L.NIH_FINDINGS]
        weights[np.ix_(normals, cols)] = normal_weight
    return weights


def load_model(spec):
    """A training checkpoint, or checkpoints of consecutive seeds joined by '+' (their
    ensemble, as --members-from combines them): (model, cfg)."""
    if "+" in spec:
        model, cfg, _ = members_from(spec.split("+"), None)
    else:
        model, cfg, _ = load_checkpoint(spec)
    return model, cfg


def masked_bce(logits, targets, mask):
    """Per-finding mean of BCE over the images that label it, averaged over the findings that
    have a label in the batch (TB and the NIH findings weigh the same)."""
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * mask
    count = mask.sum(0)
    have = count > 0
    if not have.any():  # tb_loss lesion: a batch without NIH images labels nothing
        return loss.sum() * 0.0
    return (loss.sum(0)[have] / count[have]).mean()


def box_loss(cam_tb, mask_small, has_box):
    """Pointing loss for the TB class map: -log of the share of the map's spatial softmax that
    falls inside the lesion boxes. Shift-invariant, so it moves where the map peaks without
    pulling the TB logit (mean of the map) up or down."""
    if has_box.sum() == 0:
        return cam_tb.new_zeros(())
    c = cam_tb[has_box].flatten(1)
    m = mask_small[has_box].flatten(1)
    logp = F.log_softmax(c, 1)
    inside = torch.logsumexp(logp + torch.log(m.clamp_min(1e-6)), 1)
    return -inside.mean()


def pooled_logits(model, cam):
    """The logits in training: each map's mean as 1.x computed it (so that 1.x recipes stay
    bit-reproducible), the maximum for the model's max-pooled classes, + bias."""
    mean = cam.mean((2, 3))
    if model.max_pool_labels:
        mean = mean * model.pool_mean_mask + contract.map_max(cam) * model.pool_max_mask
    return mean + model.bias


def nih_box_bank(folder, train_idx):
    """NIH's own boxes of the training images as a uint8 tensor [rows + 1, findings, 256, 256]
    (row 0 empty), each image's row index (0 when it has none) and the findings of the
    channels: what the NIH pointing loss (setting nih_box_weight) warps with the images."""
    findings = sorted(folder.nih_boxes)
    files = sorted({folder.files[i] for i in train_idx
                    if any(folder.files[i] in folder.nih_boxes[f] for f in findings)})
    row_of = {f: r for r, f in enumerate(files, 1)}
    rows = np.array([row_of.get(f, 0) for f in folder.files], np.int64)
    bank = torch.zeros(len(files) + 1, len(findings), D.CACHE_SIDE, D.CACHE_SIDE,
                       dtype=torch.uint8)
    for f, r in row_of.items():
        for c, finding in enumerate(findings):
            if f in folder.nih_boxes[finding]:
                bank[r, c] = torch.from_numpy(D.box_mask(folder.nih_boxes[finding][f]) > 0)
    return bank, rows, [L.INDEX[f] for f in findings]


def nih_pointing_loss(cam, cover, channels):
    """box_loss of each boxed NIH finding's class map on the batch's images with its boxes,
    averaged over the findings present. Cells at least LESION_INSIDE covered count as inside,
    or for a box smaller than that (a nodule) the cells it covers most."""
    losses = []
    for c, k in enumerate(channels):
        cv = cover[:, c]
        most = cv.flatten(1).max(1).values
        has = most > 0
        if has.any():
            inside = (cv >= torch.minimum(most, torch.full_like(most, LESION_INSIDE))
                      .view(-1, 1, 1)).float()
            losses.append(box_loss(cam[:, k], inside, has))
    return torch.stack(losses).mean() if losses else cam.new_zeros(())


def lesion_targets(cover):
    """Cell targets of the lesion loss from each cell's box cover (share of the cell inside a
    lesion box): 1 at >= LESION_INSIDE, 0 where no box touches the cell; cells partly covered
    are left out (weight 0). Returns (targets, weights), both shaped like cover."""
    inside = cover >= LESION_INSIDE
    return inside.float(), (inside | (cover <= 0)).float()


def lesion_cells_loss(cell_logits, cover):
    """BCE of the map's cells against lesion_targets of their cover, mean over labelled cells."""
    t, w = lesion_targets(cover)
    return (F.binary_cross_entropy_with_logits(cell_logits, t, reduction="none") * w).sum() \
        / w.sum().clamp_min(1.0)


def lesion_loss(cell_logits, cover, has_box, negatives, neg_weight):
    """Cell-level BCE of the TB class map (logit units, bias included): within each boxed image
    its lesion cells against its cells outside every box (one image, one source: the source
    cannot separate them), mean over the batch's labelled cells; plus, weighted neg_weight,
    every cell of the `negatives` images (NIH No Finding) as 0."""
    loss = cell_logits.new_zeros(())
    if has_box.any():
        loss = loss + lesion_cells_loss(cell_logits[has_box], cover[has_box])
    if neg_weight > 0 and negatives.any():
        c = cell_logits[negatives]
        loss = loss + neg_weight * F.binary_cross_entropy_with_logits(c, torch.zeros_like(c))
    return loss


def ramp(progress, start, full):
    if progress <= start:
        return 0.0
    return min(1.0, (progress - start) / max(full - start, 1e-9))


@torch.no_grad()
def update_ema(ema, model, decay):
    """Weights: ema <- decay * ema + (1 - decay) * model. BatchNorm statistics are copied (they
    already are running averages)."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def device_name(dev):
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    import evaluate as E
    return E.cpu_name()


def train(folder, cfg, leave_out=None, device="cpu", targets=None, pseudo=None):
    """Trains one member (cfg's seed) on `targets` and the TB lesion cells `pseudo`
    (teacher.teacher_targets and teacher.tb_pseudo_labels of cfg when None); returns the
    model and a summary of the run."""
    cfg = dict(cfg, members=1)
    torch.manual_seed(cfg["seed"])
    rng = np.random.RandomState(cfg["seed"])
    dev = torch.device(device)
    if cfg.get("tb_loss", "image") not in ("image", "lesion"):
        raise SystemExit("tb_loss must be image or lesion")
    lesion = cfg.get("tb_loss", "image") == "lesion"
    model, heads = build_model(cfg)
    provenance = load_pretrained(model.backbone, cfg)
    # on a GPU: NHWC layout and bf16 autocast below (tensor cores); on a CPU as before
    cuda = dev.type == "cuda"
    torch.backends.cudnn.benchmark = cuda
    model.to(dev, memory_format=torch.channels_last if cuda else torch.preserve_format)
    heads.to(dev)
    train_idx = np.flatnonzero(~folder.is_val)
    if leave_out:
        keep = ~((folder.dataset[train_idx] == leave_out) & (folder.targets[train_idx, TB] == 1))
        train_idx = train_idx[keep]
    probs = sampling_weights(folder, train_idx, cfg)
    images = folder.images
    if cfg["train_jpeg_quality"]:
        images = images.copy()
        for i in train_idx:
            images[i] = D.jpeg_round_trip(images[i], cfg["train_jpeg_quality"])
    aug = D.Augmenter(cfg["size"], rng, dev, cfg["seed"], cfg["input_equalize"],
                     cfg["resample_aug"], cfg["jpeg_aug"])
    is_nih = np.isin(folder.dataset, D.NIH_ALL)
    no_finding = is_nih & np.array([r == "No Finding" for r in folder.nih_raw])
    neg_weight = cfg.get("lesion_negatives", 0.0) if lesion else 0.0
    weights = label_weights(folder, cfg.get("normal_negatives", 0.0))
    if targets is None:
        targets = KD.teacher_targets(folder, cfg)
    # exponential moving average of the weights (ema_decay 0: off); the run returns the average
    ema = copy.deepcopy(model) if cfg["ema_decay"] > 0 else None
    params = list(model.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    # lesion masks (255 = lesion) of the TB training images that have TBX11K boxes, then of
    # those the teacher labels (tb_pseudo_weight), as one uint8 tensor on the device; row 0
    # is the empty mask of every other image
    boxed = [i for i in train_idx
             if folder.files[i] in folder.boxes and folder.targets[i, TB] == 1]
    banks = [torch.zeros(1, D.CACHE_SIDE, D.CACHE_SIDE, dtype=torch.uint8)]
    banks += [torch.from_numpy(D.box_mask(folder.boxes[folder.files[i]]) > 0)[None]
              .to(torch.uint8) * 255 for i in boxed]
    pseudo_weight = cfg.get("tb_pseudo_weight", 0.0) if lesion else 0.0
    pseudo, pseudo_masks = KD.tb_pseudo_labels(folder, cfg) if pseudo is None else pseudo
    keep = np.isin(pseudo, train_idx)  # a leave-out run trains without some TB images
    pseudo = pseudo[keep]
    banks.append(pseudo_masks[torch.from_numpy(keep)])
    mask_row = np.zeros(folder.n, np.int64)
    mask_row[boxed] = np.arange(1, len(boxed) + 1)
    mask_row[pseudo] = np.arange(len(boxed) + 1, len(boxed) + len(pseudo) + 1)
    is_pseudo = np.zeros(folder.n, bool)
    is_pseudo[pseudo] = True
    mask_bank = torch.cat(banks).to(dev)
    nih_box_weight = cfg.get("nih_box_weight", 0.0)
    if nih_box_weight > 0:
        nih_bank, nih_row, nih_channels = nih_box_bank(folder, train_idx)
        nih_bank = nih_bank.to(dev)
        log("NIH pointing loss: %d training images with boxes" % (len(nih_bank) - 1))
    steps, bs = cfg["steps"], cfg["batch"]
    t0 = time.time()
    max_s = cfg["max_minutes"] * 60
    model.train()
    heads.train()
    hist = []
    step = 0
    while True:
        elapsed = time.time() - t0
        # progress drives every schedule; it follows steps unless the time cap is nearer, so
        # a slowed run still anneals properly (recorded in the metrics when that happens)
        progress = max(step / steps, elapsed / max_s)
        if progress >= 1.0:
            break
        lr = cfg["lr"] * (min(1.0, step / cfg["warmup_steps"]) *
                          0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.choice(train_idx, bs, p=probs)
        masks = mask_bank[torch.from_numpy(mask_row[idx]).to(dev)].float() / 255
        if nih_box_weight > 0:  # channel 0 TB, then the NIH findings' boxes
            masks = torch.cat([masks[:, None],
                               nih_bank[torch.from_numpy(nih_row[idx]).to(dev)].float()], 1)
        # progressive resizing: cheap small inputs first, the export size at the end (the
        # network is fully convolutional, so BN statistics settle at the final size)
        size = [sz for start, sz in cfg["train_sizes"] if progress >= start][-1]
        x, m = aug(images[idx], masks, size,
                   np.where(is_nih[idx], cfg["nih_photometric"], 1.0),
                   np.where(is_nih[idx], cfg["nih_crop_min"], D.CROP_MIN_AREA),
                   np.where(is_nih[idx], cfg["nih_border_mask"], D.BORDER_MASK_RATE))
        y = torch.from_numpy(targets[idx]).to(dev)
        w = torch.from_numpy(weights[idx]).to(dev)
        if lesion:
            w[:, TB] = 0  # no image-level TB label: no collection-vs-collection contrast
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, torch.bfloat16, enabled=cuda):
            feats = model.backbone(x)
            cam = model.classifier(feats)
        feats, cam = feats.float(), cam.float()
        logits = pooled_logits(model, cam)
        loss_cls = masked_bce(logits, y, w)
        hp = torch.from_numpy(is_pseudo[idx]).to(dev)
        hb = torch.from_numpy(mask_row[idx] > 0).to(dev) & ~hp
        covers = F.adaptive_avg_pool2d(m, cam.shape[2:])
        cover = covers[:, 0]
        if lesion:
            # the TB map only from its cells (the pointing loss is off: this supervises it)
            ll = lesion_loss(cam[:, TB] + model.bias[TB], cover, hb,
                             torch.from_numpy(no_finding[idx]).to(dev), neg_weight)
            if hp.any():
                ll = ll + pseudo_weight * lesion_cells_loss(cam[hp, TB] + model.bias[TB],
                                                            cover[hp])
            lb, wb = cam.new_zeros(()), 0.0
        else:
            # cells at least a quarter covered by a box count as inside
            msmall = (cover >= LESION_INSIDE).float()
            hb = hb & (msmall.flatten(1).sum(1) > 0)
            lb = box_loss(cam[:, TB], msmall, hb)
            wb = cfg["box_weight"] * ramp(progress, cfg["box_start"], cfg["box_full"])
            ll = cam.new_zeros(())
        ln = cam.new_zeros(())
        if nih_box_weight > 0:
            ln = nih_pointing_loss(cam, covers[:, 1:], nih_channels)
        wn = nih_box_weight * ramp(progress, cfg["box_start"], cfg["box_full"])
        lam = cfg["adv_weight"] * (2 / (1 + math.exp(-10 * progress)) - 1)
        tb_src, ot_src = (t.to(dev) for t in source_targets(folder, idx))
        p_tb, p_ot = heads(feats.mean((2, 3)), lam)
        la = 0.0
        if (tb_src >= 0).any():
            la = la + F.cross_entropy(p_tb, tb_src, ignore_index=-100)
        if (ot_src >= 0).any():
            la = la + F.cross_entropy(p_ot, ot_src, ignore_index=-100)
        loss = loss_cls + wb * lb + la + cfg.get("lesion_weight", 1.0) * ll + wn * ln
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ema is not None:
            update_ema(ema, model, min(cfg["ema_decay"], (1 + step) / (10 + step)))
        hist.append((float(loss_cls), float(lb), float(la), float(ll), float(ln)))
        step += 1
        if step % 25 == 0 or step < 4 or os.environ.get("CXR_TRAIN_VERBOSE"):
            h = np.mean(hist[-25:], 0)
            log("step %d prog %.3f lr %.2e cls %.4f box %.3f (w %.3f) adv %.3f (lam %.3f) "
                "lesion %.4f nih-box %.3f %.1f img/s" % (step, progress, lr, h[0], h[1], wb, h[2],
                                                         lam, h[3], h[4],
                                                         step * bs / (time.time() - t0)))
    info = {"steps_done": step, "steps_planned": steps, "train_seconds": time.time() - t0,
            "time_capped": step < steps, "train_images": int(len(train_idx)),
            "threads": torch.get_num_threads(), "device": device_name(dev),
            "leave_out": leave_out, "pretrained": provenance,
            "last_losses": dict(zip(("cls", "box", "adv", "lesion", "nih_box"),
                                    np.mean(hist[-25:], 0).tolist() if hist else []))}
    log("trained %s" % json.dumps(info))
    if ema is not None:
        model = ema
    return model.cpu().to(memory_format=torch.contiguous_format), info


@torch.no_grad()
def combine(models, cfg):
    """The trained members as one contract model: the classifier takes each member's weights
    divided by the member count and the mean bias, so its cam and logits are the members'
    means."""
    if len(models) == 1:
        return models[0]
    ens, _ = build_model(dict(cfg, members=len(models)))
    for member, m in zip(ens.backbone.members, models):
        member.load_state_dict(m.backbone.state_dict())
    ens.classifier.weight.copy_(torch.cat([m.classifier.weight for m in models], 1) / len(models))
    ens.bias.copy_(torch.stack([m.bias for m in models]).mean(0))
    return ens.eval()


def ensemble_info(infos, leave_out):
    """One summary of the members' training runs (each kept under 'members')."""
    return {"members": infos, "steps_done": min(i["steps_done"] for i in infos),
            "steps_planned": infos[0]["steps_planned"],
            "train_seconds": sum(i["train_seconds"] for i in infos),
            "time_capped": any(i["time_capped"] for i in infos),
            "train_images": infos[0]["train_images"], "threads": infos[0]["threads"],
            "device": infos[0]["device"], "leave_out": leave_out,
            "pretrained": infos[0].get("pretrained")}


def train_members(folder, cfg, leave_out=None, device="cpu"):
    """cfg['members'] networks, one after another, at seeds seed, seed+1, ..."""
    models, infos = [], []
    # once: the teacher scores the training images before any member trains
    targets = KD.teacher_targets(folder, cfg)
    if cfg.get("teacher_weight", 0.0) > 0:
        log("soft targets of the NIH training images from the teacher %s" % cfg["teacher"])
    pseudo = KD.tb_pseudo_labels(folder, cfg)
    if len(pseudo[0]):
        log("TB lesion cells from the teacher %s on %d images" % (cfg["teacher"],
                                                                 len(pseudo[0])))
    for k in range(cfg["members"]):
        model, info = train(folder, dict(cfg, seed=cfg["seed"] + k), leave_out, device,
                            targets, pseudo)
        models.append(model)
        infos.append(dict(info, seed=cfg["seed"] + k))
    return combine(models, cfg), ensemble_info(infos, leave_out)


def same_recipe(a, b, ignore):
    """Whether two recipes agree on every setting but those in `ignore`."""
    return ({k: v for k, v in a.items() if k not in ignore} ==
            {k: v for k, v in b.items() if k not in ignore})


def members_from(paths, leave_out):
    """An ensemble of members trained elsewhere (e.g. side by side on a GPU with --train-only
    and --set members=1): their recipes must agree but for the seed, which must count up."""
    loaded = [load_checkpoint(p) for p in paths]
    cfg0 = loaded[0][1]
    for k, (_, cfg, info) in enumerate(loaded):
        if not same_recipe(cfg, cfg0, ("seed", "members")):
            raise SystemExit("%s: its recipe differs from %s's" % (paths[k], paths[0]))
        if cfg["seed"] != cfg0["seed"] + k or info.get("leave_out") != leave_out:
            raise SystemExit("%s: expected seed %d, leave-out %s" % (
                paths[k], cfg0["seed"] + k, leave_out))
    cfg = dict(cfg0, members=len(loaded))
    infos = [dict(info, seed=c["seed"], file=os.path.basename(p))
             for p, (_, c, info) in zip(paths, loaded)]
    return combine([m for m, _, _ in loaded], cfg), cfg, ensemble_info(infos, leave_out)


DEFAULTS = {
    "seed": 6, "size": 192, "train_sizes": [[0.0, 160], [0.6, 192]], "widths": [32, 64, 128, 192], "blocks": [1, 2, 2, 2],
    "batch": 32, "steps": 4000, "max_minutes": 60, "lr": 2e-3, "weight_decay": 5e-4,
    "warmup_steps": 40, "nih_share": 0.45, "box_weight": 0.2, "box_start": 0.25,
    "box_full": 0.5, "adv_weight": 0.1, "nih_photometric": 0.0,
    "nih_crop_min": D.CROP_MIN_AREA, "nih_border_mask": D.BORDER_MASK_RATE, "ema_decay": 0.998,
    "members": 3, "train_jpeg_quality": 90, "split": "v1",
    # 2.x settings (docs/training.md); these values keep the 1.x recipe
    "backbone": "resnet", "output_stride": 16, "pretrained": "build/pretrained/mobilenet_v2.pt",
    "tb_loss": "image", "lesion_weight": 1.0, "lesion_negatives": 0.0, "tb_pool": "mean",
    "nih_box_weight": 0.0, "input_equalize": False, "resample_aug": False,
    "jpeg_aug": 0.0, "normal_negatives": 0.0, "teacher": "", "teacher_weight": 0.0,
    "tb_pseudo_weight": 0.0,
}


def checkpoint_path(work, leave_out=None):
    name = "checkpoint-without-%s.pt" % leave_out if leave_out else "checkpoint.pt"
    return os.path.join(work, name)


def save_checkpoint(path, model, cfg, info):
    torch.save({"cfg": cfg, "info": info, "model": model.state_dict()}, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_checkpoint(path):
    saved = torch.load(path)
    cfg = dict(DEFAULTS, **saved["cfg"])  # settings newer than the checkpoint keep their default
    model, _ = build_model(cfg)
    model.load_state_dict(saved["model"])
    model.eval()
    return model, cfg, saved["info"]


def check_setting(key):
    if key not in DEFAULTS:
        raise SystemExit("unknown setting %r (known: %s)" % (key, ", ".join(DEFAULTS)))


def parse_overrides(pairs):
    """--set key=value (value as JSON): recipe changes without editing DEFAULTS."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        check_setting(key)
        out[key] = json.loads(value)
    return out


def read_recipe(path):
    """A recipe file (tools/train/recipes/*.json): settings that differ from DEFAULTS; keys
    starting with '_' are notes."""
    with open(path) as fh:
        recipe = {k: v for k, v in json.load(fh).items() if not k.startswith("_")}
    for key in recipe:
        check_setting(key)
    return recipe


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/cxr", help="labelled folder")
    ap.add_argument("--out", default="models/", help="where cxr-default.onnx and the card go")
    ap.add_argument("--samesource", default="../shared/data/cxr-tb-samesource",
                    help="same-source TB sets: split v2 calibrates TB on their select halves")
    ap.add_argument("--work", default="build/train", help="cache, checkpoint, metrics")
    ap.add_argument("--recipe", help="a recipe file of settings (e.g. "
                    "tools/train/recipes/cxr-default-2.2.json); --steps, --max-minutes and "
                    "--set apply after it")
    ap.add_argument("--steps", type=int, help="default %d" % DEFAULTS["steps"])
    ap.add_argument("--max-minutes", type=float, help="default %g" % DEFAULTS["max_minutes"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a recipe setting, e.g. --set batch=64")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="torch device for training (cpu, cuda)")
    ap.add_argument("--train-only", action="store_true", help="stop after saving the "
                    "checkpoint (validate later with --eval-only)")
    ap.add_argument("--eval-only", action="store_true", help="reuse the work folder's checkpoint")
    ap.add_argument("--leave-out", help="LOSO run: drop this TB collection from training and "
                    "add its TB AUC to the work folder's loso.json (no export)")
    ap.add_argument("--reexport", action="store_true", help="reuse work/checkpoint.pt and "
                    "work/metrics.json (adding work/loso.json) and export again: no validation")
    ap.add_argument("--members-from", nargs="+", metavar="CHECKPOINT", help="combine these "
                    "one-member checkpoints (seeds counting up) into the work folder's checkpoint "
                    "instead of training, then validate and export as usual")
    ap.add_argument("--seed-check", nargs="+", metavar="CHECKPOINT", help="one-member "
                    "checkpoints of the same recipe at other seeds: their ensemble's NIH AUCs go "
                    "into the card beside the model's")
    ap.add_argument("--note", help="a line for the card's training section (e.g. how the "
                    "members trained elsewhere got their data)")
    ap.add_argument("--write-teacher", metavar="NPZ", help="write what the recipe's teacher "
                    "gives the training images (the NIH findings' probabilities, the TB cells "
                    "of the TB images without boxes), a table the setting teacher reads, and "
                    "stop")
    ap.add_argument("--skip-export", action="store_true")
    ap.add_argument("--model-version", default="cxr-default-1.3")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = dict(DEFAULTS, **(read_recipe(args.recipe) if args.recipe else {}))
    if args.steps is not None:
        cfg["steps"] = args.steps
    if args.max_minutes is not None:
        cfg["max_minutes"] = args.max_minutes
    cfg.update(parse_overrides(args.set))
    os.makedirs(args.work, exist_ok=True)
    ckpt = checkpoint_path(args.work, args.leave_out)
    model = None
    if args.members_from:
        model, cfg, info = members_from(args.members_from, args.leave_out)
        save_checkpoint(ckpt, model, cfg, info)
    elif args.eval_only or args.reexport:
        model, cfg, info = load_checkpoint(ckpt)
    # the split of the recipe that made the model (a v2 checkpoint validates on v2's parts)
    folder = D.Folder(args.data, os.path.join(args.work, "cache"),
                      split=cfg.get("split", "v1"))
    log("data: %d images, %d validation" % (folder.n, folder.is_val.sum()))
    if args.write_teacher:
        KD.write_teacher(args.write_teacher, folder, cfg)
        return 0
    if model is None:
        model, info = train_members(folder, cfg, args.leave_out, args.device)
        save_checkpoint(ckpt, model, cfg, info)
        if args.train_only:
            return 0
    model.eval()
    import evaluate as E  # imported late: a long run picks up the latest checks
    loso_path = os.path.join(args.work, "loso.json")
    if args.leave_out:
        res = E.loso_check(model, folder, cfg, args.leave_out)
        res.update(info, config=cfg)
        allres = json.load(open(loso_path)) if os.path.exists(loso_path) else {}
        allres[args.leave_out] = res
        E.write_json(loso_path, allres)
        log("loso %s" % json.dumps(res))
        return 0
    if args.reexport:
        metrics = json.load(open(os.path.join(args.work, "metrics.json")))
    else:
        metrics = E.validate(model, folder, cfg, args.samesource)
        metrics["training"] = info
        metrics["config"] = cfg
    if os.path.exists(loso_path):
        metrics["loso"] = json.load(open(loso_path))
    if args.note:
        metrics["training"]["note"] = args.note
    if args.seed_check:
        other, other_cfg, other_info = members_from(args.seed_check, None)
        if not same_recipe(other_cfg, cfg, ("seed", "steps", "max_minutes")):
            raise SystemExit("--seed-check: the recipe differs from the model's")
        metrics["seed_check"] = E.seed_check(other, folder, cfg, other_info)
    E.write_json(os.path.join(args.work, "metrics.json"), metrics)
    if not args.skip_export:
        import card
        E.export(model, folder, cfg, metrics, args.out, args.work, args.model_version, card)
    log("done")
    return 0


if __name__ == "__main__":
    import heap
    heap.keep_freed_memory()
    sys.exit(main())
