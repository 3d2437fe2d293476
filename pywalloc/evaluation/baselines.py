"""Classical codec baselines: WebP, JPEG, JPEG 2000 and AVIF through Pillow for images; Opus,
Vorbis and MP3 through libsndfile (soundfile) for audio. Sizes are real encoded byte counts.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from PIL import Image, features

from . import BaselineCodecError

__all__ = [
    "AUDIO_BASELINES",
    "IMAGE_BASELINES",
    "AudioBaseline",
    "AudioBracket",
    "AudioPoint",
    "ImageBaseline",
    "ImagePoint",
    "audio_baseline",
    "bracket_audio_bitrate",
    "image_baseline",
    "log_rate_interpolate",
    "match_audio_bitrate",
    "match_image_bpp",
    "sweep_audio",
    "sweep_image",
]


# ============================================================================ images
@dataclass(frozen=True)
class ImageBaseline:
    """A Pillow codec. ``quality`` is the codec's own knob: higher means more bits, except for
    JPEG 2000 where it is the target compression ratio (``quality_layers``, 'rates' mode)."""

    name: str
    pil_feature: str
    qualities: tuple[float, ...]  # default sweep, ordered from fewest to most bits
    q_min: float
    q_max: float
    integer_quality: bool
    _save: Callable[[Image.Image, io.BytesIO, float], None]

    @property
    def available(self) -> bool:
        return bool(features.check(self.pil_feature))

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        """Encode an HxWx3 uint8 image; returns the complete file bytes."""
        arr = np.asarray(img)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise BaselineCodecError(
                f"{self.name}: expected HxWx3 uint8, got {arr.dtype} {arr.shape}"
            )
        if not self.available:
            raise BaselineCodecError(f"{self.name}: this Pillow build lacks {self.pil_feature}")
        buf = io.BytesIO()
        try:
            self._save(Image.fromarray(arr, "RGB"), buf, quality)
        except (OSError, ValueError) as exc:
            raise BaselineCodecError(
                f"{self.name} encode failed at quality {quality}: {exc}"
            ) from exc
        return buf.getvalue()

    def decode(self, blob: bytes) -> np.ndarray:
        """Decode file bytes to an HxWx3 uint8 image."""
        try:
            with Image.open(io.BytesIO(blob)) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise BaselineCodecError(f"{self.name} decode failed: {exc}") from exc

    def bits_order(self, quality: float) -> float:
        """A key that grows with the bitrate (JPEG 2000's ratio runs the other way)."""
        return -quality if self.name == "jpeg2000" else quality


def _save_webp(im: Image.Image, buf: io.BytesIO, q: float) -> None:
    im.save(buf, format="WEBP", quality=int(q), method=4)


def _save_jpeg(im: Image.Image, buf: io.BytesIO, q: float) -> None:
    im.save(buf, format="JPEG", quality=int(q), optimize=True)


def _save_jpeg2000(im: Image.Image, buf: io.BytesIO, ratio: float) -> None:
    # Irreversible CDF 9/7 path with the RGB->YCbCr component transform (Pillow's default
    # mct=0 codes R, G, B independently and loses ~4 dB), one layer at the requested ratio.
    im.save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[float(ratio)],
            irreversible=True, mct=1)


def _save_avif(im: Image.Image, buf: io.BytesIO, q: float) -> None:
    im.save(buf, format="AVIF", quality=int(q))


_Q_SWEEP = (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 75.0, 90.0, 95.0)

IMAGE_BASELINES: dict[str, ImageBaseline] = {
    "webp": ImageBaseline("webp", "webp", _Q_SWEEP, 0, 100, True, _save_webp),
    "jpeg": ImageBaseline("jpeg", "jpg", _Q_SWEEP, 1, 95, True, _save_jpeg),
    "jpeg2000": ImageBaseline(
        "jpeg2000", "jpg_2000", (400.0, 200.0, 100.0, 60.0, 40.0, 24.0, 14.0, 8.0, 5.0),
        2.0, 1000.0, False, _save_jpeg2000,
    ),
    "avif": ImageBaseline("avif", "avif", _Q_SWEEP, 0, 100, True, _save_avif),
}


def image_baseline(name: str) -> ImageBaseline:
    """Look up an image baseline by name (webp, jpeg, jpeg2000, avif)."""
    try:
        return IMAGE_BASELINES[name]
    except KeyError:
        raise BaselineCodecError(
            f"unknown image baseline {name!r}; choose from {', '.join(IMAGE_BASELINES)}"
        ) from None


@dataclass(frozen=True)
class ImagePoint:
    """One encode/decode of an image: real size, decoded pixels and wall times (seconds)."""

    codec: str
    quality: float
    nbytes: int
    bpp: float
    decoded: np.ndarray
    enc_s: float
    dec_s: float


def _image_point(codec: ImageBaseline, img: np.ndarray, quality: float) -> ImagePoint:
    t0 = time.perf_counter()
    blob = codec.encode(img, quality)
    t1 = time.perf_counter()
    decoded = codec.decode(blob)
    t2 = time.perf_counter()
    h, w = img.shape[:2]
    return ImagePoint(codec.name, quality, len(blob), 8.0 * len(blob) / (h * w), decoded,
                      t1 - t0, t2 - t1)


