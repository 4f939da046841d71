"""Writes models/MODEL_CARD.md from a training run's metrics (evaluate.validate + training
info), so that every number in the card comes from the run that produced the ONNX file."""
import data as D
import labels as L
import teacher as KD


def _equalisation_words(mode):
    """The input step of a recipe's `input_equalize` (false, true or "clahe"), for the card."""
    if mode == "clahe":
        return (", its grey levels equalised by contrast-limited adaptive histogram equalisation "
                "(CLAHE, %d × %d tiles, clip %g; in training too, after augmentation)" % (
                    D.CLAHE_TILES, D.CLAHE_TILES, D.CLAHE_CLIP))
    return ", its grey histogram equalised (in training too, after augmentation)" if mode else ""


def _f(x, d=3):
    return ("%%.%df" % d) % x


def _ci(ci, d=3):
    return "%s–%s" % (_f(ci[0], d), _f(ci[1], d))


def _nih_intensity(strength):
    if strength == 1.0:
        return ""
    if strength == 0.0:
        return ("; NIH images get none of the intensity changes (gamma, contrast, brightness, "
                "equalisation): they are one source, and those changes hid the grey-level cues "
                "of their findings")
    return "; on NIH images the intensity changes are scaled by %g" % strength


def _span(values, fmt="%d"):
    lo, hi = fmt % min(values), fmt % max(values)
    return lo if lo == hi else "%s–%s" % (lo, hi)


def _recipe_difference(run_cfg, shipped_cfg):
    """Settings (other than length) in which a LOSO run's recipe differs from the shipped one."""
    if run_cfg is None:
        return "not recorded"
    diff = ["%s %s (shipped %s)" % (k, run_cfg.get(k), v) for k, v in sorted(shipped_cfg.items())
            if k not in ("steps", "max_minutes") and run_cfg.get(k) != v]
    return "; ".join(diff) or "none"


def _network(cfg):
    kind = cfg.get("backbone", "resnet")
    if kind == "mobilenet_v2":
        return "MobileNetV2 (alpha 1.0, output stride %d: the last stride-2 stages dilated)" % (
            cfg.get("output_stride", 16))
    if kind == "mobilenet_v2_b10":
        return "MobileNetV2 up to block_10 (96 channels at 1/16 of the input)"
    return "narrow ResNet (stage widths %s, blocks %s, last stage dilated)" % (
        cfg["widths"], cfg["blocks"])


