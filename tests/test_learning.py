"""encode-dataset (int8, continuous, resume, ranks, audio), LatentDataset and the CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import pywalloc
from pywalloc.errors import WeightsMismatchError
from pywalloc.learning import (
    AUDIO_PEAK,
    DatasetFormatError,
    LatentDataset,
    LearningError,
    channel_stats,
    encode_dataset,
    list_inputs,
)
from pywalloc.learning import cli as lcli


@pytest.fixture(scope="module")
def codec():
    return pywalloc.load("rgb-16x")


def _images(root, sizes=((24, 32),) * 3, classes=("cat", "dog"), gray=False):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")
    if gray:
        Image.fromarray(rng.integers(0, 256, sizes[0], dtype=np.uint8)).save(root / "dog" / "g.png")
    return root


def _pixels(path):
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1)[None] / 255 - 0.5


def test_int8_roundtrip_shapes_labels(tmp_path, codec):
    data = _images(tmp_path / "in", gray=True)
    m = encode_dataset(codec, data, tmp_path / "out", shard_size=3, progress=False)
    assert m is not None and m["count"] == 7 and m["dtype"] == "int8"
    assert m["codec"] == "rgb-16x" and m["weight_hash"] == codec.weight_hash
    assert m["latent_shape"] == [12, 3, 4] and len(m["shards"]) == 3
    assert m["label_names"] == ["cat", "dog"]
    ds = LatentDataset(tmp_path / "out", codec=codec)
    assert len(ds) == 7 and ds.labels == [0, 0, 0, 1, 1, 1, 1]
    for i in range(len(ds)):
        z, y = ds[i]
        assert z.dtype == torch.float32 and z.shape == (12, 3, 4) and y == ds.labels[i]
        with torch.inference_mode():
            ref = codec.encode(_pixels(tmp_path / "in" / ds.files[i]))[0]
        assert torch.equal(z, ref.float())  # grayscale one included: converted to RGB
    with pytest.raises(IndexError):
        ds[7]
    assert torch.equal(ds[-1][0], ds[6][0])


def test_continuous_float16(tmp_path, codec):
    data = _images(tmp_path / "in")
    m = encode_dataset(codec, data, tmp_path / "out", continuous=True, size=16, progress=False)
    assert m["dtype"] == "float16" and m["latent_shape"] == [12, 2, 2] and m["size"] == 16
    ds = LatentDataset(tmp_path / "out")
    z, _ = ds[0]
    from pywalloc.learning import resize_center_crop

    arr = resize_center_crop(np.asarray(Image.open(tmp_path / "in" / ds.files[0])), 16)
    x = torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1)[None] / 255 - 0.5
    with torch.inference_mode():
        ref = codec.latents(x)[0]
    assert not torch.equal(ref, ref.round())  # really continuous, not rounded
    torch.testing.assert_close(z, ref, atol=0.07, rtol=1e-3)  # float16 precision


def test_resume_skips_finished_and_redoes_damaged(tmp_path, codec):
    data = _images(tmp_path / "in")
    out = tmp_path / "out"
    logs: list[str] = []
    encode_dataset(codec, data, out, shard_size=2, progress=False, log=logs.append)
    shards = sorted(out.glob("shard-*.safetensors"))
    assert len(shards) == 3 and "0 already done" in logs[-1]
    stamps = {p: p.stat().st_mtime_ns for p in shards}
    # Damage one shard (same size, other bytes): its entry no longer verifies.
    blob = bytearray(shards[1].read_bytes())
    blob[-1] ^= 0xFF
    shards[1].write_bytes(bytes(blob))
    os.utime(shards[1], ns=(stamps[shards[1]], stamps[shards[1]]))
    m = encode_dataset(codec, data, out, shard_size=2, progress=False, log=logs.append)
    assert "2 already done" in logs[-1]
    assert shards[0].stat().st_mtime_ns == stamps[shards[0]]
    assert shards[2].stat().st_mtime_ns == stamps[shards[2]]
    assert shards[1].read_bytes() != bytes(blob)
    assert LatentDataset(out)[2][0].shape == (12, 3, 4) and m["count"] == 6
    # Another codec setting in the same folder re-encodes everything, no stale mix.
    encode_dataset(codec, data, out, shard_size=2, continuous=True, progress=False,
                   log=logs.append)
    assert "0 already done" in logs[-1]
    assert json.loads((out / "manifest.json").read_text())["dtype"] == "float16"


def test_ranks_split_shards(tmp_path, codec):
    data = _images(tmp_path / "in")
    out = tmp_path / "out"
    assert encode_dataset(codec, data, out, shard_size=2, rank=1, world_size=2,
                          progress=False) is None
    assert sorted(p.name for p in out.glob("shard-*.safetensors")) == ["shard-00001.safetensors"]
    assert not (out / "manifest.json").exists()
    m = encode_dataset(codec, data, out, shard_size=2, rank=0, world_size=2, progress=False)
    assert m is not None and m["count"] == 6 and len(LatentDataset(out)) == 6
    with pytest.raises(LearningError):
        encode_dataset(codec, data, out, rank=2, world_size=2, progress=False)


def test_ranks_from_environment(tmp_path, codec, monkeypatch):
    data = _images(tmp_path / "in")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    encode_dataset(codec, data, tmp_path / "out", shard_size=1, progress=False)
    assert sorted(p.name for p in (tmp_path / "out").glob("shard-*.safetensors")) == [
        "shard-00001.safetensors", "shard-00004.safetensors"]


def test_bad_folders(tmp_path, codec):
    data = _images(tmp_path / "in", sizes=((24, 32), (16, 16)))
    with pytest.raises(LearningError, match="--size"):
        encode_dataset(codec, data, tmp_path / "out", progress=False)
    assert not list((tmp_path / "out").glob("shard-*"))
    Image.new("RGB", (8, 8)).save(data / "loose.png")
    with pytest.raises(LearningError, match="loose"):
        list_inputs(data, "image")
    with pytest.raises(LearningError, match="no image files"):
        list_inputs(tmp_path / "out", "image")


def test_bad_files_are_skipped_and_listed(tmp_path, codec):
    data = _images(tmp_path / "in", sizes=((24, 32),) * 4)  # cat/0..3, dog/0..3
    (data / "cat" / "1.png").write_bytes(b"not an image")  # shard 0 keeps cat/0
    (data / "cat" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # shard 1 keeps cat/3
    errors = []
    for workers in (0, 1):  # in the main process and through DataLoader workers
        out = tmp_path / f"out{workers}"
        errors.clear()
        m = encode_dataset(codec, data, out, shard_size=2, progress=False, workers=workers,
                           on_error=lambda f, why: errors.append((f, why)))
        assert [f for f, _ in errors] == ["cat/1.png", "cat/2.png"]
        assert all("\n" not in why and f.split("/")[1] in why for f, why in errors)
        assert m["count"] == 6 and m["files"] == ["cat/0.png", "cat/3.png", "dog/0.png",
                                                 "dog/1.png", "dog/2.png", "dog/3.png"]
        assert m["labels"] == [0, 0, 1, 1, 1, 1]
        assert [(s["file"], s["reason"]) for s in m["skipped"]] == errors
        ds = LatentDataset(out)
        assert len(ds) == 6 and ds.labels == m["labels"]
        for i, name in enumerate(m["files"]):
            z, y = ds[i]
            want = codec.encode(_pixels(data / name))[0].float()
            assert torch.equal(z, want) and y == m["labels"][i]
    # A shard whose every input fails holds no items; the index stays consistent.
    (data / "cat" / "0.png").write_bytes(b"")
    (data / "cat" / "1.png").write_bytes(b"")
    m = encode_dataset(codec, data, tmp_path / "out0", shard_size=2, progress=False)
    assert m["count"] == 5 and len(m["shards"]) == 3 and len(LatentDataset(tmp_path / "out0")) == 5
    assert not (tmp_path / "out0" / "shard-00000.safetensors").exists()
    assert [s["file"] for s in m["skipped"]] == ["cat/0.png", "cat/1.png", "cat/2.png"]
    # A rerun tries the failed files again: once repaired, nothing is skipped.
    for i in range(3):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(data / "cat" / f"{i}.png")
    logs = []
    m = encode_dataset(codec, data, tmp_path / "out0", shard_size=2, progress=False,
                       log=logs.append)
    assert m["count"] == 8 and m["skipped"] == [] and m["files"] == json.loads(
        (tmp_path / "out0" / "manifest.json").read_text())["files"]
    assert "2 already done" in logs[0]  # the dog shards were not encoded again


def test_cli_reports_bad_files_and_fails(tmp_path, capsys):
    data = _images(tmp_path / "in")
    (data / "dog" / "1.png").write_bytes(b"not an image")
    rc = lcli.main(["encode-dataset", "--codec", "rgb-16x", "--data", str(data), "--out",
                    str(tmp_path / "out"), "--workers", "0", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 1 and cap.err.count("\n") == 1 and "Traceback" not in cap.err
    assert cap.err.startswith("walloc encode-dataset: error: ") and "1.png" in cap.err
    assert "5 items" in cap.out and "1 file failed" in cap.out
    assert len(LatentDataset(tmp_path / "out")) == 5


def test_unlabelled_audio(tmp_path):
    codec = pywalloc.load("stereo-20x")
    rng = np.random.default_rng(1)
    (tmp_path / "in").mkdir()
    for i, amp in enumerate((0.1, 0.5)):
        sf.write(tmp_path / "in" / f"{i}.wav", (amp * rng.uniform(-1, 1, (700, 2))), 44100)
    m = encode_dataset(codec, tmp_path / "in", tmp_path / "out", size=1000, progress=False)
    assert m["label_names"] == [] and m["latent_shape"] == [27, 4]
    ds = LatentDataset(tmp_path / "out")
    assert ds[0][1] == -1 and ds[1][0].shape == (27, 4)
    for i in range(2):
        data, _ = sf.read(tmp_path / "in" / ds.files[i], dtype="float32")
        assert ds.gain(i) == pytest.approx(AUDIO_PEAK / np.abs(data).max(), rel=1e-6)


def test_dataset_errors_and_stats(tmp_path, codec):
    with pytest.raises(DatasetFormatError, match="manifest"):
        LatentDataset(tmp_path)
    (tmp_path / "manifest.json").write_text("{\"format\": \"other\"}")
    with pytest.raises(DatasetFormatError):
        LatentDataset(tmp_path)
    data = _images(tmp_path / "in")
    encode_dataset(codec, data, tmp_path / "out", shard_size=2, progress=False)
    with pytest.raises(WeightsMismatchError):
        LatentDataset(tmp_path / "out", codec=pywalloc.load("rgb-4x"))
    ds = LatentDataset(tmp_path / "out", cache_shards=1)
    allz = torch.stack([ds[i][0] for i in range(len(ds))])
    mean, std = channel_stats(ds)
    flat = allz.transpose(0, 1).reshape(12, -1).double()
    torch.testing.assert_close(mean, flat.mean(1).float(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(std, flat.std(1, unbiased=False).float(), atol=1e-3, rtol=1e-3)
    assert len(ds._cache) == 1
    (tmp_path / "out" / "shard-00001.safetensors").write_bytes(b"junk")
    with pytest.raises(DatasetFormatError, match="shard-00001"):
        ds[2]


def test_cli(tmp_path, capsys):
    data = _images(tmp_path / "in")
    rc = lcli.main(["encode-dataset", "--codec", "rgb-16x", "--data", str(data), "--out",
                    str(tmp_path / "out"), "--workers", "0", "--quiet"])
    assert rc == 0 and "6 items" in capsys.readouterr().out
    rc = lcli.main(["encode-dataset", "--codec", "rgb-16x", "--data", str(tmp_path / "nope"),
                    "--out", str(tmp_path / "out2"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "does not exist" in err
    rc = lcli.main(["encode-dataset", "--codec", "rgb-99x", "--data", str(data),
                    "--out", str(tmp_path / "out3"), "--quiet"])
    assert rc == 1 and "unknown codec" in capsys.readouterr().err


def test_walloc_entry_point_has_subcommand(tmp_path, capsys):
    from pywalloc import cli as main_cli

    data = _images(tmp_path / "in")
    rc = main_cli.main(["encode-dataset", "--codec", "rgb-16x", "--data", str(data), "--out",
                        str(tmp_path / "out"), "--workers", "0", "--quiet", "--continuous"])
    assert rc == 0 and LatentDataset(tmp_path / "out").manifest["dtype"] == "float16"
