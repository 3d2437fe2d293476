"""pywalloc.resample: the format's polyphase resampler, against scipy's resample_poly (the
same filter, which the tests install) and against what a resampler must do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pywalloc import limits, resample
from pywalloc.resample import design_filter, output_frames, resample_poly

ROOT = Path(__file__).resolve().parents[1]
signal = pytest.importorskip("scipy.signal")

PAIRS = [(48000, 44100), (44100, 48000), (22050, 44100), (44100, 22050), (8000, 44100),
         (44100, 8000), (96000, 44100), (192000, 44100), (11025, 44100), (44100, 44000),
         (32000, 44100), (16000, 44100)]


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("frames", [1, 2, 5, 37, 4410])
def test_matches_scipy(pair, frames):
    sr_from, sr_to = pair
    g = np.gcd(sr_from, sr_to)
    up, down = sr_to // g, sr_from // g
    x = np.random.default_rng(frames).standard_normal((frames, 2))
    want = signal.resample_poly(x, up, down, axis=0)  # float64 in, float64 out
    got = resample_poly(x.astype(np.float32), up, down)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert got.shape[0] == output_frames(frames, up, down)
    x32 = x.astype(np.float32).astype(np.float64)  # what the float32 input holds
    np.testing.assert_allclose(got, signal.resample_poly(x32, up, down, axis=0), atol=2e-6)
    if sr_to == 44100:
        assert got.shape[0] == limits.codec_frames(frames, sr_from)


def test_filter_is_scipys():
    for up, down in [(147, 160), (2, 1), (441, 80)]:
        rate = max(up, down)
        want = signal.firwin(20 * rate + 1, 1.0 / rate, window=("kaiser", 5.0)) * up
        np.testing.assert_allclose(design_filter(up, down), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("up", "down"), [(147, 160), (160, 147), (2, 1), (80, 441)])
def test_whole_ranges_and_stream_give_the_same_bits(monkeypatch, up, down):
    """Long inputs go in chunks; reading ranges or feeding a stream must give the same
    bits as the whole signal, and the chunk seams must not show."""
    monkeypatch.setattr(resample, "_CHUNK", 1000)  # many chunks
    x = np.random.default_rng(up).standard_normal((9001, 2)).astype(np.float32)
    whole = resample_poly(x, up, down)
    r = resample.Resampler(up, down, len(x))
    assert r.chunks > 5
    np.testing.assert_allclose(whole, signal.resample_poly(x.astype(np.float64), up, down,
                                                           axis=0), atol=2e-6)
    reads = []

    def read(lo, hi):
        reads.append((lo, hi))
        return x[lo:hi]

    rng = np.random.default_rng(0)
    for _ in range(20):
        a = int(rng.integers(0, r.out_frames))
        b = int(rng.integers(a, min(r.out_frames, a + 3000) + 1))
        reads.clear()
        np.testing.assert_array_equal(r.range(read, a, b), whole[a:b])
        span = sum(hi - lo for lo, hi in reads)
        lo0, hi0 = r.chunk_inputs(0)
        assert span <= 2 * (b - a) * down / up + 3 * (hi0 - lo0)  # about what it needs
    s = resample.StreamResampler(up, down, len(x))
    parts, pos = [], 0
    while pos < len(x):
        n = int(rng.integers(1, 2500))
        parts.append(s.push(x[pos:pos + n]))
        pos += n
        if pos < len(x):
            assert not s.done
        assert len(s._buf) <= 2500 + 3 * resample._CHUNK  # bounded buffer
    assert s.done
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    with pytest.raises(ValueError, match="announced"):
        s.push(x[:1])


@pytest.mark.parametrize(("up", "down"), [(147, 160), (160, 147)])
def test_ranges_compute_each_chunk_once_for_windows_in_order(monkeypatch, up, down):
    """The tiled encoder's windows overlap and go in order, with a wrap to the end first;
    ``ranges`` keeps recent chunks so each is computed about once, with the same bits."""
    monkeypatch.setattr(resample, "_CHUNK", 1000)
    x = np.random.default_rng(down).standard_normal((20001, 2)).astype(np.float32)
    whole = resample_poly(x, up, down)
    r = resample.Resampler(up, down, len(x))
    computed = []
    real_chunk = r.chunk
    monkeypatch.setattr(r, "chunk", lambda k, read: computed.append(k) or real_chunk(k, read))
    get = r.ranges(lambda lo, hi: x[lo:hi])
    n, tile, halo = r.out_frames, 1500, 200
    got = get(n - halo, n)  # the first window's wrap
    np.testing.assert_array_equal(got, whole[n - halo:])
    got[:] = 0  # the caller owns what it gets: the kept chunk is untouched
    np.testing.assert_array_equal(get(n - halo, n), whole[n - halo:])
    for s in range(0, n, tile):
        a, b = max(0, s - halo), min(n, s + tile + halo)
        np.testing.assert_array_equal(get(a, b), whole[a:b])
    assert len(computed) <= r.chunks + 2  # the chunks the wrap read come again at the end
    assert sorted(set(computed)) == list(range(r.chunks))
    computed.clear()
    for s in range(0, n, tile):  # the uncached range computes shared chunks again
        r.range(lambda lo, hi: x[lo:hi], max(0, s - halo), min(n, s + tile + halo))
    assert len(computed) > r.chunks + 1


def test_shapes_reduction_and_errors():
    x = np.random.default_rng(1).standard_normal(999).astype(np.float32)
    mono = resample_poly(x, 147, 160)
    assert mono.shape == (output_frames(999, 147, 160),)
    np.testing.assert_array_equal(resample_poly(x, 294, 320), mono)  # same ratio, unreduced
    np.testing.assert_array_equal(resample_poly(x[:, None], 147, 160)[:, 0], mono)
    np.testing.assert_array_equal(resample_poly(x, 3, 3), x)
    assert resample_poly(np.zeros((0, 2), np.float32), 147, 160).shape == (0, 2)
    with pytest.raises(ValueError, match="positive"):
        resample_poly(x, 0, 2)
    with pytest.raises(ValueError, match="frames"):
        resample_poly(np.zeros((2, 2, 2)), 2, 1)


def test_tone_keeps_pitch_and_level():
    t = np.arange(48000) / 48000
    x = (0.5 * np.sin(2 * np.pi * 997.0 * t)).astype(np.float32)
    y = resample_poly(x, 147, 160)
    spectrum = np.abs(np.fft.rfft(y[2000:-2000] * np.hanning(len(y) - 4000)))
    assert abs(np.argmax(spectrum) * 44100 / (len(y) - 4000) - 997.0) < 2.0
    assert abs(np.abs(y[2000:-2000]).max() - 0.5) < 0.005


def test_encoding_48k_does_not_import_scipy(tmp_path):
    code = ("import sys, numpy as np, pywalloc\n"
            "x = np.random.default_rng(0).uniform(-.5, .5, (4800, 2)).astype(np.float32)\n"
            "y, sr = pywalloc.decompress(pywalloc.compress(x, sample_rate=48000))\n"
            "assert y.shape == (4800, 2) and sr == 48000, (y.shape, sr)\n"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'scipy'], 'scipy'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False, timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
