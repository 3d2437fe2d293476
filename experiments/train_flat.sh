#!/usr/bin/env bash
# Flat-colour fine-tuning of the image decoders on a 2-core CPU, in the background:
#
#   IMAGES=DIR MIN16=50 MIN4=50 nohup bash experiments/train_flat.sh &
#
# PRESETS="rgb-4x" runs only that one; PARALLEL=1 runs the presets side by side (one core each).
# FLAT sets the flat loss's weight; INIT_PATTERN the start weights (printf pattern, %s = preset).
#
# The bundled flat-colour decoders came from two stages, both run with PARALLEL=1:
#   RUNS=runs/flat-s1 MIN16=50 MIN4=50 FLAT=1   (stopped at 21 / 16 minutes; its last
#       checkpoints, steps 1600 / 1200, start stage 2: flat pictures within 4 code values, a
#       ripple inside the 8x8 block that the weight-1 loss hardly sees next to the photo loss)
#   RUNS=runs/flat-s2 MIN16=30 MIN4=30 FLAT=20 INIT_PATTERN=runs/flat-s1/%s/model.safetensors
# Each image codec starts from its bundled weights (--init) and keeps its encoder (the rate and
# the latents do not change: --decoder-only). The decoder's convolutions switch from zero to
# replicate padding at the borders (--pad replicate), so that a flat picture of any size is a
# flat latent field, and an extra loss on flat pictures of random colours (--flat, one latent
# each, nearly free) teaches the decoder to reproduce them, while the usual loss on crops of
# the training images (BSDS500, photos, graphics; never Kodak) keeps it a photo decoder.
# BF16=1 adds --bf16 (the CNN's convolutions in bf16, about 1.5x faster steps).
# RESUME=1 continues each run from its checkpoint. Results: $RUNS/<preset>/model.safetensors;
# scores: python experiments/compare_weights.py PRESET $RUNS/PRESET/model.safetensors
set -u
IMAGES=${IMAGES:-../shared/data/train-images}
RUNS=${RUNS:-runs/flat}
INIT=${INIT:-pywalloc/weights}
MIN16=${MIN16:-50}; MIN4=${MIN4:-50}
FLAT=${FLAT:-1}
INIT_PATTERN=${INIT_PATTERN:-$INIT/%s-small.safetensors.xz}
mkdir -p "$RUNS"
extra=()
[ "${RESUME:-0}" = 1 ] && extra+=(--resume)
[ "${BF16:-0}" = 1 ] && extra+=(--bf16)  # the CNN's convolutions in bf16: ~1.5x faster steps
run() {  # preset minutes
    nice -n 19 python3 -m pywalloc.training --preset "$1" --data "$IMAGES" --out "$RUNS/$1" \
        --init "$(printf "$INIT_PATTERN" "$1")" --decoder-only --pad replicate --flat "$FLAT" \
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
