"""CDF 9/7 wavelet packet transform (JPEG 2000 / PyWavelets ``bior4.4``), periodized, in 1D and 2D.

Several levels along one axis are fused into a single strided convolution (one filter per
packet phase), so a full packet tree costs one or two convolutions per axis, not one per subband.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["wpt", "iwpt", "ANALYSIS_LOW", "ANALYSIS_HIGH"]

# Analysis filters as taps at offsets t (sample 2n+t feeds coefficient n), as PyWavelets
# applies bior4.4 in periodization mode. Low-pass: t = -4..4; high-pass: t = -2..4.
ANALYSIS_LOW = (
    0.03782845550726404, -0.023849465019556843, -0.11062440441843718, 0.37740285561283066,
    0.8526986790088938, 0.37740285561283066, -0.11062440441843718, -0.023849465019556843,
    0.03782845550726404,
)
ANALYSIS_HIGH = (
    -0.06453888262869706, 0.04068941760916406, 0.41809227322161724, -0.7884856164055829,
    0.41809227322161724, 0.04068941760916406, -0.06453888262869706,
)
_LOW_T0, _HIGH_T0 = -4, -2

# Levels fused into one convolution. Longer fusions cost more multiply-adds per sample
# (the composite filters grow as 9·2^s) but fewer passes over memory.
MAX_FUSE_1D = 4
MAX_FUSE_2D = 3


def _dwt1_reference(x: np.ndarray) -> np.ndarray:
    """One periodized level along the last axis: [..., N] -> [..., 2, N/2] (float64)."""
    n = x.shape[-1]
    idx = np.arange(0, n, 2)
    low = sum(c * x[..., (idx + _LOW_T0 + k) % n] for k, c in enumerate(ANALYSIS_LOW))
    high = sum(c * x[..., (idx + _HIGH_T0 + k) % n] for k, c in enumerate(ANALYSIS_HIGH))
    return np.stack([low, high], axis=-2)


def _packet_reference(x: np.ndarray, levels: int) -> np.ndarray:
    """Full packet tree along the last axis: [..., N] -> [..., 2^levels, N/2^levels]."""
    out = x[..., None, :]
    for _ in range(levels):
        y = _dwt1_reference(out)  # [..., P, 2, N']
        out = y.reshape(*y.shape[:-3], y.shape[-3] * 2, y.shape[-1])
    return out


@functools.lru_cache(maxsize=None)
def _stage_kernels(levels: int) -> tuple[np.ndarray, int, np.ndarray, int]:
    """Composite analysis and synthesis kernels of a fused ``levels``-level packet stage.

    Analysis: out[p, n] = sum_u A[p, u] * x[B*n + a0 + u]   (B = 2^levels, periodic x).
    Synthesis: x[B*n + s0 + u] += sum_p S[p, u] * X[p, n]   (transposed convolution).
    Both are read off the exact circulant operator on a period long enough not to alias;
    the synthesis side is its numerical inverse, so no synthesis filter algebra is needed.
    """
    b = 2**levels
    span = 9 * b  # composite support is below 8*(b-1)+1 on each side
    n0 = b * max(8, 4 * (span // b + 1))
    eye = np.eye(n0)
    op = _packet_reference(eye, levels)  # [n0(input), b, n0/b]
    matrix = op.reshape(n0, n0).T  # rows: (p, n) outputs; columns: input samples
    # Analysis filter of phase p: the row for n = 0, centred on sample 0.
    rows = matrix[np.arange(b) * (n0 // b)]  # [b, n0]
    rows = np.roll(rows, n0 // 2, axis=1)
    nz = np.nonzero(np.abs(rows).max(0) > 1e-14)[0]
    a_lo, a_hi = nz.min(), nz.max()
    analysis = rows[:, a_lo : a_hi + 1].copy()
    a0 = int(a_lo - n0 // 2)
    inverse = np.linalg.inv(matrix)  # columns: (p, n) coefficients
    cols = inverse[:, np.arange(b) * (n0 // b)].T  # [b, n0]
    cols = np.roll(cols, n0 // 2, axis=1)
    nz = np.nonzero(np.abs(cols).max(0) > 1e-12)[0]
    s_lo, s_hi = nz.min(), nz.max()
    synthesis = cols[:, s_lo : s_hi + 1].copy()
    s0 = int(s_lo - n0 // 2)
    return analysis, a0, synthesis, s0


def _plan(levels: int, max_fuse: int) -> list[int]:
    """Split ``levels`` into near-equal fused stages of at most ``max_fuse`` levels."""
    if levels <= 0:
        return []
    count = -(-levels // max_fuse)
    base, extra = divmod(levels, count)
    return [base + 1] * extra + [base] * (count - extra)


@functools.lru_cache(maxsize=None)
def _interleave_perm(levels: int) -> tuple[int, ...]:
    """Map 2D channel order (level-wise LL,LH,HL,HH digits) to the (row phase, col phase) grid."""
    b = 2**levels
    perm = []
    for target in range(4**levels):
        bh = bw = 0
        for lev in range(levels):
            digit = (target >> (2 * (levels - 1 - lev))) & 3
            bh = (bh << 1) | (digit & 1)
            bw = (bw << 1) | (digit >> 1)
        perm.append(bh * b + bw)
    return tuple(perm)


_TENSOR_CACHE: dict = {}


def _kernels(levels: int, device: torch.device, dtype: torch.dtype):
    key = (levels, device, dtype)
    hit = _TENSOR_CACHE.get(key)
    if hit is None:
        analysis, a0, synthesis, s0 = _stage_kernels(levels)
        hit = (
            torch.as_tensor(analysis, dtype=dtype, device=device),
            a0,
            torch.as_tensor(synthesis, dtype=dtype, device=device),
            s0,
        )
        _TENSOR_CACHE[key] = hit
    return hit


def _periodic_window(x: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
    """x[(start + i) mod n for i in range(length)] along ``dim``, by slicing where possible."""
    n = x.shape[dim]
    if 0 <= start and start + length <= n:
        return x.narrow(dim, start, length)
    if -n <= start < 0 and 0 <= start + length <= 2 * n:
        left = x.narrow(dim, n + start, -start)
        mid = x.narrow(dim, 0, min(n, start + length))
        parts = [left, mid]
        if start + length > n:
            parts.append(x.narrow(dim, 0, start + length - n))
        return torch.cat(parts, dim=dim)
    idx = (torch.arange(length, device=x.device) + start) % n
    return x.index_select(dim, idx)


def _circular_fold(y: torch.Tensor, dim: int, n: int, offset: int) -> torch.Tensor:
    """Wrap a transposed-convolution output of any length onto a period of n, shifted by offset."""
    length = y.shape[dim]
    reps = -(-length // n)
    if reps * n != length:
        pad = [0, 0] * (y.dim() - 1 - dim % y.dim()) + [0, reps * n - length]
        y = F.pad(y, pad)
    shape = list(y.shape)
    d = dim % y.dim()
    y = y.reshape(*shape[:d], reps, n, *shape[d + 1 :]).sum(d)
    return torch.roll(y, shifts=offset, dims=d) if offset % n else y


def _check(x: torch.Tensor, levels: int, spatial: int) -> None:
    if not isinstance(levels, int) or levels < 0:
        raise ValueError(f"levels must be a non-negative integer, got {levels!r}")
    if not x.is_floating_point():
        raise TypeError(f"wavelet transforms need a floating-point tensor, got {x.dtype}")
    sizes = x.shape[-spatial:]
    if any(s % (2**levels) for s in sizes):
        raise ValueError(f"spatial size {tuple(sizes)} is not divisible by 2^{levels}")


def _analysis_1d(x: torch.Tensor, levels: int) -> torch.Tensor:
    """[M, N] -> [M, 2^levels, N / 2^levels] for one fused stage."""
    kernel, a0, _, _ = _kernels(levels, x.device, x.dtype)
    b, taps = kernel.shape
    xp = _periodic_window(x, -1, a0, x.shape[-1] - b + taps)
    return F.conv1d(xp.unsqueeze(1), kernel.unsqueeze(1), stride=b)


def _synthesis_1d(y: torch.Tensor, levels: int) -> torch.Tensor:
    """[M, 2^levels, N'] -> [M, N' * 2^levels] for one fused stage."""
    _, _, kernel, s0 = _kernels(levels, y.device, y.dtype)
    b = kernel.shape[0]
    full = F.conv_transpose1d(y, kernel.unsqueeze(1), stride=b).squeeze(1)
    return _circular_fold(full, -1, y.shape[-1] * b, s0)


def _wpt1(x: torch.Tensor, levels: int) -> torch.Tensor:
    bsz, ch, n = x.shape
    out = x.reshape(bsz * ch, n)
    width = 1
    for s in _plan(levels, MAX_FUSE_1D):
        out = _analysis_1d(out, s)  # [M*width, 2^s, n']
        width *= 2**s
        out = out.reshape(-1, out.shape[-1])
    return out.reshape(bsz, ch * width, -1)


def _iwpt1(y: torch.Tensor, levels: int) -> torch.Tensor:
    bsz, ch, n = y.shape
    out = y
    for s in reversed(_plan(levels, MAX_FUSE_1D)):
        b = 2**s
        out = _synthesis_1d(out.reshape(-1, b, out.shape[-1]), s)
    return out.reshape(bsz, ch // 2**levels, n * 2**levels)


def _analysis_2d(x: torch.Tensor, levels: int) -> torch.Tensor:
    """[M, H, W] -> [M, 4^levels, H/2^s, W/2^s] for one fused stage (both axes)."""
    kernel, a0, _, _ = _kernels(levels, x.device, x.dtype)
    b, taps = kernel.shape
    m, h, w = x.shape
    xp = _periodic_window(x, 1, a0, h - b + taps)
    rows = F.conv2d(xp.unsqueeze(1), kernel.view(b, 1, taps, 1), stride=(b, 1))  # [m,b,h',w]
    rows = rows.reshape(m * b, h // b, w)
    rows = _periodic_window(rows, 2, a0, w - b + taps)
    grid = F.conv2d(rows.unsqueeze(1), kernel.view(b, 1, 1, taps), stride=(1, b))
    grid = grid.reshape(m, b * b, h // b, w // b)
    perm = torch.tensor(_interleave_perm(levels), device=x.device)
    return grid.index_select(1, perm)


def _synthesis_2d(y: torch.Tensor, levels: int) -> torch.Tensor:
    """[M, 4^levels, H', W'] -> [M, H'*2^s, W'*2^s] for one fused stage."""
    _, _, kernel, s0 = _kernels(levels, y.device, y.dtype)
    b, taps = kernel.shape
    m, _, hh, ww = y.shape
    inv = torch.empty(4**levels, dtype=torch.long)
    inv[torch.tensor(_interleave_perm(levels))] = torch.arange(4**levels)
    grid = y.index_select(1, inv.to(y.device))  # [m, bh*b + bw, h', w']
    grid = grid.reshape(m * b, b, hh, ww)
    cols = F.conv_transpose2d(grid, kernel.view(b, 1, 1, taps), stride=(1, b))
    cols = _circular_fold(cols.squeeze(1), 2, ww * b, s0)  # [m*b, h', W]
    cols = cols.reshape(m, b, hh, ww * b)
    full = F.conv_transpose2d(cols, kernel.view(b, 1, taps, 1), stride=(b, 1))
    return _circular_fold(full.squeeze(1), 1, hh * b, s0)


def _wpt2(x: torch.Tensor, levels: int) -> torch.Tensor:
    bsz, ch, h, w = x.shape
    out = x.reshape(bsz * ch, h, w)
    width = 1
    for s in _plan(levels, MAX_FUSE_2D):
        out = _analysis_2d(out, s)
        width *= 4**s
        out = out.reshape(-1, out.shape[-2], out.shape[-1])
    return out.reshape(bsz, ch * width, out.shape[-2], out.shape[-1])


def _iwpt2(y: torch.Tensor, levels: int) -> torch.Tensor:
    bsz, ch, h, w = y.shape
    out = y
    for s in reversed(_plan(levels, MAX_FUSE_2D)):
        out = _synthesis_2d(out.reshape(-1, 4**s, out.shape[-2], out.shape[-1]), s)
    return out.reshape(bsz, ch // 4**levels, h * 2**levels, w * 2**levels)


def wpt(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Forward wavelet packet transform.

    ``[B, C, T] -> [B, C·2^J, T/2^J]`` (1D) or ``[B, C, H, W] -> [B, C·4^J, H/2^J, W/2^J]`` (2D),
    chosen by the tensor's rank. Output channel ``c·P + k``: input channel ``c`` is the most
    significant digit, then the subband chosen at level 1, level 2, ... (base 2 in 1D: L, H;
    base 4 in 2D: LL, LH, HL, HH in PyWavelets' ``dwt2`` order cA, cH, cV, cD).
    """
    if x.dim() == 3:
        _check(x, levels, 1)
        return _wpt1(x, levels) if levels else x
    if x.dim() == 4:
        _check(x, levels, 2)
        return _wpt2(x, levels) if levels else x
    raise ValueError(f"wpt expects a [B, C, T] or [B, C, H, W] tensor, got shape {tuple(x.shape)}")


def iwpt(y: torch.Tensor, levels: int) -> torch.Tensor:
    """Inverse of :func:`wpt` (perfect reconstruction up to floating-point rounding)."""
    if y.dim() not in (3, 4):
        raise ValueError(f"iwpt expects a 3D or 4D tensor, got shape {tuple(y.shape)}")
    per = (2 if y.dim() == 3 else 4) ** levels
    if y.shape[1] % per:
        raise ValueError(f"{y.shape[1]} channels is not a multiple of {per} for {levels} levels")
    if levels == 0:
        return y
    return _iwpt1(y, levels) if y.dim() == 3 else _iwpt2(y, levels)
