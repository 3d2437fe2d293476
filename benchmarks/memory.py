"""Peak memory (RSS) of the walloc CLI on a large picture and a long audio file, both ways.

The bundled rgb-16x and stereo-20x codecs by default (``--fresh``: freshly initialised
codecs of the same architecture; memory depends on the architecture, not the weight values).
Each command runs in a fresh child of a small wrapper that reports the child's peak RSS
(``resource.getrusage(RUSAGE_CHILDREN)``), so the figures are the CLI's own; children run
with ``--threads`` intra-op threads (OMP_NUM_THREADS). Inputs are generated on the fly in a
temporary folder (the PNG strip by strip, the FLAC block by block) and deleted afterwards.
Targets (issue 11): a 16384x16384 PNG under 2.0 GB each way, 60 minutes of stereo 44.1 kHz
FLAC under 1.0 GB each way.

    nice -n 10 python benchmarks/memory.py      # full size (about 10 minutes on one core)
    python benchmarks/memory.py --side 4096 --minutes 10
    python benchmarks/memory.py --quick         # tiny inputs: a smoke test, targets not checked
    python benchmarks/memory.py --only audio --rate 48000   # audio resampled both ways
    python benchmarks/memory.py --only audio --format ogg   # lossy: spooled, then streamed
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_IMAGE_GB = 2.0
TARGET_AUDIO_GB = 1.0
_WRAPPER = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "print(json.dumps([r.returncode, r.stderr[-500:], time.perf_counter() - t, "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024]))")


def measure(args: list[str], threads: int = 1) -> tuple[float, float]:
    """(seconds, peak RSS in bytes) of ``walloc ARGS`` in a fresh process."""
    cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "pywalloc.cli", *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    rc, err, secs, rss = json.loads(out.stdout)
    if rc != 0:
        raise SystemExit(f"walloc {' '.join(args)} failed: {err.strip()}")
    return secs, rss


def make_png(path: Path, side: int) -> None:
    """A smooth, textured side x side RGB picture, written strip by strip (never whole)."""
    from pywalloc.pngstrips import write_png

    x = np.arange(side, dtype=np.float32)
    rng = np.random.default_rng(0)

    def strips():
        for top in range(0, side, 256):
            y = np.arange(top, min(side, top + 256), dtype=np.float32)[:, None]
            base = 128 + 60 * np.sin(x / 97.0) * np.cos(y / 71.0) + 40 * np.sin((x + y) / 13.0)
            strip = np.stack([base, base[:, ::-1], 255 - base], axis=2)
            strip += rng.normal(0, 6, strip.shape).astype(np.float32)
            yield np.clip(strip, 0, 255).astype(np.uint8)

    with open(path, "wb") as fh:
        write_png(fh, side, side, False, strips(), level=1)


AUDIO_FORMATS = {"flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
                 "mp3": ("MP3", "MPEG_LAYER_III")}


def make_flac(path: Path, minutes: float, rate: int = 44100, fmt: str = "flac") -> None:
    """Stereo music-like tones with noise, written block by block."""
    import soundfile as sf

    frames = int(minutes * 60 * rate)
    rng = np.random.default_rng(0)
    major, subtype = AUDIO_FORMATS[fmt]
    with sf.SoundFile(path, "w", rate, 2, subtype, format=major) as fh:
        for start in range(0, frames, rate * 10):
            t = np.arange(start, min(frames, start + rate * 10)) / rate
            left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 331 * t)
            right = 0.3 * np.sin(2 * np.pi * 277 * t) + 0.05 * rng.standard_normal(t.size)
            fh.write(np.stack([left, right], axis=1).astype(np.float32))


def sf_frames(path: Path) -> int:
    import soundfile as sf

    return int(sf.info(str(path)).frames)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=16384, help="picture side in pixels")
    ap.add_argument("--minutes", type=float, default=60.0, help="audio length")
    ap.add_argument("--quick", action="store_true", help="tiny inputs, targets not checked")
    ap.add_argument("--fresh", action="store_true",
                    help="freshly initialised codecs instead of the bundled weights")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of the CLI runs")
    ap.add_argument("--only", choices=("image", "audio"), help="measure one modality only")
    ap.add_argument("--rate", type=int, default=44100,
                    help="audio sample rate (other than 44.1 kHz: resampled both ways)")
    ap.add_argument("--format", choices=tuple(AUDIO_FORMATS), default="flac",
                    help="audio file format (ogg, mp3: lossy, spooled to a temporary file)")
    a = ap.parse_args(argv)
    side, minutes = (256, 0.05) if a.quick else (a.side, a.minutes)
    full = not a.quick and side >= 16384 and minutes >= 60
    rows = []
    print("command: python benchmarks/memory.py " + " ".join(argv if argv is not None
                                                             else sys.argv[1:]))

    def run(what: str, args: list[str], target: float) -> None:
        rows.append((what, *measure(args, a.threads), target))
        _, secs, rss, _ = rows[-1]
        print(f"  {what}: {secs:.1f} s, peak RSS {rss / 1e9:.2f} GB", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        use = {"image": [], "audio": []}
        if a.fresh:
            from pywalloc.codec import Codec

            for kind, preset in (("image", "rgb-16x"), ("audio", "stereo-20x")):
                Codec(preset).save(d / f"{preset}.safetensors")
                use[kind] = ["--weights", str(d / f"{preset}.safetensors")]
        steps = {"image": lambda: image_rows(d, side, use["image"], run),
                 "audio": lambda: audio_rows(d, minutes, use["audio"], run, a.rate,
                                             a.format)}
        for kind in [a.only] if a.only else steps:
            steps[kind]()
    print(f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    return report(rows, full)


def image_rows(d: Path, side: int, use: list[str], run) -> None:
    """Encode and decode a side x side PNG through the CLI."""
    png, wlc, out = d / "big.png", d / "big.wlc", d / "big.decoded.png"
    make_png(png, side)
    budget = ["--max-pixels", str(side * side)]
    run(f"encode {side}x{side} PNG",
        ["encode", str(png), "-o", str(wlc), "-f", "-q", *budget, *use],
        TARGET_IMAGE_GB)
    png.unlink()
    run(f"decode {side}x{side} PNG",
        ["decode", str(wlc), "-o", str(out), "-f", "-q", *budget, *use],
        TARGET_IMAGE_GB)
    with open(out, "rb") as fh:  # the PNG header's width and height
        size = struct.unpack(">II", fh.read(24)[16:24])
    if size != (side, side):
        raise SystemExit(f"decoded picture is {size[0]}x{size[1]}, not {side}x{side}")
    for p in (wlc, out):
        p.unlink()


def audio_rows(d: Path, minutes: float, use: list[str], run, rate: int = 44100,
               fmt: str = "flac") -> None:
    """Encode and decode a stereo file (``fmt``) of this many minutes at ``rate`` through the
    CLI (decoded into FLAC)."""
    flac, awlc, aout = d / f"long.{fmt}", d / "long.wlc", d / "long.decoded.flac"
    make_flac(flac, minutes, rate, fmt)
    frames = ["--max-frames", str(int(minutes * 60 * max(rate, 44100)) + 2 * 44100)]
    what = f"stereo {fmt.upper()}" + ("" if rate == 44100 else f" at {rate / 1000:g} kHz")
    run(f"encode {minutes:g} min {what}",
        ["encode", str(flac), "-o", str(awlc), "-f", "-q", *frames, *use],
        TARGET_AUDIO_GB)
    n = sf_frames(flac)
    flac.unlink()
    run(f"decode {minutes:g} min {what}",
        ["decode", str(awlc), "-o", str(aout), "-f", "-q", *frames, *use],
        TARGET_AUDIO_GB)
    if sf_frames(aout) != n:
        raise SystemExit(f"decoded audio has {sf_frames(aout)} frames, not {n}")


def report(rows: list, full: bool) -> int:
    """Print the table; 1 when a full-size figure misses its target."""
    print("| what | seconds | peak RSS (GB) | target (GB) |")
    print("|---|---|---|---|")
    failed = 0
    for what, secs, rss, target in rows:
        verdict = ""
        if full:
            ok = rss / 1e9 < target
            failed += not ok
            verdict = " PASS" if ok else " FAIL"
        print(f"| {what} | {secs:.1f} | {rss / 1e9:.2f} | {target:.1f}{verdict} |")
    if not full:
        print("(targets apply to the full size: 16384x16384 and 60 minutes)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
