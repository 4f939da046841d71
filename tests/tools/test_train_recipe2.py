"""The 2.x recipe settings of tools/train/train.py (docs/training.md): the lesion loss's cell
targets, the max-pooled TB logit through ONNX export and tools/train/onnx_torch.py, and a few
training steps of each new setting on a tiny synthetic folder."""
import os
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "train"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "export"))

import torch  # noqa: E402

from test_train_labels import make_folder, png, write  # noqa: E402

TINY = dict(steps=3, batch=4, size=32, train_sizes=[[0.0, 32]], widths=[8, 8, 8, 8],
            blocks=[1, 1, 1, 1], members=1, train_jpeg_quality=0, ema_decay=0.0)


def randomise(model, seed=0):
    """BatchNorm parameters and statistics, classifier and bias away from their initial values
    (a trained model's export has no two equal folded convolutions), convolutions at He
    scale, so that different inputs still give different outputs deep in the network."""
    gen = torch.Generator().manual_seed(seed)

    def draw(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=gen) * (hi - lo) + lo)

    with torch.no_grad():
        for m in model.backbone.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) *
                               (2.0 / fan_in) ** 0.5)
            if isinstance(m, torch.nn.BatchNorm2d):
                draw(m.weight, 0.5, 1.5)
                draw(m.bias, -0.1, 0.1)
                draw(m.running_mean, -0.1, 0.1)
                draw(m.running_var, 0.5, 1.5)
        draw(model.classifier.weight, -1, 1)
        draw(model.bias, -0.5, 0.5)
        # class maps of about unit spread: probabilities away from 0 and 1
        model.eval()
        cam = model.classifier(model.backbone(torch.randn(2, 1, 64, 64, generator=gen)))
        model.classifier.weight /= cam.std()


class LesionTargets(unittest.TestCase):
    def test_cells_inside_outside_and_ignored(self):
        import torch.nn.functional as F
        import data as D
        import train as T
        # a 256-px box over x 64..128, y 32..100 on an 8x8 map (32-px cells): columns 2-3
        # fully inside; rows 1-2 fully, row 3 covered 4/32 (below a quarter: ignored)
        mask = torch.from_numpy(D.box_mask([(64, 32, 128, 100)]))[None, None]
        cover = F.adaptive_avg_pool2d(mask, (8, 8))[:, 0]
        t, w = T.lesion_targets(cover)
        want_t = np.zeros((8, 8))
        want_t[1:3, 2:4] = 1
        want_w = np.ones((8, 8))
        want_w[3, 2:4] = 0  # partial cells: 4/32 of the cell covered
        np.testing.assert_array_equal(t[0].numpy(), want_t)
        np.testing.assert_array_equal(w[0].numpy(), want_w)
        # a cell exactly a quarter covered counts as lesion
        t2, w2 = T.lesion_targets(torch.tensor([[[0.25, 0.2499, 0.0]]]))
        self.assertEqual(t2.tolist(), [[[1.0, 0.0, 0.0]]])
        self.assertEqual(w2.tolist(), [[[1.0, 0.0, 1.0]]])

    def test_loss_is_the_bce_of_the_labelled_cells(self):
        import torch.nn.functional as F
        import train as T
        gen = torch.Generator().manual_seed(1)
        logits = torch.randn(3, 2, 2, generator=gen)
        cover = torch.tensor([[[1.0, 0.1], [0.0, 0.0]], [[0.0, 0.0], [0.5, 0.0]],
                              [[0.0, 0.0], [0.0, 0.0]]])
        has_box = torch.tensor([True, True, False])
        neg = torch.tensor([False, False, True])
        z = [logits[0, 0, 0], logits[0, 1, 0], logits[0, 1, 1], logits[1, 0, 0],
             logits[1, 0, 1], logits[1, 1, 0], logits[1, 1, 1]]
        y = [1, 0, 0, 0, 0, 1, 0]
        want = F.binary_cross_entropy_with_logits(torch.stack(z), torch.tensor(y).float())
        torch.testing.assert_close(T.lesion_loss(logits, cover, has_box, neg, 0.0), want)
        # negatives: every cell of image 2 as 0, weighted
        want_neg = want + 0.5 * F.binary_cross_entropy_with_logits(
            logits[2], torch.zeros(2, 2))
        torch.testing.assert_close(T.lesion_loss(logits, cover, has_box, neg, 0.5), want_neg)


def export(model, path, size):
    import contract
    contract.export_onnx(model, path, size, size, contract.default_metadata(
        contract.FINDINGS, {f: 0.5 for f in contract.FINDINGS},
        contract.preprocess_json(size, size, 2 / 255, -1), "t"))


class MaskedLoss(unittest.TestCase):
    def test_a_batch_labelling_nothing_costs_zero_not_nan(self):
        import train as T
        logits = torch.randn(4, 11, requires_grad=True)
        loss = T.masked_bce(logits, torch.ones(4, 11), torch.zeros(4, 11))
        self.assertEqual(float(loss), 0.0)
        loss.backward()
        self.assertTrue(torch.equal(logits.grad, torch.zeros(4, 11)))


