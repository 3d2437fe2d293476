"""Decode time of candidate decoder sizes (width, blocks), to pick the ``medium`` size.

    python benchmarks/decoder_sizes.py [--quick] [--repeat 3] [--threads 2] [--cpu-only]

Budget from issue 9: a 768x512 image decodes in at most 1.0 s on 2 cores, and audio decodes at
20x real time or faster. Random weights (timing only), ChannelNorm decoders, float32, inference
mode, the real decode path (``Codec.decode``: synthesis network + inverse WPT). The machine is
shared, so three figures per row: best wall time of --repeat runs with --threads threads; best
CPU time with one thread (``time.process_time``: what the decode costs on a core of its own,
nearly insensitive to other jobs); and the load average while measuring. ``--cpu-only`` skips
the wall-time runs (on a heavily loaded machine a multi-threaded run mostly measures the wait
for a second core).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import best_time  # the sibling module (the script's folder leads sys.path)

from pywalloc.codec import Codec

IMAGE = [(128, 6), (160, 6), (192, 6), (192, 8), (256, 6), (256, 8), (320, 8)]
AUDIO = [(192, 4), (256, 4), (256, 6), (320, 6), (384, 6), (512, 6)]
QUICK_IMAGE = [(128, 6), (192, 6)]
QUICK_AUDIO = [(192, 4), (256, 4)]


def measure(preset: str, width: int, blocks: int, size: tuple[int, ...], args) -> tuple:
    torch.manual_seed(0)
    codec = Codec(preset, "small", width=width, blocks=blocks, norm="channel").eval()
    lat = (codec.preset.latent_channels, *codec.latent_size(size))
    z = torch.randint(-40, 41, (1, *lat), dtype=torch.int8)

    def run() -> None:
        with torch.inference_mode():
            codec.decode(z, size)

    torch.set_num_threads(1)
    cpu1 = best_time(args.repeat, run, clock=time.process_time)[0]
    torch.set_num_threads(args.threads)
    wall = float("nan") if args.cpu_only else best_time(args.repeat, run)[0]
    return codec.num_parameters(), wall, cpu1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two candidates each, small inputs")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cpu-only", action="store_true", help="skip the wall-time runs")
    ap.add_argument("--seconds", type=float, default=12.0, help="audio clip length")
    args = ap.parse_args()
    if args.repeat < 1 or args.threads < 1 or args.seconds <= 0:
        print("error: --repeat, --threads and --seconds must be positive", file=sys.stderr)
        return 2
    img = (128, 192) if args.quick else (512, 768)
    secs = 0.25 if args.quick else args.seconds
    if args.quick:
        args.repeat = 1
    frames = int(secs * 44100)
    print(f"torch {torch.__version__}; threads {args.threads}; best of {args.repeat}; "
          f"load average at start {os.getloadavg()[0]:.1f}\n")
    print(f"### Image: rgb-16x decode of {img[1]}x{img[0]} (budget 1.0 s on 2 cores)\n")
    print(f"| width | blocks | parameters | wall s ({args.threads} threads) | CPU s (1 thread) "
          "| load |\n|---:|---:|---:|---:|---:|---:|")
    for w, b in QUICK_IMAGE if args.quick else IMAGE:
        n, wall, cpu = measure("rgb-16x", w, b, img, args)
        print(f"| {w} | {b} | {n / 1e6:.2f} M | {wall:.3f} | {cpu:.3f} | "
              f"{os.getloadavg()[0]:.1f} |", flush=True)
    print(f"\n### Audio: stereo-20x decode of {secs:g} s stereo at 44.1 kHz (budget 20x real "
          "time)\n")
    print(f"| width | blocks | parameters | wall s ({args.threads} threads) | x real time "
          "| CPU s (1 thread) | x real time (1 thread CPU) | load |\n"
          "|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w, b in QUICK_AUDIO if args.quick else AUDIO:
        n, wall, cpu = measure("stereo-20x", w, b, (frames,), args)
        print(f"| {w} | {b} | {n / 1e6:.2f} M | {wall:.3f} | {secs / wall:.1f} | {cpu:.3f} | "
              f"{secs / cpu:.1f} | {os.getloadavg()[0]:.1f} |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
