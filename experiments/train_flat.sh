#!/usr/bin/env bash
# Flat-colour fine-tuning of the image decoders on a 2-core CPU, in the background:
#
#   IMAGES=DIR MIN16=50 MIN4=50 nohup bash experiments/train_flat.sh &
#
# PRESETS="rgb-4x" runs only that one; PARALLEL=1 runs the presets side by side (one core each).
# Each image codec starts from its bundled weights (--init) and keeps its encoder (the rate and
# the latents do not change: --decoder-only). The decoder's convolutions switch from zero to
# replicate padding at the borders (--pad replicate), so that a flat picture of any size is a
# flat latent field, and an extra loss on flat pictures of random colours (--flat, one latent
# each, nearly free) teaches the decoder to reproduce them, while the usual loss on crops of
# the training images (BSDS500, photos, graphics; never Kodak) keeps it a photo decoder.
# RESUME=1 continues each run from its checkpoint. Results: $RUNS/<preset>/model.safetensors;
# scores: python experiments/compare_weights.py PRESET $RUNS/PRESET/model.safetensors
set -u
IMAGES=${IMAGES:-../shared/data/train-images}
RUNS=${RUNS:-runs/flat}
INIT=${INIT:-pywalloc/weights}
MIN16=${MIN16:-50}; MIN4=${MIN4:-50}
mkdir -p "$RUNS"
extra=()
[ "${RESUME:-0}" = 1 ] && extra+=(--resume)
run() {  # preset minutes
    nice -n 19 python3 -m pywalloc.training --preset "$1" --data "$IMAGES" --out "$RUNS/$1" \
        --init "$INIT/$1-small.safetensors" --decoder-only --pad replicate --flat 1 \
        --crop 192 --batch 8 --per-item 4 --lr 1e-4 --warmup 50 --steps 1000000 \
        --max-minutes "$2" --workers 1 --threads 1 --log-every 50 --ckpt-every 200 -q \
        "${extra[@]}" 2>"$RUNS/$1.err"
}
PRESETS=${PRESETS:-rgb-16x rgb-4x}
for preset in $PRESETS; do
    minutes=$MIN16; [ "$preset" = rgb-4x ] && minutes=$MIN4
    if [ "${PARALLEL:-0}" = 1 ]; then run "$preset" "$minutes" & else run "$preset" "$minutes"; fi
done
wait