def sweep_image(
    img: np.ndarray, codec: ImageBaseline, qualities: Sequence[float] | None = None
) -> Iterator[ImagePoint]:
    """Encode/decode ``img`` at each quality (default: the codec's sweep) for an RD curve."""
    for q in qualities if qualities is not None else codec.qualities:
        yield _image_point(codec, img, q)


def match_image_bpp(
    img: np.ndarray, codec: ImageBaseline, target_bpp: float, known: Sequence[ImagePoint] = ()
) -> ImagePoint:
    """The operating point whose bits per pixel is closest to ``target_bpp``.

    JPEG 2000 is asked for the ratio ``24 / target_bpp`` directly; the integer-quality codecs
    are bisected over their quality range (bitrate grows with quality) and the nearer of the
    two bracketing points is returned. ``known`` points of the same image and codec (e.g. a
    sweep) are reused and narrow the bracket, saving encodes.
    """
    if target_bpp <= 0:
        raise BaselineCodecError(f"target bpp must be positive, got {target_bpp}")
    if not codec.integer_quality:
        ratio = min(max(24.0 / target_bpp, codec.q_min), codec.q_max)
        return _image_point(codec, img, ratio)
    cache: dict[int, ImagePoint] = {int(p.quality): p for p in known if p.codec == codec.name}
    lo, hi = int(codec.q_min), int(codec.q_max)
    for q, p in cache.items():
        if p.bpp < target_bpp:
            lo = max(lo, q)
        else:
            hi = min(hi, q)

    def at(q: int) -> ImagePoint:
        if q not in cache:
            cache[q] = _image_point(codec, img, q)
        return cache[q]

    while hi - lo > 1:
        mid = (lo + hi) // 2
        if at(mid).bpp < target_bpp:
            lo = mid
        else:
            hi = mid
    return min((at(lo), at(hi)), key=lambda p: abs(p.bpp - target_bpp))


