"""Build the audio training folder: mixtures (lead + accomp) of the stems pieces plus the music tracks.

    python experiments/prepare_audio.py --shared ../shared/data --out .devdata/audio

Writes OUT/train/ (mixture FLACs of stems/train minus the held-out pieces, links to the
44.1 kHz music-train tracks, and the 48 kHz `singularity/` tracks resampled to 44.1 kHz as FLAC),
OUT/val/ (mixtures of the held-out pieces, for monitoring only) and OUT/heldout-music/ (every
fifth singularity track, resampled: real music no codec trains on, for the Opus comparison).

The training copies of the singularity tracks go through the 20 Hz high-pass of
heldout_variants.py: seven of the twelve carry 12-95 % of their energy below 20 Hz (DC offsets
up to 0.39 and slow drifts), which an MSE loss would otherwise spend the decoder on
(docs/training-history.md). The held-out copies stay as they are; heldout_variants.py filters those.
``--no-highpass`` writes the training copies unfiltered, as before 2026-12-01. Existing
resampled copies are kept when OUT/prepare.json says they were written with the same choice;
otherwise (a folder from before 2026-12-01 has no such file) the singularity training copies
are written again. Each file is written under a temporary name and renamed (``pywalloc.media.atomic_write``),
so a stopped run leaves no half-written FLAC behind.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
from heldout_variants import highpass20  # the same directory: python experiments/prepare_audio.py


def _write_flac(dest: Path, data: np.ndarray, rate: int) -> None:
    """``dest`` as 16-bit FLAC, written whole or not at all (pywalloc's one atomic writer)."""
    from pywalloc.media import atomic_write

    atomic_write(dest, lambda fh: sf.write(fh, data, rate, subtype="PCM_16", format="FLAC"),
                 "audio")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default="../shared/data")
    ap.add_argument("--out", default=".devdata/audio")
    ap.add_argument("--holdout", type=int, default=3, help="train pieces kept for validation")
    ap.add_argument("--no-highpass", action="store_true",
                    help="write the singularity training copies without the 20 Hz high-pass")
    args = ap.parse_args()
    shared, out = Path(args.shared), Path(args.out)
    pieces = sorted(p for p in (shared / "stems" / "train").iterdir() if p.is_dir())
    val = set(pieces[:: max(1, len(pieces) // args.holdout)][: args.holdout])
    for split in ("train", "val"):
        (out / split).mkdir(parents=True, exist_ok=True)
    for p in pieces:
        lead, sr = sf.read(p / "lead.flac", dtype="float32")
        acc, _ = sf.read(p / "accomp.flac", dtype="float32")
        mix = np.clip(lead + acc, -1, 1)
        split = "val" if p in val else "train"
        _write_flac(out / split / f"{p.name}.flac", mix, sr)
    for track in sorted((shared / "music-train").glob("*.ogg")):
        link = out / "train" / track.name
        if not link.exists():
            os.symlink(track.resolve(), link)
    tracks = sorted((shared / "music-train" / "singularity").glob("*.ogg"))
    held = set(tracks[2::5])
    (out / "heldout-music").mkdir(parents=True, exist_ok=True)
    manifest = out / "prepare.json"
    highpass = not args.no_highpass
    try:
        same = json.loads(manifest.read_text()).get("singularity_highpass") == highpass
    except (OSError, ValueError, AttributeError):
        same = False  # no record: the training copies may predate the high-pass
    rewritten = 0
    for track in tracks:
        dest = out / ("heldout-music" if track in held else "train") / f"{track.stem}.flac"
        if dest.exists() and (same or track in held):
            continue
        rewritten += dest.exists()
        data, sr = sf.read(track, dtype="float32", always_2d=True)
        if sr != 44100:
            from pywalloc.media import resample_audio

            data = resample_audio(data, sr, 44100)
        if track not in held and highpass:
            data = highpass20(data, 44100)
        _write_flac(dest, np.clip(data, -1, 1), 44100)
    manifest.write_text(json.dumps({"singularity_highpass": highpass}) + "\n")
    print(f"{len(pieces) - len(val)} train mixtures, {len(val)} val, plus music tracks "
          f"({len(tracks) - len(held)} resampled, {len(held)} held out; {rewritten} old "
          f"training copies written again) -> {out}")


if __name__ == "__main__":
    main()
