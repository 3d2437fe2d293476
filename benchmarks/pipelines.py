"""Input-pipeline throughput for training at an equal input dimension: samples/s through a
torch DataLoader with 2 worker processes, for

  (a) JPEG decode + resize to the equal-dimension size (224 -> 56 for rgb-16x, 112 for rgb-4x),
  (b) .wlc files -> latents (container + entropy decoding only: WlcDataset),
  (c) latent shards (safetensors, written once by encode_dataset: LatentDataset),
  (d) JPEG decode + on-the-fly encoding (EncodeTransform), for reference.

Usage: python benchmarks/pipelines.py [--quick] [--codec rgb-16x|PATH] [--data DIR]
       [--limit N] [--workers 2] [--batch 64] [--json FILE]
Images: the shared Imagenette train set (224x224 JPEG), else synthetic JPEGs. The .wlc files
and shards are written to a temporary folder first (not timed). Each pipeline runs one
warm-up pass (worker start, page cache), then the timed pass over the same files.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pywalloc
from pywalloc.learning import (
    EncodeTransform,
    LatentDataset,
    LearningError,
    WlcDataset,
    encode_dataset,
    list_inputs,
    resolve_codec,
)

IMAGENETTE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenette" / "train"


class Jpegs(Dataset):
    """JPEG files -> (uint8 [3, side, side] resized, label), or through ``transform``."""

    def __init__(self, files, labels, side: int, transform=None) -> None:
        self.files, self.labels, self.side, self.transform = files, labels, side, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            im = im.convert("RGB")
            if self.transform is not None:
                return self.transform(im), self.labels[i]
            if im.size != (self.side, self.side):
                im = im.resize((self.side, self.side), Image.BICUBIC)
            arr = np.array(im)
        return torch.from_numpy(arr).permute(2, 0, 1), self.labels[i]


def _one_thread(_):
    torch.set_num_threads(1)


def synthetic(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"c{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
        Image.fromarray(arr).save(d / f"{i}.jpg", quality=90)
    return root


def measure(ds: Dataset, workers: int, batch: int) -> dict:
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, shuffle=False,
                        persistent_workers=workers > 0, worker_init_fn=_one_thread)
    shape = None
    for x, _ in loader:  # warm-up pass
        shape = tuple(x.shape[1:])
    t0 = time.perf_counter()
    n = 0
    for x, _ in loader:
        n += len(x)
    dt = time.perf_counter() - t0
    return {"samples_per_s": n / dt, "seconds": dt, "samples": n, "shape": list(shape),
            "values": int(np.prod(shape))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 images, a smoke test")
    ap.add_argument("--codec", default="rgb-16x", help="image preset name or weights path")
    ap.add_argument("--data", type=Path, default=None, help="image folder (<class>/<files>)")
    ap.add_argument("--limit", type=int, default=1500, help="images used (default 1500)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        codec = resolve_codec(args.codec)
    except LearningError as exc:
        print(f"pipelines: {exc}", file=sys.stderr)
        return 2
    if codec.preset.modality is not pywalloc.IMAGE:
        print(f"pipelines: {codec.preset.name} is not an image codec", file=sys.stderr)
        return 2
    limit = 64 if args.quick else args.limit
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = args.data or (IMAGENETTE if IMAGENETTE.is_dir() else synthetic(tmp / "img", limit))
        try:
            files, labels, _ = list_inputs(data, "image")
        except LearningError as exc:
            print(f"pipelines: {exc}", file=sys.stderr)
            return 2
        # every class represented: take evenly spaced files
        idx = np.linspace(0, len(files) - 1, min(limit, len(files))).round().astype(int)
        files, labels = [files[i] for i in idx], [labels[i] for i in idx]
        sub = tmp / "subset"
        t0 = time.perf_counter()
        for f, y in zip(files, labels):
            (sub / str(y)).mkdir(parents=True, exist_ok=True)
            (sub / str(y) / f.name).symlink_to(f.resolve())
            (tmp / "wlc" / str(y)).mkdir(parents=True, exist_ok=True)
            with Image.open(f) as im:
                pixels = np.asarray(im.convert("RGB"))
            (tmp / "wlc" / str(y) / (f.stem + ".wlc")).write_bytes(pywalloc.compress(pixels,
                                                                                     codec))
        t_wlc = time.perf_counter() - t0
        t0 = time.perf_counter()
        encode_dataset(codec, sub, tmp / "shards", size=224, shard_size=512, progress=False)
        t_shards = time.perf_counter() - t0
        cz = codec.preset.latent_channels
        side = round(224 * (cz / 3 / 64) ** 0.5)  # 3 * side^2 == cz * 28^2
        rows = {
            f"(a) JPEG decode + resize to {side}x{side}": Jpegs(files, labels, side),
            "(b) .wlc -> latents (WlcDataset)": WlcDataset(tmp / "wlc", codec=codec),
            "(c) latent shards (LatentDataset)": LatentDataset(tmp / "shards", codec=codec),
            "(d) JPEG decode + EncodeTransform": Jpegs(files, labels, 224,
                                                        EncodeTransform(codec)),
        }
        wlc_bytes = sum(p.stat().st_size for p in (tmp / "wlc").rglob("*.wlc"))
        jpg_bytes = sum(f.stat().st_size for f in files)
        results = {name: measure(ds, args.workers, args.batch) for name, ds in rows.items()}
    print(f"{len(files)} images (224x224), codec {codec.preset.name} "
          f"({codec.weight_hash}), {args.workers} workers, batch {args.batch}; "
          f"preparation (not timed): .wlc {t_wlc:.1f} s, shards {t_shards:.1f} s; "
          f"bytes per image: JPEG {jpg_bytes / len(files):,.0f}, .wlc {wlc_bytes / len(files):,.0f}")
    print()
    print("| pipeline | sample shape | values | samples/s |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {' x '.join(map(str, r['shape']))} | {r['values']:,} | "
              f"{r['samples_per_s']:,.0f} |")
    if args.json:
        args.json.write_text(json.dumps({
            "codec": codec.preset.name, "weight_hash": codec.weight_hash, "images": len(files),
            "workers": args.workers, "batch": args.batch, "prepare_wlc_s": t_wlc,
            "prepare_shards_s": t_shards, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