class MaxPooledExport(unittest.TestCase):
    def test_cxrd_runs_the_new_settings(self):
        """cxrd's runtime (`cxrd model-run`, path in $CXRD, as ctest passes it) against PyTorch
        on exported models of the new settings: the max-pooled TB logit on each backbone."""
        import subprocess
        import train as T
        cxrd = os.environ.get("CXRD")
        if not cxrd:
            self.skipTest("set CXRD to the cxrd binary")
        x = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(3))
        for backbone in ("resnet", "mobilenet_v2_b10", "mobilenet_v2"):
            cfg = dict(T.DEFAULTS, **TINY, tb_pool="max", backbone=backbone)
            model, _ = T.build_model(cfg)
            randomise(model, 4)
            model.eval()
            with torch.no_grad():
                probs = model(x)[0].numpy()
            # not saturated, and the images differ: the comparison below can fail
            self.assertTrue(((probs > 0.02) & (probs < 0.98)).mean() > 0.5, backbone)
            self.assertGreater(np.abs(probs[0] - probs[1]).max(), 1e-3, backbone)
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "m.onnx")
                export(model, path, 64)
                for j in range(len(x)):
                    inp, out = os.path.join(d, "in%d.npy" % j), os.path.join(d, "out%d" % j)
                    os.makedirs(out)
                    np.save(inp, x[j:j + 1].numpy())
                    subprocess.run([cxrd, "model-run", path, inp, out], check=True,
                                   stdout=subprocess.DEVNULL)
                    got = np.load(os.path.join(out, "probabilities.npy"))
                    np.testing.assert_allclose(got[0], probs[j], atol=1e-4, err_msg=backbone)

    def test_onnx_matches_pytorch(self):
        """The exported graph of each backbone with the max-pooled TB logit, run by
        tools/train/onnx_torch.py, against PyTorch and against the definition."""
        import onnx
        import onnx_torch
        import train as T
        x = torch.randn(5, 1, 64, 64, generator=torch.Generator().manual_seed(2))
        for backbone in ("resnet", "mobilenet_v2_b10", "mobilenet_v2"):
            cfg = dict(T.DEFAULTS, **TINY, tb_pool="max", backbone=backbone)
            model, _ = T.build_model(cfg)
            randomise(model)
            model.eval()
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "m.onnx")
                export(model, path, 64)
                proto = onnx.load(path)
                ops = [n.op_type for n in proto.graph.node]
                self.assertNotIn("ReduceMax", ops)
                pools = [n for n in proto.graph.node if n.op_type == "MaxPool"]
                self.assertEqual(len(pools), 1)
                self.assertEqual({a.name: list(a.ints) for a in pools[0].attribute},
                                 {"kernel_shape": [4, 4]})  # the whole 4x4 map at 64 px
                out = onnx_torch.OnnxTorch(path)(x.numpy(), ["probabilities", "cam"])
            with torch.no_grad():
                probs, cam = model(x)
            np.testing.assert_allclose(out["cam"], cam.numpy(), rtol=1e-4, atol=1e-4,
                                       err_msg=backbone)
            np.testing.assert_allclose(out["probabilities"], probs.numpy(), rtol=1e-4,
                                       atol=1e-5, err_msg=backbone)
            # independently: TB from the map's maximum, the others from its mean
            scale, offset, bias = (model.platt_scale.numpy(), model.platt_offset.numpy(),
                                   model.bias.detach().numpy())
            c = cam.numpy()
            logit = c.mean((2, 3)) + bias
            logit[:, 0] = c[:, 0].max((1, 2)) + bias[0]
            np.testing.assert_allclose(out["probabilities"],
                                       1 / (1 + np.exp(-(logit * scale + offset))), rtol=1e-4,
                                       atol=1e-5, err_msg=backbone)
            self.assertFalse(np.allclose(c[:, 0].max((1, 2)), c[:, 0].mean((1, 2))))

    def test_mean_pooled_checkpoints_keep_their_keys(self):
        import train as T
        mean, _ = T.build_model(dict(T.DEFAULTS, **TINY))
        old = dict(T.DEFAULTS, **TINY)
        for k in ("backbone", "output_stride", "pretrained", "tb_loss", "lesion_weight",
                  "lesion_negatives", "tb_pool"):
            del old[k]  # a 1.x checkpoint's recipe
        again, _ = T.build_model(old)
        self.assertEqual(set(mean.state_dict()), set(again.state_dict()))
        self.assertNotIn("pool_max_mask", mean.state_dict())


