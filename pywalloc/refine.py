"""Encoder-side refinement of the latents (``compress(..., refine=N)``, ``walloc encode --refine N``).

The plain encoder is one linear layer: it does not know what the decoder will make of its
rounded output. Refinement keeps the decoder fixed and spends ``N`` gradient steps choosing
the integer latents: rounding runs in the forward pass and passes gradients straight through,
Adam moves the latents, and the objective is the reconstruction error relative to the plain
encoder's plus a small pull towards the plain encoder's codes (``keep``), which keeps the
lossless WebP rate where it was. The best rounded latents seen are kept, so by the
objective the result is never worse than the plain encoder's.

The output is an ordinary ``.wlc`` file that any pywalloc with the same weights decodes
exactly as before; only encoding is slower. The refined latents are no longer a linear
function of the input, so data sets for compressed-domain learning should use the plain
encoder (the default, ``refine=0``).

Large inputs are refined window by window over the latent grid: each window optimises a core
of latents, decoding a context of ``2 * margin`` latents around it (``margin`` = the
decoder's receptive radius plus the inverse transform's support) and scoring the
reconstruction ``margin`` latents beyond the core, so memory stays bounded. When a window
spans the whole input, the objective is exact (periodic borders included).
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable

import torch

from .codec import Codec, decompand
from .tiling import receptive_radius, support
from .wavelets import iwpt

__all__ = ["DEFAULT_LEARNING_RATE", "KEEP", "LEARNING_RATE", "WINDOW", "refine"]

# Core of a refinement window, in latent positions per axis (images: 768 pixels; audio:
# ~2 M frames). Measured on Kodak (docs/results.md): one window per picture.
WINDOW = {2: 96, 1: 8192}
# Adam's first step in code values, per preset (others: DEFAULT_LEARNING_RATE), decayed to
# zero with a cosine schedule, and the weight of the pull towards the plain encoder's codes
# (mean absolute difference, against a relative error of 1 at the start). The default step was
# first chosen on four Kodak pictures with rgb-16x; the steps were measured off the evaluation
# sets with experiments/refine_sweep.py (docs/results.md): on 8 BSDS500 photos rgb-16x is
# within 0.03 dB from 0.3 to 0.5 (1 and 2 worse at 15 steps); on three 12 s validation mixtures
# stereo-20x at 2 gives in 10 steps what 0.3 did not reach in 60 (4 and 5 diverge), while
# stereo-5x at 2 never improves on its plain codes; on the same 8 BSDS500 photos rgb-4x at 30
# steps gains +0.09 dB at 0.3, +0.13 at 0.6 and 1, +0.05 at 2 (2026-12-05).
DEFAULT_LEARNING_RATE = 0.3
LEARNING_RATE = {"stereo-20x": 2.0, "rgb-4x": 1.0}
KEEP = 0.15


def _windows(grid: tuple[int, ...], core: int, margin: int):
    """(core, context, scored) ranges per axis for each window of the latent grid."""
    axes = []
    for n in grid:
        axis = []
        for s in range(0, n, core):
            c = (s, min(s + core, n))
            axis.append((c, (max(0, c[0] - 2 * margin), min(n, c[1] + 2 * margin)),
                         (max(0, c[0] - margin), min(n, c[1] + margin))))
        axes.append(axis)
    for parts in itertools.product(*axes):
        yield tuple(zip(*parts))


def refine(codec: Codec, x: torch.Tensor, z: torch.Tensor, steps: int, *,
           crop: tuple[slice, ...] | None = None, lr: float | None = None,
           keep: float = KEEP, window: int | None = None,
           progress: Callable[[int], None] | None = None, show: bool = False) -> torch.Tensor:
    """Refined int8 latents, shaped like ``z``.

    ``x``: the codec input ``[1, C, ...]`` (float in the codec's range, or uint8 pixels for
    images) that ``z = codec.encode(x)`` (or ``encode_uint8``) came from; ``crop``: where the
    true signal lies in ``x`` (default: all of it), the only samples that are scored.
    ``progress(n)`` is called after each window with the number of windows done; ``show``
    draws a progress bar of the steps on stderr."""
    if steps <= 0:
        return z
    if x.shape[0] != 1 or z.shape[0] != 1:
        raise ValueError("refine takes one item at a time")
    dims, block, levels = codec.preset.dims, codec.preset.block, codec.preset.levels
    if lr is None:
        lr = LEARNING_RATE.get(codec.preset.name, DEFAULT_LEARNING_RATE)
    grid = tuple(z.shape[2:])
    if crop is None:
        crop = tuple(slice(0, n) for n in x.shape[2:])
    before, after = support(levels, True)
    margin = receptive_radius(codec.synthesis) + max(before, after)
    core = window or WINDOW[dims]
    w = codec.analysis.weight
    y = z.to(w.device, w.dtype)
    # Each window starts from the unrounded encoder output (rounding it gives z back) and
    # sees the current integer latents around it.
    start = codec.continuous_latents(x)
    params = [p for p in codec.synthesis.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    windows = list(_windows(grid, core, margin))
    from tqdm import tqdm

    bar = tqdm(total=len(windows) * steps, desc="refine", unit="step", disable=not show,
               file=sys.stderr, leave=False, dynamic_ncols=True)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            for i, (c, ctx, scored) in enumerate(windows):
                _refine_window(codec, x, y, z, start, c, ctx, scored, crop, block, levels,
                               steps, lr, keep, bar.update)
                if progress is not None:
                    progress(i + 1)
    finally:
        bar.close()
        for p in params:
            p.requires_grad_(True)
    return y.round().clamp_(-127, 127).to(torch.int8).to(z.device)


def _target(x: torch.Tensor, where: tuple[slice, ...], dtype) -> torch.Tensor:
    t = x[(..., *where)]
    if t.dtype == torch.uint8:
        return t.to(dtype) / 255.0 - 0.5
    return t.to(dtype)


def _refine_window(codec, x, y, z, cont, c, ctx, scored, crop, block, levels, steps, lr, keep,
                   tick):
    ctx_sl = tuple(slice(a, b) for a, b in ctx)
    core_in_ctx = tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(c, ctx))
    # Samples scored: the scored latents' blocks, inside the true signal.
    lo = [max(s0 * block, cr.start) for (s0, _), cr in zip(scored, crop)]
    hi = [min(s1 * block, cr.stop) for (_, s1), cr in zip(scored, crop)]
    if any(h <= lo_ for lo_, h in zip(lo, hi)):
        return
    pick = tuple(slice(a - o * block, b - o * block) for a, b, (o, _) in zip(lo, hi, ctx))
    target = _target(x, tuple(slice(a, b) for a, b in zip(lo, hi)), y.dtype)
    core_sl = tuple(slice(a, b) for a, b in c)
    context = y[(..., *ctx_sl)].detach().clone()
    codes = z[(..., *core_sl)].to(y.device, y.dtype)
    start = cont[(..., *core_sl)]
    # The pull is a mean over the latents of the scored region, like the error is a mean over
    # its samples, so that small cores are not held tighter than large ones.
    per = codes.shape[1] * math.prod(b - a for a, b in scored)
    yc = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([yc], lr=lr)

    def objective(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = context.clone()
        full[(..., *core_in_ctx)] = v
        q = full + (full.round().clamp(-127, 127) - full).detach()
        xh = iwpt(codec.synthesis(decompand(q), q), levels)[(..., *pick)]
        return torch.mean((xh - target) ** 2), torch.sum(torch.abs(v - codes)) / per

    best, best_loss, ref = start, math.inf, None
    for t in range(steps + 1):
        mse, pull = objective(yc)
        if ref is None:
            ref = max(float(mse.detach()), 1e-20)
        loss = mse / ref + keep * pull
        rounded = yc.detach().round().clamp(-127, 127)
        value = float(mse.detach()) / ref + keep * float(torch.sum(torch.abs(rounded - codes))) / per
        if value < best_loss:
            best, best_loss = rounded, value
        if t == steps:
            break
        tick(1)
        (grad,) = torch.autograd.grad(loss, [yc])
        yc.grad = grad
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * t / steps))
        opt.step()
    y[(..., *core_sl)] = best
