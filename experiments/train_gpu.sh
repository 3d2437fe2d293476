#!/usr/bin/env bash
# Train all four presets side by side on one GPU, within MINUTES each (the device call's budget).
# Prepared by experiments/gpu_prepare.sh; then `bash experiments/device_tree.sh slim` (the tree
# must fit the device's 64 MiB), the device command (carry .devdata/gpu-bundle and .whl), and
# `bash experiments/device_tree.sh back` once its files are fetched:
#
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
#   export PYTHONPATH=/tmp/site:$PWD && MINUTES=8 SIZE=small INIT=1 BF16=1 DEST=$OUT bash experiments/train_gpu.sh
#
# BF16=1 adds --bf16: the decoder CNN's convolutions in bfloat16 (encoder, transforms, norms and
# linear path stay float32; docs/speed.md measured 1.5-1.7x on this project's CPU, more expected
# on a GPU's tensor cores); recommended there.
# SIZE: decoder size (small, medium, ...). INIT=1 starts from the bundled weights of that size
# (pywalloc/weights/<preset>-<size>.safetensors.xz, when present), otherwise from the PCA start.
# WIDEN=1 (images, with SIZE=medium): start each image codec from its bundled small weights
# widened to medium by experiments/widen.py (the same function, twice the channels), so the
# run begins at the small decoder's quality instead of the PCA start; audio codecs, whose
# small width (192) does not divide medium's (256), start from PCA as before.
# STE=1 adds --ste: encoder and decoder trained on the rounded latents, the rounding's gradient
# passed straight through (docs/models.md, "Through the rounding"); meant for fine-tuning
# (INIT=1), where on the CPU it gave stereo-20x +0.04 dB over decoder-only training.
# DEST receives <preset>-<size>.safetensors.xz (fp16; int8 CNN if fp16 is over 15 MiB) and
# <preset>-<size>.csv (the log).
# CPU dry run: MINUTES=0.3 BATCH=4 WORKERS=1 DEST=/tmp/gpu-dry bash experiments/train_gpu.sh
set -u
MINUTES=${MINUTES:-8}; SIZE=${SIZE:-small}; DEST=${DEST:-runs/gpu}
DATA=${DATA:-.devdata/gpu-bundle}; RUNS=${RUNS:-/tmp/walloc-gpu}
BATCH=${BATCH:-32}; WORKERS=${WORKERS:-3}
mkdir -p "$DEST" "$RUNS"
for p in rgb-16x rgb-4x stereo-20x stereo-5x; do
    case $p in rgb-*) data="$DATA/images"; lr=1e-3 ;; *) data="$DATA/audio"; lr=1e-3 ;; esac
    init=()
    w=pywalloc/weights/$p-$SIZE.safetensors.xz  # bundled defaults are xz since 2026-12-01
    [ -f "$w" ] || w=pywalloc/weights/$p-$SIZE.safetensors
    if [ "${INIT:-0}" = 1 ] && [ -f "$w" ]; then init=(--init "$w"); lr=4e-4; fi
    if [ "${WIDEN:-0}" = 1 ] && [ "$SIZE" = medium ] && [ "${p%%-*}" = rgb ]; then
        python3 experiments/widen.py "$p" "$RUNS/$p-widened.safetensors" --width 256 \
            && init=(--init "$RUNS/$p-widened.safetensors") && lr=4e-4
    fi
    python3 -m pywalloc.training --preset "$p" --size "$SIZE" --data "$data" --out "$RUNS/$p" \
        "${init[@]}" --batch "$BATCH" --per-item 4 --lr "$lr" --warmup 200 --steps 1000000 \
        --max-minutes "$MINUTES" --workers "$WORKERS" --log-every 100 --ckpt-every 1000 \
        ${BF16:+--bf16} ${STE:+--ste} 2>"$RUNS/$p.err" &
done
wait
for p in rgb-16x rgb-4x stereo-20x stereo-5x; do
    echo "== $p"; tail -c 400 "$RUNS/$p.err" | tr '\r' '\n' | tail -2; tail -n 2 "$RUNS/$p/log.csv"
    # fp16, xz-compressed; a file over the 15 MiB that a device call can bring back (audio
    # `medium` is about 21 MB in fp16) is written with its decoder CNN in int8 instead.
    python3 - "$RUNS/$p/model.safetensors" "$DEST/$p-$SIZE.safetensors.xz" <<'PY'
import os, sys
from pywalloc.codec import Codec
codec, dst = Codec.from_file(sys.argv[1]), sys.argv[2]
codec.save(dst)
if os.path.getsize(dst) > 15 * 2**20:
    codec.save(dst, int8=True)
    print(f"{dst}: over 15 MiB in fp16, written with an int8 CNN", file=sys.stderr)
PY
    cp "$RUNS/$p/log.csv" "$DEST/$p-$SIZE.csv"
done
