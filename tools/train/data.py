"""Loads the labelled folder (labels.csv + images/), splits it (NIH by patient, the rest by
image, fixed seed), caches the decoded images as one uint8 array, and builds augmented training
batches in torch. Labels come from tools/train/labels.py (the 11 contract findings)."""
import csv
import functools
import hashlib
import io
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import labels as L
from jpeg_like import jpeg_like

CACHE_SIDE = 256
NIH_SETS = ("nih_darkcovidnet", "nih_chexnet_starter")
# Collections added to the folder after the 1.x models were trained: the v1 split never trains
# on them (so it still reproduces those runs' split), the v2 split does (by patient).
ADDED_AFTER_V1 = ("nih_radsim",)
NIH_ALL = NIH_SETS + ADDED_AFTER_V1
TB_SOURCES = ("tbx11k_tb", "rahman_tb_256_via_lundis", "lundis_course_tb")
# NIH's two subsets are one source (the same hospital and scanners).
OTHER_SOURCES = ("lundis_course_tb", "covidrad_normal_256_via_lundis", "nih")


def source_group(dataset):
    return "nih" if dataset in NIH_ALL else dataset


def patient(path):
    """NIH file names are <patient>_<study>.png."""
    return os.path.basename(path).split("_")[0]


class Folder:
    """Everything the run needs from the data folder, in labels.csv order."""

    def __init__(self, root, cache_dir, val_fraction=0.2, nih_val_fraction=0.3, seed=6,
                 split="v1"):
        self.root = root
        rows = L.read_folder_labels(os.path.join(root, "labels.csv"))
        self.rows = rows
        self.n = len(rows)
        self.files = [r.file for r in rows]
        self.dataset = np.array([r.dataset for r in rows])
        self.targets = np.stack([r.targets for r in rows]).astype(np.float32)
        self.mask = np.stack([r.mask for r in rows]).astype(np.float32)
        self.nih_raw = [r.raw for r in rows]
        v1_val = self._split(val_fraction, nih_val_fraction, seed)
        # Images no 1.x model saw, not even another study of the same patient.
        v1_patients = {patient(f) for f, v, ds in zip(self.files, v1_val, self.dataset)
                       if ds in NIH_ALL and not v}
        self.unseen_by_v1 = v1_val & np.array(
            [ds not in NIH_ALL or patient(f) not in v1_patients
             for f, ds in zip(self.files, self.dataset)])
        if split == "v1":
            self.role = np.where(v1_val, "val", "train")
        elif split == "v2":
            import splits  # noqa: E402 (the v2 split lives with the evidence it serves)
            self.role = splits.roles_v2(self)
        else:
            raise ValueError("unknown split %r" % split)
        self.is_val = self.role != "train"
        self.images = self._cache(cache_dir)
        self.boxes = read_boxes(os.path.join(root, "tbx11k_boxes.csv"))
        nih_path = os.path.join(root, "nih_boxes.csv")
        self.nih_boxes = read_nih_boxes(nih_path) if os.path.exists(nih_path) else {}

    def _split(self, val_fraction, nih_val_fraction, seed):
        rng = np.random.RandomState(seed)
        is_val = np.zeros(self.n, bool)
        nih = np.isin(self.dataset, NIH_SETS)
        # NIH file names are <patient>_<study>.png: all studies of a patient fall on one side.
        patients = sorted({patient(f) for f, k in zip(self.files, nih) if k})
        perm = rng.permutation(len(patients))
        val_patients = {patients[i] for i in perm[:int(round(nih_val_fraction * len(patients)))]}
        for i in np.flatnonzero(nih):
            is_val[i] = patient(self.files[i]) in val_patients
        is_val[np.isin(self.dataset, ADDED_AFTER_V1)] = True
        for ds in sorted(set(self.dataset) - set(NIH_ALL)):
            idx = np.flatnonzero(self.dataset == ds)
            tb = self.targets[idx, 0]
            for cls in (0, 1):  # stratified by TB label within each collection
                sub = idx[tb == cls]
                sub = sub[rng.permutation(len(sub))]
                is_val[sub[:int(round(val_fraction * len(sub)))]] = True
        return is_val

    def _cache(self, cache_dir):
        path = cache_path(cache_dir, self.files)
        if os.path.exists(path):
            return np.load(path, mmap_mode=None)
        os.makedirs(cache_dir, exist_ok=True)
        arr = np.zeros((self.n, CACHE_SIDE, CACHE_SIDE), np.uint8)
        for i, f in enumerate(self.files):
            arr[i] = load_grey(os.path.join(self.root, f), CACHE_SIDE, CACHE_SIDE)
        tmp = path + ".tmp.npy"
        np.save(tmp, arr)
        os.replace(tmp, path)
        return arr

    def eval_inputs(self, idx, size, equalized=False):
        """The network inputs exactly as cxrd builds them: the 8-bit image area-resized
        (stretch, resize_like_cxrd) to size x size, its histogram equalised when
        `equalized` (network_input), then pixel * 2/255 - 1. Returns float32 [N,1,size,size]."""
        out = np.zeros((len(idx), 1, size, size), np.float32)
        for j, i in enumerate(idx):
            u8 = load_u8(os.path.join(self.root, self.files[i]))
            out[j, 0] = network_input(u8, size, size, equalized=equalized)
        return out


