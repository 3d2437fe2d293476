"""Pack a training subset small enough to travel to a borrowed GPU machine (<= --max-mb).

    python experiments/make_gpu_bundle.py --shared ../shared/data --audio .devdata/audio \
        --out .devdata/gpu-bundle --max-mb 9

Images: the folders of train-images named by --image-folders (default photos, graphics and
bsds500) taken in turn (one of each folder while they last), photos and graphics shrunk to at
most --max-side pixels on their long side and re-encoded as JPEG q92 when that is smaller, as
many as fit in --image-share of the budget (default half). Audio: experiments/prepare_audio.py's
train folder (never the held-out tracks or stems/test), as Ogg Vorbis q0.6 excerpts of at most
--excerpt seconds per file, as many as fit in the rest. A call that trains one codec gives its
modality the whole budget: ``--image-share 1 --image-folders photos bsds500`` for an image
codec on photos only, ``--image-share 0`` for an audio codec. Prints what it packed.
"""

from __future__ import annotations

import argparse
import io
import shutil
from itertools import zip_longest
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image


def _size_mb(root: Path) -> float:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default="../shared/data")
    ap.add_argument("--audio", default=".devdata/audio", help="prepare_audio.py output")
    ap.add_argument("--out", default=".devdata/gpu-bundle")
    ap.add_argument("--max-mb", type=float, default=30)
    ap.add_argument("--excerpt", type=float, default=75.0, help="seconds per audio file")
    ap.add_argument("--max-side", type=int, default=1024,
                    help="long side of the photos and graphics, in pixels")
    ap.add_argument("--image-folders", nargs="+", default=["photos", "graphics", "bsds500"],
                    choices=["photos", "graphics", "bsds500"],
                    help="train-images folders to take pictures from, in turn")
    ap.add_argument("--image-share", type=float, default=0.5,
                    help="share of --max-mb for images (the rest is audio's): 0 to 1")
    args = ap.parse_args()
    if not 0 <= args.image_share <= 1:
        ap.error("--image-share must be between 0 and 1")
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    (out / "audio").mkdir(parents=True)
    image_budget = args.max_mb * args.image_share * 2**20
    audio_budget = args.max_mb * 2**20 - image_budget
    src = Path(args.shared) / "train-images"
    used = 0
    folders = [sorted((src / d).glob("*.jpg")) for d in args.image_folders]
    # One of each folder in turn, so that a small budget still holds all three kinds.
    turns = [f for row in zip_longest(*folders) for f in row if f is not None]
    for f in turns:
        data = f.read_bytes()
        if f.parent.name != "bsds500":
            with Image.open(f) as im:
                im = im.convert("RGB")
                im.thumbnail((args.max_side, args.max_side), Image.LANCZOS)
                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=92)
            if buf.tell() < len(data):
                data = buf.getvalue()
        if used + len(data) > image_budget:
            continue
        (out / "images" / f"{f.parent.name}-{f.name}").write_bytes(data)
        used += len(data)
    used = 0
    rng = np.random.default_rng(0)
    tracks = sorted((Path(args.audio) / "train").iterdir()) if audio_budget > 0 else []
    for f in tracks:
        info = sf.info(str(f))
        n = min(info.frames, int(args.excerpt * info.samplerate))
        start = int(rng.integers(0, max(1, info.frames - n)))
        a, sr = sf.read(str(f), start=start, frames=n, dtype="float32", always_2d=True)
        dest = out / "audio" / f"{f.stem}.ogg"
        # Written in blocks: libsndfile's Vorbis encoder crashes on very large single writes.
        with sf.SoundFile(str(dest), "w", sr, a.shape[1], format="OGG", subtype="VORBIS") as g:
            for i in range(0, len(a), 1 << 15):
                g.write(a[i : i + (1 << 15)])
        size = dest.stat().st_size
        if used + size > audio_budget:
            dest.unlink()
            continue
        used += size
    for kind in ("images", "audio"):
        files = list((out / kind).iterdir())
        print(f"{kind}: {len(files)} files, {_size_mb(out / kind):.1f} MB")


if __name__ == "__main__":
    main()
