"""Encode/decode throughput of each bundled WaLLoC RGB image codec against WebP and JPEG (Pillow),
end to end through bytes, on the same images and the same machine.

Usage: python benchmarks/throughput.py [--quick] [--data DIR] [--limit N] [--repeats N]
       [--threads N] [--json FILE]
Images come from --data (default: the shared Kodak set), else from synthetic 768x512 images.
Each baseline runs at the quality whose bpp is closest to the WaLLoC codec it is compared with.
--quick uses two 256x256 images and one repeat (a smoke test; its numbers mean little).
Timings are the best of --repeats after one warm-up call; MPix/s counts H*W pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import best_time  # the sibling module (the script's folder leads sys.path)

import pywalloc
from pywalloc.evaluation import baselines as B
from pywalloc.evaluation.harness import load_image
from pywalloc.media import iter_inputs

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def synthetic_images(n: int, h: int, w: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    imgs = []
    for i in range(n):
        base = np.stack([x * 255 / w, y * 255 / h, 128 + 80 * np.sin((x + 2 * y) / (9.0 + i))], -1)
        imgs.append(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8))
    return imgs


def load_images(args: argparse.Namespace) -> tuple[list[np.ndarray], str]:
    if args.quick:
        return synthetic_images(2, 256, 256), "2 synthetic 256x256 images"
    folder = Path(args.data) if args.data else KODAK
    files = iter_inputs(folder, "image") if folder.is_dir() else []
    if files:
        files = files[: args.limit]
        return [load_image(p) for p in files], f"{len(files)} images from {folder}"
    return synthetic_images(args.limit, 512, 768), f"{args.limit} synthetic 768x512 images"


def measure(images: list[np.ndarray], codecs: list[str], repeats: int) -> list[dict]:
    """Pooled MPix/s per WaLLoC codec and per baseline matched to it (same images)."""
    rows = []
    for codec in codecs:
        totals: dict[str, np.ndarray] = {}  # name -> [pixels, enc_s, dec_s, bits]
        for img in images:
            pixels = img.shape[0] * img.shape[1]
            t_enc, blob = best_time(repeats, pywalloc.compress, img, codec=codec)
            t_dec, _ = best_time(repeats, pywalloc.decompress, blob)
            totals.setdefault(codec, np.zeros(4))
            totals[codec] += (pixels, t_enc, t_dec, 8.0 * len(blob))
            bpp = 8.0 * len(blob) / pixels
            for name in ("webp", "jpeg"):
                base = B.image_baseline(name)
                q = B.match_image_bpp(img, base, bpp).quality
                t_enc, bblob = best_time(repeats, base.encode, img, q)
                t_dec, _ = best_time(repeats, base.decode, bblob)
                totals.setdefault(name, np.zeros(4))
                totals[name] += (pixels, t_enc, t_dec, 8.0 * len(bblob))
        ref_enc = totals[codec][0] / totals[codec][1]
        ref_dec = totals[codec][0] / totals[codec][2]
        for name, (pixels, t_enc, t_dec, bits) in totals.items():
            enc, dec = pixels / t_enc / 1e6, pixels / t_dec / 1e6
            rows.append({"codec": name, "vs": codec, "bpp": bits / pixels, "enc_mps": enc,
                         "dec_mps": dec, "enc_ratio": enc / (ref_enc / 1e6),
                         "dec_ratio": dec / (ref_dec / 1e6)})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [("| Codec | at the bpp of | bpp | Enc MPix/s | Dec MPix/s | Enc / WaLLoC "
             "| Dec / WaLLoC |"), "|---|---|---|---|---|---|---|"]
    for r in rows:
        name = f"**WaLLoC {r['codec']}**" if r["codec"] == r["vs"] else r["codec"]
        lines.append(f"| {name} | {r['vs']} | {r['bpp']:.3f} | {r['enc_mps']:.2f} | "
                     f"{r['dec_mps']:.2f} | {r['enc_ratio']:.2f}× | {r['dec_ratio']:.2f}× |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two small synthetic images, 1 repeat")
    ap.add_argument("--data", default=None, help="folder of images (default: shared Kodak)")
    ap.add_argument("--limit", type=int, default=4, help="number of images (default 4)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per measurement")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else max(1, args.repeats)
    # RGB codecs only: the baselines here take colour pictures (gray-16x's decode time is in
    # benchmarks/model_card.py's table of sizes)
    codecs = [n for n in pywalloc.available()
              if pywalloc.PRESETS[n].modality is pywalloc.IMAGE and pywalloc.PRESETS[n].channels == 3]
    if not codecs:
        print("no bundled RGB image codecs", file=sys.stderr)
        return 1
    images, source = load_images(args)
    rows = measure(images, codecs, repeats)
    print(markdown(rows))
    print(f"\n{source}; torch threads = {torch.get_num_threads()} of {os.cpu_count()} CPUs "
          f"(Pillow codecs run single-threaded); best of {repeats} after a warm-up; "
          f"load average {os.getloadavg()[0]:.1f} at the end.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
