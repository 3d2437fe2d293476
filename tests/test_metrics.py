"""Hand-checkable cases for pywalloc.evaluation.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pywalloc.evaluation import MetricInputError
from pywalloc.evaluation import metrics as M


def _img(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth-ish content so SSIM is meaningful: random field plus gradients.
    base = rng.integers(0, 256, size=(h // 4 + 1, w // 4 + 1, 3)).astype(np.float64)
    big = np.kron(base, np.ones((4, 4, 1)))[:h, :w]
    return np.clip(big + rng.normal(0, 8, size=(h, w, 3)), 0, 255).astype(np.uint8)


def _noisy(img: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


# ----------------------------------------------------------------------------- PSNR
def test_psnr_identical_is_inf():
    img = _img(16, 16)
    assert M.psnr_rgb8(img, img) == math.inf


def test_psnr_rgb8_unit_error():
    img = np.full((8, 8, 3), 100, np.uint8)
    # Every value off by exactly 1 -> MSE 1 -> 20*log10(255).
    assert M.psnr_rgb8(img, img + 1) == pytest.approx(20 * math.log10(255), abs=1e-9)


def test_psnr_generic_peak_and_half_error():
    a = np.zeros((10, 10))
    b = a.copy()
    b[:5] = 0.1  # half the elements off by 0.1 -> MSE 0.005
    assert M.psnr(a, b, peak=1.0) == pytest.approx(10 * math.log10(1 / 0.005))
    assert M.psnr(a, b, peak=2.0) == pytest.approx(10 * math.log10(4 / 0.005))


def test_psnr_rejects_bad_inputs():
    img = _img(8, 8)
    with pytest.raises(MetricInputError):
        M.psnr_rgb8(img, img[:4])
    with pytest.raises(MetricInputError):
        M.psnr_rgb8(img.astype(np.float32), img.astype(np.float32))
    with pytest.raises(MetricInputError):
        M.psnr(img, img, peak=0)


# ----------------------------------------------------------------------------- MS-SSIM
@pytest.mark.parametrize("size", [(180, 176), (64, 96), (24, 24)])
def test_ms_ssim_identical_is_one(size):
    img = _img(*size)
    assert M.ms_ssim(img, img) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("size", [(176, 168), (48, 40)])
def test_ms_ssim_decreases_with_noise(size):
    img = _img(*size)
    values = [M.ms_ssim(img, _noisy(img, s)) for s in (2, 8, 32)]
    assert 1.0 > values[0] > values[1] > values[2] > 0.0


def test_cached_scorer_matches_pytorch_msssim():
    from pytorch_msssim import ms_ssim as ref_ms_ssim

    img = _img(176, 168)
    scorer = M.MSSSIMScorer(img)
    assert scorer.levels == 5
    for sigma in (3, 10, 30):
        dist = _noisy(img, sigma, seed=sigma)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].double()
        y = torch.from_numpy(dist).permute(2, 0, 1)[None].double()
        expected = float(ref_ms_ssim(x, y, data_range=255.0))
        # float32 here vs float64 in the oracle.
        assert scorer.score(dist) == pytest.approx(expected, abs=1e-5)
        assert M.ms_ssim(img, dist) == pytest.approx(expected, abs=1e-5)


def test_ms_ssim_small_image_uses_fewer_scales():
    img = _img(64, 64)
    dist = _noisy(img, 10)
    # 64 px: 64 > 10*2**2 but not > 10*2**3, so three scales.
    assert M.MSSSIMScorer(img).levels == 3
    assert M.ms_ssim(img, dist) == pytest.approx(M.MSSSIMScorer(img, levels=3).score(dist))
    assert M.ms_ssim(img, dist) != pytest.approx(M.MSSSIMScorer(img, levels=2).score(dist))
    # One scale is plain SSIM.
    from pytorch_msssim import ssim as ref_ssim

    x = torch.from_numpy(img).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(dist).permute(2, 0, 1)[None].double()
    expected = float(ref_ssim(x, y, data_range=255.0))
    assert M.MSSSIMScorer(img, levels=1).score(dist) == pytest.approx(expected, abs=1e-5)


def test_ms_ssim_rejects_tiny_image():
    img = _img(8, 8)
    with pytest.raises(MetricInputError):
        M.ms_ssim(img, img)


def test_db_forms():
    assert M.ms_ssim_db(0.99) == pytest.approx(20.0)
    assert M.ms_ssim_db(0.9) == pytest.approx(10.0)
    assert M.ms_ssim_db(1.0) == math.inf
    assert M.distance_db(0.1) == pytest.approx(10.0)
    assert M.distance_db(0.01) == pytest.approx(20.0)
    assert M.distance_db(0.0) == math.inf


# ----------------------------------------------------------------------------- audio
def _stereo(n: int = 8000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal((n, 2))).astype(np.float32)


def test_audio_psnr_known_offset():
    x = _stereo()
    assert M.audio_psnr(x, x) == math.inf
    assert M.audio_psnr(x, x + 0.01) == pytest.approx(40.0, abs=1e-3)


def test_si_sdr_known_orthogonal_noise():
    rng = np.random.default_rng(3)
    s = rng.standard_normal(4000)
    s -= s.mean()
    e = rng.standard_normal(4000)
    e -= e.mean()
    e -= (e @ s) / (s @ s) * s  # orthogonal to s
    e *= math.sqrt(0.01 * (s @ s) / (e @ e))  # 20 dB below s
    assert M.si_sdr(s, s + e) == pytest.approx(20.0, abs=1e-9)


def test_si_sdr_scale_invariance_and_identity():
    x = _stereo()
    noisy = x + 0.05 * _stereo(seed=9)
    base = M.si_sdr(x, noisy)
    # float32 inputs: scaling rounds each sample, hence the 1e-6 dB tolerance.
    assert M.si_sdr(x, 3.7 * noisy) == pytest.approx(base, abs=1e-6)
    assert M.si_sdr(x, 0.01 * noisy) == pytest.approx(base, abs=1e-6)
    assert M.si_sdr(x, x) == math.inf
    # Noise 0.05x the signal's rms -> SNR 20*log10(20) = 26 dB; SI-SDR is close to it.
    assert 25.5 < base < 26.5


def test_si_sdr_skips_silent_channels():
    x = _stereo()
    x[:, 1] = 0
    noisy = x + 0.03 * _stereo(seed=2)
    left_only = M.si_sdr(x[:, :1], noisy[:, :1])
    assert M.si_sdr(x, noisy) == pytest.approx(left_only)


# ----------------------------------------------------------------------------- SSDR / SRDR
SR = 8000


def test_spatial_identical_hits_ceiling():
    x = _stereo(3 * SR)
    sc = M.spatial_distortion(x, x, SR)
    assert sc.ssdr == M.SPATIAL_DB_CEILING and sc.srdr == M.SPATIAL_DB_CEILING
    assert sc.frames == 2  # 3 s clip, 2 s window, 1 s hop -> frames at 0 s and 1 s
    y = _stereo(SR * 7 // 2)
    assert M.spatial_distortion(y, y, SR).frames == 3  # 0 s, 1 s and a tail frame at 1.5 s
    assert M.spatial_distortion(x[: SR // 2], x[: SR // 2], SR).frames == 1


def test_spatial_gain_change_is_spatial_not_residual():
    x = _stereo(3 * SR)
    sc = M.spatial_distortion(x, 0.5 * x, SR)
    # s_tilde = 0.5 s exactly: ||s||^2 / ||0.5 s - s||^2 = 4 -> 6.02 dB; no residual.
    assert sc.ssdr == pytest.approx(10 * math.log10(4), abs=1e-6)
    assert sc.srdr == M.SPATIAL_DB_CEILING


def test_spatial_channel_swap():
    x = _stereo(3 * SR)
    swapped = x[:, ::-1].copy()
    sc = M.spatial_distortion(x, swapped, SR)
    # Independent equal-energy channels: ||swap(s) - s||^2 ~ 2 ||s||^2 -> about -3 dB.
    assert sc.ssdr == pytest.approx(-3.0, abs=0.3)
    assert sc.srdr > 60.0


def test_spatial_delay_is_modelled():
    x = _stereo(3 * SR)
    delayed = np.zeros_like(x)
    delayed[10:] = x[:-10]
    sc = M.spatial_distortion(x, delayed, SR)
    assert sc.ssdr == pytest.approx(-3.0, abs=0.3)  # white noise vs its delayed copy
    assert sc.srdr > 60.0


def test_spatial_additive_noise_is_residual():
    x = _stereo(4 * SR)
    noise = 0.1 * _stereo(4 * SR, seed=5)  # 0.03 rms vs 0.3 rms -> 20 dB
    sc = M.spatial_distortion(x, x + noise, SR)
    assert sc.srdr == pytest.approx(20.0, abs=0.5)
    assert sc.ssdr > 35.0


def test_spatial_rejects_mismatch():
    x = _stereo(SR)
    with pytest.raises(MetricInputError):
        M.spatial_distortion(x, x[:-1], SR)
