#!/usr/bin/env bash
# The one prepared command of a borrowed GPU machine (device call), after
# `bash experiments/gpu_prepare.sh`, a commit and `bash experiments/device_tree.sh slim`:
#
#   run(command="bash experiments/device_run.sh", carry=[".devdata/gpu-bundle", ".whl"],
#       timeout_s=595)
#
# then `bash experiments/device_tree.sh back`. In order, each step bounded so that the whole
# ends inside the call's 10 minutes and what it wrote comes back even if a later step fails:
#  1. the wheels the image lacks (soundfile, PyWavelets) into /tmp/site;
#  2. the CUDA-only tests (they skip on every CPU machine);
#  3. experiments/train_gpu.sh with PLAN (default: both image codecs' `medium` decoders
#     widened from their small ones, both audio codecs' `small` ones from their best weights,
#     all through the rounding, bf16), MINUTES each, side by side on the one GPU;
#  4. benchmarks/device_throughput.py on the GPU, the new `medium` files included.
# $OUT receives the trained weights (<preset>-<size>.safetensors.xz, at most 8 files come back)
# and logs.tgz (the training logs, the tests' and the benchmark's output, nvidia-smi).
# CPU dry run (a few seconds of training, no GPU):
#   OUT=/tmp/dev-dry MINUTES=0.2 BATCH=4 IMG_WORKERS=1 AUD_WORKERS=1 QUICK_BENCH=1 \
#       bash experiments/device_run.sh
# (DATA=DIR: another training subset with images/, audio/ and optionally init/; SKIP_TESTS=1
# leaves out step 2; tests/test_experiments_quick.py runs it so on two bundled samples.)
set -u
OUT=${OUT:-/tmp/device-out}
LOGS=${LOGS:-/tmp/device-logs}
mkdir -p "$OUT" "$LOGS"
pack() { tar czf "$OUT/logs.tgz" -C "$LOGS" --exclude ./runs --exclude ./dest . ; }
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl >"$LOGS/pip.txt" 2>&1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
date -u +%FT%TZ >"$LOGS/started.txt"
nvidia-smi >"$LOGS/nvidia-smi.txt" 2>&1
python3 -c "import torch, soundfile, pywt; print(torch.__version__, torch.cuda.is_available())" \
    2>&1 | tee "$LOGS/versions.txt"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
    timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_wavelets.py \
        tests/test_inputs.py tests/test_cli_stdio.py -k "cuda or device" >"$LOGS/cuda-tests.txt" 2>&1
    tail -n 3 "$LOGS/cuda-tests.txt"
fi
pack
PLAN=${PLAN:-"rgb-16x:medium:2e-4:1e-3 rgb-4x:medium:2e-4:1e-3 stereo-20x:small:1e-4:3e-4 stereo-5x:small:2e-4:3e-4"}
PLAN=$PLAN MINUTES=${MINUTES:-5.5} INIT=1 WIDEN=1 STE=1 BF16=1 FLAT=${FLAT:-20} \
    IMG_WORKERS=${IMG_WORKERS:-4} AUD_WORKERS=${AUD_WORKERS:-3} DEST=$LOGS/dest \
    RUNS=$LOGS/runs bash experiments/train_gpu.sh >"$LOGS/train.txt" 2>&1
cat "$LOGS/train.txt"
cp "$LOGS"/dest/*.csv "$LOGS"/runs/*.err "$LOGS/" 2>/dev/null
mv "$LOGS"/dest/*.safetensors.xz "$OUT/" 2>/dev/null
rm -rf "$LOGS/dest" "$LOGS/runs"
pack
extra=()
for f in "$OUT"/*-medium.safetensors.xz; do
    [ -f "$f" ] && extra+=("$(basename "$f" | sed 's/-medium.*//')=$f")
done
if [ "${QUICK_BENCH:-0}" = 1 ]; then bench=(--quick); else bench=(); fi
timeout "${BENCH_S:-100}" python3 benchmarks/device_throughput.py "${bench[@]}" \
    --json "$LOGS/throughput.json" --weights "${extra[@]}" >"$LOGS/throughput.txt" 2>&1
cat "$LOGS/throughput.txt"
date -u +%FT%TZ >"$LOGS/ended.txt"
pack
ls -la "$OUT"
