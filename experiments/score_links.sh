#!/usr/bin/env bash
# Score a session's links of PRESET (default stereo-20x) as they would ship, and the average
# of the first two (a "weight soup", experiments/soup_weights.py), side by side, one torch
# thread each; then, for audio, apply the chain's rules (experiments/judge_entries.py):
#
#   RUNS="runs/ste-c24l runs/ste-c24m" SOUP=soup-c24 WAIT=1 \
#   DEFAULT="33.684 34.308" CANDIDATE="34.001 34.401" nohup bash experiments/score_links.sh &
#
# WAIT=1: first wait until no `pywalloc.training --preset PRESET` process is left.
# Each entry NAME (a run's folder name, or SOUP) gets, in OUT (default /tmp):
#   ship-NAME/   its int8 file (experiments/int8_weights.py), as bundle_weights.py --int8 ships it
#   score-NAME.json / .txt   compare_weights.py --no-bundled --heldout HELDOUT
#   score-NAME.done          the time it finished and the exit status (0: scored)
#   flat-NAME.txt            image presets (rgb-*, gray-*): benchmarks/flat.py, whose
#                            flat-colour target the image ship rules include (no --heldout)
# then OUT/verdict.md (and verdict.json) when DEFAULT and CANDIDATE (stems/test, held-out dB)
# are given (audio). HELDOUT: the high-passed held-out music (experiments/heldout_variants.py).
set -u
PRESET=${PRESET:-stereo-20x}
RUNS=${RUNS:?RUNS="runs/A runs/B": the links to score}
OUT=${OUT:-/tmp}
HELDOUT=${HELDOUT:-/tmp/heldout-hp20}
SOUP=${SOUP:-}
case "$PRESET" in
    rgb-*|gray-*) image=1; held=() ;;
    *) image=0; held=(--heldout "$HELDOUT") ;;
esac
mkdir -p "$OUT"
if [ "${WAIT:-0}" = 1 ]; then
    while pgrep -f "pywalloc.training --preset $PRESET" > /dev/null; do sleep 30; done
fi
score() {  # name, float32 weights
    local name=$1 src=$2
    {
        python experiments/int8_weights.py "$src" --out "$OUT/ship-$name" &&
        python experiments/compare_weights.py "$PRESET" \
            "$OUT/ship-$name/$PRESET-int8.safetensors.xz" --no-bundled --threads 1 \
            "${held[@]}" --json "$OUT/score-$name.json" &&
        if [ "$image" = 1 ]; then  # the flat-colour check of every image ship
            python benchmarks/flat.py --codec "$OUT/ship-$name/$PRESET-int8.safetensors.xz" \
                --threads 1 > "$OUT/flat-$name.txt" 2>&1
            [ $? -le 1 ]  # 1: a missed target, reported in the file, not a failure to run
        fi
    } > "$OUT/score-$name.txt" 2>&1
    local rc=$?
    echo "$(date -u) exit $rc" > "$OUT/score-$name.done"
}
names=()
set -- $RUNS
for run in "$@"; do
    name=$(basename "$run")
    names+=("$name")
    score "$name" "$run/$PRESET/model.safetensors" &
done
if [ -n "$SOUP" ] && [ $# -ge 2 ]; then
    names+=("$SOUP")
    {
        python experiments/soup_weights.py "$1/$PRESET/model.safetensors" \
            "$2/$PRESET/model.safetensors" --out "$OUT/$SOUP/model.safetensors" \
            > "$OUT/soup-$SOUP.txt" 2>&1 &&
        score "$SOUP" "$OUT/$SOUP/model.safetensors"
    } &
fi
wait
if [ -n "${DEFAULT:-}" ] && [ -n "${CANDIDATE:-}" ]; then
    files=()
    for name in "${names[@]}"; do files+=("$OUT/score-$name.json"); done
    # shellcheck disable=SC2086
    python experiments/judge_entries.py --default $DEFAULT --candidate $CANDIDATE \
        "${files[@]}" --json "$OUT/verdict.json" > "$OUT/verdict.md"
    status=$?
    cat "$OUT/verdict.md"
    exit $status
fi
