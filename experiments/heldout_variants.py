"""Copies of the held-out music without its infrasound, for a fair comparison with Opus.

    python experiments/heldout_variants.py [--src .devdata/audio/heldout-music] [--out /tmp]

The held-out singularity tracks (experiments/prepare_audio.py) carry much of their energy below
20 Hz (a DC offset and slow drifts: 13 %, 84 % and 33 % of the energy below 5 Hz), which Opus
filters out by design and which no one hears; PSNR then mostly measures that. This writes
OUT/heldout-dcfree/ (each channel's mean removed) and OUT/heldout-hp20/ (zero-phase 4th-order
Butterworth high-pass at 20 Hz, scaled down only if it would clip), 24-bit FLAC, for
`walloc eval --data ... --baselines opus`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

BLOCK = 1 << 18  # frames per write: libsndfile has crashed on very large single writes


def _write(path: Path, y: np.ndarray, rate: int) -> None:
    with sf.SoundFile(str(path), "w", rate, y.shape[1], subtype="PCM_24") as f:
        for i in range(0, len(y), BLOCK):
            f.write(y[i:i + BLOCK])


def highpass20(x: np.ndarray, rate: int) -> np.ndarray:
    """Zero-phase 4th-order Butterworth high-pass at 20 Hz along axis 0 (frames), scaled down
    only if it would clip."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, 20.0, btype="highpass", fs=rate, output="sos")
    hp = sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=0)
    return hp / max(1.0, float(np.abs(hp).max()) / 0.999)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path(".devdata/audio/heldout-music"))
    ap.add_argument("--out", type=Path, default=Path("/tmp"))
    args = ap.parse_args(argv)
    files = sorted(args.src.glob("*.flac"))
    if not files:
        print(f"heldout_variants.py: no FLAC files in {args.src}", file=sys.stderr)
        return 2
    for name in ("heldout-dcfree", "heldout-hp20"):
        (args.out / name).mkdir(parents=True, exist_ok=True)
    for p in files:
        x, rate = sf.read(str(p), dtype="float64", always_2d=True)
        hp = highpass20(x, rate)
        _write(args.out / "heldout-dcfree" / p.name, x - x.mean(0), rate)
        _write(args.out / "heldout-hp20" / p.name, hp, rate)
        low = np.fft.rfftfreq(len(x), 1.0 / rate) < 20.0
        e = np.sum(np.abs(np.fft.rfft(x, axis=0)) ** 2, axis=1)
        print(f"{p.name}: {100 * e[low].sum() / e.sum():.1f} % of the energy below 20 Hz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