def render(m, version, thresholds):
    cfg, tr, cnt = m["config"], m["training"], m["counts"]
    out = []
    w = out.append
    w("# Model card: %s\n" % version)
    w("`models/cxr-default.onnx`, cxrd's default model. Written by `tools/train/train.py` at "
      "the end of the run that trained and exported the model: every number below comes from "
      "that run.\n")
    w("## Intended use\n")
    w("Decision support for trained readers of adult frontal chest radiographs: it flags "
      "possible tuberculosis and ten other findings and shows where the network looked. **It is "
      "not a medical device.** It is not cleared or validated for diagnosis, it must not be used "
      "to rule disease in or out without a qualified reader, and its numbers come from small "
      "public collections, not from a clinical study. A site should validate it (or train its "
      "own model with `tools/train/`) on its own images before any use.\n")
    w("## Training machine and recipe\n")
    device = tr.get("device", m["speed"].get("cpu", "CPU model unknown"))
    if "GPU" in device or "NVIDIA" in device:
        machine = "one %s GPU (bf16 autocast)" % device
    else:
        machine = "a CPU (%s), PyTorch with %d thread(s)" % (
            device, tr.get("threads", m["speed"]["threads"]))
    n = cfg.get("members", 1)
    capped = (" (stopped by the time cap of %g minutes; the schedule annealed on time)" %
              cfg["max_minutes"] if tr["time_capped"] else "")
    if n == 1:
        w("- Trained on %s: %d steps of %d images in %.1f minutes%s, seed %d." % (
            machine, tr["steps_done"], cfg["batch"], tr["train_seconds"] / 60, capped,
            cfg["seed"]))
    else:
        w("- An ensemble of %d networks of the same recipe at seeds %s, trained on %s, each "
          "for %s steps of %d images (%s minutes each)%s. The exported model runs them side by "
          "side and averages their class maps, so its logits are the mean of theirs." % (
              n, ", ".join(str(i["seed"]) for i in tr["members"]), machine,
              _span([i["steps_done"] for i in tr["members"]]), cfg["batch"],
              _span([i["train_seconds"] / 60 for i in tr["members"]], "%.1f"), capped))
    if tr.get("note"):
        w("- %s" % tr["note"])
    w("- Network: %s, %d parameters%s, one-channel input %d×%d, class maps %d×%d (stride 16). "
      "Classifier = 1×1 convolution before global average pooling, so `cam` is exact (mean of "
      "the map + bias = logit%s)." % (_network(cfg), m["speed"]["parameters"],
                                       " in all" if n > 1 else "", cfg["size"], cfg["size"],
                                       m["cam_shape"][0], m["cam_shape"][1],
                                       "; for Tuberculosis its maximum + bias"
                                       if cfg.get("tb_pool") == "max" else ""))
    if tr.get("pretrained"):
        p = tr["pretrained"]
        w("- Initial weights: npm `%s@%s` (%s licence; `%s`, SHA-256 %s…), converted by "
          "`tools/train/pretrained.py` (docs/pretrained.md): %s." % (
              p["package"], p["version"], p["license"], p["file"],
              p["state_dict_sha256"][:16], p["model"]))
    w("- Input: the rendered 8-bit grey image (bone bright), area-resized to %d×%d without "
      "keeping the aspect ratio%s, then pixel × 2/255 − 1 (`cxr.preprocess`)." % (
          cfg["size"], cfg["size"], _equalisation_words(cfg.get("input_equalize"))))
    w("- Loss: masked binary cross-entropy (each finding averaged over the images that label "
      "it); NIH images are %d%% of every batch, the rest split equally between TB and non-TB "
      "images and equally between collections within each class." % round(
          100 * cfg["nih_share"]))
    if cfg.get("tb_loss") == "lesion":
        w("- Tuberculosis has no image-level loss: its class map is trained only by a cell-level "
          "binary cross-entropy (weight %g) within TBX11K TB training images, cells at least a "
          "quarter covered by a lesion box against cells outside every box of the same image "
          "(partly covered cells left out)%s." % (
              cfg["lesion_weight"], ", and every cell of NIH `No Finding` training images as "
              "negative (weight %g)" % cfg["lesion_negatives"]
              if cfg.get("lesion_negatives") else ""))
    ramp = "off for the first %d%% of training and ramped to full by %d%%" % (
        round(100 * cfg["box_start"]), round(100 * cfg["box_full"]))
    if cfg.get("tb_loss") == "lesion":
        pointing = "(1) the TB pointing loss is off (the lesion loss above replaces it); "
    else:
        pointing = ("(1) TBX11K lesion boxes supervise the TB class map with a pointing loss (−log "
                    "of the map's spatial-softmax mass inside the boxes; it cannot move the TB "
                    "logit), weight %g, %s; " % (cfg["box_weight"], ramp))
    if cfg.get("nih_box_weight"):
        pointing += ("NIH's own boxes (`nih_boxes.csv`) supervise their findings' class maps with "
                     "the same pointing loss, weight %g, %s; " % (cfg["nih_box_weight"], ramp))
    w("- Against the source confound: %s"
      "(2) class-conditional source-adversarial heads (which TB collection, given TB; which "
      "non-TB collection, given non-TB) behind gradient reversal, weight up to %g; (3) "
      "augmentation that hides acquisition cues: crops of 60–100%% of the area biased to the "
      "middle (lung fields), ±10° rotation, aspect ±10%%, gamma, contrast and brightness, "
      "histogram equalisation (20%%), blur, noise, and black/white border strips (30%%)%s." % (
          pointing, cfg["adv_weight"], _nih_intensity(cfg.get("nih_photometric", 1.0))))
    if cfg.get("resample_aug"):
        w("- Resampling augmentation (`resample_aug`): crops sampled 2 × 2 per pixel and "
          "averaged (closer to cxrd's area resize than one bilinear sample when a crop "
          "shrinks), 30% of images shrunk to 45–90% of the side and "
          "enlarged back, and unsharp masking beside the blur.")
    if cfg.get("jpeg_aug"):
        w("- JPEG augmentation (`jpeg_aug`): %d%% of training inputs JPEG-compressed last, at "
          "quality 30–95 (tools/train/jpeg_like.py)." % round(100 * cfg["jpeg_aug"]))
    if cfg.get("normal_negatives"):
        w("- The normals of the collections other than NIH count as negatives of the nine NIH "
          "findings, at weight %g (`normal_negatives`)." % cfg["normal_negatives"])
    if cfg.get("teacher_weight"):
        w("- Soft targets (`teacher_weight` %g): the nine NIH findings' labels of the NIH "
          "training images mixed with the probabilities of the teacher `%s` at that weight."
          % (cfg["teacher_weight"], cfg["teacher"]))
    if cfg.get("tb_pseudo_weight") and cfg.get("tb_loss") == "lesion":
        w("- TB lesion cells from the teacher `%s` (`tb_pseudo_weight` %g): on the TB "
          "training images without boxes, the cells of its TB class map at TB probability "
          ">= %g count as lesion and those <= %g as clear (images with no lesion cell are "
          "left out)." % (cfg["teacher"], cfg["tb_pseudo_weight"], KD.PSEUDO_LESION,
                          KD.PSEUDO_CLEAR))
    if cfg.get("train_jpeg_quality"):
        w("- Training images were JPEG-compressed at quality %d (and decoded) before "
          "augmentation; validation used the images as they are." % cfg["train_jpeg_quality"])
    w("- AdamW, learning rate %g, weight decay %g, batch %d, linear warm-up %d steps then "
      "cosine decay%s.\n" % (cfg["lr"], cfg["weight_decay"], cfg["batch"], cfg["warmup_steps"],
                             "; the exported weights are the exponential moving average of "
                             "the training weights (decay %g)" % cfg["ema_decay"]
                             if cfg.get("ema_decay") else ""))
    w("## Data\n")
    if cfg.get("split") == "v2":
        w("`../shared/data/cxr` (see its README), nested split v2 (`tools/train/splits.py`): "
          "what 1.x trained on plus 20% of the NIH patients no 1.x model saw train; the rest is "
          "held out, halved (NIH by patient, other collections by image within each TB class) "
          "into \"select\" (calibration and thresholds) and \"report\". The tables below "
          "pool both halves; `tools/train/evidence.py` reports them apart.\n")
    else:
        w("`../shared/data/cxr` (see its README). Validation split: NIH held out by patient "
          "(30%% of patients; file names `<patient>_<study>.png`), every other collection 20%% "
          "of its images per TB class (seed %d). No image of the validation split is used for "
          "training.\n" % cfg["seed"])
    w("| collection | images | TB | validation images |")
    w("| --- | --- | --- | --- |")
    for d, c in cnt.items():
        if isinstance(c, dict) and "images" in c:
            w("| %s | %d | %d | %d |" % (d, c["images"], c["tb"], c["validation"]))
    w("")
    w("Label mapping onto the 11 findings (documented in docs/training.md): the NIH labels give "
      "the nine findings below (Mass and Nodule → Nodule Mass, Effusion → Pleural Effusion, "
      "Pleural_Thickening → Pleural Thickening); NIH Pneumonia, Edema, Emphysema and Hernia are "
      "not among the contract's findings and are ignored. Non-NIH images label only "
      "Tuberculosis; their other findings are masked out of the loss.\n")
    w("**Calcification has no label in any collection here. Its output is untrained**: the "
      "shipped calibration fixes its probability at sigmoid(−10) ≈ 0.00005 (Platt scale 0, "
      "offset −10) and its threshold at 1.0, so it is never reported present; its class map is "
      "untrained and meaningless.\n")
    w("## NIH findings (the honest same-source check)\n")
    w("AUC of finding-positive vs NIH `No Finding` validation images, bootstrap 95% CI (2000 "
      "stratified resamples), next to the trivial baseline (logistic regression on a 16×16 "
      "thumbnail plus a 32-bin grey histogram, trained on the same training split, positives "
      "vs No Finding). Findings with fewer than 20 validation positives are **not validated**.\n")
    w("| finding | val. positives | network AUC (95% CI) | baseline AUC (95% CI) | network − "
      "baseline (paired 95% CI) | status |")
    w("| --- | --- | --- | --- | --- | --- |")
    beat = 0
    nval = 0
    clear = 0
    behind = []
    for f, r in m["nih_findings"].items():
        status = "validated" if r["validated"] else "not validated (< 20 positives)"
        if r["validated"]:
            nval += 1
            beat += r["auc"] > r["baseline_auc"]
            clear += r.get("difference_ci", [0])[0] > 0
            if r["auc"] <= r["baseline_auc"]:
                behind.append("%s (%+.3f)" % (f, r["auc"] - r["baseline_auc"]))
        dci = r.get("difference_ci")
        w("| %s | %d (vs %d) | %s (%s) | %s (%s) | %+.3f%s | %s |" % (
            f, r["positives"], r["negatives"], _f(r["auc"]), _ci(r["ci"]),
            _f(r["baseline_auc"]), _ci(r["baseline_ci"]), r["auc"] - r["baseline_auc"],
            " (%+.3f to %+.3f)" % tuple(dci) if dci else "", status))
    w("")
    w("Mean over the nine mapped findings: network **%s**, baseline %s. The network beats the "
      "baseline on %d of the %d validated findings%s. (CheXNet, trained on 112,120 NIH images, "
      "reached about 0.84 on these findings; this network saw about %d NIH training images.)\n"
      % (_f(m["nih_mean"]["auc"]), _f(m["nih_mean"]["baseline_auc"]), beat, nval,
         "; on %d of them the paired CI of the difference lies above zero" % clear
         if all("difference_ci" in r for r in m["nih_findings"].values()) else "",
         sum(c["images"] - c["validation"] for d, c in cnt.items()
             if d.startswith("nih_") and isinstance(c, dict) and "images" in c)))
    sc = m.get("seed_check")
    if sc:
        validated = [f for f, r in m["nih_findings"].items() if r["validated"]]
        w("Seed check: the same recipe at seeds %s (not shipped) scored, per "
          "validated finding: %s; mean %s. It beats the baseline on %d of the %d validated "
          "findings: differences of this size between the tables are the luck of the seeds, "
          "not the recipe.\n" % (
              ", ".join(map(str, sc["seeds"])),
              "; ".join("%s %s" % (f, _f(sc["auc"][f])) for f in validated),
              _f(sc["nih_mean"]),
              sum(sc["auc"][f] > m["nih_findings"][f]["baseline_auc"] for f in validated),
              len(validated)))
    if beat < nval:
        w("**This falls short of the project's bar** (beat the baseline on every finding with "
          "at least 20 validation positives): the network is not above the trivial baseline on "
          "%s, after %d steps (about %.1f passes over the training images).\n" % (
              " and ".join(behind), tr["steps_done"],
              tr["steps_done"] * cfg["batch"] / max(tr["train_images"], 1)))
    p = m["pointing"]
    w("## Heatmap check: does the TB map point at the lesion?\n")
    w("TBX11K validation images with lesion boxes (%d images): share whose TB class-map maximum "
      "(map bilinearly upsampled to the 256×256 image) lies inside a box, against three "
      "controls.\n" % p["images"])
    w("| measure | share |")
    w("| --- | --- |")
    w("| TB class map maximum inside a box (pointing game) | **%s** (95%% CI %s) |" % (
        _f(p["pointing"]), _ci(p["pointing_ci"])))
    w("| box-area fraction (a random point) | %s |" % _f(p["box_area_fraction"]))
    w("| best fixed map cell chosen on the training boxes (cell %s of %s; %s on training) | %s |"
      % (tuple(p["fixed_cell"]["cell"]), "×".join(map(str, p["fixed_cell"]["map"])),
         _f(p["fixed_cell"]["train_rate"]), _f(p["fixed_cell"]["val_rate"])))
    w("| each image's maximum scored against the other images' boxes | %s |" % _f(
        p["other_image_boxes"]))
    w("")
    mg = p["margin_over_fixed_cell"]
    verdict = ("the map finds the lesion in each image better than a position prior"
               if p["margin_ci"][0] > 0 else
               "this does **not** show that the map finds the lesion in each image better than "
               "always pointing at one place")
    w("Margin over the fixed-cell prior: %+.3f (paired bootstrap 95%% CI %s): %s. Margin over "
      "other images' boxes: %+.3f.\n" % (mg, _ci(p["margin_ci"]), verdict,
                                         p["pointing"] - p["other_image_boxes"]))
    ts = m["tb_sources"]
    w("## Tuberculosis by source (reported, not optimised for)\n")
    w("TB collections and non-TB collections never share a source (the data README explains "
      "why): these AUCs can be earned by recognising the collection. The baseline column shows "
      "how far a 16×16-thumbnail logistic regression gets on the same pairs. "
      "`lundis_course_tb` vs `lundis_course_tb` is the within-collection check (its TB images "
      "are mostly photographs of film, its normals digital, so even that is confounded).\n")
    w("| TB source | non-TB source | TB / non-TB images | network AUC (95% CI) | baseline AUC |")
    w("| --- | --- | --- | --- | --- |")
    for r in ts["pairs"]:
        w("| %s | %s | %d / %d | %s (%s) | %s |" % (
            r["tb_source"], r["non_tb_source"], r["tb_n"], r["non_tb_n"], _f(r["auc"]),
            _ci(r["ci"]), _f(r["baseline_auc"])))
    o = ts["overall"]
    w("| all | all | %d / %d | %s (%s) | %s |\n" % (o["tb_n"], o["non_tb_n"], _f(o["auc"]),
                                                    _ci(o["ci"]), _f(o["baseline_auc"])))
    lo = m.get("loso")
    w("## Leave one TB collection out\n")
    if lo:
        w("Separate runs of the recipe above (an ensemble: all its members; their step counts "
          "in the table, the fewest of the members) trained without "
          "one TB collection's images; TB AUC of all that collection's TB images (none seen in training) against the "
          "held-out non-TB validation images.\n")
        w("| left out | steps (machine) | TB images | vs all non-TB (95% CI) | per non-TB source | "
          "recipe differs in |")
        w("| --- | --- | --- | --- | --- | --- |")
        for d, r in sorted(lo.items()):
            per = "; ".join("%s %s" % (k, _f(v["auc"])) for k, v in sorted(r.items())
                            if isinstance(v, dict) and "auc" in v and k != "all_normals")
            w("| %s | %d (%s) | %d | %s (%s) | %s | %s |" % (
                d, r["steps_done"], r.get("device", "CPU"), r["tb_images"],
                _f(r["all_normals"]["auc"]), _ci(r["all_normals"]["ci"]), per,
                _recipe_difference(r.get("config"), cfg)))
        w("")
    else:
        w("Not run for this model; see docs/training.md for the command.\n")
    cal = m["calibration"]
    c = cal["Tuberculosis"]
    w("## Operating points and calibration\n")
    w("Per-finding Platt scaling (probability = sigmoid(a·logit + b)) is fitted on the "
      "validation split and built into the ONNX (`platt_scale`, `platt_offset`; also in "
      "`cxr.calibration`). ECE (10 equal-width bins) is measured by 2-fold cross-fitting, "
      "calibrating on one half of the validation images and scoring the other. Thresholds "
      "(`cxr.thresholds`) are chosen on the calibrated validation probabilities: Tuberculosis "
      "at ≥ 90% sensitivity (the WHO triage target), the others by Youden's J on NIH "
      "validation images. Sensitivity/specificity are shown on the images the threshold was "
      "chosen on and, cross-fitted, with the threshold chosen on the other half.\n")
    if m.get("calibrated_on"):
        w("This run used the nested v2 split: Platt scaling and thresholds come from its "
          "\"select\" part only, and Tuberculosis's from the select halves of the same-source "
          "sets `da` and `db` (TB and normal from one machine each), so the row below is "
          "within-source.\n")
    w("Tuberculosis at threshold %s: sensitivity %s, specificity %s (cross-fitted: %s / %s) on "
      "%d validation images (%d TB) — %s, not a clinical estimate.\n" % (
          _f(c["threshold"], 4), _f(c["sensitivity"]), _f(c["specificity"]),
          _f(c["sensitivity_crossfit"]), _f(c["specificity_crossfit"]), c["n"], c["positives"],
          "two machines only" if m.get("calibrated_on") else "on these confounded collections"))
    w("| finding | threshold | sensitivity | specificity | ECE raw | ECE after Platt "
      "(cross-fitted) | images (positives) |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for f in L.FINDINGS:
        r = cal[f]
        if not r["trained"]:
            w("| %s | %s | — | — | — | — | untrained (no labels) |" % (f, _f(r["threshold"], 2)))
            continue
        w("| %s | %s | %s | %s | %s | %s | %d (%d) |" % (
            f, _f(r["threshold"], 4), _f(r["sensitivity"]), _f(r["specificity"]),
            _f(r["ece_raw"]), _f(r["ece_platt_crossfit"]), r["n"], r["positives"]))
    w("")
    w("TB threshold by collection (sensitivity for TB collections, specificity for non-TB):\n")
    w("| collection | images | at the TB threshold |")
    w("| --- | --- | --- |")
    for k, r in m["tb_at_threshold"].items():
        v = r.get("sensitivity", r.get("specificity"))
        w("| %s | %d | %s %s |" % (k, r["n"], "sensitivity" if "sensitivity" in r
                                    else "specificity", _f(v)))
    w("")
    s = m["speed"]
    w("## Speed\n")
    w("PyTorch, %d thread(s) on the exporting machine's CPU (%s), measured at export (other "
      "jobs may have shared the CPU): %.1f ms per forward (%s input). The C runtime's figure "
      "(`bench/nn`) is in docs/training.md.\n" % (
          s["threads"], s.get("cpu", "CPU model unknown"), s["pytorch_ms_per_forward"],
          "×".join(map(str, s["input"]))))
    w("## Known limitations\n")
    w("- Small data: %d NIH training images for nine findings; CIs above are wide." % sum(
        c["images"] - c["validation"] for d, c in cnt.items()
        if d.startswith("nih_") and isinstance(c, dict) and "images" in c))
    w("- Source confound: every TB collection differs in source from every non-TB collection; "
      "the TB AUCs above cannot separate disease from source. Only the NIH findings and the "
      "heatmap check are evidence of learning disease.")
    w("- Calcification is untrained (no labels). Pneumothorax and any finding marked not "
      "validated have too few validation positives to be assessed.")
    w("- Calibration and thresholds were fitted on the same validation split that reports "
      "the AUCs (AUC is unaffected by the monotone calibration); the cross-fitted figures show "
      "the optimism. TB prevalence in the validation split (%d of %d) is far above any "
      "screening population, so TB probabilities are not screening-population probabilities."
      % (c["positives"], c["n"]))
    w("- The recipe was chosen after comparing runs on this same validation split "
      "(docs/training.md lists them), so the AUCs above are somewhat optimistic.")
    w("- Images were at most 256×256 and mostly pre-downsampled by third parties; behaviour on "
      "full-resolution DICOM rendered by cxrd is not validated here. Children, lateral views "
      "and portable ICU films are not represented in the validation data.")
    start = ("Fine-tuned from natural-image weights" if tr.get("pretrained")
             else "Trained from scratch")
    w("- %s on about 4,300 images: more data (a site's own) should do better than more "
      "training on these; docs/training.md records what longer runs did.\n" % start)
    return "\n".join(out) + "\n"