class NewSettingsTrain(unittest.TestCase):
    def folder(self, d):
        import data as D
        make_folder(d)
        # every TBX11K image gets a box, so the training split has boxed TB images
        rows = ["file,label,xmin,ymin,xmax,ymax"] + [
            "images/tbx11k_tb/tb%04d.png,A,40,30,160,200" % i for i in range(20)]
        write(os.path.join(d, "tbx11k_boxes.csv"), "\n".join(rows) + "\n")
        return D.Folder(d, os.path.join(d, "cache"))

    def run_recipe(self, folder, d, **settings):
        import train as T
        cfg = dict(T.DEFAULTS, **TINY, **settings)
        model, info = T.train_members(folder, cfg)
        self.assertEqual(info["steps_done"], 3)
        losses = info["members"][0]["last_losses"]
        path = os.path.join(d, "ckpt.pt")
        T.save_checkpoint(path, model, cfg, info)
        again, cfg2, info2 = T.load_checkpoint(path)
        x = torch.from_numpy(folder.eval_inputs([0, 70], 32))
        model.eval()
        with torch.no_grad():
            cam, logits = again.cam_and_logits(x)
            self.assertTrue(torch.equal(model(x)[0], again(x)[0]))
        self.assertTrue(torch.isfinite(logits).all())
        return model, cfg2, dict(info2, last_losses=losses), cam, logits

    def test_each_new_setting_trains_three_steps(self):
        import train as T
        torch.set_num_threads(1)
        have_weights = os.path.exists(T.pretrained_path(dict(T.DEFAULTS,
                                                             backbone="mobilenet_v2")))
        with tempfile.TemporaryDirectory() as d:
            folder = self.folder(d)
            _, _, info, cam, _ = self.run_recipe(folder, d, backbone="mobilenet_v2_b10",
                                                 pretrained="")
            self.assertEqual(cam.shape[1:], (11, 2, 2))  # 1/16 of 32 px
            self.assertIsNone(info["pretrained"])
            self.assertEqual(info["last_losses"]["lesion"], 0.0)
            _, _, info, cam, _ = self.run_recipe(folder, d, backbone="mobilenet_v2",
                                                 pretrained="", output_stride=16)
            self.assertEqual(cam.shape[1:], (11, 2, 2))
            # lesion loss with NIH negatives and the max-pooled TB logit
            model, cfg, info, cam, logits = self.run_recipe(
                folder, d, tb_loss="lesion", lesion_negatives=0.5, tb_pool="max")
            self.assertGreater(info["last_losses"]["lesion"], 0.0)
            self.assertEqual(info["last_losses"]["box"], 0.0)  # the pointing loss is off
            torch.testing.assert_close(logits[:, 0], cam[:, 0].amax((1, 2)) + model.bias[0])
            # resample_aug and jpeg_aug: run_recipe checks three steps and the checkpoint
            self.run_recipe(folder, d, resample_aug=True, jpeg_aug=0.5)
            if have_weights:  # the converted weights (tools/train/pretrained.py), when made
                _, _, info, _, _ = self.run_recipe(folder, d, backbone="mobilenet_v2_b10")
                self.assertEqual(info["pretrained"]["package"], "nsfwjs")
                cfg = dict(T.DEFAULTS, **TINY, backbone="mobilenet_v2_b10")
                model, _ = T.build_model(cfg)
                T.load_pretrained(model.backbone, cfg)
                saved = torch.load(T.pretrained_path(cfg))
                for k, v in model.backbone.state_dict().items():
                    self.assertTrue(torch.equal(v, saved[k]), k)
            else:
                print("skipped the pretrained start: no %s" % T.pretrained_path(
                    dict(T.DEFAULTS, backbone="mobilenet_v2")))

    def test_lesion_loss_alone_trains_the_tb_map(self):
        """With tb_loss lesion, TB's gradient comes only from the cells: zero the lesion weight
        and the TB row of the classifier does not move; give it weight and it does."""
        import train as T
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as d:
            folder = self.folder(d)
            moved = {}
            for weight in (0.0, 1.0):
                cfg = dict(T.DEFAULTS, **TINY, tb_loss="lesion", lesion_weight=weight,
                           adv_weight=0.0, weight_decay=0.0, warmup_steps=1, seed=6)
                torch.manual_seed(6)
                start, _ = T.build_model(cfg)
                model, _ = T.train(folder, cfg)
                moved[weight] = float((model.classifier.weight[0] -
                                       start.classifier.weight[0]).abs().max())
            self.assertEqual(moved[0.0], 0.0)
            self.assertGreater(moved[1.0], 1e-4)


class ResampleAugmentation(unittest.TestCase):
    def test_area_warp_is_closer_to_cxrds_resize_than_one_bilinear_sample(self):
        import data as D
        rng = np.random.RandomState(3)
        grey = rng.randint(0, 256, (256, 256)).astype(np.float64)  # all detail aliases
        x = torch.from_numpy(grey / 255.0).float()[None, None]
        identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        errors = {}
        for s in (192, 160, 96):  # shrunk 1.33, 1.6 and 2.67 times
            reference = D.resize_like_cxrd(grey, s, s) / 255.0
            area = D.Augmenter._area_warp(x, identity, s)[0, 0].numpy()
            grid = torch.nn.functional.affine_grid(identity, (1, 1, s, s), align_corners=False)
            bilinear = torch.nn.functional.grid_sample(x, grid, mode="bilinear",
                                                       align_corners=False)[0, 0].numpy()
            errors[s] = (np.abs(area - reference).mean(), np.abs(bilinear - reference).mean())
        # near 1:1 one bilinear sample is as close (it blurs over two pixels anyway); the more
        # the crop shrinks, the more one sample aliases and the averaged samples do not
        self.assertLess(errors[192][0], 1.1 * errors[192][1])
        self.assertLess(errors[160][0], 0.5 * errors[160][1])
        self.assertLess(errors[96][0], 0.2 * errors[96][1])

    def test_lost_resolution_removes_fine_detail_from_some_images_only(self):
        import data as D
        aug = D.Augmenter(64, np.random.RandomState(0), resample=True)
        stripes = torch.zeros(40, 1, 64, 64)
        stripes[..., ::2] = 1.0  # one-pixel stripes do not survive a smaller image
        out = aug._lose_resolution(stripes.clone(), 64, rate=0.5)
        changed = [(out[i] - stripes[i]).abs().max().item() > 0.1 for i in range(40)]
        self.assertTrue(5 < sum(changed) < 35)


class ResampleCheck(unittest.TestCase):
    def test_reference_variant_is_cxrds_input_and_the_others_change_it(self):
        import data as D
        import resample_check as R
        from PIL import Image
        pre = {"width": 48, "height": 48, "scale": D.PIXEL_SCALE, "offset": D.PIXEL_OFFSET}
        rng = np.random.RandomState(5)
        with tempfile.TemporaryDirectory() as d:
            grey = (rng.rand(100, 90) * 255).astype(np.uint8)
            Image.fromarray(grey).save(os.path.join(d, "a.png"))
            cxrd = D.model_input(os.path.join(d, "a.png"), pre)
            for variant in R.VARIANTS:
                x = R.inputs(d, ["a.png"], pre, variant)[0, 0]
                if variant == "cxrd":
                    np.testing.assert_array_equal(x, cxrd)
                else:
                    self.assertGreater(np.abs(x - cxrd).mean(), 1e-3, variant)


