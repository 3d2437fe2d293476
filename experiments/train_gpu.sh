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
# passed straight through (docs/training-history.md, "Through the rounding"); meant for fine-tuning
# (INIT=1), where on the CPU it gave stereo-20x +0.04 dB over decoder-only training.
# PLAN: what to train, one entry per preset, PRESET:SIZE[:LR[:ALR]] (decoder and analysis peak
# learning rates; default LR 1e-3, or 4e-4 from INIT/WIDEN weights, ALR the trainer's 1e-4),
# e.g. PLAN="rgb-16x:medium:2e-4:1e-3 stereo-5x:small:2e-4:3e-4"; default: the four presets
# at SIZE. INIT=1 starts from $DATA/init/<preset>-<size>.safetensors.xz when the bundle holds
# one (gpu_prepare.sh puts the kept candidates there), else from the bundled weights; WIDEN=1
# widens that small file. FLAT: the flat-colour loss weight for image codecs (train_flat.sh's
# 20 keeps what the shipped image decoders learnt; default 0). THREADS: torch threads of each
# training process (default 2, so that four of them and their loaders share the cores);
# IMG_WORKERS / AUD_WORKERS: loader processes per image / audio run (default WORKERS).
# DEST receives <preset>-<size>.safetensors.xz (fp16; int8 CNN if fp16 is over 15 MiB) and
# <preset>-<size>.csv (the log).
# CPU dry run: MINUTES=0.3 BATCH=4 WORKERS=1 DEST=/tmp/gpu-dry bash experiments/train_gpu.sh
set -u
MINUTES=${MINUTES:-8}; SIZE=${SIZE:-small}; DEST=${DEST:-runs/gpu}
DATA=${DATA:-.devdata/gpu-bundle}; RUNS=${RUNS:-/tmp/walloc-gpu}
BATCH=${BATCH:-32}; WORKERS=${WORKERS:-3}; THREADS=${THREADS:-2}; FLAT=${FLAT:-0}
PLAN=${PLAN:-"rgb-16x:$SIZE rgb-4x:$SIZE stereo-20x:$SIZE stereo-5x:$SIZE"}
mkdir -p "$DEST" "$RUNS"
names=()
for entry in $PLAN; do
    IFS=: read -r p size lr alr <<<"$entry"
    size=${size:-$SIZE}; names+=("$p:$size")
    case $p in
        rgb-*|gray-*) data=(--data "$DATA/images" --flat "$FLAT"); w=${IMG_WORKERS:-$WORKERS} ;;
        *) data=(--data "$DATA/audio"); w=${AUD_WORKERS:-$WORKERS} ;;
    esac
    init=(); start=""
    for f in "$DATA/init/$p-$size.safetensors.xz" "pywalloc/weights/$p-$size.safetensors.xz" \
             "pywalloc/weights/$p-$size.safetensors"; do
        [ -f "$f" ] && { start=$f; break; }
    done
    if [ "${INIT:-0}" = 1 ] && [ -n "$start" ]; then init=(--init "$start"); fi
    if [ "${WIDEN:-0}" = 1 ] && [ "$size" = medium ] && [ "${p%%-*}" = rgb ]; then
        small=$p; [ -f "$DATA/init/$p-small.safetensors.xz" ] && small=$DATA/init/$p-small.safetensors.xz
        python3 experiments/widen.py "$small" "$RUNS/$p-widened.safetensors" --width 256 \
            && init=(--init "$RUNS/$p-widened.safetensors")
    fi
    [ ${#init[@]} -gt 0 ] && lr=${lr:-4e-4}
    lr=${lr:-1e-3}; alr=${alr:-1e-4}
    echo "$p $size: ${init[*]:-PCA start} lr $lr analysis lr $alr workers $w"
    python3 -m pywalloc.training --preset "$p" --size "$size" "${data[@]}" --out "$RUNS/$p" \
        "${init[@]}" --batch "$BATCH" --per-item 4 --lr "$lr" --analysis-lr "$alr" \
        --warmup 200 --steps 1000000 --max-minutes "$MINUTES" --workers "$w" \
        --threads "$THREADS" --log-every 100 --ckpt-every 1000 --seed "${SEED:-0}" \
        ${BF16:+--bf16} ${STE:+--ste} 2>"$RUNS/$p.err" &
done
wait
for entry in "${names[@]}"; do
    p=${entry%%:*}; size=${entry#*:}
    echo "== $p $size"; tail -c 400 "$RUNS/$p.err" | tr '\r' '\n' | tail -2; tail -n 2 "$RUNS/$p/log.csv"
    [ -f "$RUNS/$p/model.safetensors" ] || { echo "$p: no model written"; continue; }
    # fp16, xz-compressed; a file over the 15 MiB that a device call can bring back (audio
    # `medium` is about 21 MB in fp16) is written with its decoder CNN in int8 instead.
    python3 - "$RUNS/$p/model.safetensors" "$DEST/$p-$size.safetensors.xz" <<'PY'
import os, sys
from pywalloc.codec import Codec
codec, dst = Codec.from_file(sys.argv[1]), sys.argv[2]
codec.save(dst)
if os.path.getsize(dst) > 15 * 2**20:
    codec.save(dst, int8=True)
    print(f"{dst}: over 15 MiB in fp16, written with an int8 CNN", file=sys.stderr)
PY
    cp "$RUNS/$p/log.csv" "$DEST/$p-$size.csv"
done
