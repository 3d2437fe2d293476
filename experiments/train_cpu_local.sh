#!/usr/bin/env bash
# Position-local decoders (ChannelNorm instead of GroupNorm) on a 2-core CPU, in the background.
#
#   IMAGES=../shared/data/train-images AUDIO=.devdata/audio/train \
#   IMG_MIN=55 IMG4_MIN=45 AUD_MIN=45 nohup bash experiments/train_cpu_local.sh &
#
# Two streams run side by side, one thread each, under nice: images (rgb-16x then rgb-4x) and
# audio (stereo-20x then stereo-5x). Each run starts from the bundled weights (--init; the
# norm parameters load as a start) and trains on all training data: train-images (BSDS500,
# photos, graphics) and experiments/prepare_audio.py's folder (stems mixtures, music-train,
# singularity resampled to 44.1 kHz, three singularity tracks held out). A rerun with
# RESUME=1 continues each run from its checkpoint. Results: $RUNS/<preset>/model.safetensors.
set -u
IMAGES=${IMAGES:-../shared/data/train-images}
AUDIO=${AUDIO:-.devdata/audio/train}
RUNS=${RUNS:-runs/cpu-local}
INIT=${INIT:-pywalloc/weights}
IMG_MIN=${IMG_MIN:-55}; IMG4_MIN=${IMG4_MIN:-45}; AUD_MIN=${AUD_MIN:-45}
mkdir -p "$RUNS"
extra=()
[ "${RESUME:-0}" = 1 ] && extra+=(--resume)
run() {  # preset data minutes
    nice -n 19 python3 -m pywalloc.training --preset "$1" --data "$2" --out "$RUNS/$1" \
        --init "$INIT/$1-small.safetensors.xz" --batch 8 --per-item 4 --lr 3e-4 --warmup 100 \
        --steps 1000000 --max-minutes "$3" --workers 1 --threads 1 --log-every 50 \
        --ckpt-every 200 "${extra[@]}" 2>"$RUNS/$1.err"
}
( run rgb-16x "$IMAGES" "$IMG_MIN"; run rgb-4x "$IMAGES" "$IMG4_MIN" ) &
( run stereo-20x "$AUDIO" "$AUD_MIN"; run stereo-5x "$AUDIO" "$AUD_MIN" ) &
wait
