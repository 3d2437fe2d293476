"""Encode a folder of images or audio files into sharded safetensors latents plus a manifest
(resumable, parallel input decoding, disjoint shard subsets per rank for several machines)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..codec import AUDIO_PEAK, Codec, peak_gain
from ..errors import MediaError, WallocError
from ..media import atomic_write, iter_inputs
from ..modality import AUDIO, IMAGE

__all__ = [
    "AUDIO_PEAK",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "DatasetFormatError",
    "LearningError",
    "encode_dataset",
    "list_inputs",
    "resize_center_crop",
    "shard_name",
]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "pywalloc-latents-1"


class LearningError(WallocError):
    """A data set cannot be encoded or read back (bad folder, mixed shapes, bad arguments)."""


class DatasetFormatError(LearningError, ValueError):
    """A latent data set folder (manifest or shard) is missing, malformed or inconsistent."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def _entry_name(index: int) -> str:
    return f"shard-{index:05d}.json"


def list_inputs(root: str | Path, modality: str) -> tuple[list[Path], list[int], list[str]]:
    """Sorted input files under ``root`` with labels from their first-level subfolder.

    Returns (files, labels, label_names). A folder with no subfolders is unlabelled (labels
    -1, no names); with class subfolders, files lying directly in ``root`` are an error.
    """
    root = Path(root)
    if not root.is_dir():
        raise LearningError(f"data folder '{root}' does not exist")
    files = iter_inputs(root, modality)
    if not files:
        raise LearningError(f"no {modality} files under '{root}'")
    rel = [f.relative_to(root).parts for f in files]
    top = [r for r in rel if len(r) == 1]
    if len(top) == len(rel):
        return files, [-1] * len(files), []
    if top:
        raise LearningError(f"'{root}' mixes class subfolders with {len(top)} loose files "
                            f"(e.g. '{top[0][0]}'); move them into a class folder")
    names = sorted({r[0] for r in rel})
    index = {n: i for i, n in enumerate(names)}
    return files, [index[r[0]] for r in rel], names


def resize_center_crop(arr: np.ndarray, size: int) -> np.ndarray:
    """``H x W x 3`` uint8: shorter side resized to ``size`` (bicubic, antialiased), then the
    central ``size`` x ``size`` square."""
    from PIL import Image

    h, w = arr.shape[:2]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    img = Image.fromarray(arr).resize((nw, nh), Image.BICUBIC)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


class _Inputs(Dataset):
    """Decodes one input file per item into a codec-ready float tensor (runs in workers)."""

    def __init__(self, files: list[Path], modality: str, size: int | None,
                 sample_rate: int) -> None:
        self.files, self.modality, self.size, self.rate = files, modality, size, sample_rate

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        # Errors travel back as text: DataLoader would wrap them in a multi-line traceback.
        from ..media import read_audio, read_image

        try:
            if self.modality is IMAGE:
                arr, _ = read_image(self.files[i])
                if self.size:
                    arr = resize_center_crop(arr, self.size)
                x = torch.from_numpy(np.array(arr)).permute(2, 0, 1).float()
                return {"x": x / 255.0 - 0.5, "gain": 1.0, "i": i}
            data, _, _ = read_audio(self.files[i], sample_rate=self.rate)
            if self.size:
                data = data[: self.size]
                data = np.pad(data, ((0, self.size - data.shape[0]), (0, 0)))
            gain = peak_gain(np.abs(data).max())
            return {"x": torch.from_numpy(data.T.copy()) * gain, "gain": gain, "i": i}
        except (MediaError, OSError, ValueError) as exc:
            return {"error": str(exc).splitlines()[0], "i": i}


def _collate(items: list[dict]) -> list[dict]:
    return items


@dataclass
class _Plan:
    codec: str
    weight_hash: str
    modality: str
    dtype: str
    size: int | None
    sample_rate: int | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, obj: dict) -> None:
    atomic_write(path, json.dumps(obj, indent=1), "manifest")


