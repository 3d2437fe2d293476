"""Compressed-domain learning: encode data sets into WaLLoC latents, read them back as a
PyTorch Dataset, encode on the fly in DataLoader workers (:class:`EncodeTransform`), read
``.wlc`` files as latents (:class:`WlcDataset`), and put models on them
(:mod:`pywalloc.learning.layers`).

The names below import torch, so they are loaded on first use: ``walloc --help`` (which builds
this package's subcommand parser) stays fast."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> submodule that defines it
_LAZY = {
    "AUDIO_PEAK": "encode",
    "DatasetFormatError": "encode",
    "EncodeTransform": "transforms",
    "LatentDataset": "dataset",
    "LearningError": "encode",
    "WlcDataset": "transforms",
    "channel_stats": "dataset",
    "encode_dataset": "encode",
    "list_inputs": "encode",
    "list_wlc": "transforms",
    "resize_center_crop": "encode",
    "resolve_codec": "transforms",
}

__all__ = [
    "AUDIO_PEAK",
    "DatasetFormatError",
    "EncodeTransform",
    "LatentDataset",
    "LearningError",
    "WlcDataset",
    "channel_stats",
    "encode_dataset",
    "list_inputs",
    "list_wlc",
    "resize_center_crop",
    "resolve_codec",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from .dataset import LatentDataset as LatentDataset
    from .dataset import channel_stats as channel_stats
    from .encode import AUDIO_PEAK as AUDIO_PEAK
    from .encode import DatasetFormatError as DatasetFormatError
    from .encode import LearningError as LearningError
    from .encode import encode_dataset as encode_dataset
    from .encode import list_inputs as list_inputs
    from .encode import resize_center_crop as resize_center_crop
    from .transforms import EncodeTransform as EncodeTransform
    from .transforms import WlcDataset as WlcDataset
    from .transforms import list_wlc as list_wlc
    from .transforms import resolve_codec as resolve_codec