class NormalNegatives(unittest.TestCase):
    def test_other_collections_normals_become_negatives_of_the_nih_findings(self):
        """normal_negatives: the normals of collections other than NIH get the nine NIH
        findings as labelled 0 at that weight; TB images, NIH images (whose labels stand) and
        TB's own column are untouched; 0 leaves the labels' mask as it is."""
        import types
        import labels as L
        import train as T
        rows = [("covidrad_normal_256_via_lundis", 0), ("lundis_course_tb", 0),
                ("lundis_course_tb", 1), ("tbx11k_tb", 1), ("nih_darkcovidnet", 0)]
        recs = [L.nih_record("x", ds, "Mass") if ds.startswith("nih") else L.Record("x", ds)
                for ds, _ in rows]
        for r, (_, tb) in zip(recs, rows):
            r.set("Tuberculosis", float(tb))
        folder = types.SimpleNamespace(dataset=np.array([ds for ds, _ in rows]),
                                       targets=np.stack([r.targets for r in recs]),
                                       mask=np.stack([r.mask for r in recs]))
        np.testing.assert_array_equal(T.label_weights(folder, 0.0), folder.mask)
        w = T.label_weights(folder, 0.5)
        nine = [L.INDEX[f] for f in L.NIH_FINDINGS]
        for i in (0, 1):  # the two normals
            self.assertEqual(list(w[i, nine]), [0.5] * 9)
            self.assertEqual(w[i, L.INDEX["Calcification"]], 0.0)
            self.assertEqual(w[i, L.INDEX["Tuberculosis"]], 1.0)
        np.testing.assert_array_equal(w[2:], folder.mask[2:])


class TeacherTargets(unittest.TestCase):
    def test_nih_training_labels_mixed_with_the_teachers_probabilities(self):
        """teacher_weight w: the nine NIH findings of the NIH training images become
        (1 - w) * label + w * the teacher's probability; held-out images, TB images and TB's
        column keep their labels. A teacher of two checkpoints ('+') is their ensemble: with
        flat class maps its logits are the mean of their biases. Its table (--write-teacher)
        and its ONNX export teach the same."""
        import data as D
        import labels as L
        import teacher as KD
        import train as T
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as d:
            make_folder(d)
            folder = D.Folder(d, os.path.join(d, "cache"))
            cfg = dict(T.DEFAULTS, **TINY)
            paths = []
            for k, bias in enumerate((-1.0, 2.0)):
                member = dict(cfg, seed=cfg["seed"] + k)
                model, info = T.train(folder, member)
                with torch.no_grad():
                    model.classifier.weight.zero_()
                    model.bias.copy_(torch.linspace(-2, 2, 11) + bias)
                paths.append(os.path.join(d, "t%d.pt" % k))
                T.save_checkpoint(paths[-1], model, member, info)
            cfg.update(teacher="+".join(paths), teacher_weight=0.25)
            got = KD.teacher_targets(folder, cfg)
            nine = [L.INDEX[f] for f in L.NIH_FINDINGS]
            p = 1 / (1 + np.exp(-(np.linspace(-2, 2, 11) + 0.5)))
            nih_train = [i for i in range(folder.n)
                         if not folder.is_val[i] and "nih" in folder.files[i]]
            self.assertEqual(len(nih_train), 42)
            want = folder.targets.copy()
            want[np.ix_(nih_train, nine)] = 0.75 * want[np.ix_(nih_train, nine)] + 0.25 * p[nine]
            np.testing.assert_allclose(got, want, atol=1e-6)
            self.assertGreater(np.abs(got - folder.targets).max(), 0.1)
            np.testing.assert_array_equal(KD.teacher_targets(folder, dict(cfg, teacher_weight=0)),
                                          folder.targets)
            # the same probabilities as a table (what travels to a GPU machine)
            table = os.path.join(d, "teacher.npz")
            KD.write_teacher(table, folder, cfg)
            np.testing.assert_allclose(KD.teacher_targets(folder, dict(cfg, teacher=table)), got,
                                       atol=1e-6)
            with np.load(table) as z:
                self.assertEqual(z["nih_probs"].shape, (42, 9))
                self.assertEqual(sorted(z["nih_probs_files"]),
                                 sorted(folder.files[i] for i in nih_train))
            # and the same ensemble exported as a contract ONNX model (the shipped model can teach)
            onnx_path = os.path.join(d, "teacher.onnx")
            export(T.load_model(cfg["teacher"])[0], onnx_path, TINY["size"])
            np.testing.assert_allclose(KD.teacher_targets(folder, dict(cfg, teacher=onnx_path)),
                                       got, atol=1e-5)
            # training takes them: the same seed without the teacher ends at another loss
            def last_loss(c):
                return T.train_members(folder, c)[1]["members"][0]["last_losses"]["cls"]
            self.assertNotAlmostEqual(last_loss(cfg), last_loss(dict(cfg, teacher_weight=0)),
                                      places=4)


