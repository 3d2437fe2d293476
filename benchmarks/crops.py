"""Side-by-side crops at equal size: the original, WaLLoC (plain and with encoder-side
refinement), and WebP and JPEG at the bytes of the plain WaLLoC file.

    python benchmarks/crops.py [--image KODAK/kodim23.png] [--codec rgb-16x] [--refine 15]
                               [--box X,Y,W,H] [--zoom 2] [--out docs/crops-kodim23-rgb-16x.png]
    python benchmarks/crops.py --quick --out /tmp/crops.png   # a synthetic picture, seconds

Every panel comes from the real byte path (``pywalloc.compress`` -> bytes ->
``pywalloc.decompress``; Pillow for the baselines, matched by bisection on their quality to
the closest size). Titles give each file's bytes and the whole-picture PSNR; the crop is
enlarged with nearest-neighbour pixels so the artefacts stay visible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pywalloc
from pywalloc.evaluation import baselines as B
from pywalloc.evaluation.metrics import psnr

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def _synthetic(h: int = 96, w: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    img = 128 + 70 * np.sin(xx / 6.0)[..., None] * np.cos(yy / 9.0)[..., None]
    img = img + rng.normal(0, 10, (h, w, 3)) + np.where(xx > w // 2, 30, -30)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def panels(img: np.ndarray, codec: str, refine: int) -> list[tuple[str, np.ndarray]]:
    """(title, decoded picture) for the original and every codec, at equal size."""
    pixels = img.shape[0] * img.shape[1]
    out = [("original", img)]
    plain = pywalloc.compress(img, codec)
    target = 8.0 * len(plain) / pixels
    decoded = pywalloc.decompress(plain)
    out.append((f"WaLLoC {codec}\n{len(plain)} B, {psnr(img, decoded, peak=255.0):.2f} dB", decoded))
    if refine:
        blob = pywalloc.compress(img, codec, refine=refine)
        decoded = pywalloc.decompress(blob)
        title = f"WaLLoC {codec}, refine {refine}\n{len(blob)} B, {psnr(img, decoded, peak=255.0):.2f} dB"
        out.append((title, decoded))
    for name, label in (("webp", "WebP"), ("jpeg", "JPEG")):
        base = B.image_baseline(name)
        if not base.available:
            continue
        p = B.match_image_bpp(img, base, target)
        out.append((f"{label} q{p.quality:g}\n{p.nbytes} B, {psnr(img, p.decoded, peak=255.0):.2f} dB",
                    p.decoded))
    return out


def figure(parts: list[tuple[str, np.ndarray]], box: tuple[int, int, int, int], zoom: int,
           out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y, w, h = box
    fig, axes = plt.subplots(1, len(parts), figsize=(2.6 * len(parts), 2.6 * h / w + 0.7))
    for ax, (title, pic) in zip(np.atleast_1d(axes), parts):
        crop = pic[y:y + h, x:x + w]
        ax.imshow(np.kron(crop, np.ones((zoom, zoom, 1), np.uint8)), interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=KODAK / "kodim23.png")
    ap.add_argument("--codec", default="rgb-16x")
    ap.add_argument("--refine", type=int, default=15)
    ap.add_argument("--box", default="200,60,160,120", help="crop X,Y,W,H in pixels")
    ap.add_argument("--zoom", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="a synthetic picture, 2 refine steps")
    args = ap.parse_args(argv)
    if args.quick:
        img, refine, box = _synthetic(), 2, (16, 16, 64, 48)
    else:
        if not args.image.is_file():
            print(f"crops.py: no picture at {args.image} (give --image)", file=sys.stderr)
            return 2
        img = np.asarray(Image.open(args.image).convert("RGB"))
        refine = args.refine
        box = tuple(int(v) for v in args.box.split(","))
    out = args.out or Path("docs") / f"crops-{Path(args.image).stem}-{args.codec}.png"
    parts = panels(img, args.codec, refine)
    for title, _ in parts:
        print(title.replace("\n", ": "))
    figure(parts, box, args.zoom, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
