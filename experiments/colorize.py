"""Compressed-domain colorization on Imagenette: the same small conv net predicts a colour
image from a grayscale one, either in WaLLoC latent space (gray latents in, colour latents
out, decoded by the frozen codec) or on resized images with the same number of values
(gray resized in, colour resized out, upsampled back with bicubic interpolation).

At SIDE x SIDE (default 128): rgb-16x latents are 12 x SIDE/8 x SIDE/8, the same number of
values as a 3-channel image of SIDE/4 x SIDE/4; the gray input is given as RGB (R = G = B) on
both sides, so input and output have that dimension. Metrics on held-out validation images at
full size: PSNR (RGB, 8-bit) and LPIPS in dB (-10 log10 LPIPS, AlexNet v0.1; higher is better).

    python experiments/colorize.py            # full run (3 seeds)
    python experiments/colorize.py --quick    # smoke test (< 30 s)

Writes ``results/compressed_learning/colorize.json`` and ``colorize.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _results  # experiments/_results.py, beside this script

from pywalloc.evaluation.metrics import distance_db, psnr_rgb8
from pywalloc.learning import LearningError, resolve_codec
from pywalloc.learning.encode import resize_center_crop
from pywalloc.learning.layers import ChannelNorm

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "imagenette"
# The paper's Table 3 colorization gain (LPIPS dB, latents minus resize), quoted for context.
PAPER_GAIN_DB = (0.14, 0.40)


def load(split: str, per_class: int | None, side: int) -> np.ndarray:
    """Colour images only: the grayscale ones (R = G = B) have no colour to predict."""
    images = []
    for c in sorted(d for d in (DATA / split).iterdir() if d.is_dir()):
        kept = []
        for f in sorted(c.iterdir()):
            if per_class is not None and len(kept) == per_class:
                break
            with Image.open(f) as im:
                arr = resize_center_crop(np.asarray(im.convert("RGB")), side)
            if np.ptp(arr.astype(np.int16), axis=2).max() > 8:
                kept.append(arr)
        images += kept
    return np.stack(images)


def gray(images: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, replicated to three channels (uint8)."""
    y = np.round(images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    return np.repeat(y.clip(0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def small(images: np.ndarray, factor: int) -> torch.Tensor:
    s = images.shape[1] // factor
    out = [np.asarray(Image.fromarray(a).resize((s, s), Image.BICUBIC)) for a in images]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()


def encode(codec, images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        return torch.cat([codec.encode_uint8(x[s:s + 64]) for s in range(0, len(x), 64)]).float()


class Net(nn.Module):
    """Standardised input -> patch embedding -> residual 3x3 blocks -> pixel-shuffle head ->
    standardised output (plus the input, so it starts near "copy the gray")."""

    def __init__(self, channels: int, patch: int, dim: int, depth: int, stats) -> None:
        super().__init__()
        for k, v in zip(("in_m", "in_s", "out_m", "out_s"), stats):
            self.register_buffer(k, v.reshape(1, -1, 1, 1))
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.blocks = nn.ModuleList(nn.Sequential(
            ChannelNorm(dim), nn.Conv2d(dim, dim, 3, padding=1), nn.GELU(), nn.Conv2d(dim, dim, 1))
            for _ in range(depth))
        self.head = nn.Sequential(ChannelNorm(dim), nn.Conv2d(dim, channels * patch * patch, 1),
                                  nn.PixelShuffle(patch))
        nn.init.zeros_(self.head[1].weight)
        nn.init.zeros_(self.head[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the prediction in standardised output units."""
        xs = (x - self.in_m) / self.in_s
        h = self.embed(xs)
        for b in self.blocks:
            h = h + b(h)
        return self.head(h) + (x - self.out_m) / self.out_s

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x) * self.out_s + self.out_m


def stats(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = t.transpose(0, 1).reshape(t.shape[1], -1)
    return f.mean(1), f.std(1).clamp_min(1e-3)


def run(domain: str, data: dict, codec, seed: int, args) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xin, yout = data[f"{domain}_gray"], data[f"{domain}_color"]
    patch = 1 if domain == "latent" else 2
    model = Net(xin.shape[1], patch, args.dim, args.depth, (*stats(xin), *stats(yout)))
    n = len(xin)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    total = args.epochs * math.ceil(n / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=total, pct_start=0.1)
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, args.batch):
            i = order[s:s + args.batch]
            loss = F.mse_loss(model(xin[i]), (yout[i] - model.out_m) / model.out_s)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    train_s = time.perf_counter() - t0
    with torch.inference_mode():
        pred = torch.cat([model.predict(data[f"{domain}_val"][s:s + 64])
                          for s in range(0, len(data[f"{domain}_val"]), 64)])
        if domain == "latent":
            z = pred.round().clamp(-127, 127)
            img = torch.cat([codec.decode(z[s:s + 32]) for s in range(0, len(z), 32)])
            img = (img + 0.5) * 255
        else:
            img = F.interpolate(pred, scale_factor=4, mode="bicubic",
                                align_corners=False)
    out = img.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return {"domain": domain, "seed": seed, "train_seconds": train_s,
            **score(out, data["val_rgb"], data["lpips"])}


def score(out: np.ndarray, ref: np.ndarray, lpips_model) -> dict:
    ps = [psnr_rgb8(r, o) for r, o in zip(ref, out)]
    res = {"psnr": statistics.mean(ps)}
    if lpips_model is not None:
        with torch.inference_mode():
            a = torch.from_numpy(ref).permute(0, 3, 1, 2).float() / 255
            b = torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255
            d = torch.cat([lpips_model(a[s:s + 32], b[s:s + 32]) for s in range(0, len(a), 32)])
        res["lpips_db"] = statistics.mean(distance_db(float(v)) for v in d)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (< 30 s)")
    ap.add_argument("--out", type=Path, default=Path("results/compressed_learning"))
    ap.add_argument("--codec", default="rgb-16x", help="rgb-16x name or weights path")
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--val", type=int, default=50, help="validation images per class")
    ap.add_argument("--no-lpips", action="store_true", help="PSNR only")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not DATA.is_dir():
        print(f"colorize: {DATA} not found", file=sys.stderr)
        return 2
    try:
        codec = resolve_codec(args.codec)
    except LearningError as exc:
        print(f"colorize: {exc}", file=sys.stderr)
        return 2
    if codec.preset.modality.dims != 2 or codec.preset.latent_channels != 12:
        print("colorize: --codec must be an image codec with 12 latent channels (rgb-16x)",
              file=sys.stderr)
        return 2
    per_train, per_val = None, args.val
    if args.quick:
        per_train, per_val, args.side = 3, 1, 64
        args.seeds, args.epochs, args.dim, args.depth = args.seeds[:2], 1, 16, 1
    if args.side % 32:
        print("colorize: --side must be a multiple of 32", file=sys.stderr)
        return 2
    lpips_model = None
    if not args.no_lpips:
        try:
            from pywalloc.evaluation.perceptual import LPIPS

            lpips_model = LPIPS.from_package()
        except Exception as exc:  # noqa: BLE001 (optional dependency; report and go on)
            print(f"colorize: LPIPS unavailable ({str(exc).splitlines()[0]}); PSNR only",
                  file=sys.stderr)
    t_start = time.perf_counter()
    tr = load("train", per_train, args.side)
    tr = np.concatenate([tr, tr[:, :, ::-1]])  # flips in pixel space, then encoded
    va = load("val", per_val, args.side)
    data = {"val_rgb": va, "lpips": lpips_model,
            "latent_gray": encode(codec, gray(tr)), "latent_color": encode(codec, tr),
            "latent_val": encode(codec, gray(va)),
            "resize_gray": small(gray(tr), 4), "resize_color": small(tr, 4),
            "resize_val": small(gray(va), 4)}
    assert data["latent_gray"][0].numel() == data["resize_gray"][0].numel()
    # Reference points without learning: the gray input itself (full size: not what either
    # model sees), and each side's ceiling: the true colour image through its representation.
    with torch.inference_mode():
        zc = encode(codec, va)
        rt = torch.cat([codec.decode(zc[s:s + 32]) for s in range(0, len(zc), 32)])
    up = F.interpolate(small(va, 4), scale_factor=4, mode="bicubic", align_corners=False)
    base = {"gray input (full size)": score(gray(va), va, lpips_model),
            "ceiling, latents: codec round trip of the colour image": score(
                ((rt + 0.5) * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
                .numpy(), va, lpips_model),
            "ceiling, resize: colour image at 1/4 size, bicubic back": score(
                up.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy(), va,
                lpips_model)}
    runs = []
    name = "colorize-quick" if args.quick else "colorize"
    for seed in args.seeds:
        for domain in ("resize", "latent"):
            r = run(domain, data, codec, seed, args)
            runs.append(r)
            print(f"{domain:>7} seed {seed}: PSNR {r['psnr']:.2f} dB" + (
                f"  LPIPS {r['lpips_db']:.2f} dB" if "lpips_db" in r else ""), flush=True)
        result = {
            "experiment": "colorize", "command": " ".join(["python", *sys.argv]),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "seeds_done": sorted({r["seed"] for r in runs}), "codec": codec.weight_hash,
            "data": {"train": len(tr), "val": len(va), "side": args.side},
            "values": data["latent_gray"][0].numel(), "baselines": base, "runs": runs,
            "summary": summarise(runs), "wall_seconds": time.perf_counter() - t_start,
            **_results.environment(args.threads)}
        _results.write(args.out, name, result, markdown(result))
    return 0


def summarise(runs: list[dict]) -> dict:
    out = {}
    for metric in ("psnr", "lpips_db"):
        if metric not in runs[0]:
            continue
        by = {(r["domain"], r["seed"]): r[metric] for r in runs}
        seeds = sorted(s for d, s in by if d == "latent" and ("resize", s) in by)
        row = {d: [by[(d, s)] for s in seeds] for d in ("resize", "latent")}
        diff = [a - b for a, b in zip(row["latent"], row["resize"])]
        d = _results.interval(diff)
        out[metric] = {k: {"mean": statistics.mean(v), "std": statistics.stdev(v)
                           if len(v) > 1 else 0.0} for k, v in row.items()}
        out[metric]["diff"] = {"mean": d["mean"], "lo": d["lo"], "hi": d["hi"]}
    return out


def markdown(result: dict) -> str:
    s = result["summary"]
    side = result["data"]["side"]
    lines = [(f"Colorization at {side}x{side} ({result['values']:,} values: rgb-16x latents vs "
             f"{side // 4}x{side // 4} RGB), {result['data']['val']} validation images, seeds "
             f"{result['seeds_done']}."), "",
             "| metric (dB) | resize | latents | change (95 % CI) |", "|---|---|---|---|"]
    for metric, label in (("lpips_db", "LPIPS dB"), ("psnr", "PSNR")):
        if metric in s:
            m, d = s[metric], s[metric]["diff"]
            ci = f" [{d['lo']:+.2f}, {d['hi']:+.2f}]" if math.isfinite(d["lo"]) else ""
            lines.append(f"| {label} | {m['resize']['mean']:.2f} ± {m['resize']['std']:.2f} | "
                         f"{m['latent']['mean']:.2f} ± {m['latent']['std']:.2f} | "
                         f"{d['mean']:+.2f}{ci} |")
    lines += ["", "| reference (no learning) | LPIPS dB | PSNR |", "|---|---|---|"]
    lines += [f"| {k} | {v.get('lpips_db', float('nan')):.2f} | {v['psnr']:.2f} |"
              for k, v in result["baselines"].items()]
    lines += ["", (f"Paper (colorization, LPIPS dB gain of latents, quoted): +{PAPER_GAIN_DB[0]} to "
              f"+{PAPER_GAIN_DB[1]} dB.")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
