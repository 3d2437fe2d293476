"""Compressed-domain learning: encode data sets into WaLLoC latents, read them back as a
PyTorch Dataset, and put models on them (:mod:`pywalloc.learning.layers`)."""

from .dataset import LatentDataset, channel_stats
from .encode import (
    AUDIO_PEAK,
    DatasetFormatError,
    LearningError,
    encode_dataset,
    list_inputs,
    resize_center_crop,
)

__all__ = [
    "AUDIO_PEAK",
    "DatasetFormatError",
    "LatentDataset",
    "LearningError",
    "channel_stats",
    "encode_dataset",
    "list_inputs",
    "resize_center_crop",
]