def _entry_ok(out: Path, entry_path: Path, plan: dict, files: list[str]) -> dict | None:
    """The shard's entry if the shard exists and matches it (size, hash, plan, inputs)."""
    try:
        entry = json.loads(entry_path.read_text())
        shard = out / entry["file"]
        if (entry.get("plan") != plan or entry.get("files") != files
                or shard.stat().st_size != entry["bytes"] or _sha256(shard) != entry["sha256"]):
            return None
        return entry
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _drop_stale_manifest(out: Path, plan: dict, rel: list[str]) -> None:
    """A manifest of another plan or file list must not outlive the shards it describes."""
    path = out / MANIFEST
    try:
        old = json.loads(path.read_text())
        stale = old.get("files") != rel or any(old.get(k) != v for k, v in plan.items())
    except (OSError, ValueError, AttributeError):
        stale = path.exists()
    if stale:
        path.unlink(missing_ok=True)


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    # torchrun and most launchers export RANK/WORLD_SIZE: one process per machine or slot.
    try:
        r = int(os.environ.get("RANK", "0")) if rank is None else rank
        w = int(os.environ.get("WORLD_SIZE", "1")) if world_size is None else world_size
    except ValueError:
        raise LearningError("RANK and WORLD_SIZE must be integers") from None
    if w < 1 or not 0 <= r < w:
        raise LearningError(f"need 0 <= rank < world_size, got rank {r}, world size {w}")
    return r, w


