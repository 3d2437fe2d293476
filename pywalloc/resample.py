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
by ``down`` frames per block, so every block is the same small matrix product (the taps laid
out as an ``up x blocks*down`` matrix, mostly zeros, which BLAS runs about as fast as scipy's
direct polyphase loop). Long inputs go through in chunks, so the float64 work space stays
bounded however long the input is.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["design_filter", "output_frames", "resample_poly"]

KAISER_BETA = 5.0
_MIN_BLOCK = 32  # input frames per block at least
_CHUNK = 1 << 20  # input frames per chunk: bounds the float64 work space (a few MB per channel)


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


def _phase_matrix(up: int, down: int, group: int) -> tuple[np.ndarray, int, int]:
    """The filter rearranged for block processing, ``group`` periods of the phase pattern per
    block (``U = group*up`` outputs from ``D = group*down`` inputs): output block ``m``
    (outputs ``m*U .. m*U + U - 1``) is ``W @ x[m*D + first : m*D + first + blocks*D]``.
    Returns ``(W [blocks, U, D], first, blocks)``."""
    h = design_filter(up, down)
    half = (len(h) - 1) // 2
    first = -(half // up)  # ceil(-half / up): the first input that output 0 reaches
    # Output n = m*U + r reaches input k = m*D + first + i when |r*down - (first + i)*up|
    # <= half, which bounds i from below and above:
    n_out, n_in = group * up, group * down
    lo = [-((half - r * down) // up) - first for r in range(n_out)]
    hi = [(half + r * down) // up - first for r in range(n_out)]
    blocks = -(-(max(hi) + 1) // n_in)
    w = np.zeros((n_out, blocks * n_in), dtype=np.float64)
    for r in range(n_out):
        i = np.arange(lo[r], hi[r] + 1)
        w[r, i] = h[r * down - (i + first) * up + half]
    return w.reshape(n_out, blocks, n_in).transpose(1, 0, 2).copy(), first, blocks


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample ``x`` (``[frames]`` or ``[frames, channels]``) along axis 0 by ``up/down``
    (reduced or not); float32 out, computed in float64."""
    if up < 1 or down < 1:
        raise ValueError(f"resampling factors must be positive, not {up}/{down}")
    g = math.gcd(up, down)
    up, down = up // g, down // g
    x = np.asarray(x)
    squeeze = x.ndim == 1
    x2 = x[:, None] if squeeze else x
    if x2.ndim != 2:
        raise ValueError(f"expected [frames] or [frames, channels], got shape {x.shape}")
    if up == down == 1:
        out = np.array(x2, dtype=np.float32)
        return out[:, 0] if squeeze else out
    frames, channels = x2.shape
    n_out = output_frames(frames, up, down)
    group = -(-_MIN_BLOCK // down)  # small `down`: several periods per block, for fuller GEMMs
    w, first, blocks = _phase_matrix(up, down, group)
    up, down = up * group, down * group  # the block's outputs and inputs from here on
    out = np.empty((n_out, channels), dtype=np.float32)
    n_blocks = -(-n_out // up)
    step = max(1, _CHUNK // (down * blocks))
    for m0 in range(0, n_blocks, step):
        m1 = min(n_blocks, m0 + step)
        a = m0 * down + first  # the chunk's first input frame (may lie before 0)
        b = a + (m1 - m0 + blocks - 1) * down
        seg = np.zeros((channels, b - a), dtype=np.float64)
        lo, hi = max(a, 0), min(b, frames)
        if hi > lo:
            seg[:, lo - a:hi - a] = x2[lo:hi].T
        seg = seg.reshape(channels, -1, down)
        acc = seg[:, 0:m1 - m0] @ w[0].T  # [channels, blocks of the chunk, up]
        for j in range(1, blocks):
            acc += seg[:, j:j + m1 - m0] @ w[j].T
        n0, n1 = m0 * up, min(n_out, m1 * up)
        out[n0:n1] = acc.reshape(channels, -1)[:, :n1 - n0].T
    return out[:, 0] if squeeze else out
