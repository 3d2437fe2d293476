"""PNG read and written in horizontal strips, so that a huge picture never needs more than one
strip beside its pixel array (Pillow holds a whole picture at 4 bytes per pixel, and converting
it to numpy copies it again).

Reading: the file's zlib stream of filtered scanlines is inflated incrementally; each strip of
scanlines is handed to Pillow as a small PNG of its own (the same header and palette chunks,
one stored-zlib IDAT), preceded by the previous strip's last row, unfiltered (filter type 0),
so that "up" and "Paeth" filters of the strip's first row see the right neighbours. Pillow
does the unfiltering and the mode conversion, exactly as for the whole file. This needs the
raw bytes of that last row, so it serves 8-bit, non-interlaced files only
(:func:`strippable` says which); others go through Pillow whole.

Writing: Paeth-filtered scanlines (computed with numpy, a strip at a time) through one zlib
stream, in IHDR / IDAT / IEND chunks. Standard library and numpy only.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import IO

import numpy as np

__all__ = ["SIGNATURE", "STRIP_BYTES", "read_strips", "strippable", "write_png"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Raw scanline bytes per strip (reading and writing): a few MB keeps the working set small
# while each strip stays large enough for zlib and Pillow to run at full speed.
STRIP_BYTES = 1 << 22
# Channels per PNG colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA).
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_IDAT_BYTES = 1 << 20  # largest IDAT chunk written


class _Broken(ValueError):
    """A PNG that cannot be read strip-wise (reported like Pillow's errors)."""


def _chunks(fh: IO[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of each chunk after the signature, CRC checked, up to IEND."""
    while True:
        head = fh.read(8)
        if len(head) < 8:
            raise _Broken("truncated PNG file (no IEND chunk)")
        length, kind = struct.unpack(">I4s", head)
        data = fh.read(length)
        crc = fh.read(4)
        if len(data) < length or len(crc) < 4:
            raise _Broken("truncated PNG file")
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + data):
            raise _Broken(f"broken PNG file (bad CRC in {kind!r} chunk)")
        yield kind, data
        if kind == b"IEND":
            return


def _header(fh: IO[bytes]) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) from the IHDR chunk, or None when the
    file does not start like a PNG."""
    if fh.read(8) != SIGNATURE:
        return None
    head = fh.read(8 + 13)
    if len(head) < 21 or head[4:8] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head[8:])
    return width, height, depth, colour, interlace


# Text chunks whose keyword can carry an orientation that Pillow applies (XMP, raw EXIF).
_ORIENTING_TEXT = (b"XML:com.adobe.xmp", b"Raw profile type exif", b"Raw profile type APP1")


def strippable(path: str) -> bool:
    """True when :func:`read_strips` reads this file: an 8-bit, non-interlaced, single-frame
    PNG without EXIF or XMP metadata (their orientation applies to the whole picture)."""
    try:
        with open(path, "rb") as fh:
            head = _header(fh)
            if head is None:
                return False
            width, height, depth, colour, interlace = head
            if depth != 8 or colour not in _CHANNELS or interlace or not width or not height:
                return False
            fh.seek(8)
            while True:  # chunk headers only: the data is skipped, not read
                got = fh.read(8)
                if len(got) < 8:
                    return False
                length, kind = struct.unpack(">I4s", got)
                if kind in (b"eXIf", b"acTL"):  # EXIF, or an animation
                    return False
                if kind in (b"tEXt", b"zTXt", b"iTXt"):
                    if fh.read(min(length, 80)).split(b"\0", 1)[0] in _ORIENTING_TEXT:
                        return False
                    fh.seek(-min(length, 80), 1)
                if kind == b"IEND":
                    return True
                fh.seek(length + 4, 1)
    except (OSError, struct.error):
        return False


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def read_strips(path: str, strip_bytes: int | None = None) -> Iterator[object]:
    """Pillow images of consecutive row strips of a :func:`strippable` PNG, loaded, in the
    modes Pillow gives the whole file (ValueError for a malformed file)."""
    from PIL import Image

    with open(path, "rb") as fh:
        head = _header(fh)
        if head is None:
            raise _Broken("not a PNG file")
        width, height, _, colour, _ = head
        channels = _CHANNELS[colour]
        row = 1 + width * channels  # filter byte + samples (8-bit)
        rows_per_strip = max(1, (strip_bytes or STRIP_BYTES) // row)
        fh.seek(8)
        extra: list[bytes] = []  # the chunks before the pixels (PLTE, tRNS, gAMA...): copied
        inflate = zlib.decompressobj()
        pending = bytearray()
        prev: bytes | None = None  # last row of the previous strip, unfiltered
        done = 0

        def strip(raw: bytes, n: int) -> object:
            nonlocal prev
            body = raw if prev is None else b"\x00" + prev + raw
            rows = n + (prev is not None)
            ihdr = struct.pack(">IIBBBBB", width, rows, 8, colour, 0, 0, 0)
            png = (SIGNATURE + _chunk(b"IHDR", ihdr) + b"".join(extra)
                   + _chunk(b"IDAT", zlib.compress(body, 0)) + _chunk(b"IEND", b""))
            img = Image.open(io.BytesIO(png))
            img.load()
            last = np.asarray(img)[-1]  # the raw samples of 8-bit modes (L, LA, P, RGB, RGBA)
            prev = np.ascontiguousarray(last, dtype=np.uint8).tobytes()
            if len(prev) != width * channels:
                raise _Broken(f"unexpected Pillow mode {img.mode} for PNG colour type {colour}")
            return img.crop((0, 1, width, rows)) if rows > n else img

        def emit() -> Iterator[object]:
            nonlocal done
            while done < height and len(pending) >= min(rows_per_strip, height - done) * row:
                n = min(rows_per_strip, height - done)
                yield strip(bytes(pending[: n * row]), n)
                del pending[: n * row]
                done += n

        seen_pixels = False
        for kind, data in _chunks(fh):
            if kind == b"IHDR":
                continue
            if kind != b"IDAT":
                if kind == b"IEND":
                    break
                if not seen_pixels:
                    extra.append(_chunk(kind, data))
                continue
            seen_pixels = True
            tail = data
            while done < height:
                # Bounded output per call: a hostile IDAT cannot inflate to more than a strip.
                want = min((height - done) * row - len(pending), 2 * rows_per_strip * row)
                if want <= 0:
                    break
                out = inflate.decompress(tail, want)
                tail = inflate.unconsumed_tail
                pending += out
                yield from emit()
                if not out and not tail:
                    break
            if done == height:
                break
        if done < height:
            raise _Broken(f"truncated PNG file ({done} of {height} rows)")


def _paeth_filter(rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """Paeth-filtered bytes (with the leading filter byte 4) of ``rows`` ``[n, width*bpp]``
    uint8, ``above`` being the row before the first (zeros at the top of the picture)."""
    x = rows.astype(np.int16)
    b = np.concatenate([above[None].astype(np.int16), x[:-1]])
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    out = np.empty((x.shape[0], x.shape[1] + 1), np.uint8)
    out[:, 0] = 4
    out[:, 1:] = (x - pred).astype(np.uint8)  # modulo 256
    return out


def write_png(fh: IO[bytes], height: int, width: int, gray: bool,
              strips: Iterable[np.ndarray], level: int = 6) -> None:
    """Write an 8-bit gray (``gray``) or RGB PNG to ``fh`` from ``strips``: consecutive uint8
    row blocks ``[rows, width]`` (gray) or ``[rows, width, 3]`` that cover ``height`` rows."""
    bpp = 1 if gray else 3
    fh.write(SIGNATURE)
    fh.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0 if gray else 2,
                                         0, 0, 0)))
    deflate = zlib.compressobj(level)
    above = np.zeros(width * bpp, np.uint8)
    buffered = bytearray()
    written = 0

    def flush(data: bytes, final: bool = False) -> None:
        buffered.extend(data)
        while len(buffered) >= _IDAT_BYTES or (final and buffered):
            fh.write(_chunk(b"IDAT", bytes(buffered[:_IDAT_BYTES])))
            del buffered[:_IDAT_BYTES]

    for block in strips:
        block = np.asarray(block, dtype=np.uint8)
        if block.shape[1:] != ((width,) if gray else (width, 3)):
            raise ValueError(f"strip of shape {block.shape} does not fit a {width}-pixel "
                             f"{'gray' if gray else 'RGB'} picture")
        flat = block.reshape(block.shape[0], width * bpp)
        step = max(1, STRIP_BYTES // (width * bpp))
        for top in range(0, flat.shape[0], step):
            rows = flat[top:top + step]
            flush(deflate.compress(_paeth_filter(rows, above, bpp).tobytes()))
            above = rows[-1].copy()
        written += block.shape[0]
    if written != height:
        raise ValueError(f"strips hold {written} rows, the picture {height}")
    flush(deflate.flush(), final=True)
    fh.write(_chunk(b"IEND", b""))
