"""The WaLLoC model: shapes, bottleneck, companding, determinism, weights I/O."""

import math

import pytest
import torch

from pywalloc import PRESETS, Codec, compand, decompand, load
from pywalloc.presets import WeightsNotFoundError, get_preset


def _input(codec: Codec, size: tuple[int, ...], batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    if codec.preset.modality == "image":
        return torch.rand(batch, codec.preset.channels, *size) - 0.5
    return (torch.rand(batch, 2, *size) * 2 - 1) * 0.5


@pytest.fixture(scope="module")
def tiny_codecs():
    torch.manual_seed(0)
    return {name: Codec(name, width=16, blocks=1) for name in PRESETS}


@pytest.mark.parametrize("name,expected_dr", [("rgb-16x", 16.0), ("rgb-4x", 4.0),
                                              ("gray-16x", 16.0), ("gray-4x", 4.0),
                                              ("stereo-20x", 512 / 27), ("stereo-5x", 512 / 108)])
def test_dimensionality_reduction(tiny_codecs, name, expected_dr):
    codec = tiny_codecs[name].eval()
    size = (64, 96) if codec.preset.modality == "image" else (4096,)
    x = _input(codec, size)
    z = codec.encode(x)
    assert x[0].numel() / z[0].numel() == pytest.approx(expected_dr)
    assert codec.preset.dr == pytest.approx(expected_dr)


@pytest.mark.parametrize("name", list(PRESETS))
def test_encode_int8_range_and_odd_sizes(tiny_codecs, name):
    codec = tiny_codecs[name].eval()
    sizes = [(1, 1), (7, 13), (9, 8), (1, 40)] if codec.preset.modality == "image" else [(1,), (300,), (777,)]
    for size in sizes:
        x = _input(codec, size)
        with pytest.raises(ValueError, match="outside the expected"):
            codec.encode(x * 50)  # far outside the range: refused, not silently saturated
        x = torch.where(x >= 0, codec.hi, codec.lo)  # the range's extremes: still int8
        z = codec.encode(x)
        assert z.dtype == torch.int8
        assert int(z.min()) >= -127 and int(z.max()) <= 127
        b = codec.preset.block
        assert tuple(z.shape[2:]) == tuple(math.ceil(s / b) for s in size)
        with torch.no_grad():
            y = codec.decode(z, size)
        assert tuple(y.shape) == tuple(x.shape)
        assert float(y.min()) >= codec.lo and float(y.max()) <= codec.hi


def test_companding_range_and_inverse():
    x = torch.linspace(-400, 400, 10001, dtype=torch.float64)
    y = compand(x)
    assert float(y.abs().max()) < 127.5
    assert torch.round(y).abs().max() <= 127
    inner = x.abs() < 150  # where Phi stays inside the clamp, decompanding inverts exactly
    assert torch.allclose(decompand(y)[inner], x[inner], atol=1e-6)
    assert float(decompand(torch.tensor(127.0)).item()) < 300  # clamped, finite


def test_bottleneck_noise_in_train_rounding_in_eval(tiny_codecs):
    codec = tiny_codecs["rgb-16x"]
    y = torch.linspace(-3, 3, 1000)
    codec.train()
    noisy = codec.bottleneck(y)
    assert (noisy - y).abs().max() <= 0.5 and (noisy - y).std() > 0.2
    assert not torch.equal(noisy, torch.round(y))
    codec.eval()
    assert torch.equal(codec.bottleneck(y), torch.round(y))


@pytest.mark.parametrize("name", ["rgb-16x", "stereo-20x"])
def test_gradient_flows_through_noisy_bottleneck(tiny_codecs, name):
    codec = tiny_codecs[name].train()
    codec.zero_grad()
    x = _input(codec, (32, 32) if name.startswith("rgb") else (2048,))
    out = codec(x)
    out.mse.backward()
    assert codec.analysis.weight.grad is not None
    assert float(codec.analysis.weight.grad.abs().sum()) > 0
    assert all(p.grad is not None for p in codec.synthesis.parameters() if p.requires_grad)
    assert out.x_hat.shape == x.shape


def test_eval_mode_is_deterministic(tiny_codecs):
    codec = tiny_codecs["rgb-4x"].eval()
    x = _input(codec, (40, 24))
    z1, z2 = codec.encode(x), codec.encode(x)
    assert torch.equal(z1, z2)
    assert torch.equal(codec.decode(z1), codec.decode(z2))
    assert torch.equal(codec(x).x_hat, codec(x).x_hat)


def test_continuous_latents_round_to_encode(tiny_codecs):
    codec = tiny_codecs["rgb-16x"].eval()
    x = _input(codec, (16, 16))
    y = codec.latents(x)
    assert y.dtype == torch.float32 and float(y.detach().abs().max()) < 127.5
    assert torch.equal(torch.round(y).to(torch.int8), codec.encode(x))


def test_save_load_roundtrip_and_hash(tmp_path, tiny_codecs):
    codec = tiny_codecs["stereo-5x"].eval()
    path = tmp_path / "c.safetensors"
    codec.save(path, half=False)
    again = Codec.from_file(path)
    assert again.config == codec.config
    assert again.weight_hash == codec.weight_hash
    with torch.no_grad():
        again.analysis.bias.add_(1.0)
    assert again.weight_hash != codec.weight_hash  # in-place change invalidates the cache


def test_unknown_preset_and_missing_weights():
    with pytest.raises(KeyError, match="unknown codec"):
        get_preset("rgb-99x")
    with pytest.raises(KeyError, match="unknown size"):
        load("rgb-16x", size="huge")
    with pytest.raises(WeightsNotFoundError):
        load("rgb-16x", size="paper")


def test_wrong_input_shape_is_rejected(tiny_codecs):
    with pytest.raises(ValueError, match="expects"):
        tiny_codecs["rgb-16x"].encode(torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match="expects"):
        tiny_codecs["stereo-20x"].encode(torch.zeros(1, 2, 16, 16))


def test_bundled_codecs_load_in_eval_mode():
    from pywalloc.zoo import available

    assert {"rgb-16x", "rgb-4x", "stereo-20x", "stereo-5x"} <= set(available())
    for name in available():
        codec = load(name)
        assert not codec.training
        assert codec.preset.name == name
