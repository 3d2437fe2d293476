"""Gray images through the RGB codecs versus the gray codecs, with the real byte path.

    python experiments/gray_eval.py --data KODAK [--weights gray-16x=FILE ...] [--out FILE]
                                    [--baselines webp jpeg]

Each image is converted to gray (Pillow's ``convert("L")``; evaluation only), compressed to
``.wlc`` bytes and decompressed: ``rgb-16x`` / ``rgb-4x`` with ``as_rgb=True`` (three equal
channels: the only gray path before the gray codecs) and ``gray-16x`` / ``gray-4x`` (one
channel; bundled weights, or the files given with ``--weights``). Prints a Markdown table of
mean bpp (header included) and mean PSNR (8-bit, per image, then averaged); ``--out`` writes
the per-image figures as JSON. ``--baselines`` adds, for each codec row, the named classical
codecs at the same bytes per image (the gray image saved as Pillow saves it, RGB with three
equal channels; PSNR of the decoded image's luma).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pywalloc import api, zoo
from pywalloc.evaluation.baselines import image_baseline, match_image_bpp
from pywalloc.evaluation.metrics import psnr
from pywalloc.media import iter_inputs
from pywalloc.presets import GRAY_COUNTERPART


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="evaluation images (converted to gray)")
    ap.add_argument("--weights", nargs="*", default=[], metavar="PRESET=FILE",
                    help="gray codec weights to use instead of the bundled ones")
    ap.add_argument("--limit", type=int, default=0, help="only the first N images")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="JSON of the per-image figures")
    ap.add_argument("--baselines", nargs="*", default=[], choices=["webp", "jpeg", "avif"],
                    help="classical codecs matched to each row's bytes per image")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    given = dict(w.split("=", 1) for w in args.weights)
    codecs = {}
    for rgb, gray in GRAY_COUNTERPART.items():
        codecs[rgb] = zoo.load(rgb)
        if gray in given:
            codecs[gray] = zoo.load(given[gray])
        elif gray in zoo.available():
            codecs[gray] = zoo.load(gray)
    files = iter_inputs(args.data, "image")
    files = files[: args.limit] if args.limit else files
    rows = {name: [] for name in codecs}
    t0 = time.time()
    for f in files:
        with Image.open(f) as im:
            g = np.asarray(im.convert("L"))
        for name, codec in codecs.items():
            enc = api.encode(g, codec, as_rgb=True)
            out = api.decode_blob(enc.blob, codec).data
            assert out.shape == g.shape
            row = {"file": f.name, "bpp": enc.rate, "bytes": len(enc.blob),
                   "psnr": psnr(g, out, 255.0), "weights": codec.weight_hash}
            for b in args.baselines:
                point = match_image_bpp(np.repeat(g[:, :, None], 3, 2), image_baseline(b),
                                        8.0 * len(enc.blob) / g.size)
                back = np.asarray(Image.fromarray(point.decoded).convert("L"))
                row[b] = {"bpp": point.bpp, "psnr": psnr(g, back, 255.0)}
            rows[name].append(row)
    summary = {n: {"bpp": float(np.mean([r["bpp"] for r in v])),
                   "psnr": float(np.mean([r["psnr"] for r in v])), "images": len(v),
                   "weights": codec.weight_hash,
                   **{b: {k: float(np.mean([r[b][k] for r in v])) for k in ("bpp", "psnr")}
                      for b in args.baselines}}
               for (n, v), codec in zip(rows.items(), codecs.values())}
    print(f"{len(files)} images, {time.time() - t0:.0f} s")
    extra = "".join(f" {b} at equal bytes: bpp / PSNR |" for b in args.baselines)
    print("| codec | bpp | PSNR (dB) | bpp vs rgb | PSNR vs rgb |" + extra)
    print("|---|---|---|---|---|" + "---|" * len(args.baselines))

    def cells(row: dict) -> str:
        return "".join(f" {row[b]['bpp']:.3f} / {row[b]['psnr']:.2f} |" for b in args.baselines)

    for rgb, gray in GRAY_COUNTERPART.items():
        r = summary[rgb]
        print(f"| `{rgb}` (gray as RGB) | {r['bpp']:.3f} | {r['psnr']:.2f} | | |" + cells(r))
        if gray in summary:
            s = summary[gray]
            print(f"| `{gray}` | {s['bpp']:.3f} | {s['psnr']:.2f} | {s['bpp'] / r['bpp']:.2f}x "
                  f"| {s['psnr'] - r['psnr']:+.2f} dB |" + cells(s))
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "images": rows}, indent=1))


if __name__ == "__main__":
    main()
