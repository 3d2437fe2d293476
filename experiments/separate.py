"""Compressed-domain music source separation on the stems set: the same small 1D conv net
estimates the lead part from the mixture either in WaLLoC latent space (predict the lead's
latents, decode them with the codec) or on the waveform resampled to the rate that gives the
same number of values (output resampled back to 44.1 kHz).

    python experiments/separate.py            # full run (~25 min on 2 busy cores)
    python experiments/separate.py --quick    # smoke test, well under a minute

Writes ``results/compressed_learning/separate.json`` and ``separate.md`` (``--out``), rewritten
after every seed, so a stopped run keeps its finished seeds.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _results  # experiments/_results.py, beside this script

import pywalloc
from pywalloc.codec import peak_gain
from pywalloc.evaluation.metrics import audio_psnr, si_sdr
from pywalloc.learning import LearningError, resolve_codec
from pywalloc.learning.layers import LatentConvSeq

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "stems"
RATE = 44100
TOKEN = 512  # input samples at 44.1 kHz per network position: 2 latents or ~27*k waveform samples
CODECS = ("stereo-20x", "stereo-5x")


_OVERRIDE: dict = {}  # preset name -> Codec loaded from --weights NAME=PATH


def get_codec(name: str):
    return _OVERRIDE.get(name) or pywalloc.load(name, frozen=True)


def rate_factors(codec: str) -> tuple[int, int]:
    """(up, down) for resample_poly from 44.1 kHz to the rate with as many values as the
    latents: 2 channels * rate = C_z * 44100 / 256, i.e. rate = 44100 * C_z / 512."""
    cz = pywalloc.PRESETS[codec].latent_channels
    g = math.gcd(cz, 512)
    return cz // g, 512 // g


def load_pieces(split: str, limit: int | None) -> list[dict]:
    pieces = []
    for d in sorted(p for p in (DATA / split).iterdir() if p.is_dir())[:limit]:
        lead, r1 = sf.read(d / "lead.flac", dtype="float32", always_2d=True)
        acc, r2 = sf.read(d / "accomp.flac", dtype="float32", always_2d=True)
        if r1 != RATE or r2 != RATE or lead.shape != acc.shape:
            raise ValueError(f"{d}: expected two stereo 44.1 kHz stems of equal length")
        pieces.append({"name": d.name, "lead": lead, "accomp": acc})
    return pieces


def training_mixes(pieces: list[dict], remixes: int, seed: int) -> list[tuple]:
    """(mixture, lead) pairs: the original pieces plus ``remixes`` rounds of random re-pairing
    (lead of one piece over the accompaniment of another, random gains, shift, L/R swap)."""
    rng = np.random.default_rng(seed)
    out = [(p["lead"] + p["accomp"], p["lead"]) for p in pieces]
    n = len(pieces)
    for _ in range(remixes):
        for i, j in enumerate(rng.permutation(n)):
            lead = pieces[i]["lead"] * np.exp(rng.uniform(-0.7, 0.4))
            acc = pieces[j]["accomp"] * np.exp(rng.uniform(-0.7, 0.4))
            acc = np.roll(acc, TOKEN * int(rng.integers(0, len(acc) // TOKEN)), axis=0)
            if rng.random() < 0.5:
                lead, acc = lead[:, ::-1], acc[:, ::-1]
            out.append((lead + acc, np.ascontiguousarray(lead)))
    return out


def gain_of(mix: np.ndarray) -> float:
    return peak_gain(np.abs(mix).max())


def to_domain(x: np.ndarray, domain: str, codec: str) -> torch.Tensor:
    """[C, L] network-domain tensor of an already peak-normalised [frames, 2] clip."""
    x = np.asarray(x, dtype=np.float32)
    if domain == "latent":
        with torch.inference_mode():
            return get_codec(codec).latents(torch.from_numpy(x.T.copy())[None])[0].clone()
    up, down = rate_factors(codec)
    return torch.from_numpy(resample_poly(x, up, down, axis=0).T.astype(np.float32).copy())


def from_domain(y: torch.Tensor, domain: str, codec: str, frames: int) -> np.ndarray:
    """[frames, 2] audio (still peak-normalised) from a network-domain output."""
    if domain == "latent":
        z = y.round().clamp(-127, 127)[None]
        with torch.inference_mode():
            return get_codec(codec).decode(z, (frames,))[0].T.numpy().astype(np.float64)
    up, down = rate_factors(codec)
    out = resample_poly(y.numpy().T.astype(np.float64), down, up, axis=0)[:frames]
    return np.pad(out, ((0, frames - len(out)), (0, 0)))


def patch_for(domain: str, codec: str) -> int:
    up, down = rate_factors(codec)
    return 2 if domain == "latent" else TOKEN * up // down


def train(xs: torch.Tensor, ys: torch.Tensor, patch: int, seed: int,
          args: argparse.Namespace) -> tuple[LatentConvSeq, dict]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    c = xs.shape[1]
    flat_x, flat_y = xs.transpose(0, 1).reshape(c, -1), ys.transpose(0, 1).reshape(c, -1)
    model = LatentConvSeq(c, c, patch, dim=args.width, depth=args.depth, kernel=5,
                          mean=flat_x.mean(1), std=flat_x.std(1), out_mean=flat_y.mean(1),
                          out_std=flat_y.std(1))
    scale = float(flat_y.var())  # raw-domain MSE, normalised to be ~1 for a zero estimate
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, 0.5 * (
        1 + math.cos(math.pi * min(s, args.steps) / args.steps))))
    crop = args.crop * patch
    positions = xs.shape[-1] // patch - args.crop
    t0, losses = time.perf_counter(), []
    model.train()
    for _ in range(args.steps):
        idx = torch.randint(0, len(xs), (args.batch,), generator=gen)
        # Crops start on token boundaries: a latent position always covers the same samples.
        start = (torch.randint(0, positions + 1, (args.batch,), generator=gen) * patch).tolist()
        x = torch.stack([xs[i, :, s:s + crop] for i, s in zip(idx.tolist(), start)])
        y = torch.stack([ys[i, :, s:s + crop] for i, s in zip(idx.tolist(), start)])
        loss = torch.mean((model(x) - y) ** 2) / scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - t0
    tail = losses[-max(1, len(losses) // 10):]
    return model.eval(), {"train_seconds": seconds, "final_loss": statistics.mean(tail),
                          "params": sum(p.numel() for p in model.parameters())}


def score(lead: np.ndarray, est: np.ndarray) -> dict:
    return {"psnr": audio_psnr(lead, est), "si_sdr": si_sdr(lead, est)}


def mean_scores(rows: list[dict]) -> dict:
    return {k: statistics.mean(r[k] for r in rows) for k in ("psnr", "si_sdr")}


def run_variant(codec: str, domain: str, train_set: list, test: list[dict], seed: int,
                args: argparse.Namespace) -> dict:
    xs = torch.stack([to_domain(g * m, domain, codec) for m, _, g in train_set])
    ys = torch.stack([to_domain(g * ld, domain, codec) for _, ld, g in train_set])
    patch = patch_for(domain, codec)
    pad = (-xs.shape[-1]) % patch
    xs, ys = (torch.nn.functional.pad(t, (0, pad)) for t in (xs, ys))
    model, info = train(xs, ys, patch, seed, args)
    rows = []
    with torch.inference_mode():
        for p in test:
            mix = p["lead"] + p["accomp"]
            g = gain_of(mix)
            x = to_domain(g * mix, domain, codec)
            est = from_domain(model(x[None])[0], domain, codec, len(mix)) / g
            rows.append({"piece": p["name"], **score(p["lead"], est)})
    return {"codec": codec, "domain": domain, "seed": seed, "values": int(xs[0].numel()),
            "patch": patch, **info, "pieces": rows, **mean_scores(rows)}


def baselines(test: list[dict], codecs: list[str]) -> dict:
    out: dict[str, dict] = {"mixture": mean_scores([score(p["lead"], p["lead"] + p["accomp"])
                                                    for p in test])}
    for codec in codecs:
        rt, lp = [], []
        for p in test:
            g = gain_of(p["lead"] + p["accomp"])
            for dom, rows in (("latent", rt), ("wave", lp)):
                est = from_domain(to_domain(g * p["lead"], dom, codec), dom, codec,
                                  len(p["lead"])) / g
                rows.append(score(p["lead"], est))
        out[f"{codec} round trip of the true lead"] = mean_scores(rt)
        up, down = rate_factors(codec)
        out[f"true lead resampled to {RATE * up / down:.0f} Hz and back"] = mean_scores(lp)
    return out


def summary(runs: list[dict]) -> dict:
    out = {}
    for key in sorted({(r["codec"], r["domain"]) for r in runs}):
        sel = [r for r in runs if (r["codec"], r["domain"]) == key]
        out[f"{key[0]}/{key[1]}"] = {
            m: statistics.mean(r[m] for r in sel) for m in ("psnr", "si_sdr", "train_seconds")
        } | {f"{m}_std": statistics.stdev(r[m] for r in sel) if len(sel) > 1 else 0.0
             for m in ("psnr", "si_sdr")} | {"n": len(sel), "values": sel[0]["values"]}
    for codec in CODECS:  # paired (same seed) latent - wave differences, 95 % t interval
        by = {(r["domain"], r["seed"]): r for r in runs if r["codec"] == codec}
        seeds = sorted(sd for d, sd in by if d == "latent" and ("wave", sd) in by)
        for m in ("psnr", "si_sdr"):
            diff = [by[("latent", sd)][m] - by[("wave", sd)][m] for sd in seeds]
            if len(diff) > 1:
                d = _results.interval(diff)
                out[f"{codec}/latent"][f"{m}_diff_ci"] = [d["lo"], d["hi"]]
    return out


def markdown(result: dict) -> str:
    s = result["summary"]
    header = ("| codec | values per 12 s clip (latents / waveform) | metric (dB) | "
              "resize (waveform) | compressed (latents) | change (95 % CI) |")
    lines = [header, "|---|---|---|---|---|---|"]
    for codec in CODECS:
        w, lat = s.get(f"{codec}/wave"), s.get(f"{codec}/latent")
        if not (w and lat):
            continue
        for m, label in (("psnr", "PSNR"), ("si_sdr", "SI-SDR")):
            ci = lat.get(f"{m}_diff_ci")
            ci = f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""
            lines.append(f"| {codec} | {lat['values']:,} / {w['values']:,} | {label} | "
                         f"{w[m]:.2f} ± {w[m + '_std']:.2f} | {lat[m]:.2f} ± {lat[m + '_std']:.2f}"
                         f" | {lat[m] - w[m]:+.2f}{ci} |")
    lines += ["", "| reference (no learning) | PSNR (dB) | SI-SDR (dB) |", "|---|---|---|"]
    lines += [f"| {k} | {v['psnr']:.2f} | {v['si_sdr']:.2f} |"
              for k, v in result["baselines"].items()]
    lines += ["", "| variant | training time (s) |", "|---|---|"]
    lines += [f"| {k} | {v['train_seconds']:.0f} |" for k, v in s.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (< 1 min)")
    ap.add_argument("--out", type=Path, default=Path("results/compressed_learning"))
    ap.add_argument("--codecs", nargs="+", default=list(CODECS), choices=list(CODECS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--weights", nargs="+", default=[], metavar="CODEC=PATH",
                    help="use these codec weights instead of the bundled ones")
    ap.add_argument("--remixes", type=int, default=3, help="rounds of random re-pairing")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128, help="training crop in positions of "
                    f"{TOKEN} samples")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"separate: {DATA} not found", file=sys.stderr)
        return 2
    for spec in args.weights:
        name, _, path = spec.partition("=")
        try:
            if name not in CODECS or not path:
                raise LearningError(f"--weights takes CODEC=PATH with CODEC in {CODECS}")
            _OVERRIDE[name] = resolve_codec(path)
            if _OVERRIDE[name].preset.name != name:
                raise LearningError(f"{path} holds {_OVERRIDE[name].preset.name}, not {name}")
        except LearningError as exc:
            print(f"separate: {exc}", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    limits = (None, None)
    if args.quick:
        limits, args.remixes, args.steps, args.seeds = (2, 1), 0, 3, args.seeds[:1]
        args.crop, args.batch = 32, 2
    t_start = time.perf_counter()
    train_p, test_p = load_pieces("train", limits[0]), load_pieces("test", limits[1])
    mixes = training_mixes(train_p, args.remixes, seed=1234)
    train_set = [(m, ld, gain_of(m)) for m, ld in mixes]
    base = baselines(test_p, args.codecs)
    name = "separate-quick" if args.quick else "separate"
    runs = []
    for seed in args.seeds:  # seed-major; results are rewritten after every seed
        for codec in args.codecs:
            for domain in ("latent", "wave"):
                r = run_variant(codec, domain, train_set, test_p, seed, args)
                runs.append(r)
                print(f"{codec} {domain:>6} seed {seed}: PSNR {r['psnr']:.2f} dB  SI-SDR "
                      f"{r['si_sdr']:.2f} dB  ({r['train_seconds']:.0f} s)", flush=True)
        result = {
            "experiment": "separate", "command": " ".join(["python", *sys.argv]),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "data": {"train_pieces": len(train_p), "train_mixes": len(train_set),
                     "test_pieces": [p["name"] for p in test_p]},
            "codecs": {c: get_codec(c).weight_hash for c in args.codecs},
            "seeds_done": sorted({r["seed"] for r in runs}),
            "runs": runs, "summary": summary(runs), "baselines": base,
            "wall_seconds": time.perf_counter() - t_start, **_results.environment(args.threads),
        }
        _results.write(args.out, name, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
