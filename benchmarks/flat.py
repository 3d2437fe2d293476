"""Flat colours and tiny pictures: how far from the input a flat picture decodes.

    python benchmarks/flat.py [--codec rgb-16x --codec rgb-4x | --codec FILE.safetensors]
                              [--colours 64] [--json OUT.json] [--quick]

For each codec, flat pictures of ``--colours`` colours ((200, 50, 30), black,
white, mid gray, the six saturated primaries and secondaries, then random colours from a fixed
seed) at each side in ``--sides`` (default 1, 8, 32 and 100) go through the real byte path
(``compress`` -> bytes -> ``decompress``) with the default effort. Printed per side: the largest
absolute error over all pixels, channels and colours (in code values), the colour where it
occurs, and the mean absolute error. A gray codec gets the luma of each colour (Pillow's
``convert("L")``) as a gray picture. Target: at most 3 code values at 1x1, 8x8 and 32x32; exit
status 1 if a codec misses it (not with --quick, which runs two colours at one side).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 3
TARGET_SIDES = (1, 8, 32)
FIXED = [(200, 50, 30), (0, 0, 0), (255, 255, 255), (128, 128, 128), (255, 0, 0), (0, 255, 0),
         (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


def colours(n: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """The fixed colours, then random ones (seeded), ``n`` in all."""
    rng = np.random.default_rng(seed)
    out = list(FIXED[:n])
    while len(out) < n:
        out.append(tuple(int(v) for v in rng.integers(0, 256, 3)))
    return out


def measure(codec, sides, cols) -> dict:
    """Per side: max error, the colour where it occurs, mean absolute error."""
    from PIL import Image

    import pywalloc

    gray = codec.preset.channels == 1
    rows = {}
    for side in sides:
        worst, where, total = -1, None, 0.0
        for col in cols:
            img = np.empty((side, side, 3), np.uint8)
            img[:] = col
            if gray:
                img = np.asarray(Image.fromarray(img).convert("L"))
            out = pywalloc.decompress(pywalloc.compress(img, codec), codec)
            err = np.abs(out.astype(int) - img)
            total += float(err.mean())
            if int(err.max()) > worst:
                worst, where = int(err.max()), list(col)
        rows[side] = {"max_error": worst, "worst_colour": where, "mean_error": total / len(cols)}
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codec", action="append", help="preset or weights file (repeatable; "
                    "default: the bundled image codecs)")
    ap.add_argument("--colours", type=int, default=64)
    ap.add_argument("--sides", type=int, nargs="+", default=[1, 8, 32, 100])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="two colours at one side (smoke test)")
    args = ap.parse_args(argv)

    import torch

    from pywalloc import zoo

    torch.set_num_threads(args.threads)
    names = args.codec or [n for n in ("rgb-16x", "rgb-4x", "gray-16x", "gray-4x")
                           if n in zoo.available()]
    sides = [8] if args.quick else args.sides
    cols = colours(2 if args.quick else args.colours)
    results, ok = {}, True
    for name in names:
        codec = zoo.load(name, frozen=True)
        rows = measure(codec, sides, cols)
        results[name] = {"weights": codec.weight_hash, "pad": codec.size_spec.pad, "sides": rows}
        print(f"{name} ({codec.weight_hash}, decoder padding {codec.size_spec.pad}), "
              f"{len(cols)} colours")
        print("| side | max error | at colour | mean abs error |")
        print("|---|---|---|---|")
        for side, r in rows.items():
            print(f"| {side}x{side} | {r['max_error']} | {tuple(r['worst_colour'])} | "
                  f"{r['mean_error']:.2f} |")
            if side in TARGET_SIDES and r["max_error"] > TARGET:
                ok = False
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.quick:
        return 0
    print("target (max error <= 3 at 1x1, 8x8, 32x32):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
