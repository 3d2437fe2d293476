"""Training straight from compressed data: an encode transform for image pipelines (run it in
DataLoader workers, after your own augmentation) and a Dataset that reads ``.wlc`` files into
latents without decoding any pixels (container parse + entropy unpack only)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..modality import IMAGE, luma
from .encode import DatasetFormatError, LearningError

__all__ = ["EncodeTransform", "WlcDataset", "list_wlc", "resolve_codec"]


def resolve_codec(codec):
    """A :class:`~pywalloc.codec.Codec` from an instance, a bundled preset name
    (``"rgb-16x"``) or the path of a codec ``.safetensors`` file (e.g. newly trained weights)."""
    from ..codec import Codec
    from ..errors import WallocError
    from ..presets import PRESETS
    from ..zoo import load

    if isinstance(codec, Codec):
        return codec
    if isinstance(codec, (str, os.PathLike)):
        spec = os.fspath(codec)
        if spec in PRESETS:
            return load(spec)
        path = Path(spec)
        if path.is_file():
            try:
                return load(path)
            except WallocError as exc:
                raise LearningError(f"cannot load codec weights '{path}': "
                                    f"{str(exc).splitlines()[0]}") from None
        raise LearningError(f"'{spec}' is neither a codec name ({', '.join(PRESETS)}) nor a "
                            "weights file")
    raise LearningError(f"codec must be a Codec, a preset name or a weights path, not "
                        f"{type(codec).__name__}")


def _luma_chw(t: torch.Tensor) -> torch.Tensor:
    """uint8 ``[3, H, W]`` → its luma ``[1, H, W]``, as Pillow's ``convert("L")``."""
    return torch.from_numpy(luma(t.permute(1, 2, 0).numpy()))[None]


def _to_uint8_chw(img, channels: int = 3) -> torch.Tensor:
    """PIL image, numpy ``H x W [x 3]`` uint8 or tensor ``[C, H, W]`` (uint8, or float in
    [0, 1] as torchvision's ``ToTensor`` gives) → uint8 ``[channels, H, W]``: gray becomes
    RGB for an RGB codec, colour becomes its luma for a gray codec (``channels`` 1)."""
    t = _to_uint8_any(img)
    if channels == 1:
        return _luma_chw(t) if t.shape[0] == 3 else t
    return t.expand(3, -1, -1) if t.shape[0] == 1 else t


def _to_uint8_any(img) -> torch.Tensor:
    """The input as uint8 ``[1 or 3, H, W]`` (PIL images: gray modes 1 channel, others RGB)."""
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.dim() == 2:
            t = t[None]
        if t.dim() != 3 or t.shape[0] not in (1, 3):
            raise LearningError(f"expected an image tensor [1 or 3, H, W], got {tuple(t.shape)}")
        if t.is_floating_point():
            lo, hi = float(t.min()), float(t.max())
            if lo < -1e-3 or hi > 1 + 1e-3:
                raise LearningError(f"float image tensors must lie in [0, 1] (as ToTensor "
                                    f"gives), got values in [{lo:.3g}, {hi:.3g}]")
            t = t.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        elif t.dtype != torch.uint8:
            raise LearningError(f"image tensors must be uint8 or float, not {t.dtype}")
        return t
    if not isinstance(img, np.ndarray):
        try:  # PIL image (or anything PIL-like): gray stays gray, any other mode becomes RGB
            img = np.asarray(img.convert("L" if img.mode in ("1", "L")
                                         else "RGB"))
        except AttributeError:
            raise LearningError(f"cannot encode a {type(img).__name__}: give a PIL image, a "
                                "numpy array or a tensor") from None
    if img.dtype != np.uint8:
        raise LearningError(f"numpy images must be uint8, not {img.dtype}")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise LearningError(f"expected an H x W x 3 (or H x W) image, got shape {img.shape}")
    if not img.flags.writeable or not img.flags.c_contiguous:  # PIL's arrays are read-only
        img = np.array(img, order="C")
    return torch.from_numpy(img).permute(2, 0, 1)


