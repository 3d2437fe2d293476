"""One file through the real byte path in memory: rate, quality and speed (``walloc roundtrip``)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from .. import api
from ..codec import Codec
from ..media import detect_modality
from ..presets import get_preset
from . import metrics as M


def _warm_up(data: np.ndarray, extra: dict, codec: str | Codec | None, device) -> None:
    """Load weights and run a tiny input once, so timings exclude one-off start-up costs."""
    tiny = data[:512] if extra else data[:16, :16]
    blob = api.compress(tiny, codec, extra.get("sample_rate"), device=device)
    api.decode_blob(blob, codec if isinstance(codec, Codec) else None, device)


def roundtrip(path: str | os.PathLike, codec: str | Codec | None = None,
              device=None) -> dict[str, Any]:
    """Encode and decode ``path`` in memory; the figures ``walloc roundtrip`` prints: rate
    (``bpp`` or ``kbps``), compression ratio, dimensionality reduction, PSNR
    (:func:`metrics.psnr`: peak 255 for images, 1 for audio), encode/decode seconds and speeds
    (``encode_mpix_per_s`` or ``encode_msamples_per_s``, and ``decode_...``)."""
    modality = detect_modality(path)
    data, extra = modality.read(path)
    given = codec if isinstance(codec, Codec) else None
    _warm_up(data, extra, codec, device)
    t0 = time.perf_counter()
    enc = api.encode(data, codec, device=device, **extra)  # the default effort, as encode
    t1 = time.perf_counter()
    out = api.decode_blob(enc.blob, given, device).data
    t2 = time.perf_counter()
    n = modality.count(enc.header.shape, enc.header.channels)
    key = modality.speed_key
    return {"input": os.fspath(path), "codec": enc.header.preset, modality.rate_unit: enc.rate,
            "compression_ratio": enc.compression_ratio,
            "dimensionality_reduction": get_preset(enc.header.preset).dr,
            "psnr_db": M.psnr(data, out, peak=modality.psnr_peak), "bytes": len(enc.blob),
            "encode_s": t1 - t0, "decode_s": t2 - t1,
            f"encode_{key}": n / (t1 - t0) / 1e6, f"decode_{key}": n / (t2 - t1) / 1e6}
