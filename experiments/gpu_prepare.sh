#!/usr/bin/env bash
# Prepare what a borrowed GPU machine needs (run here, on the CPU machine, before the device call):
# the training subset (.devdata/gpu-bundle, <= 30 MB so the working tree stays under 64 MiB) and
# wheels of the packages its image lacks (.whl: soundfile and its cffi/pycparser, for Python 3.12).
set -eu
python3 experiments/prepare_audio.py --shared ../shared/data --out .devdata/audio
python3 experiments/make_gpu_bundle.py --shared ../shared/data --audio .devdata/audio \
    --out .devdata/gpu-bundle --max-mb 30
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" -d .whl soundfile cffi pycparser
ls -la .whl; du -sh .devdata/gpu-bundle
