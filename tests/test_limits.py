"""Hostile and oversized inputs are refused from their headers: one line, nonzero exit, in
under 2 s and 500 MB (issue 11)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import pywalloc
from pywalloc import container, entropy, limits
from pywalloc.api import compress_file
from pywalloc.codec import Codec, peak_gain
from pywalloc.errors import FormatError, MediaError
from pywalloc.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 2.0
LIMIT_RSS_MB = 500


def _blob(modality: str, shape: tuple[int, ...], rate: int = 0, gain: float = 1.0,
          preset: str | None = None) -> bytes:
    """A small .wlc whose header asks for ``shape``; the payload is never reached."""
    preset = preset or ("rgb-16x" if modality == "image" else "stereo-20x")
    p = get_preset(preset)
    if modality == "image":
        lat = (p.latent_channels, *(-(-n // p.block) for n in shape))
        pad = (0, (-shape[0]) % p.block, 0, (-shape[1]) % p.block)
    else:
        n = limits.codec_frames(shape[0], rate)
        lat = (p.latent_channels, -(-n // p.block))
        pad = (0, (-n) % p.block)
    header = container.Header(modality, preset, b"\x01" * 8, shape, 3 if modality == "image"
                               else 2, lat, pad, rate, "RGB" if modality == "image" else "",
                               gain)
    return container.write(header, b"RIFF" + bytes(60))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (RGB); the pixel data is a token IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(1 + 3 * width))) + chunk(b"IEND", b""))


HOSTILE_BLOBS = {
    "image-8192": (lambda: _blob("image", (8192, 8192)), "budget"),
    "image-16384": (lambda: _blob("image", (16384, 16384)), "budget"),
    "audio-2^28-at-4900Hz": (lambda: _blob("audio", (2**28,), rate=4900), "budget"),
    "audio-7Hz": (lambda: _blob("audio", (1000,), rate=7), "sample rate"),
    "audio-gain-1e-300": (lambda: _blob("audio", (44100,), rate=44100, gain=1e-300), "gain"),
    # In the rate range, but 44099 -> 44100 Hz needs a 44100/44099 polyphase filter bank.
    "audio-44099Hz": (lambda: _blob("audio", (1000,), rate=44099), "impractical"),
}


@pytest.mark.parametrize("name", list(HOSTILE_BLOBS))
def test_hostile_headers_are_refused_quickly(name: str) -> None:
    make, words = HOSTILE_BLOBS[name]
    blob = make()
    assert len(blob) < 200
    t0 = time.perf_counter()
    with pytest.raises(FormatError, match=words):
        pywalloc.decompress(blob)
    assert time.perf_counter() - t0 < LIMIT_S


def _hostile_wav(path: Path) -> None:
    # ~200 KB of 16-bit stereo at 45 Hz: 980x upsampling to 44.1 kHz would make it ~200 MB.
    sf.write(path, np.zeros((50_000, 2), np.float32), 45, subtype="PCM_16")


def test_hostile_encodes_are_refused_quickly(tmp_path: Path) -> None:
    wav, png = tmp_path / "slow.wav", tmp_path / "huge.png"
    _hostile_wav(wav)
    png.write_bytes(_png_header_only(12000, 12000))  # 144 megapixels
    for path, words in ((wav, "sample rate"), (png, "above the")):
        t0 = time.perf_counter()
        with pytest.raises(MediaError, match=words):
            compress_file(path)
        assert time.perf_counter() - t0 < LIMIT_S


def test_explicit_budget_overrides_the_amplification_rule() -> None:
    blob = _blob("image", (4096, 4300))  # above the free allowance for a tiny file
    with pytest.raises(FormatError, match="budget"):
        pywalloc.decompress(blob)
    with pytest.raises(FormatError, match="budget of 1000"):
        pywalloc.decompress(blob, max_pixels=1000)
    # With a large enough budget the header passes and the fake payload is what fails.
    with pytest.raises(FormatError) as err:
        pywalloc.decompress(blob, max_pixels=2**25)
    assert "budget" not in str(err.value)


def test_gain_bounds_match_the_encoder() -> None:
    assert limits.MAX_GAIN == peak_gain(0.0)
    loud = np.full((4096, 2), 3e38, np.float32)  # the largest gain-reducing input
    h, _ = container.read(pywalloc.compress(loud, "stereo-20x", 44100))
    assert limits.MIN_GAIN <= h.gain
    quiet = np.zeros((4096, 2), np.float32)
    h, _ = container.read(pywalloc.compress(quiet, "stereo-20x", 44100))
    assert h.gain <= limits.MAX_GAIN


def test_trailing_bytes_after_webp_are_refused() -> None:
    z = np.zeros((12, 4, 4), np.int8)
    data = entropy.pack(z)
    assert entropy.unpack(data, z.shape).shape == z.shape
    with pytest.raises(FormatError, match="after the WebP"):
        entropy.unpack(data + b"junk", z.shape)
    with pytest.raises(FormatError, match="truncated"):
        entropy.unpack(data[:-2], z.shape)


def test_non_finite_output_is_refused() -> None:
    model = Codec("rgb-16x").eval()
    with torch.no_grad():
        model.synthesis.linear.bias.fill_(float("nan"))
    blob = pywalloc.compress(np.zeros((16, 16, 3), np.uint8), model)
    with pytest.raises(FormatError, match="not finite"):
        pywalloc.decompress(blob, model)


_DRIVER = r"""
import json, resource, subprocess, sys, time
out = []
for args in json.loads(sys.argv[1]):
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pywalloc.cli", *args], capture_output=True, text=True)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out.append([r.returncode, r.stdout, r.stderr, time.perf_counter() - t0, rss])
print(json.dumps(out))
"""


def test_cli_refuses_every_hostile_case_in_one_line_and_little_memory(tmp_path: Path) -> None:
    cases = []
    for name, (make, _) in HOSTILE_BLOBS.items():
        path = tmp_path / f"{name}.wlc"
        path.write_bytes(make())
        cases.append(["decode", str(path), "-o", str(tmp_path / f"{name}.out.wav"), "-q"])
    wav, png = tmp_path / "slow.wav", tmp_path / "huge.png"
    _hostile_wav(wav)
    png.write_bytes(_png_header_only(12000, 12000))
    cases += [["encode", str(wav), "-q"], ["encode", str(png), "-q"]]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(cases)], check=False,
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    for args, (rc, stdout, stderr, _secs, rss) in zip(cases, json.loads(res.stdout)):
        lines = stderr.strip().splitlines()
        assert rc != 0, args
        assert len(lines) == 1 and lines[0].startswith(f"walloc {args[0]}: error:"), (args, stderr)
        assert "Traceback" not in stderr
        assert rss < LIMIT_RSS_MB, (args, rss)
    assert not list(tmp_path.glob("*.out.wav")) and not list(tmp_path.glob("*.wlc.*"))


def _raise(exc: BaseException):
    def run(args) -> int:
        raise exc
    return run


@pytest.mark.parametrize(("exc", "words"), [
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                  "21474836480 bytes. Error code 12"), "out of memory (an allocation of 21.5 GB"),
    (MemoryError(), "out of memory"),
    (TypeError("a bug\nsecond line"), "unexpected TypeError: a bug"),
    # a dependency missing where the CLI runs (seen on a GPU machine): what to install, not
    # "a bug in pywalloc"
    (ModuleNotFoundError("No module named 'soundfile'", name="soundfile"),
     "the Python package 'soundfile' is not installed here (pip install soundfile)"),
    (ModuleNotFoundError("No module named 'PIL.Image'", name="PIL.Image"), "(pip install Pillow)"),
])
def test_cli_turns_memory_errors_and_bugs_into_one_line(exc, words, capsys) -> None:
    import argparse

    from pywalloc.cli import run_command

    assert run_command(argparse.Namespace(func=_raise(exc))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("walloc: error: ") and words in err[0]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_decode_refuses_non_regular_files_without_reading_them(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "pywalloc.cli", "decode", "/dev/zero", "-o",
                          str(tmp_path / "out.png"), "-q"], capture_output=True, text=True,
                         timeout=300, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1 and "not a regular file" in lines[0]


def test_peek_modality_reads_the_prefix_only() -> None:
    blob = _blob("audio", (44100,), rate=44100)
    assert container.peek_modality(blob[:12]) == "audio"
    assert container.peek_modality(b"RIFF" + bytes(8)) is None


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pywalloc.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_cli_refuses_colliding_outputs_and_overwriting_the_input(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("a.png", "a.bmp"):
        Image.new("RGB", (8, 8), (200, 50, 30)).save(tmp_path / name)
    res = _cli("encode", str(tmp_path / "a.png"), str(tmp_path / "a.bmp"), "-f", "-q")
    assert res.returncode != 0 and "would both be written" in res.stderr
    assert not (tmp_path / "a.wlc").exists()  # refused before anything was written
    src = tmp_path / "a.png"
    before = src.read_bytes()
    res = _cli("encode", str(src), "-o", str(src), "-f", "-q")
    assert res.returncode != 0 and "is the input itself" in res.stderr
    assert src.read_bytes() == before


def test_skip_existing_resumes_a_batch(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8), (20, 50, 30)).save(tmp_path / name)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.wlc").write_bytes(b"finished earlier")
    res = _cli("encode", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o",
               str(tmp_path / "out"), "--skip-existing")
    assert res.returncode == 0, res.stderr
    assert "skipped 1 file" in res.stdout and "encoded 1 file" in res.stdout
    assert (tmp_path / "out" / "a.wlc").read_bytes() == b"finished earlier"
    assert (tmp_path / "out" / "b.wlc").stat().st_size > 0


def test_audio_encode_budget_counts_frames_after_resampling(tmp_path: Path) -> None:
    # 16,000 frames at 8 kHz are 88,200 frames at the codec rate: over a 20,000-frame budget
    # although the file itself holds fewer.
    wav = tmp_path / "slow.wav"
    sf.write(wav, np.zeros((16_000, 2), np.float32), 8000)
    with pytest.raises(MediaError, match="88200 frames at 44100 Hz"):
        compress_file(wav, max_frames=20_000)
    assert len(compress_file(wav, max_frames=88_200)) > 0


def test_cli_refuses_same_named_inputs_from_two_folders(tmp_path: Path) -> None:
    from PIL import Image

    for d in ("d1", "d2"):
        (tmp_path / d).mkdir()
        Image.new("RGB", (8, 8), (20, 50, 30)).save(tmp_path / d / "a.png")
    res = _cli("encode", str(tmp_path / "d1" / "a.png"), str(tmp_path / "d2" / "a.png"), "-o",
               str(tmp_path / "out") + os.sep, "-f", "-q")
    assert res.returncode != 0 and "would both be written" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_cli_decode_budget_flag_and_roundtrip_errors_are_one_line(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 48), (20, 50, 30)).save(tmp_path / "a.png")
    res = _cli("encode", str(tmp_path / "a.png"), "-q")
    assert res.returncode == 0, res.stderr
    res = _cli("decode", str(tmp_path / "a.wlc"), "--max-pixels", "1000", "-q")
    assert res.returncode == 1 and "budget of 1000" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "a.decoded.png").exists()
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    res = _cli("roundtrip", str(tmp_path / "bad.png"))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("walloc roundtrip: error:")
    assert "bad.png" in lines[0] and "Traceback" not in res.stderr
