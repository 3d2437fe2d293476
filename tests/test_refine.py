"""Encoder-side refinement (pywalloc.refine): better reconstructions, ordinary files."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import pywalloc
from pywalloc import api, zoo
from pywalloc.modality import IMAGE
from pywalloc.refine import refine


def _picture(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None]
    img = base + rng.normal(0, 12, (h, w, 3)) + np.array([20, -10, 0])
    return np.clip(img, 0, 255).astype(np.uint8)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


pytestmark = pytest.mark.usefixtures("one_thread")


def test_refined_file_decodes_as_usual_and_is_closer():
    img = _picture()
    plain = pywalloc.compress(img)
    refined = pywalloc.compress(img, refine=12)
    assert pywalloc.compress(img, refine=0) == plain
    a, b = pywalloc.inspect(plain).header, pywalloc.inspect(refined).header
    assert (a.preset, a.shape, a.latent_shape, a.weights_hash) == \
        (b.preset, b.shape, b.latent_shape, b.weights_hash)
    assert refined != plain
    assert _mse(img, pywalloc.decompress(refined)) < _mse(img, pywalloc.decompress(plain))


def test_windows_cover_the_grid_and_still_improve():
    img = _picture(64, 72, seed=1)
    model = zoo.load("rgb-16x")
    x, _ = IMAGE.to_tensor(img)
    with torch.inference_mode():
        z = model.encode_uint8(x)
    whole = refine(model, x, z, 12)
    windows = []
    tiled = refine(model, x, z, 12, window=3, progress=windows.append)
    assert windows == list(range(1, 10))  # 8 x 9 latents in cores of 3: 3 x 3 windows
    assert tiled.dtype == torch.int8 and tiled.shape == z.shape
    with torch.inference_mode():
        base, w1, w2 = (np.array(IMAGE.from_tensor(model.decode(q, img.shape[:2])[0], "RGB"))
                        for q in (z, whole, tiled))
    assert _mse(img, w1) < _mse(img, base)
    assert _mse(img, w2) < _mse(img, base)


def test_audio_refinement_is_no_worse():
    rng = np.random.default_rng(2)
    t = np.arange(44100 // 4) / 44100
    audio = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1) * 0.4
    audio = (audio + rng.normal(0, 0.02, audio.shape)).astype(np.float32)
    plain = pywalloc.compress(audio, sample_rate=44100)
    refined = pywalloc.compress(audio, sample_rate=44100, refine=2)
    out_p, _ = pywalloc.decompress(plain)
    out_r, _ = pywalloc.decompress(refined)
    assert _mse(audio, out_r) <= _mse(audio, out_p)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_api_refuses_bad_step_counts(bad):
    with pytest.raises(ValueError, match="refine"):
        api.compress(_picture(16, 16), refine=bad)


def test_cli_refine(tmp_path):
    from PIL import Image

    src = tmp_path / "p.png"
    Image.fromarray(_picture(24, 40)).save(src)
    bad = subprocess.run([sys.executable, "-m", "pywalloc", "encode", str(src), "--refine", "-2"],
                         check=False, capture_output=True, text=True)
    assert bad.returncode == 2 and "--refine" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "p.wlc").exists()
    ok = subprocess.run([sys.executable, "-m", "pywalloc", "encode", str(src), "--refine", "2",
                         "-q"], check=False, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == ""
    assert pywalloc.decompress((tmp_path / "p.wlc").read_bytes()).shape == (24, 40, 3)
    shown = subprocess.run([sys.executable, "-m", "pywalloc", "encode", str(src), "--refine",
                            "2", "-f"], check=False, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "refine" in shown.stderr and "step" in shown.stderr  # the progress bar
    assert "Traceback" not in shown.stderr


def test_roundtrip_reports_the_bytes_that_compress_writes(tmp_path):
    """walloc roundtrip used WebP method 0 while compress/encode use the codec's default
    effort, so its rate was not the rate of the files users get."""
    from PIL import Image

    from pywalloc.evaluation.roundtrip import roundtrip

    src = tmp_path / "r.png"
    img = _picture(40, 56, seed=3)
    Image.fromarray(img).save(src)
    assert roundtrip(src)["bytes"] == len(pywalloc.compress(img))


def test_eval_refuses_negative_refine(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pywalloc", "eval", "--codec", "rgb-16x",
                          "--data", str(tmp_path), "--refine", "-1"],
                         check=False, capture_output=True, text=True)
    assert res.returncode == 2 and "--refine" in res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("walloc eval: error: argument --refine")


def test_step_size_is_chosen_per_preset(monkeypatch, tmp_path):
    """stereo-20x refines with its own measured step (docs/results.md), other presets with the
    default; an explicit ``lr`` wins, and a bad one is refused on every path."""
    from pywalloc import refine as module

    seen = []
    real = torch.optim.Adam

    def spy(params, lr):
        seen.append(lr)
        return real(params, lr=lr)

    monkeypatch.setattr(torch.optim, "Adam", spy)
    t = np.arange(4096) / 44100
    audio = np.stack([np.sin(2 * np.pi * 220 * t)] * 2, 1).astype(np.float32) * 0.3
    for name in ("stereo-20x", "stereo-5x"):
        pywalloc.compress(audio, codec=name, sample_rate=44100, refine=1)
    codec = zoo.load("stereo-5x")
    x = torch.from_numpy(audio.T.copy())[None]
    refine(codec, x, codec.encode(x), 1, lr=0.7)
    pywalloc.encode(audio, codec="stereo-20x", sample_rate=44100, refine=1, refine_lr=0.9)
    assert seen == [module.LEARNING_RATE["stereo-20x"], module.DEFAULT_LEARNING_RATE, 0.7, 0.9]
    pywalloc.encode(audio, codec="stereo-20x", sample_rate=44100, refine=1,
                    refine_lr=np.float32(0.5))  # any real number type
    assert seen[-1] == 0.5
    for bad in (0, -1.0, float("nan"), "2", True):
        with pytest.raises(ValueError, match="refine_lr"):
            pywalloc.encode(audio, codec="stereo-20x", sample_rate=44100, refine=1,
                            refine_lr=bad)
    import soundfile as sf

    from pywalloc import api

    monkeypatch.setattr(api, "STREAM_FRAMES", 1)  # long files are streamed when not refined
    sf.write(tmp_path / "a.flac", audio, 44100)
    with pytest.raises(ValueError, match="refine_lr"):
        pywalloc.encode(tmp_path / "a.flac", refine_lr=-2.0)
    assert len(pywalloc.encode(tmp_path / "a.flac").blob) > 0
    assert module.LEARNING_RATE["stereo-20x"] != module.DEFAULT_LEARNING_RATE
