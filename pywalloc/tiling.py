"""Tiled coding with bounded memory: images in tiles and audio in chunks of the latent grid.

Both directions are exact. The wavelet packet transform is linear with finite support and
periodic borders, so the coefficients of a tile need only a margin of input around it, taken
with wrapped (and, for the encoder's mirror padding, mirrored) indices. A position-local
decoder (no statistics over the whole input) has a finite receptive field, so a tile of
coefficients needs only that many latents around it, with the same zero padding as the whole
input at its true borders. Layers whose floating-point arithmetic could depend on the tensor
size (channel reductions, 1x1 convolutions) run in a fixed order (synthesis.channel_sum,
synthesis.pointwise), so tiles give the same bits as the whole input.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import sys
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .wavelets import iwpt, wpt

__all__ = ["TILE", "coding_progress", "decode_progress", "decode_tiles", "encode_tiles",
           "mirror_index", "receptive_radius", "support"]

# The label of the progress bar that tiled encodes and decodes show (None: no bar).
_PROGRESS: contextvars.ContextVar[str | None] = contextvars.ContextVar("pywalloc_progress",
                                                                       default=None)


@contextlib.contextmanager
def coding_progress(label: str):
    """Within this block, a tiled encode or decode of more than one tile shows a progress bar
    labelled ``label`` on stderr (one step per tile, with tqdm's time left): large pictures
    and long audio take seconds to minutes on a CPU. One tile shows nothing."""
    token = _PROGRESS.set(label)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def decode_progress(label: str = "decode"):
    """:func:`coding_progress` for decodes (the bar says ``decode``)."""
    return coding_progress(label)


def _with_progress(items: list) -> Iterator:
    """``items``, behind a tqdm bar when :func:`coding_progress` asks for one."""
    label = _PROGRESS.get()
    if label is None or len(items) < 2:
        yield from items
        return
    from tqdm import tqdm

    with tqdm(items, desc=label, unit="tile", file=sys.stderr, dynamic_ncols=True,
              leave=False) as bar:
        yield from bar

# Tile side in latent positions, per number of spatial dims: 128 latents are 1024 pixels for
# the image presets (~60 MB of decoder activations), 4096 are ~1M frames of audio.
TILE = {2: 128, 1: 4096}
# Smallest extent (latents) of a decoder input along any axis, unless the axis is shorter:
# oneDNN picks another convolution kernel for very narrow inputs (measured: 3x3 convolutions
# change their last bits at widths <= 16 or heights <= 3), so every tile's decoder input stays
# above that, like the whole input does. tests/test_tiling.py pins the equality.
MIN_SPAN = 32


@functools.cache
def support(levels: int, synthesis: bool) -> tuple[int, int]:
    """(before, after): block ``m`` of the output of the (inverse, if ``synthesis``) packet
    transform depends on input blocks ``m - before .. m + after`` (blocks of 2^levels samples;
    the same along each axis of the separable 2D transform). Measured on the operator itself."""
    b, n = 2**levels, 32
    gen = torch.Generator().manual_seed(0)
    if synthesis:
        y = torch.zeros(1, b, n, dtype=torch.float64)
        y[0, :, n // 2] = torch.rand(b, generator=gen, dtype=torch.float64) + 0.5
        x = iwpt(y, levels)[0].abs().sum(0)
    else:
        x = torch.zeros(1, 1, n * b, dtype=torch.float64)
        x[0, 0, (n // 2) * b:(n // 2 + 1) * b] = torch.rand(b, generator=gen,
                                                         dtype=torch.float64) + 0.5
        x = wpt(x, levels)[0].abs().sum(0)
        b = 1
    nz = torch.nonzero(x > 1e-12).flatten()
    first, last = int(nz.min()) // b, int(nz.max()) // b
    return last - n // 2, n // 2 - first


def receptive_radius(net: nn.Module) -> int:
    """Latent positions on each side that one output position of ``net`` depends on (its
    convolutions and sliding-window norms are chained, so their radii add up)."""
    from .synthesis import LocalGroupNorm

    return sum(m.dilation[0] * (m.kernel_size[0] // 2) if isinstance(m, (nn.Conv1d, nn.Conv2d))
               else m.window // 2 for m in net.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, LocalGroupNorm)))


def mirror_index(length: int, n: int, device=None) -> torch.Tensor:
    """Indices ``0..length-1`` folded into ``0..n-1`` by mirroring without repeating the edge
    sample (as often as needed, so 1-sample inputs work): the image padding rule."""
    period = max(2 * n - 2, 1)
    idx = torch.arange(length, device=device) % period
    return torch.where(idx >= n, period - idx, idx)


def _runs(start: int, stop: int, n: int) -> list[tuple[int, int]]:
    """Index range ``start..stop-1`` taken modulo ``n``, as contiguous runs within ``0..n-1``."""
    out, i = [], start
    while i < stop:
        s = i % n
        e = min(n, s + stop - i)
        out.append((s, e))
        i += e - s
    return out


def _tiles(sizes: tuple[int, ...], tile: int) -> Iterator[list[tuple[int, int]]]:
    for corner in itertools.product(*(range(0, n, tile) for n in sizes)):
        yield [(c, min(c + tile, n)) for c, n in zip(corner, sizes)]


def _cat_grid(pieces: dict, runs: list[list], dim0: int):
    """Concatenate ``pieces[(i, j, ...)]`` along consecutive dims starting at ``dim0``.

    Iterative on purpose: a recursive closure is a reference cycle, which would keep every
    tile's pieces alive until the garbage collector happens to run (hundreds of MB)."""
    grid = pieces
    for depth in reversed(range(len(runs))):
        merged = {}
        for prefix in itertools.product(*(range(len(r)) for r in runs[:depth])):
            parts = [grid[(*prefix, i)] for i in range(len(runs[depth]))]
            merged[prefix] = parts[0] if len(parts) == 1 else torch.cat(parts, dim0 + depth)
        grid = merged
    return grid[()]


def decode_tiles(model, y: torch.Tensor, tile: int | None = None
                 ) -> Iterator[tuple[tuple[slice, ...], torch.Tensor]]:
    """Decode latents ``y`` ``[B, C, *grid]`` (float, or int8) tile by tile: yields (output slices in
    samples, unclamped reconstruction of that region). Exact for position-local decoders;
    with a GroupNorm decoder each tile has its own statistics (an approximation)."""
    from .codec import decompand

    levels, block = model.preset.levels, model.preset.block
    grid = tuple(y.shape[2:])
    tile = tile or TILE[len(grid)]
    # Integer latents are converted a piece at a time (exact), never as a whole float copy.
    dtype = y.dtype if y.is_floating_point() else model.analysis.weight.dtype
    if all(n <= tile for n in grid):
        # One tile holds the whole grid: the whole-input synthesis is the reference the tiles
        # reproduce, and running it once avoids the wrapped border pieces (3x faster here).
        y = y.to(dtype)
        x = iwpt(model.synthesis(decompand(y), y), levels)
        yield tuple(slice(0, n * block) for n in grid), x
        return
    before, after = support(levels, True)
    radius = receptive_radius(model.synthesis.net)

    def coefficients(ranges: tuple[tuple[int, int], ...]) -> torch.Tensor:
        # The synthesis of latent region `ranges` from the latents around it, cropped.
        lo = [max(0, s - radius) for s, _ in ranges]
        hi = [min(n, e + radius) for (_, e), n in zip(ranges, grid)]
        for d, n in enumerate(grid):
            if hi[d] - lo[d] < MIN_SPAN:
                lo[d] = max(0, min(lo[d], n - MIN_SPAN))
                hi[d] = min(n, max(hi[d], lo[d] + MIN_SPAN))
        part = y[(..., *(slice(a, b) for a, b in zip(lo, hi)))].to(dtype)
        out = model.synthesis(decompand(part), part)
        return out[(..., *(slice(s - a, e - a) for (s, e), a in zip(ranges, lo)))]

    for spans in _with_progress(list(_tiles(grid, tile))):
        runs = [_runs(s - before, e + after, n) for (s, e), n in zip(spans, grid)]
        pieces = {idx: coefficients(tuple(r[i] for r, i in zip(runs, idx)))
                  for idx in itertools.product(*(range(len(r)) for r in runs))}
        x = iwpt(_cat_grid(pieces, runs, 2), levels)
        crop = tuple(slice(before * block, (before + e - s) * block) for s, e in spans)
        yield tuple(slice(s * block, e * block) for s, e in spans), x[(..., *crop)]


def _gather(t: torch.Tensor, dim: int, idx: list[int]) -> torch.Tensor:
    """``t.index_select(dim, idx)`` for indices that come in runs of step +1 or -1 (the mirror
    padding's): slices and flips instead of a gather, several times faster on large tiles."""
    parts, i = [], 0
    while i < len(idx):
        j = i + 1
        step = idx[j] - idx[i] if j < len(idx) else 1
        if step not in (1, -1):
            step = 1
        while j < len(idx) and idx[j] - idx[j - 1] == step:
            j += 1
        lo = min(idx[i], idx[j - 1])
        part = t.narrow(dim, lo, j - i)
        parts.append(part.flip(dim) if step == -1 and j - i > 1 else part)
        i = j
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim)


