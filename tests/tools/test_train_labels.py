#!/usr/bin/python3
"""Tests of tools/train's dataset adapters, split and operating-point helpers, on small fixtures
created here (label files and tiny PNGs in a temporary folder). Run by ctest."""
import os
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "train"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "export"))

import labels as L  # noqa: E402


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as fh:
        fh.write(text)


def png(path, value=100, size=(8, 8)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, np.uint8)).save(path)


def lab(rec):
    """{finding: value} for the labelled findings of a Record."""
    return {f: float(rec.targets[i]) for i, f in enumerate(L.FINDINGS) if rec.mask[i]}


class Adapters(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_findings_match_the_contract(self):
        import contract
        self.assertEqual(L.FINDINGS, contract.FINDINGS)
        self.assertEqual(len(L.NIH_FINDINGS), 9)
        self.assertNotIn("Calcification", L.NIH_FINDINGS)
        self.assertNotIn("Tuberculosis", L.NIH_FINDINGS)

    def test_folder_labels(self):
        p = os.path.join(self.d, "labels.csv")
        write(p, "file,dataset,tb,nih_findings,orig_width\n"
                 "images/a/1.png,tbx11k_tb,1,,256\n"
                 "images/n/00000001_000.png,nih_x,0,Mass|Nodule|Effusion|Hernia,1024\n"
                 "images/n/00000002_000.png,nih_x,0,No Finding,1024\n"
                 "images/c/2.png,covidrad,0,,256\n")
        r = L.read_folder_labels(p)
        self.assertEqual(lab(r[0]), {"Tuberculosis": 1.0})
        nine = {f: 0.0 for f in L.NIH_FINDINGS}
        self.assertEqual(lab(r[1]), dict(nine, **{"Tuberculosis": 0.0, "Nodule Mass": 1.0,
                                                  "Pleural Effusion": 1.0}))
        self.assertEqual(lab(r[2]), dict(nine, Tuberculosis=0.0))
        self.assertEqual(lab(r[3]), {"Tuberculosis": 0.0})
        self.assertEqual(r[1].raw, "Mass|Nodule|Effusion|Hernia")
        for rec in r:  # Calcification is never labelled
            self.assertEqual(rec.mask[L.INDEX["Calcification"]], 0)

    def test_folder_labels_rejects_bad_tb(self):
        p = os.path.join(self.d, "labels.csv")
        write(p, "file,dataset,tb,nih_findings\nx.png,d,yes,\n")
        with self.assertRaises(ValueError):
            L.read_folder_labels(p)

    def test_nih_data_entry(self):
        p = os.path.join(self.d, "Data_Entry_2017.csv")
        write(p, "Image Index,Finding Labels,Follow-up #,Patient ID\n"
                 "00000003_001.png,Pleural_Thickening|Infiltration,1,3\n"
                 "00000004_000.png,Pneumonia,0,4\n"
                 "00000005_000.png,Cardiomegaly|Pneumothorax|Fibrosis|Consolidation|Atelectasis"
                 ",0,5\n")
        r = L.read_nih(p)
        self.assertEqual(r[0].file, os.path.join("images", "00000003_001.png"))
        a = lab(r[0])
        self.assertNotIn("Tuberculosis", a)  # NIH has no TB label: masked
        self.assertEqual(a["Pleural Thickening"], 1.0)
        self.assertEqual(a["Infiltration"], 1.0)
        self.assertEqual(sum(a.values()), 2.0)
        self.assertEqual(sum(lab(r[1]).values()), 0.0)  # Pneumonia maps to nothing
        self.assertEqual(len(lab(r[1])), 9)
        b = lab(r[2])
        for f in ("Cardiomegaly", "Pneumothorax", "Fibrosis", "Consolidation", "Atelectasis"):
            self.assertEqual(b[f], 1.0)
        self.assertEqual(b["Nodule Mass"], 0.0)

    def test_tbx11k(self):
        for sub, n in (("health", 2), ("sick", 1), ("tb", 3)):
            for i in range(n):
                png(os.path.join(self.d, "imgs", sub, "%s%d.png" % (sub, i)))
        write(os.path.join(self.d, "imgs", "tb", "notes.txt"), "x")
        r = L.read_tbx11k(self.d)
        self.assertEqual(len(r), 6)
        tb = {rec.file: lab(rec)["Tuberculosis"] for rec in r}
        self.assertEqual(sum(tb.values()), 3.0)
        self.assertEqual(tb[os.path.join("imgs", "sick", "sick0.png")], 0.0)
        self.assertTrue(all(len(lab(rec)) == 1 for rec in r))

    def test_nlm_naming(self):
        for name in ("CHNCXR_0001_0.png", "CHNCXR_0327_1.png", "MCUCXR_0104_1.png",
                     "MCUCXR_0001_0.png", "README.png", "CHNCXR_0002_x.png"):
            png(os.path.join(self.d, "CXR_png", name))
        r = {rec.file: rec for rec in L.read_nlm(self.d)}
        self.assertEqual(len(r), 4)
        self.assertEqual(lab(r[os.path.join("CXR_png", "CHNCXR_0327_1.png")]),
                         {"Tuberculosis": 1.0})
        self.assertEqual(lab(r[os.path.join("CXR_png", "MCUCXR_0001_0.png")]),
                         {"Tuberculosis": 0.0})
        self.assertEqual(r[os.path.join("CXR_png", "MCUCXR_0104_1.png")].dataset, "montgomery")
        self.assertEqual(r[os.path.join("CXR_png", "CHNCXR_0001_0.png")].dataset, "shenzhen")

    def test_chexpert(self):
        p = os.path.join(self.d, "train.csv")
        write(p, "Path,Sex,No Finding,Cardiomegaly,Lung Lesion,Pleural Effusion,Pleural Other,"
                 "Pneumothorax,Atelectasis,Consolidation,Edema\n"
                 "a/view1.jpg,F,,1.0,-1.0,0.0,,1,,,1\n"
                 "b/view1.jpg,M,1.0,,,,,,,,\n"
                 "c/view1.jpg,M,,,1,,1.0,,-1,,\n")
        r = L.read_chexpert(p)
        self.assertEqual(lab(r[0]), {"Cardiomegaly": 1.0, "Pleural Effusion": 0.0,
                                     "Pneumothorax": 1.0})  # -1 and blank masked
        self.assertEqual(lab(r[1]), {f: 0.0 for f in set(L.CHEXPERT_MAP.values())})
        self.assertEqual(lab(r[2]), {"Nodule Mass": 1.0, "Pleural Thickening": 1.0})
        ones = L.read_chexpert(p, uncertain=1.0)
        self.assertEqual(lab(ones[0])["Nodule Mass"], 1.0)
        self.assertEqual(lab(ones[2])["Atelectasis"], 1.0)
        zeros = L.read_chexpert(p, uncertain=0.0)
        self.assertEqual(lab(zeros[0])["Nodule Mass"], 0.0)
        for rec in r:
            self.assertNotIn("Tuberculosis", lab(rec))

    def test_mimic(self):
        p = os.path.join(self.d, "mimic.csv")
        write(p, "subject_id,study_id,dicom_id,Atelectasis,Pleural Effusion\n"
                 "10000032,50414267,02aa804e,1.0,-1.0\n")
        r = L.read_chexpert(p)
        self.assertEqual(r[0].file, "p10000032/s50414267/02aa804e.jpg")
        self.assertEqual(lab(r[0]), {"Atelectasis": 1.0})

    def test_chexpert_rejects_bad_value(self):
        p = os.path.join(self.d, "bad.csv")
        write(p, "Path,Cardiomegaly\na.jpg,2\n")
        with self.assertRaises(ValueError):
            L.read_chexpert(p)

    def test_vindr(self):
        cols = ["Aortic enlargement", "Calcification", "Nodule/Mass", "Pleural thickening",
                "Pulmonary fibrosis", "Tuberculosis", "Other disease", "No finding"]
        rows = [("img1", "R1", [0, 1, 0, 0, 0, 0, 0, 0]),
                ("img1", "R2", [0, 0, 0, 0, 0, 0, 0, 1]),
                ("img1", "R3", [1, 0, 1, 0, 0, 0, 0, 0]),
                ("img0", "R1", [0, 0, 0, 1, 1, 1, 0, 0])]
        text = "image_id,rad_id," + ",".join(cols) + "\n" + "".join(
            "%s,%s,%s\n" % (i, r, ",".join(map(str, v))) for i, r, v in rows)
        p = os.path.join(self.d, "image_labels_train.csv")
        write(p, text)
        r = L.read_vindr(p)
        self.assertEqual([x.file for x in r], [os.path.join("train", "img0.png"),
                                               os.path.join("train", "img1.png")])
        self.assertEqual(lab(r[1]), {"Calcification": 1.0, "Nodule Mass": 1.0,
                                     "Pleural Thickening": 0.0, "Fibrosis": 0.0,
                                     "Tuberculosis": 0.0})  # any reader positive
        self.assertEqual(lab(r[0]), {"Calcification": 0.0, "Nodule Mass": 0.0,
                                     "Pleural Thickening": 1.0, "Fibrosis": 1.0,
                                     "Tuberculosis": 1.0})

    def test_label_table_lists_every_finding(self):
        t = L.label_table_markdown()
        for f in L.FINDINGS:
            self.assertIn("| %s |" % f, t)


def make_folder(d):
    """A labelled folder: 20 NIH patients with 3 studies each (grey = 10 * patient + study;
    study 0 is Mass, the others No Finding) and 20 TBX11K TB images, one with a box."""
    lines = ["file,dataset,tb,nih_findings"]
    for p in range(20):
        for s in range(3):
            f = "images/nih_darkcovidnet/%08d_%03d.png" % (p, s)
            png(os.path.join(d, f), p * 10 + s)
            lines.append("%s,nih_darkcovidnet,0,%s" % (f, "No Finding" if s else "Mass"))
    for i in range(20):
        f = "images/tbx11k_tb/tb%04d.png" % i
        png(os.path.join(d, f), 200)
        lines.append("%s,tbx11k_tb,1," % f)
    write(os.path.join(d, "labels.csv"), "\n".join(lines) + "\n")
    write(os.path.join(d, "tbx11k_boxes.csv"),
          "file,label,xmin,ymin,xmax,ymax\nimages/tbx11k_tb/tb0000.png,A,1,2,30,40\n")


class SplitAndOperatingPoints(unittest.TestCase):
    def test_nih_split_by_patient(self):
        import data as D
        with tempfile.TemporaryDirectory() as d:
            make_folder(d)
            fo = D.Folder(d, os.path.join(d, "cache"))
            by_patient = {}
            for f, v in zip(fo.files, fo.is_val):
                if "nih" in f:
                    by_patient.setdefault(os.path.basename(f).split("_")[0], set()).add(v)
            self.assertTrue(all(len(v) == 1 for v in by_patient.values()))
            self.assertEqual(sum(v == {True} for v in by_patient.values()), 6)  # 30% of 20
            self.assertEqual(fo.is_val[fo.dataset == "tbx11k_tb"].sum(), 4)  # 20% of 20
            self.assertEqual(fo.images.shape, (80, 256, 256))
            self.assertEqual(int(fo.images[3, 0, 0]), 10)  # patient 1, study 0
            x = fo.eval_inputs([3], 224)
            self.assertEqual(x.shape, (1, 1, 224, 224))
            self.assertAlmostEqual(float(x[0, 0, 5, 5]), 10 * 2 / 255 - 1, places=6)
            m = D.box_mask(fo.boxes["images/tbx11k_tb/tb0000.png"])
            self.assertEqual(m.sum(), 29 * 38)
            again = D.Folder(d, os.path.join(d, "cache"))  # cached, same split
            self.assertTrue((again.is_val == fo.is_val).all())

    def test_v2_split_is_nested_by_patient(self):
        import data as D
        import splits
        with tempfile.TemporaryDirectory() as d:
            make_folder(d)
            # a later collection: patients 0-9 have another study there, 20-29 are new
            with open(os.path.join(d, "labels.csv")) as fh:
                lines = fh.read()
            for p in list(range(10)) + list(range(20, 30)):
                f = "images/nih_radsim/%08d_%03d.png" % (p, 9)
                png(os.path.join(d, f), 100)
                lines += "%s,nih_radsim,0,Mass\n" % f
            write(os.path.join(d, "labels.csv"), lines)
            v1 = D.Folder(d, os.path.join(d, "cache"))
            v2 = D.Folder(d, os.path.join(d, "cache"), split="v2")
            self.assertFalse(v1.is_val[~np.isin(v1.dataset, D.ADDED_AFTER_V1)].all())
            self.assertTrue(v1.is_val[v1.dataset == "nih_radsim"].all())  # v1 never trains on it
            # what v1 trained on, and later studies of its patients, never leave "train"
            self.assertTrue((v2.role[~v1.is_val] == "train").all())
            seen = {D.patient(f) for f, v in zip(v1.files, v1.is_val) if "nih" in f and not v}
            for f, u, r in zip(v2.files, v2.unseen_by_v1, v2.role):
                if "nih" in f and D.patient(f) in seen:
                    self.assertFalse(u)
                    self.assertEqual(r, "train")
            roles = {}
            for f, r in zip(v2.files, v2.role):
                if "nih" in f:
                    roles.setdefault(D.patient(f), set()).add(r)
            self.assertTrue(all(len(r) == 1 for r in roles.values()))
            self.assertEqual({r for rs in roles.values() for r in rs}, {"train", "select", "report"})
            tb = v2.role[v2.dataset == "tbx11k_tb"]
            self.assertEqual(((tb == "select").sum(), (tb == "report").sum()), (2, 2))
        ss = splits.samesource_roles(np.array(["da"] * 10 + ["db"] * 4),
                                     np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0]))
        self.assertEqual(list(ss[:4]).count("select"), 2)
        self.assertEqual(list(ss[4:10]).count("select"), 3)
        self.assertEqual(list(ss[10:]).count("report"), 2)

    def test_thresholds_and_ece(self):
        import evaluate as E
        rng = np.random.RandomState(1)
        y = (rng.rand(400) < 0.4).astype(int)
        p = np.clip(0.3 * y + rng.rand(400) * 0.7, 0, 1)
        t = E.tb_threshold(p, y, 0.9)
        sens, _ = E.sens_spec(p, y, t)
        self.assertGreaterEqual(sens, 0.9)
        # highest such threshold: any higher positive score drops below 90%
        higher = np.sort(p[y == 1][p[y == 1] > t])
        if len(higher):
            self.assertLess(E.sens_spec(p, y, higher[0])[0], 0.9)
        tj = E.youden_threshold(p, y)
        best = max((p[y == 1] >= s).mean() - (p[y == 0] >= s).mean() for s in np.unique(p))
        self.assertAlmostEqual((p[y == 1] >= tj).mean() - (p[y == 0] >= tj).mean(), best)
        from sklearn.metrics import roc_auc_score
        q = np.round(p, 1)  # with ties
        self.assertAlmostEqual(float(E.rank_auc(q[y == 1], q[y == 0])[0]), roc_auc_score(y, q))
        auc, lo, hi = E.auc_ci(y, q, np.random.RandomState(0), 200)
        self.assertTrue(lo < auc < hi)
        # paired difference: zero for the same scores, whatever the resample; around the true
        # difference otherwise (a score against its mirror image: 2 * AUC - 1)
        self.assertEqual(E.auc_difference_ci(y, q, q, n=200), [0.0, 0.0])
        dlo, dhi = E.auc_difference_ci(y, q, 1 - q, n=200)
        self.assertTrue(dlo < 2 * auc - 1 < dhi)
        self.assertAlmostEqual(E.ece(np.array([1, 0, 1, 0]), np.array([1.0, 0.0, 1.0, 0.0])),
                               0.0)
        self.assertAlmostEqual(E.ece(np.array([1, 1, 0, 0]), np.array([.55, .55, .55, .55])),
                               0.05)


