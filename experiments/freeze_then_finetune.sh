#!/usr/bin/env bash
# Position-local bundled decoders on a 2-core CPU (session of 2026-11-30): freeze the GroupNorm
# statistics of the legacy weights (experiments/freeze_norms.py), then fine-tune each frozen codec
# briefly on all training data (two streams, one thread each, nice 5). Run from the repo root after
# experiments/prepare_audio.py. Score with experiments/compare_weights.py; bundle only what wins.
set -u
mkdir -p runs/frozen runs/ft
for p in rgb-16x stereo-20x rgb-4x stereo-5x; do
  nice -n 5 python3 experiments/freeze_norms.py $p runs/frozen/$p.safetensors --files 60 > runs/frozen/$p.log 2>&1
done
ft() {
  nice -n 5 python3 -m pywalloc.training --preset "$1" --data "$2" --out "runs/ft/$1" \
    --init "runs/frozen/$1.safetensors" --batch 8 --per-item 4 --lr 1e-4 --analysis-lr 2e-5 \
    --warmup 20 --steps 1000000 --max-minutes "$3" --workers 1 --threads 1 --log-every 25 \
    --ckpt-every 100 2>"runs/ft/$1.err"
}
( ft rgb-16x ../shared/data/train-images 30; ft rgb-4x ../shared/data/train-images 25 ) &
( ft stereo-20x .devdata/audio/train 30; ft stereo-5x .devdata/audio/train 25 ) &
wait