class PseudoLesionCells(unittest.TestCase):
    """tb_pseudo_weight: the teacher's TB class map labels lesion cells on the TB training
    images without boxes."""

    def test_masks_from_cell_probabilities(self):
        import teacher as KD
        import train as T
        import torch.nn.functional as F
        cell = torch.full((2, 4, 4), 0.01)
        cell[0, 1, 2] = 0.9   # lesion: pixels y 64..127, x 128..191
        cell[0, 3, 0] = 0.3   # unsure: left out
        cell[1, 0, 0] = 0.5   # image 1 has no lesion cell
        masks, has_lesion = KD.lesion_masks(cell)
        self.assertEqual(has_lesion.tolist(), [True, False])
        want = np.zeros((256, 256), np.uint8)
        want[64:128, 128:192] = 255
        want[192:256, 0:64] = KD.PSEUDO_UNSURE
        np.testing.assert_array_equal(masks[0].numpy(), want)
        # through the lesion loss's targets (as the run scales its masks): lesion 1, clear 0,
        # unsure cells without weight
        cover = F.adaptive_avg_pool2d(masks[:1, None].float() / 255, (4, 4))[:, 0]
        t, w = T.lesion_targets(cover)
        self.assertEqual(float(t.sum()), 1.0)
        self.assertEqual(float(t[0, 1, 2]), 1.0)
        self.assertEqual(float(w[0, 3, 0]), 0.0)
        self.assertEqual(float(w.sum()), 15.0)

    def test_teacher_map_labels_the_unboxed_tb_images_and_training_takes_them(self):
        import data as D
        import teacher as KD
        import train as T
        torch.set_num_threads(1)
        tb = T.L.INDEX["Tuberculosis"]
        with tempfile.TemporaryDirectory() as d:
            make_folder(d)
            folder = D.Folder(d, os.path.join(d, "cache"))
            cfg = dict(T.DEFAULTS, **TINY, tb_loss="lesion")
            train_idx = np.flatnonzero(~folder.is_val)
            rows = KD.tb_pseudo_rows(folder, train_idx)
            boxed = "images/tbx11k_tb/tb0000.png"
            self.assertEqual(len(rows), 15 if folder.files.index(boxed) in train_idx else 16)
            self.assertTrue(all(folder.targets[i, tb] == 1 and folder.files[i] != boxed
                                for i in rows))
            # a teacher with a flat TB map: the probability is the bias's
            model, info = T.train(folder, cfg)
            path = os.path.join(d, "t.pt")

            def teacher_with(p):
                with torch.no_grad():
                    model.classifier.weight.zero_()
                    model.bias[tb] = float(np.log(p / (1 - p)))
                T.save_checkpoint(path, model, cfg, info)
                return KD.tb_pseudo_masks(folder, rows, path)

            masks, has_lesion = teacher_with(0.8)
            self.assertTrue(has_lesion.all() and (masks == 255).all())
            masks, has_lesion = teacher_with(0.5)
            self.assertFalse(has_lesion.any())
            self.assertTrue((masks == KD.PSEUDO_UNSURE).all())
            # the same cells from the teacher's table (what travels to a GPU machine)
            table = os.path.join(d, "teacher.npz")
            KD.write_teacher(table, folder, dict(cfg, teacher=path))
            with np.load(table) as z:
                self.assertEqual(sorted(z["tb_cells_files"]),
                                 sorted(folder.files[i] for i in rows))
                np.testing.assert_allclose(z["tb_cells"], 0.5, atol=1e-6)
            teacher_with(0.8)
            np.testing.assert_allclose(KD.tb_cells(folder, rows, path), 0.8, atol=1e-6)
            # and from the ONNX export (the shipped model can teach from any machine)
            onnx_path = os.path.join(d, "teacher.onnx")
            model.platt_scale.fill_(2.0)  # calibration must not enter the cells
            export(model, onnx_path, TINY["size"])
            np.testing.assert_allclose(KD.tb_cells(folder, rows, onnx_path), 0.8, atol=1e-5)
            self.assertEqual(KD.tb_cells(folder, rows[:3], table).shape[0], 3)
            # training takes the cells: the same seed without them ends at another lesion loss
            def last_lesion(c):
                return T.train(folder, c)[1]["last_losses"]["lesion"]
            with_cells = dict(cfg, teacher=path, tb_pseudo_weight=0.5)
            self.assertNotAlmostEqual(last_lesion(with_cells), last_lesion(cfg), places=4)


class NihPointing(unittest.TestCase):
    """The NIH pointing loss (setting nih_box_weight): NIH's own boxes of the training images,
    warped with them, pull each boxed finding's class map into its box."""

    def test_loss_prefers_a_map_peaking_in_the_box(self):
        import train as T
        cover = torch.zeros(2, 1, 4, 4)
        cover[0, 0, 1, 2] = 1.0   # a box over one cell
        cover[1, 0, 3, 0] = 0.1   # a nodule covering a tenth of one cell: still that cell
        channel = [T.L.INDEX["Nodule Mass"]]
        cam = torch.zeros(2, 11, 4, 4)
        flat = T.nih_pointing_loss(cam, cover, channel)
        self.assertAlmostEqual(float(flat), np.log(16), places=4)  # 1 of 16 cells
        inside, outside = cam.clone(), cam.clone()
        inside[0, channel[0], 1, 2] = inside[1, channel[0], 3, 0] = 3.0
        outside[0, channel[0], 0, 0] = outside[1, channel[0], 0, 0] = 3.0
        self.assertLess(float(T.nih_pointing_loss(inside, cover, channel)), float(flat))
        self.assertGreater(float(T.nih_pointing_loss(outside, cover, channel)), float(flat))
        # other findings' maps do not count
        other = cam.clone()
        other[:, T.L.INDEX["Cardiomegaly"], 0, 0] = 9.0
        torch.testing.assert_close(T.nih_pointing_loss(other, cover, channel), flat)
        self.assertEqual(float(T.nih_pointing_loss(cam, torch.zeros_like(cover), channel)), 0)

    def test_bank_holds_the_training_images_boxes_and_trains(self):
        import data as D
        import train as T
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as d:
            make_folder(d)
            write(os.path.join(d, "nih_boxes.csv"), "file,finding,xmin,ymin,xmax,ymax\n" + "".join(
                "images/nih_darkcovidnet/%08d_000.png,%s,10,20,60,90\n" % (p, f)
                for p in range(20) for f in ("Mass", "Pneumonia")))
            folder = D.Folder(d, os.path.join(d, "cache"))
            train_idx = np.flatnonzero(~folder.is_val)
            bank, rows, channels = T.nih_box_bank(folder, train_idx)
            self.assertEqual(channels, [T.L.INDEX["Nodule Mass"]])  # Pneumonia is no finding
            boxed = [i for i in train_idx if folder.files[i].endswith("_000.png")]
            self.assertEqual(len(bank), len(boxed) + 1)
            self.assertEqual(sorted(np.flatnonzero(rows)), boxed)  # held-out images: none
            self.assertEqual(int(bank[rows[boxed[0]], 0].sum()), 50 * 70)
            self.assertEqual(int(bank[0].sum()), 0)
            cfg = dict(T.DEFAULTS, **TINY, nih_box_weight=0.5, box_start=0.0, box_full=0.01,
                       nih_share=0.9)
            _, info = T.train_members(folder, cfg)
            self.assertGreater(info["members"][0]["last_losses"]["nih_box"], 0.0)


