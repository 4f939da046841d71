"""Baseline JPEG's lossy step for grey images, batched in torch (on the GPU when the batch is
there): 8 x 8 block DCT, quantisation by the standard luminance table scaled as libjpeg scales
it for a quality, and back. The entropy coding JPEG adds is lossless, so this is what a JPEG
round trip does to the grey levels, up to libjpeg's integer DCT rounding
(tests/tools/test_jpeg_like.py compares it with PIL's). The augmenter's `jpeg_aug` uses it:
other hospitals' images often reach a reader, or cxrd, as JPEG."""
import functools
import math

import torch
import torch.nn.functional as F

# ITU-T T.81 Annex K, Table K.1 (luminance), row by row
LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)


@functools.lru_cache(maxsize=None)  # one table per quality, not one per image of each batch
def quant_table(quality):
    """The 8 x 8 luminance table libjpeg uses at `quality` (1-100, jpeg_quality_scaling)."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    table = torch.tensor(LUMINANCE, dtype=torch.float64)
    return ((table * scale + 50) // 100).clamp(1, 255).view(8, 8)


def _dct_matrix():
    """Orthonormal 8-point DCT-II: coefficients = D @ block @ D.T."""
    d = torch.empty(8, 8, dtype=torch.float64)
    for k in range(8):
        for n in range(8):
            c = math.sqrt(1 / 8) if k == 0 else math.sqrt(2 / 8)
            d[k, n] = c * math.cos(math.pi * (2 * n + 1) * k / 16)
    return d


DCT = _dct_matrix()


def jpeg_like(x, qualities):
    """x: [B,1,H,W] grey levels in [0,1]; qualities: B ints. Returns x after a grey JPEG round
    trip at each image's quality (8-bit levels, as a decoder gives them, back in [0,1])."""
    b, _, h, w = x.shape
    dev = x.device
    ph, pw = -h % 8, -w % 8  # JPEG pads partial blocks by repeating the edge
    u = torch.round(x.clamp(0, 1) * 255.0)
    if ph or pw:
        u = F.pad(u, (0, pw, 0, ph), mode="replicate")
    hb, wb = (h + ph) // 8, (w + pw) // 8
    blocks = (u - 128.0).view(b, hb, 8, wb, 8).permute(0, 1, 3, 2, 4)  # [B,hb,wb,8,8]
    d = DCT.to(dev, torch.float32)
    q = torch.stack([quant_table(v) for v in qualities]).to(dev, torch.float32)
    q = q.view(b, 1, 1, 8, 8)
    coef = d @ blocks @ d.T
    coef = torch.round(coef / q) * q
    out = d.T @ coef @ d + 128.0
    out = out.permute(0, 1, 3, 2, 4).reshape(b, 1, h + ph, w + pw)[:, :, :h, :w]
    return torch.round(out).clamp_(0, 255) / 255.0
