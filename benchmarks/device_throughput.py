"""Throughput of the codecs' tensor paths on one device (a GPU, or the CPU), batched, as a
data-set encoder or a training pipeline would call them.

Usage: python benchmarks/device_throughput.py [--device cuda] [--quick] [--batch N]
       [--repeat N] [--weights PRESET=FILE ...] [--json FILE]

For each bundled codec (and each --weights file, e.g. a trained `medium`): `encode` (wavelet
packet transform, analysis, companding, rounding to int8) and `decode` (the decoder CNN and the
inverse transform, tiled as at inference) of one batch, float32, timed with the device
synchronised, best of --repeat after one warm-up. Images: --batch pictures of 512x768 (Kodak's
size); audio: --batch stereo clips of 10 s at 44.1 kHz. Also one end-to-end
`pywalloc.compress` + `decompress` of a 512x768 picture through bytes (lossless WebP packing
runs on the CPU). Prints MPix/s (images) or M frames/s (audio) and the peak device memory.

Targets, checked on CUDA without --quick (exit 1 when one is missed): image encode at least
200 MPix/s and decode of the `small` decoders at least 20 MPix/s; audio encode at least
50 M frames/s and decode at least 5 M frames/s; peak memory under 16 GiB at --batch 16.
--quick: two small items, one repeat, the CPU unless --device says otherwise, no targets.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import best_time  # the sibling module (the script's folder leads sys.path)

import pywalloc
from pywalloc.codec import Codec

TARGETS = {"image": {"encode": 200.0, "decode": 20.0},  # MPix/s
           "audio": {"encode": 50.0, "decode": 5.0}}    # M frames/s
MEMORY_GIB = 16.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, repeat: int, fn, warmup: bool = True):
    """Best wall time of ``repeat`` calls of fn() (after one warm-up unless ``warmup`` is
    False), and the last result (``timing.best_time``), each call ending when the device has
    finished."""
    def synced():
        out = fn()
        _sync(device)
        return out
    return best_time(repeat, synced, warmup=warmup)


def measure(codec: Codec, device: torch.device, batch: int, repeat: int, quick: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    if codec.preset.dims == 2:
        h, w = (64, 96) if quick else (512, 768)
        # smooth random pictures (a blurred field), so the latents are not all noise
        x = torch.rand(batch, 3, h // 8, w // 8, generator=g)
        x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear") - 0.5
        units, per = h * w * batch / 1e6, "MPix/s"
    else:
        n = 44100 if quick else 441000
        x = (torch.rand(batch, 2, n, generator=g) - 0.5) * 0.5
        units, per = n * batch / 1e6, "M frames/s"
    x = x.to(device)
    codec = codec.to(device).eval()
    with torch.inference_mode():
        # one warm-up of both first: cuDNN's autotuning (cudnn.benchmark) tries algorithms
        # with large workspaces, which the peak below must not count (the first GPU run,
        # 2026-12-04, counted them: 27.6 GiB for rgb-16x small, against 0.8 for rgb-4x)
        codec.decode(codec.encode(x), x.shape[2:])
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        # that warm-up was both calls' warm-up
        t_enc, z = timed(device, repeat, lambda: codec.encode(x), warmup=False)
        t_dec, y = timed(device, repeat, lambda: codec.decode(z, x.shape[2:]), warmup=False)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    mse = float(((y - x) ** 2).mean())
    return {"encode": units / t_enc, "decode": units / t_dec, "unit": per, "batch": batch,
            "peak_gib": peak, "mse": mse}


def end_to_end(device: torch.device, quick: bool) -> float:
    h, w = (64, 96) if quick else (512, 768)
    pix = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8).numpy()
    t, _ = timed(device, 1 if quick else 3,
                 lambda: pywalloc.decompress(pywalloc.compress(pix, device=device),
                                             device=device))
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda if present)")
    ap.add_argument("--quick", action="store_true", help="small items, one repeat, no targets")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--weights", nargs="*", default=[], metavar="PRESET=FILE",
                    help="also measure these weights files (e.g. a trained medium decoder)")
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args(argv)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() and not args.quick else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("device_throughput: error: CUDA is not available", file=sys.stderr)
        return 2
    batch, repeat = (2, 1) if args.quick else (args.batch, args.repeat)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    rows = {}
    for name in ("rgb-16x", "rgb-4x", "stereo-20x", "stereo-5x"):
        rows[f"{name} small"] = measure(pywalloc.load(name), device, batch, repeat, args.quick)
    for spec in args.weights:
        name, _, path = spec.partition("=")
        codec = Codec.from_file(path)
        rows[f"{name} {Path(path).name.split('.')[0]}"] = measure(codec, device, batch, repeat,
                                                                  args.quick)
    e2e = end_to_end(device, args.quick)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {label}; batch {batch}; torch {torch.__version__}")
    print(f"{'codec':<28} {'encode':>10} {'decode':>10} {'unit':<11} {'peak GiB':>8}")
    missed = []
    for key, r in rows.items():
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-"
        print(f"{key:<28} {r['encode']:>10.1f} {r['decode']:>10.1f} {r['unit']:<11} {peak:>8}")
        if device.type == "cuda" and not args.quick:
            t = TARGETS["image" if r["unit"] == "MPix/s" else "audio"]
            if r["encode"] < t["encode"]:
                missed.append(f"{key} encode {r['encode']:.1f} < {t['encode']:g} {r['unit']}")
            if key.endswith("small") and r["decode"] < t["decode"]:
                missed.append(f"{key} decode {r['decode']:.1f} < {t['decode']:g} {r['unit']}")
            if batch <= 16 and r["peak_gib"] > MEMORY_GIB:
                missed.append(f"{key} peak memory {r['peak_gib']:.1f} GiB > {MEMORY_GIB:g}")
    print(f"end to end, one 512x768 picture through bytes (rgb-16x): {e2e * 1e3:.0f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": label, "torch": torch.__version__,
                                               "batch": batch, "rows": rows,
                                               "end_to_end_s": e2e}, indent=1))
    for m in missed:
        print(f"target missed: {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
