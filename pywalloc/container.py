"""The ``.wlc`` file format: a small versioned binary header (magic, version, metadata, payload
length, CRC-32) around the entropy-coded latents. Byte layout: docs/format.md."""

from __future__ import annotations

import math
import operator
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from . import entropy as _entropy
from . import modality as _modality
from .errors import FormatError, UnsupportedInputError
from .modality import Modality

__all__ = [
    "ENTROPY_WEBP",
    "MAGIC",
    "MAX_SAMPLES",
    "MIN_SIZE",
    "VERSION",
    "WEIGHTS_HASH_LEN",
    "Encoded",
    "Header",
    "inspect",
    "read",
    "write",
]

MAGIC = b"\x89WLC"  # non-ASCII first byte: a text file or a 7-bit transfer cannot produce it
VERSION = 1
ENTROPY_WEBP = _entropy.WEBP.id  # payload: lossless WebP tiles of pywalloc.entropy
WEIGHTS_HASH_LEN = 8
# Cap on pixels (H*W) or audio frames, on padded geometry and on latent values, so that a tiny
# hostile file cannot make a decoder allocate gigabytes.
MAX_SAMPLES = 2**28
MAX_PRESET_LEN = 64
MAX_MODE_LEN = 16
MAX_SAMPLE_RATE = 1_000_000
MAX_METADATA_LEN = 1024  # far above any valid v1 metadata block (< 200 bytes)
_PREFIX = struct.Struct("<4sBBBBI")  # magic, version, modality, entropy, reserved, metadata len
_U32 = struct.Struct("<I")
MIN_SIZE = _PREFIX.size + 4 + 4  # prefix, payload length, CRC (empty metadata and payload)


@dataclass(frozen=True)
class Header:
    """Everything needed to decode a payload, besides the codec weights themselves.

    ``shape`` is the original geometry: ``(H, W)`` for images, ``(frames,)`` for audio, at the
    original ``sample_rate``. ``padding`` holds (before, after) per dimension of ``shape``
    (image: top, bottom, left, right; audio: start, end) as applied by the codec; empty means
    no padding. ``mode`` is the original image mode to restore (``'L'``/``'RGB'``) or, for audio,
    the source's soundfile subtype (may be empty). ``gain`` is the normalisation applied before
    encoding (audio per-clip gain; 1.0 for images). ``weights_hash`` identifies the weights:
    8 bytes, or given as 16 hex digits (``Codec.weight_hash``); stored and returned as bytes.
    """

    modality: str
    preset: str
    weights_hash: bytes
    shape: tuple[int, ...]
    channels: int
    latent_shape: tuple[int, ...]
    padding: tuple[int, ...] = ()
    sample_rate: int = 0
    mode: str = ""
    gain: float = 1.0
    entropy: int = ENTROPY_WEBP

    def __post_init__(self) -> None:
        # Normalise numpy scalars and lists so that headers compare equal after a round trip;
        # values that do not convert are left as they are for _validate to report.
        def norm(name: str, fn: Any) -> None:
            try:
                object.__setattr__(self, name, fn(getattr(self, name)))
            except (TypeError, ValueError):
                pass

        if isinstance(self.modality, str):  # the modality object (still equal to its name)
            try:
                object.__setattr__(self, "modality", _modality.get(self.modality))
            except UnsupportedInputError:
                pass
        for name in ("shape", "latent_shape", "padding"):
            norm(name, lambda v: tuple(operator.index(d) for d in v))
        if self.padding == ():
            object.__setattr__(self, "padding", (0,) * (2 * len(self.shape)))
        for name in ("channels", "sample_rate", "entropy"):
            norm(name, operator.index)
        norm("gain", lambda g: float(g) if isinstance(g, (int, float)) or hasattr(g, "dtype")
             else g)
        # Accept Codec.weight_hash as is: a string of 16 hex digits is the same 8 bytes.
        norm("weights_hash", lambda v: bytes.fromhex(v) if isinstance(v, str) else bytes(v))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _validate(h: Header, exc: type[Exception]) -> None:
    """Raise ``exc`` with a readable message if ``h`` is not a valid v1 header."""
    if not isinstance(h.modality, _modality.Modality):
        raise exc(f"modality must be 'image' or 'audio', got {h.modality!r}")
    m = h.modality
    if h.entropy not in _entropy.CODERS:
        raise exc(f"unknown entropy coding id {h.entropy}")
    texts = (("preset", h.preset, MAX_PRESET_LEN), ("mode", h.mode, MAX_MODE_LEN))
    for name, value, limit in texts:
        if not isinstance(value, str) or len(value.encode()) > limit or not value.isprintable():
            raise exc(f"{name} must be printable text of at most {limit} bytes, got {value!r}")
    if not h.preset:
        raise exc("preset name is empty")
    if len(h.weights_hash) != WEIGHTS_HASH_LEN:
        raise exc(f"weights hash must be {WEIGHTS_HASH_LEN} bytes, got {len(h.weights_hash)}")
    ndim, lat_ndim = m.dims, m.dims + 1
    what = "(H, W)" if ndim == 2 else "(frames,)"
    if len(h.shape) != ndim or not all(_is_int(d) and d >= 1 for d in h.shape):
        raise exc(f"{h.modality} shape must be {what} with sizes >= 1, got {h.shape}")
    if len(h.latent_shape) != lat_ndim or not all(_is_int(d) and d >= 1 for d in h.latent_shape):
        raise exc(f"{h.modality} latent shape must have {lat_ndim} sizes >= 1, "
                  f"got {h.latent_shape}")
    if len(h.padding) != 2 * ndim or not all(_is_int(p) and 0 <= p < 2**32 for p in h.padding):
        raise exc(f"padding must be {2 * ndim} non-negative integers, got {h.padding}")
    padded = [d + h.padding[2 * i] + h.padding[2 * i + 1] for i, d in enumerate(h.shape)]
    for name, dims in (("shape", h.shape), ("padded shape", padded), ("latent", h.latent_shape)):
        if math.prod(dims) > MAX_SAMPLES:
            raise exc(f"{name} {tuple(dims)} holds {math.prod(dims)} values, above {MAX_SAMPLES}")
    allowed = m.header_channels
    if h.channels not in allowed:
        raise exc(f"{h.modality} channels must be one of {allowed}, got {h.channels}")
    timed = m.has_sample_rate  # audio records its sample rate; images record 0
    if not timed and h.sample_rate != 0:
        raise exc(f"image headers have sample rate 0, got {h.sample_rate}")
    if timed and not (_is_int(h.sample_rate) and 1 <= h.sample_rate <= MAX_SAMPLE_RATE):
        raise exc(f"sample rate must be in 1..{MAX_SAMPLE_RATE} Hz, got {h.sample_rate}")
    if not isinstance(h.gain, float) or not math.isfinite(h.gain) or h.gain <= 0:
        raise exc(f"gain must be a finite positive float, got {h.gain!r}")


