#!/usr/bin/env bash
# Train the four bundled `small` codecs side by side on one GPU (or on the CPU, slowly).
#
#   IMAGES=dir AUDIO=dir MINUTES=7 DEST=out_dir bash experiments/train_bundled.sh
#
# IMAGES: training photos (BSDS500); AUDIO: training audio (experiments/prepare_audio.py).
# Each run stops and saves cleanly at its minute budget; DEST receives <preset>.safetensors
# (fp16) and <preset>.csv (the training log).
set -u
MINUTES=${MINUTES:-7}
DEST=${DEST:-runs/bundled}
RUNS=${RUNS:-/tmp/walloc-runs}
WORKERS=${WORKERS:-3}
mkdir -p "$DEST" "$RUNS"
common=(--steps 1000000 --max-minutes "$MINUTES" --workers "$WORKERS" --log-every 100
        --ckpt-every 1000 --warmup 300)
python3 -m pywalloc.training --preset rgb-16x --data "$IMAGES" --out "$RUNS/rgb-16x" \
    --batch 32 --per-item 4 --crop 256 --lr 1e-3 "${common[@]}" 2>"$RUNS/rgb-16x.err" &
python3 -m pywalloc.training --preset rgb-4x --data "$IMAGES" --out "$RUNS/rgb-4x" \
    --batch 32 --per-item 4 --crop 256 --lr 1e-3 "${common[@]}" 2>"$RUNS/rgb-4x.err" &
python3 -m pywalloc.training --preset stereo-20x --data "$AUDIO" --out "$RUNS/stereo-20x" \
    --batch 32 --per-item 4 --lr 1e-3 "${common[@]}" 2>"$RUNS/stereo-20x.err" &
python3 -m pywalloc.training --preset stereo-5x --data "$AUDIO" --out "$RUNS/stereo-5x" \
    --batch 32 --per-item 4 --lr 1e-3 "${common[@]}" 2>"$RUNS/stereo-5x.err" &
wait
for p in rgb-16x rgb-4x stereo-20x stereo-5x; do
    echo "== $p"; tail -c 600 "$RUNS/$p.err" | tr '\r' '\n' | tail -3; tail -2 "$RUNS/$p/log.csv"
    python3 - "$RUNS/$p/model.safetensors" "$DEST/$p.safetensors" <<'PY'
import sys
from pywalloc.codec import Codec
Codec.from_file(sys.argv[1]).save(sys.argv[2], half=True)
PY
    cp "$RUNS/$p/log.csv" "$DEST/$p.csv"
done