def cache_path(cache_dir, files):
    """The image cache of a file list (its key is the list's hash)."""
    key = hashlib.sha1("\n".join(files).encode()).hexdigest()[:12]
    return os.path.join(cache_dir, "images-%d-%s.npy" % (CACHE_SIDE, key))


PIXEL_SCALE = 2.0 / 255.0
CROP_MIN_AREA = 0.6  # smallest random crop, as a fraction of the image area
BORDER_MASK_RATE = 0.3  # share of images whose borders get masked
PIXEL_OFFSET = -1.0


def load_grey(path, width, height):
    """8-bit grey, area-averaged (PIL BOX filter) to width x height without keeping aspect:
    the training cache. Network inputs use network_input (cxrd's resize)."""
    with Image.open(path) as im:
        im = im.convert("L")
        if im.size != (width, height):
            im = im.resize((width, height), Image.BOX)
        return np.asarray(im, np.uint8)


@functools.lru_cache(maxsize=16)
def axis_level_weights(n_in, n_out):
    """One axis of cxrd's resize as whole-number weights over one denominator: ([n_out, n_in]
    weights, denominator). When shrinking, output o averages source [o, o + 1) * n_in / n_out,
    partly covered pixels weighted by their coverage (PIL's BOX filter takes or leaves whole
    pixels, which moves a 256 -> 192 resize by up to 28 grey levels); when growing, bilinear
    between pixel centres. src/image/image_levels.c builds the same integers, and
    src/image/image_resample.c the same weights in float (axis_weights)."""
    w = np.zeros((n_out, n_in))
    if n_out < n_in:
        # in units of 1 / n_out: output o covers [o, o + 1) * n_in, source pixel i
        # [i, i + 1) * n_out, so each overlap is a whole number and the overlaps sum to n_in
        denominator = n_in
        for o in range(n_out):
            begin, end = o * n_in, (o + 1) * n_in
            for i in range(begin // n_out, min(n_in, -(-end // n_out))):
                w[o, i] = min(end, (i + 1) * n_out) - max(begin, i * n_out)
    elif n_out == n_in:
        denominator = 1
        np.fill_diagonal(w, 1)
    else:
        # the bilinear centre ((2 o + 1) n_in - n_out) / (2 n_out), clamped at 0
        denominator = 2 * n_out
        for o in range(n_out):
            left, fraction = divmod(max(0, (2 * o + 1) * n_in - n_out), denominator)
            if left >= n_in - 1:
                w[o, n_in - 1] = denominator
            else:
                w[o, left], w[o, left + 1] = denominator - fraction, fraction
    w.flags.writeable = False  # shared by the cache
    return w, denominator


@functools.lru_cache(maxsize=16)
def axis_weights(n_in, n_out):
    """[n_out, n_in] resampling matrix of one axis, as src/image/image_resample.c builds it:
    axis_level_weights over their denominator."""
    levels, denominator = axis_level_weights(n_in, n_out)
    w = levels / denominator
    w.flags.writeable = False  # shared by the cache
    return w


def resize_like_cxrd(grey, width, height):
    """A grey image [H,W] resized to width x height as cxrd resizes it for the network: float,
    unrounded."""
    rows, cols = grey.shape
    return axis_weights(rows, height) @ grey.astype(np.float64) @ axis_weights(cols, width).T


def resized_levels(u8, width, height):
    """A uint8 grey image [H,W] resized as resize_like_cxrd resizes it, rounded to 8 bits
    (halves up) exactly: the levels cxrd equalises. Float sums of an area average land on
    either side of a half by 1e-6, and such halves are common (docs/training.md), so the sum
    is taken in whole numbers (float64 holds them exactly: below 255 * 2**34 < 2**53)."""
    wy, dy = axis_level_weights(u8.shape[0], height)
    wx, dx = axis_level_weights(u8.shape[1], width)
    total = (wy @ u8.astype(np.float64) @ wx.T).astype(np.int64)
    denominator = dy * dx
    return ((2 * total + denominator) // (2 * denominator)).astype(np.uint8)


def load_u8(path):
    """An image file's 8-bit grey levels, at its own size."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), np.uint8)


def jpeg_round_trip(u8, quality):
    """The grey image after JPEG compression at `quality` and decoding (PIL, as the shipped
    members' GPU runs received their training images)."""
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("L"), np.uint8)


def read_boxes(path):
    """file -> list of (xmin, ymin, xmax, ymax) in the folder's 256x256 pixel coordinates."""
    boxes = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            boxes.setdefault(r["file"], []).append(
                tuple(float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")))
    return boxes


# nih_boxes.csv names -> contract findings (Pneumonia is not one of them)
NIH_BOX_FINDING = {"Atelectasis": "Atelectasis", "Cardiomegaly": "Cardiomegaly",
                   "Effusion": "Pleural Effusion", "Infiltrate": "Infiltration",
                   "Mass": "Nodule Mass", "Nodule": "Nodule Mass",
                   "Pneumothorax": "Pneumothorax"}


def read_nih_boxes(path):
    """contract finding -> {file: [boxes]} in the folder's 256-px coordinates."""
    out = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            f = NIH_BOX_FINDING.get(r["finding"])
            if f:
                out.setdefault(f, {}).setdefault(r["file"], []).append(
                    tuple(float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")))
    return out


def box_mask(box_list, side=CACHE_SIDE):
    m = np.zeros((side, side), np.float32)
    for x0, y0, x1, y1 in box_list:
        m[max(0, int(np.floor(y0))):min(side, int(np.ceil(y1))),
          max(0, int(np.floor(x0))):min(side, int(np.ceil(x1)))] = 1.0
    return m


def equalize(u8):
    """Histogram equalisation of uint8 images [K,H,W] (a torch tensor on any device), with
    cxrd's integer rounding (equalize() in src/image/image_tensor.c): the darkest grey present
    maps to 0, the brightest to 255. The source-hiding augmentation, and the input step of `"equalize": "histogram"`."""
    k = len(u8)
    flat = u8.reshape(k, -1).long()
    hist = torch.zeros(k, 256, dtype=torch.long, device=u8.device).scatter_add_(
        1, flat, torch.ones(flat.shape, dtype=torch.long, device=u8.device))
    cdf = hist.cumsum(1)
    lowest = cdf.gather(1, flat.min(1, keepdim=True).values)
    span = (cdf[:, -1:] - lowest).clamp_min(1)
    lut = (((cdf - lowest).clamp_min(0) * 510 + span) // (2 * span)).clamp_max(255)
    return lut.gather(1, flat).to(torch.uint8).reshape(u8.shape)


# Contrast-limited adaptive equalisation ("equalize": "clahe"): tiles per side and the clip
# limit as a multiple of a tile's mean bin count. The common radiography setting.
CLAHE_TILES = 8
CLAHE_CLIP = 2.0


def _clahe_axis(n, tiles):
    """Along one axis of n pixels cut into `tiles` tiles: each pixel's tile, and the two tiles
    whose centres bracket it with the second's weight w / d (integers; outside the outer
    centres one tile, w = 0, d = 1). Tile k covers [k*n//tiles, (k+1)*n//tiles)."""
    bound = [k * n // tiles for k in range(tiles + 1)]
    centre2 = [bound[k] + bound[k + 1] - 1 for k in range(tiles)]  # twice each centre
    tile = np.zeros(n, np.int64)
    first, second = np.zeros(n, np.int64), np.zeros(n, np.int64)
    w, d = np.zeros(n, np.int64), np.ones(n, np.int64)
    for x in range(n):
        tile[x] = np.searchsorted(bound, x, side="right") - 1
        p = 2 * x
        if p <= centre2[0]:
            continue
        if p >= centre2[-1]:
            first[x] = second[x] = tiles - 1
            continue
        k = np.searchsorted(centre2, p, side="right") - 1
        first[x], second[x] = k, k + 1
        w[x], d[x] = p - centre2[k], centre2[k + 1] - centre2[k]
    return tile, first, second, w, d, np.diff(bound)


def clahe(u8, tiles=CLAHE_TILES, clip=CLAHE_CLIP):
    """Contrast-limited adaptive histogram equalisation of uint8 images [K,H,W] (a torch
    tensor on any device), in integers as cxrd does it (clahe() in src/image/image_clahe.c):
    each tile's 256-bin histogram is clipped at max(1, floor(clip * pixels / 256)), the
    excess spread evenly over all bins, its cumulative count mapped to 0..255 (halves up),
    and each pixel's level mapped through the four nearest tiles' maps, blended bilinearly
    between tile centres and rounded halves up."""
    k, h, wd = u8.shape
    dev = u8.device
    ty, y0, y1, wy, dy, rows = (torch.from_numpy(a).to(dev) for a in _clahe_axis(h, tiles))
    tx, x0, x1, wx, dx, cols = (torch.from_numpy(a).to(dev) for a in _clahe_axis(wd, tiles))
    level = u8.long().reshape(k, -1)
    tile_of = (ty[:, None] * tiles + tx[None, :]).reshape(-1)
    hist = torch.zeros(k, tiles * tiles * 256, dtype=torch.long, device=dev).scatter_add_(
        1, tile_of[None] * 256 + level, torch.ones_like(level)).view(k, tiles * tiles, 256)
    pixels = (rows[:, None] * cols[None, :]).reshape(-1)                      # [T*T]
    limit = torch.tensor([max(1, int(np.floor(clip * int(n) / 256.0))) for n in pixels],
                         dtype=torch.long, device=dev)
    clipped = torch.minimum(hist, limit[None, :, None])
    excess = (hist - clipped).sum(-1, keepdim=True)                           # [K,T*T,1]
    g = torch.arange(256, device=dev)
    rest = excess % 256
    spread = excess // 256 + ((g + 1) * rest) // 256 - (g * rest) // 256
    cdf = (clipped + spread).cumsum(-1)
    lut = ((cdf * 510 + pixels[None, :, None]) // (2 * pixels[None, :, None])).clamp_max(255)
    lut = lut.reshape(k, -1)

    def mapped(ys, xs):
        t = (ys[:, None] * tiles + xs[None, :]).reshape(-1)
        return lut.gather(1, t[None] * 256 + level)

    wy2, dy2 = wy[:, None].expand(h, wd).reshape(-1), dy[:, None].expand(h, wd).reshape(-1)
    wx2, dx2 = wx[None, :].expand(h, wd).reshape(-1), dx[None, :].expand(h, wd).reshape(-1)
    top = (dx2 - wx2) * mapped(y0, x0) + wx2 * mapped(y0, x1)
    bottom = (dx2 - wx2) * mapped(y1, x0) + wx2 * mapped(y1, x1)
    num = (dy2 - wy2) * top + wy2 * bottom
    den = dx2 * dy2
    return ((2 * num + den) // (2 * den)).to(torch.uint8).reshape(k, h, wd)


def input_equalized(preprocess):
    """How cxr.preprocess (a dict) equalises the resized image: "histogram", "clahe" (with
    this module's tiles and clip, the only ones the tools build) or None."""
    mode = preprocess.get("equalize")
    if mode == "clahe" and (preprocess.get("clahe_tiles"), preprocess.get("clahe_clip")) != (
            CLAHE_TILES, CLAHE_CLIP):
        raise ValueError("cxr.preprocess CLAHE settings %r are not the tools' (%d tiles, clip "
                         "%g)" % (preprocess, CLAHE_TILES, CLAHE_CLIP))
    return mode


def equalized_u8(u8, mode):
    """uint8 images [K,H,W] (torch) equalised as `mode` says: "clahe", or any other true value
    for the histogram (recipes' `input_equalize` true)."""
    return clahe(u8) if mode == "clahe" else equalize(u8)


def network_input(u8, width, height, scale=PIXEL_SCALE, offset=PIXEL_OFFSET, equalized=False):
    """The network input [height, width] of a uint8 grey image [H,W] of any size, as cxrd
    builds it: resized (resize_like_cxrd), or with `equalized` (true or "histogram", or
    "clahe") its exact 8-bit levels (resized_levels) equalised; then * scale + offset."""
    if equalized:
        levels = resized_levels(u8, width, height)
        grey = equalized_u8(torch.from_numpy(levels)[None], equalized)[0].numpy()
    else:
        grey = resize_like_cxrd(u8, width, height)
    return (grey.astype(np.float64) * scale + offset).astype(np.float32)


def model_input(path, preprocess):
    """The network input [H,W] of an image file for a model's cxr.preprocess (a dict)."""
    return network_input(load_u8(path), preprocess["width"], preprocess["height"],
                         preprocess["scale"], preprocess["offset"], input_equalized(preprocess))


class Augmenter:
    """Batched augmentation in torch: lung-field-biased random crops (scale, aspect, shift,
    rotation in one affine warp), gamma, contrast/brightness, histogram equalisation, blur,
    noise, random border masking and (jpeg_rate) JPEG compression; the same warp is applied to
    the TB box masks. The random draws come from numpy (rng) on the CPU; the pixel work runs on
    `device`."""

    def __init__(self, size, rng, device="cpu", seed=0, equalize_input=False,
                 resample=False, jpeg_rate=0.0):
        self.size = size
        # the share of images JPEG-compressed last, at quality 30-95 (other sites' archives)
        self.jpeg_rate = jpeg_rate
        # resample: area-like warps (supersampled), random resolution loss and sharpening, so
        # the network sees how cxrd and other hospitals' pipelines resample (docs/training.md)
        self.resample = resample
        # equalise every output image last, as cxrd does at inference ("equalize"): true for
        # the histogram, "clahe" for contrast-limited adaptive equalisation
        self.equalize_input = equalize_input
        self.rng = rng
        self.device = torch.device(device)
        # the pixel noise is drawn where the batch lives (a GPU run draws it on the GPU)
        self.noise_gen = torch.Generator(device=self.device)
        self.noise_gen.manual_seed(seed)
        k = torch.tensor([1., 4., 6., 4., 1.])
        k = torch.outer(k, k)
        self.blur_kernel = (k / k.sum()).view(1, 1, 5, 5).to(self.device)

    def __call__(self, u8_batch, masks, size=None, photometric=None, crop_min=None,
                 border_mask=None):
        """u8_batch: uint8 numpy [B,256,256]; masks: torch [B,256,256] or [B,C,256,256] (box
        masks, zero where none); photometric: per-image strength of the intensity
        augmentation (gamma, contrast, brightness, equalisation), 1 when None; crop_min:
        per-image smallest crop, as a fraction of the image area, CROP_MIN_AREA when None;
        border_mask: per-image probability of border masking, BORDER_MASK_RATE when None.
        Returns (images [B,1,S,S] in network units, masks [B,C,S,S]) on the augmenter's
        device."""
        rng = self.rng
        dev = self.device
        b = len(u8_batch)
        s = size or self.size
        strength = np.ones(b) if photometric is None else np.asarray(photometric, np.float64)
        imgs = torch.from_numpy(np.ascontiguousarray(u8_batch)).to(dev)
        pick = torch.from_numpy(np.flatnonzero(rng.rand(b) < 0.2 * strength)).to(dev)
        if len(pick):
            imgs[pick] = equalize(imgs[pick])
        x = imgs.float().div_(255.0).unsqueeze(1)
        m = masks.to(dev).float()
        if m.dim() == 3:  # one mask per image, or [B,C,256,256]: one per channel
            m = m.unsqueeze(1)
        # affine: output grid [-1,1] -> input coordinates
        crop_min = (np.full(b, CROP_MIN_AREA) if crop_min is None
                    else np.asarray(crop_min, np.float64))
        scale = np.sqrt(rng.uniform(crop_min, 1.0, b))       # side fraction of the crop
        aspect = np.exp(rng.uniform(-0.1, 0.1, b))
        sx, sy = scale * aspect, scale / aspect
        sx, sy = np.minimum(sx, 1.0), np.minimum(sy, 1.0)
        tx = rng.uniform(-1, 1, b) * (1 - sx) * 0.8            # shifts stay near the middle
        ty = rng.uniform(-1, 1, b) * (1 - sy) * 0.8
        ang = np.deg2rad(rng.uniform(-10, 10, b))
        theta = np.zeros((b, 2, 3), np.float32)
        theta[:, 0, 0] = np.cos(ang) * sx
        theta[:, 0, 1] = -np.sin(ang) * sy
        theta[:, 1, 0] = np.sin(ang) * sx
        theta[:, 1, 1] = np.cos(ang) * sy
        theta[:, 0, 2], theta[:, 1, 2] = tx, ty
        theta = torch.from_numpy(theta).to(dev)
        grid = F.affine_grid(theta, (b, 1, s, s), align_corners=False)
        m = F.grid_sample(m, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.resample:
            x = self._area_warp(x, theta, s)
            x = self._lose_resolution(x, s)
        else:
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                              align_corners=False)
        # intensity
        def per_image(values):
            return torch.from_numpy(values).float().view(b, 1, 1, 1).to(dev)

        gamma = per_image(np.exp(rng.uniform(-0.4, 0.4, b) * strength))
        x = x.clamp_(1e-4, 1).pow(gamma)
        c = per_image(1.0 + (rng.uniform(0.75, 1.3, b) - 1.0) * strength)
        br = per_image(rng.uniform(-0.08, 0.08, b) * strength)
        x = (x - 0.5) * c + 0.5 + br
        # blur (alpha > 0); with resample also unsharp masking (alpha < 0), as edge-enhancing
        # vendor processing does
        alpha = per_image(rng.uniform(-0.8 if self.resample else 0.0, 1, b) *
                          (rng.rand(b) < 0.3))
        blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), self.blur_kernel)
        x = x + alpha * (blurred - x)
        noise = per_image(rng.uniform(0, 0.04, b))
        x = x + noise * torch.randn(b, 1, s, s, generator=self.noise_gen, device=dev)
        # border masking: strips of 0-8% on random sides, filled with black or white (hides
        # collimation edges, film borders and burnt-in text that differ between sources)
        border_mask = (np.full(b, BORDER_MASK_RATE) if border_mask is None
                       else np.asarray(border_mask, np.float64))
        for i in np.flatnonzero(rng.rand(b) < border_mask):
            fill = float(rng.rand() < 0.7) * 0.0 + float(rng.rand() < 0.3)
            for side in np.flatnonzero(rng.rand(4) < 0.5):
                w = int(rng.uniform(0.02, 0.08) * s)
                if side == 0:
                    x[i, :, :w, :] = fill
                elif side == 1:
                    x[i, :, -w:, :] = fill
                elif side == 2:
                    x[i, :, :, :w] = fill
                else:
                    x[i, :, :, -w:] = fill
        x = x.clamp_(0, 1)
        if self.jpeg_rate:  # no draws when off: older recipes keep their random sequence
            pick = np.flatnonzero(rng.rand(b) < self.jpeg_rate)
            if len(pick):
                pick_t = torch.from_numpy(pick).to(dev)
                x[pick_t] = jpeg_like(x[pick_t], rng.randint(30, 96, len(pick)))
        if self.equalize_input:
            u8 = equalized_u8(x.mul(255.0).round_().to(torch.uint8)[:, 0], self.equalize_input)
            x = u8.float().div_(255.0).unsqueeze(1)
        x = x * (255.0 * PIXEL_SCALE) + PIXEL_OFFSET
        return x, m

    @staticmethod
    def _area_warp(x, theta, s):
        """The affine warp sampled 2 x 2 times per output pixel and averaged: closer to cxrd's
        area averaging than one bilinear sample, which aliases when the crop shrinks
        (tests/tools/test_train_recipe2.py measures both)."""
        grid = F.affine_grid(theta, (len(x), 1, 2 * s, 2 * s), align_corners=False)
        fine = F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                             align_corners=False)
        return F.avg_pool2d(fine, 2)

    def _lose_resolution(self, x, s, rate=0.3):
        """A random share of the images area-shrunk to 45-90 % of the side and enlarged back
        bilinearly: a lower native resolution, or another site's resize."""
        for i in np.flatnonzero(self.rng.rand(len(x)) < rate):
            low = max(8, int(round(s * self.rng.uniform(0.45, 0.9))))
            small = F.interpolate(x[i:i + 1], size=(low, low), mode="area")
            x[i:i + 1] = F.interpolate(small, size=(s, s), mode="bilinear",
                                       align_corners=False)
        return x
