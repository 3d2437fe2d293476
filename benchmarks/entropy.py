"""Entropy-coder benchmark on the latents of the bundled codecs: size and speed of lossless WebP
(each method, some qualities, Pillow's defaults), PNG, zlib and lzma, and of other canvas
layouts (results: docs/entropy.md).

Latents: ``pywalloc.load(preset)`` (the bundled weights) on the 24 Kodak images (rgb-16x,
rgb-4x) and on the 6 ``stems/test`` mixtures (lead + accomp, peak-normalised as ``compress``
does; stereo-20x, stereo-5x), exactly what ``compress`` packs. Times are CPU times
(``time.process_time``): every coder here is single-threaded, and on the shared machine wall time
mostly measures other jobs.

    python benchmarks/entropy.py [--quick] [--only kodak|mosaic|audio]
"""

from __future__ import annotations

import argparse
import io
import lzma
import math
import os
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import best_time  # the sibling module (the script's folder leads sys.path)

import pywalloc
from pywalloc import api
from pywalloc.entropy import DEFAULT_QUALITY, from_canvas, layout, pack, to_canvas, unpack
from pywalloc.modality import AUDIO, IMAGE

DATA = ROOT.parent / "shared" / "data"
# (method, quality) pairs measured. Qualities above 0 only for methods 0 and 1: on these
# latents quality changes sizes by well under 1 % and costs time at every method.
WEBP_FULL = [(m, 0) for m in range(7)] + [(0, 50), (1, 50), (0, 100), (1, 100)]
WEBP_QUICK = [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)]


# ------------------------------------------------------------------ coders


