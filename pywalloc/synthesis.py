"""Decoder networks: 2D residual blocks for images, 1D dilated residual units for audio."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _groups(width: int) -> int:
    for g in (32, 16, 8, 4, 2):
        if width % g == 0:
            return g
    return 1


class Snake(nn.Module):
    """x + sin²(αx)/α with a learned α per channel (periodic inductive bias for audio)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha
        return x + torch.sin(a * x).pow(2) / (a + 1e-9)


def channel_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over dim 1 (keepdim) by halving: elementwise adds only, so every position gets the
    same arithmetic whatever the tensor's size. A reduction kernel's blocking depends on the
    size and changes the last bits, which would make tiles differ from the whole input."""
    n = x.shape[1]
    while n > 1:
        h = n // 2
        s = x[:, :h] + x[:, h : 2 * h]
        if n % 2:
            s[:, :1] += x[:, 2 * h :]
        x, n = s, h
    return x


# Positions per chunk in pointwise(): the chunk's output (this many float32 values, 1 MB)
# stays in the cache while every input channel is added into it.
_POINTWISE_CHUNK = 1 << 18


def pointwise(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution as a fixed-order sum over input channels (elementwise multiplies and
    adds), exact in the same sense as :func:`channel_sum`; oneDNN and BLAS pick a blocking by
    size. Used at inference for the narrow latent-side layers, where it is also cheap.

    The positions are taken in chunks, so that the sum being built stays in the cache; every
    position gets the same operations in the same order, so the result is the same to the bit.
    That pays where one call holds many positions (a batch: 5-25 % in docs/speed.md); the
    codec's default tiles mostly fit the cache already. On other devices: one pass.
    """
    w = conv.weight.flatten(1)
    b, c = x.shape[:2]
    flat = x.reshape(b, c, -1)
    n = flat.shape[-1]
    # On a GPU each chunk would cost kernel launches, and there is no such cache to fit.
    step = (max(256, _POINTWISE_CHUNK // max(1, b * w.shape[0])) if x.device.type == "cpu"
            else max(n, 1))
    columns = [w[:, i].view(1, -1, 1) for i in range(w.shape[1])]
    bias = conv.bias.view(1, -1, 1)
    out = None
    for s in range(0, max(n, 1), step):  # an empty input gives an empty output
        part = flat[..., s : s + step]
        acc = part[:, :1] * columns[0] + bias
        for i in range(1, len(columns)):
            acc += part[:, i : i + 1] * columns[i]
        if n <= step:
            out = acc
            break
        if out is None:
            out = acc.new_empty(b, acc.shape[1], n)
        out[..., s : s + step] = acc
    return out.reshape(b, w.shape[0], *x.shape[2:])


class ChannelNorm(nn.Module):
    """LayerNorm over the channels at each position, with a per-channel affine.

    Position-local: every output position depends on that position alone, so tiled decoding
    with enough overlap is exact and a 1x1 input behaves like a patch of a large one. Its
    parameters are named like GroupNorm's, so weights of the older decoders load as a start.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inv = 1.0 / x.shape[1]
        xc = x - channel_sum(x) * inv
        var = channel_sum(xc * xc) * inv
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return xc * torch.rsqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)


class ChannelAffine(nn.Module):
    """A fixed per-channel scale and shift: a normalisation whose statistics were measured
    once on training data (like BatchNorm at inference) instead of on each input.

    Position-local. :func:`freeze_group_norms` turns a GroupNorm decoder into this form.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.view(shape) + self.bias.view(shape)


class LocalGroupNorm(nn.Module):
    """GroupNorm whose statistics come from a sliding window of ``window`` positions (per
    axis) around each position instead of the whole input: position-local, with a bounded
    reach of ``window // 2`` positions, so tiled decoding with that much more overlap is exact.

    For a long input it approaches GroupNorm; its parameters are named like GroupNorm's, so a
    GroupNorm decoder converts by loading its weights (measured: no retraining needed, see
    docs/models.md). Windows are truncated at the input's borders.
    """

    def __init__(self, num_groups: int, num_channels: int, window: int = 33,
                 eps: float = 1e-5) -> None:
        super().__init__()
        if window % 2 == 0:
            raise ValueError("the window must be odd")
        self.num_groups, self.num_channels, self.window, self.eps = (num_groups, num_channels,
                                                                     window, eps)
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        rest = x.shape[2:]
        g = x.reshape(b, self.num_groups, c // self.num_groups, *rest)
        # Channel sums in a fixed order (channel_sum), so tiles give the whole input's bits.
        gt = g.transpose(1, 2)
        inv = 1.0 / gt.shape[1]
        stats = torch.cat([channel_sum(gt)[:, 0] * inv, channel_sum(gt * gt)[:, 0] * inv], 1)
        k, pad = self.window, self.window // 2
        pool = F.avg_pool1d if len(rest) == 1 else F.avg_pool2d
        stats = pool(stats, k, 1, pad, count_include_pad=False)
        mean, sq = stats.split(self.num_groups, 1)
        inv = torch.rsqrt((sq - mean.square()).clamp_min(0) + self.eps)
        y = ((g - mean.unsqueeze(2)) * inv.unsqueeze(2)).reshape(x.shape)
        shape = (1, -1) + (1,) * len(rest)
        return y * self.weight.view(shape) + self.bias.view(shape)


NORMS = ("group", "channel", "affine", "local")


def make_norm(kind: str, width: int) -> nn.Module:
    """``"group"``: GroupNorm over the whole input (legacy decoders, not position-local);
    ``"channel"``: :class:`ChannelNorm`; ``"affine"``: :class:`ChannelAffine`; ``"local"``:
    :class:`LocalGroupNorm` (GroupNorm's groups, statistics over a 33-position window)."""
    if kind == "group":
        return nn.GroupNorm(_groups(width), width)
    if kind == "channel":
        return ChannelNorm(width)
    if kind == "affine":
        return ChannelAffine(width)
    if kind == "local":
        return LocalGroupNorm(_groups(width), width)
    raise ValueError(f"unknown norm '{kind}' (choose from {', '.join(NORMS)})")


@torch.no_grad()
def group_norm_statistics(net: nn.Module, batches) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Mean and variance of each GroupNorm's input groups, pooled over every position of every
    batch that ``batches`` yields (inputs to ``net``). Keys: the GroupNorms' module names."""
    sums: dict[str, list] = {}
    hooks = []
    for name, m in net.named_modules():
        if isinstance(m, nn.GroupNorm):
            def hook(mod, args, _out, name=name):
                x = args[0].double()
                g = x.reshape(x.shape[0], mod.num_groups, -1)
                acc = sums.setdefault(name, [0.0, 0.0, 0])
                acc[0] = acc[0] + g.sum(dim=(0, 2))
                acc[1] = acc[1] + g.square().sum(dim=(0, 2))
                acc[2] += g.shape[0] * g.shape[2]
            hooks.append(m.register_forward_hook(hook))
    try:
        for b in batches:
            net(b)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for name, (s, s2, n) in sums.items():
        mean = s / n
        out[name] = (mean, (s2 / n - mean.square()).clamp_min(0))
    return out


def freeze_group_norms(net: nn.Module, stats: dict) -> int:
    """Replace every GroupNorm of ``net`` by the :class:`ChannelAffine` that applies the pooled
    statistics ``stats`` (from :func:`group_norm_statistics`); returns how many it replaced."""
    count = 0
    for name, m in list(net.named_modules()):
        for child_name, child in list(m.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if not isinstance(child, nn.GroupNorm):
                continue
            mean, var = stats[full]
            per = child.num_channels // child.num_groups
            mean_c = mean.repeat_interleave(per).float()
            inv = torch.rsqrt(var.repeat_interleave(per) + child.eps).float()
            aff = ChannelAffine(child.num_channels)
            aff.weight.data = child.weight.data * inv
            aff.bias.data = child.bias.data - child.weight.data * inv * mean_c
            setattr(m, child_name, aff)
            count += 1
    return count


class ResBlock2d(nn.Module):
    """Norm → SiLU → 3x3 conv, twice, with an identity skip."""

    def __init__(self, width: int, kernel: int = 3, norm: str = "group") -> None:
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            make_norm(norm, width),
            nn.SiLU(),
            nn.Conv2d(width, width, kernel, padding=pad),
            make_norm(norm, width),
            nn.SiLU(),
            nn.Conv2d(width, width, kernel, padding=pad),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResUnit1d(nn.Module):
    """Dilated residual unit: for each dilation, activation → dilated conv → activation → 1x1."""

    def __init__(self, width: int, kernel: int = 7, dilations=(1, 3, 9)) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(
                Snake(width),
                nn.Conv1d(width, width, kernel, dilation=d, padding=d * (kernel // 2)),
                Snake(width),
                nn.Conv1d(width, width, 1),
            )
            for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = x + stage(x)
        return x


class SelfAttention(nn.Module):
    """One global multi-head self-attention block over all positions (paper size only)."""

    def __init__(self, width: int, dims: int, heads: int = 8) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(width), width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attn(seq, seq, seq, need_weights=False)
        return x + out.transpose(1, 2).reshape(shape)


def _to_float32(module: nn.Module, args, out: torch.Tensor) -> torch.Tensor:
    return out.float()


class Synthesis(nn.Module):
    """Latents → wavelet coefficients: a linear 1x1 path plus a residual CNN correction.

    The linear path alone is the best linear decoder (initialised as the pseudo-inverse of the
    analysis layer); the CNN starts at zero output, so training starts from that decoder.
    """

    def __init__(self, latent: int, out: int, width: int, blocks: int, dims: int,
                 attention: bool = False, kernel: int = 3, kernel_1d: int = 7,
                 norm: str = "group", pad: str = "zeros") -> None:
        super().__init__()
        if pad not in ("zeros", "replicate"):
            raise ValueError(f"unknown decoder padding {pad!r} (zeros or replicate)")
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        self.linear = conv(latent, out, 1)
        layers: list[nn.Module] = [conv(latent, width, 1)]
        for i in range(blocks):
            layers.append(ResBlock2d(width, kernel, norm) if dims == 2
                          else ResUnit1d(width, kernel_1d))
            if attention and i == blocks // 2 - 1:
                layers.append(SelfAttention(width, dims))
        layers += [make_norm(norm, width), nn.SiLU(),
                   conv(width, out, kernel if dims == 2 else kernel_1d,
                        padding=(kernel if dims == 2 else kernel_1d) // 2)]
        self.net = nn.Sequential(*layers)
        # Tiles decode exactly only without statistics over the whole input; only then is the
        # size-independent arithmetic of pointwise() worth it (legacy decoders keep their bits).
        self.position_local = norm in ("channel", "affine", "local") and not attention
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        for m in self.net.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)) and max(m.padding) > 0:
                m.padding_mode = pad  # the padding amounts stay; only their values change
        for m in self.net.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)) and m is not self.net[-1]:
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5))
        self._bf16_hooks: list = []

    @property
    def train_bf16(self) -> bool:
        """Training only: the CNN's convolutions compute in bfloat16 (their outputs cast back to
        float32, so norms, activations, the residual sums and the linear path stay float32).
        1.5x faster training steps on CPUs with bf16 instructions; inference is unaffected."""
        return bool(self._bf16_hooks)

    @train_bf16.setter
    def train_bf16(self, on: bool) -> None:
        for h in self._bf16_hooks:
            h.remove()
        self._bf16_hooks = []
        if on:
            for m in self.net.modules():
                if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                    self._bf16_hooks.append(m.register_forward_hook(_to_float32))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``z``: decompanded latents (linear path); ``y``: companded ones in [-127.5, 127.5]."""
        if self.training or not self.position_local:
            with torch.autocast(y.device.type, dtype=torch.bfloat16,
                                enabled=self.training and bool(self._bf16_hooks)):
                h = self.net(y * (1.0 / 32.0))
            return self.linear(z) + h
        # Inference: the latent-side 1x1 layers in a size-independent order (see pointwise).
        h = pointwise(self.net[0], y * (1.0 / 32.0))
        for layer in self.net[1:]:
            h = layer(h)
        return pointwise(self.linear, z) + h
