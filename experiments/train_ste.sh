#!/usr/bin/env bash
# Joint fine-tuning through the real rounding (walloc train --ste), on a 2-core CPU, in the
# background:
#
#   PRESETS="rgb-16x" MIN=60 nohup bash experiments/train_ste.sh &
#
# Every bundled decoder since the position-local ones was fine-tuned with its encoder frozen
# (--decoder-only), so the linear analysis layer was last trained against an older decoder and
# under uniform noise. This recipe starts from the bundled weights (--init) and trains both:
# the decoder sees the rounded int8 latents that files store, and the rounding passes the
# encoder's gradient straight through. The analysis rows keep their norms (the trainer's rate
# constraint), so the bit rate stays near the bundled one; the encoder stays one linear layer.
# Images keep the flat-colour loss of experiments/train_flat.sh (FLAT, default 20) and its
# crops; audio uses the tracks that experiments/prepare_audio.py gathers (never stems/test).
# LR / ALR: peak learning rates of the decoder and of the analysis layer; INIT_PATTERN: the
# start weights (printf pattern, %s = preset); PARALLEL=1: presets side by side (one core each);
# SEED: the data order's seed (default 0; a new one per link of a chain gives new crops);
# RESUME=1 continues from the checkpoints; BF16=1 adds --bf16 (the CNN's convolutions in bf16,
# faster on CPUs with bf16 instructions: check `grep -c avx512_bf16 /proc/cpuinfo` first).
# Scores: python experiments/compare_weights.py PRESET $RUNS/PRESET/model.safetensors
#         (add --heldout /tmp/heldout-hp20 for audio: experiments/heldout_variants.py)
# Two links side by side from one start (other seeds or rates): also score their average,
#         python experiments/soup_weights.py RUNS_A/PRESET/model.safetensors \
#             RUNS_B/PRESET/model.safetensors --out /tmp/soup/model.safetensors
#         (experiments/score_links.sh scores both links and their soup as they would ship,
#         side by side, and applies the chain's rules: experiments/judge_entries.py)
# A run that beats the default without clearing the ship bar: experiments/keep_candidate.py,
# then the next run goes on from it, on any machine, with
# INIT_PATTERN=experiments/candidates/%s-HASH.safetensors.xz
set -u
IMAGES=${IMAGES:-../shared/data/train-images}
AUDIO=${AUDIO:-.devdata/audio/train}
RUNS=${RUNS:-runs/ste}
INIT=${INIT:-pywalloc/weights}
MIN=${MIN:-60}
LR=${LR:-5e-5}
ALR=${ALR:-1e-4}
FLAT=${FLAT:-20}
INIT_PATTERN=${INIT_PATTERN:-$INIT/%s-small.safetensors.xz}
PRESETS=${PRESETS:-rgb-16x}
SEED=${SEED:-0}
mkdir -p "$RUNS"
extra=()
[ "${RESUME:-0}" = 1 ] && extra+=(--resume)
[ "${BF16:-0}" = 1 ] && extra+=(--bf16)
run() {  # preset
    case "$1" in
        rgb-*|gray-*) data=(--data "$IMAGES" --flat "$FLAT" --crop 192) ;;
        *) data=(--data "$AUDIO") ;;
    esac
    nice -n 19 python3 -m pywalloc.training --preset "$1" "${data[@]}" --out "$RUNS/$1" \
        --init "$(printf "$INIT_PATTERN" "$1")" --ste --batch 8 --per-item 4 --lr "$LR" \
        --analysis-lr "$ALR" --warmup 50 --steps 1000000 --max-minutes "$MIN" --workers 1 \
        --threads 1 --log-every 50 --ckpt-every 200 --seed "$SEED" -q "${extra[@]}" 2>"$RUNS/$1.err"
}
for preset in $PRESETS; do
    if [ "${PARALLEL:-0}" = 1 ]; then run "$preset" & else run "$preset"; fi
done
wait
