"""Border rule of the wavelet packet transform: periodization against whole-sample symmetric
extension (JPEG 2000's rule), measured with a linear WaLLoC-like codec on Kodak.

    python benchmarks/borders.py [--quick] [--band 16] [--keep 12]

The codec: J = 3 packet transform of x = uint8/255 - 0.5 (``pywalloc.wavelets.wpt`` with each
``border``), projection on the first ``--keep`` principal components of the 192 packet channels
(fitted on BSDS500 training images with the same border rule), latents ``round(g * projection)``
clipped to int8 and packed with ``pywalloc.entropy.pack`` (lossless WebP, method 1) for the
rate; decoding is the linear inverse (the PCA basis, then ``iwpt`` with the same border).
Several gains g per rule give rate-PSNR curves (plus the unquantised projection, which shows
the loss of the discarded channels alone); the PSNR of the symmetric rule at the rate of
each periodization point is interpolated (linear in log-rate) for the equal-rate comparison.
PSNR over all pixels, over the border band (pixels within ``--band`` of an edge) and over the
interior, each pooled over the images (PSNR of the mean squared error).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pywalloc.entropy import pack
from pywalloc.evaluation.baselines import log_rate_interpolate
from pywalloc.evaluation.metrics import mse_psnr
from pywalloc.wavelets import BORDERS, iwpt, wpt

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LEVELS = 3


def _load(path: Path) -> torch.Tensor:
    img = np.asarray(Image.open(path).convert("RGB"))
    h, w = img.shape[0] // 8 * 8, img.shape[1] // 8 * 8
    return torch.from_numpy(img[:h, :w].copy()).permute(2, 0, 1)[None].double() / 255 - 0.5


class Linear:
    """PCA of the packet channels, fitted on training images with one border rule."""

    def __init__(self, train: list[torch.Tensor], border: str, keep: int) -> None:
        self.border, self.keep = border, keep
        flat = [wpt(x, LEVELS, border=border)[0].reshape(192, -1) for x in train]
        n = sum(f.shape[1] for f in flat)
        self.mean = sum(f.sum(1) for f in flat) / n
        cov = sum((f - self.mean[:, None]) @ (f - self.mean[:, None]).T for f in flat) / n
        var, vec = torch.linalg.eigh(cov)
        self.basis = vec[:, torch.argsort(var, descending=True)[:keep]]  # [192, keep]

    def run(self, x: torch.Tensor, gain: float | None) -> tuple[torch.Tensor, int]:
        """Reconstruction of one image and the packed latent size in bytes (gain None: the
        projection alone, unquantised, size 0)."""
        c = wpt(x, LEVELS, border=self.border)[0]
        shape = c.shape[1:]
        y = self.basis.T @ (c.reshape(192, -1) - self.mean[:, None])
        size = 0
        if gain is not None:
            z = (gain * y).round().clamp(-127, 127).to(torch.int8)
            size = len(pack(z.reshape(self.keep, *shape).numpy(), method=1))
            y = z.double() / gain
        c_hat = self.basis @ y + self.mean[:, None]
        x_hat = iwpt(c_hat.reshape(1, 192, *shape), LEVELS, border=self.border)
        return x_hat, size


def evaluate(model: Linear, kodak: list[torch.Tensor], gain: float | None, band: int) -> dict:
    tot = {"all": [0.0, 0], "band": [0.0, 0], "interior": [0.0, 0]}
    size = pixels = 0
    for x in kodak:
        x_hat, nbytes = model.run(x, gain)
        size += nbytes
        a = ((x + 0.5) * 255).round()
        b = ((x_hat.clamp(-0.5, 0.5) + 0.5) * 255).round()
        err = ((a - b) ** 2).sum(1)[0]  # [H, W], summed over RGB
        h, w = err.shape
        inner = torch.zeros(h, w, dtype=torch.bool)
        inner[band : h - band, band : w - band] = True
        for key, mask in (("all", torch.ones_like(inner)), ("band", ~inner), ("interior", inner)):
            tot[key][0] += err[mask].sum().item()
            tot[key][1] += 3 * int(mask.sum())
        pixels += h * w
    out = {k: mse_psnr(e / n, 255.0) for k, (e, n) in tot.items()}
    out["bpp"] = 8 * size / pixels
    return out


def _interp(rate: float, points: list[dict], key: str) -> float:
    """PSNR at ``rate`` from (bpp, PSNR) points, linear in log-rate (nan outside the range)."""
    pts = sorted((p["bpp"], p[key]) for p in points)
    for (r0, p0), (r1, p1) in itertools.pairwise(pts):
        if r0 <= rate <= r1:
            return log_rate_interpolate(r0, p0, r1, p1, rate)
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 Kodak images, 10 training images, 2 gains")
    ap.add_argument("--band", type=int, default=16, help="border band width in pixels")
    ap.add_argument("--keep", type=int, default=12, help="latent channels (12: like rgb-16x)")
    args = ap.parse_args()
    if not (DATA / "kodak").is_dir():
        print(f"error: shared data not found at {DATA}", file=sys.stderr)
        return 2
    if not 1 <= args.keep <= 192 or args.band < 1:
        print("error: --keep must be in 1..192 and --band positive", file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    train = [_load(p) for p in sorted((DATA / "train-images" / "bsds500").glob("*.jpg"))
             [: 10 if args.quick else 100]]
    kodak = [_load(p) for p in sorted((DATA / "kodak").glob("*.png"))[: 2 if args.quick else 24]]
    gains = (4.0, 8.0) if args.quick else (2.0, 3.0, 4.0, 6.0, 8.0)
    print(f"Kodak: {len(kodak)} images; PCA on {len(train)} BSDS500 images; keep {args.keep} "
          f"of 192 channels; border band {args.band} px\n")
    print("| border | gain | bpp | PSNR all | PSNR band | PSNR interior |")
    print("|---|---:|---:|---:|---:|---:|")
    curves = {}
    for border in BORDERS:
        model = Linear(train, border, args.keep)
        curves[border] = []
        for g in (None, *gains):
            r = evaluate(model, kodak, g, args.band)
            if g is not None:
                curves[border].append(r)
            rate = "unquantised" if g is None else f"{r['bpp']:.4f}"
            print(f"| {border} | {'-' if g is None else f'{g:g}'} | {rate} | {r['all']:.2f} | "
                  f"{r['band']:.2f} | {r['interior']:.2f} |", flush=True)
    print("\nSynthesis energy of a unit coefficient in the first row of the latent grid, "
          "relative to the same coefficient in an interior row, over the 192 channels "
          "(1.000 everywhere: the transform treats border coefficients like interior ones):\n")
    print("| border | min | median | max |\n|---|---:|---:|---:|")
    for border in BORDERS:
        energy = []
        for row in (0, 8):
            unit = torch.zeros(192, 192, 16, 16, dtype=torch.float64)
            unit[torch.arange(192), torch.arange(192), row, 8] = 1.0
            energy.append(iwpt(unit, LEVELS, border=border).pow(2).sum((1, 2, 3)))
        ratio = energy[0] / energy[1]
        print(f"| {border} | {ratio.min():.3f} | {ratio.median():.3f} | {ratio.max():.3f} |")
    print("\nAt equal rate (symmetric interpolated at each periodization point):\n")
    print("| bpp | PSNR all: per. / sym. / gain | band: per. / sym. / gain "
          "| interior: per. / sym. / gain |\n|---:|---|---|---|")
    for p in curves["periodization"]:
        cells = []
        for key in ("all", "band", "interior"):
            s = _interp(p["bpp"], curves["symmetric"], key)
            cells.append(f"{p[key]:.2f} / - / - (outside the symmetric curve's rates)"
                         if math.isnan(s) else f"{p[key]:.2f} / {s:.2f} / {s - p[key]:+.2f} dB")
        print(f"| {p['bpp']:.4f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
