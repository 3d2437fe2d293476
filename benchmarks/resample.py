"""Speed of the format's resampler (``pywalloc.resample.resample_poly``) on stereo float32
audio, one BLAS thread, for the rate pairs users bring, against a target:

    python benchmarks/resample.py [--quick] [--seconds 60] [--target 100]

Each pair resamples ``--seconds`` of noise (best of three) and prints the wall time and the
multiple of real time (seconds of input per second of work). The target (default 100x real
time, so that resampling takes at most a fifth of the 20x-real-time decode budget) is checked
per pair; the exit status is 1 if a pair misses it. Run it from another tree (e.g. a worktree
of an older commit, with this file copied into its ``benchmarks/``) to time that tree's
resampler: the script imports the ``pywalloc`` beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # before numpy loads its BLAS

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pywalloc.resample import resample_poly

PAIRS = [(48000, 44100), (44100, 48000), (96000, 44100), (22050, 44100), (44100, 22050),
         (8000, 44100), (16000, 44100), (32000, 44100)]


def time_pair(sr_from: int, sr_to: int, seconds: float, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` resamplings of ``seconds`` of stereo noise (the rates
    are the factors: ``resample_poly`` reduces them)."""
    x = np.random.default_rng(0).standard_normal((int(seconds * sr_from), 2)).astype(np.float32)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        resample_poly(x, sr_to, sr_from)
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="input length per pair")
    ap.add_argument("--target", type=float, default=100.0,
                    help="least multiple of real time per pair (default 100)")
    ap.add_argument("--quick", action="store_true", help="2 s per pair (a smoke run)")
    args = ap.parse_args(argv)
    seconds = 2.0 if args.quick else args.seconds
    missed = []
    print(f"{'pair (Hz)':<16} {'wall s':>8} {'x real time':>12}  target {args.target:g}x")
    for sr_from, sr_to in PAIRS:
        t = time_pair(sr_from, sr_to, seconds)
        speed = seconds / t
        ok = speed >= args.target
        if not ok:
            missed.append(f"{sr_from}->{sr_to}")
        print(f"{sr_from:>6}->{sr_to:<8} {t:>8.3f} {speed:>11.0f}x  {'PASS' if ok else 'FAIL'}")
    if missed:
        print(f"below {args.target:g}x real time: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
