"""Everything that differs between images and audio, in one place: value range, sample-rate
convention, peak gain, padding rule, file suffixes, reading and writing, array <-> tensor, raw
size and rate unit. The rest of pywalloc asks a modality object instead of testing names.

A modality *is* its name (``IMAGE == "image"``; it subclasses ``str``), so headers, JSON reports
and tables keyed by name keep working, but code should call its methods rather than compare.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import UnsupportedInputError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

__all__ = [
    "ALL",
    "AUDIO",
    "AUDIO_PEAK",
    "CODEC_RATE",
    "IMAGE",
    "Audio",
    "Image",
    "Modality",
    "get",
    "peak_gain",
]

# Audio input convention: each clip is scaled so that its peak is AUDIO_PEAK before encoding
# (the inverse gain travels with the latents). The floor (-80 dBFS) caps the gain, so a
# silent clip decodes to near-silence instead of amplified decoder noise.
AUDIO_PEAK = 0.9
_PEAK_FLOOR = 1e-4
CODEC_RATE = 44100  # the audio codecs were trained at this rate; others are resampled to it


def peak_gain(peak: float) -> float:
    """The gain that brings a clip with this peak to ``AUDIO_PEAK``."""
    return AUDIO_PEAK / max(float(peak), _PEAK_FLOOR)


class Modality(str):
    """Base of :class:`Image` and :class:`Audio`; use the singletons :data:`IMAGE`/:data:`AUDIO`."""

    id: ClassVar[int]  # the .wlc header's modality byte
    dims: ClassVar[int]  # 2 (H, W) or 1 (frames)
    lo: ClassVar[float]  # codec input range
    hi: ClassVar[float]
    rate_unit: ClassVar[str]  # "bpp" or "kbps"
    psnr_peak: ClassVar[float]  # peak of the arrays the API takes and returns (255 or 1)
    size_unit: ClassVar[str]  # what rates and speeds count: "pixels" or "samples"
    speed_unit: ClassVar[str]  # "MPix/s" or "MSamples/s", and as a JSON key:
    speed_key: ClassVar[str]  # "mpix_per_s" or "msamples_per_s"
    header_channels: ClassVar[tuple[int, ...]]  # channel counts a file may restore
    has_sample_rate: ClassVar[bool]  # headers record a sample rate (else 0)
    dtype_hint: ClassVar[str]  # appended to "input must be float" errors
    range_hint: ClassVar[str]  # appended to "input out of range" errors
    suffixes: ClassVar[frozenset[str]]  # recognised input files (lower case)
    output_suffix: ClassVar[str]  # decoded files, when no name is given
    sample: ClassVar[str]  # bundled sample under pywalloc/samples
    train_crop: ClassVar[int]  # default training crop (pixels per side or frames)
    default_preset: ClassVar[str]

    def __new__(cls) -> Modality:  # noqa: PYI034 - only the two singletons are made
        return super().__new__(cls, cls.__name__.lower())

    def __reduce__(self) -> tuple:  # pickles (DataLoader workers) as the singleton
        return get, (str(self),)

    @property
    def name(self) -> str:
        return str.__str__(self)

    def padding(self, shape: tuple[int, ...], block: int) -> tuple[int, ...]:
        """(before, after) per dimension that :meth:`pad` adds to reach a multiple of ``block``."""
        return tuple(v for n in shape for v in (0, (-n) % block))

    def pad(self, x: torch.Tensor, block: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def codec_shape(self, header: Any) -> tuple[int, ...]:
        """The geometry the codec saw for a ``.wlc`` header (before the codec's own padding)."""
        raise NotImplementedError  # pragma: no cover

    def decoded(self, x: torch.Tensor, header: Any) -> np.ndarray:
        """Codec output for one item -> the array the header describes."""
        raise NotImplementedError  # pragma: no cover

    def count(self, shape: tuple[int, ...], channels: int = 1) -> int:
        """Pixels (images) or samples over all channels (audio) of this geometry."""
        raise NotImplementedError  # pragma: no cover

    def raw_bytes(self, shape: tuple[int, ...], channels: int) -> int:
        raise NotImplementedError  # pragma: no cover

    def rate(self, nbytes: int, shape: tuple[int, ...], sample_rate: int = 0) -> float:
        raise NotImplementedError  # pragma: no cover

    def output_formats(self) -> dict:
        """The suffixes decoded files may take (a table of :mod:`pywalloc.media`)."""
        raise NotImplementedError  # pragma: no cover


def is_gray(pixels: np.ndarray) -> bool:
    """True when ``H x W x 3`` pixels have three equal channels."""
    import numpy as np

    return bool(np.array_equal(pixels[:, :, 0], pixels[:, :, 1])
                and np.array_equal(pixels[:, :, 0], pixels[:, :, 2]))


def luma(pixels: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8 -> ``H x W`` uint8 luma, exactly as Pillow's ``convert("L")``
    (ITU-R 601-2: ``(19595 R + 38470 G + 7471 B + 2^15) >> 16``)."""
    import numpy as np

    p = pixels.astype(np.uint32)
    return ((19595 * p[:, :, 0] + 38470 * p[:, :, 1] + 7471 * p[:, :, 2] + 0x8000)
            >> 16).astype(np.uint8)


class Image(Modality):
    """8-bit RGB or gray pictures: RGB codecs take gray replicated to three channels, gray
    codecs (one channel) take it as it is; gray is restored on decoding.

    Codec input ``[B, 3, H, W]`` (gray codecs ``[B, 1, H, W]``) in [-0.5, 0.5]; mirror padding (without repeating the edge
    sample) to a multiple of the block; rate in bits per pixel; raw size 1 or 3 bytes/pixel.
    """

    id, dims, lo, hi = 1, 2, -0.5, 0.5
    rate_unit, size_unit, psnr_peak = "bpp", "pixels", 255.0
    speed_unit, speed_key = "MPix/s", "mpix_per_s"
    header_channels = (1, 3)
    has_sample_rate = False
    dtype_hint = " (uint8 images: use encode_uint8)"
    range_hint = "; for [0, 1] images (torchvision's ToTensor) pass x - 0.5"
    suffixes = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif",
                          ".ppm", ".pgm", ".pbm", ".tga"})
    output_suffix = ".png"
    sample = "kodim23.png"
    train_crop = 256
    default_preset = "rgb-16x"

    def pad(self, x: torch.Tensor, block: int) -> torch.Tensor:
        import torch

        for dim in (2, 3):
            n = x.shape[dim]
            e = (-n) % block
            if e:
                # Mirror without repeating the edge sample, folding back as often as needed
                # (works for 1-pixel-wide images where reflect padding cannot).
                period = max(2 * n - 2, 1)
                idx = torch.arange(n + e, device=x.device) % period
                idx = torch.where(idx >= n, period - idx, idx)
                x = x.index_select(dim, idx)
        return x

    def codec_shape(self, header: Any) -> tuple[int, ...]:
        return tuple(header.shape)

    def decoded(self, x: torch.Tensor, header: Any) -> np.ndarray:
        return self.from_tensor(x, header.mode)

    def count(self, shape: tuple[int, ...], channels: int = 1) -> int:
        return int(shape[0]) * int(shape[1])

    def raw_bytes(self, shape: tuple[int, ...], channels: int) -> int:
        return self.count(shape) * channels

    def rate(self, nbytes: int, shape: tuple[int, ...], sample_rate: int = 0) -> float:
        return 8.0 * nbytes / self.count(shape)

    def to_tensor(self, pixels: np.ndarray, channels: int = 3) -> tuple[torch.Tensor, str]:
        """uint8 ``[1, channels, H, W]`` (a view) and the mode to restore (``'L'`` or
        ``'RGB'``) from ``H x W x 3`` or gray ``H x W`` uint8 pixels. ``channels``: the codec's
        input channels; gray is replicated for 3, and a 1-channel codec takes gray only (or
        RGB whose three channels are equal: coded once, restored as RGB)."""
        import numpy as np
        import torch

        if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
            raise UnsupportedInputError("images must be numpy uint8 arrays (H x W x 3 or H x W); "
                                        "pywalloc.compress also takes PIL images, paths and tensors")
        if pixels.ndim == 2:
            mode = "L"
            pixels = pixels[:, :, None] if channels == 1 else np.repeat(pixels[:, :, None], 3, 2)
        elif pixels.ndim == 3 and pixels.shape[2] == 3:
            mode = "RGB"
            if channels == 1:
                if not is_gray(pixels):
                    raise UnsupportedInputError(
                        "a one-channel (gray) codec takes gray images; this one has colour "
                        "(convert it to gray first, or use an RGB codec)")
                pixels = pixels[:, :, :1]
        else:
            raise UnsupportedInputError(
                f"expected an H x W x 3 or H x W image, got shape {pixels.shape}")
        if pixels.shape[0] == 0 or pixels.shape[1] == 0:
            raise UnsupportedInputError("the image is empty")
        with warnings.catch_warnings():  # read-only arrays (PIL) warn; this tensor is only read
            warnings.simplefilter("ignore", UserWarning)
            x = torch.from_numpy(np.ascontiguousarray(pixels))
        return x.permute(2, 0, 1).unsqueeze(0), mode

    def from_tensor(self, x: torch.Tensor, mode: str = "RGB") -> np.ndarray:
        """Codec output ``[3, H, W]`` or ``[1, H, W]`` in [-0.5, 0.5] -> ``H x W x 3`` uint8
        (``H x W`` for mode ``'L'``: the rounded mean of the channels)."""
        import numpy as np
        import torch

        pix = (x + 0.5).mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
        if pix.shape[0] == 1:  # a gray codec's output
            pixels = pix[0].contiguous().numpy()
            return pixels if mode == "L" else np.repeat(pixels[:, :, None], 3, axis=2)
        pixels = pix.permute(1, 2, 0).contiguous().numpy()
        if mode == "L":
            pixels = np.round(pixels.astype(np.float32).mean(axis=2)).astype(np.uint8)
        return pixels

    def float_tensor(self, pixels: np.ndarray) -> torch.Tensor:
        """``H x W x 3`` (or gray ``H x W``) uint8 -> float ``[3, H, W]`` (``[1, H, W]``) in
        [-0.5, 0.5] (training, data sets)."""
        import numpy as np
        import torch

        a = np.array(pixels)
        a = a[:, :, None] if a.ndim == 2 else a
        return torch.from_numpy(a).permute(2, 0, 1).float().div_(255.0).sub_(0.5)

    def prepare(self, data: Any, value_range: tuple[float, float] | None = None,
                channels: int = 3) -> torch.Tensor:
        """Any image form :func:`pywalloc.compress` takes -> float ``[1, channels, H, W]`` in
        [-0.5, 0.5] (for 3 channels gray is replicated to RGB; for 1 the image must be gray,
        see :meth:`to_tensor`)."""
        from .inputs import image_pixels

        pixels = image_pixels(data, value_range)
        x, _ = self.to_tensor(pixels, channels)
        return x.float().div_(255.0).sub_(0.5)

    def read(self, path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
        """The array :func:`pywalloc.compress` takes for this file (gray stays ``H x W``), and
        the keyword arguments it needs (none for images)."""
        from .media import read_image

        pixels, info = read_image(path)
        return (pixels[:, :, 0] if info.mode == "L" else pixels), {}

    def output_formats(self) -> dict:
        """The suffixes :meth:`write` takes (a table of :mod:`pywalloc.media`)."""
        from .media import IMAGE_SUFFIXES

        return IMAGE_SUFFIXES

    def write(self, path: str | os.PathLike, data: np.ndarray, header: Any) -> None:
        """Write decoded pixels in the form the header recorded (format by suffix)."""
        from .media import write_image

        write_image(path, data, header.mode or "RGB")


class Audio(Modality):
    """Stereo float audio at 44.1 kHz (mono is duplicated; other rates are resampled), each clip
    scaled to a peak of :data:`AUDIO_PEAK`. Codec input ``[B, 2, T]`` in [-1, 1]; zero padding
    at the end; rate in kbit/s; raw size 16-bit PCM."""

    id, dims, lo, hi = 2, 1, -1.0, 1.0
    rate_unit, size_unit, psnr_peak = "kbps", "samples", 1.0
    speed_unit, speed_key = "MSamples/s", "msamples_per_s"
    header_channels = (1, 2)
    has_sample_rate = True
    dtype_hint = ""
    range_hint = "; scale the clip first (pywalloc.compress does it and stores the gain)"
    suffixes = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif",
                          ".aiff", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64"})
    output_suffix = ".wav"
    sample = "chimes.flac"
    train_crop = 32768
    default_preset = "stereo-20x"
    sample_rate = CODEC_RATE
    peak = AUDIO_PEAK

    @staticmethod
    def gain(peak: float) -> float:
        return peak_gain(peak)

    def pad(self, x: torch.Tensor, block: int) -> torch.Tensor:
        import torch.nn.functional as F

        extra = (-x.shape[-1]) % block
        return F.pad(x, (0, extra)) if extra else x

    def codec_shape(self, header: Any) -> tuple[int, ...]:
        return (self.codec_frames(header.shape[0], header.sample_rate),)

    def decoded(self, x: torch.Tensor, header: Any) -> np.ndarray:
        return self.from_tensor(x, header)

    def count(self, shape: tuple[int, ...], channels: int = 1) -> int:
        return int(shape[0]) * channels

    def raw_bytes(self, shape: tuple[int, ...], channels: int) -> int:
        return self.count(shape, channels) * 2

    def rate(self, nbytes: int, shape: tuple[int, ...], sample_rate: int = 0) -> float:
        return 8.0 * nbytes / (shape[0] / sample_rate) / 1000.0

    def codec_frames(self, frames: int, rate: int) -> int:
        """Frames after resampling to the codec rate (the resampler's output length)."""
        from .limits import codec_frames

        return codec_frames(frames, rate)

    def to_tensor(self, samples: np.ndarray, sample_rate: int) -> tuple[torch.Tensor, float]:
        """Float ``[frames, 1 or 2]`` at ``sample_rate`` -> codec input ``[1, 2, T]`` at 44.1 kHz
        scaled to the peak convention, and the gain applied."""
        import numpy as np
        import torch

        from .inputs import audio_samples, sample_rate_int
        from .media import resample_audio

        a = audio_samples(samples)
        sample_rate = sample_rate_int(sample_rate)
        stereo = a if a.shape[1] == 2 else np.repeat(a, 2, axis=1)
        if sample_rate != CODEC_RATE:
            stereo = resample_audio(stereo, int(sample_rate), CODEC_RATE)
        gain = peak_gain(np.abs(stereo).max())
        return torch.from_numpy(np.ascontiguousarray(stereo.T)).unsqueeze(0).mul_(gain), gain

    def from_tensor(self, x: torch.Tensor, header: Any) -> np.ndarray:
        """Codec output ``[2, T]`` at 44.1 kHz -> float32 ``[frames, channels]`` in the
        header's rate, length, channel count and gain."""
        import numpy as np

        from .media import resample_audio

        audio = (x / header.gain).T.contiguous().numpy()
        if header.sample_rate != CODEC_RATE:
            audio = resample_audio(audio, CODEC_RATE, header.sample_rate)
        frames = header.shape[0]
        audio = audio[:frames] if audio.shape[0] >= frames else np.pad(
            audio, ((0, frames - audio.shape[0]), (0, 0)))
        if header.channels == 1:
            audio = audio.mean(axis=1, keepdims=True)
        return np.ascontiguousarray(audio, dtype=np.float32)

    def prepare(self, data: Any, value_range: tuple[float, float] | None = None) -> torch.Tensor:
        """Numpy ``[frames, channels]`` or torch ``[channels, frames]`` audio, float or integer
        PCM -> float ``[1, 2, T]`` (mono duplicated), not peak-normalised."""
        import torch

        from .inputs import audio_samples

        samples = audio_samples(data)
        if samples.shape[1] == 1:
            samples = samples.repeat(2, axis=1)
        return torch.from_numpy(samples.T.copy())[None]

    def read(self, path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
        """Samples ``[frames, channels]`` (mono stays one channel) and the keyword arguments
        :func:`pywalloc.compress` needs: ``sample_rate`` and the source ``subtype``."""
        from .media import read_audio

        samples, rate, info = read_audio(path)
        data = samples[:, :1] if info.channels == 1 else samples
        return data, {"sample_rate": rate, "subtype": info.subtype}

    def output_formats(self) -> dict:
        """The suffixes :meth:`write` takes (a table of :mod:`pywalloc.media`)."""
        from .media import AUDIO_SUFFIXES

        return AUDIO_SUFFIXES

    def write(self, path: str | os.PathLike, data: np.ndarray, header: Any) -> None:
        """WAV or FLAC by suffix, in the source's sample format when it can hold it."""
        from pathlib import Path

        from .media import write_audio

        subtype = header.mode if header.mode in ("PCM_16", "PCM_24", "FLOAT") else None
        if Path(path).suffix.lower() == ".flac" and subtype == "FLOAT":
            subtype = "PCM_24"
        write_audio(path, data, header.sample_rate, subtype)


IMAGE = Image()
AUDIO = Audio()
ALL: tuple[Modality, ...] = (IMAGE, AUDIO)
_BY_NAME = {m.name: m for m in ALL}
_BY_ID = {m.id: m for m in ALL}


def get(which: str | int) -> Modality:
    """The modality object for a name (``"image"``/``"audio"``), a modality, or a header id."""
    found = _BY_ID.get(which) if isinstance(which, int) else _BY_NAME.get(str.__str__(which)) \
        if isinstance(which, str) else None
    if found is None:
        raise UnsupportedInputError(f"unknown modality {which!r} (choose from image, audio)")
    return found


def of_suffix(path: str | os.PathLike) -> Modality | None:
    """The modality whose input suffixes include this path's, if any."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    return next((m for m in ALL if suffix in m.suffixes), None)