class NestedOperatingPoints(unittest.TestCase):
    def test_thresholds_from_select_only_measured_on_report(self):
        """thresholds.py --split v2: a finding's threshold keeps >= 90% of the select part's
        No Finding images below it; the report part's scores change nothing but its own
        figures."""
        import types
        import labels as L
        import thresholds as TH
        k = L.INDEX["Pleural Effusion"]
        n = 120  # 30 No Finding + 30 Effusion in each part
        role = np.array(["select"] * 60 + ["report"] * 60)
        effusion = np.tile(np.r_[np.zeros(30), np.ones(30)], 2)
        targets = np.zeros((n, 11), np.float32)
        targets[:, k] = effusion
        folder = types.SimpleNamespace(
            dataset=np.array(["nih_darkcovidnet"] * n), role=role,
            nih_raw=["Effusion" if e else "No Finding" for e in effusion],
            targets=targets, mask=np.ones((n, 11), np.float32))
        scores = np.r_[np.linspace(0.0, 0.29, 30), np.linspace(0.2, 0.8, 30)]
        old = {f: 0.5 for f in L.FINDINGS}

        def run(report_shift):
            p = np.zeros((60, 11))
            p[:, k] = scores
            p_r = p.copy()
            p_r[:, k] += report_shift
            ev_r, nf_r, _ = TH.validation_sets(folder, "report")
            return TH.choose(folder, p, old, (p_r, ev_r, nf_r, None))[0]["Pleural Effusion"]

        a, b = run(0.0), run(0.1)
        self.assertEqual(a["threshold"], b["threshold"])
        self.assertGreaterEqual(a["specificity"], 0.90)
        self.assertLess(float(np.mean(scores[:30] < a["threshold"] - 1e-6)), 0.90)
        self.assertEqual(a["report"]["negatives"], 30)
        self.assertEqual(a["report"], dict(a["report"], specificity=a["specificity"]))
        self.assertLess(b["report"]["specificity"], a["report"]["specificity"])
        self.assertGreater(b["report"]["sensitivity"], a["report"]["sensitivity"])
        self.assertEqual(a["positives"], 30)


    def test_unseen_machines_normals_raise_a_threshold(self):
        """A finding's threshold also keeps >= 90% of the unseen machines' select normals below
        it: when they score higher than NIH's No Finding images, it rises to them; their report
        normals are measured at it."""
        import types
        import labels as L
        import thresholds as TH
        k = L.INDEX["Pneumothorax"]
        targets = np.zeros((120, 11), np.float32)
        targets[:, k] = np.tile(np.r_[np.zeros(30), np.ones(30)], 2)
        folder = types.SimpleNamespace(
            dataset=np.array(["nih_darkcovidnet"] * 120),
            role=np.array(["select"] * 60 + ["report"] * 60),
            nih_raw=(["No Finding"] * 30 + ["Pneumothorax"] * 30) * 2,
            targets=targets, mask=np.ones((120, 11), np.float32))
        p = np.zeros((60, 11))
        p[:, k] = np.r_[np.linspace(0.0, 0.29, 30), np.linspace(0.2, 0.8, 30)]
        old = {f: 0.5 for f in L.FINDINGS}
        machines = np.zeros((20, 11))
        machines[:, k] = np.linspace(0.1, 0.6, 20)
        ev_r, nf_r, _ = TH.validation_sets(folder, "report")
        nih_only = TH.choose(folder, p, old, (p, ev_r, nf_r, None))[0]["Pneumothorax"]
        row = TH.choose(folder, p, old, (p, ev_r, nf_r, machines[::2]),
                        machine_normals=machines)[0]["Pneumothorax"]
        self.assertLess(nih_only["threshold"], 0.3)
        self.assertEqual(row["nih_only_threshold"], nih_only["threshold"])
        self.assertGreaterEqual(row["machine_specificity"], 0.90)
        self.assertLess(float(np.mean(machines[:, k] < row["threshold"] - 1e-6)), 0.90)
        self.assertEqual(row["specificity"], 1.0)
        self.assertLess(row["sensitivity"], nih_only["sensitivity"])
        self.assertEqual(row["report"]["machine_normals"], 10)
        self.assertEqual(row["report"]["machine_specificity"],
                         float(np.mean(machines[::2, k] < row["threshold"])))
        self.assertNotIn("machine_specificity", nih_only)


