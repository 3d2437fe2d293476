"""Image and audio input normalisation, atomic output writing and modality detection."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from pywalloc import media
from pywalloc.errors import MediaError, UnsupportedInputError
from pywalloc.media import (
    detect_modality,
    read_audio,
    read_image,
    resample_audio,
    write_audio,
    write_image,
)


def _rgb(h: int = 12, w: int = 17, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _read_quiet(path: Path) -> tuple[np.ndarray, media.ImageInfo]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plain 8-bit picture must not warn
        return read_image(path)


def _png16(path: Path, arr: np.ndarray) -> None:
    """Write a 16-bit PNG by hand (Pillow cannot write 16-bit RGB)."""
    h, w, c = arr.shape
    rows = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif", ".bmp"])
def test_lossless_formats_roundtrip(tmp_path: Path, suffix: str) -> None:
    a = _rgb()
    write_image(tmp_path / f"x{suffix}", a)
    back, info = _read_quiet(tmp_path / f"x{suffix}")
    np.testing.assert_array_equal(back, a)
    assert info.mode == "RGB" and (info.height, info.width) == a.shape[:2] and info.bits == 8
    assert back.dtype == np.uint8 and back.flags.c_contiguous


def test_jpeg_roundtrip_is_close(tmp_path: Path) -> None:
    a = np.full((16, 16, 3), (200, 40, 90), np.uint8)
    write_image(tmp_path / "x.jpg", a)
    back, info = _read_quiet(tmp_path / "x.jpg")
    assert info.format == "JPEG" and np.abs(back.astype(int) - a).max() <= 3


def test_grayscale_is_replicated_and_restored(tmp_path: Path) -> None:
    g = _rgb()[:, :, 0]
    Image.fromarray(g).save(tmp_path / "g.png")
    back, info = _read_quiet(tmp_path / "g.png")
    assert info.mode == "L" and back.shape == (*g.shape, 3)
    for c in range(3):
        np.testing.assert_array_equal(back[:, :, c], g)
    noisy = back.astype(int) + np.array([-1, 0, 1])  # per-channel codec error averages out
    write_image(tmp_path / "out.png", noisy.clip(0, 255).astype(np.uint8), info.mode)
    with Image.open(tmp_path / "out.png") as img:
        assert img.mode == "L"
        interior = (g > 0) & (g < 255)
        np.testing.assert_array_equal(np.asarray(img)[interior], g[interior])


def test_bilevel_image_is_gray(tmp_path: Path) -> None:
    Image.fromarray(_rgb()[:, :, 0] > 128).save(tmp_path / "b.png")
    back, info = _read_quiet(tmp_path / "b.png")
    assert info.mode == "L" and set(np.unique(back)) <= {0, 255}


def test_rgba_drops_alpha_with_warning_and_keeps_colour(tmp_path: Path) -> None:
    a = _rgb()
    alpha = np.zeros(a.shape[:2], np.uint8)  # fully transparent: colour must still be kept
    Image.fromarray(np.dstack([a, alpha])).save(tmp_path / "a.png")
    with pytest.warns(UserWarning, match="alpha"):
        back, info = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(back, a)
    assert info.alpha_dropped and info.mode == "RGB" and info.source_mode == "RGBA"


def test_gray_alpha_becomes_gray(tmp_path: Path) -> None:
    g = _rgb()[:, :, 1]
    Image.fromarray(np.dstack([g, g // 2])).save(tmp_path / "la.png")  # LA
    with pytest.warns(UserWarning, match="alpha"):
        back, info = read_image(tmp_path / "la.png")
    assert info.mode == "L" and info.alpha_dropped
    np.testing.assert_array_equal(back[:, :, 2], g)


def test_16bit_gray_png_is_rounded_to_8bit(tmp_path: Path) -> None:
    v = np.arange(0, 65536, 257 // 2, dtype=np.uint16)[: 16 * 16].reshape(16, 16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    with pytest.warns(UserWarning, match="16-bit"):
        back, info = read_image(tmp_path / "g16.png")
    assert info.bits == 16 and info.mode == "L"
    np.testing.assert_array_equal(back[:, :, 0], np.round(v / 257.0).astype(np.uint8))


@pytest.mark.filterwarnings("ignore:.*alpha channel dropped")
@pytest.mark.parametrize("channels, mode", [(3, "RGB"), (4, "RGB"), (2, "L")])
def test_16bit_colour_png_warns(tmp_path: Path, channels: int, mode: str) -> None:
    v = np.random.default_rng(1).integers(0, 65536, (6, 5, channels))
    _png16(tmp_path / "c16.png", v)
    with pytest.warns(UserWarning, match="16-bit"):
        back, info = read_image(tmp_path / "c16.png")
    assert info.bits == 16 and info.mode == mode and back.shape == (6, 5, 3)
    assert np.abs(back[:, :, 0].astype(int) - v[:, :, 0] / 257.0).max() <= 1


def test_palette_image(tmp_path: Path) -> None:
    a = _rgb()
    pal = Image.fromarray(a).quantize(colors=16)
    pal.save(tmp_path / "p.png")
    back, info = _read_quiet(tmp_path / "p.png")
    assert info.source_mode == "P" and info.mode == "RGB"
    np.testing.assert_array_equal(back, np.asarray(pal.convert("RGB")))
    pal.save(tmp_path / "pt.png", transparency=0)
    with pytest.warns(UserWarning, match="alpha"):
        back_t, _ = read_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(back_t, back)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    a = _rgb(4, 7)
    exif = Image.Exif()
    exif[0x0112] = 6  # display needs a 90 degree clockwise rotation
    Image.fromarray(a).save(tmp_path / "o.webp", lossless=True, exif=exif)
    back, info = _read_quiet(tmp_path / "o.webp")
    assert info.orientation == 6 and (info.height, info.width) == (7, 4)
    np.testing.assert_array_equal(back, np.rot90(a, k=-1))


def test_cmyk_is_converted(tmp_path: Path) -> None:
    cmyk = Image.fromarray(np.random.default_rng(2).integers(0, 256, (5, 6, 4), dtype=np.uint8),
                           "CMYK")
    cmyk.save(tmp_path / "c.tif")
    back, info = _read_quiet(tmp_path / "c.tif")
    assert info.source_mode == "CMYK" and info.mode == "RGB"
    np.testing.assert_array_equal(back, np.asarray(cmyk.convert("RGB")))


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match="frames"):
        back, _ = read_image(tmp_path / "a.gif")
    assert tuple(back[0, 0]) == (255, 0, 0)


def test_image_read_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    with pytest.raises(UnsupportedInputError, match="junk.png"):
        read_image(tmp_path / "junk.png")
    write_image(tmp_path / "ok.png", _rgb(64, 64))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cannot read image"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(UnsupportedInputError, match="limit"):
        read_image(tmp_path / "ok.png", max_pixels=100)
    Image.fromarray(np.zeros((3, 3), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(UnsupportedInputError, match="floating-point"):
        read_image(tmp_path / "f.tif")


def test_write_image_rejects_bad_suffix_and_arrays(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="suffix"):
        write_image(tmp_path / "x.xyz", _rgb())
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", _rgb().astype(np.float32))
    with pytest.raises(MediaError, match="cannot write image"):
        write_image(tmp_path / "no" / "such" / "dir.png", _rgb())
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.png"
    target.write_bytes(b"old")

    def broken_save(self: Image.Image, fh: object, **kw: object) -> None:
        fh.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(MediaError, match="disk full"):
        write_image(target, _rgb())
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.png"]


# ---------------------------------------------------------------- audio


def _tone(frames: int = 4410, channels: int = 2, sr: int = 44100,
          freq: float = 440.0) -> np.ndarray:
    t = np.arange(frames) / sr
    return np.stack([0.5 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)],
                    axis=1).astype(np.float32)


def test_wav_stereo_read(tmp_path: Path) -> None:
    x = _tone()
    sf.write(tmp_path / "s.wav", x, 44100, subtype="FLOAT")
    data, sr, info = read_audio(tmp_path / "s.wav")
    assert sr == 44100 and data.dtype == np.float32 and data.shape == x.shape
    np.testing.assert_array_equal(data, x)
    assert (info.channels, info.frames, info.format, info.subtype) == (2, 4410, "WAV", "FLOAT")


def test_mono_becomes_dual_mono(tmp_path: Path) -> None:
    x = _tone(channels=1)
    sf.write(tmp_path / "m.flac", x, 22050)
    data, sr, info = read_audio(tmp_path / "m.flac")
    assert info.channels == 1 and sr == 22050 and data.shape == (4410, 2)
    np.testing.assert_array_equal(data[:, 0], data[:, 1])


def test_multichannel_and_empty_audio_are_refused(tmp_path: Path) -> None:
    sf.write(tmp_path / "six.wav", np.zeros((100, 6), np.float32), 48000)
    with pytest.raises(UnsupportedInputError, match="6 channels"):
        read_audio(tmp_path / "six.wav")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 2), np.float32), 48000)
    with pytest.raises(UnsupportedInputError, match="no samples"):
        read_audio(tmp_path / "empty.wav")
    bad = _tone()
    bad[10, 0] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 44100, subtype="FLOAT")
    with pytest.raises(UnsupportedInputError, match="NaN"):
        read_audio(tmp_path / "nan.wav")


@pytest.mark.parametrize("suffix, fmt, subtype, sr", [
    (".ogg", "OGG", "VORBIS", 44100),
    (".opus", "OGG", "OPUS", 48000),
    (".mp3", "MP3", "MPEG_LAYER_III", 44100),
    (".aiff", "AIFF", "PCM_24", 32000),
])
def test_compressed_formats_are_read(tmp_path: Path, suffix: str, fmt: str, subtype: str,
                                     sr: int) -> None:
    path = tmp_path / f"a{suffix}"
    sf.write(path, _tone(sr // 4, sr=sr), sr, format=fmt, subtype=subtype)
    data, rate, info = read_audio(path)
    assert rate == sr and data.shape[1] == 2 and data.shape[0] > 0 and info.format == fmt
    assert 0.1 < np.abs(data).max() < 1.0
    assert detect_modality(path) == "audio"


def test_resampling_keeps_pitch_and_length(tmp_path: Path) -> None:
    x = _tone(frames=48000, sr=48000, freq=1000.0)
    sf.write(tmp_path / "r.wav", x, 48000, subtype="FLOAT")
    data, sr, info = read_audio(tmp_path / "r.wav", sample_rate=44100)
    assert sr == 44100 and info.sample_rate == 48000 and data.shape == (44100, 2)
    peak = np.argmax(np.abs(np.fft.rfft(data[:, 0])))  # 1 s of signal: bin index = Hz
    assert peak == 1000
    with pytest.raises(UnsupportedInputError, match="resample"):
        resample_audio(data, 44100, 44099)
    assert resample_audio(data, 44100, 44100) is data


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_write_audio_roundtrip_and_clipping(tmp_path: Path, suffix: str) -> None:
    x = _tone(channels=2)
    x[0] = [1.5, -1.7]  # out of range: must clip, not wrap around
    write_audio(tmp_path / f"o{suffix}", x, 44100)
    back, sr = sf.read(tmp_path / f"o{suffix}", dtype="float32", always_2d=True)
    info = sf.info(tmp_path / f"o{suffix}")
    assert sr == 44100 and info.subtype == "PCM_16" and back.shape == x.shape
    assert back[0, 0] > 0.99 and back[0, 1] <= -0.99
    np.testing.assert_allclose(back[1:], x[1:], atol=1 / 32767)
    write_audio(tmp_path / f"mono{suffix}", x[:, 0].clip(-1, 1), 8000, subtype="PCM_24")
    assert sf.info(tmp_path / f"mono{suffix}").channels == 1


def test_write_audio_float_is_exact_and_errors(tmp_path: Path) -> None:
    x = _tone()
    write_audio(tmp_path / "f.wav", x, 44100, subtype="FLOAT")
    np.testing.assert_array_equal(sf.read(tmp_path / "f.wav", dtype="float32")[0], x)
    with pytest.raises(MediaError, match="suffix"):
        write_audio(tmp_path / "f.mp3", x, 44100)
    with pytest.raises(MediaError, match="subtype"):
        write_audio(tmp_path / "f.flac", x, 44100, subtype="FLOAT")
    with pytest.raises(ValueError):
        write_audio(tmp_path / "g.wav", np.zeros((10, 3)), 44100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.wav"]


def test_audio_read_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(MediaError, match="cannot read audio '.*bad.wav'"):
        read_audio(tmp_path / "bad.wav")


# ---------------------------------------------------------------- modality


def test_detect_modality(tmp_path: Path) -> None:
    write_image(tmp_path / "i.png", _rgb())
    write_image(tmp_path / "i.jpg", _rgb())
    write_image(tmp_path / "i.webp", _rgb())
    write_audio(tmp_path / "a.wav", _tone(), 44100)
    write_audio(tmp_path / "a.flac", _tone(), 44100)
    for name, want in [("i.png", "image"), ("i.jpg", "image"), ("i.webp", "image"),
                       ("a.wav", "audio"), ("a.flac", "audio")]:
        assert detect_modality(tmp_path / name) == want
        renamed = tmp_path / f"renamed_{name}.bin"  # content wins over an unknown suffix
        renamed.write_bytes((tmp_path / name).read_bytes())
        assert detect_modality(renamed) == want
    (tmp_path / "pic.wav").write_bytes((tmp_path / "i.png").read_bytes())
    assert detect_modality(tmp_path / "pic.wav") == "image"  # content wins over the suffix
    assert detect_modality(tmp_path / "not_yet.flac") == "audio"
    assert detect_modality(tmp_path / "not_yet.tiff") == "image"
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedInputError, match="image or audio"):
        detect_modality(tmp_path / "notes.txt")


def test_a_folder_without_inputs_of_a_modality_names_a_codec_for_what_it_holds(tmp_path):
    """Evaluation, training and data-set encoding give one message for a data folder without
    inputs of their modality, and a folder of the other modality's files gets a codec that
    takes them."""
    import subprocess
    import sys

    from pywalloc.evaluation.harness import EvaluationError, find_items
    from pywalloc.learning.encode import LearningError, list_inputs
    from pywalloc.training.data import list_files

    assert media.no_inputs(tmp_path, "image") == f"no image files under '{tmp_path}'"
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.jpg")
    want = (f"no audio files under '{tmp_path}'; it holds 2 image files: use an image codec "
            "such as rgb-16x")
    assert media.no_inputs(tmp_path, "audio") == want
    with pytest.raises(EvaluationError) as e1:
        find_items(tmp_path, "audio")
    with pytest.raises(FileNotFoundError) as e2:
        list_files(tmp_path, "audio")
    with pytest.raises(LearningError) as e3:
        list_inputs(tmp_path, "audio")
    assert str(e1.value) == str(e2.value) == str(e3.value) == want
    res = subprocess.run([sys.executable, "-m", "pywalloc.cli", "eval", "--codec", "stereo-20x",
                          "--data", tmp_path, "-o", tmp_path / "out", "-q"],
                         capture_output=True, text=True, check=False, timeout=300)
    assert res.returncode != 0 and res.stderr.strip().endswith(want)
    assert not (tmp_path / "out").exists()
