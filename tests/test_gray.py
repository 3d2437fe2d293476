"""Gray images coded as one channel (gray-16x, gray-4x) instead of three equal RGB channels.

The bundled gray weights may be absent; these tests then build a small gray codec (PCA of the
sample photo's luma, a tiny decoder) and, where the automatic choice is under test, put it in
a temporary weights folder beside the bundled RGB weights.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import pywalloc
from pywalloc import Codec, api, zoo
from pywalloc.errors import UnsupportedInputError
from pywalloc.training.init import pca_init
from pywalloc.wavelets import wpt

SAMPLE = zoo.WEIGHTS_DIR.parent / "samples" / "kodim23.png"


@pytest.fixture(scope="module")
def gray_image() -> np.ndarray:
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("L"))[96:288, 224:464].copy()  # 192 x 240


@pytest.fixture(scope="module")
def gray_codec(gray_image) -> Codec:
    """A gray-16x codec: PCA of the sample's luma wavelet channels, tiny decoder."""
    torch.manual_seed(0)
    codec = Codec("gray-16x", width=16, blocks=1, norm="channel")
    x = torch.from_numpy(gray_image).float()[None, None] / 255 - 0.5
    c = wpt(x, 3)[0].flatten(1).double()
    mean = c.mean(1)
    pca_init(codec, mean, torch.cov(c, correction=0), codec.preset.gain)
    return codec.eval()


@pytest.fixture
def bundle(tmp_path, monkeypatch, gray_codec):
    """The bundled weights plus ``gray_codec`` as gray-16x's default (gray-4x stays absent)."""
    folder = tmp_path / "weights"
    (folder / "legacy").mkdir(parents=True)
    for path in zoo.WEIGHTS_DIR.glob("*.*"):
        if not path.name.startswith("gray-"):
            os.symlink(path, folder / path.name)
    for path in zoo.LEGACY_DIR.glob("*.*"):
        os.symlink(path, folder / "legacy" / path.name)
    gray_codec.save(folder / "gray-16x-small.safetensors")
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(zoo, "LEGACY_DIR", folder / "legacy")
    return folder


def _psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_gray_codec_codes_one_channel_at_a_fraction_of_the_rgb_bytes(gray_image, gray_codec):
    one = api.encode(gray_image, gray_codec)
    three = api.encode(gray_image, "rgb-16x", as_rgb=True)  # the gray path before gray codecs
    h = one.header
    assert (h.preset, h.channels, h.mode) == ("gray-16x", 1, "L")
    assert h.latent_shape == (4, 24, 30)
    assert (three.header.preset, three.header.latent_shape[0]) == ("rgb-16x", 12)
    assert len(one.blob) < 0.6 * len(three.blob)
    out = api.decode_blob(one.blob, gray_codec).data
    assert out.shape == gray_image.shape and out.dtype == np.uint8
    assert _psnr(out, gray_image) > 22


def test_compress_switches_to_the_gray_counterpart(bundle, gray_image, gray_codec):
    blob = pywalloc.compress(gray_image)  # default codec rgb-16x -> gray-16x
    assert pywalloc.inspect(blob).header.preset == "gray-16x"
    out = pywalloc.decompress(blob)  # found by hash among the (temporary) bundled weights
    assert out.shape == gray_image.shape and out.dtype == np.uint8
    saved = zoo.load(bundle / "gray-16x-small.safetensors")  # fp16, as bundled weights are
    assert np.array_equal(out, api.decode_blob(blob, saved).data)
    assert pywalloc.inspect(pywalloc.compress(gray_image, "rgb-16x")).header.preset == "gray-16x"
    kept = pywalloc.compress(gray_image, as_rgb=True)  # the old behaviour, asked for
    assert pywalloc.inspect(kept).header.preset == "rgb-16x"
    assert len(blob) < 0.6 * len(kept)
    assert pywalloc.decompress(kept).shape == gray_image.shape
    # no bundled gray-4x here: rgb-4x codes the gray image as before
    assert pywalloc.inspect(pywalloc.compress(gray_image, "rgb-4x")).header.preset == "rgb-4x"
    # colour images and codec instances are left alone
    rgb = np.repeat(gray_image[:, :, None], 3, axis=2).copy()
    rgb[0, 0, 0] ^= 1
    assert pywalloc.inspect(pywalloc.compress(rgb)).header.preset == "rgb-16x"
    rgb_codec = zoo.load("rgb-16x")
    assert pywalloc.inspect(pywalloc.compress(gray_image, rgb_codec)).header.preset == "rgb-16x"


