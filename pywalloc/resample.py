"""Polyphase audio resampling by a rational factor ``up/down``, without scipy.

The filter is the one the ``.wlc`` format names (docs/format.md): a linear-phase low-pass FIR
of ``2*half + 1`` taps, ``half = 10 * max(up, down)``, cut off at ``1/max(up, down)`` of the
Nyquist frequency, a Kaiser window of beta 5, normalised to unit DC gain and multiplied by
``up``. The signal is taken as zero outside its frames, and output sample ``n`` is centred on
input position ``n * down / up``:

    y[n] = sum_k h[n*down - k*up + half] * x[k],    0 <= n < ceil(frames * up / down)

This is the same operation as ``scipy.signal.resample_poly(x, up, down)`` with its default
window (scipy computes float32 input in float32, this in float64); the tests compare the
two. The sum runs in blocks: ``up`` consecutive outputs draw on a window of inputs that moves
by ``down`` frames per block, so every block is the same small matrix product, the taps laid
out as an ``up x blocks*down`` matrix. That matrix is mostly zeros (each output reads about
``20 * max(up, down) / up`` inputs), so it is cut into bands of consecutive outputs, each
with only the input columns its outputs read, and each band is one BLAS product over all
blocks of a chunk (the input read in place, rows ``down`` frames apart): for 48 -> 44.1 kHz,
about 52 multiply-adds per output instead of 320. Long inputs go through in chunks, so the
float64 work space stays bounded however long the input is.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["Resampler", "StreamResampler", "design_filter", "output_frames", "resample_poly"]

KAISER_BETA = 5.0
_MIN_BLOCK = 32  # input frames per block at least
_CHUNK = 1 << 20  # input frames per chunk: bounds the float64 work space (a few MB per channel)
_BAND = 32  # outputs per band of the block matrix (of 8, 16, 32 and 64, the best overall
#               on the five rate pairs timed; within 12 % of the best on each)


def output_frames(frames: int, up: int, down: int) -> int:
    """Frames after resampling ``frames`` by ``up/down``: ``ceil(frames * up / down)``."""
    return -(-frames * up // down)


def design_filter(up: int, down: int) -> np.ndarray:
    """The low-pass FIR (float64, ``20 * max(up, down) + 1`` taps, gain ``up``)."""
    rate = max(up, down)
    half = 10 * rate
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    h = np.sinc(offsets / rate) * np.kaiser(2 * half + 1, KAISER_BETA)
    return h * (up / h.sum())


def _phase_matrix(up: int, down: int, group: int
                  ) -> tuple[list[tuple[int, int, np.ndarray]], int, int]:
    """The filter rearranged for block processing, ``group`` periods of the phase pattern per
    block (``U = group*up`` outputs from ``D = group*down`` inputs): output block ``m``
    (outputs ``m*U .. m*U + U - 1``) is ``W @ x[m*D + first : m*D + first + blocks*D]``, with
    ``W`` of ``U x blocks*D``, cut into bands of :data:`_BAND` outputs. Returns ``(bands,
    first, blocks)``, each band ``(r, c, M)``: outputs ``r .. r + M.shape[1] - 1`` of a block
    are ``x[m*D + first + c : ... + M.shape[0]] @ M`` (the columns of ``W`` they read)."""
    h = design_filter(up, down)
    half = (len(h) - 1) // 2
    first = -(half // up)  # ceil(-half / up): the first input that output 0 reaches
    # Output n = m*U + r reaches input k = m*D + first + i when |r*down - (first + i)*up|
    # <= half, which bounds i from below and above:
    n_out, n_in = group * up, group * down
    lo = [-((half - r * down) // up) - first for r in range(n_out)]
    hi = [(half + r * down) // up - first for r in range(n_out)]
    blocks = -(-(max(hi) + 1) // n_in)
    bands = []
    for r0 in range(0, n_out, _BAND):
        rows = range(r0, min(r0 + _BAND, n_out))
        c0, c1 = min(lo[r] for r in rows), max(hi[r] for r in rows) + 1
        m = np.zeros((c1 - c0, len(rows)), dtype=np.float64)
        for j, r in enumerate(rows):
            i = np.arange(lo[r], hi[r] + 1)
            m[i - c0, j] = h[r * down - (i + first) * up + half]
        bands.append((r0, c0, m))
    return bands, first, blocks


class Resampler:
    """Resampling of a signal of ``frames`` frames by ``up/down``, on a fixed grid of chunks:
    every output frame is computed by the same arithmetic (the same matrix products of the
    same shapes) whether the signal is resampled whole, by ranges (:meth:`range`) or as a
    stream (:class:`StreamResampler`), so all three give the same bits."""

    def __init__(self, up: int, down: int, frames: int) -> None:
        if up < 1 or down < 1:
            raise ValueError(f"resampling factors must be positive, not {up}/{down}")
        g = math.gcd(up, down)
        self.up, self.down, self.frames = up // g, down // g, int(frames)
        self.out_frames = output_frames(self.frames, self.up, self.down)
        group = -(-_MIN_BLOCK // self.down)  # small `down`: several periods per block
        self._bands, self._first, self._blocks = _phase_matrix(self.up, self.down, group)
        self._u, self._d = self.up * group, self.down * group  # outputs, inputs per block
        self._n_blocks = -(-self.out_frames // self._u)
        self._step = max(1, _CHUNK // (self._d * self._blocks))  # blocks per chunk
        self.chunks = -(-self._n_blocks // self._step)

    def chunk_inputs(self, k: int) -> tuple[int, int]:
        """Input frames ``[a, b)`` that chunk ``k`` reads (may reach outside the signal)."""
        m0, m1 = k * self._step, min(self._n_blocks, (k + 1) * self._step)
        a = m0 * self._d + self._first
        return a, a + (m1 - m0 + self._blocks - 1) * self._d

    def chunk_outputs(self, k: int) -> tuple[int, int]:
        """Output frames ``[n0, n1)`` that chunk ``k`` computes."""
        return (k * self._step * self._u,
                min(self.out_frames, (k + 1) * self._step * self._u))

    def chunk(self, k: int, read: Callable[[int, int], np.ndarray]) -> np.ndarray:
        """Chunk ``k``'s output frames (float32 ``[n1 - n0, channels]``); ``read(lo, hi)``
        gives input frames ``[lo, hi)`` (``0 <= lo < hi <= frames``) as ``[hi - lo,
        channels]``; the signal is zero outside them."""
        a, b = self.chunk_inputs(k)
        lo, hi = max(a, 0), min(b, self.frames)
        part = np.asarray(read(lo, hi)) if hi > lo else None
        channels = part.shape[1] if part is not None else 1
        seg = np.zeros((channels, b - a), dtype=np.float64)
        if part is not None:
            seg[:, lo - a:hi - a] = part.T
        n = (b - a) // self._d - self._blocks + 1  # blocks in this chunk
        acc = np.empty((channels, n, self._u))  # [channels, blocks, outputs per block]
        step_c, step_t = seg.strides
        for r, c, m in self._bands:  # block m's window, in place: rows self._d frames apart
            window = as_strided(seg[:, c:], shape=(channels, n, m.shape[0]),
                                strides=(step_c, self._d * step_t, step_t), writeable=False)
            acc[:, :, r:r + m.shape[1]] = window @ m
        n0, n1 = self.chunk_outputs(k)
        return acc.reshape(channels, -1)[:, :n1 - n0].T.astype(np.float32)

    def range(self, read: Callable[[int, int], np.ndarray], start: int, stop: int
              ) -> np.ndarray:
        """Output frames ``[start, stop)`` (float32 ``[stop - start, channels]``), reading
        only the input they depend on (through ``read``, as in :meth:`chunk`)."""
        return self._range(lambda k: self.chunk(k, read), start, stop)

    def ranges(self, read: Callable[[int, int], np.ndarray], keep: int = 3
               ) -> Callable[[int, int], np.ndarray]:
        """:meth:`range` as a function of ``(start, stop)`` that keeps the last ``keep``
        chunks it computed: overlapping or neighbouring ranges asked in order (the windows of
        a tiled encoder) compute each chunk once. Same bits as :meth:`range`."""
        cache: OrderedDict[int, np.ndarray] = OrderedDict()

        def chunk(k: int) -> np.ndarray:
            if k in cache:
                cache.move_to_end(k)
            else:
                cache[k] = self.chunk(k, read)
                if len(cache) > keep:
                    cache.popitem(last=False)
            return cache[k]

        return lambda start, stop: self._range(chunk, start, stop, copy=True)

    def _range(self, chunk: Callable[[int], np.ndarray], start: int, stop: int,
               copy: bool = False) -> np.ndarray:
        # copy: hand back no view of a kept chunk, which a caller could write to
        if not 0 <= start <= stop <= self.out_frames:
            raise ValueError(f"output range [{start}, {stop}) is outside [0, {self.out_frames})")
        per_chunk = self._step * self._u
        parts = [chunk(k) for k in range(start // per_chunk, -(-stop // per_chunk))]
        if not parts:
            return np.zeros((0, 1), dtype=np.float32)
        joined = len(parts) > 1
        out = np.concatenate(parts) if joined else parts[0]
        skip = start - (start // per_chunk) * per_chunk
        out = out[skip:skip + stop - start]
        return out.copy() if copy and not joined else out


class StreamResampler:
    """A :class:`Resampler` fed the input in order, piece by piece (:meth:`push`), handing
    back each chunk's output as soon as its input is in; it keeps only the input that later
    chunks still need. The outputs, joined, equal :func:`resample_poly` of the whole input."""

    def __init__(self, up: int, down: int, frames: int) -> None:
        self.resampler = Resampler(up, down, frames)
        self._buf: np.ndarray | None = None
        self._buf_start = 0  # input frame of _buf[0]
        self._fed = 0
        self._next = 0  # the next chunk to compute

    def _read(self, lo: int, hi: int) -> np.ndarray:
        return self._buf[lo - self._buf_start:hi - self._buf_start]

    def push(self, x: np.ndarray) -> np.ndarray:
        """Append input frames ``x`` (``[n, channels]``); returns the output frames that are
        now complete (possibly none), in order."""
        r = self.resampler
        x = np.asarray(x, dtype=np.float32)
        if self._fed + len(x) > r.frames:
            raise ValueError(f"more than the {r.frames} input frames announced")
        self._buf = x if self._buf is None else np.concatenate([self._buf, x])
        self._fed += len(x)
        out = []
        while self._next < r.chunks and self._fed >= min(r.chunk_inputs(self._next)[1],
                                                         r.frames):
            out.append(r.chunk(self._next, self._read))
            self._next += 1
        if self._next < r.chunks:  # drop what no later chunk reads
            keep = max(r.chunk_inputs(self._next)[0], self._buf_start)
            self._buf = self._buf[keep - self._buf_start:]
            self._buf_start = keep
        if not out:
            return np.zeros((0, x.shape[1]), dtype=np.float32)
        return out[0] if len(out) == 1 else np.concatenate(out)

    @property
    def done(self) -> bool:
        """Every output frame has been handed back."""
        return self._next >= self.resampler.chunks


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample ``x`` (``[frames]`` or ``[frames, channels]``) along axis 0 by ``up/down``
    (reduced or not); float32 out, computed in float64."""
    if up < 1 or down < 1:
        raise ValueError(f"resampling factors must be positive, not {up}/{down}")
    x = np.asarray(x)
    squeeze = x.ndim == 1
    x2 = x[:, None] if squeeze else x
    if x2.ndim != 2:
        raise ValueError(f"expected [frames] or [frames, channels], got shape {x.shape}")
    if up == down:
        out = np.array(x2, dtype=np.float32)
    else:
        r = Resampler(up, down, x2.shape[0])
        out = np.empty((r.out_frames, x2.shape[1]), dtype=np.float32)
        for k in range(r.chunks):
            n0, n1 = r.chunk_outputs(k)
            out[n0:n1] = r.chunk(k, lambda lo, hi: x2[lo:hi])
    return out[:, 0] if squeeze else out
