"""walloc and the shell: stdin/stdout, JSON outputs, -q everywhere, one-line warnings, --device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def walloc(*args, stdin: bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    # the checkout first, then whatever the caller's path holds (a GPU machine's wheels
    # travel in a --target folder on PYTHONPATH: replacing it lost soundfile there)
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-m", "pywalloc", *map(str, args)], input=stdin,
                          capture_output=True, cwd=cwd, env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("stdio")
    with Image.open(ROOT / "pywalloc" / "samples" / "kodim23.png") as im:
        im.crop((200, 100, 296, 164)).save(d / "p.png")
    return d / "p.png"


def test_stdin_to_stdout_and_back(photo, tmp_path):
    enc = walloc("encode", "-", stdin=photo.read_bytes())
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout[:4] == b"\x89WLC"
    (tmp_path / "x.wlc").write_bytes(enc.stdout)
    assert walloc("info", tmp_path / "x.wlc").returncode == 0
    info = walloc("info", "-", "--json", stdin=enc.stdout)
    assert json.loads(info.stdout)["codec"] == "rgb-16x"
    dec = walloc("decode", "-", stdin=enc.stdout)
    assert dec.returncode == 0 and dec.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    dec2 = walloc("decode", tmp_path / "x.wlc", "-o", "-")
    assert dec2.stdout == dec.stdout
    res = walloc("decode", "-", "-o", tmp_path / "y.bmp", stdin=enc.stdout)
    assert res.returncode == 0 and (tmp_path / "y.bmp").read_bytes()[:2] == b"BM"
    file_enc = walloc("encode", photo, "-o", "-")
    assert file_enc.stdout == enc.stdout


def test_stdin_errors_are_one_line(photo):
    for args, stdin, text in ((("encode", "-"), b"", "stdin is empty"),
                              (("encode", "-"), b"not an image", "<stdin>"),
                              (("decode", "-"), b"\x89WLC\x01", "truncated"),
                              (("encode", "-", photo), b"x", "only input")):
        res = walloc(*args, stdin=stdin)
        err = res.stderr.decode()
        assert res.returncode == 1 and len(err.strip().splitlines()) == 1, err
        assert text in err and "Traceback" not in err


def test_models_json_and_roundtrip_json_keys(photo):
    res = walloc("models", "--json")
    rows = json.loads(res.stdout)
    assert {r["codec"] for r in rows} >= {"rgb-16x", "stereo-20x"}
    assert all(isinstance(r["bundled"], bool) for r in rows)
    res = walloc("roundtrip", photo, "--json", "--device", "cpu")
    d = json.loads(res.stdout)
    assert not [k for k in d if "/" in k] and d["encode_mpix_per_s"] > 0


@pytest.mark.parametrize("cmd", ["encode", "decode", "info", "roundtrip", "demo", "models",
                                 "train", "eval", "encode-dataset"])
def test_every_subcommand_has_quiet(cmd):
    from pywalloc.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices[cmd].format_help()
    assert "-q, --quiet" in text


def test_warnings_are_one_line_and_quiet_hides_them(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 3] = 128
    Image.fromarray(rgba).save(tmp_path / "a.png")
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "b.gif", save_all=True, append_images=frames[1:])
    for name in ("a.png", "b.gif"):
        res = walloc("encode", tmp_path / name, "-o", tmp_path / f"{name}.wlc")
        lines = res.stderr.decode().strip().splitlines()
        assert res.returncode == 0 and len(lines) == 1, lines
        # the subcommand names itself, as its error lines do
        assert lines[0].startswith("walloc encode: warning: ") and "Warning" not in lines[0]
        res = walloc("encode", tmp_path / name, "-o", tmp_path / f"{name}.q.wlc", "-q")
        assert res.returncode == 0 and res.stderr == b""


def test_device_flag(photo, tmp_path):
    import torch

    res = walloc("encode", photo, "-o", tmp_path / "d.wlc", "--device", "cpu", "-q")
    assert res.returncode == 0, res.stderr
    if not torch.cuda.is_available():
        res = walloc("decode", tmp_path / "d.wlc", "--device", "cuda")
        assert res.returncode == 1 and b"CUDA is not available" in res.stderr


def test_demo_the_readme_main_job(tmp_path):
    res = walloc("demo", "-o", tmp_path / "d", "-q", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    names = {p.name for p in (tmp_path / "d").iterdir()}
    assert {"kodim23.rgb-16x.wlc", "kodim23.rgb-16x.png", "chimes.stereo-20x.wav"} <= names
    assert b"PSNR" in res.stdout
