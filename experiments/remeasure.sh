#!/usr/bin/env bash
# After a preset's default weights change (experiments/bundle_weights.py), re-run every
# measurement in docs/ that names them, on two lanes (one torch thread each), into OUT:
#
#   PRESET=stereo-20x OUT=/tmp/remeasure bash experiments/remeasure.sh
#
# It measures only; the figures go into docs/ by hand, each with its command (these).
# stereo-20x / stereo-5x: stems/test against Opus (plain; --refine 10 and 20 for stereo-20x),
#   the held-out music (HELDOUT, the 20 Hz high-passed copies of experiments/heldout_variants.py)
#   plain and --refine 20, the rounding ceiling, source separation (3 seeds, stereo-20x).
# rgb-16x / rgb-4x: Kodak against WebP and JPEG, plain and --refine 30 (rgb-16x), the ceiling.
# Then, with the CPU free: the model card's row of PRESET (`--codecs`: the other rows are kept,
# each with its own date; a full `python benchmarks/model_card.py` re-measures them all) and the
# training curves.
# SHARED: the folder that holds kodak/ and stems/test/ (default ../shared/data).
# QUICK=1: the first item of each set only, no separation, no model card (a smoke run).
set -eu
PRESET=${PRESET:?PRESET=rgb-16x|rgb-4x|stereo-20x|stereo-5x}
OUT=${OUT:-/tmp/remeasure-$PRESET}
SHARED=${SHARED:-../shared/data}
HELDOUT=${HELDOUT:-/tmp/heldout-hp20}
lim=()
[ "${QUICK:-0}" = 1 ] && lim=(--limit 1)
ev() {  # name, data, baselines, extra args...
    local name=$1 data=$2 base=$3
    shift 3
    walloc eval --codec "$PRESET" --data "$data" --baselines "$base" --no-sweep --threads 1 \
        "${lim[@]}" -q -o "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
}
ceiling() {
    python experiments/quant_ceiling.py "$PRESET" --kodak "$SHARED/kodak" \
        --stems "$SHARED/stems/test" "${lim[@]}" --json "$OUT/ceiling.json" > "$OUT/ceiling.log" 2>&1
}
case "$PRESET" in
    stereo-*)
        lane_a() {
            ev stems "$SHARED/stems/test" opus
            if [ "$PRESET" = stereo-20x ]; then
                ev stems-r10 "$SHARED/stems/test" none --refine 10
                ev stems-r20 "$SHARED/stems/test" none --refine 20
            fi
            ceiling
        }
        lane_b() {
            ev heldout "$HELDOUT" opus
            ev heldout-r20 "$HELDOUT" opus --refine 20
            if [ "$PRESET" = stereo-20x ] && [ "${QUICK:-0}" != 1 ]; then
                python experiments/separate.py --codecs stereo-20x --seeds 0 1 2 --threads 1 \
                    --out "$OUT/separate" > "$OUT/separate.log" 2>&1
            fi
        }
        ;;
    rgb-*)
        lane_a() { ev kodak "$SHARED/kodak" webp,jpeg --no-perceptual; }
        lane_b() {
            if [ "$PRESET" = rgb-16x ]; then
                ev kodak-r30 "$SHARED/kodak" webp,jpeg --no-perceptual --refine 30
            fi
            ceiling
        }
        ;;
    *) echo "remeasure.sh: unknown preset $PRESET" >&2; exit 2 ;;
esac
mkdir -p "$OUT"  # only once the preset is known: a typo leaves no empty folder behind
lane_a & a=$!
lane_b & b=$!
status=0
wait $a || status=1
wait $b || status=1
if [ "${QUICK:-0}" != 1 ]; then
    # The model card exits 1 when a quality bar is missed (some are): only 2+ is a failure.
    rc=0
    python benchmarks/model_card.py --codecs "$PRESET" > "$OUT/model_card.log" 2>&1 || rc=$?
    [ "$rc" -le 1 ] || status=1
    # its figures into the defaults' sidecars, for `walloc models`
    python experiments/record_metrics.py > "$OUT/record_metrics.log" 2>&1 || status=1
    python benchmarks/plot_training.py > "$OUT/plot_training.log" 2>&1 || status=1
fi
echo "remeasure.sh: $PRESET -> $OUT (status $status)"
exit $status
