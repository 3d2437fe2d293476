"""Input layers and small reference models for training directly on WaLLoC latents (or, for
comparison, on pixels/waveforms of the same dimension): patch embedding, a CNN, a ViT, a 1D
sequence-to-sequence net.

Example, a classifier on ``rgb-16x`` latents (``[B, 12, 28, 28]`` for 224x224 images)::

    from pywalloc.learning import LatentDataset, channel_stats
    from pywalloc.learning.layers import LatentConvNet

    ds = LatentDataset("imagenette-16x")
    mean, std = channel_stats(ds)
    model = LatentConvNet(in_channels=12, num_classes=len(ds.label_names), patch=2,
                          mean=mean, std=std)
    logits = model(ds[0][0][None])  # [1, num_classes]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LATENT_SCALE",
    "ChannelNorm",
    "ConvStem",
    "LatentConvNet",
    "LatentConvSeq",
    "LatentPatchEmbed",
    "LatentViT",
    "sincos_2d",
]

# Latents lie in [-127.5, 127.5] (int8 after rounding): this maps them into [-1, 1].
LATENT_SCALE = 1.0 / 127.5


def _conv(dims: int) -> type[nn.Module]:
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 (audio) or 2 (images), got {dims}")
    return nn.Conv1d if dims == 1 else nn.Conv2d


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of ``[B, C, ...]`` tensors (conv layout)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)
        x = F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


class _Standardised(nn.Module):
    """Per-channel input standardisation (buffers ``mean``/``std``) and end padding, shared
    by the input layers."""

    def _set_stats(self, in_channels: int, dims: int, scale: float, mean, std) -> None:
        shape = (1, in_channels) + (1,) * dims
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        if mean is None:
            m, s = torch.zeros(shape), torch.full(shape, 1.0 / scale)
        else:
            m = torch.as_tensor(mean, dtype=torch.float32).reshape(shape)
            s = torch.as_tensor(std, dtype=torch.float32).reshape(shape).clamp_min(1e-6)
        self.register_buffer("mean", m)
        self.register_buffer("std", s)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Input standardisation only (what the network sees before its first layer)."""
        return (x.float() - self.mean) / self.std

    @staticmethod
    def _pad_end(x: torch.Tensor, multiple: int) -> torch.Tensor:
        """Zero-pad every spatial axis at its end to a multiple of ``multiple``."""
        pad = [(-n) % multiple for n in reversed(x.shape[2:])]
        return F.pad(x, [p for e in pad for p in (0, e)]) if any(pad) else x


class LatentPatchEmbed(_Standardised):
    """Non-overlapping patch embedding over latent positions: ``[B, C, h, w]`` → ``[B, dim,
    h/patch, w/patch]`` (``dims=1``: ``[B, C, t]`` → ``[B, dim, t/patch]``).

    The input is first brought to unit scale: with ``mean``/``std`` (per channel, e.g. from
    :func:`pywalloc.learning.channel_stats`) it is standardised, otherwise multiplied by
    ``scale`` (default maps the int8/companded range ±127.5 to ±1). Standardising matters:
    the first latent channels carry most of the energy (std ~35 vs ~2 for the last ones).
    Inputs whose size is not a multiple of ``patch`` are zero-padded at the end.
    """

    def __init__(self, in_channels: int, dim: int, patch: int = 2, *, dims: int = 2,
                 scale: float = LATENT_SCALE, mean: Sequence[float] | torch.Tensor | None = None,
                 std: Sequence[float] | torch.Tensor | None = None) -> None:
        super().__init__()
        if patch < 1:
            raise ValueError(f"patch must be >= 1, got {patch}")
        self.patch, self.dims = patch, dims
        self._set_stats(in_channels, dims, scale, mean, std)
        self.proj = _conv(dims)(in_channels, dim, patch, stride=patch)
        self.norm = ChannelNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(self._pad_end(self.normalise(x), self.patch)))


