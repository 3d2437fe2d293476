#!/usr/bin/env bash
# Gray codecs (gray-16x, then gray-4x) on a 2-core CPU, in the background, one run at a time:
#
#   IMAGES=DIR G16_MIN=40 G4_MIN=35 nohup bash experiments/train_gray.sh &
#
# Each codec starts from experiments/gray_init.py (PCA of the luma's wavelet channels at the
# gain giving about a third of the RGB codec's rate on gray training images, decoder trunk
# from the bundled RGB codec) and is fine-tuned on the luma of the training images (BSDS500,
# photos, graphics; the trainer reads luma for one-channel presets). Never Kodak.
# RESUME=1 continues each run from its checkpoint. Results: $RUNS/<preset>/model.safetensors;
# fp16 copies and the Kodak measurement: the commands in docs/results.md, "Gray images".
set -u
IMAGES=${IMAGES:-../shared/data/train-images}
RUNS=${RUNS:-runs/gray}
G16_MIN=${G16_MIN:-40}; G4_MIN=${G4_MIN:-35}
mkdir -p "$RUNS"
extra=()
[ "${RESUME:-0}" = 1 ] && extra+=(--resume)
run() {  # preset minutes
    [ -f "$RUNS/$1-init.safetensors" ] || nice -n 19 python3 experiments/gray_init.py "$1" \
        "$RUNS/$1-init.safetensors" --data "$IMAGES" > "$RUNS/$1-init.log" 2>&1 || return 1
    nice -n 19 python3 -m pywalloc.training --preset "$1" --data "$IMAGES" --out "$RUNS/$1" \
        --init "$RUNS/$1-init.safetensors" --batch 8 --per-item 4 --lr 3e-4 --warmup 100 \
        --steps 1000000 --max-minutes "$2" --workers 1 --threads 1 --log-every 50 \
        --ckpt-every 200 "${extra[@]}" 2>"$RUNS/$1.err"
}
run gray-16x "$G16_MIN"
run gray-4x "$G4_MIN"
