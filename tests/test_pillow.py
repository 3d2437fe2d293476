"""The Pillow plugin, exercised only through Pillow's own API."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pywalloc
import pywalloc.pillow  # registers the plugin

SAMPLE = Path(pywalloc.__file__).parent / "samples" / "kodim23.png"


def _photo(h=40, w=56) -> np.ndarray:
    """A crop of the bundled sample photo."""
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))[100 : 100 + h, 200 : 200 + w].copy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    err = a.astype(np.float64) - b
    return 10 * np.log10(255.0**2 / max(float(np.mean(err**2)), 1e-12))


def test_open_and_load_a_wlc_written_by_the_library(tmp_path):
    pixels = _photo()
    path = tmp_path / "x.wlc"
    path.write_bytes(pywalloc.compress(pixels))
    with Image.open(path) as im:
        assert (im.format, im.mode, im.size) == ("WLC", "RGB", (56, 40))
        assert im.info["codec"] == "rgb-16x"
        im.load()
        out = np.asarray(im)
    np.testing.assert_array_equal(out, pywalloc.decompress(path.read_bytes()))


def test_save_by_suffix_and_by_format_with_options(tmp_path):
    im = Image.fromarray(_photo())
    im.save(tmp_path / "a.wlc")
    buf = io.BytesIO()
    im.save(buf, format="WLC", codec="rgb-4x", effort=6)
    with Image.open(tmp_path / "a.wlc") as a, Image.open(io.BytesIO(buf.getvalue())) as b:
        assert a.info["codec"] == "rgb-16x" and b.info["codec"] == "rgb-4x"
        ref = np.asarray(im)
        assert _psnr(np.asarray(b), ref) > _psnr(np.asarray(a), ref) > 20


def test_thumbnail_of_a_wlc(tmp_path):
    Image.fromarray(_photo(64, 96)).save(tmp_path / "t.wlc")
    with Image.open(tmp_path / "t.wlc") as im:
        im.thumbnail((24, 24))
        assert im.size == (24, 16) and im.mode == "RGB"


def test_gray_and_palette_images(tmp_path):
    gray = Image.fromarray(_photo()[:, :, 0])
    gray.save(tmp_path / "g.wlc")
    with Image.open(tmp_path / "g.wlc") as im:
        assert im.mode == "L" and im.size == gray.size
        assert _psnr(np.asarray(im), np.asarray(gray)) > 20
    Image.fromarray(_photo()).convert("P").save(tmp_path / "p.wlc")
    with Image.open(tmp_path / "p.wlc") as im:
        assert im.mode == "RGB"


def test_16_bit_gray_is_scaled_not_clipped(tmp_path):
    wide = (_photo()[:, :, 1].astype(np.uint16) * 257).astype(np.uint16)
    src = Image.fromarray(wide)
    assert src.mode.startswith("I")
    src.save(tmp_path / "w.wlc")
    with Image.open(tmp_path / "w.wlc") as im:
        assert im.mode == "L"
        assert _psnr(np.asarray(im), _photo()[:, :, 1]) > 20


def test_alpha_is_refused_like_jpeg(tmp_path):
    rgba = Image.fromarray(_photo()).convert("RGBA")
    with pytest.raises(OSError, match="cannot write mode RGBA as WLC"):
        rgba.save(tmp_path / "a.wlc")
    with pytest.raises(OSError, match="cannot write WLC"):
        Image.fromarray(_photo()).save(tmp_path / "b.wlc", codec="stereo-20x")


def test_audio_and_corrupt_wlc_are_not_identified(tmp_path):
    audio = tmp_path / "a.wlc"
    audio.write_bytes(pywalloc.compress(np.zeros((4096, 2), np.float32), sample_rate=44100))
    bad = bytearray(pywalloc.compress(_photo()))
    bad[-1] ^= 1
    (tmp_path / "bad.wlc").write_bytes(bytes(bad))
    for name in ("a.wlc", "bad.wlc"):
        with pytest.raises(Image.UnidentifiedImageError):
            Image.open(tmp_path / name)


def test_the_one_liner_from_the_issue(tmp_path):
    (tmp_path / "x.wlc").write_bytes(pywalloc.compress(_photo()))
    code = "from PIL import Image; import pywalloc.pillow; Image.open('x.wlc').load()"
    env = {**os.environ, "PYTHONPATH": str(Path(pywalloc.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=False, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
