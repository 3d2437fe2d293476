"""Lossless entropy coding of int8 latents: channels are tiled into one RGB picture and stored
as lossless WebP (layout specified in docs/format.md, measurements in docs/entropy.md).

Two coders share the layout and differ in how an int8 value becomes a byte: entropy id 1 adds
128 (``v + 128``), id 2 keeps the two's-complement byte (``v & 0xFF``), which lossless WebP
codes 0.7-2.9 % smaller on trained image latents (the same on audio's)."""

from __future__ import annotations

import io
import math
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import FormatError

if TYPE_CHECKING:  # pragma: no cover - numpy and Pillow load on first pack/unpack, so that
    import numpy as np  # reading a header (walloc info) stays cheap

__all__ = [
    "CODERS",
    "DEFAULT_METHOD",
    "DEFAULT_QUALITY",
    "MAX_CHANNELS",
    "MAX_LATENT_VALUES",
    "WEBP",
    "WEBP_MAX_SIDE",
    "WEBP_RAW",
    "Coder",
    "Layout",
    "coder",
    "from_canvas",
    "layout",
    "pack",
    "to_canvas",
    "unpack",
]

# From benchmarks/entropy.py on the bundled weights' latents (docs/entropy.md): method 1 is
# 13-20 % smaller than method 0 (libwebp's low-effort path) for ~2.5x its CPU time (31 ms for
# a 2048x2048 image's rgb-16x latents); higher methods gain 1-3 % more at 2-10x the time, and
# quality barely changes the size while costing time. ``compress`` uses each preset's own
# default (``Preset.effort``); this is the default of :func:`pack` called directly.
DEFAULT_METHOD = 1
DEFAULT_QUALITY = 0
# Hard cap on the number of latent values a payload may decode to (guards memory: 2^28 int8
# values is 256 MiB, and the canvas of such a payload is ~89 MPix, within Pillow's bomb limit).
MAX_LATENT_VALUES = 2**28
# Bounds the grid search in layout() (one step per tile column), so that a hostile shape cannot
# stall the decoder; the presets use at most 108 channels.
MAX_CHANNELS = 3 * 1024
WEBP_MAX_SIDE = 16383  # VP8L stores width-1 and height-1 in 14 bits; libwebp caps at 16383
# int8 -> uint8 by adding 128 (entropy id 1), done as XOR with the sign bit on the raw bytes
# (same result); id 2 uses offset 0, the raw bytes. Padding planes, empty tiles and fold tails
# hold latent 0 (the byte ``offset``), a constant that WebP codes in a handful of bits.
_OFFSET = 128
# What Pillow raises on malformed or hostile image data; all are reported as FormatError.
_PIL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, MemoryError)


