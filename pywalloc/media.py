"""The I/O layer: listing inputs, reading and normalising images and audio (every input becomes
8-bit RGB or float32 stereo, with what is needed to restore its original form), and the one
atomic writer every output goes through (temporary file + rename, normal permissions)."""

from __future__ import annotations

import math
import os
import re
import secrets
import struct
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import numpy as np
import soundfile as sf
from PIL import Image, ImageOps, UnidentifiedImageError

from . import modality as _modality
from . import pngstrips
from .errors import MediaError, UnsupportedInputError
from .modality import AUDIO, IMAGE, Modality

__all__ = [
    "AUDIO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "MAX_FRAMES",
    "MAX_PIXELS",
    "AudioInfo",
    "ImageInfo",
    "OutputExistsError",
    "atomic_write",
    "audio_info",
    "check_output",
    "detect_modality",
    "iter_inputs",
    "read_audio",
    "read_image",
    "resample_audio",
    "resample_factors",
    "write_audio",
    "write_image",
]

MAX_PIXELS = 2**28  # same cap as the .wlc container
MAX_FRAMES = 2**28
# Pictures from this many pixels up are read and written as PNG strip by strip when they can
# be (pywalloc.pngstrips): no whole-picture copy in Pillow beside the pixel array.
STREAM_PIXELS = 2**24
# Output formats by suffix, with the save options used for each.
IMAGE_SUFFIXES: dict[str, tuple[str, dict]] = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".webp": ("WEBP", {"lossless": True}),  # decoded pictures are already lossy: keep them as is
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
    ".bmp": ("BMP", {}),
}
AUDIO_SUFFIXES: dict[str, str] = {".wav": "WAV", ".flac": "FLAC"}
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
# What Pillow raises on malformed files (including broken EXIF): reported as MediaError.
_PIL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, MemoryError, TypeError, KeyError,
               IndexError, struct.error, ZeroDivisionError)
# The largest up/down factors accepted by resample_audio; every pair of common rates
# (8 kHz .. 192 kHz, 44.1 kHz and 48 kHz families) stays below it.
_MAX_RESAMPLE_FACTOR = 1000


@dataclass(frozen=True)
class ImageInfo:
    """How an input image was normalised, to restore its form on decoding."""

    mode: Literal["L", "RGB"]  # write the decoded picture back as this mode
    source_mode: str  # Pillow mode as opened (e.g. 'P', 'RGBA', 'I;16', 'CMYK')
    format: str | None  # Pillow format name ('PNG', 'JPEG', ...)
    height: int  # after EXIF orientation
    width: int
    bits: int  # bits per sample of the source (8 or 16)
    alpha_dropped: bool
    orientation: int  # EXIF orientation that was applied (1: none)


@dataclass(frozen=True)
class AudioInfo:
    """What an input audio file was, before conversion to float32 stereo."""

    channels: int  # 1 (mono, restored as mono) or 2
    sample_rate: int  # of the file, before any resampling
    frames: int  # of the file, before any resampling
    format: str  # libsndfile container name ('WAV', 'FLAC', 'OGG', 'MP3', ...)
    subtype: str  # libsndfile sample format ('PCM_16', 'FLOAT', 'VORBIS', ...)


def _rawmode(img: Image.Image) -> str:
    """Raw mode of the first tile (e.g. 'RGB;16B'): the only trace of 16-bit RGB PNG samples,
    which Pillow reduces to 8 bits when loading."""
    if not img.tile:
        return ""
    args = img.tile[0].args
    raw = args[0] if isinstance(args, tuple) and args else args
    return raw if isinstance(raw, str) else ""


