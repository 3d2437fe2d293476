"""CDF 9/7 wavelet packet transform (JPEG 2000 / PyWavelets ``bior4.4``), periodized, in 1D and 2D.

Optionally (``border="symmetric"``) with JPEG 2000's whole-sample symmetric extension instead of
periodization: also critically sampled and perfectly invertible, computed level by level (a
plain reference path, not the fused one; see docs/borders.md).

Several levels along one axis are fused into one polyphase convolution over blocks of 2^s samples,
so a full packet tree costs one convolution and one layout copy per axis and fused stage.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ANALYSIS_HIGH", "ANALYSIS_LOW", "BORDERS", "iwpt", "tune_allocator", "wpt"]

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
# Border rules: "periodization" (the codec's, fused fast path) and "symmetric" (whole-sample
# symmetric extension, JPEG 2000's rule: ... x2 x1 | x0 x1 x2 ... x_{N-1} | x_{N-2} ...).
BORDERS = ("periodization", "symmetric")

# Levels fused into one convolution. A fused stage of s levels costs about 8·2^s multiply-adds
# per sample, but each stage also costs a full layout copy, so 3-4 levels per stage is the sweet
# spot on CPU (measured with benchmarks/wavelets.py).
MAX_FUSE_1D = 4
MAX_FUSE_2D = 3

# Layout copies whose source is read with a large stride go in slabs of this many bytes: small
# enough for the source block to stay in cache, big enough that there are few slabs (each
# slab is a parallel region, and on a busy machine every region can wait a time slice for its
# second thread: 512 KB slabs measured 2 s instead of 0.1 s under load).
_SLAB = 1 << 22


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


@functools.cache
def _stage_kernels(levels: int) -> tuple[np.ndarray, int, np.ndarray, int]:
    """Composite analysis and synthesis kernels of a fused ``levels``-level packet stage.

    Analysis: out[p, n] = sum_u A[p, u] * x[B*n + a0 + u]   (B = 2^levels, periodic x).
    Synthesis: x[B*n + s0 + u] += sum_p S[p, u] * X[p, n].
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


@functools.cache
def _poly_weights(levels: int, synthesis: bool) -> tuple[np.ndarray, int]:
    """Polyphase form of a fused stage: weight [B_out, B_in, K] and left pad ``lo`` (blocks).

    With x split into blocks of B = 2^levels samples (block m, phase q: sample B*m + q), both
    directions become one periodic correlation over blocks:
    out[c, m] = sum_{c', j} W[c, c', j] * in[c', m + j - lo].
    Analysis maps sample phases to subbands, synthesis maps subbands back to sample phases.
    """
    analysis, a0, synth, s0 = _stage_kernels(levels)
    b = 2**levels
    if not synthesis:
        u = np.arange(analysis.shape[1])
        shift, phase = np.divmod(a0 + u, b)  # sample a0 + u of block 0 = phase of block `shift`
        lo = int(-shift.min())
        weight = np.zeros((b, b, int(shift.max()) + lo + 1))
        for p in range(b):
            weight[p, phase, shift + lo] = analysis[p]
        return weight, lo
    # Coefficient X[p, n] adds S[p, u] to sample B*n + s0 + u, i.e. to output block
    # m = n + shift, phase r: the correlation offset of the input is n - m = -shift.
    u = np.arange(synth.shape[1])
    shift, phase = np.divmod(s0 + u, b)
    offset = -shift
    lo = int(-offset.min())
    weight = np.zeros((b, b, int(offset.max()) + lo + 1))
    for p in range(b):
        weight[phase, p, offset + lo] = synth[p]
    # The numerical inverse leaves ~1e-17 residue where the exact filters are zero.
    weight[np.abs(weight) < 1e-14 * np.abs(weight).max()] = 0.0
    return weight, lo


_TENSOR_CACHE: dict = {}


def _weights(levels: int, synthesis: bool, device: torch.device, dtype: torch.dtype):
    """(rows, cols, lo): conv2d weights of a fused stage acting along the last or the first
    spatial axis (channels-last, as the data), cached per device and dtype."""
    key = (levels, synthesis, device, dtype)
    hit = _TENSOR_CACHE.get(key)
    if hit is None:
        weight, lo = _poly_weights(levels, synthesis)
        # Built outside inference mode: a cached inference tensor would break later autograd.
        with torch.inference_mode(False):
            w = torch.as_tensor(weight, dtype=dtype, device=device)
            rows = w.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            cols = w.unsqueeze(3).contiguous(memory_format=torch.channels_last)
        hit = (rows, cols, lo)
        _TENSOR_CACHE[key] = hit
    return hit


