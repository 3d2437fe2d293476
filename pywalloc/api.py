"""In-memory and file-level compress/decompress: media → codec → entropy coding → container."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import container, entropy
from .codec import Codec, peak_gain
from .errors import FormatError, MediaError, UnsupportedInputError, WeightsMismatchError
from .presets import DEFAULT_AUDIO, DEFAULT_IMAGE, get_preset, load

CODEC_RATE = 44100  # the audio codecs were trained at this rate; others are resampled to it


@dataclass(frozen=True)
class Decoded:
    """A decoded file: image pixels (``H x W x 3`` or ``H x W`` uint8) or audio samples."""

    data: np.ndarray
    header: container.Header
    sample_rate: int = 0


def _codec(codec: str | Codec | None, modality: str, device=None) -> Codec:
    """A codec instance as given, or the bundled one (on ``device``, default CPU)."""
    if isinstance(codec, Codec):
        if codec.preset.modality != modality:
            raise UnsupportedInputError(
                f"codec {codec.preset.name} is for {codec.preset.modality}, not {modality}")
        return codec
    name = codec or (DEFAULT_IMAGE if modality == "image" else DEFAULT_AUDIO)
    preset = get_preset(name)
    if preset.modality != modality:
        raise UnsupportedInputError(f"codec {name} is for {preset.modality}, not {modality}")
    return load(name, device=_device(device))


def _device(device) -> str:
    """``device`` as a string for ``load``; a clear error when CUDA is asked for and missing."""
    name = "cpu" if device is None else str(device)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UnsupportedInputError(f"device {name!r} was asked for, but CUDA is not available")
    return name


def _model_device(model: Codec) -> torch.device:
    return next(model.parameters()).device


def _hash(codec: Codec) -> bytes:
    return bytes.fromhex(codec.weight_hash)[: container.WEIGHTS_HASH_LEN]


def _image_tensor(pixels: np.ndarray) -> tuple[torch.Tensor, str]:
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise UnsupportedInputError("images must be numpy uint8 arrays (H x W x 3 or H x W); "
                                    "pywalloc.compress also takes PIL images, paths and tensors")
    if pixels.ndim == 2:
        mode, pixels = "L", np.repeat(pixels[:, :, None], 3, axis=2)
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        mode = "RGB"
    else:
        raise UnsupportedInputError(f"expected an H x W x 3 or H x W image, got shape {pixels.shape}")
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise UnsupportedInputError("the image is empty")
    with warnings.catch_warnings():  # read-only arrays (PIL) warn; this tensor is only read
        warnings.simplefilter("ignore", UserWarning)
        x = torch.from_numpy(np.ascontiguousarray(pixels))
    return x.permute(2, 0, 1).unsqueeze(0), mode  # uint8 [1, 3, H, W] (a view)


def compress_image(pixels, codec: str | Codec | None = None,
                   effort: int = entropy.DEFAULT_METHOD, device=None, *,
                   value_range: tuple[float, float] | None = None) -> bytes:
    """An image → ``.wlc`` bytes: ``H x W x 3`` (or gray ``H x W``) uint8 pixels, or any form
    :func:`compress` takes. ``effort`` is the lossless WebP method (0-6): higher is slower and
    a few percent smaller, same pixels."""
    from .inputs import image_pixels

    model = _codec(codec, "image", device)
    x, mode = _image_tensor(image_pixels(pixels, value_range))
    h, w = x.shape[2:]
    with torch.inference_mode():
        z = model.encode_uint8(x.to(_model_device(model)))[0].cpu()
    b = model.preset.block
    header = container.Header(
        modality="image", preset=model.preset.name, weights_hash=_hash(model), shape=(h, w),
        channels=1 if mode == "L" else 3, latent_shape=tuple(z.shape), padding=(0, (-h) % b, 0, (-w) % b), mode=mode)
    return container.write(header, entropy.pack(z.numpy(), method=effort))


def _audio_rate_length(frames: int, rate: int) -> int:
    """Frames after resampling to the codec rate (resample_poly's output length)."""
    g = math.gcd(CODEC_RATE, rate)
    up, down = CODEC_RATE // g, rate // g
    return -(-frames * up // down)


def compress_audio(samples, sample_rate: float, codec: str | Codec | None = None,
                   subtype: str = "", effort: int = entropy.DEFAULT_METHOD, device=None) -> bytes:
    """Audio at ``sample_rate`` (a whole number of Hz, int or float) → ``.wlc`` bytes: numpy
    ``[frames, channels]`` or torch ``[channels, frames]``, 1 or 2 channels; float, or int16 /
    int32 / int8 / uint8 PCM scaled as soundfile and torchaudio scale it."""
    from .inputs import audio_samples, sample_rate_int
    from .media import resample_audio

    sample_rate = sample_rate_int(sample_rate)
    model = _codec(codec, "audio", device)
    a = audio_samples(samples)
    frames, channels = a.shape
    stereo = a if channels == 2 else np.repeat(a, 2, axis=1)
    if sample_rate != CODEC_RATE:
        stereo = resample_audio(stereo, int(sample_rate), CODEC_RATE)
    gain = peak_gain(np.abs(stereo).max())
    x = torch.from_numpy(np.ascontiguousarray(stereo.T)).unsqueeze(0).mul_(gain)
    with torch.inference_mode():
        z = model.encode(x.to(_model_device(model)))[0].cpu()
    n = x.shape[-1]
    header = container.Header(
        modality="audio", preset=model.preset.name, weights_hash=_hash(model), shape=(frames,),
        channels=channels, latent_shape=tuple(z.shape), padding=(0, (-n) % model.preset.block),
        sample_rate=int(sample_rate), mode=subtype, gain=gain)
    return container.write(header, entropy.pack(z.numpy(), method=effort))


def compress(data, codec: str | Codec | None = None, sample_rate: float | None = None,
             effort: int = entropy.DEFAULT_METHOD, *,
             value_range: tuple[float, float] | None = None, device=None) -> bytes:
    """Compress an image, or with ``sample_rate`` audio, into ``.wlc`` bytes.

    Images: numpy ``H x W x 3`` / ``H x W`` (uint8 or uint16), a PIL image, or a torch tensor
    ``C x H x W`` / ``1 x C x H x W``; float pixels need ``value_range`` (``(0, 1)`` for
    torchvision's ``ToTensor``). Audio: numpy ``[frames, channels]`` or torch
    ``[channels, frames]``, float or integer PCM. A path (``str`` or ``Path``) is read as a
    file of either kind. ``effort``: lossless WebP method 0-6. ``device``: where the bundled
    codec runs (``"cpu"`` by default, ``"cuda"`` when asked and available)."""
    from .inputs import is_path

    if is_path(data) and sample_rate is None:
        return compress_file(data, codec, effort, device=device)
    if sample_rate is not None:
        return compress_audio(data, sample_rate, codec, effort=effort, device=device)
    return compress_image(data, codec, effort=effort, device=device, value_range=value_range)


def _check_codec(header: container.Header, codec: str | Codec | None, device=None) -> Codec:
    if isinstance(codec, Codec):
        model = codec
        if model.preset.name != header.preset:
            raise WeightsMismatchError(
                f"file was made by codec {header.preset}, not {model.preset.name}")
    else:
        if codec is not None and codec != header.preset:
            raise WeightsMismatchError(f"file was made by codec {header.preset}, not {codec}")
        try:
            get_preset(header.preset)
        except KeyError:
            raise FormatError(f"file names an unknown codec '{header.preset}'") from None
        model = load(header.preset, device=_device(device))
    if _hash(model) != header.weights_hash:
        raise WeightsMismatchError(
            f"file was made by other {header.preset} weights (hash {header.weights_hash.hex()}, "
            f"these are {_hash(model).hex()}); decode it with the pywalloc version that made it")
    if model.preset.modality != header.modality:
        raise FormatError(f"codec {header.preset} does not decode {header.modality}")
    return model


def decode_blob(blob: bytes, codec: str | Codec | None = None, device=None) -> Decoded:
    """Parse and decode ``.wlc`` bytes, keeping the header."""
    header, payload = container.read(blob)
    model = _check_codec(header, codec, device)
    expected = model.latent_size(
        header.shape if header.modality == "image"
        else (_audio_rate_length(header.shape[0], header.sample_rate),))
    if tuple(header.latent_shape) != (model.preset.latent_channels, *expected):
        raise FormatError(f"latent shape {header.latent_shape} does not fit geometry {header.shape}")
    z = torch.from_numpy(entropy.unpack(payload, header.latent_shape)).unsqueeze(0)
    z = z.to(_model_device(model))
    with torch.inference_mode():
        if header.modality == "image":
            x = model.decode(z, header.shape)[0]
            pix = x.add_(0.5).mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
            pixels = pix.permute(1, 2, 0).contiguous().cpu().numpy()
            if header.mode == "L":
                pixels = np.round(pixels.astype(np.float32).mean(axis=2)).astype(np.uint8)
            return Decoded(pixels, header)
        n = _audio_rate_length(header.shape[0], header.sample_rate)
        x = model.decode(z, (n,))[0] / header.gain
    audio = x.T.contiguous().cpu().numpy()
    if header.sample_rate != CODEC_RATE:
        from .media import resample_audio

        audio = resample_audio(audio, CODEC_RATE, header.sample_rate)
    frames = header.shape[0]
    audio = audio[:frames] if audio.shape[0] >= frames else np.pad(
        audio, ((0, frames - audio.shape[0]), (0, 0)))
    if header.channels == 1:
        audio = audio.mean(axis=1, keepdims=True)
    return Decoded(np.ascontiguousarray(audio, dtype=np.float32), header, header.sample_rate)


def decompress(blob: bytes, codec: str | Codec | None = None, *, device=None):
    """``.wlc`` bytes → image pixels (uint8), or ``(samples [frames, channels], sample_rate)``.
    ``device``: where the bundled codec runs (``"cpu"`` by default)."""
    out = decode_blob(blob, codec, device)
    return out.data if out.header.modality == "image" else (out.data, out.sample_rate)


# -- files ------------------------------------------------------------------------------------
def compress_file(path: str | os.PathLike, codec: str | Codec | None = None,
                  effort: int = entropy.DEFAULT_METHOD, device=None) -> bytes:
    """Read an image or audio file (modality by content/suffix) and compress it."""
    from .media import detect_modality, read_audio, read_image

    modality = detect_modality(path)
    preset = codec.preset if isinstance(codec, Codec) else get_preset(codec) if codec else None
    if preset is not None and preset.modality != modality:  # fail before decoding
        raise UnsupportedInputError(
            f"'{os.fspath(path)}' holds {modality}; codec {preset.name} is for "
            f"{preset.modality}")
    if modality == "image":
        pixels, info = read_image(path)
        return compress_image(pixels[:, :, 0] if info.mode == "L" else pixels, codec, effort,
                              device)
    samples, rate, info = read_audio(path)
    data = samples[:, :1] if info.channels == 1 else samples
    return compress_audio(data, rate, codec, subtype=info.subtype, effort=effort, device=device)


def decompress_file(blob: bytes, out_path: str | os.PathLike, device=None) -> Decoded:
    """Decode ``.wlc`` bytes and write the image (format by suffix) or WAV/FLAC audio."""
    from .media import write_audio, write_image

    out = decode_blob(blob, device=device)
    if out.header.modality == "image":
        write_image(out_path, out.data, out.header.mode or "RGB")
    else:
        subtype = out.header.mode if out.header.mode in ("PCM_16", "PCM_24", "FLOAT") else None
        if Path(out_path).suffix.lower() == ".flac" and subtype == "FLOAT":
            subtype = "PCM_24"
        write_audio(out_path, out.data, out.sample_rate, subtype)
    return out


__all__ = ["Decoded", "MediaError", "compress", "compress_audio", "compress_file",
           "compress_image", "decode_blob", "decompress", "decompress_file"]
