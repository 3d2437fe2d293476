"""Encode a folder of images or audio files into sharded safetensors latents plus a manifest
(resumable, parallel input decoding, disjoint shard subsets per rank for several machines)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..codec import AUDIO_PEAK, Codec, peak_gain
from ..errors import WallocError
from ..media import atomic_write, iter_inputs, no_inputs
from ..modality import AUDIO, IMAGE, luma
from ..zoo import file_sha256

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
        raise LearningError(no_inputs(root, modality))
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
                 sample_rate: int, channels: int = 3) -> None:
        self.files, self.modality, self.size, self.rate = files, modality, size, sample_rate
        self.channels = channels  # image codecs: 3, or 1 (gray codecs take the luma)

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
                if self.channels == 1:
                    arr = luma(arr)[:, :, None]
                x = torch.from_numpy(np.array(arr)).permute(2, 0, 1).float()
                return {"x": x / 255.0 - 0.5, "gain": 1.0, "i": i}
            data, _, _ = read_audio(self.files[i], sample_rate=self.rate)
            if self.size:
                data = data[: self.size]
                data = np.pad(data, ((0, self.size - data.shape[0]), (0, 0)))
            gain = peak_gain(np.abs(data).max())
            return {"x": torch.from_numpy(data.T.copy()) * gain, "gain": gain, "i": i}
        except Exception as exc:  # noqa: BLE001 - one bad file is recorded, the run goes on
            text = str(exc).strip().splitlines()
            return {"error": text[0] if text else type(exc).__name__, "i": i}


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


def _write_json(path: Path, obj: dict) -> None:
    atomic_write(path, json.dumps(obj, indent=1), "manifest")


def _entry_ok(out: Path, entry_path: Path, plan: dict, files: list[str]) -> dict | None:
    """The shard's entry if the shard is finished and matches it (size, hash, plan, inputs).
    A shard with skipped files is not finished: a rerun tries them again."""
    try:
        entry = json.loads(entry_path.read_text())
        if (entry.get("plan") != plan or entry.get("inputs", entry.get("files")) != files
                or entry.get("skipped")):
            return None
        shard = out / entry["file"]
        if shard.stat().st_size != entry["bytes"] or file_sha256(shard) != entry["sha256"]:
            return None
        return entry
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _drop_stale_manifest(out: Path, plan: dict, rel: list[str]) -> None:
    """A manifest of another plan or file list must not outlive the shards it describes."""
    path = out / MANIFEST
    try:
        old = json.loads(path.read_text())
        inputs = list(old.get("files", [])) + [s["file"] for s in old.get("skipped", [])]
        stale = sorted(inputs) != sorted(rel) or any(old.get(k) != v for k, v in plan.items())
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
    on_error: Callable[[str, str], None] | None = None,
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

    A file that cannot be read is skipped, as ``walloc encode`` skips it: ``on_error(file,
    reason)`` is called, the shard holds the other files, and the manifest lists it under
    ``skipped`` (file relative to ``data``, one-line reason); ``files``, ``labels`` and
    ``count`` describe the encoded items only. A rerun tries the shards with skipped files
    again.
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
        loader = DataLoader(_Inputs(files, p.modality, size, sample_rate, p.channels), batch_sampler=batches,
                            num_workers=workers, collate_fn=_collate)
        pending: dict[int, list] = {}
        bar = tqdm(total=sum(bounds[k][1] - bounds[k][0] for k in todo), unit=p.modality,
                   disable=not progress, desc=f"encode {p.name}")
        skipped: dict[int, list[dict]] = {}
        for items in loader:
            k = next(j for j in todo if bounds[j][0] <= items[0]["i"] < bounds[j][1])
            bar.update(len(items))
            for it in items:
                if "error" in it:
                    skipped.setdefault(k, []).append({"file": rel[it["i"]],
                                                      "reason": it["error"]})
                    if on_error is not None:
                        on_error(rel[it["i"]], it["error"])
            items = [it for it in items if "error" not in it]
            if items:
                shapes = {tuple(it["x"].shape) for it in items}
                if len(shapes) > 1:
                    hint = "--size N" if p.modality is IMAGE else "--size FRAMES"
                    raise LearningError(f"inputs of different shapes {sorted(shapes)[:2]} cannot "
                                        f"be stacked; resize them with {hint}")
                x = torch.stack([it["x"] for it in items]).to(device)
                with torch.inference_mode():
                    z = codec.latents(x).half() if continuous else codec.encode(x)
                pending.setdefault(k, []).append((z.cpu(), [it["i"] for it in items],
                                                  [it["gain"] for it in items]))
            done = sum(len(ix) for _, ix, _ in pending.get(k, [])) + len(skipped.get(k, []))
            if done == bounds[k][1] - bounds[k][0]:
                _write_shard(out, k, pending.pop(k, []), labels, rel, plan, p.modality,
                             save_file, skipped.pop(k, []), bounds[k])
        bar.close()
    return write_manifest(out, plan, names, len(bounds), rel, labels)


def _write_shard(out: Path, k: int, parts: list, labels: list[int], rel: list[str],
                 plan: dict, modality: str, save_file, skipped: list[dict],
                 bounds: tuple[int, int]) -> None:
    """Write shard ``k`` (the items of ``parts``) and its entry; ``skipped`` lists the inputs
    of the shard's range that could not be read. A shard whose every input failed has an
    entry without a shard file (``file`` None, ``count`` 0)."""
    shard = out / shard_name(k)
    entry: dict = {"file": None, "count": 0, "shape": None, "bytes": 0, "sha256": None}
    idx = [i for _, ix, _ in parts for i in ix]
    if parts:
        shapes = {tuple(t.shape[1:]) for t, _, _ in parts}
        if len(shapes) > 1:
            raise LearningError(f"inputs of different shapes (latents {sorted(shapes)[:2]}) "
                                "cannot share a shard; resize them with --size")
        z = torch.cat([t for t, _, _ in parts])
        tensors = {"latents": z.contiguous(),
                   "labels": torch.tensor([labels[i] for i in idx], dtype=torch.int64)}
        if modality is AUDIO:
            tensors["gains"] = torch.tensor([g for _, _, gs in parts for g in gs],
                                            dtype=torch.float32)
        atomic_write(shard, save_file(tensors, metadata={"format": MANIFEST_FORMAT}), "shard")
        entry = {"file": shard.name, "count": len(idx), "shape": list(z.shape[1:]),
                 "bytes": shard.stat().st_size, "sha256": file_sha256(shard)}
    else:
        shard.unlink(missing_ok=True)  # an older run's shard of these inputs
    entry.update(plan=plan, files=[rel[i] for i in idx], inputs=rel[slice(*bounds)],
                 skipped=skipped)
    _write_json(out / _entry_name(k), entry)


def write_manifest(out: Path, plan: dict, names: list[str], n_shards: int, rel: list[str],
                   labels: list[int]) -> dict | None:
    """Collect the shard entries into ``manifest.json`` once every shard is finished."""
    entries, files, skipped = [], [], []
    index = {f: i for i, f in enumerate(rel)}
    for k in range(n_shards):
        path = out / _entry_name(k)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if entry.get("plan") != plan:
            return None
        try:
            if entry.get("count"):  # shards whose every input failed hold no items
                entries.append({key: entry[key]
                                for key in ("file", "count", "shape", "bytes", "sha256")})
            files += entry["files"]
            skipped += entry.get("skipped", [])
        except (KeyError, TypeError):
            return None
    if any(f not in index for f in files):
        return None
    shapes = {tuple(e["shape"]) for e in entries}
    manifest = {
        "format": MANIFEST_FORMAT, **plan,
        # None when shards differ (inputs of several sizes encoded without --size).
        "latent_shape": list(entries[0]["shape"]) if len(shapes) == 1 else None,
        "count": sum(e["count"] for e in entries),
        "label_names": names, "shards": entries, "files": files,
        "labels": [labels[index[f]] for f in files], "skipped": skipped,
    }
    _write_json(out / MANIFEST, manifest)
    return manifest