def tune_allocator() -> bool:
    """Keep large freed blocks in glibc's heap so big tensors reuse already-mapped pages.

    By default glibc serves every allocation above 32 MiB with a fresh mmap and unmaps it on
    free, so each such tensor pays its page faults again (30-40 ms per 50 MB here, more than
    a whole convolution pass). Raising the mmap and trim thresholds once per process removes
    that cost; the price is that the process keeps its peak heap instead of returning it to
    the OS. Returns False (and changes nothing) where glibc's ``mallopt`` is unavailable.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, 1 << 30))


def _conv_blocks(xb: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Valid correlation of channels-last blocks [N, R, L, Ci] along L -> [N, R, L-K+1, Co].

    The permuted view is exactly the channels-last layout, so the convolution reads the data
    in place and writes its result in the same blocked order (no reorders inside oneDNN).
    """
    n, r, length, ci = xb.shape
    # Rows go into the batch so the batch is never 1: PyTorch sends small batch-1 inputs to
    # its reference convolution instead of oneDNN.
    out = F.conv2d(xb.reshape(n * r, 1, length, ci).permute(0, 3, 1, 2), weight)
    return out.permute(0, 2, 3, 1).reshape(n, r, out.shape[-1], -1)


def _wrap(x: torch.Tensor, dim: int, lo: int, hi: int) -> torch.Tensor:
    """``x`` extended periodically along ``dim`` by ``lo`` entries before and ``hi`` after."""
    n = x.shape[dim]
    if n >= lo and n >= hi:
        return torch.cat([x.narrow(dim, n - lo, lo), x, x.narrow(dim, 0, hi)], dim)
    idx = (torch.arange(n + lo + hi, device=x.device) - lo) % n
    return x.index_select(dim, idx)


def _fill_pad(z: torch.Tensor, dim: int, lo: int, n: int) -> None:
    """Fill the periodic margins of ``z`` along ``dim`` (main part at [lo, lo+n)) in place."""
    hi = z.shape[dim] - lo - n
    if n >= lo and n >= hi:
        if lo:
            z.narrow(dim, 0, lo).copy_(z.narrow(dim, n, lo))
        if hi:
            z.narrow(dim, lo + n, hi).copy_(z.narrow(dim, lo, hi))
        return
    for j in [*range(lo), *range(lo + n, lo + n + hi)]:
        z.narrow(dim, j, 1).copy_(z.narrow(dim, lo + (j - lo) % n, 1))


