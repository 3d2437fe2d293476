"""What users already hold, turned into what the codecs take: numpy arrays, PIL images, paths
and torch tensors become uint8 pixels or float32 samples; out-of-range values are refused.

Conventions (each with the library it comes from):

- images: numpy ``H x W x 3`` / ``H x W`` (Pillow's ``np.asarray``); torch ``C x H x W`` or
  ``1 x C x H x W`` (torchvision), C = 1 or 3. uint8 is taken as is, uint16 as 16-bit samples;
  float needs its range declared (``value_range=(0, 1)`` for ``ToTensor`` output).
- audio: numpy ``[frames, channels]`` / ``[frames]`` (soundfile); torch ``[channels, frames]``
  or ``[1, channels, frames]`` (torchaudio). float is taken as is; int16, int32, int8 and uint8
  are scaled to [-1, 1) as soundfile and torchaudio scale them (full scale = 2^(bits-1)).
"""

from __future__ import annotations

import numbers
import os
import warnings
from typing import Any

import numpy as np

from .errors import UnsupportedInputError

__all__ = ["audio_samples", "check_range", "image_pixels", "is_path", "sample_rate_int"]

# Full scale of integer PCM samples, and the offset of unsigned 8-bit WAV.
_PCM_SCALE = {np.dtype(np.int16): (2.0**15, 0), np.dtype(np.int32): (2.0**31, 0),
              np.dtype(np.int8): (2.0**7, 0), np.dtype(np.uint8): (2.0**7, 128)}


def is_path(data: Any) -> bool:
    return isinstance(data, (str, os.PathLike))


def _is_tensor(data: Any) -> bool:
    return type(data).__module__.split(".")[0] == "torch" and hasattr(data, "detach")


def _tensor_to_numpy(t: Any) -> np.ndarray:
    return t.detach().to("cpu").contiguous().numpy()


def _from_pil(img: Any) -> np.ndarray:
    from .media import _to_rgb8

    arr, gray, alpha, _ = _to_rgb8(img, "", "the PIL image")
    if alpha:
        warnings.warn("alpha channel dropped (transparency is not encoded)", stacklevel=3)
    return np.ascontiguousarray(arr[:, :, 0]) if gray else arr


