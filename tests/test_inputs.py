"""Inputs users already have: numpy, PIL, paths, torch tensors; integer PCM; range checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import pywalloc
from pywalloc.errors import UnsupportedInputError
from pywalloc.inputs import audio_samples, check_range, image_pixels, sample_rate_int

RNG = np.random.default_rng(0)
PIX = RNG.integers(0, 256, (20, 28, 3), dtype=np.uint8)


@pytest.mark.parametrize("make", [
    lambda: PIX,
    lambda: Image.fromarray(PIX),
    lambda: torch.from_numpy(PIX).permute(2, 0, 1),                       # uint8 CHW
    lambda: torch.from_numpy(PIX).permute(2, 0, 1)[None],                 # uint8 NCHW
    lambda: torch.from_numpy(PIX).permute(2, 0, 1).float() / 255,         # ToTensor
    lambda: PIX.astype(np.float64) / 255,
    lambda: PIX.astype(np.uint16) * 257,
], ids=["numpy", "pil", "chw", "nchw", "totensor", "float64", "uint16"])
def test_every_image_form_gives_the_same_pixels(make):
    data = make()
    is_float = getattr(data, "dtype", None) in (torch.float32, np.float64)
    out = image_pixels(data, value_range=(0, 1) if is_float else None)
    np.testing.assert_array_equal(out, PIX)


def test_gray_forms_and_paths(tmp_path):
    gray = PIX[:, :, 0]
    np.testing.assert_array_equal(image_pixels(Image.fromarray(gray)), gray)
    np.testing.assert_array_equal(image_pixels(torch.from_numpy(gray)[None]), gray)
    np.testing.assert_array_equal(image_pixels(gray[:, :, None]), gray)
    Image.fromarray(PIX).save(tmp_path / "a.png")
    Image.fromarray(gray).save(tmp_path / "g.png")
    np.testing.assert_array_equal(image_pixels(tmp_path / "a.png"), PIX)
    np.testing.assert_array_equal(image_pixels(str(tmp_path / "g.png")), gray)


def test_centered_range_and_refusals():
    centered = torch.from_numpy(PIX).permute(2, 0, 1).float() / 255 - 0.5
    np.testing.assert_array_equal(image_pixels(centered, value_range=(-0.5, 0.5)), PIX)
    with pytest.raises(UnsupportedInputError, match=r"value_range=\(0, 1\)"):
        image_pixels(PIX / 255.0)
    with pytest.raises(UnsupportedInputError, match=r"outside the expected \[-0.5, 0.5\]"):
        image_pixels(PIX / 255.0, value_range=(-0.5, 0.5))
    with pytest.raises(UnsupportedInputError, match="batch of 2"):
        image_pixels(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(UnsupportedInputError, match="1 or 3 channels"):
        image_pixels(torch.zeros(4, 8, 8, dtype=torch.uint8))
    with pytest.raises(UnsupportedInputError, match="cannot take a dict"):
        image_pixels({})


def test_integer_pcm_is_scaled_like_soundfile(tmp_path):
    import soundfile as sf

    pcm = RNG.integers(-32768, 32768, (1000, 2)).astype(np.int16)
    sf.write(tmp_path / "a.wav", pcm, 44100, subtype="PCM_16")
    ref, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    np.testing.assert_array_equal(audio_samples(pcm), ref)
    pcm32 = pcm.astype(np.int32) << 16
    np.testing.assert_array_equal(audio_samples(pcm32), ref)
    u8 = np.array([0, 128, 255], np.uint8)
    np.testing.assert_allclose(audio_samples(u8)[:, 0], [-1.0, 0.0, 127 / 128])


def test_torchaudio_layout_and_refusals():
    x = torch.randn(2, 500) * 0.1
    np.testing.assert_array_equal(audio_samples(x), x.numpy().T)
    np.testing.assert_array_equal(audio_samples(x[None]), x.numpy().T)
    np.testing.assert_array_equal(audio_samples(x[0]), x.numpy()[0][:, None])
    with pytest.raises(UnsupportedInputError, match=r"pass data\.T"):
        audio_samples(x.numpy())
    with pytest.raises(UnsupportedInputError, match="int64"):
        audio_samples(np.zeros(10, np.int64))


def test_sample_rates():
    assert sample_rate_int(44100.0) == 44100 and sample_rate_int(np.int64(8000)) == 8000
    for bad in (44100.5, 0, -1, True, "44100", float("nan")):
        with pytest.raises(UnsupportedInputError):
            sample_rate_int(bad)


def test_check_range_finite_and_bounds():
    check_range(np.array([0.0, 1.0]), 0, 1, "x")
    with pytest.raises(UnsupportedInputError, match="NaN"):
        check_range(torch.tensor([0.0, float("nan")]), 0, 1, "x")


def test_codec_encode_refuses_totensor_range_and_integers():
    codec = pywalloc.load("rgb-16x")
    x = torch.from_numpy(PIX).permute(2, 0, 1)[None].float() / 255
    with pytest.raises(ValueError, match=r"\[-0.5, 0.5\].*pass x - 0.5"):
        codec.encode(x)
    with pytest.raises(ValueError, match="encode_uint8"):
        codec.encode(torch.from_numpy(PIX).permute(2, 0, 1)[None])
    assert codec.encode(x - 0.5).dtype == torch.int8
    audio = pywalloc.load("stereo-20x")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        audio.encode(torch.full((1, 2, 512), 1.5))


# ----------------------------------------------------------------------------- through compress
def test_compress_takes_pil_paths_and_tensors_alike(tmp_path):
    ref = pywalloc.decompress(pywalloc.compress(PIX))
    Image.fromarray(PIX).save(tmp_path / "p.png")
    chw = torch.from_numpy(PIX).permute(2, 0, 1)
    for data, kw in ((Image.fromarray(PIX), {}), (tmp_path / "p.png", {}),
                     (str(tmp_path / "p.png"), {}), (chw, {}), (chw[None], {}),
                     (chw.float() / 255, {"value_range": (0, 1)})):
        np.testing.assert_array_equal(pywalloc.decompress(pywalloc.compress(data, **kw)), ref)
    with pytest.raises(UnsupportedInputError, match="value_range"):
        pywalloc.compress(chw.float() / 255)


def test_compress_audio_int16_and_float_rate():
    x = (np.sin(np.arange(8192) / 9.0)[:, None] * [0.5, 0.25]).astype(np.float32)
    pcm = np.round(x * 32767).astype(np.int16)
    out, rate = pywalloc.decompress(pywalloc.compress(pcm, sample_rate=44100.0))
    assert rate == 44100 and np.abs(out).max() < 1.0
    ref, _ = pywalloc.decompress(pywalloc.compress(pcm.astype(np.float32) / 32768,
                                                   sample_rate=44100))
    np.testing.assert_array_equal(out, ref)
    t = torch.from_numpy(x.T.copy())  # torchaudio layout
    a, _ = pywalloc.decompress(pywalloc.compress(t, sample_rate=44100))
    b, _ = pywalloc.decompress(pywalloc.compress(x, sample_rate=44100))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(UnsupportedInputError, match="sample rate"):
        pywalloc.compress(x, sample_rate=44100.5)


def test_gray_header_says_one_channel():
    from pywalloc import container

    header, _ = container.read(pywalloc.compress(PIX[:, :, 0]))
    assert (header.channels, header.mode) == (1, "L")
    assert pywalloc.decompress(pywalloc.compress(PIX[:, :, 0])).shape == PIX.shape[:2]


def test_device_argument():
    blob = pywalloc.compress(PIX, device="cpu")
    assert pywalloc.decompress(blob, device=torch.device("cpu")).shape == PIX.shape
    if not torch.cuda.is_available():
        with pytest.raises(UnsupportedInputError, match="CUDA is not available"):
            pywalloc.compress(PIX, device="cuda")
    else:  # same bytes on the GPU up to float rounding of a few latents
        assert pywalloc.decompress(pywalloc.compress(PIX, device="cuda"), device="cuda").shape \
            == PIX.shape


def test_compress_image_helper_takes_the_same_forms():
    from pywalloc.api import compress_image

    ref = compress_image(PIX)
    assert compress_image(Image.fromarray(PIX)) == ref
    assert compress_image(torch.from_numpy(PIX).permute(2, 0, 1)) == ref
    assert compress_image(PIX / 255.0, value_range=(0, 1)) == ref


def test_codec_prepare_turns_user_data_into_codec_input():
    codec = pywalloc.load("rgb-16x")
    x = codec.prepare(Image.fromarray(PIX))
    assert x.shape == (1, 3, *PIX.shape[:2]) and float(x.min()) >= -0.5
    folded = codec.encode_uint8(torch.from_numpy(PIX).permute(2, 0, 1)[None])
    assert int((codec.encode(x).int() - folded.int()).abs().max()) <= 1  # float rounding only
    assert torch.equal(codec.prepare(PIX[:, :, 0])[0, 0], codec.prepare(PIX[:, :, 0])[0, 2])
    audio = pywalloc.load("stereo-20x")
    pcm = (np.arange(1000, dtype=np.int16) * 13)
    a = audio.prepare(pcm)
    assert a.shape == (1, 2, 1000) and float(a.abs().max()) <= 1
    with pytest.raises(ValueError, match="outside"):
        audio.prepare(np.full((100, 2), 2.0, np.float32))
