"""Encoder-side refinement: PSNR and encode time against the number of steps and the Adam
step size (``lr``), for any codec, on files that are not the evaluation sets (so the defaults
are not tuned on Kodak or stems/test).

    python experiments/refine_sweep.py CODEC FILE... [--run STEPS:LR ...] [--threads 1]
        [--seconds 12] [--keep 0.15] [--quick]

Each ``--run STEPS:LR`` is one row (default: ``10:0.3 30:0.3 60:0.3 20:0.6 20:1.0``), after a
row for the plain encoder. Every row goes through the real byte path: ``pywalloc.encode(...,
refine=STEPS, refine_lr=LR).blob``, then ``decompress``. Audio files are cut to their first ``--seconds`` and converted to the
codec's stereo 44.1 kHz first; images are used whole. PSNR: of the squared error pooled over
all files (peak 1 for audio, 255 for 8-bit pixels; ``walloc eval`` averages per-item PSNRs
instead); rate: kbps for audio, bpp for images. ``--keep``: the weight of the pull towards the plain
encoder's codes for every row (default ``pywalloc.refine.KEEP``). ``--quick``: one short item,
2 steps (a smoke test).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pywalloc
from pywalloc import refine as refine_module
from pywalloc.evaluation.metrics import mse_psnr
from pywalloc.modality import IMAGE


def load(codec, path: Path, seconds: float):
    """The item to compress and its reference for the error: (data, rate or None, reference,
    peak)."""
    if codec.preset.modality is IMAGE:
        from PIL import Image

        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB" if codec.preset.channels == 3 else "L")).copy()
        return pixels, None, pixels.astype(np.float64), 255.0
    from pywalloc.media import audio_info, read_audio

    frames = int(seconds * audio_info(path).sample_rate)
    samples, rate, _ = read_audio(path, frames=frames)  # float32 stereo (mono duplicated)
    return samples, rate, samples.astype(np.float64), 1.0


def measure(codec, items, steps: int, lr: float) -> tuple[float, float, float]:
    """(rate, PSNR, seconds per item) of one setting over ``items``."""
    bits = err = count = duration = 0.0
    t0 = time.perf_counter()
    for data, rate, ref, peak in items:
        if rate is None:
            blob = pywalloc.encode(data, codec=codec, refine=steps, refine_lr=lr).blob
            out = pywalloc.decompress(blob).astype(np.float64)
            duration += data.shape[0] * data.shape[1]  # pixels
        else:
            blob = pywalloc.encode(data, codec=codec, sample_rate=rate, refine=steps,
                                   refine_lr=lr).blob
            out, out_rate = pywalloc.decompress(blob)
            out = np.asarray(out, np.float64)
            if out_rate != rate:
                raise SystemExit(f"refine_sweep: decoded at {out_rate} Hz, not {rate}")
            duration += data.shape[0] / rate  # seconds
        bits += 8 * len(blob)
        err += float(np.sum((out[: ref.shape[0]] - ref) ** 2)) / peak**2
        count += ref.size
    rate_value = bits / duration / (1000.0 if items[0][1] is not None else 1.0)
    return rate_value, mse_psnr(err / count, 1.0), (time.perf_counter() - t0) / len(items)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("codec")
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--run", nargs="+", default=["10:0.3", "30:0.3", "60:0.3", "20:0.6", "20:1.0"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--keep", type=float, default=refine_module.KEEP)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    # pywalloc.encode takes no pull weight: set the default that its refine() call uses.
    refine_module.refine.__kwdefaults__["keep"] = args.keep
    torch.set_num_threads(args.threads)
    codec = pywalloc.load(args.codec)
    runs = []
    for spec in args.run:
        try:
            steps, lr = spec.split(":")
            runs.append((int(steps), float(lr)))
        except ValueError:
            raise SystemExit(f"refine_sweep: --run takes STEPS:LR, got {spec!r}") from None
    files = args.files[:1] if args.quick else args.files
    seconds = 1.0 if args.quick else args.seconds
    items = [load(codec, p, seconds) for p in files]
    if args.quick:
        runs = [(2, 0.3), (2, 1.0)]
        if items[0][1] is None:
            d = items[0][0][:64, :96].copy()
            items = [(d, None, d.astype(np.float64), 255.0)]
    name = codec.preset.name
    default_lr = refine_module.LEARNING_RATE.get(name, refine_module.DEFAULT_LEARNING_RATE)
    unit = "bpp" if items[0][1] is None else "kbps"
    print(f"{args.codec} ({codec.weight_hash}), {len(items)} items "
          f"({', '.join(p.name for p in files)}), threads {args.threads}, keep {args.keep:g}\n")
    print(f"| steps | lr | {unit} | PSNR (dB) | s per item |\n|---:|---:|---:|---:|---:|")
    for steps, lr in [(0, default_lr), *runs]:
        rate, psnr, sec = measure(codec, items, steps, lr)
        label = "plain" if steps == 0 else str(steps)
        print(f"| {label} | {lr:g} | {rate:.3f} | {psnr:.3f} | {sec:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