def encode_dataset(
    codec: Codec, data: str | Path, out: str | Path, *, continuous: bool = False,
    shard_size: int = 1024, size: int | None = None, sample_rate: int = 44100,
    workers: int = 0, batch_size: int = 16, rank: int | None = None,
    world_size: int | None = None, progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict | None:
    """Encode every image (or audio file) under ``data`` into ``out/shard-NNNNN.safetensors``.

    Each shard holds ``latents`` (int8, or float16 companded values before rounding with
    ``continuous``), ``labels`` (int64, -1 if unlabelled) and, for audio, ``gains`` (the peak
    normalisation factor: divide the decoded audio by it). ``size`` resizes and
    center-crops images to ``size`` x ``size`` (audio: crops/zero-pads to ``size`` frames) so
    that latents stack; without it, all inputs must have the same shape.

    Shards with a valid entry (``shard-NNNNN.json``: plan, input files, byte count, sha256)
    are skipped, so an interrupted run resumes. With ``rank``/``world_size`` (default: the
    ``RANK``/``WORLD_SIZE`` environment variables) this process encodes shards
    ``rank, rank + world_size, ...`` only. Whoever finds all shards finished writes
    ``manifest.json`` and returns it; otherwise returns None.
    """
    from safetensors.torch import save as save_file  # -> bytes, written atomically
    from tqdm import tqdm

    if shard_size < 1 or batch_size < 1 or workers < 0:
        raise LearningError("shard size and batch size must be >= 1, workers >= 0")
    if size is not None and size < 1:
        raise LearningError(f"size must be positive, got {size}")
    r, w = _rank_world(rank, world_size)
    out, data = Path(out), Path(data)
    p = codec.preset
    files, labels, names = list_inputs(data, p.modality)
    plan = _Plan(p.name, codec.weight_hash, p.modality, "float16" if continuous else "int8",
                 size, sample_rate if p.modality is AUDIO else None).as_dict()
    rel = [f.relative_to(data).as_posix() for f in files]
    bounds = [(s, min(s + shard_size, len(files))) for s in range(0, len(files), shard_size)]
    out.mkdir(parents=True, exist_ok=True)
    _drop_stale_manifest(out, plan, rel)
    mine = [k for k in range(len(bounds)) if k % w == r]
    todo = [k for k in mine
            if _entry_ok(out, out / _entry_name(k), plan, rel[slice(*bounds[k])]) is None]
    say = log or (lambda s: None)
    say(f"{len(files)} files, {len(bounds)} shards; rank {r}/{w}: {len(mine)} shards, "
        f"{len(mine) - len(todo)} already done")
    device = next(codec.parameters()).device
    if todo:
        batches = [list(range(b, min(b + batch_size, bounds[k][1])))
                   for k in todo for b in range(bounds[k][0], bounds[k][1], batch_size)]
        loader = DataLoader(_Inputs(files, p.modality, size, sample_rate), batch_sampler=batches,
                            num_workers=workers, collate_fn=_collate)
        pending: dict[int, list] = {}
        bar = tqdm(total=sum(bounds[k][1] - bounds[k][0] for k in todo), unit=p.modality,
                   disable=not progress, desc=f"encode {p.name}")
        for items in loader:
            bad = [it for it in items if "error" in it]
            if bad:
                raise LearningError(bad[0]["error"])
            shapes = {tuple(it["x"].shape) for it in items}
            if len(shapes) > 1:
                hint = "--size N" if p.modality is IMAGE else "--size FRAMES"
                raise LearningError(f"inputs of different shapes {sorted(shapes)[:2]} cannot be "
                                    f"stacked; resize them with {hint}")
            x = torch.stack([it["x"] for it in items]).to(device)
            with torch.inference_mode():
                z = codec.latents(x).half() if continuous else codec.encode(x)
            k = next(j for j in todo if bounds[j][0] <= items[0]["i"] < bounds[j][1])
            pending.setdefault(k, []).append((z.cpu(), [it["i"] for it in items],
                                              [it["gain"] for it in items]))
            bar.update(len(items))
            if sum(len(ix) for _, ix, _ in pending[k]) == bounds[k][1] - bounds[k][0]:
                _write_shard(out, k, pending.pop(k), labels, rel, plan, p.modality, save_file)
        bar.close()
    return write_manifest(out, plan, names, len(bounds), rel, labels)


def _write_shard(out: Path, k: int, parts: list, labels: list[int], rel: list[str],
                 plan: dict, modality: str, save_file) -> None:
    shapes = {tuple(t.shape[1:]) for t, _, _ in parts}
    if len(shapes) > 1:
        raise LearningError(f"inputs of different shapes (latents {sorted(shapes)[:2]}) cannot "
                            "share a shard; resize them with --size")
    z = torch.cat([t for t, _, _ in parts])
    idx = [i for _, ix, _ in parts for i in ix]
    tensors = {"latents": z.contiguous(),
               "labels": torch.tensor([labels[i] for i in idx], dtype=torch.int64)}
    if modality is AUDIO:
        tensors["gains"] = torch.tensor([g for _, _, gs in parts for g in gs], dtype=torch.float32)
    shard = out / shard_name(k)
    atomic_write(shard, save_file(tensors, metadata={"format": MANIFEST_FORMAT}), "shard")
    entry = {"file": shard.name, "count": len(idx), "shape": list(z.shape[1:]),
             "bytes": shard.stat().st_size, "sha256": _sha256(shard), "plan": plan,
             "files": [rel[i] for i in idx]}
    _write_json(out / _entry_name(k), entry)


def write_manifest(out: Path, plan: dict, names: list[str], n_shards: int, rel: list[str],
                   labels: list[int]) -> dict | None:
    """Collect the shard entries into ``manifest.json`` once every shard is finished."""
    entries = []
    for k in range(n_shards):
        path = out / _entry_name(k)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if entry.get("plan") != plan:
            return None
        entries.append({key: entry[key] for key in ("file", "count", "shape", "bytes", "sha256")})
    shapes = {tuple(e["shape"]) for e in entries}
    manifest = {
        "format": MANIFEST_FORMAT, **plan,
        # None when shards differ (inputs of several sizes encoded without --size).
        "latent_shape": list(entries[0]["shape"]) if len(shapes) == 1 else None,
        "count": sum(e["count"] for e in entries),
        "label_names": names, "shards": entries, "files": rel, "labels": labels,
    }
    _write_json(out / MANIFEST, manifest)
    return manifest