class FindingsOnNormals(unittest.TestCase):
    def test_rates_at_the_rule_a_checkpoint_would_get(self):
        """evidence.py, for a checkpoint: each finding's threshold by thresholds.py's rule (NIH
        No Finding and the same-source select normals), then the share of each group's normals
        called present, per part; findings with too few select positives stay off."""
        import types
        import evidence as V
        import labels as L
        k, f = L.INDEX["Pneumothorax"], "Pneumothorax"
        n = 80  # select: 20 No Finding + 20 Pneumothorax; report the same
        role = np.array(["select"] * 40 + ["report"] * 40)
        targets = np.zeros((n, 11), np.float32)
        targets[:, k] = np.tile(np.r_[np.zeros(20), np.ones(20)], 2)
        folder = types.SimpleNamespace(dataset=np.array(["nih_radsim"] * n), role=role,
                                       nih_raw=["No Finding" if t == 0 else "Pneumothorax"
                                                for t in targets[:, k]], targets=targets)
        probs_of = {i: np.zeros(11) for i in range(n)}
        for i in range(n):
            probs_of[i][k] = (i % 20) / 100.0 + 0.5 * targets[i, k]  # No Finding: 0.00-0.19
        ss = types.SimpleNamespace(dataset=np.array(["da"] * 20 + ["db"] * 20),
                                   role=np.array((["select"] * 10 + ["report"] * 10) * 2),
                                   tb=np.zeros(40, int))
        ss_probs = np.zeros((40, 11))
        ss_probs[:, k] = np.tile(np.linspace(0.1, 0.4, 10), 4)  # higher than NIH's normals
        t = V.select_finding_thresholds(folder, probs_of, ss_probs, ss)
        self.assertGreater(t[f], 0.19)  # raised above every NIH normal by the machines'
        self.assertEqual(t["Fibrosis"], 1.01)  # no select positives: off
        rates = V.findings_on_normals(folder, probs_of, ss_probs, ss, t)
        self.assertEqual(rates["NIH No Finding/report"]["findings"][f], 0.0)
        self.assertEqual(rates["da normal/report"]["images"], 10)
        self.assertEqual(rates["da normal/report"]["findings"][f],
                         float(np.mean(np.linspace(0.1, 0.4, 10) >= t[f])))
        self.assertNotIn("Fibrosis", rates["da normal/report"]["findings"])
        self.assertEqual(rates["db normal/select"]["any"],
                         rates["db normal/select"]["findings"][f])
        # report positives score 0.50-0.69: all above the raised threshold
        self.assertEqual(rates["NIH sensitivity/report"], {f: 1.0, "mean": 1.0})
        # the shift of other machines' normals against NIH's, as an AUC: every pair compared
        shift = V.normals_shift(folder, probs_of, ss_probs, ss, "select")
        nih = np.arange(20) / 100.0
        other = ss_probs[ss.role == "select", k]
        pairs = np.mean([(o > n) + 0.5 * (o == n) for o in other for n in nih])
        self.assertAlmostEqual(shift[f], pairs)
        self.assertEqual(shift["Cardiomegaly"], 0.5)  # all zero: no shift
        self.assertAlmostEqual(shift["mean"], (pairs + 8 * 0.5) / 9)
        self.assertEqual(shift["images"], [20, 20])


class ChooseNetwork(unittest.TestCase):
    def test_tb_rule_first_then_the_mean_of_four_select_figures(self):
        """choose_network.py: a network under 0.85 specificity within either machine never
        wins; among the rest, the findings' sensitivity at the machine-safe points counts as
        much as each AUC; evidence without that figure is left out."""
        import choose_network as C

        def result(da_spec, db_spec, da_auc, db_auc, nih_auc, sens):
            tb = {s + "/select": {"auc": a, "specificity": {"value": sp}}
                  for s, a, sp in (("da", da_auc, da_spec), ("db", db_auc, db_spec))}
            return {"tb_samesource": tb, "nih/select": {"mean": {"auc": nih_auc}},
                    "findings_on_normals": {"NIH sensitivity/select": {"mean": sens}}}

        results = {
            "best_aucs": result(0.96, 0.88, 0.97, 0.94, 0.92, 0.49),  # like 2.2
            "keeps_findings": result(0.91, 0.96, 0.93, 0.93, 0.92, 0.69),  # like seed 9
            "fails_db": result(0.91, 0.846, 0.99, 0.95, 0.93, 0.70),
            "old_evidence": {"tb_samesource": {}},
            "baseline": {"tb_samesource": {}},
        }
        rows = C.rank(results)
        self.assertEqual([r[0] for r in rows], ["keeps_findings", "best_aucs", "fails_db"])
        self.assertAlmostEqual(rows[0][2], (0.93 + 0.93 + 0.92 + 0.69) / 4)
        self.assertFalse(rows[-1][1])


