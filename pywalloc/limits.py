"""Budgets checked before any work: how many pixels or audio frames one call may encode or decode,
which sample rates and gains are plausible, so that a tiny hostile file costs nothing."""

from __future__ import annotations

import math

from .errors import FormatError, UnsupportedInputError
from .modality import CODEC_RATE, peak_gain

_FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max, without importing numpy

__all__ = [
    "CODEC_RATE",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_PIXELS",
    "MAX_GAIN",
    "MAX_RATE",
    "MIN_GAIN",
    "MIN_RATE",
    "check_decode",
    "check_encode_audio",
    "check_encode_image",
    "check_file",
    "codec_frames",
]

# Default budgets. Tiled decoding keeps memory near one tile, so these bound time rather than
# memory: 2^27 pixels (134 MP, e.g. 11585²) and 2^28 frames at 44.1 kHz (101 minutes), a few
# minutes of CPU each. Callers raise them with max_pixels / max_frames (CLI: --max-pixels,
# --max-frames) up to the .wlc caps.
DEFAULT_MAX_PIXELS = 2**27
DEFAULT_MAX_FRAMES = 2**28
# A decompression bomb is a small file that asks for a lot of work. Unless the caller sets a
# budget, a file may ask for FREE_VALUES pixels or frames, plus PER_BYTE more per byte of the
# file (0.002 bit per pixel). Photographs and music compress far less than that; a flat
# picture or silence can compress further, and then decodes above 2^24 values only with an
# explicit budget. A flat 8192² picture in 129 bytes is refused.
FREE_VALUES = 2**24
PER_BYTE = 4096
# Sample rates pywalloc encodes and decodes: beyond this range the resampling to 44.1 kHz
# turns a small file into a huge one (45 Hz is a 980x upsample) or discards nearly all of it.
MIN_RATE = 1000
MAX_RATE = 768_000
# The encoder's gain is peak_gain(peak): largest for silence, smallest for samples at float32's
# maximum, so no encoder writes a gain outside this range.
MAX_GAIN = peak_gain(0.0)
MIN_GAIN = peak_gain(_FLOAT32_MAX)


def codec_frames(frames: int, rate: int) -> int:
    """Frames after resampling ``frames`` at ``rate`` to the codec rate (the resampler's
    output length, ``ceil(frames * 44100 / rate)``)."""
    from .resample import output_frames

    g = math.gcd(CODEC_RATE, rate)
    return output_frames(frames, CODEC_RATE // g, rate // g)


def _check_rate(rate: int, exc: type[Exception], what: str) -> None:
    from .media import resample_factors

    if not MIN_RATE <= rate <= MAX_RATE:
        raise exc(f"{what} sample rate {rate} Hz is outside {MIN_RATE}..{MAX_RATE} Hz")
    try:
        resample_factors(rate, CODEC_RATE)
    except UnsupportedInputError as err:
        raise exc(str(err)) from None


def _over(what: str, n: int, budget: int, flag: str, extra: str = "") -> str:
    return (f"{what} {n} {'pixels' if flag == 'pixels' else 'frames'}{extra}, above the budget "
            f"of {budget} (raise it with max_{flag}= or --max-{flag})")


def check_encode_image(height: int, width: int, max_pixels: int | None) -> None:
    """UnsupportedInputError if an image of this size is above the encode budget."""
    budget = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if height * width > budget:
        raise UnsupportedInputError(_over(f"the image is {width}x{height}:", height * width,
                                          budget, "pixels"))


def check_encode_audio(frames: int, rate: int, max_frames: int | None) -> None:
    """UnsupportedInputError for an implausible rate or too many frames after resampling."""
    _check_rate(int(rate), UnsupportedInputError, "the audio's")
    budget = DEFAULT_MAX_FRAMES if max_frames is None else int(max_frames)
    n = codec_frames(int(frames), int(rate))
    if n > budget:
        raise UnsupportedInputError(_over("the audio needs", n, budget, "frames",
                                          f" at {CODEC_RATE} Hz"))


def check_decode(header, file_bytes: int, max_pixels: int | None = None,
                 max_frames: int | None = None) -> None:
    """FormatError if decoding ``header`` (from a file of ``file_bytes`` bytes) would exceed the
    budget, or if its rate or gain is one no encoder writes. Runs on the header alone."""
    if header.modality == "image":
        n = math.prod(d + header.padding[2 * i] + header.padding[2 * i + 1]
                      for i, d in enumerate(header.shape))
        budget, flag, what = max_pixels, "pixels", "the file asks for"
    else:
        _check_rate(header.sample_rate, FormatError, "header")
        if not MIN_GAIN <= header.gain <= MAX_GAIN:
            raise FormatError(f"header gain {header.gain!r} is outside what the encoder writes "
                              f"({MIN_GAIN:.3g}..{MAX_GAIN:.3g})")
        n = max(codec_frames(header.shape[0], header.sample_rate), header.shape[0])
        budget, flag, what = max_frames, "frames", "the file asks for"
    if budget is None:
        cap = DEFAULT_MAX_PIXELS if flag == "pixels" else DEFAULT_MAX_FRAMES
        budget = min(cap, FREE_VALUES + PER_BYTE * int(file_bytes))
        if n > budget:
            raise FormatError(_over(what, n, budget, flag, f" from {file_bytes} bytes"))
    elif n > budget:
        raise FormatError(_over(what, n, int(budget), flag))


def check_file(path, modality, max_pixels: int | None, max_frames: int | None) -> None:
    """The encode budget checked on an input file's header (image size, audio frames and
    rate), before its samples are read; UnsupportedInputError names the file."""
    import os
    import warnings

    import soundfile as sf
    from PIL import Image

    name = os.fspath(path)
    try:
        if modality == "image":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    with Image.open(name) as img:
                        width, height = img.size
                finally:
                    Image.MAX_IMAGE_PIXELS = limit
            check_encode_image(height, width, max_pixels)
        else:
            meta = sf.info(name)
            check_encode_audio(meta.frames, meta.samplerate, max_frames)
    except UnsupportedInputError as exc:
        raise UnsupportedInputError(f"cannot encode '{name}': {exc}") from None
    except (OSError, ValueError, RuntimeError, sf.SoundFileError):
        return  # unreadable: the reader reports it with its own message
