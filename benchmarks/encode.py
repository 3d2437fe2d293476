"""End-to-end in-memory encode speed (entropy coding included) against Pillow's WebP and JPEG.

    python benchmarks/encode.py [--quick] [--repeat 5] [--threads 2] [--effort E]

Image: a 2048x2048 RGB mosaic of real photos (Kodak tiles from ../shared, or the bundled
sample), `pywalloc.compress(img, codec="rgb-16x")`; audio: about 47 s of real stereo music
(stems/test mixtures, or the bundled sample, tiled), `compress(..., codec="stereo-20x")`.
Targets from the issue: >= 25 MPix/s and >= 50 MSamples/s on 2 cores. Best of --repeat runs
(the machine may be shared); exit status 1 if a target is missed (not with --quick).
``--effort`` overrides each codec's default lossless WebP method.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import best_time  # the sibling module (the script's folder leads sys.path)

import pywalloc
from pywalloc import api

TARGETS = {"rgb-16x": 25.0, "stereo-20x": 50.0}


def mosaic(side: int) -> np.ndarray:
    kodak = ROOT.parent / "shared" / "data" / "kodak"
    files = sorted(kodak.glob("*.png")) or [ROOT / "pywalloc" / "samples" / "kodim23.png"]
    out = np.zeros((side, side, 3), np.uint8)
    i = 0
    for top in range(0, side, 512):
        for left in range(0, side, 512):
            with Image.open(files[i % len(files)]) as im:
                tile = np.asarray(im.convert("RGB"))[:512, :512]
            h, w = min(512, side - top), min(512, side - left)
            out[top:top + h, left:left + w] = tile[:h, :w]
            i += 1
    return out


def music(frames: int) -> np.ndarray:
    import soundfile as sf

    stems = ROOT.parent / "shared" / "data" / "stems" / "test"
    clips = []
    for p in sorted(stems.iterdir()) if stems.is_dir() else []:
        clips.append(sf.read(p / "lead.flac", dtype="float32")[0]
                     + sf.read(p / "accomp.flac", dtype="float32")[0])
    if not clips:
        clips = [sf.read(ROOT / "pywalloc" / "samples" / "chimes.flac", dtype="float32")[0]]
    a = np.concatenate(clips)
    return np.ascontiguousarray(np.resize(a, (frames, 2)).astype(np.float32))


def best(fn, repeat: int) -> float:
    return best_time(repeat, fn)[0]


def pillow(img: np.ndarray, fmt: str, **kw) -> int:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **kw)
    return len(buf.getvalue())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small inputs, no target check")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--effort", type=int, choices=range(7), default=None,
                    help="lossless WebP method (default: each codec's own)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if hasattr(pywalloc, "tune_allocator"):
        pywalloc.tune_allocator()
    side = 256 if args.quick else 2048
    frames = 1 << (15 if args.quick else 21)
    repeat = 1 if args.quick else args.repeat
    img, audio = mosaic(side), music(frames)
    mpix = side * side / 1e6
    msamp = audio.size / 1e6
    rows = []
    kw = {} if args.effort is None else {"effort": args.effort}
    blob = api.compress(img, codec="rgb-16x", **kw)
    t = best(lambda: api.compress(img, codec="rgb-16x", **kw), repeat)
    td = best(lambda: api.decompress(blob), max(1, repeat // 2))
    rows.append(("rgb-16x encode", mpix / t, "MPix/s", 8 * len(blob) / (side * side), "bpp"))
    rows.append(("rgb-16x decode", mpix / td, "MPix/s", None, ""))
    blob4 = api.compress(img, codec="rgb-4x", **kw)
    t4 = best(lambda: api.compress(img, codec="rgb-4x", **kw), repeat)
    rows.append(("rgb-4x encode", mpix / t4, "MPix/s", 8 * len(blob4) / (side * side), "bpp"))
    tw = best(lambda: pillow(img, "WEBP", quality=75, method=4), repeat)
    rows.append(("WebP lossy q75 m4 (Pillow)", mpix / tw, "MPix/s",
                 8 * pillow(img, "WEBP", quality=75, method=4) / (side * side), "bpp"))
    tj = best(lambda: pillow(img, "JPEG", quality=75), repeat)
    rows.append(("JPEG q75 (Pillow)", mpix / tj, "MPix/s",
                 8 * pillow(img, "JPEG", quality=75) / (side * side), "bpp"))
    ablob = api.compress(audio, codec="stereo-20x", sample_rate=44100, **kw)
    ta = best(lambda: api.compress(audio, codec="stereo-20x", sample_rate=44100, **kw), repeat)
    tad = best(lambda: api.decompress(ablob), max(1, repeat // 2))
    secs = frames / 44100
    rows.append(("stereo-20x encode", msamp / ta, "MSamples/s", 8 * len(ablob) / secs / 1000,
                 "kbps"))
    rows.append(("stereo-20x decode", msamp / tad, "MSamples/s", None, ""))
    from pywalloc.presets import get_preset

    effort = {n: get_preset(n).effort if args.effort is None else args.effort
              for n in ("rgb-16x", "rgb-4x", "stereo-20x")}
    print(f"input: {side}x{side} RGB mosaic; {frames} stereo frames; threads {args.threads}; "
          f"best of {repeat}; WebP method {effort}; load average {os.getloadavg()[0]:.1f}")
    print("| what | speed | unit | rate | vs rgb-16x encode |")
    print("|---|---|---|---|---|")
    ref = mpix / t
    for name, speed, unit, rate, runit in rows:
        ratio = f"{ref / speed:.2f}x" if unit == "MPix/s" else ""
        r = f"{rate:.3f} {runit}" if rate is not None else ""
        print(f"| {name} | {speed:.1f} | {unit} | {r} | {ratio} |")
    ok = True
    for name, target in TARGETS.items():
        got = mpix / t if name == "rgb-16x" else msamp / ta
        status = "PASS" if got >= target else "FAIL"
        ok &= got >= target
        print(f"target {name} encode >= {target} : {got:.1f} {status}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
