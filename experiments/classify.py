"""Compressed-domain classification on Imagenette: a resolution-scaling curve. The same small
network (CNN, or a ViT-Tiny-like model with --model vit) is trained on WaLLoC latents and on
resized images with the same number of values, at three equivalents, plus the full 224x224
images as the validity reference (it must beat every reduced input, or the set-up cannot tell
what resolution is worth). Each input is brought onto the latent grid by space-to-depth (a
lossless rearrangement), so at equal dimension both sides have the same shape and run the same
layers (ConvStem, then the body); the full-size reference reaches that grid in steps of 2.

Augmentation happens on the image, before any reduction: each training image gets --views
random views (random resized crop, horizontal flip, colour jitter), and every variant is made
from the same views (resized, or encoded with pywalloc.learning.EncodeTransform). The views are
computed once and cached; each epoch draws one view per image.

    python experiments/classify.py                     # full run (5 seeds)
    python experiments/classify.py --quick             # smoke test (< 30 s)
    python experiments/classify.py --codec16 new-rgb-16x.safetensors --codec4 new-rgb-4x.safetensors

Writes ``results/compressed_learning/classify.json`` and ``classify.md`` (``--out``).
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
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _results  # experiments/_results.py, beside this script

from pywalloc.learning import EncodeTransform, LearningError, resolve_codec
from pywalloc.learning.encode import resize_center_crop
from pywalloc.learning.layers import LatentConvNet, LatentViT

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "imagenette"
SIDE = 224
# name -> (kind, base side the view is brought to, resize side or codec slot, patch, s2d).
# --stem conv (default): space-to-depth by s2d brings each pair onto one grid and one shape
# (28x28 for the 56 and 112 pairs and the full image, 14x14 for the 28 pair), then ConvStem and
# the body run identically on both sides. --stem patch (the first design): a linear patch
# embedding of `patch` onto 7x7 / 14x14, which squeezes large patches (768 values of a full-size
# 16x16 patch onto --width channels) and made the full-size reference no better than 56x56.
VARIANTS = {
    "resize-28": ("resize", 224, 28, 4, 2),
    "rgb-16x@112": ("latent", 112, "16", 2, 1),
    "resize-56": ("resize", 224, 56, 4, 2),
    "rgb-16x@224": ("latent", 224, "16", 2, 1),
    "resize-112": ("resize", 224, 112, 8, 4),
    "rgb-4x@224": ("latent", 224, "4", 2, 1),
    "full-224": ("resize", 224, 224, 16, 8),
}
# (equivalent, resize variant, latent variant): the points of the scaling curve.
PAIRS = [("28x28 (2,352 values)", "resize-28", "rgb-16x@112"),
         ("56x56 (9,408 values)", "resize-56", "rgb-16x@224"),
         ("112x112 (37,632 values)", "resize-112", "rgb-4x@224")]
FULL = "full-224"
# The WaLLoC paper's Table 3 (ImageNet-1k top-1), quoted for context only.
PAPER = {"64x64": (23.1, 50.3), "128x128": (55.8, 64.3)}


def load_split(split: str, per_class: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    root = DATA / split
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    images, labels = [], []
    for y, c in enumerate(classes):
        for f in sorted((root / c).iterdir())[:per_class]:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("RGB"))  # 49 images are grayscale
            if arr.shape[:2] != (SIDE, SIDE):
                arr = resize_center_crop(arr, SIDE)
            images.append(arr)
            labels.append(y)
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random resized crop (area 35-100 %, aspect 3/4-4/3) back to 224, flip, colour jitter."""
    h, w = img.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(0.35, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if cw <= w and ch <= h:
            break
    else:
        cw, ch = w, h
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    im = Image.fromarray(img).resize((SIDE, SIDE), Image.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    for enh in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        im = enh(im).enhance(rng.uniform(0.75, 1.25))
    return np.asarray(im)


def reduce(images: np.ndarray, side: int) -> np.ndarray:
    if side == images.shape[1]:
        return images
    return np.stack([np.asarray(Image.fromarray(a).resize((side, side), Image.BICUBIC))
                     for a in images])


def represent(images: np.ndarray, variant: str, codecs: dict, batch: int = 50) -> torch.Tensor:
    """[N, C, h, w] uint8 pixels (resize variants) or int8 latents (codec variants)."""
    kind, base, arg = VARIANTS[variant][:3]
    if kind == "resize":
        return torch.from_numpy(reduce(images, arg)).permute(0, 3, 1, 2).contiguous()
    tf = EncodeTransform(codecs[arg], dtype=torch.int8)
    out = []
    for s in range(0, len(images), batch):
        x = torch.from_numpy(reduce(images[s:s + batch], base)).permute(0, 3, 1, 2)
        out.append(tf.batch(x.contiguous()))
    return torch.cat(out)


def views(images: np.ndarray, k: int, seed: int) -> np.ndarray:
    """View j of image i depends only on (seed, i, j): every variant sees the same crops."""
    return np.stack([augment(img, np.random.default_rng([seed, i, j]))
                     for j in range(k) for i, img in enumerate(images)])


def prepare(variants: list[str], splits: dict, codecs: dict, cache: Path, tag: str,
            k: int, view_seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """Per variant: ``train`` [views * N, ...] (view-major) and ``val``, cached on disk."""
    from safetensors.torch import load_file, save

    from pywalloc.media import atomic_write

    out, missing = {}, []
    for v in variants:
        kind, _, arg = VARIANTS[v][:3]
        key = codecs[arg].weight_hash if kind == "latent" else "pixels"
        path = cache / f"classify-{tag}-{v}-{key}-v{k}s{view_seed}.safetensors"
        if path.is_file():
            out[v] = load_file(str(path))
        else:
            missing.append((v, path))
    if missing:
        tr = views(splits["train"][0], k, view_seed)
        for v, path in missing:
            t = {"train": represent(tr, v, codecs), "val": represent(splits["val"][0], v, codecs)}
            cache.mkdir(parents=True, exist_ok=True)
            atomic_write(path, save(t), "cache")
            out[v] = t
    return out


def build(variant: str, in_ch: int, classes: int, args) -> torch.nn.Module:
    patch = VARIANTS[variant][3 if args.stem == "patch" else 4]
    stem = args.full_stem if variant == FULL and args.stem != "patch" else args.stem
    if args.model == "vit":
        return LatentViT(in_ch, classes, patch, dim=args.width * 3, depth=4, heads=3, scale=1.0,
                         stem=stem)
    return LatentConvNet(in_ch, classes, patch, dim=args.width, depths=(1, 2), scale=1.0,
                         stem=stem)


def train_eval(data: dict, ytr: torch.Tensor, yva: torch.Tensor, variant: str, seed: int,
               args: argparse.Namespace) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train = data["train"]
    n = len(ytr)
    k = len(train) // n
    sub = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:500]]
    x = sub.float().transpose(0, 1).reshape(train.shape[1], -1)
    mean, std = x.mean(1)[:, None, None], x.std(1).clamp_min(1e-3)[:, None, None]
    del x, sub
    model = build(variant, train.shape[1], int(ytr.max()) + 1, args)
    steps_per_epoch = math.ceil(n / args.batch)
    total = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    warm = steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, 0.5 * (
        1 + math.cos(math.pi * min(s, total) / total))))
    epoch_times, losses = [], []
    for _ in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        view = torch.randint(0, k, (n,), generator=gen)
        running = 0.0
        for s in range(0, n, args.batch):
            idx = order[s:s + args.batch]
            xb = (train[view[idx] * n + idx].float() - mean) / std
            loss = F.cross_entropy(model(xb), ytr[idx], label_smoothing=0.1)
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
            xb = (data["val"][s:s + 200].float() - mean) / std
            correct += int((model(xb).argmax(1) == yva[s:s + 200]).sum())
    return {"variant": variant, "seed": seed, "top1": 100.0 * correct / len(yva),
            "epoch_seconds": statistics.mean(epoch_times), "train_loss": losses,
            "params": sum(p.numel() for p in model.parameters())}