def _window(read: Callable[[int, int], torch.Tensor], start: int, stop: int, n: int,
            period: int, like: torch.Tensor) -> torch.Tensor:
    """Samples ``start..stop-1`` (taken modulo ``period``) of a 1-D signal of ``n`` samples
    followed by zeros, from ``read(a, b)`` (samples ``a..b-1``, ``b <= n``, ``[1, ch, b-a]``):
    the gather the whole-input encoder does, one run of the file at a time."""
    parts = []
    for a, b in _runs(start, stop, period):
        if a < n:
            parts.append(read(a, min(b, n)))
        if b > n:
            parts.append(like.new_zeros(*like.shape[:2], b - max(a, n)))
    return parts[0] if len(parts) == 1 else torch.cat(parts, 2)


def encode_tiles(model, x: torch.Tensor | None, size: tuple[int, ...], weight: torch.Tensor,
                 bias: torch.Tensor, tile: int | None = None,
                 read: Callable[[int, int], torch.Tensor] | None = None,
                 ) -> Iterator[tuple[tuple[slice, ...], torch.Tensor]]:
    """Analysis output (before companding) of input ``x`` ``[B, ch, *size]`` tile by tile,
    with ``weight``/``bias`` as the 1x1 analysis layer: yields (latent slices, values). The
    input is padded as the whole-input encoder pads it (images: mirror; audio: zeros), with
    periodic wrap for the transform, by index gathers; ``x`` may be any dtype (cast per tile).

    Audio may come from ``read(a, b)`` instead of ``x`` (``x`` None): samples ``a..b-1`` as
    ``[1, ch, b-a]``, already scaled; only the windows the tiles need are read (streamed
    encoding of long files, the same bits as the whole input)."""
    from .synthesis import pointwise

    levels, block = model.preset.levels, model.preset.block
    grid = tuple(-(-n // block) for n in size)
    tile = tile or TILE[len(grid)]
    before, after = support(levels, False)
    mirror = model.preset.dims == 2
    layer = nn.Module()
    layer.weight, layer.bias = weight, bias

    like = weight.new_zeros(1, model.preset.channels, 1)
    for spans in _with_progress(list(_tiles(grid, tile))):
        t = x
        if not mirror:  # audio: zeros after the end, periodic wrap; slices, not a gather
            (s, e), = spans
            t = _window(read or (lambda a, b: x[..., a:b]), (s - before) * block,
                        (e + after) * block, size[0], grid[0] * block,
                        like if x is None else x[..., :1])
        for d, ((s, e), n, g) in enumerate(zip(spans, size, grid) if mirror else ()):
            padded = torch.arange((s - before) * block, (e + after) * block) % (g * block)
            t = _gather(t, 2 + d, mirror_index(g * block, n)[padded].tolist())
        coeffs = wpt(t.to(weight.dtype), levels)
        coeffs = coeffs[(..., *(slice(before, before + e - s) for s, e in spans))]
        # Position-local codecs: the size-independent 1x1 layer (tiles equal the whole);
        # legacy codecs keep the convolution their golden files were made with.
        a = (pointwise(layer, coeffs) if model.position_local else
             (F.conv2d if mirror else F.conv1d)(coeffs, weight, bias))
        yield tuple(slice(s, e) for s, e in spans), a
