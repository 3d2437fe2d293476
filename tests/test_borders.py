"""Whole-sample symmetric borders of the wavelet packet transform (``border="symmetric"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pywalloc.wavelets import BORDERS, iwpt, wpt

pywt = pytest.importorskip("pywt")


def _reflect_dwt(sig: np.ndarray) -> list[np.ndarray]:
    """One level with PyWavelets' whole-sample symmetric mode ('reflect'), which is not
    critically sampled: its coefficients 2 .. 2 + N/2 are the critically sampled ones."""
    n = sig.shape[-1] // 2
    return [band[..., 2 : 2 + n] for band in pywt.dwt(sig, "bior4.4", mode="reflect")]


def _packet_1d(sig: np.ndarray, levels: int) -> np.ndarray:
    bands = [sig]
    for _ in range(levels):
        bands = [part for band in bands for part in _reflect_dwt(band)]
    return np.stack(bands)


def _packet_2d(img: np.ndarray, levels: int) -> np.ndarray:
    bands = [img]
    for _ in range(levels):
        nxt = []
        for band in bands:
            lo_w, hi_w = _reflect_dwt(band)  # along W (last axis)
            ca, ch = _reflect_dwt(lo_w.T)
            cv, cd = _reflect_dwt(hi_w.T)
            nxt += [ca.T, ch.T, cv.T, cd.T]  # dwt2 order: cA, cH (high along H), cV, cD
        bands = nxt
    return np.stack(bands)


@pytest.mark.parametrize(("shape", "levels"), [((1, 1, 64), 1), ((2, 2, 256), 3), ((1, 1, 512), 5)])
def test_1d_matches_pywavelets_reflect(shape, levels):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    got = wpt(x, levels, border="symmetric").numpy()
    per = 2**levels
    for i in range(shape[0]):
        for j in range(shape[1]):
            np.testing.assert_allclose(got[i, j * per : (j + 1) * per],
                                       _packet_1d(x[i, j].numpy(), levels), rtol=0, atol=1e-10)


@pytest.mark.parametrize(("shape", "levels"), [((1, 1, 32, 48), 1), ((1, 3, 64, 96), 3)])
def test_2d_matches_pywavelets_reflect(shape, levels):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    got = wpt(x, levels, border="symmetric").numpy()
    per = 4**levels
    for j in range(shape[1]):
        np.testing.assert_allclose(got[0, j * per : (j + 1) * per],
                                   _packet_2d(x[0, j].numpy(), levels), rtol=0, atol=1e-10)


def test_2d_one_level_equals_dwt2_reflect_crop():
    x = torch.randn(1, 1, 16, 24, dtype=torch.float64)
    ca, (ch, cv, cd) = pywt.dwt2(x[0, 0].numpy(), "bior4.4", mode="reflect")
    got = wpt(x, 1, border="symmetric")[0].numpy()
    for k, band in enumerate((ca, ch, cv, cd)):
        np.testing.assert_allclose(got[k], band[2:10, 2:14], rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("shape", "levels"),
    [((2, 3, 64, 48), 3), ((1, 1, 8, 8), 3), ((1, 2, 16, 32), 4), ((1, 2, 4096), 8),
     ((1, 1, 256), 8), ((3, 2, 40), 2)],
)
def test_symmetric_perfect_reconstruction(shape, levels):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    y = wpt(x, levels, border="symmetric")
    assert y.shape == wpt(x, levels).shape  # critically sampled, same layout as periodization
    torch.testing.assert_close(iwpt(y, levels, border="symmetric"), x, atol=1e-9, rtol=0)


def test_interior_coefficients_agree_with_periodization():
    x = torch.randn(1, 1, 512, dtype=torch.float64)
    sym, per = wpt(x, 1, border="symmetric"), wpt(x, 1)
    torch.testing.assert_close(sym[..., 4:-4], per[..., 4:-4], atol=1e-12, rtol=0)
    assert (sym[..., :2] - per[..., :2]).abs().max() > 1e-3  # borders differ on noise


def test_symmetric_extension_of_smooth_ramp_has_small_border_details():
    # A ramp is not periodic: periodization sees a jump at the border, symmetric extension
    # sees a corner only, so the high band at the ends is much smaller.
    x = torch.linspace(0, 1, 64, dtype=torch.float64).view(1, 1, -1)
    per_hi = wpt(x, 1)[0, 1].abs()
    sym_hi = wpt(x, 1, border="symmetric")[0, 1].abs()
    assert sym_hi.max() < 0.2 * per_hi.max()


def test_default_border_is_periodization_and_bad_border_raises():
    assert BORDERS[0] == "periodization"
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(wpt(x, 2), wpt(x, 2, border="periodization"))
    with pytest.raises(ValueError, match="border"):
        wpt(x, 2, border="reflect")
    with pytest.raises(ValueError, match="border"):
        iwpt(wpt(x, 2), 2, border="zero")


def test_symmetric_float32_and_gradients():
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    y = wpt(x, 3, border="symmetric")
    assert y.dtype == torch.float32
    w = torch.randn_like(x)
    (iwpt(y, 3, border="symmetric") * w).sum().backward()
    torch.testing.assert_close(x.grad, w, atol=1e-4, rtol=0)
