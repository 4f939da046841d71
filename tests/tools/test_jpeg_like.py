"""tools/train/jpeg_like.py against PIL's JPEG round trip (libjpeg, the independent
reference): the same grey levels up to libjpeg's integer DCT rounding, at qualities where the
compression itself moves them far more."""
import os
import sys
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "train"))

import torch  # noqa: E402

import data as D  # noqa: E402
from jpeg_like import jpeg_like, quant_table  # noqa: E402


def radiograph_like(rows, cols, seed):
    """Smooth shading, two bright blobs, sharp edges and noise: content JPEG must alter."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    g = 60 + 120 * np.exp(-((x - 0.3) ** 2 + (y - 0.5) ** 2) / 0.02)
    g += 100 * np.exp(-((x - 0.7) ** 2 + (y - 0.5) ** 2) / 0.03)
    g[:, cols // 2:cols // 2 + 3] = 250
    g += rng.normal(0, 6, g.shape)
    return np.clip(g, 0, 255).astype(np.uint8)


class JpegLike(unittest.TestCase):
    def test_matches_pil_far_closer_than_the_compression_error(self):
        for shape in ((256, 256), (250, 237)):  # the second has partial blocks
            img = radiograph_like(*shape, seed=shape[1])
            x = torch.from_numpy(img / 255.0).float()[None, None]
            for q in (30, 50, 70, 95):
                ours = jpeg_like(x, [q])[0, 0].numpy() * 255.0
                pil = D.jpeg_round_trip(img, q).astype(np.float64)
                self.assertEqual(ours.shape, img.shape)
                # decoded levels are integers
                self.assertTrue(np.array_equal(ours, np.round(ours)))
                to_pil = np.abs(ours - pil).mean()
                compression = np.abs(pil - img).mean()
                self.assertLess(to_pil, 0.5, (shape, q))
                self.assertLess(to_pil, 0.25 * compression, (shape, q))

    def test_each_image_gets_its_own_quality(self):
        img = radiograph_like(64, 64, 1)
        x = torch.from_numpy(img / 255.0).float()[None, None].repeat(2, 1, 1, 1)
        out = jpeg_like(x, [30, 95]) * 255.0
        for i, q in enumerate((30, 95)):
            pil = D.jpeg_round_trip(img, q).astype(np.float64)
            self.assertLess(np.abs(out[i, 0].numpy() - pil).mean(), 0.5)
        # lower quality, larger error
        err = (out[:, 0] - torch.from_numpy(img.astype(np.float32))).abs().mean((1, 2))
        self.assertGreater(float(err[0]), 1.5 * float(err[1]))

    def test_libjpeg_quality_scaling(self):
        self.assertEqual(quant_table(50)[0, 0], 16)  # quality 50 is the standard table
        self.assertEqual(quant_table(100).max(), 1)
        self.assertEqual(quant_table(25)[0, 0], 32)  # 5000 / 25 = 200 %
        self.assertEqual(quant_table(75)[7, 7], 50)  # 99 * 50 % rounded


if __name__ == "__main__":
    unittest.main()