# ============================================================================ audio
@dataclass(frozen=True)
class AudioBaseline:
    """A libsndfile codec. ``level`` is libsndfile's compression level in [0, 1): 0 gives the
    most bits. Opus only runs at 48 kHz, so other rates are resampled there and back."""

    name: str
    container: str
    subtype: str
    levels: tuple[float, ...]  # default sweep, fewest bits first
    level_max: float
    native_rates: tuple[int, ...] | None = None  # None: any rate

    @property
    def available(self) -> bool:
        return self.subtype in sf.available_subtypes(self.container)

    def coding_rate(self, sample_rate: int) -> int:
        if self.native_rates is None or sample_rate in self.native_rates:
            return sample_rate
        return max(self.native_rates)

    def encode(self, audio: np.ndarray, sample_rate: int, level: float) -> bytes:
        """Encode float audio shaped [frames, channels]; returns the complete file bytes."""
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim != 2:
            raise BaselineCodecError(f"{self.name}: expected [frames, channels], got {x.shape}")
        if not self.available:
            raise BaselineCodecError(f"{self.name}: libsndfile here has no {self.subtype}")
        if not 0.0 <= level <= self.level_max:
            raise BaselineCodecError(f"{self.name}: level must be in [0, {self.level_max}]")
        rate = self.coding_rate(sample_rate)
        if rate != sample_rate:
            x = _resample(x, sample_rate, rate)
        buf = io.BytesIO()
        try:
            sf.write(buf, x, rate, format=self.container, subtype=self.subtype,
                     compression_level=float(level))
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise BaselineCodecError(f"{self.name} encode failed at level {level}: {exc}") from exc
        return buf.getvalue()

    def decode(self, blob: bytes, sample_rate: int, frames: int) -> np.ndarray:
        """Decode to float32 [frames, channels] at ``sample_rate``, cropped/padded to ``frames``."""
        try:
            y, rate = sf.read(io.BytesIO(blob), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise BaselineCodecError(f"{self.name} decode failed: {exc}") from exc
        if rate != sample_rate:
            y = _resample(y, rate, sample_rate)
        out = np.zeros((frames, y.shape[1]), np.float32)
        n = min(frames, y.shape[0])
        out[:n] = y[:n]
        return out


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    # The library's own polyphase resampler, so baselines and codecs resample alike.
    from ..media import resample_audio

    return resample_audio(x, src, dst)


_LEVELS = (0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)

AUDIO_BASELINES: dict[str, AudioBaseline] = {
    "opus": AudioBaseline("opus", "OGG", "OPUS", _LEVELS, 1.0, (8000, 12000, 16000, 24000, 48000)),
    "vorbis": AudioBaseline("vorbis", "OGG", "VORBIS", _LEVELS, 1.0),
    # libsndfile rejects level 1.0 for MP3.
    "mp3": AudioBaseline("mp3", "MP3", "MPEG_LAYER_III", _LEVELS, 0.99),
}


def audio_baseline(name: str) -> AudioBaseline:
    """Look up an audio baseline by name (opus, vorbis, mp3)."""
    try:
        return AUDIO_BASELINES[name]
    except KeyError:
        raise BaselineCodecError(
            f"unknown audio baseline {name!r}; choose from {', '.join(AUDIO_BASELINES)}"
        ) from None


@dataclass(frozen=True)
class AudioPoint:
    """One encode/decode of a clip: real size, decoded audio and wall times (seconds)."""

    codec: str
    level: float
    nbytes: int
    kbps: float
    decoded: np.ndarray
    enc_s: float
    dec_s: float


def _audio_point(codec: AudioBaseline, x: np.ndarray, sr: int, level: float) -> AudioPoint:
    t0 = time.perf_counter()
    blob = codec.encode(x, sr, level)
    t1 = time.perf_counter()
    decoded = codec.decode(blob, sr, x.shape[0])
    t2 = time.perf_counter()
    kbps = 8.0 * len(blob) / (x.shape[0] / sr) / 1000.0
    return AudioPoint(codec.name, level, len(blob), kbps, decoded, t1 - t0, t2 - t1)


def sweep_audio(
    audio: np.ndarray, sample_rate: int, codec: AudioBaseline,
    levels: Sequence[float] | None = None,
) -> Iterator[AudioPoint]:
    """Encode/decode at each compression level (default: the codec's sweep)."""
    for level in levels if levels is not None else codec.levels:
        yield _audio_point(codec, audio, sample_rate, min(level, codec.level_max))


def _bisect_audio(
    audio: np.ndarray, sample_rate: int, codec: AudioBaseline, target_kbps: float,
    iterations: int,
) -> list[AudioPoint]:
    """Every point a bisection on the level tries (the level lowers the bitrate as it grows)."""
    lo, hi = 0.0, codec.level_max
    tried = [_audio_point(codec, audio, sample_rate, lv) for lv in (lo, hi)]
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        p = _audio_point(codec, audio, sample_rate, mid)
        tried.append(p)
        if p.kbps > target_kbps:
            lo = mid
        else:
            hi = mid
    return tried


def match_audio_bitrate(
    audio: np.ndarray, sample_rate: int, codec: AudioBaseline, target_kbps: float,
    iterations: int = 7,
) -> AudioPoint:
    """The compression level whose real kbps is closest to ``target_kbps`` (bisection on the
    level, which lowers the bitrate as it grows; the closest point tried is returned)."""
    return bracket_audio_bitrate(audio, sample_rate, codec, target_kbps, iterations).nearest


@dataclass(frozen=True)
class AudioBracket:
    """The points of one rate match: ``nearest`` (closest kbps), ``below`` and ``above`` (the
    closest tried at or under and at or over the target; ``nearest`` has the kbps of one of
    them). Outside the range the bisection reached, all three are the nearest point."""

    target_kbps: float
    nearest: AudioPoint
    below: AudioPoint
    above: AudioPoint

    def at_rate(self, metric: Callable[[np.ndarray], float]) -> float:
        """``metric`` of the decoded audio, interpolated linearly in log-rate between ``below``
        and ``above`` to the target kbps (never extrapolated). Codecs with coarse bitrate
        steps (libsndfile's Opus) then give a figure that does not jump when the target moves
        across the midpoint between two steps."""
        lo, hi = self.below, self.above
        if hi.kbps <= lo.kbps:
            return float(metric(self.nearest.decoded))
        return log_rate_interpolate(lo.kbps, float(metric(lo.decoded)), hi.kbps,
                                    float(metric(hi.decoded)), self.target_kbps)


def log_rate_interpolate(rate_a: float, value_a: float, rate_b: float, value_b: float,
                         rate: float) -> float:
    """The value at ``rate`` on the straight line through (log rate_a, value_a) and
    (log rate_b, value_b); ``rate`` is clamped to [rate_a, rate_b] (rates > 0)."""
    if rate_a > rate_b:
        rate_a, value_a, rate_b, value_b = rate_b, value_b, rate_a, value_a
    if not (rate_a > 0 and rate_b > 0):
        raise ValueError(f"rates must be positive, got {rate_a} and {rate_b}")
    if rate_b == rate_a:
        return value_a
    t = (np.log(min(max(rate, rate_a), rate_b)) - np.log(rate_a)) / (np.log(rate_b) - np.log(rate_a))
    return float(value_a + t * (value_b - value_a))


def bracket_audio_bitrate(
    audio: np.ndarray, sample_rate: int, codec: AudioBaseline, target_kbps: float,
    iterations: int = 7,
) -> AudioBracket:
    """The bisection of :func:`match_audio_bitrate`, with the tried points that bracket
    ``target_kbps`` kept (no extra encodes)."""
    tried = _bisect_audio(audio, sample_rate, codec, target_kbps, iterations)
    nearest = min(tried, key=lambda p: abs(p.kbps - target_kbps))
    under = [p for p in tried if p.kbps <= target_kbps]
    over = [p for p in tried if p.kbps >= target_kbps]
    if not under or not over:
        return AudioBracket(target_kbps, nearest, nearest, nearest)
    below = max(under, key=lambda p: p.kbps)
    above = min(over, key=lambda p: p.kbps)
    return AudioBracket(target_kbps, nearest, below, above)
