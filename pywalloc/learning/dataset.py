"""Reading latent data sets written by :func:`pywalloc.learning.encode_dataset`: a PyTorch
Dataset that loads shards on demand (small LRU), and per-channel statistics for input scaling."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .encode import MANIFEST, MANIFEST_FORMAT, DatasetFormatError

__all__ = ["LatentDataset", "channel_stats"]


class LatentDataset(Dataset):
    """Items ``(latents, label)``: float32 latents ``[C, h, w]`` (audio ``[C, t]``), int label
    (-1 if the source folder had no class subfolders).

    Only ``cache_shards`` shards are held in memory at a time (least recently used dropped),
    so iterate roughly in order (or shard-wise shuffle) for speed on large sets. With
    ``codec``, the manifest's weight hash must match it (latents of another codec would be
    silently meaningless). ``transform`` is applied to the latents.
    """

    def __init__(self, path: str | Path, *, codec=None, cache_shards: int = 2,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.root = Path(path)
        try:
            self.manifest = json.loads((self.root / MANIFEST).read_text())
        except FileNotFoundError:
            raise DatasetFormatError(f"no {MANIFEST} in '{self.root}' (not a finished latent "
                                     "data set; run walloc encode-dataset)") from None
        except (OSError, ValueError) as exc:
            raise DatasetFormatError(f"cannot read '{self.root / MANIFEST}': {exc}") from None
        m = self.manifest
        if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
            raise DatasetFormatError(f"'{self.root / MANIFEST}' is not a {MANIFEST_FORMAT} "
                                     "manifest")
        if codec is not None and codec.weight_hash != m.get("weight_hash"):
            from ..errors import WeightsMismatchError

            raise WeightsMismatchError(
                f"'{self.root}' was encoded with {m.get('codec')} weights {m.get('weight_hash')},"
                f" not {codec.preset.name} {codec.weight_hash}")
        try:
            self._counts = [int(s["count"]) for s in m["shards"]]
            self._files = [str(s["file"]) for s in m["shards"]]
        except (KeyError, TypeError, ValueError):
            raise DatasetFormatError(f"'{self.root / MANIFEST}' has malformed shard entries") \
                from None
        self._starts = [0]
        for n in self._counts:
            self._starts.append(self._starts[-1] + n)
        self._cache: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()
        self.cache_shards = max(1, cache_shards)
        self.transform = transform

    # -- metadata ---------------------------------------------------------------------------
    @property
    def label_names(self) -> list[str]:
        return list(self.manifest.get("label_names", []))

    @property
    def codec_name(self) -> str:
        return str(self.manifest["codec"])

    @property
    def latent_shape(self) -> tuple[int, ...] | None:
        shape = self.manifest.get("latent_shape")
        return tuple(shape) if shape else None

    @property
    def labels(self) -> list[int]:
        """All labels in item order (read from the manifest, no shard is loaded)."""
        return list(self.manifest["labels"])

    @property
    def files(self) -> list[str]:
        """Input file of each item, relative to the encoded folder."""
        return list(self.manifest["files"])

    def __len__(self) -> int:
        return self._starts[-1]

    # -- items ------------------------------------------------------------------------------
    def _shard(self, k: int) -> dict[str, torch.Tensor]:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.root / self._files[k]
        try:
            tensors = load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise DatasetFormatError(f"cannot read shard '{path}': {exc}") from None
        z, y = tensors.get("latents"), tensors.get("labels")
        if z is None or y is None or len(z) != self._counts[k] or len(y) != self._counts[k]:
            raise DatasetFormatError(f"shard '{path}' does not match its manifest entry")
        self._cache[k] = tensors
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return tensors

    def _locate(self, i: int) -> tuple[int, int]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        import bisect

        k = bisect.bisect_right(self._starts, i) - 1
        return k, i - self._starts[k]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        k, j = self._locate(i)
        shard = self._shard(k)
        z = shard["latents"][j].float()
        if self.transform is not None:
            z = self.transform(z)
        return z, int(shard["labels"][j])

    def gain(self, i: int) -> float:
        """Audio: the peak-normalisation gain applied before encoding (1.0 for images)."""
        k, j = self._locate(i)
        gains = self._shard(k).get("gains")
        return 1.0 if gains is None else float(gains[j])


def channel_stats(dataset: LatentDataset, max_items: int = 2048) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """Per-channel mean and std of the latents over (up to ``max_items``, evenly spread) items,
    for :class:`pywalloc.learning.layers.LatentPatchEmbed` standardisation."""
    n = len(dataset)
    if n == 0:
        raise DatasetFormatError("empty data set")
    step = max(1, n // max_items)
    total = total_sq = None
    count = 0
    for i in range(0, n, step):
        z = dataset[i][0].double()
        flat = z.reshape(z.shape[0], -1)
        s, sq = flat.sum(1), (flat * flat).sum(1)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += flat.shape[1]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    return mean.float(), std.float()