def _to_rgb8(img: Image.Image, raw: str, name: str) -> tuple[np.ndarray, bool, bool, int]:
    """(HxWx3 uint8, gray source, alpha dropped, source bits) from a loaded Pillow image whose
    file's raw mode was ``raw``."""
    mode = img.mode
    gray = mode in _GRAY_MODES or raw.startswith(("LA;", "L;", "I;"))
    alpha = mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info)
    bits = 16 if (";16" in raw or mode.startswith("I")) else 8
    if mode == "F":
        raise UnsupportedInputError(f"cannot read image '{name}': floating-point images "
                                    "are not supported")
    if mode.startswith("I"):
        # 16-bit (or 32-bit integer) grayscale: scale 0..65535 to 0..255 with rounding.
        wide = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)
        plane = ((wide * 255 + 32767) // 65535).astype(np.uint8)
    elif gray:
        plane = np.asarray(img.convert("L"))
    else:
        if alpha and mode == "P":
            img = img.convert("RGBA")  # Pillow resolves palette transparency through RGBA
        plane = np.asarray(img.convert("RGB"))
    if plane.ndim == 2:
        plane = np.repeat(plane[:, :, None], 3, axis=2)
    return np.ascontiguousarray(plane), gray, alpha, bits


def _read_png_strips(name: str, height: int, width: int, raw: str
                     ) -> tuple[np.ndarray, bool, bool, int]:
    """:func:`_to_rgb8` of a strippable PNG, strip by strip into one uint8 array (the same
    values: the conversion is per pixel)."""
    arr = np.empty((height, width, 3), np.uint8)
    top, gray, alpha, bits = 0, False, False, 8
    for strip in pngstrips.read_strips(name):
        with strip:
            plane, gray, alpha, bits = _to_rgb8(strip, raw, name)
        arr[top:top + plane.shape[0]] = plane
        top += plane.shape[0]
    return arr, gray, alpha, bits


def read_image(
    path: str | os.PathLike, max_pixels: int = MAX_PIXELS
) -> tuple[np.ndarray, ImageInfo]:
    """Read any Pillow-readable image as ``H x W x 3`` uint8 RGB.

    EXIF orientation is applied. Grayscale (1-, 8- and 16-bit) is replicated to three channels and
    reported as ``mode='L'``; alpha is dropped (colour kept as stored, not composited) and
    16-bit samples reduced to 8 bits, each with a warning; palette, CMYK and YCbCr images are
    converted to RGB; only the first frame of an animation is used (with a warning).
    """
    name = os.fspath(path)
    # Our budget replaces Pillow's bomb check (a warning above its limit, an error above twice
    # it), which would otherwise refuse or warn about pictures the caller allowed.
    bomb_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = max(int(max_pixels), 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(name)
        with img:
            width, height = img.size
            if width * height > max_pixels:
                raise UnsupportedInputError(f"cannot read image '{name}': {width}x{height} "
                                            f"pixels is above the limit of {max_pixels} (raise it "
                                            "with max_pixels= or --max-pixels)")
            frames = getattr(img, "n_frames", 1)
            source_mode, fmt, raw = img.mode, img.format, _rawmode(img)  # raw: before load
            if fmt == "PNG" and width * height >= STREAM_PIXELS and frames == 1 \
                    and pngstrips.strippable(name):
                img.close()
                arr, gray, alpha, bits = _read_png_strips(name, height, width, raw)
                orientation = 1
            else:
                img.load()
                orientation = img.getexif().get(0x0112, 1)
                orientation = orientation if orientation in range(1, 9) else 1
                img = ImageOps.exif_transpose(img)
                arr, gray, alpha, bits = _to_rgb8(img, raw, name)
    except MediaError:
        raise
    except FileNotFoundError:
        raise MediaError(f"cannot read image '{name}': file not found") from None
    except UnidentifiedImageError:
        raise UnsupportedInputError(f"cannot read image '{name}': not a recognised image "
                                    "format") from None
    except Image.DecompressionBombError as exc:
        raise UnsupportedInputError(f"cannot read image '{name}': {exc}") from None
    except _PIL_ERRORS as exc:
        raise MediaError(f"cannot read image '{name}': {exc}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = bomb_limit
    if frames > 1:
        warnings.warn(f"'{name}' has {frames} frames; only the first is used", stacklevel=2)
    if alpha:
        warnings.warn(f"'{name}': alpha channel dropped (transparency is not encoded)",
                      stacklevel=2)
    if bits > 8:
        warnings.warn(f"'{name}': {bits}-bit samples reduced to 8 bits", stacklevel=2)
    info = ImageInfo("L" if gray else "RGB", source_mode, fmt, arr.shape[0], arr.shape[1], bits,
                     alpha, orientation)
    return arr, info


class OutputExistsError(MediaError, FileExistsError):
    """An output file exists and overwriting was not asked for."""


# Temporary files of atomic_write: ".<name>.<8 hex digits>.tmp" beside the target. One older
# than STALE_TEMP_SECONDS was orphaned by a killed process (a live write keeps touching it).
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.tmp")
STALE_TEMP_SECONDS = 3600.0


def clean_stale_temps(path: str | os.PathLike, max_age: float = STALE_TEMP_SECONDS) -> int:
    """Remove the temporary files that :func:`atomic_write` left beside ``path`` when a process
    was killed before its rename (our own naming only, older than ``max_age`` seconds);
    returns how many were removed. Errors are ignored: cleaning is best effort."""
    target = Path(path)
    removed = 0
    now = time.time()
    try:
        candidates = list(target.parent.iterdir())
    except OSError:
        return 0
    for p in candidates:
        m = _TEMP_NAME.fullmatch(p.name)
        if not m or m.group("name") != target.name:
            continue
        try:
            if p.is_file() and not p.is_symlink() and now - p.stat().st_mtime > max_age:
                p.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[IO[bytes]], None],
                 what: str = "file", overwrite: bool = True) -> None:
    """Write ``data`` (bytes, text, or a function writing to a binary file object) to ``path``
    through a temporary file in the same folder, renamed over ``path`` at the end, so that a
    failure never leaves a half-written output. Permissions are the usual ones for a new file
    (0666 minus the umask). With ``overwrite=False`` an existing ``path`` is an
    :class:`OutputExistsError`, checked again at the rename. Other failures are MediaError."""
    target = Path(path)
    if not overwrite and target.exists():
        raise OutputExistsError(f"'{os.fspath(path)}' exists (use --force to overwrite)")
    clean_stale_temps(target)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open with 0o666 lets the umask set permissions, as for any new file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode() if isinstance(data, str) else data)
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if the target appeared meanwhile
            tmp.unlink()
    except MediaError:
        tmp.unlink(missing_ok=True)
        raise
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise OutputExistsError(f"'{os.fspath(path)}' exists (use --force to overwrite)") from None
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:
        tmp.unlink(missing_ok=True)
        raise MediaError(f"cannot write {what} '{os.fspath(path)}': {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def iter_inputs(root: str | os.PathLike, modality: Modality | str | None = None
                ) -> list[Path]:
    """The input files under ``root``, sorted: ``root`` itself if it is a file, else every file
    below it (recursively, hidden files and folders skipped) whose suffix is one of the
    modality's (of either modality when ``modality`` is None). Empty if none."""
    root = Path(root)
    if root.is_file():
        return [root]
    kinds = _modality.ALL if modality is None else (_modality.get(modality),)
    suffixes = frozenset().union(*(m.suffixes for m in kinds))
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def no_inputs(root: str | os.PathLike, modality: Modality | str) -> str:
    """The message for a data folder with no input files of ``modality``, the same wherever
    a command lists its inputs (evaluation, training, data-set encoding); where the folder
    holds the other modality's files, it names a codec that takes them."""
    want = _modality.get(modality)
    text = f"no {want} files under '{os.fspath(root)}'"
    if not Path(root).is_dir():  # iter_inputs takes a file as itself, of any modality
        return text
    for other in _modality.ALL:
        if other is want:
            continue
        found = len(iter_inputs(root, other))
        if found:
            text += (f"; it holds {found} {other} file{'s' if found > 1 else ''}: use "
                     f"an {other} codec such as {other.default_preset}")
    return text