class Training(unittest.TestCase):
    def test_jpeg_round_trip(self):
        import data as D
        rng = np.random.RandomState(3)
        smooth = np.add.outer(np.arange(64), np.arange(64)).astype(np.uint8) * 2
        img = np.clip(smooth + rng.randint(0, 8, smooth.shape), 0, 255).astype(np.uint8)
        out = D.jpeg_round_trip(img, 90)
        self.assertEqual((out.shape, out.dtype), (img.shape, np.uint8))
        diff = np.abs(out.astype(int) - img)
        self.assertTrue(0 < diff.mean() < 3)
        self.assertTrue(np.array_equal(out, D.jpeg_round_trip(img, 90)))

    def test_equalize_matches_the_definition(self):
        import torch
        import data as D
        rng = np.random.RandomState(3)
        imgs = np.stack([rng.randint(40, 200, (16, 16)), np.full((16, 16), 7)]).astype(np.uint8)
        out = D.equalize(torch.from_numpy(imgs)).numpy()
        for im, eq in zip(imgs, out):
            # cumulative share of pixels at or below each grey, the darkest grey present -> 0
            lo = (im <= im.min()).sum()
            for g in np.unique(im):
                num, den = (im <= g).sum() - lo, max(im.size - lo, 1)
                want = (510 * num + den) // (2 * den)  # 255 * num / den, halves rounded up
                self.assertEqual(int(eq[im == g][0]), want)
        self.assertEqual(out[0].min(), 0)
        self.assertEqual(out[0].max(), 255)
        self.assertTrue((out[1] == 0).all())  # a flat image stays flat

    def test_resized_levels_round_the_exact_resize_halves_up(self):
        from fractions import Fraction
        import torch
        import data as D

        def exact_axis(n_in, n_out):
            # axis_weights' definition in fractions: area coverage when shrinking, bilinear
            # between pixel centres when growing
            rows = []
            for o in range(n_out):
                w = [Fraction(0)] * n_in
                if n_out <= n_in:
                    begin, end = Fraction(o * n_in, n_out), Fraction((o + 1) * n_in, n_out)
                    for i in range(n_in):
                        w[i] = max(Fraction(0), min(end, i + 1) - max(begin, Fraction(i)))
                    w = [v / (end - begin) for v in w]
                else:
                    centre = max(Fraction(0),
                                 Fraction((2 * o + 1) * n_in, 2 * n_out) - Fraction(1, 2))
                    left = int(centre)
                    if left >= n_in - 1:
                        w[n_in - 1] = Fraction(1)
                    else:
                        w[left], w[left + 1] = left + 1 - centre, centre - left
                rows.append(w)
            return rows

        rng = np.random.RandomState(4)
        for (h, w), (oh, ow) in [((12, 12), (9, 9)), ((12, 18), (2, 3)), ((7, 5), (11, 9)),
                                 ((6, 6), (6, 6)), ((13, 4), (5, 10))]:
            u8 = rng.randint(0, 256, (h, w)).astype(np.uint8)
            u8[:, : w // 2] = u8[:, :1]  # flat parts, where the average often lands on a half
            ay, ax = exact_axis(h, oh), exact_axis(w, ow)
            got = D.resized_levels(u8, ow, oh)
            for y in range(oh):
                for x in range(ow):
                    value = sum(ay[y][i] * ax[x][j] * int(u8[i, j])
                                for i in range(h) for j in range(w))
                    self.assertEqual(got[y, x], int(value + Fraction(1, 2)), ((h, w), y, x))
        # equalised network inputs are built from these levels
        u8 = rng.randint(0, 256, (12, 12)).astype(np.uint8)
        x = D.network_input(u8, 9, 9, 1.0, 0.0, "histogram")
        levels = D.resized_levels(u8, 9, 9)
        self.assertTrue(np.array_equal(x, D.equalize(torch.from_numpy(levels)[None])[0].numpy()))

    def test_clahe_matches_the_definition(self):
        import torch
        import data as D

        def tile_map(tile, clip):
            # clip each bin, spread the excess evenly, cumulative count scaled to 0..255
            n = tile.size
            hist = np.bincount(tile.ravel(), minlength=256)
            limit = max(1, int(np.floor(clip * n / 256.0)))
            excess = int(np.maximum(hist - limit, 0).sum())
            g, rest = np.arange(256), excess % 256
            spread = excess // 256 + ((g + 1) * rest) // 256 - (g * rest) // 256
            cdf = np.cumsum(np.minimum(hist, limit) + spread)
            return np.minimum((510 * cdf + n) // (2 * n), 255)

        rng = np.random.RandomState(5)
        img = np.where(rng.rand(6, 8) < 0.7, rng.randint(20, 25, (6, 8)),
                       rng.randint(0, 256, (6, 8))).astype(np.uint8)
        for clip in (1.0, 2.0, 256.0):
            out = D.clahe(torch.from_numpy(img)[None], 1, clip)[0].numpy()  # one tile: its map
            self.assertTrue(np.array_equal(out, tile_map(img, clip)[img]))
        # 2 x 2 tiles of 3 x 4 pixels; centres at row 1 and 4, column 1.5 and 5.5. Row 1 lies on
        # the upper centres: columns 0-1 take tile (0,0)'s map, 6-7 tile (0,1)'s, and column
        # x in 2..5 blends them with weight (2x - 3) / 8 on the right.
        out = D.clahe(torch.from_numpy(img)[None], 2, 2.0)[0].numpy()
        left, right = tile_map(img[:3, :4], 2.0), tile_map(img[:3, 4:], 2.0)
        for x in range(8):
            g = img[1, x]
            w = min(max(2 * x - 3, 0), 8)
            num = (8 - w) * left[g] + w * right[g]
            self.assertEqual(out[1, x], (2 * num + 8) // 16)

    def test_a_few_steps_train_and_round_trip(self):
        import torch
        import data as D
        import train as T
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as d:
            make_folder(d)
            folder = D.Folder(d, os.path.join(d, "cache"))
            cfg = dict(T.DEFAULTS, steps=3, batch=4, size=32, train_sizes=[[0.0, 32]],
                       widths=[8, 8, 8, 8], blocks=[1, 1, 1, 1], nih_photometric=0.0,
                       members=2, train_jpeg_quality=90)
            model, info = T.train_members(folder, cfg, leave_out="tbx11k_tb")
            self.assertEqual(info["steps_done"], 3)
            self.assertEqual([m["seed"] for m in info["members"]], [6, 7])
            self.assertEqual(info["train_images"], int((~folder.is_val).sum()) - 16)
            path = os.path.join(d, "ckpt.pt")
            T.save_checkpoint(path, model, cfg, info)
            again, cfg2, _ = T.load_checkpoint(path)
            x = torch.from_numpy(folder.eval_inputs([0, 1], 32))
            model.eval()
            with torch.no_grad():
                self.assertTrue(torch.equal(model(x)[0], again(x)[0]))
            self.assertEqual(cfg2["nih_photometric"], 0.0)
            # members trained apart (one checkpoint each) combine into one model whose cam and
            # logits are the members' means
            one = dict(cfg, members=1)
            members, paths = [], []
            for seed in (6, 7):
                m, i = T.train(folder, dict(one, seed=seed), leave_out="tbx11k_tb")
                members.append(m.eval())
                paths.append(os.path.join(d, "m%d.pt" % seed))
                T.save_checkpoint(paths[-1], m, dict(one, seed=seed), i)
            combined, cfg3, info3 = T.members_from(paths, "tbx11k_tb")
            self.assertEqual((cfg3["members"], cfg3["seed"]), (2, 6))
            with torch.no_grad():
                cam, logits = combined.cam_and_logits(x)
                parts = [m.cam_and_logits(x) for m in members]
                torch.testing.assert_close(cam, (parts[0][0] + parts[1][0]) / 2)
                torch.testing.assert_close(logits, (parts[0][1] + parts[1][1]) / 2)
                # train_members did the same two runs
                torch.testing.assert_close(combined(x)[0], model(x)[0])
            with self.assertRaises(SystemExit):
                T.members_from(paths[::-1], "tbx11k_tb")  # seeds must count up


if __name__ == "__main__":
    unittest.main()
