"""Initial weights for a gray codec (gray-16x, gray-4x) from its bundled RGB counterpart.

    python experiments/gray_init.py gray-16x OUT.safetensors --data DIR [--gain X | --gains ...]

What it builds (the decoder architecture, norm included, is the RGB decoder's):

- **Analysis and linear synthesis path**: PCA of the luma's 64 wavelet channels over the
  training images (``pywalloc.training.init``), at a latent gain chosen by measurement: for
  each candidate gain the linear codec (PCA, rounding, real lossless-WebP bytes) is run on
  sample training images converted to gray, beside the RGB codec on the same gray images, and
  the gain whose rate is nearest ``--rate-fraction`` (default 1/3) of the RGB codec's is kept
  (``--gain`` skips the sweep).
- **Decoder trunk** (residual blocks): copied from the RGB decoder.
- **First decoder layer** (latents -> width, 1x1): re-fitted by least squares so that, on gray
  training images, it gives from the gray latents the features the RGB decoder's first layer
  gives from the RGB codec's latents of the same images.
- **Output layer** (width -> wavelet channels): the RGB rows of each wavelet channel averaged.
  The RGB codec's 192 wavelet channels are colour-major (channel ``64 c + k``: colour ``c``,
  subband ``k``, see ``pywalloc.wavelets.wpt``), and a gray image decodes as the mean of the
  three colours, so gray row ``k`` is the mean of rows ``k``, ``64 + k`` and ``128 + k``.

Data: training images only (luma, Pillow's ``convert("L")``); never Kodak. Fine-tune the result
with ``experiments/train_gray.sh``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pywalloc import api
from pywalloc.codec import Codec, compand
from pywalloc.evaluation.metrics import psnr
from pywalloc.modality import luma
from pywalloc.presets import GRAY_COUNTERPART
from pywalloc.training.data import list_files, read_rgb
from pywalloc.training.init import pca_init, wpt_statistics
from pywalloc.wavelets import wpt
from pywalloc.zoo import load


def sample_gray(data: Path, files: int, side: int) -> list[np.ndarray]:
    """``files`` training images spread over the folder, as luma, centre-cropped to at most
    ``side`` x ``side``."""
    paths = list_files(data, "image")
    paths = paths[:: max(1, len(paths) // files)][:files]
    out = []
    for p in paths:
        g = luma(read_rgb(p))
        h, w = g.shape
        top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
        out.append(np.ascontiguousarray(g[top:top + side, left:left + side]))
    return out


def byte_path(images: list[np.ndarray], codec, **kw) -> tuple[float, float]:
    """Mean bpp and PSNR (dB) of compress -> bytes -> decode over gray images."""
    bpp, db = [], []
    for g in images:
        enc = api.encode(g, codec, **kw)
        out = api.decode_blob(enc.blob, codec if isinstance(codec, Codec) else None).data
        bpp.append(enc.rate)
        db.append(psnr(g, out, 255.0))
    return float(np.mean(bpp)), float(np.mean(db))


def refit_first_layer(gray: Codec, rgb: Codec, images: list[np.ndarray]) -> float:
    """Least-squares fit of the gray decoder's first 1x1 layer to the RGB decoder's first-layer
    features on the same gray images; returns the relative residual."""
    ins, targets = [], []
    w0, b0 = rgb.synthesis.net[0].weight.flatten(1), rgb.synthesis.net[0].bias
    with torch.no_grad():
        for g in images:
            x = torch.from_numpy(g).float()[None, None] / 255 - 0.5
            h, w = (n // 8 * 8 for n in x.shape[2:])
            x = x[:, :, :h, :w]
            y_g = torch.round(compand(gray.analysis(wpt(x, 3)))).flatten(2)[0] / 32
            y_r = torch.round(compand(rgb.analysis(wpt(x.expand(1, 3, h, w), 3)))).flatten(2)[0]
            ins.append(torch.cat([y_g, torch.ones(1, y_g.shape[1])]))
            targets.append(w0 @ (y_r / 32) + b0[:, None])
    a = torch.cat(ins, 1).double()  # [k + 1, N]
    t = torch.cat(targets, 1).double()  # [width, N]
    gram = a @ a.T + 1e-6 * torch.eye(a.shape[0], dtype=torch.float64)
    sol = torch.linalg.solve(gram, a @ t.T).T  # [width, k + 1]
    layer = gray.synthesis.net[0]
    with torch.no_grad():
        layer.weight.copy_(sol[:, :-1].float().view_as(layer.weight))
        layer.bias.copy_(sol[:, -1].float())
    return float((sol @ a - t).norm() / t.norm())


def transplant(gray: Codec, rgb: Codec) -> None:
    """Copy the RGB decoder's trunk; average the output layer's colour rows (see module doc)."""
    src, dst = rgb.synthesis.net, gray.synthesis.net
    for i in range(1, len(dst) - 1):
        dst[i].load_state_dict(src[i].state_dict())
    per = gray.preset.wpt_channels  # 64 subbands; the RGB layer has 3 x 64 colour-major rows
    w, b = src[-1].weight, src[-1].bias
    with torch.no_grad():
        dst[-1].weight.copy_(w.view(3, per, *w.shape[1:]).mean(0))
        dst[-1].bias.copy_(b.view(3, per).mean(0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", choices=sorted(GRAY_COUNTERPART.values()))
    ap.add_argument("out", help="the initial weights (.safetensors, fp32)")
    ap.add_argument("--data", required=True, help="training images (never Kodak)")
    ap.add_argument("--gain", type=float, help="latent gain (default: chosen by the sweep)")
    ap.add_argument("--gains", type=float, nargs="+",
                    default=[4, 5, 6, 7, 8, 10, 12, 14, 17, 20, 24, 28, 34])
    ap.add_argument("--rate-fraction", type=float, default=1 / 3,
                    help="target rate as a fraction of the RGB codec's on the same gray images")
    ap.add_argument("--files", type=int, default=16, help="sample images for the measurements")
    ap.add_argument("--side", type=int, default=384, help="their centre crop, in pixels")
    ap.add_argument("--pca-files", type=int, default=200)
    ap.add_argument("--no-transplant", action="store_true",
                    help="keep the fresh decoder (linear path only) instead of the RGB trunk")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.time()
    rgb_name = next(r for r, g in GRAY_COUNTERPART.items() if g == args.preset)
    rgb = load(rgb_name)
    arch = {"width": rgb.config.width, "blocks": rgb.config.blocks,
            "attention": rgb.config.attention, "norm": rgb.config.norm}
    gray = Codec(args.preset, rgb.config.size, **arch).eval()
    mean, cov = wpt_statistics(gray, args.data, max_files=args.pca_files)
    images = sample_gray(Path(args.data), args.files, args.side)
    rgb_bpp, rgb_db = byte_path(images, rgb_name, as_rgb=True)
    report = {"preset": args.preset, "rgb": rgb_name, "rgb_on_gray": {"bpp": rgb_bpp,
                                                                       "psnr": rgb_db},
              "files": len(images), "side": args.side, "sweep": []}
    print(f"{rgb_name} on gray: {rgb_bpp:.4f} bpp {rgb_db:.2f} dB", flush=True)
    gain = args.gain
    if gain is None:
        target = args.rate_fraction * rgb_bpp
        best = None
        for g in args.gains:
            pca_init(gray, mean, cov, g)
            bpp, db = byte_path(images, gray)
            report["sweep"].append({"gain": g, "bpp": bpp, "psnr_linear": db})
            print(f"gain {g:5.1f}: linear {args.preset} {bpp:.4f} bpp {db:.2f} dB", flush=True)
            if best is None or abs(bpp - target) < abs(best[1] - target):
                best = (g, bpp)
        gain = best[0]
    ev = pca_init(gray, mean, cov, gain)
    report["gain"] = gain
    report["pca_energy"] = float(ev[: gray.preset.latent_channels].sum() / ev.sum())
    report["linear"] = dict(zip(("bpp", "psnr"), byte_path(images, gray)))
    if not args.no_transplant:
        transplant(gray, rgb)
        report["first_layer_residual"] = refit_first_layer(gray, rgb, images)
        report["transplanted"] = dict(zip(("bpp", "psnr"), byte_path(images, gray)))
    report["minutes"] = (time.time() - t0) / 60
    gray.save(args.out, half=False, extra={"gray_init": report})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