def _suffix_format(path: str | os.PathLike, table: dict, what: str) -> object:
    suffix = Path(path).suffix.lower()
    if suffix not in table:
        raise MediaError(f"cannot write {what} '{os.fspath(path)}': unsupported suffix "
                         f"'{suffix}' (use {', '.join(table)})")
    return table[suffix]


def check_output(path: str | os.PathLike, modality) -> None:
    """Raise :class:`MediaError` unless ``path``'s suffix names a format that
    :func:`write_image` or :func:`write_audio` writes for this modality (``IMAGE``/``AUDIO``):
    checked before a decode, so that a wrong name does not waste it."""
    _suffix_format(path, modality.output_formats(), modality.name)


def write_image(path: str | os.PathLike, array: np.ndarray, mode: str = "RGB") -> None:
    """Atomically write ``H x W x 3`` (or ``H x W``) uint8 pixels; the format follows the suffix
    (:data:`IMAGE_SUFFIXES`). ``mode='L'`` stores grayscale, the rounded mean of the channels
    (for a replicated-gray picture this averages out the codec's per-channel error)."""
    fmt, options = _suffix_format(path, IMAGE_SUFFIXES, "image")  # type: ignore[misc]
    arr = np.asarray(array)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"expected an HxWx3 or HxW uint8 array, got {arr.dtype} {arr.shape}")
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', got {mode!r}")
    if fmt == "PNG" and arr.shape[0] * arr.shape[1] >= STREAM_PIXELS:
        # Strip by strip: no whole-picture copy (Pillow's image is 4 bytes per pixel).
        h, w = arr.shape[:2]
        step = max(1, pngstrips.STRIP_BYTES // (3 * w))

        def strips():
            for top in range(0, h, step):
                block = arr[top:top + step]
                if mode == "L" and block.ndim == 3:
                    block = ((block.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
                elif mode == "RGB" and block.ndim == 2:
                    block = np.repeat(block[:, :, None], 3, axis=2)
                yield block

        atomic_write(path, lambda fh: pngstrips.write_png(fh, h, w, mode == "L", strips()),
                     "image")
        return
    if mode == "L" and arr.ndim == 3:
        arr = ((arr.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
    elif mode == "RGB" and arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    img = Image.fromarray(np.ascontiguousarray(arr))  # 2-D uint8 -> 'L', HxWx3 -> 'RGB'
    atomic_write(path, lambda fh: img.save(fh, format=fmt, **options), "image")


def resample_factors(sr_from: int, sr_to: int) -> tuple[int, int]:
    """(up, down) of the polyphase resampler; UnsupportedInputError when either is above 1000
    (checked before any work, so that a hostile rate costs nothing)."""
    g = math.gcd(sr_from, sr_to)
    up, down = sr_to // g, sr_from // g
    if max(up, down) > _MAX_RESAMPLE_FACTOR:
        raise UnsupportedInputError(f"cannot resample {sr_from} Hz to {sr_to} Hz (ratio "
                                    f"{up}/{down} is impractical); convert the file first")
    return up, down


def resample_audio(data: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Polyphase resampling along axis 0 (:func:`pywalloc.resample.resample_poly`: the
    Kaiser-windowed FIR that ``scipy.signal.resample_poly`` uses, computed in float64);
    UnsupportedInputError for rate pairs whose reduced ratio needs factors above 1000."""
    if sr_from == sr_to:
        return data
    up, down = resample_factors(sr_from, sr_to)
    from .resample import resample_poly

    return resample_poly(data, up, down)


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """What :func:`read_audio` would report for a file, without reading its samples."""
    name = os.fspath(path)
    try:
        meta = sf.info(name)
    except (sf.SoundFileError, OSError, ValueError, TypeError) as exc:
        raise MediaError(f"cannot read audio '{name}': {exc}") from None
    return AudioInfo(meta.channels, int(meta.samplerate), int(meta.frames), meta.format,
                     meta.subtype)


def read_audio(
    path: str | os.PathLike, sample_rate: int | None = None, start: int = 0,
    frames: int | None = None,
) -> tuple[np.ndarray, int, AudioInfo]:
    """Read audio (WAV, FLAC, OGG Vorbis/Opus, MP3, AIFF... via libsndfile) as float32
    ``[frames, 2]``: mono is duplicated to both channels (``info.channels == 1`` to restore it),
    more than two channels or no samples raise UnsupportedInputError. ``start``/``frames``
    read only that window of the file (``info.frames`` still counts the whole file). With
    ``sample_rate``, the audio is resampled to it (:func:`resample_audio`); returns (data, rate
    of data, info)."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise MediaError(f"cannot read audio '{name}': file not found")
    try:
        meta = sf.info(name)
        if meta.channels > 2:
            raise UnsupportedInputError(f"cannot read audio '{name}': it has {meta.channels} "
                                        "channels; only mono and stereo are supported")
        if meta.frames > MAX_FRAMES:
            raise UnsupportedInputError(f"cannot read audio '{name}': {meta.frames} frames is "
                                        f"above the limit of {MAX_FRAMES}")
        data, rate = sf.read(name, start=start, frames=-1 if frames is None else frames,
                             dtype="float32", always_2d=True)
    except MediaError:
        raise
    except (sf.SoundFileError, OSError, ValueError, TypeError, MemoryError) as exc:
        raise MediaError(f"cannot read audio '{name}': {exc}") from None
    if data.shape[0] == 0:
        raise UnsupportedInputError(f"cannot read audio '{name}': it contains no samples")
    if not np.isfinite(data).all():
        raise UnsupportedInputError(f"cannot read audio '{name}': it contains NaN or infinite "
                                    "samples")
    info = AudioInfo(data.shape[1], int(rate), int(meta.frames), meta.format, meta.subtype)
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    if sample_rate is not None and sample_rate != rate:
        data, rate = resample_audio(data, int(rate), int(sample_rate)), int(sample_rate)
    return np.ascontiguousarray(data), int(rate), info


def write_audio(
    path: str | os.PathLike, data: np.ndarray, sample_rate: int, subtype: str | None = None
) -> None:
    """Atomically write float samples ``[frames, channels]`` (or ``[frames]``) as WAV or FLAC by
    suffix. ``subtype`` defaults to 'PCM_16'; for integer subtypes the samples are clipped to
    [-1, 1] first (libsndfile would otherwise wrap around on overflow)."""
    fmt = str(_suffix_format(path, AUDIO_SUFFIXES, "audio"))
    subtype = subtype or "PCM_16"
    if not sf.check_format(fmt, subtype):
        raise MediaError(f"cannot write audio '{os.fspath(path)}': subtype {subtype!r} is not "
                         f"available for {fmt}")
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] not in (1, 2) or arr.shape[0] == 0:
        raise ValueError(f"expected [frames, 1 or 2] samples, got shape {arr.shape}")
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sample_rate!r}")
    if subtype.startswith(("PCM", "ALAC", "ULAW", "ALAW")):
        arr = np.clip(arr, -1.0, 1.0)

    def save(fh: IO[bytes]) -> None:
        sf.write(fh, arr, sample_rate, subtype=subtype, format=fmt)

    atomic_write(path, save, "audio")


def _sniff(head: bytes) -> Modality | None:
    """Modality from a file's first bytes, for the common containers."""
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"RF64"):
        return AUDIO
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return IMAGE
    if head[:4] in (b"fLaC", b"OggS", b"FORM", b".snd", b"caff", b"RF64") or head[:3] == b"ID3":
        return AUDIO
    if head[:3] == b"\xff\xd8\xff":  # JPEG start of image
        return IMAGE
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame sync
        return AUDIO
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:2] in (b"BM", b"II", b"MM") or head[:3] == b"GIF":
        return IMAGE
    return None


def detect_modality(path: str | os.PathLike) -> Modality:
    """:data:`IMAGE` or :data:`AUDIO` for an input file: by its first bytes when it exists and
    they are recognised, else by its suffix; UnsupportedInputError when neither tells."""
    name = os.fspath(path)
    found: Modality | None
    try:
        with open(name, "rb") as fh:
            found = _sniff(fh.read(16))
        if found is None:  # less common formats: ask the decoders themselves
            try:
                with Image.open(name):
                    found = IMAGE
            except _PIL_ERRORS:
                found = AUDIO if _readable_audio(name) else None
    except OSError:
        found = None
    if found is None:
        found = _modality.of_suffix(name)
        if found is None and Path(name).suffix.lower() in Image.registered_extensions():
            found = IMAGE
    if found is None:
        raise UnsupportedInputError(f"cannot tell whether '{name}' is an image or audio")
    return found


def _readable_audio(name: str) -> bool:
    try:
        sf.info(name)
    except (sf.SoundFileError, OSError, ValueError, TypeError):
        return False
    return True
