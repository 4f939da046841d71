#!/bin/bash
# One GPU call of the 2.x recipe sweep (issue 18; docs/training.md, "A GPU sweep"): trains
# one-member checkpoints of several recipes side by side on one GPU, each capped at MINUTES of
# training, and writes them to OUT as NAME.pt, for tools/train/evidence.py to measure
# elsewhere, with sweep.log (what ran, and the tail of each run's log); at most 7 recipes, as
# the run tool brings back 8 files (16 MiB each). Prints what ran. Nothing is downloaded: the
# data (a folder, or the pack of tools/train/gpu_pack.py) and the converted MobileNetV2 weights
# must be there (see the doc).
#
#   tools/train/sweep_gpu.sh            # OUT=$OUT (the run tool's) or build/sweep
#
# Settings (environment):
#   RECIPES  space-separated BACKBONE:TB_LOSS:TB_POOL[:SEED[:TAG:SETTINGS]] (default: resnet,
#            mobilenet_v2_b10, mobilenet_v2, each with image:mean and lesion:max); SETTINGS
#            are this run's own train.py settings, KEY=JSON joined by '+' (no spaces), and
#            TAG ends the run's name, e.g. mobilenet_v2:lesion:max:7:s256:size=256+steps=4000
#   MINUTES  time cap of each training (default 6); STEPS planned steps (default 4000)
#   DATA     labelled folder (default shared/data/cxr if it is there, else build/gpu/cxr);
#            a folder holding gpu_pack.py's train_jpeg.npz is unpacked into CACHE, and the
#            runs then train on its images as they are (train_jpeg_quality 0: the pack's JPEG
#            is the compression train_jpeg_quality 90 would apply)
#   PRETRAINED the converted weights (default build/pretrained/mobilenet_v2.pt)
#   CACHE    image cache folder (default build/train/cache; built from DATA first when
#            missing)
#   EXTRA    more train.py arguments for every run, e.g. "--set lesion_negatives=0.2"
#   WORK     the runs' work folders (default build/sweep-work)
#   THREADS  CPU threads per run (default 2); PYTHON (default python3); DEVICE (default
#            cuda; cpu only to try the script itself with a few STEPS)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-build/sweep}
DATA=${DATA:-}
if [ -z "$DATA" ]; then
    if [ -f shared/data/cxr/labels.csv ]; then DATA=shared/data/cxr; else DATA=build/gpu/cxr; fi
fi
PRETRAINED=${PRETRAINED:-build/pretrained/mobilenet_v2.pt}
CACHE=${CACHE:-build/train/cache}
MINUTES=${MINUTES:-6}
STEPS=${STEPS:-4000}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
EXTRA=${EXTRA:-}
RECIPES=${RECIPES:-"resnet:image:mean resnet:lesion:max mobilenet_v2_b10:image:mean
mobilenet_v2_b10:lesion:max mobilenet_v2:image:mean mobilenet_v2:lesion:max"}

WORK=${WORK:-build/sweep-work}
# shellcheck disable=SC2206  # RECIPES is a whitespace-separated list
list=($RECIPES)
if [ "${#list[@]}" -gt 7 ]; then echo "at most 7 recipes (8 files come back)"; exit 1; fi
mkdir -p "$OUT" "$CACHE" "$WORK"
exec > >(tee "$OUT/sweep.log") 2>&1
echo "sweep: $(date -u +%FT%TZ) on ${HOSTNAME:-unknown host}"
if [ "$DEVICE" = cuda ]; then
    "$PYTHON" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device";
print("torch", torch.__version__, torch.cuda.get_device_name(0))'
fi
[ -f "$DATA/labels.csv" ] || { echo "no $DATA/labels.csv (set DATA)"; exit 1; }
case "$RECIPES" in *mobilenet*)
    [ -f "$PRETRAINED" ] || { echo "no $PRETRAINED (carry build/pretrained)"; exit 1; } ;;
esac
# the image cache once, before the runs share it (each would otherwise build its own)
t0=$(date +%s)
if [ -f "$DATA/train_jpeg.npz" ]; then
    "$PYTHON" tools/train/gpu_pack.py unpack --data "$DATA" --cache "$CACHE"
    EXTRA="--set train_jpeg_quality=0 $EXTRA"
else
    "$PYTHON" - "$DATA" "$CACHE" <<'EOF'
import sys
sys.path.insert(0, "tools/train")
import data as D
f = D.Folder(sys.argv[1], sys.argv[2], split="v2")
print("data: %d images, cache %s" % (f.n, f.images.shape))
EOF
fi
echo "data $DATA, cache ready in $(( $(date +%s) - t0 )) s; every run: $EXTRA"

pids=() names=()
for r in "${list[@]}"; do
    IFS=: read -r backbone loss pool seed tag settings <<<"$r"
    seed=${seed:-6}
    name="$backbone-$loss-$pool-s$seed${tag:+-$tag}"
    own=()
    if [ -n "${settings:-}" ]; then
        IFS=+ read -r -a pairs <<<"$settings"
        for p in "${pairs[@]}"; do own+=(--set "$p"); done
    fi
    work="$WORK/$name"
    mkdir -p "$work"
    ln -sfn "$(realpath "$CACHE")" "$work/cache"
    # shellcheck disable=SC2086  # EXTRA is a list of arguments
    "$PYTHON" tools/train/train.py --device "$DEVICE" --train-only --threads "$THREADS" \
        --data "$DATA" --work "$work" --steps "$STEPS" --max-minutes "$MINUTES" \
        --set members=1 --set seed="$seed" --set 'split="v2"' --set "backbone=\"$backbone\"" \
        --set "tb_loss=\"$loss\"" --set "tb_pool=\"$pool\"" \
        --set "pretrained=\"$PRETRAINED\"" $EXTRA "${own[@]}" >"$work/train.log" 2>&1 &
    pids+=($!) names+=("$name")
    echo "started $name (pid $!)"
done
fail=0
for k in "${!pids[@]}"; do
    name=${names[$k]}
    if wait "${pids[$k]}"; then
        cp "$WORK/$name/checkpoint.pt" "$OUT/$name.pt"
        echo "== $name: last lines of its log"
        tail -n 4 "$WORK/$name/train.log" | cut -c1-400
    else
        echo "== FAILED $name: tail of its log"
        tail -n 30 "$WORK/$name/train.log"
        fail=1
    fi
done
echo "what ran (checkpoints: $OUT/NAME.pt):"
"$PYTHON" - "$OUT" "${names[@]}" <<'EOF'
import os, sys
import torch
out = sys.argv[1]
print("%-34s %6s %7s %6s %s" % ("run", "steps", "seconds", "capped", "last losses"))
for name in sys.argv[2:]:
    path = os.path.join(out, name + ".pt")
    if not os.path.exists(path):
        print("%-34s no checkpoint" % name)
        continue
    info = torch.load(path, map_location="cpu")["info"]
    m = info["members"][0]
    print("%-34s %6d %7.0f %6s %s" % (name, m["steps_done"], m["train_seconds"],
                                       m["time_capped"], {k: round(v, 3) for k, v in
                                                          m["last_losses"].items()}))
EOF
echo "sweep: done $(date -u +%FT%TZ)"
exit $fail