@dataclass(frozen=True)
class Layout:
    """Where each latent value sits in the WebP canvas (derived from the latent shape alone)."""

    channels: int  # C
    length: int  # values per channel (H*W or T)
    tile_h: int
    tile_w: int
    folded: bool  # True: each channel's values are laid in raster order on tile_h x tile_w
    grid_h: int  # tile rows
    grid_w: int  # tile columns

    @property
    def tiles(self) -> int:
        return -(-self.channels // 3)

    @property
    def size(self) -> tuple[int, int]:
        """Canvas (height, width) in pixels."""
        return self.grid_h * self.tile_h, self.grid_w * self.tile_w


def _grid(tiles: int, th: int, tw: int) -> tuple[int, int] | None:
    """Grid (rows, cols) of ``tiles`` tiles of th x tw: within WebP limits, roughly square."""
    best: tuple[tuple[bool, int, float, int], int, int] | None = None
    for gw in range(1, tiles + 1):
        gh = -(-tiles // gw)
        if gh * th > WEBP_MAX_SIDE or gw * tw > WEBP_MAX_SIDE:
            continue
        aspect = round(abs(math.log((gh * th) / (gw * tw))), 9)
        # Any aspect within 2:1 counts as square enough; among those, fewest empty tiles.
        key = (aspect > math.log(2) + 1e-6, gh * gw - tiles, aspect, gw)
        if best is None or key < best[0]:
            best = (key, gh, gw)
    return None if best is None else (best[1], best[2])


def _check_shape(shape: Any, max_values: int) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise FormatError(f"latent shape must be a tuple of integers, got {shape!r}") from None
    if len(dims) not in (2, 3) or min(dims) < 1:
        raise FormatError(f"latent shape must be [C, T] or [C, H, W] with sizes >= 1, got {dims}")
    if dims[0] > MAX_CHANNELS:
        raise FormatError(f"{dims[0]} latent channels is above the limit of {MAX_CHANNELS}")
    if math.prod(dims) > max_values:
        raise FormatError(
            f"latent shape {dims} has {math.prod(dims)} values, above the cap of {max_values}"
        )
    return dims


def layout(shape: tuple[int, ...], max_values: int = MAX_LATENT_VALUES) -> Layout:
    """Canvas layout of latents of ``shape`` ([C, H, W] or [C, T]); FormatError if impossible."""
    dims = _check_shape(shape, max_values)
    c = dims[0]
    tiles = -(-c // 3)
    if len(dims) == 3:
        h, w = dims[1:]
        if h <= WEBP_MAX_SIDE and w <= WEBP_MAX_SIDE:
            grid = _grid(tiles, h, w)
            if grid is not None:
                return Layout(c, h * w, h, w, False, *grid)
    # 1-D signals, and images too elongated to fit: raster-order fold into near-square tiles.
    n = math.prod(dims[1:])
    tw = math.isqrt(n - 1) + 1  # ceil(sqrt(n))
    th = -(-n // tw)
    grid = _grid(tiles, th, tw)
    if grid is None:
        raise FormatError(f"latent shape {dims} does not fit in one WebP picture")
    return Layout(c, n, th, tw, True, *grid)


def _as_int8(z: Any) -> np.ndarray:
    import numpy as np

    if hasattr(z, "detach"):  # torch.Tensor, without importing torch here
        z = z.detach().cpu().numpy()
    z = np.asarray(z)
    if z.dtype != np.int8:
        raise ValueError(f"latents must be int8, got dtype {z.dtype}")
    return z


def _check_offset(offset: int) -> None:
    if offset not in (0, _OFFSET):
        raise ValueError(f"offset must be 0 or {_OFFSET}, got {offset!r}")


def to_canvas(z: Any, offset: int = _OFFSET) -> np.ndarray:
    """The ``rows x cols x 3`` uint8 picture that :func:`pack` compresses (see :func:`layout`);
    each latent ``v`` is the byte ``(v + offset) & 0xFF``."""
    _check_offset(offset)
    import numpy as np

    z = _as_int8(z)
    lay = layout(z.shape)
    u = np.ascontiguousarray(z).view(np.uint8).reshape(lay.channels, -1)
    th, tw, gw = lay.tile_h, lay.tile_w, lay.grid_w
    if lay.folded and th * tw != lay.length:  # ragged last row: pad each channel's tail
        padded = np.zeros((lay.channels, th * tw), np.uint8)  # raw byte 0 = latent 0
        padded[:, : lay.length] = u
        u = padded
    planes = u.reshape(lay.channels, th, tw)
    canvas = np.empty((lay.grid_h, th, gw, tw, 3), np.uint8)
    # One plane at a time: the inner loop then runs along a contiguous row of the plane (writing
    # every third byte), ~6x faster than interleaving three planes in one strided copy.
    for c in range(lay.channels):
        k = c // 3
        np.bitwise_xor(planes[c], np.uint8(offset), out=canvas[k // gw, :, k % gw, :, c % 3])
    for c in range(lay.channels, 3 * lay.grid_h * gw):  # padding planes and empty tiles
        k = c // 3
        canvas[k // gw, :, k % gw, :, c % 3] = offset
    rows, cols = lay.size
    return canvas.reshape(rows, cols, 3)


def pack(z: Any, method: int = DEFAULT_METHOD, quality: int = DEFAULT_QUALITY,
         offset: int = _OFFSET) -> bytes:
    """Encode int8 latents ``[C, H, W]`` or ``[C, T]`` (numpy array or torch tensor) as lossless
    WebP bytes. ``method`` (0-6) and ``quality`` (0-100) trade encoder time for size; decoding
    needs only the bytes, the shape and the ``offset`` (128: entropy id 1, 0: id 2). Every int8
    value round-trips exactly."""
    if not 0 <= method <= 6 or not 0 <= quality <= 100:
        raise ValueError(f"method must be in 0..6 and quality in 0..100, got {method}, {quality}")
    from PIL import Image

    canvas = to_canvas(z, offset)
    rows, cols = canvas.shape[:2]
    img = Image.frombuffer("RGB", (cols, rows), canvas, "raw", "RGB", 0, 1)
    buf = io.BytesIO()
    img.save(buf, format="WEBP", lossless=True, quality=quality, method=method, exact=True)
    return buf.getvalue()


def unpack(data: bytes, shape: tuple[int, ...], max_values: int = MAX_LATENT_VALUES,
           offset: int = _OFFSET) -> np.ndarray:
    """Decode :func:`pack` output (made with the same ``offset``) back to int8 latents of
    ``shape``. Raises FormatError if the bytes are not a lossless WebP of the expected canvas,
    or if ``shape`` holds more than ``max_values`` values (checked before anything is
    decoded)."""
    import numpy as np
    from PIL import Image

    _check_offset(offset)
    lay = layout(shape, max_values)
    rows, cols = lay.size
    # pack writes the simple lossless form: RIFF header, then a single VP8L chunk. Anything else
    # (lossy VP8, extended VP8X with animation or metadata) was not made by pack.
    if data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8L":
        raise FormatError("payload is not a simple lossless WebP (RIFF/WEBP/VP8L) image")
    # The RIFF size counts every byte after the first 8: anything beyond is not from pack.
    riff_end = 8 + int.from_bytes(data[4:8], "little")
    if len(data) != riff_end:
        raise FormatError(f"payload has {len(data) - riff_end} bytes after the WebP picture"
                          if len(data) > riff_end else "payload WebP picture is truncated")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=["WEBP"])
            if img.size != (cols, rows):  # checked on the header, before decoding pixels
                raise FormatError(
                    f"WebP payload is {img.size[0]}x{img.size[1]}, expected {cols}x{rows} "
                    f"for latents of shape {tuple(shape)}"
                )
            if img.mode != "RGB":
                raise FormatError(f"WebP payload has mode {img.mode}, expected RGB")
            img.load()
            canvas = np.asarray(img)
    except FormatError:
        raise
    except (*_PIL_ERRORS, Image.DecompressionBombError) as exc:
        raise FormatError(f"payload is not a valid WebP image: {exc}") from None
    return from_canvas(canvas, shape, max_values, offset)


def from_canvas(
    canvas: np.ndarray, shape: tuple[int, ...], max_values: int = MAX_LATENT_VALUES,
    offset: int = _OFFSET,
) -> np.ndarray:
    """Inverse of :func:`to_canvas`: int8 latents of ``shape`` from the decoded picture."""
    import numpy as np

    _check_offset(offset)
    lay = layout(shape, max_values)
    if canvas.shape != (*lay.size, 3) or canvas.dtype != np.uint8:
        raise FormatError(f"canvas {canvas.dtype} {canvas.shape} does not match latent shape "
                          f"{tuple(shape)}")
    th, tw, gw = lay.tile_h, lay.tile_w, lay.grid_w
    canvas = canvas.reshape(lay.grid_h, th, gw, tw, 3)
    out = np.empty((lay.channels, th, tw), np.uint8)
    for c in range(lay.channels):  # plane by plane, as in to_canvas
        k = c // 3
        np.bitwise_xor(canvas[k // gw, :, k % gw, :, c % 3], np.uint8(offset), out=out[c])
    flat = out.view(np.int8).reshape(lay.channels, th * tw)
    if lay.folded and th * tw != lay.length:
        flat = np.ascontiguousarray(flat[:, : lay.length])
    return flat.reshape(tuple(int(d) for d in shape))


# -- registry: the header's entropy id picks the coder -------------------------------------------
@dataclass(frozen=True)
class Coder:
    """An entropy coder of int8 latents, as the ``.wlc`` header's entropy byte names it.

    ``pack(z, method=...)`` -> bytes; ``unpack(data, shape, max_values=...)`` -> int8 array.
    """

    id: int
    name: str
    pack: Callable[..., bytes]
    unpack: Callable[..., np.ndarray]


def _pack_raw(z: Any, method: int = DEFAULT_METHOD, quality: int = DEFAULT_QUALITY) -> bytes:
    return pack(z, method, quality, offset=0)


def _unpack_raw(data: bytes, shape: tuple[int, ...],
                max_values: int = MAX_LATENT_VALUES) -> np.ndarray:
    return unpack(data, shape, max_values, offset=0)


WEBP = Coder(1, "lossless-webp-tiles", pack, unpack)
WEBP_RAW = Coder(2, "lossless-webp-tiles-raw", _pack_raw, _unpack_raw)
CODERS: dict[int, Coder] = {c.id: c for c in (WEBP, WEBP_RAW)}


def coder(entropy_id: int) -> Coder:
    """The coder registered under a header's entropy id; FormatError if there is none."""
    try:
        return CODERS[entropy_id]
    except (KeyError, TypeError):
        raise FormatError(f"unknown entropy coding id {entropy_id!r} (this pywalloc knows "
                          f"{sorted(CODERS)})") from None