def _declared_range(value_range: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise UnsupportedInputError(f"value_range must be (low, high), got {value_range!r}") \
            from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise UnsupportedInputError(f"value_range must be finite with low < high, got "
                                    f"{value_range!r}")
    return lo, hi


def image_pixels(data: Any, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """uint8 ``H x W x 3`` (RGB) or ``H x W`` (gray) pixels from a numpy array, a PIL image, a
    path or a torch tensor (see the module docstring for layouts). Float input must come with
    ``value_range`` (e.g. ``(0, 1)``), and values outside it are refused."""
    if is_path(data):
        from .media import read_image

        pixels, info = read_image(data)
        return np.ascontiguousarray(pixels[:, :, 0]) if info.mode == "L" else pixels
    if type(data).__module__.split(".")[0] == "PIL":
        return _from_pil(data)
    if _is_tensor(data):
        arr = _tensor_to_numpy(data)
        if arr.ndim == 4:
            if arr.shape[0] != 1:
                raise UnsupportedInputError(
                    f"one image at a time: got a batch of {arr.shape[0]} (N x C x H x W); "
                    "use Codec.encode for batches")
            arr = arr[0]
        if arr.ndim == 3:
            if arr.shape[0] not in (1, 3):
                raise UnsupportedInputError(
                    f"expected a C x H x W tensor with 1 or 3 channels, got {tuple(arr.shape)}")
            arr = arr.transpose(1, 2, 0)
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        raise UnsupportedInputError(
            f"cannot take a {type(data).__name__} as an image: pass a numpy array, a PIL image, "
            "a path or a torch tensor")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise UnsupportedInputError(f"expected an H x W x 3 or H x W image, got shape "
                                    f"{tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UnsupportedInputError("the image is empty")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if arr.dtype.kind != "f":
        raise UnsupportedInputError(f"images must be uint8, uint16 or float pixels, got "
                                    f"{arr.dtype}")
    if value_range is None:
        raise UnsupportedInputError(
            f"float pixels need their range declared: value_range=(0, 1) for [0, 1] values "
            f"(torchvision's ToTensor), (-0.5, 0.5) for the codec's own range "
            f"(these span [{float(np.nanmin(arr)):.3g}, {float(np.nanmax(arr)):.3g}])")
    lo, hi = _declared_range(value_range)
    check_range(arr, lo, hi, "pixels")
    scaled = (arr.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def check_range(x: Any, lo: float, hi: float, what: str,
                exc: type[Exception] = UnsupportedInputError, hint: str = "") -> None:
    """``exc`` (with ``hint`` appended) unless every value of ``x`` (numpy array or torch tensor) is finite
    and within [lo, hi], give or take float32 rounding."""
    if _is_tensor(x):
        import torch

        if x.numel() == 0:
            return
        if not bool(torch.isfinite(x).all()):
            raise exc(f"{what} contain NaN or infinite values")
        low, high = (float(v) for v in torch.aminmax(x.detach()))
    else:
        a = np.asarray(x)
        if a.size == 0:
            return
        if not np.isfinite(a).all():
            raise exc(f"{what} contain NaN or infinite values")
        low, high = float(a.min()), float(a.max())
    slack = 1e-5 * (hi - lo)
    if low < lo - slack or high > hi + slack:
        raise exc(f"{what} span [{low:.4g}, {high:.4g}], outside the expected [{lo:g}, {hi:g}]"
                  f"{hint}")


def sample_rate_int(sample_rate: Any) -> int:
    """A positive integer rate from an int, a numpy integer or an integral float (44100.0)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real):
        raise UnsupportedInputError(f"invalid sample rate {sample_rate!r}")
    rate = float(sample_rate)
    if not (np.isfinite(rate) and rate == int(rate) and rate > 0):
        raise UnsupportedInputError(f"invalid sample rate {sample_rate!r} (a positive whole "
                                    "number of Hz is needed)")
    return int(rate)


def audio_samples(data: Any) -> np.ndarray:
    """float32 ``[frames, channels]`` (1 or 2 channels) from a numpy array or a torch tensor
    (see the module docstring for layouts and integer scaling)."""
    if _is_tensor(data):
        arr = _tensor_to_numpy(data)
        if arr.ndim == 3:
            if arr.shape[0] != 1:
                raise UnsupportedInputError(f"one clip at a time: got a batch of {arr.shape[0]}")
            arr = arr[0]
        if arr.ndim == 2:
            if arr.shape[0] not in (1, 2):
                raise UnsupportedInputError(
                    f"expected a [channels, frames] tensor (torchaudio's layout) with 1 or 2 "
                    f"channels, got {tuple(arr.shape)}")
            arr = arr.T
    elif isinstance(data, (np.ndarray, list, tuple)):
        arr = np.asarray(data)
    else:
        raise UnsupportedInputError(f"cannot take a {type(data).__name__} as audio: pass a "
                                    "numpy array, a torch tensor or a path")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] not in (1, 2):
        hint = (" (for [channels, frames] numpy data pass data.T)"
                if arr.ndim == 2 and arr.shape[0] in (1, 2) else "")
        raise UnsupportedInputError(f"expected audio [frames, 1 or 2 channels], got "
                                    f"{tuple(arr.shape)}{hint}")
    if arr.shape[0] == 0:
        raise UnsupportedInputError("the audio has no samples")
    if arr.dtype in _PCM_SCALE:
        scale, offset = _PCM_SCALE[arr.dtype]
        return ((arr.astype(np.float64) - offset) / scale).astype(np.float32)
    if arr.dtype.kind != "f":
        raise UnsupportedInputError(f"audio samples must be float, int16, int32, int8 or uint8, "
                                    f"got {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise UnsupportedInputError("the audio contains NaN or infinite samples")
    return out
