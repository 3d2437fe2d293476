"""Encoder-side refinement: PSNR against rate as the pull towards the plain codes (``keep``)
varies, on images that are not Kodak (so the default is not tuned on the evaluation set).

    python experiments/refine_keep.py [--images DIR] [--count 8] [--steps 30]
        [--keep 0.15 0.08 0.04] [--codec rgb-16x] [--threads 1] [--quick]

Images: the first ``count`` files of ``DIR`` (default: the shared BSDS500 photos),
each downscaled by an integer factor to at most 1024 px on its long side and centre-cropped
to at most 768x512 (or 512x768), the Kodak geometry (BSDS500 photos stay whole). Each row: mean bpp of the real ``.wlc`` bytes
(``compress`` with refined latents, the preset's entropy coder and WebP method) and PSNR of
the pooled squared error of ``decompress``. ``--quick``: one 64x96 crop, 2 steps (a smoke
test).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pywalloc
from pywalloc import api
from pywalloc.evaluation.metrics import mse_psnr
from pywalloc.modality import IMAGE
from pywalloc.refine import refine


def crop(path: Path, h: int = 512, w: int = 768, channels: int = 3) -> np.ndarray:
    """The centre crop of ``path`` (see above), RGB or, for a 1-channel codec, gray."""
    with Image.open(path) as im:
        im = im.convert("RGB" if channels == 3 else "L")
        if im.height > im.width:
            h, w = w, h
        f = max(1, math.ceil(max(im.size) / 1024))
        im = im.reduce(f) if f > 1 else im
        w, h = min(w, im.width), min(h, im.height)
        left, top = (im.width - w) // 2, (im.height - h) // 2
        return np.asarray(im.crop((left, top, left + w, top + h))).copy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" /
                    "train-images" / "bsds500")
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--keep", type=float, nargs="+", default=[0.15, 0.08, 0.04])
    ap.add_argument("--codec", default="rgb-16x")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    files = sorted(p for p in args.images.iterdir()
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.count]
    if not files:
        raise SystemExit(f"refine_keep: no images in {args.images}")
    codec = pywalloc.load(args.codec)
    channels = codec.preset.channels
    if codec.preset.modality is not IMAGE:
        raise SystemExit(f"refine_keep: {args.codec} is not an image codec")
    images = [crop(p, channels=channels) for p in files]
    steps = args.steps
    if args.quick:
        images, steps = [images[0][:64, :96].copy()], 2
    print(f"{args.codec} ({codec.weight_hash}), {len(images)} images "
          f"({', '.join(p.name for p in files[:len(images)])}), {steps} steps\n")
    print("| keep | bpp | PSNR (dB) | s per image |\n|---:|---:|---:|---:|")
    for keep in [None, *args.keep]:
        bits = err = pixels = 0.0
        t0 = time.perf_counter()
        for img in images:
            x, mode = IMAGE.to_tensor(img, channels)
            with torch.inference_mode():
                z = codec.encode_uint8(x)
            if keep is not None:
                z = refine(codec, x, z, steps, keep=keep)
            enc = api._encoded(codec, z[0].cpu(), tuple(x.shape[2:]), channels, mode,
                               tuple(x.shape[2:]), 0, 1.0, None)
            out = pywalloc.decompress(enc.blob)
            n = img.shape[0] * img.shape[1]
            bits += 8 * len(enc.blob)
            err += float(np.sum((out.astype(np.float64) - img) ** 2)) / channels
            pixels += n
        psnr = mse_psnr(err / pixels, 255.0)
        label = "plain" if keep is None else f"{keep:g}"
        print(f"| {label} | {bits / pixels:.4f} | {psnr:.2f} | "
              f"{(time.perf_counter() - t0) / len(images):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
