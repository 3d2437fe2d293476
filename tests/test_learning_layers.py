"""Shapes and input scaling of the latent-space layers and reference models."""

from __future__ import annotations

import pytest
import torch

from pywalloc.learning.layers import (
    LATENT_SCALE,
    ConvStem,
    LatentConvNet,
    LatentConvSeq,
    LatentPatchEmbed,
    LatentViT,
)


def test_patch_embed_2d_shapes_and_padding():
    embed = LatentPatchEmbed(12, 32, patch=2)
    assert embed(torch.zeros(3, 12, 28, 28)).shape == (3, 32, 14, 14)
    assert embed(torch.zeros(1, 12, 27, 29)).shape == (1, 32, 14, 15)  # zero-padded at the end
    # int8 latents are accepted as they come out of Codec.encode.
    z = torch.randint(-127, 128, (2, 12, 8, 8), dtype=torch.int8)
    assert embed(z).shape == (2, 32, 4, 4)


def test_patch_embed_1d():
    embed = LatentPatchEmbed(27, 16, patch=4, dims=1)
    assert embed(torch.zeros(2, 27, 10)).shape == (2, 16, 3)


def test_patch_embed_scaling():
    x = torch.full((1, 3, 2, 2), 127.5)
    assert torch.allclose(LatentPatchEmbed(3, 4).normalise(x), torch.ones_like(x))
    assert LATENT_SCALE == pytest.approx(1 / 127.5)
    mean, std = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 0.5])
    e = LatentPatchEmbed(3, 4, mean=mean, std=std)
    x = torch.randn(2, 3, 4, 4) * std[:, None, None] + mean[:, None, None]
    expected = (x - mean[:, None, None]) / std[:, None, None]
    torch.testing.assert_close(e.normalise(x), expected)
    with pytest.raises(ValueError):
        LatentPatchEmbed(3, 4, mean=mean)
    with pytest.raises(ValueError):
        LatentPatchEmbed(3, 4, patch=0)
    with pytest.raises(ValueError):
        LatentPatchEmbed(3, 4, dims=3)


def test_classifiers_shapes_and_gradients():
    cnn = LatentConvNet(12, 10, patch=2, dim=8, depths=(1, 1))
    out = cnn(torch.randn(4, 12, 28, 28))
    assert out.shape == (4, 10) and cnn.width == 16
    out.sum().backward()
    assert all(p.grad is not None for p in cnn.parameters() if p.requires_grad)
    # Same body on 56x56 pixels with a 4x4 patch: the same parameter count but the embedding.
    pix = LatentConvNet(3, 10, patch=4, dim=8, depths=(1, 1))
    assert pix(torch.randn(4, 3, 56, 56)).shape == (4, 10)
    n_body = sum(p.numel() for p in cnn.body.parameters())
    assert n_body == sum(p.numel() for p in pix.body.parameters())
    vit = LatentViT(48, 7, patch=2, dim=32, depth=1, heads=2)
    assert vit(torch.randn(2, 48, 12, 10)).shape == (2, 7)


def test_conv_stem_pairs_pixels_and_latents_on_one_grid():
    # 56x56 pixels with space-to-depth 2 and 28x28 rgb-16x latents enter the same layers.
    pix, lat = ConvStem(3, 16, 2), ConvStem(12, 16, 1)
    assert pix(torch.randn(2, 3, 56, 56)).shape == lat(torch.randn(2, 12, 28, 28)).shape \
        == (2, 16, 14, 14)
    assert [p.shape for p in pix.body.parameters()] == [p.shape for p in lat.body.parameters()]
    assert ConvStem(3, 8, 8)(torch.randn(1, 3, 224, 224)).shape == (1, 8, 14, 14)
    assert ConvStem(3, 8, 2)(torch.randn(1, 3, 27, 29)).shape == (1, 8, 7, 8)  # padded at the end
    # No linear bottleneck in front of the stem: space-to-depth only rearranges the pixels.
    x = torch.randn(1, 3, 8, 8)
    s2d = torch.nn.functional.pixel_unshuffle(ConvStem(3, 4, 4).normalise(x), 4)
    assert s2d.shape == (1, 48, 2, 2) and torch.equal(s2d.flatten().sort()[0],
                                                      (x / 127.5).flatten().sort()[0])
    # The pyramid stem reaches the same grid in steps of 2: 3 -> 12 -> 48 -> width channels.
    pyr = ConvStem(3, 64, 8, pyramid=True)
    assert pyr(torch.randn(1, 3, 224, 224)).shape == (1, 64, 14, 14)
    convs = [m for m in pyr.body if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(12, 12), (48, 48), (192, 64),
                                                                (64, 64)]
    assert isinstance(ConvStem(12, 8, 1, pyramid=True).body[0], torch.nn.Conv2d)
    with pytest.raises(ValueError):
        ConvStem(3, 8, 6, pyramid=True)
    assert LatentConvNet(3, 10, 4, dim=8, stem="pyramid")(torch.randn(2, 3, 112, 112)).shape \
        == (2, 10)
    cnn = LatentConvNet(3, 10, patch=2, dim=8, depths=(1, 1), stem="conv")
    out = cnn(torch.randn(4, 3, 56, 56))
    assert out.shape == (4, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in cnn.parameters() if p.requires_grad)
    vit = LatentViT(12, 7, patch=1, dim=32, depth=1, heads=2, stem="conv")
    assert vit(torch.randn(2, 12, 28, 28)).shape == (2, 7)
    with pytest.raises(ValueError):
        LatentConvNet(3, 10, stem="mlp")
    with pytest.raises(ValueError):
        ConvStem(3, 8, 0)


def test_seq_net_identity_at_init_and_shapes():
    net = LatentConvSeq(27, patch=2, dim=16, depth=2, mean=torch.zeros(27),
                        std=torch.full((27,), 20.0))
    x = torch.randn(2, 27, 33) * 20
    torch.testing.assert_close(net(x), x)  # zero-initialised head + skip: starts at its input
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    (net(x) - 0.5 * x).pow(2).mean().backward()
    opt.step()
    y = net(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    wave = LatentConvSeq(2, patch=27, dim=16, depth=3, skip=False)
    assert wave(torch.randn(1, 2, 27 * 5 + 3)).shape == (1, 2, 27 * 5 + 3)
    with pytest.raises(ValueError):
        LatentConvSeq(2, 3, skip=True)