def summarise(runs: list[dict]) -> dict:
    out: dict = {"variants": {}, "pairs": {}, "validity": {}}
    by = {(r["variant"], r["seed"]): r["top1"] for r in runs}
    for v in VARIANTS:
        acc = [r["top1"] for r in runs if r["variant"] == v]
        if acc:
            out["variants"][v] = {
                "mean": statistics.mean(acc), "std": statistics.stdev(acc) if len(acc) > 1
                else 0.0, "n": len(acc), "epoch_seconds": statistics.mean(
                    r["epoch_seconds"] for r in runs if r["variant"] == v)}

    def diff(a: str, b: str) -> dict | None:
        seeds = sorted(s for (v, s) in by if v == a and (b, s) in by)
        return _results.interval([by[(a, s)] - by[(b, s)] for s in seeds]) if seeds else None

    for _, rv, lv in PAIRS:
        d = diff(lv, rv)
        if d:
            out["pairs"][lv] = d
    for v in VARIANTS:
        if v != FULL:
            d = diff(FULL, v)
            if d:
                # Holds when the full-size model is better by more than the seed spread: the
                # whole 95 % interval of the difference lies above zero.
                d["holds"] = bool(d["lo"] > 0) if math.isfinite(d["lo"]) else None
                out["validity"][v] = d
    return out


