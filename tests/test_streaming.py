"""Streamed and strip-wise coding (issue 11): huge PNGs read and written in strips, long audio
encoded from and decoded into the file in chunks, all bit for bit equal to the whole-input
path. Thresholds and chunk sizes are made tiny here so that small inputs take those paths."""

from __future__ import annotations

import dataclasses
import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from pywalloc import api, media, pngstrips, resample, tiling
from pywalloc.errors import MediaError, UnsupportedInputError


def _picture(mode: str, h: int = 37, w: int = 53) -> Image.Image:
    rng = np.random.default_rng(sum(map(ord, mode)))
    if mode == "P":
        img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "P")
        img.putpalette([int(v) for v in rng.integers(0, 256, 768)])
        return img
    ch = {"RGB": 3, "L": 1, "RGBA": 4, "LA": 2}[mode]
    smooth = np.cumsum(rng.integers(0, 6, (h, w, ch)), axis=1).astype(np.uint8)
    return Image.fromarray(smooth[:, :, 0] if ch == 1 else smooth, mode)


@pytest.fixture
def tiny_strips(monkeypatch):
    monkeypatch.setattr(media, "STREAM_PIXELS", 1)
    monkeypatch.setattr(pngstrips, "STRIP_BYTES", 200)  # a few rows per strip


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "LA"])
@pytest.mark.parametrize("options", [{}, {"optimize": True}, {"compress_level": 1}])
def test_png_read_in_strips_equals_whole_read(mode, options, tmp_path, monkeypatch) -> None:
    path = tmp_path / "x.png"
    extra = {"transparency": 7} if mode == "P" else {}
    _picture(mode).save(path, **extra, **options)
    assert pngstrips.strippable(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole, info = media.read_image(path)
        monkeypatch.setattr(media, "STREAM_PIXELS", 1)
        for strip_bytes in (1, 200, 10**7):  # one row, a few rows, one strip
            monkeypatch.setattr(pngstrips, "STRIP_BYTES", strip_bytes)
            parts = list(pngstrips.read_strips(str(path)))
            row = 1 + 53 * {"RGB": 3, "L": 1, "P": 1, "RGBA": 4, "LA": 2}[mode]
            assert len(parts) == -(-37 // max(1, strip_bytes // row))
            streamed, sinfo = media.read_image(path)
            assert np.array_equal(streamed, whole) and sinfo == info


def test_png_files_that_are_not_read_in_strips(tmp_path) -> None:
    img = _picture("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "exif.png", exif=exif)
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "deep.png")  # 16-bit gray
    img.save(tmp_path / "x.jpg")
    assert not pngstrips.strippable(str(tmp_path / "exif.png"))
    assert not pngstrips.strippable(str(tmp_path / "deep.png"))
    assert not pngstrips.strippable(str(tmp_path / "x.jpg"))
    # Orientation is still applied: the whole path reads files with EXIF.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pixels, info = media.read_image(tmp_path / "exif.png")
    assert info.orientation == 6 and pixels.shape == (53, 37, 3)


def test_truncated_and_corrupt_png_in_strips_are_media_errors(tmp_path, tiny_strips) -> None:
    good = tmp_path / "x.png"
    _picture("RGB").save(good, compress_level=0)
    data = good.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cut.png"):
        media.read_image(cut)
    # A flipped pixel byte breaks the IDAT CRC.
    at = data.index(b"IDAT") + 200
    bad = tmp_path / "bad.png"
    bad.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
    with pytest.raises(MediaError, match="bad.png"):
        media.read_image(bad)


def test_png_bomb_row_data_is_inflated_a_strip_at_a_time(tmp_path, tiny_strips) -> None:
    # A small file whose one IDAT inflates to far more rows than the header declares: the
    # reader never asks zlib for more than two strips at once, and stops at the last row.
    width, height = 64, 3
    rows = b"".join(b"\x00" + bytes(3 * width) for _ in range(20000))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body))

    png = (pngstrips.SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                             0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    pixels, _ = media.read_image(path)
    assert pixels.shape == (height, width, 3) and not pixels.any()


@pytest.mark.parametrize("gray", [False, True])
def test_png_written_in_strips_holds_the_pixels(gray, tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (41, 29, 3), dtype=np.uint8)
    if gray:
        pixels[:] = pixels[:, :, :1]
    whole = tmp_path / "whole.png"
    media.write_image(whole, pixels, "L" if gray else "RGB")
    monkeypatch.setattr(media, "STREAM_PIXELS", 1)
    monkeypatch.setattr(pngstrips, "STRIP_BYTES", 100)
    streamed = tmp_path / "streamed.png"
    media.write_image(streamed, pixels, "L" if gray else "RGB")
    with Image.open(whole) as a, Image.open(streamed) as b:
        assert a.mode == b.mode == ("L" if gray else "RGB")
        assert np.array_equal(np.asarray(a), np.asarray(b))
    buf = io.BytesIO()
    with pytest.raises(ValueError, match="rows"):
        pngstrips.write_png(buf, 42, 29, gray, [pixels[:, :, 0] if gray else pixels])


def _flac(path: Path, frames: int, channels: int, subtype: str = "PCM_16",
          fmt: str = "FLAC", rate: int = 44100) -> None:
    rng = np.random.default_rng(frames + channels)
    t = np.arange(frames) / rate
    data = 0.4 * np.sin(2 * np.pi * 440 * t)[:, None] + 0.05 * rng.standard_normal(
        (frames, channels))
    with sf.SoundFile(path, "w", rate, channels, subtype, format=fmt) as fh:
        for start in range(0, frames, 10000):  # written in blocks, as large files must be
            fh.write(data[start:start + 10000].astype(np.float32))


def _ogg_or_skip(path: Path) -> Path:
    """A 51,000-frame stereo Ogg Vorbis file at 44.1 kHz, or a skip where libsndfile cannot
    write one."""
    try:
        _flac(path, 51_000, 2, "VORBIS", "OGG", 44100)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        pytest.skip(f"this libsndfile cannot write OGG/VORBIS: {exc}")
    return path


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Stream from 1 frame up, in chunks of 40 latents (10240 frames); resample in chunks of
    about 2,000 frames."""
    monkeypatch.setitem(tiling.TILE, 1, 40)
    monkeypatch.setattr(api, "_READ_BLOCK", 3000)
    monkeypatch.setattr(resample, "_CHUNK", 2000)
    return lambda on: monkeypatch.setattr(api, "STREAM_FRAMES", 1 if on else 2**40)


@pytest.mark.parametrize(("channels", "subtype", "fmt", "suffix", "rate"),
                         [(2, "PCM_16", "FLAC", ".flac", 44100),
                          (1, "PCM_24", "FLAC", ".flac", 44100),
                          (2, "FLOAT", "WAV", ".wav", 44100),
                          (2, "PCM_16", "WAV", ".wav", 48000),
                          (1, "FLOAT", "WAV", ".wav", 22050),
                          (2, "PCM_24", "FLAC", ".flac", 8000)])
def test_streamed_audio_equals_whole_audio_both_ways(channels, subtype, fmt, suffix, rate,
                                                     tmp_path, tiny_chunks) -> None:
    src = tmp_path / f"in{suffix}"
    _flac(src, 51_000, channels, subtype, fmt, rate)  # at 44.1 kHz 200 latents, not 256k
    tiny_chunks(False)
    assert not api._streamable_audio(src)
    whole = api.encode_file(src, "stereo-20x")
    tiny_chunks(True)
    assert api._streamable_audio(src)
    streamed = api.encode_file(src, "stereo-20x")
    assert streamed.blob == whole.blob
    # Decoding: whole into one file, chunk by chunk into another: the same samples.
    tiny_chunks(False)
    a = api.decompress_file(whole.blob, tmp_path / f"whole{suffix}")
    tiny_chunks(True)
    b = api.decompress_file(whole.blob, tmp_path / f"streamed{suffix}")
    assert a.data.shape == (51_000, channels) and b.data.size == 0
    x, rx = sf.read(tmp_path / f"whole{suffix}", dtype="float64", always_2d=True)
    y, ry = sf.read(tmp_path / f"streamed{suffix}", dtype="float64", always_2d=True)
    assert rx == ry == rate and x.shape == (51_000, channels) and np.array_equal(x, y)
    assert sf.info(str(tmp_path / f"streamed{suffix}")).subtype == \
        sf.info(str(tmp_path / f"whole{suffix}")).subtype


def test_streamed_audio_at_another_rate_survives_a_miscounting_header(tmp_path, tiny_chunks,
                                                                      monkeypatch) -> None:
    """The resampled peak is taken in the first pass over the frames the header announces;
    if the file holds another count, it is taken again over the real ones: same bytes."""
    src = tmp_path / "in.wav"
    data = 0.1 * np.random.default_rng(7).standard_normal((51_000, 2))
    data[-50] = 0.9  # the peak lies in the frames a miscounted stream would miss
    sf.write(src, data.astype(np.float32), 48000, subtype="PCM_16")
    tiny_chunks(False)
    whole = api.encode_file(src, "stereo-20x")
    tiny_chunks(True)
    real = media.audio_info
    for wrong in (-700, 700):
        monkeypatch.setattr(media, "audio_info", lambda p, real=real, wrong=wrong: dataclasses
                            .replace(real(p), frames=real(p).frames + wrong))
        assert api.encode_file(src, "stereo-20x").blob == whole.blob


def test_streamed_audio_refuses_what_the_whole_path_refuses(tmp_path, tiny_chunks) -> None:
    tiny_chunks(True)
    nan = tmp_path / "nan.wav"
    data = np.zeros((5000, 2), np.float32)
    data[4321, 1] = np.nan
    sf.write(nan, data, 44100, subtype="FLOAT")
    with pytest.raises(MediaError, match=r"nan\.wav.*NaN"):
        api.encode_file(nan, "stereo-20x")
    # Rates the whole path refuses are read whole (which refuses them).
    odd = tmp_path / "odd.wav"
    sf.write(odd, np.zeros((5000, 2), np.float32), 44099)
    assert not api._streamable_audio(odd)
    with pytest.raises(UnsupportedInputError, match="44099"):
        api.encode_file(odd, "stereo-20x")


@pytest.mark.parametrize(("fmt", "subtype", "rate", "channels"),
                         [("OGG", "VORBIS", 44100, 2), ("OGG", "OPUS", 48000, 2),
                          ("MP3", "MPEG_LAYER_III", 44100, 1)])
def test_lossy_audio_is_spooled_with_the_whole_paths_bits(fmt, subtype, rate, channels, tmp_path,
                                                          tiny_chunks, monkeypatch) -> None:
    """Lossy files may not seek exactly: long ones are decoded once, in order, into a temporary
    float32 file, and encoded from it: the same bytes as the whole read, and nothing left."""
    src = tmp_path / f"in.{fmt.lower()}"
    try:
        _flac(src, 51_000, channels, subtype, fmt, rate)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        pytest.skip(f"this libsndfile cannot write {fmt}/{subtype}: {exc}")
    tiny_chunks(False)
    assert api._streamable_audio(src) is None
    whole = api.encode_file(src, "stereo-20x")
    tiny_chunks(True)
    assert api._streamable_audio(src) == "spool"
    spooled, real = [], api._spool

    def spool(path, folder, announced):
        spooled.append(folder)
        return real(path, folder, announced)

    monkeypatch.setattr(api, "_spool", spool)
    streamed = api.encode_file(src, "stereo-20x")
    assert len(spooled) == 1 and not Path(spooled[0]).exists()  # the temporary file is gone
    assert streamed.blob == whole.blob
    assert streamed.header.mode == subtype and streamed.header.sample_rate == rate


def test_spooling_checks_the_temporary_folders_room_first(tmp_path, tiny_chunks,
                                                          monkeypatch) -> None:
    """A long lossy file needs a temporary float32 copy: without the room for it the encode
    stops before writing anything, and says where the room is missing and what to set."""
    import shutil
    import tempfile

    src = _ogg_or_skip(tmp_path / "in.ogg")
    tiny_chunks(True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    real = shutil.disk_usage
    room = {"free": 51_000 * 2 * 4}  # the samples, without the header's margin
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda p: real(p)._replace(free=room["free"]))
    with pytest.raises(MediaError, match=r"in\.ogg.*temporary file of 1 MiB.*"
                                         rf"{scratch.name} has 0 MiB free.*TMPDIR"):
        api.encode_file(src, "stereo-20x")
    assert list(scratch.iterdir()) == []
    room["free"] = 51_000 * 2 * 4 + (1 << 20)
    assert api.encode_file(src, "stereo-20x").header.sample_rate == 44100
    assert list(scratch.iterdir()) == []


def test_spooling_a_file_longer_than_its_header_says_stops_before_the_disk_fills(
        tmp_path, tiny_chunks, monkeypatch) -> None:
    """The room check trusts the header's frame count; a file that decodes to more is followed
    only while the temporary folder has room for the next block, and never past the frame
    limit: a readable error, and the temporary file removed."""
    import shutil
    import tempfile

    src = _ogg_or_skip(tmp_path / "in.ogg")
    tiny_chunks(False)
    whole = api.encode_file(src, "stereo-20x")
    tiny_chunks(True)
    real_info = media.audio_info
    monkeypatch.setattr(media, "audio_info", lambda p: dataclasses.replace(
        real_info(p), frames=10_000))  # the header announces a fifth of the samples
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    real_usage = shutil.disk_usage
    room = {"free": 10_000 * 2 * 4 + (1 << 20)}  # just what the header's count needs

    def usage(p):  # the room left shrinks as the spool grows
        spent = sum(f.stat().st_size for f in scratch.rglob("*") if f.is_file())
        return real_usage(p)._replace(free=room["free"] - spent)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    with pytest.raises(MediaError, match=r"in\.ogg.*more than the 10000 frames its header "
                                         r"announces.*no room.*TMPDIR"):
        api.encode_file(src, "stereo-20x")
    assert list(scratch.iterdir()) == []
    room["free"] = 51_000 * 2 * 4 + (1 << 20) + 3000 * 2 * 4  # room for all, block by block
    assert api.encode_file(src, "stereo-20x").blob == whole.blob
    assert list(scratch.iterdir()) == []
    monkeypatch.setattr(media, "MAX_FRAMES", 20_000)
    room["free"] = 1 << 40
    with pytest.raises(UnsupportedInputError, match=r"in\.ogg.*more than 20000 frames"):
        api.encode_file(src, "stereo-20x")
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("kind", ["rgb", "gray", "gray-as-rgb"])
def test_picture_decoded_into_png_by_bands_equals_whole_decode(kind, tmp_path,
                                                               monkeypatch) -> None:
    rng = np.random.default_rng(5)
    smooth = np.cumsum(rng.integers(0, 9, (75, 301, 3)), axis=1) % 256
    pixels = smooth.astype(np.uint8) if kind == "rgb" else smooth[:, :, 0].astype(np.uint8)
    blob = api.compress(pixels, as_rgb=kind == "gray-as-rgb")
    monkeypatch.setitem(tiling.TILE, 2, 7)  # 10 x 38 latents: bands of 7 rows of tiles
    whole = api.decompress_file(blob, tmp_path / "whole.png")
    monkeypatch.setattr(media, "STREAM_PIXELS", 1)
    monkeypatch.setattr(pngstrips, "STRIP_BYTES", 500)
    streamed = api.decompress_file(blob, tmp_path / "streamed.png")
    assert whole.data.shape[:2] == (75, 301) and streamed.data.size == 0
    with Image.open(tmp_path / "whole.png") as a, Image.open(tmp_path / "streamed.png") as b:
        assert a.mode == b.mode == ("RGB" if kind == "rgb" else "L")
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert np.array_equal(np.asarray(a), whole.data)