def _copy_in_slabs(dst: torch.Tensor, src: torch.Tensor, dim: int, slab_bytes: int) -> None:
    """``dst.copy_(src)`` in slabs along ``dim`` of about ``slab_bytes`` each.

    A copy walks the destination in memory order; when the source is read with a large stride
    from a block bigger than the cache, one slab at a time keeps the source block cached.
    """
    size = dst.shape[dim]
    per_index = dst.numel() // max(size, 1) * dst.element_size()
    step = max(1, slab_bytes // max(per_index, 1))
    if step >= size:
        dst.copy_(src)
        return
    for start in range(0, size, step):
        length = min(step, size - start)
        dst.narrow(dim, start, length).copy_(src.narrow(dim, start, length))


def _plan(levels: int, max_fuse: int) -> list[int]:
    """Split ``levels`` into near-equal fused stages of at most ``max_fuse`` levels."""
    if levels <= 0:
        return []
    count = -(-levels // max_fuse)
    base, extra = divmod(levels, count)
    return [base + 1] * extra + [base] * (count - extra)


def _check(x: torch.Tensor, levels: int, spatial: int) -> None:
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 0:
        raise ValueError(f"levels must be a non-negative integer, got {levels!r}")
    if not x.is_floating_point():
        raise TypeError(f"wavelet transforms need a floating-point tensor, got {x.dtype}")
    sizes = x.shape[-spatial:]
    if any(s % (2**levels) for s in sizes):
        raise ValueError(f"spatial size {tuple(sizes)} is not divisible by 2^{levels}")


# --------------------------------------------------------------------------------------- 1D


def _margins(s: int, synthesis: bool) -> tuple[int, int]:
    """Periodic margins (samples before, after) a fused stage's convolution reads."""
    weight, lo = _poly_weights(s, synthesis)
    return lo << s, (weight.shape[-1] - 1 - lo) << s


def _analysis_1d(xp: torch.Tensor, s: int, margins: tuple[int, int]) -> torch.Tensor:
    """Rows already wrapped by this stage's margins, [M, L + pad] -> [M, 2^s, L/2^s + pad'].

    The output rows come wrapped by ``margins`` (the next stage's), so no stage copies its
    input just to extend it.
    """
    b = 2**s
    rows = _weights(s, False, xp.device, xp.dtype)[0]
    k = rows.shape[-1]
    m = xp.shape[0]
    n = xp.shape[1] // b - (k - 1)
    bands = _conv_blocks(xp.view(1, m, n + k - 1, b), rows)[0]  # [M, n, 2^s]
    out = xp.new_empty(m, b, margins[0] + n + margins[1])
    _copy_in_slabs(out.narrow(2, margins[0], n), bands.transpose(1, 2), 2, _SLAB)
    _fill_pad(out, 2, margins[0], n)
    return out


def _synthesis_1d(y: torch.Tensor, s: int) -> torch.Tensor:
    """[M, 2^s, n] -> [M, n * 2^s] for one fused stage."""
    m, b, n = y.shape
    rows, _, lo = _weights(s, True, y.device, y.dtype)
    z = y.new_empty(1, m, n + rows.shape[-1] - 1, b)
    # Each subband row is a read stream, and rows of power-of-two length share cache sets: at
    # most eight streams (the cache's ways) per copy keeps them from evicting each other.
    for g in range(0, b, 8):
        z[0, :, lo : lo + n, g : g + 8] = y[:, g : g + 8].transpose(1, 2)
    _fill_pad(z, 2, lo, n)
    return _conv_blocks(z, rows).reshape(m, n * b)


def _wpt1(x: torch.Tensor, levels: int) -> torch.Tensor:
    bsz, ch, length = x.shape
    plan = _plan(levels, MAX_FUSE_1D)
    out = _wrap(x.reshape(bsz * ch, length), 1, *_margins(plan[0], False))
    for i, s in enumerate(plan):
        margins = _margins(plan[i + 1], False) if i + 1 < len(plan) else (0, 0)
        out = _analysis_1d(out, s, margins)
        out = out.reshape(-1, out.shape[-1])
    return out.reshape(bsz, ch << levels, length >> levels)


def _iwpt1(y: torch.Tensor, levels: int) -> torch.Tensor:
    bsz, ch, n = y.shape
    out = y
    for s in reversed(_plan(levels, MAX_FUSE_1D)):
        out = _synthesis_1d(out.reshape(-1, 2**s, out.shape[-1]), s)
    return out.reshape(bsz, ch >> levels, n << levels)


# --------------------------------------------------------------------------------------- 2D


@functools.cache
def _digit_perm(s: int) -> tuple[int, ...]:
    """Permutation taking [N, nh, p_w bits, nw, p_h bits] to [N, channel bits, nh, nw].

    Channel digits are (p_w bit, p_h bit) per level, level 1 most significant, matching
    PyWavelets' dwt2 order cA, cH, cV, cD within each level.
    """
    bits = []
    for level in range(s):
        bits += [2 + level, 3 + s + level]
    return (0, *bits, 1, 2 + s)


@functools.lru_cache(maxsize=64)
def _gather_rows(s: int, nh: int, lo: int, hi: int, device: torch.device) -> torch.Tensor:
    """Row indices into [4^s·nh, nw] listing subbands in (p_w, p_h) order, rows wrapped."""
    with torch.inference_mode(False):  # cached: must stay usable outside inference mode
        chans = torch.arange(4**s).view(*([2] * (2 * s)))
        # Channel bits are (w1, h1, w2, h2, ...); list them as (w1, w2, ..., h1, h2, ...).
        order = [2 * level for level in range(s)] + [2 * level + 1 for level in range(s)]
        chans = chans.permute(order).reshape(-1, 1)
        wrapped = (torch.arange(nh + lo + hi) - lo) % nh
        return (chans * nh + wrapped).reshape(-1).to(device)


def _analysis_2d(x: torch.Tensor, s: int) -> torch.Tensor:
    """[N, H, W] -> [N, 4^s, H/2^s, W/2^s] for one fused stage (both axes)."""
    b = 2**s
    n, h, w = x.shape
    nh, nw = h // b, w // b
    rows, cols, lo = _weights(s, False, x.device, x.dtype)
    k = rows.shape[-1]
    # Along W first. Its result is copied with the row phase q_h moved
    # innermost (so the H pass is a channels-last convolution too) and the column subband p_w
    # moved in front of nw; each block row is reordered within itself, which keeps the copy
    # cache-local, and the H pass treats (p_w, nw) as one long spatial axis.
    xp = _wrap(x, 2, lo * b, (k - 1 - lo) * b)
    bands = _conv_blocks(xp.view(n, h, nw + k - 1, b), rows)  # [N, H, nw, p_w]
    z = x.new_empty(n, nh + k - 1, b, nw, b)  # [N, row block (padded), p_w, nw, q_h]
    z[:, lo : lo + nh] = bands.view(n, nh, b, nw, b).permute(0, 1, 4, 3, 2)
    _fill_pad(z, 1, lo, nh)
    grid = F.conv2d(z.view(n, nh + k - 1, w, b).permute(0, 3, 1, 2), cols)
    grid = grid.permute(0, 2, 3, 1).reshape(n, nh, *([2] * s), nw, *([2] * s))
    out = x.new_empty(n, 4**s, nh, nw)
    # Each subband's source is spread over whole rows of the grid; per-slab reuse matters less
    # here than in 1D (measured 23 vs 27 ms unslabbed), so fewer, larger slabs.
    dst = out.view(n, *([2] * (2 * s)), nh, nw)
    _copy_in_slabs(dst, grid.permute(_digit_perm(s)), -2, 4 * _SLAB)
    return out


def _synthesis_2d(y: torch.Tensor, s: int) -> torch.Tensor:
    """[N, 4^s, H', W'] -> [N, H'*2^s, W'*2^s] for one fused stage (mirror of the analysis)."""
    b = 2**s
    n, _, nh, nw = y.shape
    rows, cols, lo = _weights(s, True, y.device, y.dtype)
    k = rows.shape[-1]
    # One row gather puts the subband planes in (p_w, p_h) order and wraps them along H: a
    # transpose whose innermost dimensions are single channel digits (size 2) would crawl.
    # The wrapped planes are nh + K - 1 rows long, which also keeps the next copy's eight read
    # streams (one per p_h) out of each other's cache sets.
    rows_index = _gather_rows(s, nh, lo, k - 1 - lo, y.device)
    bands = y.reshape(n, -1, nw).index_select(1, rows_index).view(n, b, b, nh + k - 1, nw)
    z = bands.permute(0, 3, 1, 4, 2).contiguous()  # [N, nh (padded), p_w, nw, p_h]
    mid = F.conv2d(z.view(n, nh + k - 1, nw * b, b).permute(0, 3, 1, 2), cols)
    mid = mid.permute(0, 2, 3, 1).reshape(n, nh, b, nw, b)  # [N, nh, p_w, nw, q_h]
    u = y.new_empty(n, nh, b, nw + k - 1, b)  # [N, nh, q_h, nw (padded), p_w]
    u[:, :, :, lo : lo + nw] = mid.permute(0, 1, 4, 3, 2)
    _fill_pad(u, 3, lo, nw)
    out = _conv_blocks(u.view(n, nh * b, nw + k - 1, b), rows)  # [N, H, nw, q_w]
    return out.reshape(n, nh * b, nw * b)


def _wpt2(x: torch.Tensor, levels: int) -> torch.Tensor:
    bsz, ch, h, w = x.shape
    out = x.reshape(bsz * ch, h, w)
    for s in _plan(levels, MAX_FUSE_2D):
        out = _analysis_2d(out, s)
        out = out.reshape(-1, out.shape[-2], out.shape[-1])
    return out.reshape(bsz, ch << (2 * levels), h >> levels, w >> levels)


def _iwpt2(y: torch.Tensor, levels: int) -> torch.Tensor:
    bsz, ch, h, w = y.shape
    out = y
    for s in reversed(_plan(levels, MAX_FUSE_2D)):
        out = _synthesis_2d(out.reshape(-1, 4**s, out.shape[-2], out.shape[-1]), s)
    return out.reshape(bsz, ch >> (2 * levels), h << levels, w << levels)

# ------------------------------------------------------------- whole-sample symmetric borders
#
# With x extended as x[-i] = x[i] and x[N-1+i] = x[N-1-i] (N even), the low band (filters centred
# on even samples) and the high band (centred on odd samples) inherit symmetries that make N/2
# coefficients each enough: low L[-n] = L[n], L[N/2-1+n] = L[N/2-n]; high H[-1-n] = H[n],
# H[N/2-1+n] = H[N/2-1-n]. So the transform is critically sampled, and its inverse is the
# ordinary synthesis applied to the coefficients extended by those rules.


def _sym_index(first: int, stop: int, n: int) -> torch.Tensor:
    """Indices into x[0..n) of the whole-sample symmetric extension at positions first..stop-1."""
    period = max(2 * n - 2, 1)
    m = torch.arange(first, stop) % period
    return torch.where(m >= n, period - m, m)


def _band_index(first: int, stop: int, half: int, high: bool) -> torch.Tensor:
    """Indices into a band of ``half`` coefficients of its symmetric extension (see above)."""
    period = max(2 * half - 1, 1)
    m = torch.arange(first, stop) % period
    mirror = (period - 1 if high else period) - m
    return torch.where(m >= half, mirror, m)


@functools.cache
def _sym_filters() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Analysis low/high taps and the one-level synthesis kernel [2, K] with its offset s0."""
    _, _, synth, s0 = _stage_kernels(1)
    synth = np.where(np.abs(synth) < 1e-10, 0.0, synth)
    return np.array(ANALYSIS_LOW), np.array(ANALYSIS_HIGH), synth, s0


def _sym_dwt(x: torch.Tensor) -> torch.Tensor:
    """One symmetric-border level along the last axis: [M, N] -> [M, 2, N/2]."""
    n = x.shape[-1]
    low, high, _, _ = _sym_filters()
    xe = x.index_select(1, _sym_index(_LOW_T0, n - _LOW_T0, n).to(x.device)).unsqueeze(1)
    wl = torch.as_tensor(low, dtype=x.dtype, device=x.device).view(1, 1, -1)
    wh = torch.as_tensor(high, dtype=x.dtype, device=x.device).view(1, 1, -1)
    lo = F.conv1d(xe, wl, stride=2)
    hi = F.conv1d(xe[..., _HIGH_T0 - _LOW_T0 :], wh, stride=2)
    return torch.cat([lo, hi], 1)


def _sym_idwt(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_sym_dwt`: [M, 2, N/2] -> [M, N]."""
    half = y.shape[-1]
    _, _, synth, s0 = _sym_filters()
    e = 3  # sample i takes coefficients n with 2n + s0 <= i <= 2n + s0 + K - 1
    parts = [y[:, p].index_select(1, _band_index(-e, half + e, half, p == 1).to(y.device))
             for p in (0, 1)]
    w = torch.as_tensor(synth, dtype=y.dtype, device=y.device).unsqueeze(1)  # [2, 1, K]
    out = F.conv_transpose1d(torch.stack(parts, 1), w, stride=2)[:, 0]
    start = 2 * e - s0  # position of sample 0 in the transposed convolution's output
    return out[:, start : start + 2 * half]


def _sym_packet(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Packet tree along the last axis: [..., N] -> [..., 2^levels, N/2^levels]."""
    lead, n = x.shape[:-1], x.shape[-1]
    out = x.reshape(-1, n)
    for _ in range(levels):
        out = _sym_dwt(out).reshape(-1, out.shape[-1] // 2)
    return out.reshape(*lead, 2**levels, n >> levels)


def _sym_ipacket(y: torch.Tensor, levels: int) -> torch.Tensor:
    """Inverse of :func:`_sym_packet`."""
    lead, m = y.shape[:-2], y.shape[-1]
    out = y.reshape(-1, m)
    for _ in range(levels):
        out = _sym_idwt(out.reshape(-1, 2, out.shape[-1]))
    return out.reshape(*lead, m << levels)


def _sym_wpt(x: torch.Tensor, levels: int) -> torch.Tensor:
    if x.dim() == 3:
        b, c, _ = x.shape
        return _sym_packet(x, levels).reshape(b, c << levels, -1)
    b, c, h, w = x.shape
    nh, nw = h >> levels, w >> levels
    yw = _sym_packet(x, levels)  # [B, C, H, Pw, nw]
    y = _sym_packet(yw.permute(0, 1, 3, 4, 2), levels)  # [B, C, Pw, nw, Ph, nh]
    y = y.reshape(b, c, *([2] * levels), nw, *([2] * levels), nh)
    # Channel digits per level: (w bit, h bit), level 1 most significant, as the fused path.
    order = [d for lv in range(levels) for d in (2 + lv, 3 + levels + lv)]
    y = y.permute(0, 1, *order, 3 + 2 * levels, 2 + levels)
    return y.reshape(b, c << (2 * levels), nh, nw)


def _sym_iwpt(y: torch.Tensor, levels: int) -> torch.Tensor:
    if y.dim() == 3:
        b, c, m = y.shape
        return _sym_ipacket(y.reshape(b, c >> levels, 2**levels, m), levels)
    b, c, nh, nw = y.shape
    c0 = c >> (2 * levels)
    t = y.reshape(b, c0, *([2] * (2 * levels)), nh, nw)
    w_bits = [2 + 2 * lv for lv in range(levels)]
    h_bits = [3 + 2 * lv for lv in range(levels)]
    t = t.permute(0, 1, *w_bits, 2 + 2 * levels + 1, *h_bits, 2 + 2 * levels)
    t = t.reshape(b, c0, 2**levels, nw, 2**levels, nh)  # [B, C, Pw, nw, Ph, nh]
    xh = _sym_ipacket(t, levels)  # [B, C, Pw, nw, H]
    x = _sym_ipacket(xh.permute(0, 1, 4, 2, 3), levels)  # [B, C, H, W]
    return x


def _check_border(border: str) -> None:
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")


def wpt(x: torch.Tensor, levels: int, border: str = "periodization") -> torch.Tensor:
    """Forward wavelet packet transform.

    ``[B, C, T] -> [B, C·2^J, T/2^J]`` (1D) or ``[B, C, H, W] -> [B, C·4^J, H/2^J, W/2^J]`` (2D),
    chosen by the tensor's rank. Output channel ``c·P + k``: input channel ``c`` is the most
    significant digit, then the subband chosen at level 1, level 2, ... (base 2 in 1D: L, H;
    base 4 in 2D: LL, LH, HL, HH in PyWavelets' ``dwt2`` order cA, cH, cV, cD).
    ``border``: ``"periodization"`` (default) or ``"symmetric"`` (whole-sample symmetric
    extension, JPEG 2000's rule; same shapes and channel order, level-by-level reference path).
    """
    _check_border(border)
    if x.dim() in (3, 4) and border == "symmetric":
        _check(x, levels, x.dim() - 2)
        return _sym_wpt(x, levels) if levels else x
    if x.dim() == 3:
        _check(x, levels, 1)
        return _wpt1(x, levels) if levels else x
    if x.dim() == 4:
        _check(x, levels, 2)
        return _wpt2(x, levels) if levels else x
    raise ValueError(f"wpt expects a [B, C, T] or [B, C, H, W] tensor, got shape {tuple(x.shape)}")


def iwpt(y: torch.Tensor, levels: int, border: str = "periodization") -> torch.Tensor:
    """Inverse of :func:`wpt` (perfect reconstruction up to floating-point rounding)."""
    _check_border(border)
    if y.dim() not in (3, 4):
        raise ValueError(f"iwpt expects a 3D or 4D tensor, got shape {tuple(y.shape)}")
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 0:
        raise ValueError(f"levels must be a non-negative integer, got {levels!r}")
    if not y.is_floating_point():
        raise TypeError(f"wavelet transforms need a floating-point tensor, got {y.dtype}")
    per = (2 if y.dim() == 3 else 4) ** levels
    if y.shape[1] % per:
        raise ValueError(f"{y.shape[1]} channels is not a multiple of {per} for {levels} levels")
    if levels == 0:
        return y
    if border == "symmetric":
        return _sym_iwpt(y, levels)
    return _iwpt1(y, levels) if y.dim() == 3 else _iwpt2(y, levels)
