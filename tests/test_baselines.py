"""Classical baselines: round trips, real byte counts, bitrate ordering and matching."""

from __future__ import annotations

import numpy as np
import pytest

from pywalloc.evaluation import BaselineCodecError
from pywalloc.evaluation import baselines as B
from pywalloc.evaluation import metrics as M


def _image(h: int = 64, w: int = 96) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    img = np.stack([x * 255 / w, y * 255 / h, 128 + 60 * np.sin(x / 5.0 + y / 7.0)], axis=-1)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


IMAGE_CODECS = [c for c in B.IMAGE_BASELINES.values() if c.available]


@pytest.mark.parametrize("codec", IMAGE_CODECS, ids=lambda c: c.name)
def test_image_round_trip_and_rate_ordering(codec):
    img = _image()
    points = list(B.sweep_image(img, codec))
    assert len(points) == len(codec.qualities)
    for p in points:
        assert p.decoded.shape == img.shape and p.decoded.dtype == np.uint8
        assert p.bpp == pytest.approx(8 * p.nbytes / (64 * 96))
    # The sweep runs from fewest to most bits: the ends must be ordered in rate and quality.
    assert points[-1].bpp > points[0].bpp
    assert M.psnr_rgb8(img, points[-1].decoded) > M.psnr_rgb8(img, points[0].decoded) + 3


@pytest.mark.parametrize("codec", IMAGE_CODECS, ids=lambda c: c.name)
def test_image_bpp_matching_beats_the_coarse_sweep(codec):
    img = _image()
    sweep = list(B.sweep_image(img, codec))
    target = 0.5 * (sweep[2].bpp + sweep[3].bpp)
    match = B.match_image_bpp(img, codec, target)
    best_coarse = min(abs(p.bpp - target) for p in sweep)
    assert abs(match.bpp - target) <= best_coarse + 1e-9


def test_jpeg2000_hits_requested_rate():
    codec = B.image_baseline("jpeg2000")
    if not codec.available:
        pytest.skip("no JPEG 2000 in this Pillow")
    img = _image(128, 128)
    p = B.match_image_bpp(img, codec, 1.0)
    assert p.bpp == pytest.approx(1.0, rel=0.1)


def test_image_errors():
    with pytest.raises(BaselineCodecError):
        B.image_baseline("bpg")
    with pytest.raises(BaselineCodecError):
        B.image_baseline("jpeg").encode(np.zeros((8, 8), np.uint8), 50)
    with pytest.raises(BaselineCodecError):
        B.image_baseline("jpeg").decode(b"not an image")
    with pytest.raises(BaselineCodecError):
        B.match_image_bpp(_image(), B.image_baseline("jpeg"), 0.0)


SR = 44100


def _music(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    rng = np.random.default_rng(1)
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1320 * t)
    right = 0.25 * np.sin(2 * np.pi * 330 * t + 0.5) + 0.1 * np.sin(2 * np.pi * 880 * t)
    x = np.stack([left, right], axis=1) * np.minimum(1, t * 20)[:, None]
    return (x + 0.005 * rng.standard_normal(x.shape)).astype(np.float32)


AUDIO_CODECS = [c for c in B.AUDIO_BASELINES.values() if c.available]


@pytest.mark.parametrize("codec", AUDIO_CODECS, ids=lambda c: c.name)
def test_audio_round_trip_is_aligned_and_rate_ordered(codec):
    x = _music()
    lo, hi = list(B.sweep_audio(x, SR, codec, levels=[codec.level_max, 0.0]))
    for p in (lo, hi):
        assert p.decoded.shape == x.shape and p.decoded.dtype == np.float32
        assert p.kbps == pytest.approx(8 * p.nbytes / 1.0 / 1000)
    assert hi.kbps > lo.kbps
    # No codec delay left over: the best alignment of the summed channels is lag 0.
    ref, est = x.sum(1), hi.decoded.sum(1)
    lags = range(-64, 65)
    scores = [float(np.dot(ref[200:-200], np.roll(est, -k)[200:-200])) for k in lags]
    assert list(lags)[int(np.argmax(scores))] == 0
    assert M.audio_psnr(x, hi.decoded) > 30.0


@pytest.mark.parametrize("codec", AUDIO_CODECS, ids=lambda c: c.name)
def test_audio_bitrate_matching(codec):
    x = _music()
    low = next(B.sweep_audio(x, SR, codec, levels=[codec.level_max])).kbps
    high = next(B.sweep_audio(x, SR, codec, levels=[0.0])).kbps
    target = 0.5 * (low + high)
    p = B.match_audio_bitrate(x, SR, codec, target)
    assert abs(p.kbps - target) < 0.25 * target


@pytest.mark.parametrize("codec", AUDIO_CODECS, ids=lambda c: c.name)
def test_audio_bracket_holds_the_target(codec):
    x = _music()
    low = next(B.sweep_audio(x, SR, codec, levels=[codec.level_max])).kbps
    high = next(B.sweep_audio(x, SR, codec, levels=[0.0])).kbps
    target = low + 0.37 * (high - low)
    br = B.bracket_audio_bitrate(x, SR, codec, target)
    assert br.below.kbps <= target <= br.above.kbps
    assert br.nearest.kbps in (br.below.kbps, br.above.kbps)
    assert br.nearest.kbps == B.match_audio_bitrate(x, SR, codec, target).kbps
    v = br.at_rate(lambda y: M.audio_psnr(x, y))
    ends = sorted(M.audio_psnr(x, p.decoded) for p in (br.below, br.above))
    assert ends[0] - 1e-9 <= v <= ends[1] + 1e-9
    # Outside the codec's range nothing is extrapolated: the nearest point's figure.
    far = B.bracket_audio_bitrate(x, SR, codec, 10 * high)
    assert far.below is far.above is far.nearest
    assert far.at_rate(lambda y: M.audio_psnr(x, y)) == M.audio_psnr(x, far.nearest.decoded)


def test_log_rate_interpolation():
    # Halfway in log-rate between 10 and 40 kbps is 20 kbps.
    assert B.log_rate_interpolate(10.0, 30.0, 40.0, 34.0, 20.0) == pytest.approx(32.0)
    assert B.log_rate_interpolate(40.0, 34.0, 10.0, 30.0, 20.0) == pytest.approx(32.0)
    assert B.log_rate_interpolate(10.0, 30.0, 40.0, 34.0, 5.0) == 30.0  # clamped, not extrapolated
    assert B.log_rate_interpolate(10.0, 30.0, 40.0, 34.0, 80.0) == 34.0
    assert B.log_rate_interpolate(10.0, 30.0, 10.0, 31.0, 10.0) == 30.0
    with pytest.raises(ValueError):
        B.log_rate_interpolate(0.0, 30.0, 40.0, 34.0, 20.0)


def test_audio_errors():
    with pytest.raises(BaselineCodecError):
        B.audio_baseline("aac")
    with pytest.raises(BaselineCodecError):
        B.audio_baseline("vorbis").encode(np.zeros(100, np.float32), SR, 0.5)
    with pytest.raises(BaselineCodecError):
        B.audio_baseline("vorbis").encode(np.zeros((100, 2), np.float32), SR, 1.5)
