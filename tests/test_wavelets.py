"""Tests for the fused polyphase wavelet packet transform against PyWavelets (bior4.4, periodized)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pywt  # the oracle: a hard test dependency (the test extra), never skipped
import torch

from pywalloc.wavelets import iwpt, tune_allocator, wpt

ROOT = Path(__file__).resolve().parents[1]


def _pywt_packet_2d(img: np.ndarray, levels: int) -> np.ndarray:
    """Full 2D packet tree by repeated dwt2; bands listed parent-major (level 1 most significant)."""
    bands = [img]
    for _ in range(levels):
        nxt = []
        for band in bands:
            ca, (ch, cv, cd) = pywt.dwt2(band, "bior4.4", mode="periodization")
            nxt += [ca, ch, cv, cd]
        bands = nxt
    return np.stack(bands)


def _pywt_packet_1d(sig: np.ndarray, levels: int) -> np.ndarray:
    bands = [sig]
    for _ in range(levels):
        nxt = []
        for band in bands:
            nxt += list(pywt.dwt(band, "bior4.4", mode="periodization"))
        bands = nxt
    return np.stack(bands)


def _expected_2d(x: torch.Tensor, levels: int) -> np.ndarray:
    b, c, h, w = x.shape
    per = 4**levels
    out = np.empty((b, c * per, h >> levels, w >> levels))
    for i in range(b):
        for j in range(c):
            out[i, j * per : (j + 1) * per] = _pywt_packet_2d(x[i, j].numpy(), levels)
    return out


def _expected_1d(x: torch.Tensor, levels: int) -> np.ndarray:
    b, c, t = x.shape
    per = 2**levels
    out = np.empty((b, c * per, t >> levels))
    for i in range(b):
        for j in range(c):
            out[i, j * per : (j + 1) * per] = _pywt_packet_1d(x[i, j].numpy(), levels)
    return out


# Shapes cover both periodic paths: block counts below 2K (wrapped window) and above (bulk plus
# stitched edges), and level counts that need one or two fused stages.
@pytest.mark.parametrize(
    ("shape", "levels"),
    [((2, 3, 16, 24), 1), ((1, 2, 8, 64), 1), ((1, 1, 16, 64), 2), ((1, 1, 64, 136), 3),
     ((1, 1, 8, 8), 3), ((1, 1, 32, 16), 4)],
)
def test_2d_matches_pywavelets_packet_tree(shape, levels):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = wpt(x, levels).numpy()
    np.testing.assert_allclose(got, _expected_2d(x, levels), rtol=0, atol=1e-10)


def test_2d_one_level_is_dwt2_in_ca_ch_cv_cd_order():
    x = torch.randn(1, 1, 16, 32, dtype=torch.float64)
    ca, (ch, cv, cd) = pywt.dwt2(x[0, 0].numpy(), "bior4.4", mode="periodization")
    got = wpt(x, 1)[0].numpy()
    for k, band in enumerate((ca, ch, cv, cd)):
        np.testing.assert_allclose(got[k], band, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("shape", "levels"),
    [((2, 3, 40), 1), ((1, 2, 128), 2), ((1, 1, 256), 3), ((1, 1, 8), 3), ((1, 1, 512), 5),
     ((1, 2, 2048), 8), ((1, 1, 256), 8)],
)
def test_1d_matches_pywavelets_packet_tree(shape, levels):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    got = wpt(x, levels).numpy()
    np.testing.assert_allclose(got, _expected_1d(x, levels), rtol=0, atol=1e-10)


def test_1d_one_level_is_dwt():
    x = torch.randn(1, 1, 64, dtype=torch.float64)
    ca, cd = pywt.dwt(x[0, 0].numpy(), "bior4.4", mode="periodization")
    got = wpt(x, 1)[0].numpy()
    np.testing.assert_allclose(got[0], ca, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got[1], cd, rtol=0, atol=1e-10)


def _random_cases(dims: int, max_levels: int, count: int, seed: int):
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        levels = int(rng.integers(1, max_levels + 1))
        step = 2**levels
        if dims == 2:
            spatial = [step * int(rng.integers(1, max(2, 96 // step) + 1)) for _ in range(2)]
        else:
            spatial = [step * int(rng.integers(1, max(2, 2048 // step) + 1))]
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), *spatial)
        cases.append((shape, levels))
    return cases


@pytest.mark.parametrize(("shape", "levels"), _random_cases(2, 4, 12, seed=3))
def test_2d_perfect_reconstruction_float32(shape, levels):
    x = torch.randn(*shape)
    y = wpt(x, levels)
    assert y.shape == (shape[0], shape[1] * 4**levels, shape[2] >> levels, shape[3] >> levels)
    assert (iwpt(y, levels) - x).abs().max().item() < 1e-5


@pytest.mark.parametrize(("shape", "levels"), _random_cases(1, 8, 16, seed=4))
def test_1d_perfect_reconstruction_float32(shape, levels):
    x = torch.randn(*shape)
    y = wpt(x, levels)
    assert y.shape == (shape[0], shape[1] * 2**levels, shape[2] >> levels)
    assert (iwpt(y, levels) - x).abs().max().item() < 1e-5


@pytest.mark.parametrize(
    ("shape", "levels"),
    [((1, 2, 64, 48), 3), ((2, 1, 32, 32), 4), ((1, 1, 8, 8), 3), ((1, 1, 16, 8), 3),
     ((1, 2, 4096), 8), ((1, 1, 96), 5), ((1, 1, 8), 3), ((1, 1, 256), 8)],
)
def test_perfect_reconstruction_float64(shape, levels):
    x = torch.randn(*shape, dtype=torch.float64)
    y = wpt(x, levels)
    assert y.dtype == torch.float64
    assert (iwpt(y, levels) - x).abs().max().item() < 5e-12


def test_levels_zero_is_identity():
    x = torch.randn(1, 2, 8, 8)
    assert torch.equal(wpt(x, 0), x)
    assert torch.equal(iwpt(x, 0), x)


def test_batch_and_channels_are_independent_blocks():
    x = torch.randn(2, 3, 32, 32)
    y = wpt(x, 2)
    for i in range(2):
        for c in range(3):
            alone = wpt(x[i : i + 1, c : c + 1], 2)
            torch.testing.assert_close(y[i : i + 1, c * 16 : (c + 1) * 16], alone)


def test_non_contiguous_input():
    base = torch.randn(1, 2, 64, 32)
    x = base.transpose(-1, -2)
    torch.testing.assert_close(wpt(x, 3), wpt(x.contiguous(), 3))
    a = torch.randn(1, 512, 3)[..., 1].unsqueeze(0)  # [1, 1, 512] with a stride of 3
    torch.testing.assert_close(wpt(a, 4), wpt(a.contiguous(), 4))


def test_energy_is_roughly_preserved():
    # bior4.4 is biorthogonal but close to orthogonal: energy ratios stay near 1.
    x2 = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    x1 = torch.randn(2, 2, 4096, dtype=torch.float64)
    for x, levels in ((x2, 3), (x1, 8)):
        ratio = (wpt(x, levels).square().sum() / x.square().sum()).item()
        assert 0.85 < ratio < 1.15, ratio


def test_gradcheck_2d_and_1d():
    # 8 x 24 with one level: rows take the wrapped-window path, columns the bulk-and-edges path.
    x2 = torch.randn(1, 1, 8, 24, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: wpt(t, 1), (x2,), fast_mode=True)
    y2 = torch.randn(1, 4, 4, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: iwpt(t, 1), (y2,), fast_mode=True)
    x1 = torch.randn(1, 1, 64, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: wpt(t, 2), (x1,), fast_mode=True)
    y1 = torch.randn(1, 4, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: iwpt(t, 2), (y1,), fast_mode=True)


def test_gradient_of_round_trip_is_identity_float32():
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    w = torch.randn(1, 3, 64, 64)
    (iwpt(wpt(x, 3), 3) * w).sum().backward()
    torch.testing.assert_close(x.grad, w, atol=1e-4, rtol=0)


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        wpt(torch.randn(4, 4), 1)
    with pytest.raises(ValueError):
        wpt(torch.randn(1, 1, 1, 8, 8), 1)
    with pytest.raises(ValueError):
        wpt(torch.randn(1, 1, 12, 16), 3)
    with pytest.raises(ValueError):
        wpt(torch.randn(1, 1, 100), 3)
    with pytest.raises(ValueError):
        wpt(torch.randn(1, 1, 16), -1)
    with pytest.raises(ValueError):
        wpt(torch.randn(1, 1, 16), 1.0)
    with pytest.raises(TypeError):
        wpt(torch.zeros(1, 1, 8, 8, dtype=torch.int32), 1)
    with pytest.raises(ValueError):
        iwpt(torch.randn(1, 6, 4, 4), 1)
    with pytest.raises(ValueError):
        iwpt(torch.randn(1, 3, 8), 1)
    with pytest.raises(ValueError):
        iwpt(torch.randn(8, 8), 1)
    with pytest.raises(TypeError):
        iwpt(torch.zeros(1, 4, 4, 4, dtype=torch.int64), 1)


def test_tune_allocator_keeps_results_identical():
    x = torch.randn(1, 1, 64, 64)
    before = wpt(x, 3)
    assert isinstance(tune_allocator(), bool)
    assert torch.equal(wpt(x, 3), before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.randn(2, 3, 64, 96)
    a = torch.randn(1, 2, 4096)
    for t, levels in ((x, 3), (a, 8)):
        y = wpt(t.cuda(), levels)
        assert y.is_cuda
        torch.testing.assert_close(y.cpu(), wpt(t, levels), atol=1e-5, rtol=1e-5)
        assert (iwpt(y, levels).cpu() - t).abs().max().item() < 1e-5


def test_benchmark_quick_runs():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "wavelets.py"), "--quick"],
        check=False, capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "MPix/s" in proc.stdout and "MSamples/s" in proc.stdout


def test_cached_tensors_survive_inference_mode():
    """Index and kernel caches filled under inference_mode must still work with autograd."""
    from pywalloc import wavelets as wv

    wv._TENSOR_CACHE.clear()
    wv._gather_rows.cache_clear()
    with torch.inference_mode():
        wv.iwpt(wv.wpt(torch.randn(1, 3, 24, 40), 3), 3)
        wv.iwpt(wv.wpt(torch.randn(1, 2, 512), 8), 8)
    x = torch.randn(1, 3, 24, 40, requires_grad=True)
    wv.iwpt(wv.wpt(x, 3), 3).sum().backward()
    a = torch.randn(1, 2, 512, requires_grad=True)
    wv.iwpt(wv.wpt(a, 8), 8).sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x), atol=1e-4)
    assert torch.allclose(a.grad, torch.ones_like(a), atol=1e-4)
