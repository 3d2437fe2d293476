"""Compressed-domain learning: encode data sets into WaLLoC latents, read them back as a
PyTorch Dataset, encode on the fly in DataLoader workers (:class:`EncodeTransform`), read
``.wlc`` files as latents (:class:`WlcDataset`), and put models on them
(:mod:`pywalloc.learning.layers`)."""

from .dataset import LatentDataset, channel_stats
from .encode import (
    AUDIO_PEAK,
    DatasetFormatError,
    LearningError,
    encode_dataset,
    list_inputs,
    resize_center_crop,
)
from .transforms import EncodeTransform, WlcDataset, list_wlc, resolve_codec

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
