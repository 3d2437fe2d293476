"""Training data streamed from disk: random image crops and random stereo audio segments."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import MediaError
from ..media import audio_info, iter_inputs, no_inputs, read_audio, read_image
from ..modality import AUDIO, IMAGE, Modality, luma


def list_files(root: str | Path, modality: Modality | str) -> list[Path]:
    """The training files of a modality under ``root`` (:func:`pywalloc.media.iter_inputs`);
    FileNotFoundError if there are none."""
    if not Path(root).exists():
        raise FileNotFoundError(f"data folder '{root}' does not exist")
    files = iter_inputs(root, modality)
    if not files:
        raise FileNotFoundError(no_inputs(root, modality))
    return files


def read_rgb(path: Path) -> np.ndarray:
    """``H x W x 3`` uint8 through the one image reader (EXIF, 16-bit, gray, alpha), quietly."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_image(path)[0]


def read_pixels(path: Path, channels: int = 3) -> np.ndarray:
    """``H x W x 3`` uint8 (:func:`read_rgb`), or for ``channels == 1`` the ``H x W x 1``
    luma (Pillow's ``convert("L")``): what RGB and gray codecs train on."""
    a = read_rgb(path)
    return a if channels == 3 else luma(a)[:, :, None]


def _mirror_pad_to(x: np.ndarray, size: int) -> np.ndarray:
    """Pad an HxWxC array by mirroring (repeatedly if needed) to at least size x size."""
    h, w = x.shape[:2]
    if h >= size and w >= size:
        return x
    def idx(n: int) -> np.ndarray:
        period = max(2 * n - 2, 1)
        i = np.arange(max(n, size)) % period
        return np.where(i >= n, period - i, i)
    return x[idx(h)][:, idx(w)]


class ImageCrops(Dataset):
    """Random ``crop`` x ``crop`` RGB (or, ``channels=1``, luma) crops with random flips, in
    [-0.5, 0.5].

    Each file is decoded once per item and yields ``crops_per_image`` crops (stacked), which
    keeps fast accelerators fed without holding the data set in memory.
    """

    def __init__(self, root: str | Path, crop: int = 256, repeats: int = 1,
                 crops_per_image: int = 1, channels: int = 3) -> None:
        self.files = list_files(root, IMAGE)
        self.crop, self.repeats, self.k = crop, repeats, crops_per_image
        self.channels = channels

    def __len__(self) -> int:
        return len(self.files) * self.repeats

    def __getitem__(self, i: int) -> torch.Tensor:
        arr = _mirror_pad_to(read_pixels(self.files[i % len(self.files)], self.channels),
                             self.crop)
        out = []
        h, w = arr.shape[:2]
        for _ in range(self.k):
            top, left = random.randint(0, h - self.crop), random.randint(0, w - self.crop)
            c = arr[top : top + self.crop, left : left + self.crop]
            if random.random() < 0.5:
                c = c[:, ::-1]
            if random.random() < 0.5:
                c = c[::-1]
            out.append(torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1))
        return torch.stack(out).float().div_(255.0).sub_(0.5)


class AudioSegments(Dataset):
    """Random stereo segments of ``length`` frames, read by seeking (mono files duplicated).

    Each segment is scaled to a random peak in [min_peak, max_peak], matching the per-clip
    peak normalisation the codec applies before encoding, and may swap channels.
    """

    def __init__(self, root: str | Path, length: int = 32768, repeats: int = 1,
                 min_peak: float = 0.3, max_peak: float = 1.0, crops_per_file: int = 1) -> None:
        self.files = list_files(root, AUDIO)
        self.frames = [audio_info(f).frames for f in self.files]
        self.length, self.repeats, self.k = length, repeats, crops_per_file
        self.min_peak, self.max_peak = min_peak, max_peak

    def __len__(self) -> int:
        return len(self.files) * self.repeats

    def __getitem__(self, i: int) -> torch.Tensor:
        j = i % len(self.files)
        out = []
        for _ in range(self.k):
            seg = self._segment(j)
            if seg.shape[0] < self.length:
                seg = np.pad(seg, ((0, self.length - seg.shape[0]), (0, 0)))
            if random.random() < 0.5:
                seg = seg[:, ::-1]
            peak = float(np.abs(seg).max())
            if peak > 1e-4:
                seg = seg * (random.uniform(self.min_peak, self.max_peak) / peak)
            out.append(torch.from_numpy(np.ascontiguousarray(seg.T)))
        return torch.stack(out)

    def _segment(self, j: int, tries: int = 3) -> np.ndarray:
        """A stereo segment of file ``j`` at a random start. libsndfile's Ogg seeking failed
        once in a long run ("negative dimensions", not reproduced in 3,000 reads of the same
        file), so a failed read is retried at other starts, then at the file's start."""
        for _ in range(tries):
            start = random.randint(0, max(0, self.frames[j] - self.length))
            try:
                return read_audio(self.files[j], start=start, frames=self.length)[0]
            except MediaError:
                pass
        return read_audio(self.files[j], start=0, frames=self.length)[0]


class ResumableSampler(torch.utils.data.Sampler):
    """Endless epochs of seeded permutations, starting at any position (for exact resume)."""

    def __init__(self, n: int, seed: int, start: int = 0) -> None:
        self.n, self.seed, self.start = n, seed, start

    def __len__(self) -> int:
        return 2**62

    def __iter__(self):
        block, pos = divmod(self.start, self.n)
        while True:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + block)
            yield from torch.randperm(self.n, generator=gen)[pos:].tolist()
            block, pos = block + 1, 0


def make_dataset(modality: Modality, root: str | Path, crop: int, repeats: int = 1,
                 per_item: int = 1, channels: int = 3) -> Dataset:
    """Training crops; ``channels``: the preset's (1: image luma, for gray codecs)."""
    if modality is IMAGE:
        return ImageCrops(root, crop=crop, repeats=repeats, crops_per_image=per_item,
                          channels=channels)
    return AudioSegments(root, length=crop, repeats=repeats, crops_per_file=per_item)


def collate(items: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(items, dim=0)