class SameSourceCalibration(unittest.TestCase):
    def test_tb_platt_and_threshold_from_the_select_halves(self):
        """A model whose TB logit is the image's mean network input: Platt scaling and the
        highest threshold keeping >= 90% of the select halves' TB images, on those alone."""
        import evaluate as E
        import evidence as V
        import contract
        model = contract.ContractModel(torch.nn.Identity(), 1)
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.weight[0] = 1.0
        rng = np.random.RandomState(7)
        lines, grey = ["file,dataset,tb"], {}
        with tempfile.TemporaryDirectory() as d:
            for ds in ("da", "db"):
                for k in range(24):
                    tb = int(k < 10)
                    g = int(rng.randint(90, 200) if tb else rng.randint(40, 150))
                    f = "images/%s/%02d.png" % (ds, k)
                    png(os.path.join(d, f), g)
                    lines.append("%s,%s,%d" % (f, ds, tb))
                    grey[f] = g
            write(os.path.join(d, "labels.csv"), "\n".join(lines) + "\n")
            ss = V.SameSource(d)
            entry, table = E.calibrate_tb_samesource(model, dict(size=8, input_equalize=False), d)
        z = np.array([grey[f] * 2 / 255 - 1 for f in ss.files])
        sel = ss.role == "select"
        self.assertEqual((entry["n"], entry["positives"]), (int(sel.sum()),
                                                            int(ss.tb[sel].sum())))
        self.assertGreater(entry["platt_scale"], 0)  # TB brighter: the scale keeps the order
        p = 1 / (1 + np.exp(-(entry["platt_scale"] * z + entry["platt_offset"])))
        pos = p[sel & (ss.tb == 1)]
        t = entry["threshold"]
        self.assertGreaterEqual((pos >= t).mean(), 0.9)
        above = np.sort(pos[pos > t + 1e-6])
        if len(above):  # the next TB score up would keep fewer than 90%
            self.assertLess((pos >= above[0]).mean(), 0.9)
        self.assertAlmostEqual(entry["sensitivity"], float((pos >= t).mean()))
        neg = p[sel & (ss.tb == 0)]
        self.assertAlmostEqual(entry["specificity"], float((neg < t).mean()))
        self.assertEqual(table["da/select"]["tb"] + table["da/report"]["tb"], 10)
        self.assertAlmostEqual(table["db/report"]["specificity"]["value"], float(
            (p[(ss.dataset == "db") & (ss.role == "report") & (ss.tb == 0)] < t).mean()))


    def test_evidence_threshold_keeps_90_percent_and_no_more(self):
        import evidence as V
        for n in (10, 20, 37, 100):
            scores = np.linspace(0.1, 0.9, n) + 1e-4  # distinct, not on the 1e-6 grid
            t = V.tb_threshold(scores, np.ones(n, int))
            kept = (scores >= t).sum()
            self.assertEqual(kept, int(np.ceil(0.9 * n - 1e-9)), n)  # 9 of 10, 34 of 37


class GpuPack(unittest.TestCase):
    def test_pack_unpack_gives_the_jpeg_round_trip_of_the_training_rows(self):
        import data as D
        import gpu_pack
        with tempfile.TemporaryDirectory() as d:
            make_folder(d)
            write(os.path.join(d, "nih_boxes.csv"), "file,finding,xmin,ymin,xmax,ymax\n"
                  "images/nih_darkcovidnet/00000003_000.png,Mass,10,20,60,90\n")
            folder = D.Folder(d, os.path.join(d, "cache"), split="v2")
            # images with texture, so that JPEG changes them
            rng = np.random.RandomState(5)
            folder.images[:] = rng.randint(0, 256, folder.images.shape).astype(np.uint8)
            np.save(D.cache_path(os.path.join(d, "cache"), folder.files), folder.images)
            out = os.path.join(d, "pack")
            self.assertEqual(gpu_pack.main(["pack", "--data", d, "--cache",
                                            os.path.join(d, "cache"), "--out", out,
                                            "--quality", "85", "--no-check"]), 0)
            gpu_pack.main(["unpack", "--data", out, "--cache", os.path.join(d, "cache2")])
            again = D.Folder(out, os.path.join(d, "cache2"), split="v2")
            train = again.role == "train"
            self.assertTrue((again.role == folder.role).all())
            self.assertTrue(0 < train.sum() < len(train))
            for i in np.flatnonzero(train):
                np.testing.assert_array_equal(again.images[i],
                                              D.jpeg_round_trip(folder.images[i], 85))
            self.assertFalse(again.images[~train].any())  # held-out rows do not travel
            self.assertEqual(again.boxes, folder.boxes)
            self.assertTrue(folder.nih_boxes)  # NIH's boxes travel too (nih_box_weight)
            self.assertEqual(again.nih_boxes, folder.nih_boxes)


class RecipeFiles(unittest.TestCase):
    RECIPES = os.path.join(HERE, "..", "..", "tools", "train", "recipes")

    def test_every_recipe_names_known_settings_only(self):
        import train as T
        names = sorted(os.listdir(self.RECIPES))
        self.assertIn("cxr-default-2.2.json", names)
        for name in names:
            recipe = T.read_recipe(os.path.join(self.RECIPES, name))
            self.assertTrue(recipe, name)
            # each setting is one a run would change: equal to the default is a stale line
            for key, value in recipe.items():
                self.assertNotEqual(value, T.DEFAULTS[key], (name, key))

    def test_unknown_setting_is_refused_and_notes_are_skipped(self):
        import train as T
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.json")
            write(path, '{"_about": "a note", "lr": 0.5}')
            self.assertEqual(T.read_recipe(path), {"lr": 0.5})
            write(path, '{"learning_rate": 0.5}')
            with self.assertRaises(SystemExit):
                T.read_recipe(path)

    def test_the_shipped_models_recipe_has_its_input_size(self):
        import json
        import onnx
        import train as T
        model = os.path.join(HERE, "..", "..", "models", "cxr-default.onnx")
        if not os.path.exists(model):
            self.skipTest("no shipped model in this checkout")
        meta = {p.key: p.value for p in onnx.load(model, load_external_data=False).metadata_props}
        # cxr-default-X.Y and its operating-point revisions X.Y.Z come from recipe X.Y
        version = meta["cxr.model_version"]
        if not version.startswith("cxr-default-2."):
            self.skipTest("the shipped model predates recipe files")
        name = ".".join(version.split(".")[:2]) + ".json"
        recipe = T.read_recipe(os.path.join(self.RECIPES, name))
        self.assertEqual(json.loads(meta["cxr.preprocess"])["width"], recipe["size"])
        self.assertIn("mobilenet_v2", meta["cxr.model_card"])
        cfg = dict(T.DEFAULTS, **recipe)
        seeds = [cfg["seed"] + k for k in range(cfg["members"])]
        # the card's training section names the seeds the way train.py's card writes them
        named = ("seed %d." % seeds[0] if len(seeds) == 1 else
                 "at seeds %s," % ", ".join(str(s) for s in seeds))
        self.assertIn(named, meta["cxr.model_card"])


if __name__ == "__main__":
    unittest.main()
