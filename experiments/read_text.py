"""Compressed-domain document reading at a CPU scale: a CTC line reader trained on WaLLoC
latents versus on resized images with the same number of values.

Text lines (random lowercase words and numbers, 4 DejaVu fonts, glyph sizes 10-18 px, random
ink/paper colours and positions) are rendered with PIL at 32 x 128 px, so training data is
unlimited: every step draws a fresh batch. The same batch feeds every variant:

  latent-<codec>  the codec's latents of the 32 x 128 line (rgb-16x: 12 x 4 x 16 = 768 values)
  resize-<codec>  the line resized (bicubic, antialiased) to the same number of values
                  (rgb-16x: 3 x 8 x 32 = 768; rgb-4x: 3 x 16 x 64 = 3,072)
  full            the 32 x 128 line itself (12,288 values; reference, no reduction)

Every variant uses the same reader: a patch embedding onto the common 4 x 16 grid, 2D residual
conv blocks, height collapsed, width upsampled to 32 steps, 1D dilated conv blocks, CTC.
The test set is fixed by --test-seed. Metrics: character accuracy (1 - edit distance / length,
per line, floored at 0), ANLS (threshold 0.5) and exact-line accuracy, overall and per size.

    python experiments/read_text.py            # full run
    python experiments/read_text.py --quick    # smoke test (< 30 s)
    python experiments/read_text.py --codecs rgb-16x path/to/new-rgb-16x.safetensors

Writes ``results/compressed_learning/read_text.json`` and ``read_text.md`` (``--out``).
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
from PIL import Image, ImageDraw, ImageFont
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _results  # experiments/_results.py, beside this script

from pywalloc.learning import LearningError, resolve_codec
from pywalloc.learning.layers import ChannelNorm

H, W = 32, 128
GRID = (4, 16)  # common embedded grid (one cell = 8 x 8 px of the line)
STEPS = 32  # CTC time steps (4 px of the line each)
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 "
SIZES = (10, 12, 14, 18)  # font size in px: x-height about 5 to 10 px before reduction
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
# The paper's Table 3 (document VQA, ANLS, 224x224 equivalent), quoted for context only.
PAPER_ANLS = (43.7, 81.1)


def font_dir() -> Path:
    """DejaVu TrueType files: matplotlib ships them (an evaluation dependency); the Debian
    fonts-dejavu-core package is the fallback."""
    cands = []
    try:
        import matplotlib

        cands.append(Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf")
    except ImportError:
        pass
    cands.append(Path("/usr/share/fonts/truetype/dejavu"))
    for d in cands:
        if all((d / f).is_file() for f in FONT_FILES):
            return d
    raise LearningError("DejaVu fonts not found (install matplotlib or fonts-dejavu-core)")


class Renderer:
    def __init__(self) -> None:
        d = font_dir()
        self.fonts = {(f, s): ImageFont.truetype(str(d / f), s) for f in FONT_FILES
                      for s in SIZES}

    def text(self, rng: np.random.Generator) -> str:
        words = []
        for _ in range(int(rng.integers(2, 5))):
            if rng.random() < 0.3:
                words.append("".join(rng.choice(list("0123456789"), int(rng.integers(1, 5)))))
            else:
                words.append("".join(rng.choice(list(ALPHABET[:26]), int(rng.integers(2, 7)))))
        return " ".join(words)

    def line(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
        font = self.fonts[(FONT_FILES[int(rng.integers(len(FONT_FILES)))], size)]
        text = self.text(rng)
        while True:  # shorten until it fits with a 2 px margin
            x0, y0, x1, y1 = font.getbbox(text)
            if x1 - x0 <= W - 4 or len(text) <= 1:
                break
            text = text[:-1].rstrip()
        paper = rng.integers(170, 256, 3)
        ink = rng.integers(0, 90, 3)
        img = Image.new("RGB", (W, H), tuple(int(v) for v in paper))
        x = int(rng.integers(2, max(3, W - 2 - (x1 - x0)))) - x0
        y = (H - (y1 - y0)) // 2 - y0 + int(rng.integers(-3, 4))
        ImageDraw.Draw(img).text((x, y), text, font=font, fill=tuple(int(v) for v in ink))
        return np.asarray(img), text

    def batch(self, rng: np.random.Generator, n: int, sizes=None) -> tuple[torch.Tensor, list,
                                                                              list]:
        sizes = sizes if sizes is not None else [SIZES[int(rng.integers(len(SIZES)))]
                                                 for _ in range(n)]
        lines = [self.line(rng, s) for s in sizes]
        x = torch.from_numpy(np.stack([a for a, _ in lines])).permute(0, 3, 1, 2).contiguous()
        return x, [t for _, t in lines], list(sizes)


def resize_batch(x: torch.Tensor, factor: int) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> uint8 [B, 3, H/f, W/f] (PIL bicubic, antialiased)."""
    out = [np.asarray(Image.fromarray(a).resize((W // factor, H // factor), Image.BICUBIC))
           for a in x.permute(0, 2, 3, 1).numpy()]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


class Variant:
    """One input representation: name, how a batch of lines becomes its input tensor."""

    def __init__(self, name: str, kind: str, codec=None, factor: int = 1) -> None:
        self.name, self.kind, self.codec, self.factor = name, kind, codec, factor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "latent":
            with torch.inference_mode():
                return self.codec.encode_uint8(x).float()
        if self.factor == 1:
            return x.float()
        return resize_batch(x, self.factor).float()


def make_variants(codecs: list, include_full: bool) -> list[Variant]:
    out = []
    for c in codecs:
        cz = c.preset.latent_channels
        factor = math.isqrt(3 * 64 // cz)
        if factor * factor * cz != 192:
            raise LearningError(f"{c.preset.name}: no integer resize factor gives "
                                f"{cz} values per 8 x 8 block")
        out.append(Variant(f"resize-{c.preset.name}", "resize", c, factor))
        out.append(Variant(f"latent-{c.preset.name}", "latent", c))
    if include_full:
        out.append(Variant("full", "resize", None, 1))
    return out


class _Res2d(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ChannelNorm(d), nn.Conv2d(d, d, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(d, d, 1))

    def forward(self, x):
        return x + self.body(x)


class _Res1d(nn.Module):
    def __init__(self, d: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ChannelNorm(d), nn.Conv1d(d, d, 3, padding=dilation,
                                                            dilation=dilation), nn.GELU(),
                                  nn.Conv1d(d, d, 1))

    def forward(self, x):
        return x + self.body(x)


class Reader(nn.Module):
    """CTC line reader; only the patch embedding depends on the input (its patch maps the
    input onto the 4 x 16 grid, so every token of a pair sees the same number of values)."""

    def __init__(self, in_channels: int, patch: int, mean, std, dim: int = 64,
                 depth2d: int = 2, depth1d: int = 3) -> None:
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1))
        self.register_buffer("std", std.clamp_min(1e-3).reshape(1, -1, 1, 1))
        self.embed = nn.Sequential(nn.Conv2d(in_channels, dim, patch, stride=patch),
                                   ChannelNorm(dim))
        self.body2d = nn.Sequential(*[_Res2d(dim) for _ in range(depth2d)])
        self.collapse = nn.Conv1d(dim * GRID[0], dim, 1)
        self.up = nn.ConvTranspose1d(dim, dim, STEPS // GRID[1], stride=STEPS // GRID[1])
        self.body1d = nn.Sequential(*[_Res1d(dim, 2 ** (i % 3)) for i in range(depth1d)])
        self.head = nn.Sequential(ChannelNorm(dim), nn.Conv1d(dim, len(ALPHABET) + 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.body2d(self.embed((x - self.mean) / self.std))
        b, d, h, w = e.shape
        s = self.up(self.collapse(e.reshape(b, d * h, w)))
        return self.head(self.body1d(s))  # [B, classes, STEPS]; class 0 is the CTC blank


def targets(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    idx = {c: i + 1 for i, c in enumerate(ALPHABET)}
    flat = [idx[c] for t in texts for c in t]
    return torch.tensor(flat, dtype=torch.long), torch.tensor([len(t) for t in texts])


def greedy(logits: torch.Tensor) -> list[str]:
    out = []
    for seq in logits.argmax(1).tolist():
        chars, prev = [], 0
        for k in seq:
            if k != prev and k != 0:
                chars.append(ALPHABET[k - 1])
            prev = k
        out.append("".join(chars))
    return out


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def scores(preds: list[str], refs: list[str]) -> dict:
    acc, anls, exact = [], [], []
    for p, r in zip(preds, refs):
        d = edit_distance(p, r)
        acc.append(max(0.0, 1.0 - d / max(1, len(r))))
        nl = d / max(1, len(p), len(r))
        anls.append(1.0 - nl if nl < 0.5 else 0.0)
        exact.append(float(p == r))
    return {"char_acc": 100 * statistics.mean(acc), "anls": 100 * statistics.mean(anls),
            "exact": 100 * statistics.mean(exact)}


def evaluate(model: Reader, xs: torch.Tensor, texts: list[str], sizes: list[int]) -> dict:
    model.eval()
    preds = []
    with torch.inference_mode():
        for s in range(0, len(xs), 256):
            preds += greedy(model(xs[s:s + 256]))
    out = scores(preds, texts)
    out["per_size"] = {str(z): scores([p for p, q in zip(preds, sizes) if q == z],
                                      [t for t, q in zip(texts, sizes) if q == z])["char_acc"]
                       for z in SIZES}
    out["examples"] = [[t, p] for t, p in list(zip(texts, preds))[:6]]
    return out


def run_seed(seed: int, variants: list[Variant], renderer: Renderer, test: dict,
             args: argparse.Namespace) -> list[dict]:
    """Train one reader per variant on the same stream of fresh batches."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(1000 + seed)
    models, opts, scheds, secs = {}, {}, {}, {}
    stats_x, _, _ = renderer.batch(np.random.default_rng(seed), 256)
    for v in variants:
        xin = v(stats_x)
        flat = xin.transpose(0, 1).reshape(xin.shape[1], -1)
        patch = xin.shape[-1] // GRID[1]
        models[v.name] = Reader(xin.shape[1], patch, flat.mean(1), flat.std(1), dim=args.dim)
        opts[v.name] = torch.optim.AdamW(models[v.name].parameters(), lr=args.lr,
                                         weight_decay=0.01)
        warm = max(1, args.steps // 20)
        scheds[v.name] = torch.optim.lr_scheduler.LambdaLR(
            opts[v.name], lambda s, warm=warm: min((s + 1) / warm, 0.5 * (
                1 + math.cos(math.pi * min(s, args.steps) / args.steps))))
        secs[v.name] = 0.0
    losses = {v.name: [] for v in variants}
    t_data = 0.0
    for step in range(args.steps):
        t0 = time.perf_counter()
        x, texts, _ = renderer.batch(rng, args.batch)
        tgt, tlen = targets(texts)
        t_data += time.perf_counter() - t0
        for v in variants:
            t0 = time.perf_counter()
            m = models[v.name]
            m.train()
            logp = m(v(x)).log_softmax(1).permute(2, 0, 1)  # [T, B, C]
            loss = F.ctc_loss(logp, tgt, torch.full((len(texts),), STEPS), tlen,
                              zero_infinity=True)
            opts[v.name].zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opts[v.name].step()
            scheds[v.name].step()
            losses[v.name].append(float(loss.detach()))
            secs[v.name] += time.perf_counter() - t0
        if args.log_every and (step + 1) % args.log_every == 0:
            print(f"seed {seed} step {step + 1}: " + "  ".join(
                f"{k} {statistics.mean(val[-args.log_every:]):.3f}" for k, val in
                losses.items()), flush=True)
    runs = []
    for v in variants:
        r = evaluate(models[v.name], test[v.name], test["texts"], test["sizes"])
        r.update({"variant": v.name, "seed": seed, "train_seconds": secs[v.name],
                  "values": int(np.prod(test[v.name].shape[1:])),
                  "params": sum(p.numel() for p in models[v.name].parameters()),
                  "loss_curve": [statistics.mean(losses[v.name][i:i + 50])
                                 for i in range(0, len(losses[v.name]), 50)]})
        runs.append(r)
        print(f"{v.name:>16} seed {seed}: char acc {r['char_acc']:.1f}  ANLS {r['anls']:.1f}  "
              f"exact {r['exact']:.1f}  per size {r['per_size']}", flush=True)
    return runs


def summarise(runs: list[dict], variants: list[Variant]) -> dict:
    out = {}
    for v in variants:
        rs = [r for r in runs if r["variant"] == v.name]
        out[v.name] = {k: {"mean": statistics.mean(r[k] for r in rs),
                           "std": statistics.stdev(r[k] for r in rs) if len(rs) > 1 else 0.0}
                       for k in ("char_acc", "anls", "exact")}
        out[v.name]["values"] = rs[0]["values"]
        out[v.name]["per_size"] = {z: statistics.mean(r["per_size"][z] for r in rs)
                                   for z in rs[0]["per_size"]}
        out[v.name]["train_seconds"] = statistics.mean(r["train_seconds"] for r in rs)
    for v in variants:
        if v.kind != "latent":
            continue
        rname = f"resize-{v.codec.preset.name}"
        seeds = sorted({r["seed"] for r in runs})
        get = {(r["variant"], r["seed"]): r for r in runs}
        for k in ("char_acc", "anls"):
            d = [get[(v.name, s)][k] - get[(rname, s)][k] for s in seeds]
            out[v.name][f"diff_{k}"] = {k2: x for k2, x in _results.interval(d).items()
                                        if k2 != "n"}
    return out


def markdown(result: dict, variants: list[Variant]) -> str:
    s = result["summary"]

    def cell(v, k):
        return f"{s[v][k]['mean']:.1f} ± {s[v][k]['std']:.1f}"

    lines = ["| codec (equivalent) | values | metric | resize | latents | change (95 % CI) |",
             "|---|---|---|---|---|---|"]
    for v in variants:
        if v.kind != "latent":
            continue
        rn = f"resize-{v.codec.preset.name}"
        f = math.isqrt(3 * 64 // v.codec.preset.latent_channels)
        for k, label in (("char_acc", "char. accuracy %"), ("anls", "ANLS x 100")):
            d = s[v.name][f"diff_{k}"]
            ci = f" [{d['lo']:+.1f}, {d['hi']:+.1f}]" if math.isfinite(d["lo"]) else ""
            lines.append(f"| {v.codec.preset.name} ({H // f}x{W // f} px, 1/{f} per side) | "
                         f"{s[v.name]['values']:,} | {label} | {cell(rn, k)} | {cell(v.name, k)} "
                         f"| {d['mean']:+.1f}{ci} |")
    if "full" in s:
        lines.append(f"| none (full {H}x{W}) | {s['full']['values']:,} | char. accuracy % | "
                     f"{cell('full', 'char_acc')} | — | — |")
    lines += ["", (f"Seeds: {result['seeds_done']}. Character accuracy (%) by font size "
              "(mean over seeds):"), "",
              "| variant | " + " | ".join(f"{z} px" for z in SIZES) + " | train s |",
              "|---|" + "---|" * (len(SIZES) + 1)]
    for v in variants:
        ps = s[v.name]["per_size"]
        lines.append(f"| {v.name} | " + " | ".join(f"{ps[str(z)]:.1f}" for z in SIZES)
                     + f" | {s[v.name]['train_seconds']:.0f} |")
    lines += ["", (f"Paper (document VQA, ANLS at 224x224 equivalent, quoted): resize "
                   f"{PAPER_ANLS[0]} vs latents {PAPER_ANLS[1]}.")]
    return "\n".join(lines) + "\n"


def combine(files: list[Path], out: Path) -> int:
    """One result from several runs (their JSON files) of one configuration, other seeds."""

    parts = _results.load_parts(files, "read_text", ("seeds", "log_every", "combine", "out"))
    if parts is None:
        return 2
    runs = [r for p in parts for r in p["runs"]]
    seeds = [r["seed"] for r in runs if r["variant"] == runs[0]["variant"]]
    if len(set(seeds)) != len(seeds):
        print(f"read_text: a seed occurs twice ({sorted(seeds)})", file=sys.stderr)
        return 2
    cfg = parts[0]["config"]
    variants = make_variants([resolve_codec(c) for c in cfg["codecs"]], not cfg["no_full"])
    result = _results.combined(parts, files, runs, seeds, summarise(runs, variants))
    _results.write(out, "read_text", result, markdown(result, variants))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (< 30 s)")
    ap.add_argument("--out", type=Path, default=Path("results/compressed_learning"))
    ap.add_argument("--codecs", nargs="+", default=["rgb-16x", "rgb-4x"],
                    help="image codec names or weights paths")
    ap.add_argument("--no-full", action="store_true", help="skip the full-resolution reference")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--test", type=int, default=2000, help="test lines (fixed by --test-seed)")
    ap.add_argument("--test-seed", type=int, default=12345)
    ap.add_argument("--log-every", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    _results.add_merge_options(ap)
    args = ap.parse_args(argv)
    if args.compare:
        keep = ("seeds", "log_every", "combine", "out", "codecs", "threads", "compare")
        return _results.compare(args.compare, "read_text", keep,
                                {"char_acc": "char. accuracy %", "anls": "ANLS x 100"})
    if args.combine:
        return combine(args.combine, args.out)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.seeds, args.steps, args.test, args.batch, args.log_every = \
            args.seeds[:2], 15, 64, 16, 0
        args.dim = 32
    t_start = time.perf_counter()
    try:
        codecs = [resolve_codec(c) for c in args.codecs]
        for c in codecs:
            if c.preset.modality.dims != 2:
                raise LearningError(f"{c.preset.name} is not an image codec")
        renderer = Renderer()
        variants = make_variants(codecs, not args.no_full)
    except LearningError as exc:
        print(f"read_text: {exc}", file=sys.stderr)
        return 2
    trng = np.random.default_rng(args.test_seed)
    tx, ttexts, tsizes = renderer.batch(trng, args.test,
                                        [SIZES[i % len(SIZES)] for i in range(args.test)])
    test = {"texts": ttexts, "sizes": tsizes, **{v.name: v(tx) for v in variants}}
    runs = []
    name = "read_text-quick" if args.quick else "read_text"
    for seed in args.seeds:  # results are rewritten after every seed
        runs += run_seed(seed, variants, renderer, test, args)
        result = {
            "experiment": "read_text", "command": " ".join(["python", *sys.argv]),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "seeds_done": sorted({r["seed"] for r in runs}),
            "codecs": {c.preset.name: c.weight_hash for c in codecs},
            "data": {"line": [H, W], "sizes": list(SIZES), "fonts": list(FONT_FILES),
                     "alphabet": ALPHABET, "test_lines": args.test,
                     "train_lines_per_seed": args.steps * args.batch},
            "runs": runs, "summary": summarise(runs, variants),
            "wall_seconds": time.perf_counter() - t_start, **_results.environment(args.threads),
        }
        _results.write(args.out, name, result, markdown(result, variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
