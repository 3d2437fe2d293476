"""Position-local decoder norms: LocalGroupNorm, ChannelAffine (frozen GroupNorm), hashes;
the size-independent 1x1 layer (pointwise)."""

from __future__ import annotations

import torch
from torch import nn

from pywalloc.codec import Codec
from pywalloc.synthesis import (
    ChannelNorm,
    LocalGroupNorm,
    freeze_group_norms,
    group_norm_statistics,
    pointwise,
)


def _gn_pair(dims: int):
    torch.manual_seed(0)
    gn = nn.GroupNorm(4, 16)
    gn.weight.data.uniform_(0.5, 1.5)
    gn.bias.data.uniform_(-0.5, 0.5)
    loc = LocalGroupNorm(4, 16, window=65)
    loc.load_state_dict(gn.state_dict())
    shape = (2, 16, 20) if dims == 1 else (2, 16, 12, 9)
    return gn, loc, torch.randn(shape) * 3 + 1


def test_local_group_norm_is_group_norm_when_the_window_covers_the_input():
    for dims in (1, 2):
        gn, loc, x = _gn_pair(dims)
        assert torch.allclose(loc(x), gn(x), atol=1e-5)


def test_local_norms_are_position_local():
    for norm in (LocalGroupNorm(4, 16, window=5), ChannelNorm(16)):
        x = torch.randn(1, 16, 40)
        y = x.clone()
        y[..., 30:] += 5.0  # a change far from the first positions
        reach = getattr(norm, "window", 1) // 2
        assert torch.equal(norm(x)[..., : 30 - reach], norm(y)[..., : 30 - reach])
        assert not torch.equal(norm(x)[..., 30 - reach:], norm(y)[..., 30 - reach:])


def test_frozen_group_norm_matches_group_norm_on_its_calibration_input():
    gn, _, x = _gn_pair(2)
    x = x[:1]
    net = nn.Sequential(gn)
    expected = gn(x)
    stats = group_norm_statistics(net, [x])
    assert freeze_group_norms(net, stats) == 1
    assert not any(isinstance(m, nn.GroupNorm) for m in net.modules())
    assert torch.allclose(net(x), expected, atol=1e-4)


def test_weight_hash_names_the_norm_except_for_group_norm():
    group = Codec("stereo-20x", norm="group")
    local = Codec("stereo-20x", norm="local")
    local.load_state_dict(group.state_dict())
    assert local.weight_hash != group.weight_hash
    twin = Codec("stereo-20x", norm="local")
    twin.load_state_dict(group.state_dict())
    assert twin.weight_hash == local.weight_hash


def _pointwise_in_one_pass(conv, x):
    """The reference: one pass over the whole output per input channel, in channel order."""
    w = conv.weight.flatten(1)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    out = x[:, :1] * w[:, 0].view(shape) + conv.bias.view(shape)
    for i in range(1, w.shape[1]):
        out += x[:, i : i + 1] * w[:, i].view(shape)
    return out


def test_pointwise_in_chunks_gives_the_one_pass_sum_to_the_bit(monkeypatch):
    """pointwise() takes positions in cache-sized chunks; the chunk edges (a small chunk here,
    so that audio and images cross several, the last one short) change no bit."""
    from pywalloc import synthesis

    monkeypatch.setattr(synthesis, "_POINTWISE_CHUNK", 7 * 300)  # 300 positions for 7 outputs
    torch.manual_seed(0)
    for conv, shape in ((nn.Conv1d(12, 7, 1), (2, 12, 1000)), (nn.Conv2d(12, 7, 1), (1, 12, 37, 41)),
                        (nn.Conv1d(12, 7, 1), (1, 12, 256)), (nn.Conv1d(12, 7, 1), (1, 12, 0))):
        x = torch.randn(shape) * 1e3
        with torch.no_grad():
            got, want = pointwise(conv, x), _pointwise_in_one_pass(conv, x)
        assert got.shape == want.shape and torch.equal(got, want)
        if x.numel():
            assert torch.allclose(got, conv(x), rtol=1e-4, atol=1e-2)
    # Off the CPU (here the shape-only "meta" device) it is one pass: no chunk launches.
    conv, x = nn.Conv1d(12, 7, 1).to("meta"), torch.empty(2, 12, 1000, device="meta")
    calls = []
    monkeypatch.setattr(torch.Tensor, "new_empty", lambda *a, **k: calls.append(a))
    assert pointwise(conv, x).shape == (2, 7, 1000) and calls == []
