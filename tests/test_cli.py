"""The walloc command through subprocess: round trips, batches and every error path."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image


def walloc(*args, cwd=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "pywalloc.cli", *map(str, args)], cwd=cwd, check=False,
                          capture_output=True, text=True, env=env, timeout=300)


def _one_line_error(res):
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    command = res.args[3]  # [python, -m, pywalloc.cli, SUBCOMMAND, ...]
    assert lines[0].startswith(f"walloc {command}: error: ") and "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:56]
    img = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=2) + rng.integers(0, 20, (40, 56, 3))
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(d / "a.png")
    Image.fromarray(img[:24, :30].clip(0, 255).astype(np.uint8)).save(d / "b.jpg", quality=95)
    t = np.arange(6000) / 44100
    sf.write(d / "s.wav", np.stack([np.sin(2 * np.pi * 330 * t), np.cos(2 * np.pi * 220 * t)],
                                   1).astype(np.float32) * 0.5, 44100)
    (d / "notes.txt").write_text("not media")
    return d


def test_image_roundtrip_info_and_decode(media, tmp_path):
    out = tmp_path / "a.wlc"
    res = walloc("encode", media / "a.png", "-o", out)
    assert res.returncode == 0, res.stderr
    assert "ratio" in res.stdout
    info = walloc("info", out, "--json")
    d = json.loads(info.stdout)
    assert d["codec"] == "rgb-16x" and d["shape"] == [40, 56] and d["modality"] == "image"
    assert (d["entropy"], d["entropy_coder"]) == (2, "lossless-webp-tiles-raw")
    assert "bpp" in walloc("info", out).stdout
    res = walloc("decode", out, "-o", tmp_path / "a.bmp")
    assert res.returncode == 0, res.stderr
    with Image.open(tmp_path / "a.bmp") as im:
        assert im.format == "BMP" and im.size == (56, 40)


def test_audio_roundtrip(media, tmp_path):
    res = walloc("encode", media / "s.wav", "-o", tmp_path / "s.wlc", "--codec", "stereo-5x")
    assert res.returncode == 0, res.stderr
    res = walloc("decode", tmp_path / "s.wlc", "-o", tmp_path / "s.flac")
    assert res.returncode == 0, res.stderr
    data, rate = sf.read(tmp_path / "s.flac", always_2d=True)
    assert rate == 44100 and data.shape == (6000, 2)
    res = walloc("roundtrip", media / "s.wav", "--json")
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["codec"] == "stereo-20x" and d["psnr_db"] > 15 and d["kbps"] > 0


def test_default_output_names(media, tmp_path):
    src = tmp_path / "c.png"
    src.write_bytes((media / "a.png").read_bytes())
    assert walloc("encode", src).returncode == 0
    assert (tmp_path / "c.wlc").is_file()
    res = walloc("decode", tmp_path / "c.wlc")  # the README's flow: the source stays
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c.decoded.png").is_file() and src.read_bytes() == (
        media / "a.png").read_bytes()


def test_batch_with_a_bad_file(media, tmp_path):
    (media / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    try:
        res = walloc("encode", media, "-o", tmp_path / "out")
    finally:
        (media / "bad.png").unlink()
    assert res.returncode == 1
    assert "bad.png" in res.stderr and "Traceback" not in res.stderr
    assert "walloc encode: error: " in res.stderr  # the prefix of the subcommand's usage errors
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["a.wlc", "b.wlc", "s.wlc"]  # txt skipped, bad one reported, others written
    assert "encoded 3 files (1 failed)" in res.stdout
    res = walloc("decode", tmp_path / "out", "-o", tmp_path / "dec")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "dec").iterdir()) == ["a.png", "b.png", "s.wav"]
    assert not list((tmp_path / "dec").glob(".*"))  # no temporary files left


def test_errors_are_one_line(media, tmp_path):
    _one_line_error(walloc("encode", tmp_path / "missing.png"))
    # The line names the file once, not once from the batch and again from the message.
    for args in (("encode", media / "notes.txt", "-o", tmp_path / "n.wlc"),
                 ("decode", tmp_path / "gone.wlc", "-o", tmp_path / "gone.png")):
        res = walloc(*args)
        _one_line_error(res)
        assert res.stderr.count(Path(args[1]).name) == 1, res.stderr
    _one_line_error(walloc("encode", media / "notes.txt", "-o", tmp_path / "x.wlc"))
    assert not (tmp_path / "x.wlc").exists()
    out = tmp_path / "a.wlc"
    assert walloc("encode", media / "a.png", "-o", out).returncode == 0
    before = out.read_bytes()
    _one_line_error(walloc("encode", media / "a.png", "-o", out))
    assert out.read_bytes() == before
    assert walloc("encode", media / "a.png", "-o", out, "--force").returncode == 0
    corrupt = tmp_path / "corrupt.wlc"
    corrupt.write_bytes(before[: len(before) // 2])
    _one_line_error(walloc("decode", corrupt, "-o", tmp_path / "c.png"))
    assert not (tmp_path / "c.png").exists()
    flipped = bytearray(before)
    flipped[len(flipped) // 2] ^= 0x10
    corrupt.write_bytes(bytes(flipped))
    _one_line_error(walloc("decode", corrupt, "-o", tmp_path / "c.png"))
    _one_line_error(walloc("info", corrupt))
    _one_line_error(walloc("encode", media / "a.png", "--codec", "stereo-5x", "-o",
                           tmp_path / "y.wlc"))
    assert walloc("encode", media / "a.png", "-o", tmp_path / "e.wlc", "--effort", "6").returncode == 0
    res = walloc("encode", media / "a.png", "--codec", "nope")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert list(tmp_path.glob(".*part")) == []


def test_output_named_like_an_input_gets_the_command_that_works(media, tmp_path):
    """``walloc encode in.png out.wlc`` (as cp takes it) is one line that gives the -o form,
    and nothing is written; a missing input is "not found", not "the input itself"."""
    out = tmp_path / "out.wlc"
    res = walloc("encode", media / "a.png", out)
    _one_line_error(res)
    assert f"'{out}': file not found" in res.stderr
    assert f"walloc encode {media / 'a.png'} -o {out}" in res.stderr
    assert list(tmp_path.iterdir()) == []
    assert walloc("encode", media / "a.png", "-o", out).returncode == 0
    res = walloc("decode", out, tmp_path / "back.png")
    _one_line_error(res)
    assert f"walloc decode {out} -o {tmp_path / 'back.png'}" in res.stderr
    assert not (tmp_path / "back.png").exists()
    # A missing second input that is not named like an output is a batch's missing file.
    (tmp_path / "a.png").write_bytes((media / "a.png").read_bytes())
    res = walloc("encode", tmp_path / "a.png", tmp_path / "typo.png", "-q")
    _one_line_error(res)
    assert "typo.png" in res.stderr and " -o " not in res.stderr
    res = walloc("encode", tmp_path / "nowhere" / "x.wlc")
    _one_line_error(res)
    assert "file not found" in res.stderr and "input itself" not in res.stderr


def test_encode_to_a_picture_or_sound_name_is_refused(media, tmp_path):
    """``walloc encode a.png -o a.jpg`` would write a .wlc under a JPEG's name: one line that
    names the .wlc it should be, nothing written; other names (.bin, a folder) still work."""
    for src, name in (("a.png", "a.jpg"), ("s.wav", "s.flac"), ("a.png", "A.PNG")):
        out = tmp_path / name
        res = walloc("encode", media / src, "-o", out)
        _one_line_error(res)
        assert f"name it '{out.with_suffix('.wlc')}'" in res.stderr and "decode" in res.stderr
        assert not out.exists()
    res = subprocess.run([sys.executable, "-m", "pywalloc.cli", "encode", "-", "-o",
                          tmp_path / "in.webp"], input=(media / "a.png").read_bytes(),
                         capture_output=True, check=False, timeout=300)
    assert res.returncode != 0 and b".wlc bitstream" in res.stderr
    assert list(tmp_path.iterdir()) == []
    assert walloc("encode", media / "a.png", "-o", tmp_path / "a.bin", "-q").returncode == 0
    (tmp_path / "shots.png").mkdir()  # an existing folder is a folder, whatever its name
    assert walloc("encode", media / "a.png", "-o", tmp_path / "shots.png", "-q").returncode == 0
    assert (tmp_path / "shots.png" / "a.wlc").is_file()


def test_models_and_version():
    res = walloc("models")
    assert res.returncode == 0 and "rgb-16x" in res.stdout and "bundled" in res.stdout
    assert walloc("--version").returncode == 0


def test_models_show_figures_measured_on_the_default_weights():
    """`walloc models` shows the model card's PSNR per bundled default, and each recorded
    figure was measured on the weights that are the default now (stale figures would lie)."""
    from pywalloc import zoo

    res = walloc("models")
    assert res.returncode == 0, res.stderr
    shown = 0
    for name in ("rgb-16x", "rgb-4x", "gray-16x", "stereo-20x", "stereo-5x"):
        m = zoo.measured(name)
        assert m is not None, f"{name}: no figures (python experiments/record_metrics.py)"
        assert m["weights_hash"] == zoo.file_hash(zoo.weights_path(name)), name
        line = next(x for x in res.stdout.splitlines() if x.startswith(name + " "))
        assert f"{m['psnr_db']:.2f} dB" in line
        shown += 1
    assert shown == 5 and "benchmarks/model_card.py" in res.stdout
    assert zoo.measured("gray-16x")["data"].endswith("(luma)")
    rows = {r["codec"]: r for r in json.loads(walloc("models", "--json").stdout)}
    assert rows["rgb-16x"]["measured"]["data"].startswith("Kodak")


def test_models_weights_lists_every_bundled_file_with_the_hash_files_name(media, tmp_path):
    """`walloc models --weights`: every bundled weights file, each readable, one default per
    bundled preset, sizes adding up to the weights folder; a fresh file's weights_hash is the
    default's, and every hash is one that decoding finds."""
    from pywalloc import zoo

    res = walloc("models", "--weights", "--json")
    assert res.returncode == 0, res.stderr
    listed = json.loads(res.stdout)
    rows = [r for r in listed if r["bundled"]]
    gone = [r for r in listed if not r["bundled"]]  # retired from the package: named, not sized
    assert {r["weights_hash"]: r["name"] for r in gone} == {
        full: e["file"] for full, e in zoo.archived().items()}
    assert all(r["stored"] == "archived" and r["bytes"] is None and not r["default"]
               for r in gone)
    assert [r["name"] for r in rows] == [p.name for p in zoo.bundled_files()]
    assert all(r["weights_hash"] and r["error"] is None for r in rows)
    assert sorted(r["preset"] for r in rows if r["default"]) == sorted(zoo.available())
    on_disk = sum(p.stat().st_size for p in zoo.WEIGHTS_DIR.rglob("*")
                  if p.is_file() and p != zoo.ARCHIVED_INDEX)  # the index is not weights
    assert sum(r["bytes"] for r in rows) == on_disk
    assert walloc("encode", media / "a.png", "-o", tmp_path / "a.wlc").returncode == 0
    header = json.loads(walloc("info", tmp_path / "a.wlc", "--json").stdout)
    default = [r for r in rows if r["default"] and r["preset"] == "rgb-16x"]
    assert default[0]["weights_hash"].startswith(header["weights_hash"])
    for r in rows:
        assert zoo.find(r["preset"], r["weights_hash"][:16]).weight_hash == r["weights_hash"]
    text = walloc("models", "--weights")
    assert text.returncode == 0 and f"{len(rows)} weights files" in text.stdout


def test_decode_of_a_file_whose_weights_were_retired(tmp_path):
    """A .wlc made with weights retired from the package: one line naming the repository file,
    nonzero exit, no output; with --weights that file, or its folder in PYWALLOC_WEIGHTS_PATH, it
    decodes."""
    from pywalloc import zoo

    root = Path(__file__).resolve().parent.parent  # the repository
    full, entry = next(iter(zoo.archived().items()))
    old = next((root / "tests" / "golden").glob(f"{entry['preset']}-{full}*.wlc"))
    out = tmp_path / "old.wav"
    env = {k: v for k, v in os.environ.items() if k != zoo.PATH_ENV}
    res = subprocess.run([sys.executable, "-m", "pywalloc.cli", "decode", str(old), "-o",
                          str(out)], capture_output=True, text=True, env=env, check=False)
    _one_line_error(res)
    assert entry["file"] in res.stderr and not out.exists()
    res = walloc("decode", old, "-o", out, "--weights", root / entry["file"])
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 0
    out.unlink()
    env[zoo.PATH_ENV] = str((root / entry["file"]).parent)
    res = subprocess.run([sys.executable, "-m", "pywalloc.cli", "decode", str(old), "-o",
                          str(out)], capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 0, res.stderr
