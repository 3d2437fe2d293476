#!/usr/bin/env bash
# Prepare what a borrowed GPU machine needs (run here, on the CPU machine, before the device call):
# wheels of the packages its image lacks (.whl: soundfile and its cffi/pycparser, and PyWavelets
# for the CUDA test's oracle, for Python 3.12), the training subset (.devdata/gpu-bundle) and
# the start weights of each preset (.devdata/gpu-bundle/init/PRESET-SIZE.safetensors.xz: the
# kept candidate of experiments/candidates/ where there is one, since the slim tree leaves that
# folder behind; train_gpu.sh INIT=1 prefers these to the bundled defaults). Everything that travels counts towards the
# device's 64 MiB: the tracked files (the bundled weights alone are over 50 MB), the wheels and
# the subset, so the subset gets what is left, less 1 MiB of margin. The tree counted is the one
# `bash experiments/device_tree.sh slim` leaves for the device call (without the retired weights
# and the kept candidates, 37 MiB that a GPU run never reads); run that just before the call
# and `bash experiments/device_tree.sh back` after it. One codec per call (what the eighteenth
# session's GPU run suggested): IMAGE_SHARE=1 IMAGE_FOLDERS="photos bsds500" for an image
# codec on photos only, IMAGE_SHARE=0 for an audio codec (make_gpu_bundle.py's flags).
set -eu
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" --platform manylinux_2_27_x86_64 -d .whl soundfile cffi pycparser PyWavelets
python3 experiments/prepare_audio.py --shared ../shared/data --out .devdata/audio
tree=$(bash experiments/device_tree.sh slim-bytes)
whl=$(du -cb .whl | tail -n 1 | cut -f1)
init=$(cat experiments/candidates/*.safetensors.xz 2>/dev/null | wc -c)
budget=$(python3 -c "print(round((64 * 2**20 - $tree - $whl - $init) / 2**20 - 1, 1))")
echo "working tree (slim) $((tree >> 20)) MiB, wheels $((whl >> 20)) MiB, start weights $((init >> 20)) MiB: $budget MiB left for the training subset"
python3 -c "import sys; sys.exit(0 if $budget >= 4 else 'gpu_prepare: error: under 4 MiB left for the training subset')"
python3 experiments/make_gpu_bundle.py --shared ../shared/data --audio .devdata/audio \
    --out .devdata/gpu-bundle --max-mb "$budget" --excerpt "${EXCERPT:-25}" \
    --image-share "${IMAGE_SHARE:-0.5}" --image-folders ${IMAGE_FOLDERS:-photos graphics bsds500}
mkdir -p .devdata/gpu-bundle/init
for f in experiments/candidates/*.safetensors.xz; do
    [ -f "$f" ] || continue
    p=$(basename "$f" | sed -E 's/-[0-9a-f]{16}\.safetensors\.xz$//')
    cp "$f" ".devdata/gpu-bundle/init/$p-small.safetensors.xz" && echo "init: $p-small from $f"
done
ls -la .whl; du -sh .devdata/gpu-bundle