class EncodeTransform:
    """torchvision-style callable: image → WaLLoC latents ``[C_z, ⌈H/8⌉, ⌈W/8⌉]``.

    Put it last in a ``transforms.Compose``, after the augmentation (crop, flip, colour
    jitter act on the image, then it is encoded: flipping latents is not flipping the image)::

        tf = Compose([RandomResizedCrop(224), RandomHorizontalFlip(), EncodeTransform("rgb-16x")])
        ds = ImageFolder("imagenette/train", transform=tf)
        loader = DataLoader(ds, batch_size=64, num_workers=2)   # encoding runs in the workers

    Accepts PIL images (any mode), numpy uint8 ``H x W x 3``/``H x W`` and tensors
    ``[C, H, W]`` (uint8, or float in [0, 1]). ``codec``: a preset name, a weights path or a
    :class:`~pywalloc.codec.Codec` (image codecs only). An RGB codec takes gray input as
    three equal channels; a gray codec (``gray-16x``, ``gray-4x``) takes colour input as its
    luma (Pillow's ``convert("L")``). Output: float32 integer-valued latents
    (``dtype=torch.int8`` keeps int8), or with ``continuous=True`` the companded latents before
    rounding. Inside a DataLoader worker it sets torch to 1 thread (once per process), since
    several workers each running many threads oversubscribe the cores.
    """

    def __init__(self, codec="rgb-16x", *, continuous: bool = False,
                 dtype: torch.dtype = torch.float32, worker_threads: int | None = 1) -> None:
        self._codec = resolve_codec(codec)
        if self._codec.preset.modality is not IMAGE:
            raise LearningError(f"EncodeTransform encodes images; {self._codec.preset.name} is "
                                f"an {self._codec.preset.modality} codec")
        if continuous and dtype == torch.int8:
            raise LearningError("continuous latents are not integers: use a float dtype")
        self.continuous, self.dtype, self.worker_threads = continuous, dtype, worker_threads
        self._threads_pid: int | None = None

    @property
    def codec(self):
        return self._codec

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self._codec.preset.name!r}, "
                f"weights={self._codec.weight_hash}, continuous={self.continuous})")

    def _limit_threads(self) -> None:
        if self.worker_threads is None or self._threads_pid == os.getpid():
            return
        self._threads_pid = os.getpid()
        if torch.utils.data.get_worker_info() is not None:
            torch.set_num_threads(self.worker_threads)

    def __call__(self, img) -> torch.Tensor:
        self._limit_threads()
        x = _to_uint8_chw(img, self._codec.preset.channels)[None]
        with torch.inference_mode():
            if self.continuous:
                z = self._codec.latents(x.float() / 255.0 - 0.5)
            else:
                z = self._codec.encode_uint8(x)
        return z[0].to(self.dtype)

    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """Encode a uint8 batch ``[B, C, H, W]`` at once (faster than per image); ``C`` is the
        codec's channel count (3, or 1 for gray codecs)."""
        c = self._codec.preset.channels
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != c:
            raise LearningError(f"batch() takes uint8 images [B, {c}, H, W]")
        with torch.inference_mode():
            z = (self._codec.latents(images.float() / 255.0 - 0.5) if self.continuous
                 else self._codec.encode_uint8(images))
        return z.to(self.dtype)


def list_wlc(root: str | os.PathLike) -> tuple[list[Path], list[int], list[str]]:
    """Sorted ``.wlc`` files under ``root`` with labels from their first-level subfolder
    (``root/<class>/.../x.wlc``); a folder without subfolders is unlabelled (label -1)."""
    root = Path(root)
    if not root.is_dir():
        raise LearningError(f"folder '{root}' does not exist")
    files = sorted(p for p in root.rglob("*.wlc") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise LearningError(f"no .wlc files under '{root}'")
    rel = [f.relative_to(root).parts for f in files]
    loose = [r for r in rel if len(r) == 1]
    if len(loose) == len(rel):
        return files, [-1] * len(files), []
    if loose:
        raise LearningError(f"'{root}' mixes class subfolders with {len(loose)} loose files "
                            f"(e.g. '{loose[0][0]}')")
    names = sorted({r[0] for r in rel})
    index = {n: i for i, n in enumerate(names)}
    return files, [index[r[0]] for r in rel], names


class WlcDataset(Dataset):
    """Items ``(latents, label)`` read from ``.wlc`` files: float32 latents ``[C, h, w]`` (audio
    ``[C, t]``), taken from the container and the entropy decoder only; no pixel or sample is
    ever reconstructed, so no codec decoder runs.

    ``source``: a folder (labels from first-level subfolders, -1 without) or a list of files
    (``labels`` optional). With ``codec`` (name, path or Codec), each file's weight hash and
    preset must match it. ``transform`` is applied to the latents. Files of different sizes
    give latents of different shapes: batch them with your own ``collate_fn`` or resize first.
    """

    def __init__(self, source: str | os.PathLike | Sequence[str | os.PathLike], *,
                 labels: Sequence[int] | None = None, codec=None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        if isinstance(source, (str, os.PathLike)):
            self.files, self._labels, self.label_names = list_wlc(source)
            if labels is not None:
                raise LearningError("labels come from the subfolders when a folder is given")
        else:
            self.files = [Path(p) for p in source]
            self._labels = list(labels) if labels is not None else [-1] * len(self.files)
            self.label_names = []
            if len(self._labels) != len(self.files):
                raise LearningError(f"{len(self.files)} files but {len(self._labels)} labels")
        self._expect = None
        if codec is not None:
            from ..container import WEIGHTS_HASH_LEN

            c = resolve_codec(codec)
            self._expect = (c.preset.name, bytes.fromhex(c.weight_hash)[:WEIGHTS_HASH_LEN])
        self.transform, self.dtype = transform, dtype

    def __len__(self) -> int:
        return len(self.files)

    @property
    def labels(self) -> list[int]:
        return list(self._labels)

    def read(self, i: int):
        """``(header, int8 latents as numpy)`` of item ``i``."""
        from .. import container, entropy
        from ..errors import FormatError, WeightsMismatchError

        path = self.files[i]
        try:
            header, payload = container.read(path.read_bytes())
            z = entropy.coder(header.entropy).unpack(payload, tuple(header.latent_shape))
        except FormatError as exc:
            raise DatasetFormatError(f"'{path}': {exc}") from None
        except OSError as exc:
            raise DatasetFormatError(f"cannot read '{path}': {exc.strerror or exc}") from None
        if self._expect is not None and (header.preset, header.weights_hash) != self._expect:
            raise WeightsMismatchError(
                f"'{path}' was made by {header.preset} weights {header.weights_hash.hex()}, not "
                f"{self._expect[0]} {self._expect[1].hex()}")
        return header, z

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        _, z = self.read(i)
        t = torch.from_numpy(z)
        t = t.to(self.dtype) if self.dtype != torch.int8 else t
        if self.transform is not None:
            t = self.transform(t)
        return t, self._labels[i]
