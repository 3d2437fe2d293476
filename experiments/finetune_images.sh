#!/usr/bin/env bash
# Continue training the bundled image codecs from their current weights (second GPU session).
#   IMAGES=dir MINUTES=2.2 DEST=out_dir bash experiments/finetune_images.sh
set -u
MINUTES=${MINUTES:-2}
DEST=${DEST:-runs/finetune}
RUNS=${RUNS:-/tmp/walloc-ft}
WEIGHTS=${WEIGHTS:-pywalloc/weights}
mkdir -p "$DEST" "$RUNS"
for p in rgb-16x rgb-4x; do
    python3 -m pywalloc.training --preset $p --data "$IMAGES" --out "$RUNS/$p" \
        --init "$WEIGHTS/$p.safetensors" --batch 32 --per-item 4 --crop 256 --lr 4e-4 \
        --warmup 100 --steps 1000000 --max-minutes "$MINUTES" --workers 6 --log-every 100 \
        --ckpt-every 1000 2>"$RUNS/$p.err" &
done
wait
for p in rgb-16x rgb-4x; do
    tail -2 "$RUNS/$p/log.csv"
    python3 -c "import sys; from pywalloc.codec import Codec; Codec.from_file(sys.argv[1]).save(sys.argv[2])" \
        "$RUNS/$p/model.safetensors" "$DEST/$p.safetensors"
    cp "$RUNS/$p/log.csv" "$DEST/$p-finetune.csv"
done