def _png(level: int) -> tuple[Callable, Callable]:
    def enc(z: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(to_canvas(z)).save(buf, "PNG", compress_level=level)
        return buf.getvalue()

    def dec(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        return from_canvas(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), shape)

    return enc, dec


def _raw(compress: Callable, decompress: Callable) -> tuple[Callable, Callable]:
    def dec(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        return np.frombuffer(decompress(data), np.int8).reshape(shape)

    return (lambda z: compress(z.tobytes())), dec


def _pillow_defaults(z: np.ndarray) -> bytes:
    """Our canvas saved with Pillow's defaults for lossless WebP (quality 80, method 4)."""
    buf = io.BytesIO()
    Image.fromarray(to_canvas(z)).save(buf, "WEBP", lossless=True)
    return buf.getvalue()


def coders(quick: bool) -> dict[str, tuple[Callable, Callable]]:
    out: dict[str, tuple[Callable, Callable]] = {}
    for m, q in WEBP_QUICK if quick else WEBP_FULL:
        out[f"webp m={m} q={q}"] = (lambda z, m=m, q=q: pack(z, method=m, quality=q), unpack)
    out["webp, Pillow defaults (q=80 m=4)"] = (_pillow_defaults, unpack)
    for level in (1, 9) if quick else (1, 6, 9):
        out[f"png level={level}"] = _png(level)
    for level in (6,) if quick else (1, 6, 9):
        out[f"zlib level={level}"] = _raw(lambda b, v=level: zlib.compress(b, v), zlib.decompress)
    for preset in (6,) if quick else (0, 6):
        out[f"lzma preset={preset}"] = _raw(lambda b, p=preset: lzma.compress(b, preset=p),
                                            lzma.decompress)
    return out


def _best_time(fn: Callable[[], object], reps: int) -> tuple[float, object]:
    """Best CPU time of ``reps`` runs, no warm-up; runs over 0.3 s are not repeated. CPU time,
    not wall time: every coder here is single-threaded, and on a shared machine wall time
    mostly measures the other jobs."""
    return best_time(reps, fn, clock=time.process_time, warmup=False, cap=0.3)


def entropy0(z: np.ndarray) -> float:
    """Order-0 entropy in bits per value, per channel then averaged (a memoryless-coder bound)."""
    total = 0.0
    for ch in z.reshape(z.shape[0], -1):
        p = np.bincount(ch.view(np.uint8), minlength=256) / ch.size
        p = p[p > 0]
        total += float(-(p * np.log2(p)).sum())
    return total / z.shape[0]


def run_table(latents: list[np.ndarray], per_unit: float, unit: str, quick: bool, reps: int,
              default: int) -> str:
    """Markdown table: bits per latent value, rate (bits / ``per_unit``), encode and decode
    CPU time per item. ``default``: the preset's WebP method, marked in the table."""
    values = sum(z.size for z in latents)
    samples = per_unit
    rows = [f"| coder | bits/latent | {unit} | encode ms | decode ms |",
            "|---|---:|---:|---:|---:|"]
    h0 = sum(entropy0(z) * z.size for z in latents) / values
    rows.append(f"| order-0 entropy (reference) | {h0:.3f} | {h0 * values / samples:.4f} | | |")
    for name, (enc, dec) in coders(quick).items():
        size = t_enc = t_dec = 0.0
        for z in latents:
            te, data = _best_time(lambda enc=enc, z=z: enc(z), reps)
            td, back = _best_time(lambda dec=dec, z=z, data=data: dec(data, z.shape), reps)
            assert np.array_equal(back, z), name
            size, t_enc, t_dec = size + len(data), t_enc + te, t_dec + td
        bits = 8 * size
        mark = " **(default)**" if name == f"webp m={default} q={DEFAULT_QUALITY}" else ""
        rows.append(f"| {name}{mark} | {bits / values:.3f} | {bits / samples:.4f} | "
                    f"{1e3 * t_enc / len(latents):.2f} | {1e3 * t_dec / len(latents):.2f} |")
    return "\n".join(rows)


# ------------------------------------------------------------------ other layouts (measured only)


def _planes(z: np.ndarray) -> np.ndarray:
    """Channels as uint8 planes [C, h, w] (audio folded as pack folds it), offset by 128."""
    lay = layout(z.shape)
    if lay.folded:
        flat = np.zeros((z.shape[0], lay.tile_h * lay.tile_w), np.int8)
        flat[:, : lay.length] = z.reshape(z.shape[0], -1)
        z = flat.reshape(z.shape[0], lay.tile_h, lay.tile_w)
    return z.view(np.uint8) ^ np.uint8(128)


def _grid(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    rows = -(-len(tiles) // cols)
    h, w = tiles[0].shape[:2]
    canvas = np.full((rows * h, cols * w, 3), 128, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = t
    return canvas


def _triplets(u: np.ndarray, order: list[int]) -> list[np.ndarray]:
    pad = np.full((-len(order) % 3, *u.shape[1:]), 128, np.uint8)
    v = np.concatenate([u[order], pad])
    return [np.stack(v[3 * k : 3 * k + 3], -1) for k in range(len(v) // 3)]


def layouts(z: np.ndarray) -> dict[str, np.ndarray]:
    """Canvases of other plane groupings and tile arrangements (not decodable by unpack)."""
    u = _planes(z)
    c = u.shape[0]
    tiles = -(-c // 3)
    seq = list(range(c))
    strided = [k + tiles * j for k in range(tiles) for j in range(3) if k + tiles * j < c]
    energy = list(np.argsort(-z.reshape(c, -1).astype(np.float64).var(1), kind="stable"))
    square = layout(z.shape).grid_w
    gray_cols = max(1, round(math.sqrt(c * u.shape[1] / u.shape[2])))
    return {
        "pywalloc (triplets 3k..3k+2, near-square grid)": to_canvas(z),
        "same triplets, tiles in one row": _grid(_triplets(u, seq), tiles),
        "same triplets, tiles in one column": _grid(_triplets(u, seq), 1),
        "strided triplets (k, k+T, k+2T), near-square": _grid(_triplets(u, strided), square),
        "strided triplets, one row": _grid(_triplets(u, strided), tiles),
        "triplets by channel variance, near-square": _grid(_triplets(u, energy), square),
        "one channel per tile (R=G=B), near-square": _grid(
            [np.repeat(p[..., None], 3, -1) for p in u], gray_cols),
        "one channel per tile (R=G=B), one row": _grid(
            [np.repeat(p[..., None], 3, -1) for p in u], c),
        # The same canvases holding the raw two's-complement bytes (latent 0 -> 0, -1 -> 255)
        # instead of latent + 128.
        "pywalloc, bytes without the +128 offset": to_canvas(z) ^ np.uint8(128),
        "one channel per tile, one row, without the offset": _grid(
            [np.repeat(p[..., None], 3, -1) ^ np.uint8(128) for p in u], c),
    }


def _webp(canvas: np.ndarray, method: int) -> int:
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, "WEBP", lossless=True, quality=0, method=method, exact=True)
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), canvas)
    return len(data)


def layout_table(latents: list[np.ndarray], methods: tuple[int, ...]) -> str:
    values = sum(z.size for z in latents)
    sizes: dict[str, list[int]] = {}
    for z in latents:
        for name, canvas in layouts(z).items():
            got = [_webp(canvas, m) for m in methods]
            sizes[name] = [a + b for a, b in zip(sizes.get(name, [0] * len(methods)), got)]
    head = " | ".join(f"m={m}" for m in methods)
    rows = [f"| layout (bits/latent) | {head} |", "|---|" + "---:|" * len(methods)]
    for name, total in sizes.items():
        rows.append(f"| {name} | " + " | ".join(f"{8 * t / values:.3f}" for t in total) + " |")
    return "\n".join(rows)


# ------------------------------------------------------------------ latents of the bundled codecs


def image_latents(preset: str, images: list[np.ndarray]) -> list[np.ndarray]:
    codec = pywalloc.load(preset)
    out = []
    with torch.inference_mode():
        for img in images:
            out.append(codec.encode_uint8(IMAGE.to_tensor(img)[0])[0].numpy())
    return out


def audio_latents(preset: str, clips: list[np.ndarray]) -> list[np.ndarray]:
    codec = pywalloc.load(preset)
    out = []
    with torch.inference_mode():
        for a in clips:
            out.append(codec.encode(AUDIO.to_tensor(a, 44100)[0])[0].numpy())
    return out


# ------------------------------------------------------------------ sections


def image_section(args: argparse.Namespace) -> None:
    kodak = sorted((DATA / "kodak").glob("*.png"))[: args.kodak]
    imgs = [np.asarray(Image.open(p).convert("RGB")) for p in kodak]
    pixels = sum(im.shape[0] * im.shape[1] for im in imgs)
    print(f"## Images: {len(imgs)} Kodak images, bundled weights\n")
    for name in ("rgb-16x", "rgb-4x") if args.only != "mosaic" else ():
        lat = image_latents(name, imgs)
        effort = pywalloc.presets.get_preset(name).effort
        print(f"### {name}: latents {lat[0].shape} per image; rate in bits per image pixel\n")
        print(run_table(lat, pixels, "bpp", args.quick, args.reps, effort) + "\n")
        print(layout_table(lat, (0, 1) if args.quick else (0, 1, 4)) + "\n", flush=True)
    # Throughput at the product's target size: encode.py's 2048x2048 mosaic of Kodak tiles.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from encode import mosaic

    side = 512 if args.quick else 2048
    big = mosaic(side)
    print(f"### {side}x{side} mosaic of Kodak tiles (benchmarks/encode.py): the entropy stage\n")
    print("| latents | stage | CPU ms | bpp | MPix/s if alone |")
    print("|---|---|---:|---:|---:|")
    mpix = side * side / 1e6
    for name in ("rgb-16x", "rgb-4x"):
        z = image_latents(name, [big])[0]
        for m in (0, 1, 2) if args.quick else range(7):
            t, data = _best_time(lambda z=z, m=m: pack(z, m), args.reps)
            print(f"| {name} {tuple(z.shape)} | pack m={m} | {1e3 * t:.1f} | "
                  f"{8 * len(data) / side**2:.4f} | {mpix / t:.0f} |")
        t, data = _best_time(lambda z=z: _pillow_defaults(z), args.reps)
        print(f"| {name} {tuple(z.shape)} | Pillow defaults (q=80 m=4) | {1e3 * t:.1f} | "
              f"{8 * len(data) / side**2:.4f} | {mpix / t:.0f} |")
        data = pack(z)
        t, _ = _best_time(lambda z=z, data=data: unpack(data, z.shape), args.reps)
        print(f"| {name} {tuple(z.shape)} | unpack | {1e3 * t:.1f} | | {mpix / t:.0f} |")
    print("\nWhole `compress` (analysis + packing + container), one thread, per WebP method:\n")
    print("| codec | method | CPU ms | bpp | MPix/s on one idle core |\n|---|---:|---:|---:|---:|")
    for name in ("rgb-16x", "rgb-4x"):
        for m in (0, 1) if args.quick else (0, 1, 2, 3, 4):
            t, blob = _best_time(lambda name=name, m=m: api.compress(big, name, effort=m),
                                 args.reps)
            print(f"| {name} | {m} | {1e3 * t:.1f} | {8 * len(blob) / side**2:.4f} | "
                  f"{mpix / t:.1f} |")
    print()


def audio_section(args: argparse.Namespace) -> None:
    pieces = sorted((DATA / "stems" / "test").iterdir())[: 2 if args.quick else None]
    clips = [sf.read(p / "lead.flac", dtype="float32", always_2d=True)[0]
             + sf.read(p / "accomp.flac", dtype="float32", always_2d=True)[0] for p in pieces]
    seconds = sum(a.shape[0] for a in clips) / 44100
    print(f"## Audio: {len(clips)} stems/test mixtures ({seconds:.0f} s, 44.1 kHz stereo), "
          "bundled weights\n")
    for name in ("stereo-20x", "stereo-5x"):
        lat = audio_latents(name, clips)
        effort = pywalloc.presets.get_preset(name).effort
        print(f"### {name}: latents {lat[0].shape} per clip; rate in kbit/s\n")
        print(run_table(lat, 1000 * seconds, "kbps", args.quick, args.reps, effort) + "\n")
        print(layout_table(lat, (0, 1) if args.quick else (0, 1, 3)) + "\n", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer files, settings and repeats")
    ap.add_argument("--only", choices=("kodak", "mosaic", "audio"), help="run one section")
    args = ap.parse_args()
    args.kodak = 4 if args.quick else 24
    args.reps = 1 if args.quick else 3
    if not (DATA / "kodak").is_dir() or not (DATA / "stems" / "test").is_dir():
        print(f"error: shared data not found at {DATA}", file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    print(f"Pillow {Image.__version__}; times: best CPU time (process_time) of {args.reps} "
          f"run(s), per image or clip; load average {os.getloadavg()[0]:.1f}\n")
    if args.only in (None, "kodak", "mosaic"):
        image_section(args)
    if args.only in (None, "audio"):
        audio_section(args)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