def markdown(result: dict) -> str:
    s = result["summary"]
    va = s["variants"]

    def cell(v: str) -> str:
        return f"{va[v]['mean']:.1f} ± {va[v]['std']:.1f}" if v in va else "—"

    def ci(d: dict) -> str:
        return (f"{d['mean']:+.1f} [{d['lo']:+.1f}, {d['hi']:+.1f}]" if math.isfinite(d["lo"])
                else f"{d['mean']:+.1f}")

    model = result["config"]["model"]
    model += f", {result['config'].get('stem', 'patch')} stem"
    lines = [(f"Model: {model}. Top-1 % on the {result['data']['val']:,} validation images, "
              f"mean ± std over seeds {result['seeds_done']}; change = latents - resize, paired by seed, with "
             "its 95 % t interval."), "",
             ("| resolution equivalent | latent variant | resize | latents | change (95 % CI) | "
             "s/epoch (resize / latents) |"), "|---|---|---|---|---|---|"]
    for equiv, rv, lv in PAIRS:
        if rv in va and lv in va:
            secs = " / ".join(f"{va[v]['epoch_seconds']:.1f}" for v in (rv, lv))
            lines.append(f"| {equiv} | {lv} | {cell(rv)} | {cell(lv)} | {ci(s['pairs'][lv])} "
                         f"| {secs} |")
    if FULL in va:
        lines.append(f"| 224x224 (150,528 values) | none (full size) | {cell(FULL)} | — | — | "
                     f"{va[FULL]['epoch_seconds']:.1f} |")
        lines += ["", ("Validity check (full 224x224 minus each reduced input; holds when the 95 % "
                  "interval lies above 0):"), "", ("| reduced input | full - reduced (95 % CI) | "
                  "holds |"), "|---|---|---|"]
        for v, d in s["validity"].items():
            lines.append(f"| {v} | {ci(d)} | {'yes' if d['holds'] else 'no'} |")
    lines += ["", "Paper (ImageNet-1k top-1, quoted): " + "; ".join(
        f"{eq}: resize {a}% vs latents {b}%" for eq, (a, b) in PAPER.items())]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    va = result["summary"]["variants"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    xs = [28, 56, 112]
    for label, col, marker in (("resize", 1, "o"), ("WaLLoC latents", 2, "s")):
        pts = [(x, va[p[col]]) for x, p in zip(xs, PAIRS) if p[col] in va]
        if pts:
            ax.errorbar([x for x, _ in pts], [v["mean"] for _, v in pts],
                        yerr=[v["std"] for _, v in pts], marker=marker, capsize=3, label=label)
    if FULL in va:
        ax.axhline(va[FULL]["mean"], color="gray", ls="--", label="full 224x224")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [f"{x}²" for x in xs])
    ax.set_xlabel("equivalent input (values = 3 x side²)")
    ax.set_ylabel("Imagenette top-1 (%)")
    ax.set_title(f"Resolution scaling ({result['config']['model']}, "
                 f"{len(result['seeds_done'])} seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def combine(files: list[Path], out: Path, model: str) -> int:
    """One result from several runs (their JSON files) of one configuration, other seeds."""

    name = "classify" + ("-vit" if model == "vit" else "")
    parts = _results.load_parts(files, "classify",
                                ("seeds", "variants", "combine", "out", "cache"))
    if parts is None:
        return 2
    runs = [r for p in parts for r in p["runs"]]
    keys = [(r["variant"], r["seed"]) for r in runs]
    if len(set(keys)) != len(keys):
        print("classify: a (variant, seed) run occurs twice", file=sys.stderr)
        return 2
    result = _results.combined(parts, files, runs, list({r["seed"] for r in runs}),
                               summarise(runs))
    _results.write(out, name, result, markdown(result))
    try:
        plot(result, out / f"{name}.png")
    except ImportError:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (< 30 s)")
    ap.add_argument("--out", type=Path, default=Path("results/compressed_learning"))
    ap.add_argument("--codec16", default="rgb-16x", help="rgb-16x name or weights path")
    ap.add_argument("--codec4", default="rgb-4x", help="rgb-4x name or weights path")
    ap.add_argument("--model", choices=("cnn", "vit"), default="cnn")
    ap.add_argument("--stem", choices=("conv", "patch"), default="conv",
                    help="conv: space-to-depth onto a shared grid, then a 3x3 conv stem; patch: "
                         "the first design's linear patch embedding (see VARIANTS)")
    ap.add_argument("--full-stem", choices=("conv", "pyramid"), default="pyramid",
                    help="stem of the full-size reference with --stem conv: pyramid reaches the "
                         "shared grid in steps of 2 (ConvStem pyramid=True)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--views", type=int, default=4, help="augmented views per training image")
    ap.add_argument("--view-seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--width", type=int, default=48, help="CNN width (ViT: 3x this)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a busy 2-core machine)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder for the prepared views (default: OUT/cache)")
    _results.add_merge_options(ap)
    args = ap.parse_args(argv)
    if args.compare:
        keep = ("seeds", "variants", "combine", "out", "cache", "codec16", "codec4", "threads",
                "compare")
        return _results.compare(args.compare, "classify", keep, {"top1": "top-1 %"})
    if args.combine:
        return combine(args.combine, args.out, args.model)
    if not DATA.is_dir():
        print(f"classify: {DATA} not found", file=sys.stderr)
        return 2
    try:
        codecs = {"16": resolve_codec(args.codec16), "4": resolve_codec(args.codec4)}
    except LearningError as exc:
        print(f"classify: {exc}", file=sys.stderr)
        return 2
    for slot, c in codecs.items():
        want = 12 if slot == "16" else 48
        if c.preset.modality.dims != 2 or c.preset.latent_channels != want:
            print(f"classify: --codec{slot} must be an image codec with {want} latent channels",
                  file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    per = {"train": None, "val": None}
    tag = "full"
    if args.quick:
        per, tag = {"train": 4, "val": 2}, "quick"
        args.seeds, args.epochs, args.views = args.seeds[:2], 1, 2
    t_start = time.perf_counter()
    splits = {k: load_split(k, per[k]) for k in per}
    ytr, yva = torch.from_numpy(splits["train"][1]), torch.from_numpy(splits["val"][1])
    args.out.mkdir(parents=True, exist_ok=True)
    name = ("classify-quick" if args.quick else "classify") + ("-vit" if args.model == "vit"
                                                               else "")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    t0 = time.perf_counter()
    data = prepare(args.variants, splits, codecs, args.cache or args.out / "cache", tag,
                   args.views, args.view_seed)
    prep_seconds = time.perf_counter() - t0
    runs: list[dict] = []
    for seed in args.seeds:  # seed-major; results are rewritten after every seed
        for v in args.variants:
            r = train_eval(data[v], ytr, yva, v, seed, args)
            runs.append(r)
            print(f"{v:>12} seed {seed}: top-1 {r['top1']:.1f}%  "
                  f"{r['epoch_seconds']:.1f} s/epoch  loss {r['train_loss'][-1]:.3f}", flush=True)
        result = {
            "experiment": "classify", "command": " ".join(["python", *sys.argv]),
            "config": config, "seeds_done": sorted({r["seed"] for r in runs}),
            "data": {"train": len(ytr), "val": len(yva), "classes": splits["train"][2]},
            "codecs": {c.preset.name: c.weight_hash for c in codecs.values()},
            "runs": runs, "summary": summarise(runs), "prepare_seconds": prep_seconds,
            "wall_seconds": time.perf_counter() - t_start, **_results.environment(args.threads),
        }
        _results.write(args.out, name, result, markdown(result))
        try:
            plot(result, args.out / f"{name}.png")
        except ImportError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