class ConvStem(_Standardised):
    """A stem without a linear bottleneck: ``[B, C, H, W]`` → ``[B, width, H/(2s), W/(2s)]``.

    The input is standardised as in :class:`LatentPatchEmbed`, rearranged by space-to-depth
    with factor ``s`` (``pixel_unshuffle``, lossless; ``s=1`` for latents), then a 3x3
    convolution to ``width`` channels at that grid and a 2x2 stride-2 convolution, each
    followed by BatchNorm and ReLU. A pixel input resized to 56x56 with ``s=2`` and
    ``rgb-16x`` latents of 224x224 (12 x 28 x 28) then enter the same layers with the same
    shape. Unlike a patch embedding of ``dim`` channels, which maps every token's
    ``C * patch²`` values linearly onto ``dim`` (a reduction for large patches), the first
    layer here keeps ``width`` values per position of the ``H/s`` grid. ``pyramid=True`` (``s``
    a power of 2) reaches that grid in steps of 2 instead, a 3x3 convolution after each, with
    ``min(width, values per position)`` channels before the last: for a full-size image
    (``s=8``) that is 12 channels at 1/2 size, then 48, then ``width`` at 1/8 size.
    """

    def __init__(self, in_channels: int, width: int, s: int = 1, *, pyramid: bool = False,
                 scale: float = LATENT_SCALE, mean: Sequence[float] | torch.Tensor | None = None,
                 std: Sequence[float] | torch.Tensor | None = None) -> None:
        super().__init__()
        if s < 1 or (pyramid and s & (s - 1)):
            raise ValueError(f"space-to-depth factor must be >= 1 (a power of 2 with pyramid=True)"
                             f", got {s}")
        self.s = s
        self._set_stats(in_channels, 2, scale, mean, std)
        factors = [2] * (s.bit_length() - 1) if pyramid and s > 1 else [s]
        layers: list[nn.Module] = []
        c = in_channels
        for i, f in enumerate(factors):
            if f > 1:
                layers.append(nn.PixelUnshuffle(f))
            w = width if i == len(factors) - 1 else min(width, c * f * f)
            layers += [nn.Conv2d(c * f * f, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                       nn.ReLU()]
            c = w
        layers += [nn.Conv2d(width, width, 2, stride=2, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self._pad_end(self.normalise(x), 2 * self.s))


def _embed(stem: str, in_channels: int, dim: int, patch: int, embed_kwargs: dict
           ) -> nn.Module:
    """The classifiers' input layer: ``"patch"`` (:class:`LatentPatchEmbed`), ``"conv"`` or
    ``"pyramid"`` (:class:`ConvStem`)."""
    if stem == "patch":
        return LatentPatchEmbed(in_channels, dim, patch, **embed_kwargs)
    if stem in ("conv", "pyramid"):
        return ConvStem(in_channels, dim, patch, pyramid=stem == "pyramid", **embed_kwargs)
    raise ValueError(f"stem must be 'patch', 'conv' or 'pyramid', got {stem!r}")


class _ResBlock2d(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(),
            nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class LatentConvNet(nn.Module):
    """Small ResNet-style classifier: patch embedding, then stages of 3x3 residual blocks, each
    stage after the first halving the grid and doubling the width; global average pooling.

    With ``patch`` chosen so that the embedded grid is the same (e.g. 2 on 28x28 latents, 4 on
    56x56 pixels), latents and resized pixels get exactly the same network body.

    ``stem="conv"`` replaces the patch embedding by :class:`ConvStem` with space-to-depth
    factor ``patch`` (1 for latents, 2 for 56x56 pixels against 28x28 latents): the grid is
    then halved by the stem instead of divided by ``patch``; ``stem="pyramid"`` uses
    ``ConvStem(..., pyramid=True)``.
    """

    def __init__(self, in_channels: int, num_classes: int, patch: int = 2, *, dim: int = 32,
                 depths: Sequence[int] = (1, 2), dropout: float = 0.0, stem: str = "patch",
                 **embed_kwargs) -> None:
        super().__init__()
        self.embed = _embed(stem, in_channels, dim, patch, embed_kwargs)
        layers: list[nn.Module] = [nn.ReLU()]
        width = dim
        for i, depth in enumerate(depths):
            if i:
                layers += [nn.Conv2d(width, 2 * width, 2, stride=2, bias=False),
                           nn.BatchNorm2d(2 * width), nn.ReLU()]
                width *= 2
            layers += [_ResBlock2d(width) for _ in range(depth)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))
        self.width = width

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[B, width]``."""
        return self.body(self.embed(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def sincos_2d(h: int, w: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed 2D sine-cosine position embedding ``[h*w, dim]`` (any grid size, no parameters)."""
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4 for 2D sin-cos positions, got {dim}")
    q = dim // 4
    freq = 1.0 / (10000 ** (torch.arange(q, device=device, dtype=torch.float32) / q))
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    out = [f(c.reshape(-1, 1) * freq) for c in (ys, xs) for f in (torch.sin, torch.cos)]
    return torch.cat(out, dim=1)


class LatentViT(nn.Module):
    """ViT-Tiny-like classifier (pre-norm Transformer, mean-pooled tokens, fixed 2D sin-cos
    positions so any latent grid works). Defaults are small enough to train on a CPU.
    ``stem="conv"`` or ``"pyramid"`` makes the tokens with :class:`ConvStem` (an
    early-convolution ViT)."""

    def __init__(self, in_channels: int, num_classes: int, patch: int = 2, *, dim: int = 96,
                 depth: int = 4, heads: int = 3, mlp_ratio: float = 2.0, dropout: float = 0.0,
                 stem: str = "patch", **embed_kwargs) -> None:
        super().__init__()
        self.embed = _embed(stem, in_channels, dim, patch, embed_kwargs)
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embed(x)
        h, w = e.shape[2:]
        tokens = e.flatten(2).transpose(1, 2) + sincos_2d(h, w, e.shape[1], e.device)
        return self.head(self.norm(self.blocks(tokens)).mean(dim=1))


class _ResBlock1d(nn.Module):
    def __init__(self, dim: int, kernel: int, dilation: int) -> None:
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.body = nn.Sequential(
            ChannelNorm(dim), nn.Conv1d(dim, 2 * dim, kernel, padding=pad, dilation=dilation),
            nn.GELU(), nn.Conv1d(2 * dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class LatentConvSeq(nn.Module):
    """Sequence-to-sequence 1D conv net for audio latents (or waveforms): patch embedding,
    dilated residual blocks (dilation 1, 2, 4, ... cycling), and a transposed-conv head back to
    ``out_channels`` at the input length. The output is ``skip * x_std + head(...)`` in the
    standardised input space, then mapped back with the output ``out_mean``/``out_std``, so
    at initialisation the net returns (about) its input — a natural start for separation,
    where the target is part of the mixture.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, patch: int = 2, *,
                 dim: int = 128, depth: int = 6, kernel: int = 5, max_dilation: int = 8,
                 skip: bool = True, out_mean: Sequence[float] | torch.Tensor | None = None,
                 out_std: Sequence[float] | torch.Tensor | None = None,
                 **embed_kwargs) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        if skip and out_channels != in_channels:
            raise ValueError("skip=True needs out_channels == in_channels")
        self.embed = LatentPatchEmbed(in_channels, dim, patch, dims=1, **embed_kwargs)
        cycle = int(math.log2(max_dilation)) + 1
        self.blocks = nn.Sequential(*[_ResBlock1d(dim, kernel, 2 ** (i % cycle))
                                      for i in range(depth)])
        self.head = nn.Sequential(ChannelNorm(dim),
                                  nn.ConvTranspose1d(dim, out_channels, patch, stride=patch))
        nn.init.zeros_(self.head[1].weight)
        nn.init.zeros_(self.head[1].bias)
        self.skip = skip
        shape = (1, out_channels, 1)
        if out_mean is None:
            om, os_ = self.embed.mean.clone(), self.embed.std.clone()
            if om.shape[1] != out_channels:
                om, os_ = torch.zeros(shape), torch.ones(shape)
        else:
            om = torch.as_tensor(out_mean, dtype=torch.float32).reshape(shape)
            os_ = torch.as_tensor(out_std, dtype=torch.float32).reshape(shape)
        self.register_buffer("out_mean", om)
        self.register_buffer("out_std", os_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        y = self.head(self.blocks(self.embed(x)))[..., :n]
        if self.skip:
            y = y + self.embed.normalise(x)
        return y * self.out_std + self.out_mean