def _metadata(h: Header) -> bytes:
    out = bytearray()
    for text in (h.preset, h.mode):
        raw = text.encode()
        out += bytes([len(raw)]) + raw
    out += h.weights_hash
    out += struct.pack("<BId", h.channels, h.sample_rate, h.gain)
    out += bytes([len(h.shape)]) + struct.pack(f"<{len(h.shape)}I", *h.shape)
    out += struct.pack(f"<{len(h.padding)}I", *h.padding)
    out += bytes([len(h.latent_shape)]) + struct.pack(f"<{len(h.latent_shape)}I", *h.latent_shape)
    return bytes(out)


def write(header: Header, payload: bytes) -> bytes:
    """Serialise ``header`` and ``payload`` to the bytes of a ``.wlc`` file (ValueError if the
    header is invalid)."""
    _validate(header, ValueError)
    if len(payload) >= 2**32:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a 32-bit length")
    meta = _metadata(header)
    modality = header.modality.id
    body = b"".join((
        _PREFIX.pack(MAGIC, VERSION, modality, header.entropy, 0, len(meta)),
        meta,
        _U32.pack(len(payload)),
        payload,
    ))
    return body + _U32.pack(zlib.crc32(body))


class _Cursor:
    """Reads fields from the metadata block; running past its end is a FormatError."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise FormatError(f"metadata field '{what}' runs past the end of the metadata block")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def text(self, what: str) -> str:
        (n,) = self.unpack("<B", what + " length")
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{what} is not valid UTF-8: {raw!r}") from None

    def dims(self, n: int, what: str) -> tuple[int, ...]:
        return self.unpack(f"<{n}I", what)


def read(blob: bytes | bytearray | memoryview) -> tuple[Header, bytes]:
    """Parse a ``.wlc`` file; FormatError (with what is wrong) on any malformed input."""
    blob = bytes(blob)
    if blob[:4] != MAGIC[: len(blob[:4])]:
        raise FormatError("not a .wlc file (bad magic bytes)")
    if len(blob) < _PREFIX.size:
        raise FormatError(f"truncated .wlc file: {len(blob)} bytes, the header alone needs 12")
    _, version, modality, entropy, reserved, meta_len = _PREFIX.unpack_from(blob)
    if version != VERSION:
        raise FormatError(f"unsupported .wlc version {version} (this pywalloc reads {VERSION})")
    if meta_len > MAX_METADATA_LEN:
        raise FormatError(f"metadata length {meta_len} is implausible (max {MAX_METADATA_LEN})")
    at = _PREFIX.size + meta_len
    if len(blob) < at + 4:
        raise FormatError(f"truncated .wlc file: {len(blob)} bytes, header needs {at + 4}")
    (payload_len,) = _U32.unpack_from(blob, at)
    total = at + 4 + payload_len + 4
    if len(blob) < total:
        raise FormatError(f"truncated .wlc file: {len(blob)} bytes, expected {total}")
    if len(blob) > total:
        raise FormatError(f"{len(blob) - total} unexpected bytes after the end of the .wlc data")
    (crc,) = _U32.unpack_from(blob, total - 4)
    if zlib.crc32(blob[: total - 4]) != crc:
        raise FormatError("checksum mismatch: the .wlc file is corrupted")
    if modality not in (m.id for m in _modality.ALL):
        raise FormatError(f"unknown modality id {modality}")
    kind = _modality.get(modality)
    if entropy not in _entropy.CODERS:
        raise FormatError(f"unknown entropy coding id {entropy}")
    if reserved != 0:
        raise FormatError(f"reserved byte is {reserved}, expected 0")
    cur = _Cursor(blob[_PREFIX.size : at])
    preset = cur.text("preset")
    mode = cur.text("mode")
    weights_hash = cur.take(WEIGHTS_HASH_LEN, "weights hash")
    channels, sample_rate, gain = cur.unpack("<BId", "channels, sample rate, gain")
    (ndim,) = cur.unpack("<B", "shape rank")
    if ndim != kind.dims:
        raise FormatError(f"{kind} shape has rank {ndim}, expected {kind.dims}")
    shape = cur.dims(ndim, "shape")
    padding = cur.dims(2 * ndim, "padding")
    (lat_ndim,) = cur.unpack("<B", "latent rank")
    if lat_ndim != ndim + 1:
        raise FormatError(f"latent shape has rank {lat_ndim}, expected {ndim + 1}")
    latent_shape = cur.dims(lat_ndim, "latent shape")
    if cur.pos != len(cur.data):
        raise FormatError(f"{len(cur.data) - cur.pos} unexpected bytes at the end of the metadata")
    header = Header(
        modality=kind, preset=preset, weights_hash=weights_hash, shape=shape,
        channels=channels, latent_shape=latent_shape, padding=padding, sample_rate=sample_rate,
        mode=mode, gain=gain, entropy=entropy,
    )
    _validate(header, FormatError)
    return header, blob[at + 4 : total - 4]


@dataclass(frozen=True)
class Encoded:
    """A compressed item: the ``.wlc`` bytes and their header (what ``walloc`` reports)."""

    blob: bytes
    header: Header

    @property
    def modality(self) -> Modality:
        return _modality.get(self.header.modality)

    @property
    def raw_bytes(self) -> int:
        """Uncompressed size: 8-bit pixels for images, 16-bit PCM for audio."""
        return self.modality.raw_bytes(self.header.shape, self.header.channels)

    @property
    def rate(self) -> float:
        """Bits per pixel (images) or kbit/s (audio), header and CRC included."""
        return self.modality.rate(len(self.blob), self.header.shape, self.header.sample_rate)

    @property
    def compression_ratio(self) -> float:
        return self.raw_bytes / len(self.blob)

    @property
    def payload_bytes(self) -> int:
        """Bytes of entropy-coded latents (the rest is header and checksum)."""
        return len(read(self.blob)[1])


def peek_modality(head: bytes):
    """The modality a ``.wlc`` file declares in its first 12 bytes, or None when they are not
    the start of a ``.wlc`` file: enough to name an output without reading the whole file."""
    if len(head) < _PREFIX.size or head[:4] != MAGIC:
        return None
    ids = {m.id: m for m in _modality.ALL}
    return ids.get(head[5])


def inspect(blob: bytes) -> Encoded:
    """Parse ``.wlc`` bytes without decoding: the header and the rate figures."""
    header, _ = read(blob)
    return Encoded(bytes(blob), header)