def test_gray_codec_takes_equal_channel_rgb_and_refuses_colour(gray_image, gray_codec):
    rgb = np.repeat(gray_image[:, :, None], 3, axis=2)
    enc = api.encode(rgb, gray_codec)
    assert (enc.header.channels, enc.header.mode) == (3, "RGB")
    out = api.decode_blob(enc.blob, gray_codec).data
    assert out.shape == rgb.shape
    assert np.array_equal(out[:, :, 0], api.decode_blob(api.encode(gray_image, gray_codec).blob,
                                                        gray_codec).data)
    colour = rgb.copy()
    colour[3, 4, 1] ^= 8
    with pytest.raises(UnsupportedInputError, match="gray"):
        api.encode(colour, gray_codec)
    assert tuple(gray_codec.prepare(gray_image).shape) == (1, 1, *gray_image.shape)


def test_gray_codec_file_path_and_tensor_inputs(tmp_path, gray_image, gray_codec):
    Image.fromarray(gray_image).save(tmp_path / "g.png")
    from_file = pywalloc.compress(tmp_path / "g.png", gray_codec)
    assert from_file == pywalloc.compress(gray_image, gray_codec)
    t = torch.from_numpy(gray_image)[None]
    assert pywalloc.compress(t, gray_codec) == from_file


def _walloc(*args):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "pywalloc.cli", *map(str, args)], check=False,
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_gray_png(tmp_path, gray_image, gray_codec):
    png = tmp_path / "g.png"
    Image.fromarray(gray_image).save(png)
    weights = tmp_path / "gray.safetensors"
    gray_codec.save(weights)
    res = _walloc("encode", png, "-o", tmp_path / "g.wlc", "--weights", weights)
    assert res.returncode == 0, res.stderr
    info = json.loads(_walloc("info", tmp_path / "g.wlc", "--json").stdout)
    assert info["codec"] == "gray-16x" and info["channels"] == 1
    res = _walloc("decode", tmp_path / "g.wlc", "-o", tmp_path / "back.png", "--weights", weights)
    assert res.returncode == 0, res.stderr
    with Image.open(tmp_path / "back.png") as im:
        assert im.mode == "L" and im.size == (gray_image.shape[1], gray_image.shape[0])
    # the default codec (a gray counterpart when its weights are bundled) and --as-rgb
    assert _walloc("encode", png, "-o", tmp_path / "d.wlc").returncode == 0
    want = "gray-16x" if "gray-16x" in zoo.available() else "rgb-16x"
    assert json.loads(_walloc("info", tmp_path / "d.wlc", "--json").stdout)["codec"] == want
    assert _walloc("encode", png, "-o", tmp_path / "r.wlc", "--as-rgb").returncode == 0
    d = json.loads(_walloc("info", tmp_path / "r.wlc", "--json").stdout)
    assert d["codec"] == "rgb-16x" and d["channels"] == 1
    res = _walloc("decode", tmp_path / "r.wlc", "-o", tmp_path / "r.png")
    assert res.returncode == 0, res.stderr
    with Image.open(tmp_path / "r.png") as im:
        assert im.mode == "L"


def test_models_lists_the_gray_presets():
    res = _walloc("models", "--json")
    rows = {r["codec"]: r for r in json.loads(res.stdout)}
    assert rows["gray-16x"]["latent_channels"] == 4 and rows["gray-4x"]["latent_channels"] == 16
    assert rows["gray-16x"]["dimensionality_reduction"] == 16
    assert "gray-4x" in _walloc("models").stdout


def test_training_reads_luma_for_gray_codecs(tmp_path):
    from pywalloc.training.data import make_dataset

    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    Image.fromarray(rgb).save(tmp_path / "c.png")
    crops = make_dataset(pywalloc.modality.IMAGE, tmp_path, 16, channels=1)[0]
    want = np.asarray(Image.fromarray(rgb).convert("L"))[0, 0]
    assert tuple(crops.shape) == (1, 1, 16, 16)
    assert torch.allclose(crops, torch.tensor(want / 255 - 0.5, dtype=torch.float32))


def test_bundled_default_codes_gray_as_one_channel(gray_image):
    """With the bundled weights (no fixture), a gray image asked for the default preset is
    coded by gray-16x: one channel, 4 latents per block, well under half the RGB path's bytes,
    and it decodes as gray at a usable quality."""
    assert "gray-16x" in zoo.available()
    blob = pywalloc.compress(gray_image)
    h = pywalloc.inspect(blob).header
    assert (h.preset, h.channels, h.mode, h.latent_shape[0]) == ("gray-16x", 1, "L", 4)
    assert len(blob) < 0.5 * len(pywalloc.compress(gray_image, as_rgb=True))
    out = pywalloc.decompress(blob)
    assert out.shape == gray_image.shape and _psnr(out, gray_image) > 24
