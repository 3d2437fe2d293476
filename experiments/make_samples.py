"""Synthesise the bundled audio sample (a short stereo chime piece), deterministically.

    python experiments/make_samples.py   # writes pywalloc/samples/chimes.flac
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 44100


def chimes(seconds: float = 4.0, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros((t.size, 2))
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)  # major pentatonic-ish
    for k in range(16):  # struck notes: a few inharmonic partials, exponential decay, panned
        start = k * seconds / 16
        f0 = rng.choice(scale)
        pan = rng.uniform(0.15, 0.85)
        env = np.where(t >= start, np.exp(-(t - start) * rng.uniform(2.0, 5.0)), 0.0)
        tone = sum(a * np.sin(2 * np.pi * f0 * m * (t - start))
                   for m, a in ((1, 1.0), (2.76, 0.4), (5.4, 0.15), (8.93, 0.05)))
        out[:, 0] += (1 - pan) * env * tone
        out[:, 1] += pan * env * tone
    bass = 0.3 * np.sin(2 * np.pi * 55 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    out += bass[:, None]
    hiss = rng.normal(0, 1, t.size) * np.exp(-((t % 0.5) * 30))  # soft brushed hits
    out += 0.05 * np.stack([hiss, np.roll(hiss, 40)], axis=1)
    return (0.7 * out / np.abs(out).max()).astype(np.float32)


if __name__ == "__main__":
    dest = Path(__file__).resolve().parent.parent / "pywalloc" / "samples" / "chimes.flac"
    sf.write(dest, chimes(), RATE, subtype="PCM_16")
    print(f"wrote {dest}")
