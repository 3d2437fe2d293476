"""Write weights with the decoder CNN stored as int8 and print what that saves.

    python experiments/int8_weights.py rgb-16x rgb-4x stereo-20x stereo-5x --out /tmp/int8
        [--nearest]

For each preset (its bundled default) or weights file: ``OUT/<preset>-int8.safetensors.xz``,
written by ``Codec.save(..., int8=True)`` (``zoo.quantize_int8``: the CNN's convolutions as
int8 with a float32 scale per output channel, rounded so that each kernel keeps its sum, or
with ``--nearest`` each weight to its nearest step; everything else fp16, as the defaults are), and
one line: the packed sizes of the fp16 and the int8 file, both weights hashes, and the largest
weight change relative to its channel's largest weight. Score the written files with
``experiments/compare_weights.py PRESET OUT/PRESET-int8.safetensors.xz`` (the bundled
weights are scored first, on the same data).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", nargs="+", help="preset names (bundled weights) or weights files")
    ap.add_argument("--out", type=Path, required=True, help="folder for the int8 files")
    ap.add_argument("--nearest", action="store_true",
                    help="plain rounding to the nearest step (as defaults before 2026-12-02)")
    args = ap.parse_args(argv)
    import tempfile

    import torch

    import pywalloc
    from pywalloc.codec import Codec
    from pywalloc.errors import WallocError

    args.out.mkdir(parents=True, exist_ok=True)
    for which in args.weights:
        try:
            codec = pywalloc.load(which)
        except WallocError as exc:
            print(f"int8_weights: error: {exc}", file=sys.stderr)
            return 2
        name = codec.preset.name
        dst = args.out / f"{name}-int8.safetensors.xz"
        codec.save(dst, int8=True, keep_sums=not args.nearest)
        with tempfile.TemporaryDirectory() as tmp:
            ref = Path(tmp) / f"{name}.safetensors.xz"
            codec.save(ref)  # fp16 and xz, as the defaults are stored
            fp16 = Codec.from_file(ref)
            size16 = ref.stat().st_size
        q = Codec.from_file(dst)
        worst = 0.0
        a, b = fp16.state_dict(), q.state_dict()
        for k, v in a.items():
            if not torch.equal(v, b[k]):
                amax = v.reshape(v.shape[0], -1).abs().amax(1).clamp_min(1e-30)
                rel = ((b[k] - v).reshape(v.shape[0], -1).abs().amax(1) / amax).max()
                worst = max(worst, float(rel))
        print(f"{name}: fp16 {size16 / 1e6:.2f} MB ({fp16.weight_hash}) -> int8 CNN "
              f"{dst.stat().st_size / 1e6:.2f} MB ({q.weight_hash}); largest change "
              f"{worst:.4f} of its channel's largest weight; written {dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
