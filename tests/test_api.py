"""compress/decompress in memory and on files, with the bundled codecs."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import pywalloc
from pywalloc import api, container
from pywalloc.errors import FormatError, MediaError, UnsupportedInputError, WeightsMismatchError

SAMPLES = Path(pywalloc.__file__).parent / "samples"


@pytest.fixture(scope="module")
def whole_photo() -> np.ndarray:
    """The bundled 512x768 sample picture."""
    with Image.open(SAMPLES / "kodim23.png") as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def photo(whole_photo) -> np.ndarray:
    return whole_photo[100:228, 200:360].copy()  # 128x160 crop


def _psnr(a, b, peak=255.0):
    err = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return 10 * np.log10(peak**2 / max(err, 1e-12))


@pytest.mark.parametrize("name,min_psnr", [("rgb-16x", 27.0), ("rgb-4x", 33.0)])
def test_image_roundtrip_quality(photo, name, min_psnr):
    blob = pywalloc.compress(photo, codec=name)
    out = pywalloc.decompress(blob)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert _psnr(out, photo) > min_psnr
    header, _ = container.read(blob)
    assert header.preset == name and header.shape == photo.shape[:2]
    assert len(blob) < photo.nbytes / 4


def test_tiny_and_gray_images(photo):
    for shape in [(1, 1, 3), (5, 3, 3), (1, 37, 3), (9, 1, 3)]:
        img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        assert pywalloc.decompress(pywalloc.compress(img)).shape == shape
    gray = np.round(photo.mean(axis=2)).astype(np.uint8)
    out = pywalloc.decompress(pywalloc.compress(gray))
    assert out.shape == gray.shape
    assert _psnr(out, gray) > 25


def test_audio_roundtrip_mono_stereo_rates():
    rng = np.random.default_rng(1)
    t = np.arange(22050) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], 1)
    stereo = (stereo + 0.01 * rng.normal(size=stereo.shape)).astype(np.float32)
    for name, min_psnr in (("stereo-20x", 20.0), ("stereo-5x", 30.0)):
        out, rate = pywalloc.decompress(pywalloc.compress(stereo, codec=name, sample_rate=44100))
        assert rate == 44100 and out.shape == stereo.shape and out.dtype == np.float32
        assert _psnr(out, stereo, 1.0) > min_psnr
    mono = stereo[:, :1]
    out, _ = pywalloc.decompress(pywalloc.compress(mono, sample_rate=44100))
    assert out.shape == mono.shape
    out, rate = pywalloc.decompress(pywalloc.compress(stereo[:16000], sample_rate=16000))
    assert rate == 16000 and out.shape == (16000, 2)
    silent = np.zeros((300, 2), np.float32)
    out, _ = pywalloc.decompress(pywalloc.compress(silent, sample_rate=44100))
    assert np.abs(out).max() < 1e-3


def test_gain_is_stored_and_undone():
    t = np.arange(8192) / 44100
    quiet = (0.01 * np.sin(2 * np.pi * 300 * t))[:, None].repeat(2, 1).astype(np.float32)
    blob = pywalloc.compress(quiet, sample_rate=44100)
    header, _ = container.read(blob)
    assert header.gain == pytest.approx(0.9 / np.abs(quiet).max(), rel=1e-4)
    out, _ = pywalloc.decompress(blob)
    assert np.abs(out).max() == pytest.approx(0.01, rel=0.2)


def test_bad_inputs_raise_specific_errors(photo):
    with pytest.raises(UnsupportedInputError):
        pywalloc.compress(photo.astype(np.float32))
    with pytest.raises(UnsupportedInputError):
        pywalloc.compress(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(UnsupportedInputError):
        pywalloc.compress(np.zeros((10, 3), np.float32), sample_rate=44100)
    with pytest.raises(UnsupportedInputError):
        pywalloc.compress(photo, codec="stereo-5x")
    with pytest.raises(UnsupportedInputError):
        pywalloc.compress(np.zeros((0, 2), np.float32), sample_rate=44100)
    with pytest.raises(FormatError):
        pywalloc.decompress(b"not a wlc file at all")


def test_other_weights_fail_clearly(photo):
    blob = pywalloc.compress(photo[:16, :16], codec="rgb-16x")
    header, payload = container.read(blob)
    forged = container.write(
        container.Header(**{**header.__dict__, "weights_hash": bytes(8)}), payload)
    with pytest.raises(WeightsMismatchError, match="other rgb-16x weights"):
        pywalloc.decompress(forged)
    with pytest.raises(WeightsMismatchError):
        api.decompress(blob, codec="rgb-4x")


def test_files(tmp_path, photo):
    src = tmp_path / "p.png"
    Image.fromarray(photo).save(src)
    blob = api.compress_file(src)
    out = api.decompress_file(blob, tmp_path / "p_out.png")
    assert out.header.modality == "image"
    with Image.open(tmp_path / "p_out.png") as im:
        assert im.size == (photo.shape[1], photo.shape[0])
    wav = tmp_path / "a.flac"
    sf.write(wav, np.zeros((5000, 1), np.float32) + 0.1, 22050)
    blob = api.compress_file(wav)
    api.decompress_file(blob, tmp_path / "a_out.wav")
    data, rate = sf.read(tmp_path / "a_out.wav", always_2d=True)
    assert rate == 22050 and data.shape == (5000, 1)


def test_a_wrong_output_suffix_fails_before_the_decode(tmp_path, photo, monkeypatch):
    """Audio decodes to WAV/FLAC, pictures to image formats: a name outside them is refused
    before any decoding work, and nothing is written."""
    image = api.compress(photo)
    audio = api.compress(np.zeros((5000, 2), np.float32), sample_rate=44100)

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded before the suffix was checked")

    monkeypatch.setattr(api, "_prepare", no_decode)
    for blob, name, allowed in [(audio, "a.ogg", r"\.wav, \.flac"), (audio, "a.png", "wav"),
                                (image, "p.wav", r"\.png"), (image, "p", "png")]:
        with pytest.raises(MediaError, match=rf"cannot write .*{name}.*{allowed}"):
            api.decompress_file(blob, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_effort_changes_size_not_pixels(photo):
    fast = pywalloc.compress(photo, codec="rgb-16x", effort=0)
    slow = pywalloc.compress(photo, codec="rgb-16x", effort=6)
    assert len(slow) <= len(fast)
    assert np.array_equal(pywalloc.decompress(fast), pywalloc.decompress(slow))


def test_default_effort_is_the_presets(photo):
    from pywalloc.presets import PRESETS

    assert all(0 <= p.effort <= 6 for p in PRESETS.values())
    default = pywalloc.compress(photo, codec="rgb-16x")
    assert default == pywalloc.compress(photo, codec="rgb-16x",
                                        effort=PRESETS["rgb-16x"].effort)
    # The method only changes how the same latents are packed: effort 0 files still decode
    # to the same pixels.
    assert np.array_equal(pywalloc.decompress(default),
                          pywalloc.decompress(pywalloc.compress(photo, codec="rgb-16x", effort=0)))
    audio = np.sin(np.arange(20000, dtype=np.float32) / 9.0)[:, None].repeat(2, 1) * 0.3
    blob = pywalloc.compress(audio, codec="stereo-20x", sample_rate=44100)
    assert blob == pywalloc.compress(audio, codec="stereo-20x", sample_rate=44100,
                                     effort=PRESETS["stereo-20x"].effort)


def test_image_files_use_the_raw_entropy_coder_and_older_files_still_decode(photo, whole_photo):
    """compress writes entropy id 2 for images (smaller on the whole bundled photo) and 1 for
    audio; an id-1 file of the same image decodes to the same pixels. (On a small crop the two
    are within a few bytes either way, depending on the weights: the size is checked on the
    whole 512x768 picture.)"""
    new, old = api.encode(photo, "rgb-16x"), api.encode(photo, "rgb-16x", entropy_id=1)
    assert (new.header.entropy, old.header.entropy) == (2, 1)
    assert np.array_equal(pywalloc.decompress(new.blob), pywalloc.decompress(old.blob))
    assert (len(api.encode(whole_photo, "rgb-16x").blob)
            < len(api.encode(whole_photo, "rgb-16x", entropy_id=1).blob))
    t = np.linspace(0, 1, 4410, dtype=np.float32)
    tone = np.stack([np.sin(440 * 6.283 * t), np.sin(220 * 6.283 * t)], 1) * 0.5
    assert api.encode(tone, "stereo-20x", 44100).header.entropy == 1
    with pytest.raises(FormatError, match="entropy"):
        api.encode(photo, "rgb-16x", entropy_id=9)
