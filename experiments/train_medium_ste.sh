#!/usr/bin/env bash
# A `medium` decoder (256 wide) on a 2-core CPU, trained through the rounding, in the
# background:
#
#   PRESETS=rgb-16x MIN=60 nohup bash experiments/train_medium_ste.sh &
#
# Step 1 widens a trained small decoder to 256 channels with experiments/widen.py (FROM: a
# weights file, for a single preset in PRESETS; default: each preset's bundled weights),
# which starts the wider decoder at the small one's quality instead of at PCA's; its norm and
# padding are the small decoder's, so it stays position-local. The widened file is written
# once per preset ($RUNS/PRESET-init-w256.safetensors) and reused.
# Step 2 is experiments/train_ste.sh's recipe (encoder and decoder together on the rounded
# latents, bf16 CNN), with the image chain's learning rates as defaults (LR 2e-4, ALR 1e-3;
# the small rgb-16x decoder gained 0.33 dB on Kodak that way). Decoder-only training of the
# same widened start gave nothing in 100 CPU minutes (docs/models.md, "Why no `medium`
# decoder ships"). Any variable of train_ste.sh passes through (MIN, SEED, RESUME=1, IMAGES,
# AUDIO, ...). INIT_PATTERN is always set here to the widened file: the trainer takes the
# decoder's shape from it, and with RESUME=1 the checkpoint's weights replace its values.
# Scores: python experiments/compare_weights.py PRESET $RUNS/PRESET/model.safetensors --no-bundled
set -eu
cd "$(dirname "$0")/.."
export RUNS=${RUNS:-runs/med-ste}
export LR=${LR:-2e-4} ALR=${ALR:-1e-3} BF16=${BF16:-1}
PRESETS=${PRESETS:-rgb-16x}
mkdir -p "$RUNS"
for preset in $PRESETS; do
    init="$RUNS/$preset-init-w256.safetensors"
    if [ ! -f "$init" ]; then
        python3 experiments/widen.py "${FROM:-$preset}" "$init" --width 256
    fi
done
export PRESETS INIT_PATTERN="$RUNS/%s-init-w256.safetensors"
exec bash experiments/train_ste.sh
