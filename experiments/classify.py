"""Compressed-domain classification on Imagenette: the same small CNN trained on WaLLoC
latents versus on resized images with the same number of values (and on full 224x224).

    python experiments/classify.py            # full run (3 seeds x 5 variants, ~25 min on 2 cores)
    python experiments/classify.py --quick    # smoke test, well under a minute

Writes ``results/compressed_learning/classify.json`` and ``classify.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _results  # experiments/_results.py, beside this script

import pywalloc
from pywalloc.learning.encode import resize_center_crop
from pywalloc.learning.layers import LatentConvNet

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "imagenette"
SIDE = 224
GRID = 28  # latent grid of a 224x224 image (block 8); every variant is embedded to 14x14
# name -> (kind, resize side or codec, patch). Patches make every embedded grid 14x14 and
# every token see the same number of input values (48 for the 16x pair, 192 for the 4x pair).
VARIANTS = {
    "resize-56": ("resize", 56, 4),
    "rgb-16x": ("latent", "rgb-16x", 2),
    "resize-112": ("resize", 112, 8),
    "rgb-4x": ("latent", "rgb-4x", 2),
    "full-224": ("resize", 224, 16),
}
# (resolution equivalent, resized variant, latent variant): rows of the table.
PAIRS = [("56x56 (9,408 values)", "resize-56", "rgb-16x"),
         ("112x112 (37,632 values)", "resize-112", "rgb-4x")]
# The WaLLoC paper's Table 3 (ImageNet-1k top-1), quoted for context only.
PAPER = {"resize-56": ("64x64", 23.1, 50.3), "resize-112": ("128x128", 55.8, 64.3)}


def load_split(split: str, per_class: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    root = DATA / split
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    images, labels = [], []
    for y, c in enumerate(classes):
        files = sorted((root / c).iterdir())[:per_class]
        for f in files:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("RGB"))
            if arr.shape[:2] != (SIDE, SIDE):
                arr = resize_center_crop(arr, SIDE)
            images.append(arr)
            labels.append(y)
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def represent(images: np.ndarray, variant: str, batch: int = 50) -> torch.Tensor:
    """[N, C, h, w] uint8 pixels (resize variants) or int8 latents (codec variants)."""
    kind, arg, _ = VARIANTS[variant]
    if kind == "resize":
        if arg == SIDE:
            return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        small = [np.asarray(Image.fromarray(a).resize((arg, arg), Image.BICUBIC)) for a in images]
        return torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2).contiguous()
    codec = pywalloc.load(arg)
    out = []
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = torch.from_numpy(images[s:s + batch]).permute(0, 3, 1, 2).float() / 255 - 0.5
            out.append(codec.encode(x))
    return torch.cat(out)


def prepare(variant: str, splits: dict, cache: Path, tag: str) -> dict[str, torch.Tensor]:
    """Train (both orientations: flipped images are re-encoded, not flipped in latent space)
    and val tensors, cached as safetensors so repeated runs skip the encoding."""
    from safetensors.torch import load_file, save_file

    kind, arg, _ = VARIANTS[variant]
    key = pywalloc.load(arg).weight_hash if kind == "latent" else "pixels"
    path = cache / f"classify-{tag}-{variant}-{key}.safetensors"
    if path.is_file():
        return load_file(str(path))
    tr, va = splits["train"][0], splits["val"][0]
    t = {"train": represent(tr, variant), "train_flip": represent(tr[:, :, ::-1].copy(), variant),
         "val": represent(va, variant)}
    cache.mkdir(parents=True, exist_ok=True)
    save_file(t, str(path) + ".part")
    os.replace(str(path) + ".part", path)
    return t


def shift_batch(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``max_shift`` samples (zero padding: the standardised mean)."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen).tolist()
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def channel_stats(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = t.float().transpose(0, 1).reshape(t.shape[1], -1)
    return x.mean(1), x.std(1)


def train_eval(data: dict, ytr: torch.Tensor, yva: torch.Tensor, variant: str, seed: int,
               args: argparse.Namespace) -> dict:
    _, _, patch = VARIANTS[variant]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    both = torch.cat([data["train"], data["train_flip"]])
    mean, std = channel_stats(both)
    # Inputs are standardised here (so that shift padding is the mean): no scaling inside.
    model = LatentConvNet(both.shape[1], int(ytr.max()) + 1, patch, dim=args.width,
                          depths=(1, 2), scale=1.0)
    n = len(ytr)
    steps_per_epoch = math.ceil(n / args.batch)
    total = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    warm = max(1, steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, 0.5 * (
        1 + math.cos(math.pi * min(s, total) / total))))
    # One grid unit is 8 pixels of the 224x224 image: 1 latent position, 2 px at 56x56...
    unit = data["val"].shape[-1] // GRID
    epoch_times, losses = [], []
    for _ in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        running = 0.0
        for s in range(0, n, args.batch):
            idx = order[s:s + args.batch]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], data["train_flip"][idx].float(),
                            data["train"][idx].float())
            x = (x - mean[:, None, None]) / std[:, None, None]
            x = shift_batch(x, args.shift * unit, gen)
            loss = F.cross_entropy(model(x), ytr[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach()) * len(idx)
        epoch_times.append(time.perf_counter() - t0)
        losses.append(running / n)
    model.eval()
    correct = 0
    with torch.inference_mode():
        for s in range(0, len(yva), 200):
            x = (data["val"][s:s + 200].float() - mean[:, None, None]) / std[:, None, None]
            correct += int((model(x).argmax(1) == yva[s:s + 200]).sum())
    return {"variant": variant, "seed": seed, "top1": 100.0 * correct / len(yva),
            "epoch_seconds": statistics.mean(epoch_times), "train_loss": losses,
            "params": sum(p.numel() for p in model.parameters())}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for v in VARIANTS:
        acc = [r["top1"] for r in runs if r["variant"] == v]
        if acc:
            out[v] = {"mean": statistics.mean(acc),
                      "std": statistics.stdev(acc) if len(acc) > 1 else 0.0, "n": len(acc),
                      "epoch_seconds": statistics.mean(r["epoch_seconds"] for r in runs
                                                       if r["variant"] == v)}
    return out


def markdown(result: dict) -> str:
    s = result["summary"]

    def cell(v: str) -> str:
        return f"{s[v]['mean']:.1f} ± {s[v]['std']:.1f}" if v in s else "—"

    header = ("| task | resolution equivalent | variant | resize | compressed | change | "
              "s/epoch (resize / compressed) |")
    lines = [header, "|---|---|---|---|---|---|---|"]
    for equiv, rv, lv in PAIRS:
        change = (f"{s[lv]['mean'] - s[rv]['mean']:+.1f} pp" if rv in s and lv in s else "—")
        secs = " / ".join(f"{s[v]['epoch_seconds']:.1f}" if v in s else "—" for v in (rv, lv))
        lines.append(f"| Imagenette top-1 (%) | {equiv} | {lv} | {cell(rv)} | {cell(lv)} | "
                     f"{change} | {secs} |")
    if "full-224" in s:
        lines.append(f"| Imagenette top-1 (%) | 224x224 (150,528 values) | none (full size) | "
                     f"{cell('full-224')} | — | — | {s['full-224']['epoch_seconds']:.1f} |")
    lines.append("")
    lines.append("Paper (ImageNet-1k top-1, quoted): " + "; ".join(
        f"{eq}: resize {a}% vs latents {b}%" for eq, a, b in PAPER.values()))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (< 1 min)")
    ap.add_argument("--out", type=Path, default=Path("results/compressed_learning"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--width", type=int, default=32, help="CNN width of the first stage")
    ap.add_argument("--shift", type=int, default=2,
                    help="random translation, in latent positions (8 px of the 224 image)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a busy 2-core machine)")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"classify: {DATA} not found", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    per = {"train": None, "val": None}
    tag = "full"
    if args.quick:
        per, tag = {"train": 6, "val": 3}, "quick"
        args.seeds, args.epochs = args.seeds[:1], 1
    t_start = time.perf_counter()
    splits = {k: load_split(k, per[k]) for k in per}
    ytr, yva = torch.from_numpy(splits["train"][1]), torch.from_numpy(splits["val"][1])
    args.out.mkdir(parents=True, exist_ok=True)
    name = "classify-quick" if args.quick else "classify"
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    runs: list[dict] = []
    prep_seconds = {}
    for v in args.variants:
        t0 = time.perf_counter()
        data = prepare(v, splits, args.out / "cache", tag)
        prep_seconds[v] = time.perf_counter() - t0
        for seed in args.seeds:
            r = train_eval(data, ytr, yva, v, seed, args)
            runs.append(r)
            print(f"{v:>10} seed {seed}: top-1 {r['top1']:.1f}%  "
                  f"{r['epoch_seconds']:.1f} s/epoch  loss {r['train_loss'][-1]:.3f}", flush=True)
    result = {
        "experiment": "classify", "command": " ".join(["python", *sys.argv]), "config": config,
        "data": {"train": len(ytr), "val": len(yva), "classes": splits["train"][2]},
        "codecs": {v: pywalloc.load(VARIANTS[v][1]).weight_hash for v in args.variants
                   if VARIANTS[v][0] == "latent"},
        "runs": runs, "summary": summarise(runs), "prepare_seconds": prep_seconds,
        "wall_seconds": time.perf_counter() - t_start, **_results.environment(args.threads),
    }
    _results.write(args.out, name, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
