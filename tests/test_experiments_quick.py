"""Smoke runs of the compressed-learning experiments' --quick modes (skipped without the
shared data): they must finish, and write results with sane numbers."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _split_and_combine(script: str, name: str, result: dict, tmp_path: Path) -> dict:
    """Split a two-seed result into two one-seed files; --combine must rebuild it."""
    files = []
    for seed in (0, 1):
        part = dict(result, runs=[r for r in result["runs"] if r["seed"] == seed])
        f = tmp_path / f"part{seed}.json"
        f.write_text(json.dumps(part))
        files.append(str(f))
    out = tmp_path / "combined"
    for args, rc in (([files[0], files[0]], 2), (files, 0)):
        proc = subprocess.run([sys.executable, str(ROOT / "experiments" / script), "--out",
                               str(out), "--combine", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, check=False)
        assert proc.returncode == rc, proc.stderr[-2000:]
        if rc:
            assert len(proc.stderr.strip().splitlines()) == 1
    return json.loads((out / f"{name}.json").read_text())


def _run(script: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / script), "--quick",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name = script.replace(".py", "-quick")
    assert (out / f"{name}.md").read_text().startswith("Command:")
    return json.loads((out / f"{name}.json").read_text())


@pytest.mark.slow
def test_classify_quick(tmp_path):
    if not (DATA / "imagenette").is_dir():
        pytest.skip("shared imagenette data absent")
    r = _run("classify.py", tmp_path)
    variants = {"resize-28", "rgb-16x@112", "resize-56", "rgb-16x@224", "resize-112",
                "rgb-4x@224", "full-224"}
    assert {x["variant"] for x in r["runs"]} == variants
    assert {x["seed"] for x in r["runs"]} == {0, 1}
    for run in r["runs"]:
        assert 0.0 <= run["top1"] <= 100.0 and run["epoch_seconds"] > 0
        assert all(math.isfinite(v) for v in run["train_loss"])
    assert r["data"]["classes"][0] == "n01440764" and len(r["data"]["classes"]) == 10
    s = r["summary"]
    assert set(s["pairs"]) == {"rgb-16x@112", "rgb-16x@224", "rgb-4x@224"}
    assert set(s["validity"]) == variants - {"full-224"}
    for d in [*s["pairs"].values(), *s["validity"].values()]:
        assert d["n"] == 2 and d["lo"] <= d["mean"] <= d["hi"]
    # The cache was written: encoding is not repeated by the next run.
    assert any((tmp_path / "cache").glob("classify-quick-rgb-16x@112-*.safetensors"))
    c = _split_and_combine("classify.py", "classify", r, tmp_path)
    assert c["summary"] == json.loads(json.dumps(s)) and c["seeds_done"] == [0, 1]
    # The full-size reference runs in its own process (--variants full-224): runs split by
    # variant combine too.
    assert r["config"]["stem"] == "conv" and r["config"]["full_stem"] == "pyramid"
    files = []
    for i, keep in enumerate(({"full-224"}, variants - {"full-224"})):
        part = dict(r, runs=[x for x in r["runs"] if x["variant"] in keep],
                    config=dict(r["config"], variants=sorted(keep)))
        files.append(tmp_path / f"variants{i}.json")
        files[-1].write_text(json.dumps(part))
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "classify.py"), "--out",
                           str(tmp_path / "byvariant"), "--combine", *map(str, files)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    c = json.loads((tmp_path / "byvariant" / "classify.json").read_text())
    assert c["summary"] == json.loads(json.dumps(s))


def test_classify_compare_pairs_seeds_across_codecs(tmp_path):
    """--compare: the per-seed change of each shared variant between runs with other codec
    weights; other settings must match."""
    cfg = {"model": "cnn", "epochs": 40, "codec16": "rgb-16x", "seeds": [0, 1, 2]}

    def result(name, top1, **extra):
        runs = [{"variant": v, "seed": s, "top1": t} for v, row in top1.items()
                for s, t in enumerate(row)]
        f = tmp_path / name
        f.write_text(json.dumps({"config": {**cfg, **extra}, "codecs": {"rgb-16x": name},
                                 "runs": runs}))
        return str(f)

    a = result("a.json", {"resize-28": [50, 51, 52], "rgb-16x@112": [47, 48, 46]})
    b = result("b.json", {"resize-28": [50, 51, 52], "rgb-16x@112": [46, 46, 45]},
               codec16="x.safetensors")
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "classify.py"),
                           "--compare", a, b], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines()
            if line.startswith("| r")}
    assert "| 47.0 | 45.7 | -1.3 [" in rows["rgb-16x@112"] and "| 3 |" in rows["rgb-16x@112"]
    assert "+0.0 [+0.0, +0.0]" in rows["resize-28"]
    # FILE:VARIANT pairs two named variants across the runs: b's latents against a's resize
    # (per seed 46-50, 46-51, 45-52).
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "classify.py"),
                           "--compare", a + ":resize-28", b + ":rgb-16x@112"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| r")]
    assert len(rows) == 1 and rows[0].startswith(
        "| rgb-16x@112 (after) - resize-28 (before) | top-1 % | 51.0 | 45.7 | -5.3 ["), rows
    for pair in ((a + ":resize-28", b), (a + ":resize-56", b + ":rgb-16x@112")):
        proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "classify.py"),
                               "--compare", *pair], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    c = result("c.json", {"resize-28": [50, 51, 52]}, epochs=20)
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "classify.py"),
                           "--compare", a, c], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    # read_text.py shares the comparison (one helper in experiments/_results.py), per metric.
    runs = [{"variant": "latent-rgb-16x", "seed": k, "char_acc": 60.0 + k, "anls": 50.0}
            for k in range(2)]
    for name, shift in (("r0.json", 0.0), ("r1.json", 2.0)):
        (tmp_path / name).write_text(json.dumps({
            "config": {"steps": 1000, "codecs": [name]}, "codecs": {"rgb-16x": name},
            "runs": [dict(r, char_acc=r["char_acc"] + shift) for r in runs]}))
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "read_text.py"),
                           "--compare", str(tmp_path / "r0.json"), str(tmp_path / "r1.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| latent-rgb-16x | char. accuracy % | 60.5 | 62.5 | +2.0 [+2.0, +2.0] | 2 |" in \
        proc.stdout
    assert "| latent-rgb-16x | ANLS x 100 | 50.0 | 50.0 | +0.0 [+0.0, +0.0] | 2 |" in proc.stdout
    # A file that is not a result, or runs with nothing in common: one line, exit 2.
    (tmp_path / "bad.json").write_text('{"config": 1}')
    (tmp_path / "other.json").write_text(json.dumps({
        "config": {"steps": 1000, "codecs": ["x"]}, "codecs": {}, "runs": [
            {"variant": "latent-rgb-4x", "seed": 0, "char_acc": 1.0, "anls": 1.0}]}))
    for second in ("bad.json", "other.json"):
        proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "read_text.py"),
                               "--compare", str(tmp_path / "r0.json"), str(tmp_path / second)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.slow
def test_separate_quick(tmp_path):
    if not (DATA / "stems").is_dir():
        pytest.skip("shared stems data absent")
    r = _run("separate.py", tmp_path)
    assert {(x["codec"], x["domain"]) for x in r["runs"]} == {
        ("stereo-20x", "latent"), ("stereo-20x", "wave"), ("stereo-5x", "latent"),
        ("stereo-5x", "wave")}
    assert r["seeds_done"] == [0]  # written after every seed, with the seeds finished so far
    for run in r["runs"]:
        assert math.isfinite(run["psnr"]) and math.isfinite(run["si_sdr"])
    # Equal dimension: waveform at 44.1 kHz * C_z / 512 has as many values as the latents.
    s = r["summary"]
    for codec in ("stereo-20x", "stereo-5x"):
        lat, wav = s[f"{codec}/latent"]["values"], s[f"{codec}/wave"]["values"]
        assert abs(lat - wav) / lat < 0.01
    b = r["baselines"]
    # Sanity of the references: the codec round trip of the true lead beats the mixture.
    assert b["stereo-5x round trip of the true lead"]["psnr"] > b["mixture"]["psnr"] + 10


def test_read_text_quick(tmp_path):
    pytest.importorskip("matplotlib")  # ships the DejaVu fonts
    r = _run("read_text.py", tmp_path)
    names = {"resize-rgb-16x", "latent-rgb-16x", "resize-rgb-4x", "latent-rgb-4x", "full"}
    assert {x["variant"] for x in r["runs"]} == names and r["seeds_done"] == [0, 1]
    s = r["summary"]
    # equal dimension on both sides of each pair
    assert s["resize-rgb-16x"]["values"] == s["latent-rgb-16x"]["values"] == 768
    assert s["resize-rgb-4x"]["values"] == s["latent-rgb-4x"]["values"] == 3072
    for x in r["runs"]:
        assert 0.0 <= x["char_acc"] <= 100.0 and 0.0 <= x["anls"] <= 100.0
        assert all(math.isfinite(v) for v in x["loss_curve"])
    d = s["latent-rgb-16x"]["diff_char_acc"]
    assert d["lo"] <= d["mean"] <= d["hi"]
    c = _split_and_combine("read_text.py", "read_text", r, tmp_path)
    assert c["summary"] == s and c["seeds_done"] == [0, 1]


@pytest.mark.slow
def test_colorize_quick(tmp_path):
    if not (DATA / "imagenette").is_dir():
        pytest.skip("shared imagenette data absent")
    r = _run("colorize.py", tmp_path)
    assert {(x["domain"], x["seed"]) for x in r["runs"]} == {
        ("resize", 0), ("latent", 0), ("resize", 1), ("latent", 1)}
    assert r["values"] == 12 * 8 * 8  # 64x64 quick images: rgb-16x latents = 3 x 16 x 16
    for x in r["runs"]:
        assert math.isfinite(x["psnr"])
    b = r["baselines"]
    assert all(math.isfinite(v["psnr"]) for v in b.values()) and len(b) == 3


def test_heldout_variants(tmp_path):
    """The infrasound-free copies of held-out music: DC removed, 20 Hz high-pass."""
    import numpy as np
    import soundfile as sf

    src = tmp_path / "src"
    src.mkdir()
    t = np.arange(44100) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    x = np.stack([tone + 0.4, tone + 0.3 * np.sin(2 * np.pi * 3 * t)], 1)
    sf.write(src / "a.flac", x, 44100, subtype="PCM_24")
    res = subprocess.run([sys.executable, str(ROOT / "experiments" / "heldout_variants.py"),
                          "--src", str(src), "--out", str(tmp_path)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "a.flac:" in res.stdout
    dc, _ = sf.read(tmp_path / "heldout-dcfree" / "a.flac")
    hp, _ = sf.read(tmp_path / "heldout-hp20" / "a.flac")
    assert np.abs(dc.mean(0)).max() < 1e-4
    mid = slice(4410, -4410)  # away from the filter's start and end
    assert np.abs(hp[mid] - tone[mid, None]).max() < 0.02  # the 440 Hz tone stays
    assert np.abs(hp[mid, 1] - tone[mid]).max() < 0.02  # the 3 Hz drift is gone


def test_prepare_audio_highpasses_only_the_training_music(tmp_path):
    """experiments/prepare_audio.py: stems mixtures to train/val, the 48 kHz singularity tracks
    resampled to 44.1 kHz; their training copies lose the infrasound (a DC offset here), the
    held-out one (every fifth from the third) keeps it."""
    import numpy as np
    import soundfile as sf

    shared = tmp_path / "shared"
    t = np.arange(24000) / 48000
    for i in range(4):
        piece = shared / "stems" / "train" / f"p{i}"
        piece.mkdir(parents=True)
        for stem in ("lead", "accomp"):
            sf.write(piece / f"{stem}.flac", np.full((4410, 2), 0.1), 44100)
    sing = shared / "music-train" / "singularity"
    sing.mkdir(parents=True)
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    for i in range(5):
        sf.write(sing / f"s{i}.ogg", np.stack([tone + 0.4, tone], 1), 48000)
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, str(ROOT / "experiments" / "prepare_audio.py"),
                          "--shared", str(shared), "--out", str(out), "--holdout", "1"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert len(list((out / "train").glob("p*.flac"))) == 3
    assert [p.name for p in (out / "heldout-music").iterdir()] == ["s2.flac"]
    held, rate = sf.read(out / "heldout-music" / "s2.flac")
    assert rate == 44100 and abs(held[:, 0].mean() - 0.4) < 0.02
    for i in (0, 1, 3, 4):
        x, rate = sf.read(out / "train" / f"s{i}.flac")
        mid = slice(2205, -2205)
        assert rate == 44100 and np.abs(x[mid].mean(0)).max() < 0.01
        assert 0.2 < np.abs(x[mid, 0]).max() < 0.4  # the tone stays
    assert not list(out.rglob("*.tmp"))
    # Run again with --no-highpass: prepare.json says the copies were filtered, so the
    # training copies are written again, unfiltered; without a change they are kept.
    again = [sys.executable, str(ROOT / "experiments" / "prepare_audio.py"), "--shared",
             str(shared), "--out", str(out), "--holdout", "1", "--no-highpass"]
    res = subprocess.run(again, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "4 old training copies written again" in res.stdout
    x, _ = sf.read(out / "train" / "s0.flac")
    assert abs(x[2205:-2205, 0].mean() - 0.4) < 0.02
    res = subprocess.run(again, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and "0 old training copies" in res.stdout


def test_bundle_weights_moves_the_old_default_to_legacy(tmp_path):
    """experiments/bundle_weights.py: the old default goes to legacy/ (xz, same tensors), the trained
    weights become the fp16 default with their config, and the zoo finds both by hash."""
    import torch

    from pywalloc.codec import Codec

    folder = tmp_path / "weights"
    folder.mkdir()
    torch.manual_seed(0)
    old = Codec("rgb-16x", width=8, blocks=1)
    old.save(folder / "rgb-16x-small.safetensors")
    old_hash = Codec.from_file(folder / "rgb-16x-small.safetensors").weight_hash
    trained = Codec("rgb-16x", width=8, blocks=1, pad="replicate")
    with torch.no_grad():
        trained.synthesis.net[-1].weight.normal_(0, 0.01)
    (tmp_path / "run").mkdir()
    trained.save(tmp_path / "run" / "model.safetensors", half=False)
    (tmp_path / "run" / "result.json").write_text(json.dumps({"step": 7, "minutes": 1.5}))
    cmd = [sys.executable, str(ROOT / "experiments" / "bundle_weights.py"), "rgb-16x",
           str(tmp_path / "run" / "model.safetensors"), "--legacy-name", "old",
           "--weights-dir", str(folder), "--recipe", "test"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    moved = Codec.from_file(folder / "legacy" / "rgb-16x-small-old.safetensors.xz")  # packed
    assert moved.weight_hash == old_hash
    assert json.loads((folder / "legacy" / "rgb-16x-small-old.json").read_text())["config"]
    assert not (folder / "rgb-16x-small.safetensors").exists()  # the new default is xz
    new = Codec.from_file(folder / "rgb-16x-small.safetensors.xz")
    assert new.config.pad == "replicate" and new.weight_hash != old_hash
    assert new.synthesis.net[-1].weight.abs().max() > 0
    meta = json.loads((folder / "rgb-16x-small.json").read_text())
    assert meta["info"]["step"] == 7 and meta["config"]["pad"] == "replicate"
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                           check=False)
    assert again.returncode == 2 and "exists" in again.stderr  # never overwrites legacy files
    # The default's tensors already in legacy/ (the same weights under another config): the
    # replaced default becomes an alias of that file instead of a second copy.
    import shutil

    from pywalloc import zoo

    shutil.copy(folder / "rgb-16x-small.safetensors.xz",
                folder / "legacy" / "rgb-16x-dup.safetensors.xz")
    new_hash = new.weight_hash
    cmd[cmd.index("old")] = "second"
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    alias = folder / "legacy" / "rgb-16x-small-second.alias.json"
    assert alias.is_file() and not alias.with_name("rgb-16x-small-second.safetensors").exists()
    assert json.loads(alias.read_text())["tensors"] == "rgb-16x-dup.safetensors.xz"
    assert zoo.load(alias).weight_hash == new_hash
    # --dedupe: a legacy file that differs from another in a few tensors only becomes an
    # alias of it with an overrides file, under the same hash.
    state = zoo.read_weights(folder / "legacy" / "rgb-16x-dup.safetensors.xz")[1]
    state["analysis.bias"] = state["analysis.bias"] + 1
    from safetensors.torch import save_file

    save_file(state, folder / "legacy" / "rgb-16x-a-near.safetensors")
    (folder / "legacy" / "rgb-16x-a-near.json").write_text(json.dumps({"config": meta["config"]}))
    near_hash = zoo.file_hash(folder / "legacy" / "rgb-16x-a-near.safetensors")
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "bundle_weights.py"),
                           "--dedupe", "--weights-dir", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1 tensors overridden" in proc.stdout
    near = folder / "legacy" / "rgb-16x-a-near.alias.json"
    assert not (folder / "legacy" / "rgb-16x-a-near.safetensors").exists()
    assert json.loads(near.read_text())["overrides"] == "rgb-16x-a-near.overrides.safetensors"
    assert zoo.file_hash(near) == near_hash


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names of a (possibly xz-packed) safetensors file, as stored."""
    import lzma

    raw = path.read_bytes()
    if path.name.endswith(".xz"):
        raw = lzma.decompress(raw)
    return list(json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")]))


def _folder_bytes(folder: Path) -> dict[Path, bytes]:
    """Every file under ``folder`` (relative path) and its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_bundle_weights_undoes_a_ship_over_the_budget(tmp_path):
    """A ship that would take the bundle past its budget (``--limit-mb``) leaves the weights
    folder exactly as it was, byte for byte, and exits 1 with one line saying so; under the
    budget the same command ships."""
    import torch

    from pywalloc.codec import Codec

    folder = tmp_path / "weights"
    folder.mkdir()
    torch.manual_seed(0)
    Codec("rgb-16x", width=8, blocks=1).save(folder / "rgb-16x-small.safetensors")
    trained = Codec("rgb-16x", width=8, blocks=1)
    with torch.no_grad():
        trained.synthesis.net[-1].weight.normal_(0, 0.01)
    trained.save(tmp_path / "model.safetensors", half=False)
    before = _folder_bytes(folder)
    cmd = [sys.executable, str(ROOT / "experiments" / "bundle_weights.py"), "rgb-16x",
           str(tmp_path / "model.safetensors"), "--legacy-name", "old", "--weights-dir",
           str(folder), "--limit-mb", "0.001"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert "over the 0.001 MB budget; nothing replaced" in proc.stderr
    assert "Traceback" not in proc.stderr
    after = _folder_bytes(folder)
    assert after == before
    proc = subprocess.run(cmd[:-1] + ["60"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (folder / "legacy" / "rgb-16x-small-old.safetensors.xz").is_file()


def test_bundle_weights_ships_a_medium_decoder_beside_the_small_one(tmp_path):
    """A medium decoder is bundled as the preset's medium default (the zoo's name for that
    size), with --int8 its CNN stored as int8; the small default, which compress uses, is
    left as it is."""
    import torch

    from pywalloc import zoo
    from pywalloc.codec import Codec

    folder = tmp_path / "weights"
    folder.mkdir()
    torch.manual_seed(0)
    small = Codec("rgb-16x", width=8, blocks=1)
    small.save(folder / zoo.default_name("rgb-16x"))
    before = (folder / "rgb-16x-small.safetensors.xz").read_bytes()
    medium = Codec("rgb-16x", "medium", width=16, blocks=1)
    medium.save(tmp_path / "m.safetensors", half=False)
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "bundle_weights.py"),
                           "rgb-16x", str(tmp_path / "m.safetensors"), "--legacy-name", "x",
                           "--weights-dir", str(folder), "--recipe", "test", "--int8"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert zoo.default_file(folder, "rgb-16x", "medium").name == "rgb-16x-medium.safetensors.xz"
    shipped = Codec.from_file(folder / "rgb-16x-medium.safetensors.xz")
    assert shipped.config.size == "medium" and shipped.size_spec.width == 16
    assert shipped.weight_hash in proc.stdout and "int8" in proc.stdout
    meta = json.loads((folder / "rgb-16x-medium.json").read_text())
    assert "int8" in meta["info"]["stored"]
    assert any(k.endswith(zoo.QSCALE_SUFFIX) for k in safetensors_keys(
        folder / "rgb-16x-medium.safetensors.xz"))
    assert (folder / "rgb-16x-small.safetensors.xz").read_bytes() == before
    assert not (folder / "legacy").exists()  # nothing was replaced


def test_bundle_weights_keeps_aliases_of_a_default(tmp_path):
    """--dedupe turns a legacy copy of a default's tensors (another config) into an alias
    naming ``../<default>``; replacing that default later moves its tensors to legacy/ and
    points the alias there, under the same hash."""
    import torch

    from pywalloc import zoo
    from pywalloc.codec import Codec

    folder = tmp_path / "weights"
    (folder / "legacy").mkdir(parents=True)
    torch.manual_seed(0)
    default = Codec("rgb-16x", width=8, blocks=1, pad="replicate")
    default.save(folder / "rgb-16x-small.safetensors")
    state = zoo.read_weights(folder / "rgb-16x-small.safetensors")[1]
    old = Codec.from_state({"preset": "rgb-16x", "width": 8, "blocks": 1}, state)
    old.save(folder / "legacy" / "rgb-16x-small-zero.safetensors", half=True)
    old_hash = zoo.file_hash(folder / "legacy" / "rgb-16x-small-zero.safetensors")
    default_hash = zoo.file_hash(folder / "rgb-16x-small.safetensors")
    assert old_hash != default_hash
    script = str(ROOT / "experiments" / "bundle_weights.py")
    proc = subprocess.run([sys.executable, script, "--dedupe", "--weights-dir", str(folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    alias = folder / "legacy" / "rgb-16x-small-zero.alias.json"
    assert json.loads(alias.read_text())["tensors"] == "../rgb-16x-small.safetensors"
    assert not (folder / "legacy" / "rgb-16x-small-zero.safetensors").exists()
    assert zoo.file_hash(alias) == old_hash
    trained = Codec("rgb-16x", width=8, blocks=1, pad="replicate")
    (tmp_path / "run").mkdir()
    trained.save(tmp_path / "run" / "model.safetensors", half=False)
    proc = subprocess.run([sys.executable, script, "rgb-16x",
                           str(tmp_path / "run" / "model.safetensors"), "--legacy-name", "one",
                           "--weights-dir", str(folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    moved = folder / "legacy" / "rgb-16x-small-one.safetensors.xz"
    if not moved.exists():  # stored as delta planes against the new default: smaller than xz
        moved = folder / "legacy" / "rgb-16x-small-one.alias.json"
    assert zoo.file_hash(moved) == default_hash
    assert json.loads(alias.read_text())["tensors"] == moved.name
    assert zoo.file_hash(alias) == old_hash
    assert zoo.file_hash(folder / "rgb-16x-small.safetensors.xz") not in (old_hash, default_hash)
    assert not (folder / "rgb-16x-small.safetensors").exists()


def test_bundle_weights_undoes_a_ship_whose_alias_retarget_breaks(tmp_path, monkeypatch,
                                                                  capsys):
    """When an alias of the replaced default would change its hash on the moved copy, the
    ship is undone whole: the weights folder (the alias included, which the retarget had
    already rewritten) is back byte for byte, and one error line says why."""
    import importlib.util

    import torch

    from pywalloc import zoo
    from pywalloc.codec import Codec

    folder = tmp_path / "weights"
    (folder / "legacy").mkdir(parents=True)
    torch.manual_seed(0)
    Codec("rgb-16x", width=8, blocks=1, pad="replicate").save(folder / "rgb-16x-small.safetensors")
    state = zoo.read_weights(folder / "rgb-16x-small.safetensors")[1]
    Codec.from_state({"preset": "rgb-16x", "width": 8, "blocks": 1}, state).save(
        folder / "legacy" / "rgb-16x-small-zero.safetensors", half=True)
    spec = importlib.util.spec_from_file_location(
        "bundle_weights_retarget", ROOT / "experiments" / "bundle_weights.py")
    bw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bw)
    assert bw.main(["--dedupe", "--weights-dir", str(folder)]) == 0  # the alias of the default
    alias = folder / "legacy" / "rgb-16x-small-zero.alias.json"
    assert json.loads(alias.read_text())["tensors"] == "../rgb-16x-small.safetensors"
    before = _folder_bytes(folder)
    real = bw._retarget

    def breaks(wants, target):  # retargets for real, then reports a changed hash
        assert real(wants, target) is None
        assert json.loads(alias.read_text())["tensors"] != "../rgb-16x-small.safetensors"
        return alias.name

    monkeypatch.setattr(bw, "_retarget", breaks)
    (tmp_path / "run").mkdir()
    Codec("rgb-16x", width=8, blocks=1, pad="replicate").save(
        tmp_path / "run" / "model.safetensors", half=False)
    capsys.readouterr()
    assert bw.main(["rgb-16x", str(tmp_path / "run" / "model.safetensors"), "--legacy-name",
                    "one", "--weights-dir", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"{alias.name} changes its hash" in err and "nothing replaced" in err
    after = _folder_bytes(folder)
    assert after == before


def test_bundle_weights_stores_a_retrained_default_as_delta_planes(tmp_path):
    """A default replaced by another training of the same architecture goes to legacy/ as delta
    planes against the new default (smaller than xz), the aliases that named it follow it,
    and --dedupe rewrites a legacy xz file as delta planes; every hash stays."""
    import lzma
    from dataclasses import asdict

    import torch

    from pywalloc import zoo
    from pywalloc.codec import Codec

    def drifted(codec, scale):  # another training: the same tensors, values a little off
        out = Codec("rgb-16x", width=16, blocks=1)
        with torch.no_grad():
            for mine, theirs in zip(out.parameters(), codec.parameters()):
                mine.copy_(theirs * scale)
        return out

    folder = tmp_path / "weights"
    legacy = folder / "legacy"
    legacy.mkdir(parents=True)
    torch.manual_seed(0)
    default = Codec("rgb-16x", width=16, blocks=1)
    default.save(folder / "rgb-16x-small.safetensors")
    default_hash = zoo.file_hash(folder / "rgb-16x-small.safetensors")
    config = asdict(default.config)
    pad = legacy / "rgb-16x-small-pad.alias.json"
    pad.write_text(json.dumps({"config": {**config, "pad": "replicate"},
                               "tensors": "../rgb-16x-small.safetensors"}))
    pad_hash = zoo.file_hash(pad)
    drifted(default, 0.99).save(tmp_path / "older.safetensors")
    older = legacy / "rgb-16x-small-older.safetensors.xz"
    older.write_bytes(lzma.compress((tmp_path / "older.safetensors").read_bytes()))
    (legacy / "rgb-16x-small-older.json").write_text(json.dumps({"config": config}))
    older_hash = zoo.file_hash(older)
    (tmp_path / "run").mkdir()
    drifted(default, 1.01).save(tmp_path / "run" / "model.safetensors", half=False)
    script = str(ROOT / "experiments" / "bundle_weights.py")
    proc = subprocess.run([sys.executable, script, "rgb-16x",
                           str(tmp_path / "run" / "model.safetensors"), "--legacy-name", "one",
                           "--weights-dir", str(folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    moved = legacy / "rgb-16x-small-one.alias.json"
    spec = json.loads(moved.read_text())
    assert spec["delta"] == "rgb-16x-small-one.delta.xz"
    assert spec["tensors"] == "../rgb-16x-small.safetensors.xz"
    assert not (legacy / "rgb-16x-small-one.safetensors.xz").exists()
    assert zoo.file_hash(moved) == default_hash != zoo.file_hash(
        folder / "rgb-16x-small.safetensors.xz")
    assert json.loads(pad.read_text())["tensors"] == moved.name
    assert zoo.file_hash(pad) == pad_hash
    proc = subprocess.run([sys.executable, script, "--dedupe", "--weights-dir", str(folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rgb-16x-small-older.safetensors.xz: delta planes" in proc.stdout
    assert not older.exists() and not (legacy / "rgb-16x-small-older.json").exists()
    assert zoo.file_hash(legacy / "rgb-16x-small-older.alias.json") == older_hash


def test_bundle_weights_stores_a_replaced_int8_default_as_int8_steps(tmp_path):
    """--int8 over an int8 default: the old default goes to legacy/ as delta planes against
    the new default's stored int8 tensors ("delta_of": "stored"), about half of xz of the old
    file, and an fp16 legacy alias that named the old default follows it; every hash stays."""
    from dataclasses import asdict

    import torch

    from pywalloc import zoo
    from pywalloc.codec import Codec

    torch.manual_seed(0)
    default = Codec("rgb-16x", width=32, blocks=2)
    with torch.no_grad():
        for q in default.parameters():
            q.add_(torch.randn_like(q) * 0.1)
    folder = tmp_path / "weights"
    legacy = folder / "legacy"
    legacy.mkdir(parents=True)
    default.save(folder / "rgb-16x-small.safetensors.xz", int8=True)
    old_size = (folder / "rgb-16x-small.safetensors.xz").stat().st_size
    default_hash = zoo.file_hash(folder / "rgb-16x-small.safetensors.xz")
    pad = legacy / "rgb-16x-small-pad.alias.json"
    pad.write_text(json.dumps({"config": {**asdict(default.config), "pad": "replicate"},
                               "tensors": "../rgb-16x-small.safetensors.xz"}))
    pad_hash = zoo.file_hash(pad)
    trained = Codec("rgb-16x", width=32, blocks=2)
    with torch.no_grad():
        for mine, theirs in zip(trained.parameters(), default.parameters()):
            mine.copy_(theirs + torch.randn_like(theirs) * 0.002)
    (tmp_path / "run").mkdir()
    trained.save(tmp_path / "run" / "model.safetensors", half=False)
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "bundle_weights.py"),
                           "rgb-16x", str(tmp_path / "run" / "model.safetensors"),
                           "--legacy-name", "one", "--int8", "--weights-dir", str(folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    moved = legacy / "rgb-16x-small-one.alias.json"
    spec = json.loads(moved.read_text())
    assert spec["delta_of"] == "stored" and spec["tensors"] == "../rgb-16x-small.safetensors.xz"
    assert (legacy / spec["delta"]).stat().st_size < 0.6 * old_size
    assert zoo.file_hash(moved) == default_hash != zoo.file_hash(
        folder / "rgb-16x-small.safetensors.xz")
    assert json.loads(pad.read_text())["tensors"] == moved.name
    assert zoo.file_hash(pad) == pad_hash


def test_gray_eval_on_one_crop(tmp_path):
    """experiments/gray_eval.py: gray through the RGB codecs and the bundled gray codec, with
    WebP at each row's bytes; the gray codec spends well under half the RGB codec's bytes."""
    from PIL import Image

    from pywalloc import zoo

    data = tmp_path / "imgs"
    data.mkdir()
    with Image.open(zoo.WEIGHTS_DIR.parent / "samples" / "kodim23.png") as im:
        im.crop((200, 100, 456, 356)).save(data / "a.png")
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "gray_eval.py"), "--data",
                           str(data), "--baselines", "webp", "--out", str(tmp_path / "g.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "g.json").read_text())["summary"]
    assert {"rgb-16x", "gray-16x"} <= set(summary)
    assert summary["gray-16x"]["bpp"] < 0.5 * summary["rgb-16x"]["bpp"]
    for row in summary.values():
        assert 15 < row["psnr"] < 60 and 15 < row["webp"]["psnr"] < 60
        assert abs(row["webp"]["bpp"] - row["bpp"]) < 0.5 * row["bpp"]
    assert "| `gray-16x` |" in proc.stdout


@pytest.mark.parametrize("codec", ["rgb-16x", "gray-16x"])
def test_refine_keep_quick(codec):
    """experiments/refine_keep.py --quick: one small crop, the plain row and one row per keep,
    rates from the real bytes; gray codecs get gray crops."""
    res = subprocess.run([sys.executable, str(ROOT / "experiments" / "refine_keep.py"),
                          "--quick", "--images", str(ROOT / "pywalloc" / "samples"),
                          "--codec", codec, "--keep", "0.15", "0.05"],
                         capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [line for line in res.stdout.splitlines() if line.startswith("| ")][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["plain", "0.15", "0.05"]
    assert all(0 < float(r.split("|")[2]) < 24 for r in rows)  # bpp


def test_bundle_weights_packs_plain_defaults_as_xz(tmp_path):
    """--pack-defaults rewrites a plain default as .safetensors.xz (xz -d gives the same bytes),
    points the aliases that named it (plain and delta ones) at the new file, and keeps every
    hash; --dry-run changes nothing."""
    import lzma
    from dataclasses import asdict

    import torch

    from pywalloc import zoo
    from pywalloc.codec import Codec

    folder = tmp_path / "weights"
    legacy = folder / "legacy"
    legacy.mkdir(parents=True)
    torch.manual_seed(0)
    default = Codec("rgb-16x", width=16, blocks=1)
    plain = folder / "rgb-16x-small.safetensors"
    default.save(plain)
    config = asdict(default.config)
    pad = legacy / "rgb-16x-pad.alias.json"
    pad.write_text(json.dumps({"config": {**config, "pad": "replicate"},
                               "tensors": "../rgb-16x-small.safetensors"}))
    older = Codec("rgb-16x", width=16, blocks=1)
    with torch.no_grad():
        for mine, theirs in zip(older.parameters(), default.parameters()):
            mine.copy_(theirs * 0.99)
    older.save(tmp_path / "older.safetensors")
    older_hash = zoo.file_hash(tmp_path / "older.safetensors")
    (legacy / "rgb-16x-older.delta.xz").write_bytes(zoo.delta_pack(
        zoo.read_weights(tmp_path / "older.safetensors")[1], zoo.read_weights(plain)[1]))
    delta = legacy / "rgb-16x-older.alias.json"
    delta.write_text(json.dumps({"config": config, "tensors": "../rgb-16x-small.safetensors",
                                 "delta": "rgb-16x-older.delta.xz",
                                 "weights_hash": older_hash}))
    hashes = {p: zoo.file_hash(p) for p in (plain, pad, delta)}
    raw = plain.read_bytes()
    script = [sys.executable, str(ROOT / "experiments" / "bundle_weights.py"), "--pack-defaults",
              "--weights-dir", str(folder)]
    proc = subprocess.run([*script, "--dry-run"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0 and "would write rgb-16x-small.safetensors ->" in proc.stdout
    assert plain.is_file() and not plain.with_name(plain.name + ".xz").exists()
    proc = subprocess.run(script, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    packed = folder / "rgb-16x-small.safetensors.xz"
    assert not plain.exists() and lzma.decompress(packed.read_bytes()) == raw
    assert len(packed.read_bytes()) < len(raw)
    assert zoo.default_file(folder, "rgb-16x") == packed
    assert zoo.file_hash(packed) == hashes[plain]
    for alias in (pad, delta):
        assert json.loads(alias.read_text())["tensors"] == "../rgb-16x-small.safetensors.xz"
        assert zoo.file_hash(alias) == hashes[alias]
    # Replacing an xz default: the new one is xz too, the old one becomes delta planes
    # against it, and the aliases that named the old one follow it, every hash kept.
    newer = Codec("rgb-16x", width=16, blocks=1)
    with torch.no_grad():
        for mine, theirs in zip(newer.parameters(), default.parameters()):
            mine.copy_(theirs * 1.01)
    (tmp_path / "run").mkdir()
    newer.save(tmp_path / "run" / "model.safetensors", half=False)
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "bundle_weights.py"),
                           "rgb-16x", str(tmp_path / "run" / "model.safetensors"),
                           "--legacy-name", "two", "--weights-dir", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    two = legacy / "rgb-16x-small-two.alias.json"
    assert json.loads(two.read_text())["tensors"] == "../rgb-16x-small.safetensors.xz"
    assert zoo.file_hash(two) == hashes[plain] != zoo.file_hash(packed)
    assert sorted(p.name for p in folder.glob("rgb-16x-small*")) == [
        "rgb-16x-small.json", "rgb-16x-small.safetensors.xz"]
    for alias in (pad, delta):
        assert json.loads(alias.read_text())["tensors"] == two.name
        assert zoo.file_hash(alias) == hashes[alias]


def test_scale_gain_scales_the_rate_and_keeps_the_linear_path(tmp_path):
    """experiments/scale_gain.py: the analysis rows grow by S (a finer quantisation: more
    bytes for the same picture), the decoder's linear path gives the same output for
    unquantised latents, and a bad factor is one readable error line."""
    import numpy as np
    import torch

    import pywalloc
    from pywalloc.codec import Codec

    torch.manual_seed(0)
    codec = Codec("rgb-16x", width=8, blocks=1).eval()
    codec.save(tmp_path / "a.safetensors", half=False)
    script = [sys.executable, str(ROOT / "experiments" / "scale_gain.py")]
    proc = subprocess.run([*script, str(tmp_path / "a.safetensors"), "1.5",
                           str(tmp_path / "b.safetensors")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scaled = Codec.from_file(tmp_path / "b.safetensors")
    assert torch.allclose(scaled.analysis_row_norms(), 1.5 * codec.analysis_row_norms(),
                          rtol=1e-5)
    x = torch.rand(1, 3, 64, 64) - 0.5
    with torch.no_grad():
        z, z2 = codec.analyse(x), scaled.analyse(x)
        assert torch.allclose(z2, 1.5 * z, atol=1e-5)
        assert torch.allclose(scaled.synthesis.linear(z2), codec.synthesis.linear(z), atol=1e-4)
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert len(pywalloc.compress(img, codec=scaled)) > len(pywalloc.compress(img, codec=codec))
    bad = subprocess.run([*script, str(tmp_path / "a.safetensors"), "0",
                          str(tmp_path / "c.safetensors")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "positive" in bad.stderr
    assert not (tmp_path / "c.safetensors").exists()


def _tiny_picture_and_clip(kodak: Path, clip: Path):
    """A 64x48 picture ``kodak/a.png`` and a stems piece ``clip/{lead,accomp}.flac`` (8,192
    stereo frames at 44.1 kHz); returns the lead tone."""
    import numpy as np
    import soundfile as sf
    from PIL import Image

    kodak.mkdir(parents=True)
    clip.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    img = np.stack([xx * 3, yy * 4, (xx + yy) * 2], -1) + rng.integers(0, 20, (48, 64, 3))
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(kodak / "a.png")
    t = np.arange(8192) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None] * np.array([1.0, 0.8])
    sf.write(clip / "lead.flac", tone, 44100)
    sf.write(clip / "accomp.flac", 0.05 * rng.standard_normal((8192, 2)), 44100)
    return tone


def test_quant_ceiling_decodes_what_files_decode(tmp_path):
    """experiments/quant_ceiling.py on a tiny picture and a tiny stereo clip: the decoder on
    Codec.encode's latents scores exactly what the byte path scores (so the unrounded figure
    beside it differs only by the rounding), and the JSON has all three figures."""
    kodak = tmp_path / "kodak"
    _tiny_picture_and_clip(kodak, tmp_path / "stems" / "clip")
    out = tmp_path / "q.json"
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "quant_ceiling.py"),
                           "rgb-16x", "stereo-20x", "--kodak", str(kodak), "--stems",
                           str(tmp_path / "stems"), "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [r["codec"] for r in rows] == ["rgb-16x", "stereo-20x"]
    for r in rows:
        assert r["items"] == 1 and r["rate"] > 0
        assert abs(r["bytes"] - r["rounded"]) < 1e-6
        assert math.isfinite(r["unrounded"]) and r["unrounded"] != r["rounded"]
    assert "| rgb-16x |" in proc.stdout


def test_make_gpu_bundle_takes_each_image_folder_in_turn_within_budget(tmp_path):
    """experiments/make_gpu_bundle.py: photos and graphics shrunk to --max-side, the three
    image folders taken in turn (a small budget still holds each kind), audio as Ogg excerpts,
    each half within its share of --max-mb."""
    import numpy as np
    import soundfile as sf
    from PIL import Image

    rng = np.random.default_rng(0)
    shared = tmp_path / "shared"
    for folder, side in (("photos", 900), ("graphics", 700), ("bsds500", 300)):
        (shared / "train-images" / folder).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 256, (side * 2 // 3, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(shared / "train-images" / folder / f"{i}.jpg",
                                         quality=90)
    (tmp_path / "audio" / "train").mkdir(parents=True)
    for i in range(2):
        sf.write(tmp_path / "audio" / "train" / f"t{i}.flac",
                 0.1 * rng.standard_normal((44100 * 3, 2)), 44100)
    out = tmp_path / "bundle"
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "make_gpu_bundle.py"),
                           "--shared", str(shared), "--audio", str(tmp_path / "audio"),
                           "--out", str(out), "--max-mb", "0.6", "--max-side", "256",
                           "--excerpt", "2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    images = sorted(p.name for p in (out / "images").iterdir())
    assert {n.split("-")[0] for n in images} == {"photos", "graphics", "bsds500"}
    for name in images:
        if not name.startswith("bsds500"):
            with Image.open(out / "images" / name) as im:
                assert max(im.size) <= 256
    for kind in ("images", "audio"):
        assert sum(p.stat().st_size for p in (out / kind).iterdir()) <= 0.3 * 2**20
    assert len(list((out / "audio").glob("*.ogg"))) >= 1
    # one image codec per call: its folders only, and the whole budget
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "make_gpu_bundle.py"),
                           "--shared", str(shared), "--audio", str(tmp_path / "audio"),
                           "--out", str(out), "--max-mb", "0.6", "--max-side", "256",
                           "--image-share", "1", "--image-folders", "photos", "bsds500"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    images = sorted(p.name for p in (out / "images").iterdir())
    assert {n.split("-")[0] for n in images} == {"photos", "bsds500"}
    assert 0.3 * 2**20 < sum(p.stat().st_size for p in (out / "images").iterdir()) <= 0.6 * 2**20
    assert not list((out / "audio").iterdir())


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_device_tree_leaves_out_the_archive_and_puts_it_back(tmp_path):
    """experiments/device_tree.sh: slim removes the retired weights and the candidates from
    the tree on a detached commit (the branch keeps them), back restores the branch and every
    file; a tree with changes is refused with one line."""
    import shutil

    repo = tmp_path / "repo"
    for rel, size in (("weights-archive/old.safetensors.xz", 3000),
                      ("experiments/candidates/c.safetensors.xz", 2000),
                      ("pywalloc/weights/w.safetensors.xz", 1000), ("README.md", 10)):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(bytes(size))
    shutil.copy(ROOT / "experiments" / "device_tree.sh", repo / "experiments")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")

    def script(*args):
        return subprocess.run(["bash", "experiments/device_tree.sh", *args], cwd=repo,
                              capture_output=True, text=True, timeout=60, check=False)

    total = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file() and ".git" not in
                p.relative_to(repo).parts)
    assert int(script("slim-bytes").stdout) == total - 5000
    (repo / "notes.txt").write_text("uncommitted")
    res = script("slim")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    (repo / "notes.txt").unlink()
    res = script("slim")
    assert res.returncode == 0, res.stderr
    assert not (repo / "weights-archive").exists()
    assert not (repo / "experiments" / "candidates").exists()
    assert (repo / "pywalloc" / "weights" / "w.safetensors.xz").exists()
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "HEAD"  # detached
    assert "weights-archive/old.safetensors.xz" in _git(repo, "ls-tree", "-r", "main")
    assert "weights-archive" not in _git(repo, "ls-files")
    assert script("slim").returncode == 2  # already slim
    res = script("back")
    assert res.returncode == 0, res.stderr
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert (repo / "weights-archive" / "old.safetensors.xz").read_bytes() == bytes(3000)
    assert (repo / "experiments" / "candidates" / "c.safetensors.xz").stat().st_size == 2000
    assert _git(repo, "status", "--porcelain") == ""
    assert script("back").returncode == 2


def test_device_run_dry_on_two_samples(tmp_path):
    """experiments/device_run.sh, the one prepared GPU command, dry on the CPU on a training
    subset of the two bundled samples: the four runs of its PLAN (image `medium` decoders
    widened from the small ones, audio `small` from the bundled weights) each bring back a
    weights file of the planned size, the logs come back in one archive, and the benchmark
    measures the new files too."""
    import os
    import shutil
    import tarfile

    from pywalloc.codec import Codec

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "audio").mkdir()
    shutil.copy(ROOT / "pywalloc" / "samples" / "kodim23.png", data / "images")
    shutil.copy(ROOT / "pywalloc" / "samples" / "chimes.flac", data / "audio")
    out, logs = tmp_path / "out", tmp_path / "logs"
    env = {**os.environ, "OUT": str(out), "LOGS": str(logs), "DATA": str(data),
           "MINUTES": "0.03", "BATCH": "2", "IMG_WORKERS": "0", "AUD_WORKERS": "0",
           "THREADS": "1", "QUICK_BENCH": "1", "SKIP_TESTS": "1", "BF16": ""}
    res = subprocess.run(["bash", "experiments/device_run.sh"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    sizes = {"rgb-16x": "medium", "rgb-4x": "medium", "stereo-20x": "small",
             "stereo-5x": "small"}
    for preset, size in sizes.items():
        codec = Codec.from_file(out / f"{preset}-{size}.safetensors.xz")
        assert codec.preset.name == preset
        assert codec.config.size == size
        assert codec.config.resolved()[1].width == (256 if size == "medium" else
                                                    192 if "stereo" in preset else 128)
    with tarfile.open(out / "logs.tgz") as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"train.txt", "throughput.txt", "rgb-16x-medium.csv", "stereo-5x-small.csv"} <= names
    bench = json.loads((logs / "throughput.json").read_text())["rows"]
    assert "rgb-16x rgb-16x-medium" in bench and "rgb-4x rgb-4x-medium" in bench


def test_the_device_tree_fits_the_device_limit():
    """What experiments/device_tree.sh slim leaves must fit the device call's 64 MiB with the
    wheels (2 MiB) and the smallest training subset gpu_prepare.sh accepts (4 MiB), so that a
    session that is lent a GPU can send it."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    res = subprocess.run(["bash", "experiments/device_tree.sh", "slim-bytes"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    slim = int(res.stdout)
    assert slim + 6 * 2**20 <= 64 * 2**20, f"the slim tree is {slim / 2**20:.1f} MiB"


@pytest.mark.parametrize("preset, blocks", [("rgb-16x", 1), ("rgb-4x", 3), ("stereo-20x", 2)])
def test_widen_keeps_the_function_and_breaks_the_symmetry(tmp_path, preset, blocks):
    """experiments/widen.py: a decoder twice as wide (and, for two presets, deeper) decodes
    what the source decodes, from every layer's trained values (none left at zero); the
    copies of a channel get different gradients, so training can tell them apart; a width
    that is not a multiple of the old one is one readable error line."""
    import torch

    from pywalloc.codec import Codec

    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        from widen import widened
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    torch.manual_seed(0)
    small = Codec(preset, width=8, blocks=1, norm="affine" if preset != "stereo-20x" else "local")
    with torch.no_grad():  # trained-looking weights: nothing at its zero or unit start
        for q in small.synthesis.parameters():
            q.add_(torch.randn_like(q) * 0.3)
    small.eval()
    wide = widened(small, 16, blocks)
    assert wide.size_spec.width == 16 and wide.size_spec.blocks == blocks
    p = small.preset
    y = torch.rand((2, p.latent_channels) + ((12, 10) if p.dims == 2 else (64,))) * 200 - 100
    with torch.no_grad():
        a, b = small.synthesis(y, y), wide.synthesis(y, y)
    assert a.abs().max() > 1.0
    assert torch.allclose(a, b, atol=1e-4 * float(a.abs().max()))
    wide.train()
    wide.synthesis(y, y).square().mean().backward()
    g = wide.synthesis.net[0].weight.grad  # the input layer's rows: copies side by side
    assert not torch.allclose(g[0::2], g[1::2])
    small.save(tmp_path / "a.safetensors", half=False)
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "widen.py"),
                          str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"),
                          "--width", "12"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "multiple" in bad.stderr
    assert not (tmp_path / "b.safetensors").exists()


def test_int8_weights_writes_a_smaller_file_of_nearly_the_same_weights(tmp_path):
    """experiments/int8_weights.py: the int8 file is smaller than the fp16 one, loads to
    weights within one quantisation step (half a step with --nearest), and a bad name is one
    error line."""
    import torch

    from pywalloc.codec import Codec

    torch.manual_seed(0)
    codec = Codec("rgb-16x", width=16, blocks=1)
    with torch.no_grad():
        for q in codec.synthesis.parameters():
            q.add_(torch.randn_like(q) * 0.1)
    codec.save(tmp_path / "a.safetensors", half=False)
    script = [sys.executable, str(ROOT / "experiments" / "int8_weights.py")]
    proc = subprocess.run([*script, str(tmp_path / "a.safetensors"), "--out",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mb = [float(x) for x in re.findall(r"([0-9.]+) MB", proc.stdout)]
    assert len(mb) == 2 and mb[1] < mb[0]
    change = float(re.search(r"largest change ([0-9.]+)", proc.stdout).group(1))
    assert 0.5 / 127 < change <= 1 / 127 + 1e-3  # kernel sums kept: some weight moves further
    q = Codec.from_file(tmp_path / "out" / "rgb-16x-int8.safetensors.xz")
    assert q.weight_hash in proc.stdout
    near = subprocess.run([*script, str(tmp_path / "a.safetensors"), "--out",
                           str(tmp_path / "near"), "--nearest"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert near.returncode == 0, near.stderr[-2000:]
    change = float(re.search(r"largest change ([0-9.]+)", near.stdout).group(1))
    assert 0 < change <= 0.5 / 127 + 1e-3
    assert Codec.from_file(tmp_path / "near" / "rgb-16x-int8.safetensors.xz").weight_hash \
        != q.weight_hash
    bad = subprocess.run([*script, "nope", "--out", str(tmp_path / "out")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


@pytest.mark.parametrize("preset", ["rgb-16x", "gray-16x"])
def test_compare_weights_scores_colour_and_gray_codecs(tmp_path, preset):
    """experiments/compare_weights.py on a one-picture Kodak folder: a gray preset is scored
    on the picture in gray (it used to stop on colour input), a colour one in colour; the
    figures are the byte path's."""
    import numpy as np
    import torch
    from PIL import Image

    import pywalloc
    from pywalloc.codec import Codec
    from pywalloc.evaluation.metrics import psnr

    (tmp_path / "kodak").mkdir()
    yy, xx = np.mgrid[0:48, 0:64]
    img = np.stack([xx * 3, yy * 4, (xx + yy) * 2], -1).clip(0, 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "kodak" / "a.png")
    torch.manual_seed(0)
    Codec(preset, width=8, blocks=1).save(tmp_path / "w.safetensors", half=False)
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "compare_weights.py"),
                           preset, str(tmp_path / "w.safetensors"), "--no-bundled",
                           "--shared", str(tmp_path), "--threads", "1",
                           "--json", str(tmp_path / "r.json")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads((tmp_path / "r.json").read_text())[0]
    codec = pywalloc.load(tmp_path / "w.safetensors")
    x = np.asarray(Image.fromarray(img).convert("L")) if preset == "gray-16x" else img
    out = pywalloc.decompress(pywalloc.compress(x, codec=codec), codec=codec)
    assert r["items"] == 1 and abs(r["kodak_psnr"] - psnr(x, out, 255.0)) < 1e-9


@pytest.mark.parametrize("codec,sample", [("stereo-20x", "chimes.flac"), ("rgb-16x", "kodim23.png")])
def test_refine_sweep_quick(codec, sample):
    """experiments/refine_sweep.py --quick: the plain row and two 2-step rows through the real
    bytes, for an audio and an image codec, each row at its own step size."""
    res = subprocess.run([sys.executable, str(ROOT / "experiments" / "refine_sweep.py"), codec,
                          str(ROOT / "pywalloc" / "samples" / sample), "--quick"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [line.split("|") for line in res.stdout.splitlines() if line.startswith("| ")][1:]
    default = "0.3" if codec.startswith("rgb") else "2"  # pywalloc.refine.LEARNING_RATE
    assert [(r[1].strip(), r[2].strip()) for r in rows] == [("plain", default), ("2", "0.3"),
                                                            ("2", "1")]
    for r in rows:
        rate, psnr = float(r[3]), float(r[4])
        assert 0 < rate < (24 if codec.startswith("rgb") else 300) and 15 < psnr < 80
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "refine_sweep.py"), codec,
                          str(ROOT / "pywalloc" / "samples" / sample), "--run", "ten"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode != 0 and "STEPS:LR" in bad.stderr


@pytest.mark.parametrize("preset", ["rgb-16x", "stereo-20x"])
def test_remeasure_quick_writes_every_measurement(tmp_path, preset):
    """experiments/remeasure.sh QUICK=1 on a tiny picture / tiny clips: every measurement it
    names runs on both lanes and writes its results (real byte path, finite PSNR)."""
    import os

    import numpy as np
    import soundfile as sf

    shared, held = tmp_path / "shared", tmp_path / "held"
    tone = _tiny_picture_and_clip(shared / "kodak", shared / "stems" / "test" / "clip")
    held.mkdir()
    noise = 0.02 * np.random.default_rng(1).standard_normal(tone.shape)
    sf.write(held / "music.flac", tone + noise, 44100)
    out = tmp_path / "out"
    env = dict(os.environ, PRESET=preset, QUICK="1", OUT=str(out), SHARED=str(shared),
               HELDOUT=str(held))
    proc = subprocess.run(["bash", str(ROOT / "experiments" / "remeasure.sh")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    names = (["kodak", "kodak-r30"] if preset == "rgb-16x"
             else ["stems", "stems-r10", "stems-r20", "heldout", "heldout-r20"])
    for name in names:
        result = json.loads((out / name / "results.json").read_text())
        row = next(r for r in result["summary"] if r["codec"] == preset)
        assert math.isfinite(row["psnr"]) and row["psnr"] > 10, (name, row)
        assert result["meta"]["refine"] == (int(name.split("-r")[1]) if "-r" in name else 0)
    (ceiling,) = json.loads((out / "ceiling.json").read_text())
    assert ceiling["codec"] == preset and ceiling["items"] == 1


def test_soup_weights_averages_links_and_keeps_the_rate(tmp_path):
    """experiments/soup_weights.py: the average of two links of one chain, float tensors
    averaged by --mix, analysis rows back at the links' norms (the same bit rate); another
    rate or another architecture is refused in one line, writing nothing."""
    import torch

    from pywalloc.codec import Codec

    torch.manual_seed(0)
    start = Codec("stereo-20x", width=8, blocks=1)
    norms = start.analysis_row_norms()
    links = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        link = Codec("stereo-20x", width=8, blocks=1)
        link.load_state_dict(start.state_dict())
        with torch.no_grad():
            for q in link.parameters():
                q.add_(torch.randn_like(q) * 0.05)
        link.constrain_rate(norms)
        path = tmp_path / f"link{seed}.safetensors"
        link.save(path, half=False)
        links.append((path, link))
    script = [sys.executable, str(ROOT / "experiments" / "soup_weights.py")]
    out = tmp_path / "soup" / "model.safetensors"
    proc = subprocess.run([*script, *(str(p) for p, _ in links), "--out", str(out), "--mix",
                           "0.25", "0.75"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    soup = Codec.from_file(out)
    assert soup.weight_hash in proc.stdout
    a, b = (c.state_dict() for _, c in links)
    for name, v in soup.state_dict().items():
        if not name.startswith("analysis.weight"):
            torch.testing.assert_close(v, 0.25 * a[name] + 0.75 * b[name])
    torch.testing.assert_close(soup.analysis_row_norms(), norms, rtol=1e-5, atol=0)
    mean = 0.25 * a["analysis.weight"] + 0.75 * b["analysis.weight"]
    assert soup.analysis_row_norms().sum() > mean.flatten(1).norm(dim=1).sum()  # lengthened
    other = Codec("stereo-20x", width=8, blocks=1)  # another start: other norms
    other.save(tmp_path / "other.safetensors", half=False)
    wide = Codec("stereo-20x", width=16, blocks=1)
    wide.save(tmp_path / "wide.safetensors", half=False)
    for bad in ("other", "wide"):
        dst = tmp_path / f"bad-{bad}.safetensors"
        proc = subprocess.run([*script, str(links[0][0]), str(tmp_path / f"{bad}.safetensors"),
                               "--out", str(dst)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not dst.exists()


def test_keep_candidate_keeps_one_loadable_candidate_per_preset(tmp_path):
    """experiments/keep_candidate.py: the run's weights as fp16 (or --int8) xz named by their
    hash, with a sidecar, loadable as an --init; a newer candidate of the preset replaces the
    older one; a file of another preset is refused in one line, writing nothing."""
    import torch

    from pywalloc.codec import Codec

    run, folder = tmp_path / "run", tmp_path / "cand"
    run.mkdir()
    script = [sys.executable, str(ROOT / "experiments" / "keep_candidate.py")]
    kept = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        Codec("rgb-16x", width=8, blocks=1).save(run / "model.safetensors", half=False)
        proc = subprocess.run([*script, "rgb-16x", str(run / "model.safetensors"), "--note",
                               f"seed {seed}", "--folder", str(folder)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        (path,) = folder.glob("rgb-16x-*.safetensors.xz")
        codec = Codec.from_file(path)
        assert path.name == f"rgb-16x-{codec.weight_hash}.safetensors.xz"
        assert next(codec.parameters()).dtype == torch.float32  # fp16 stored, read as float
        side = json.loads(path.with_name(f"rgb-16x-{codec.weight_hash}.json").read_text())
        assert side["info"]["note"] == f"seed {seed}" and side["config"]["preset"] == "rgb-16x"
        kept.append(codec.weight_hash)
    assert kept[0] != kept[1] and len(list(folder.iterdir())) == 2  # the older pair is gone
    proc = subprocess.run([*script, "rgb-4x", str(run / "model.safetensors"), "--note", "x",
                           "--folder", str(folder)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert len(list(folder.iterdir())) == 2
    # --int8: the form the defaults ship in; its name is the hash int8_weights.py reports,
    # and quantising the kept file again (as bundle_weights.py --int8 does) keeps that hash.
    proc = subprocess.run([*script, "rgb-16x", str(run / "model.safetensors"), "--note", "q",
                           "--folder", str(folder), "--int8"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = folder.glob("rgb-16x-*.safetensors.xz")
    shipped = tmp_path / "ship"
    for src in (run / "model.safetensors", path):
        proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "int8_weights.py"),
                               str(src), "--out", str(shipped)], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert Codec.from_file(shipped / "rgb-16x-int8.safetensors.xz").weight_hash == \
            Codec.from_file(path).weight_hash
    assert path.name != f"rgb-16x-{kept[1]}.safetensors.xz"  # not the fp16 candidate


def test_train_medium_ste_widens_once_then_trains_through_the_rounding(tmp_path):
    """experiments/train_medium_ste.sh: the small decoder named by FROM is widened to 256
    channels once, and train_ste.sh's recipe trains the widened codec (encoder included) from
    it; the result loads as a 256-wide codec of the same preset."""
    import os

    import numpy as np
    import torch
    from PIL import Image

    import pywalloc
    from pywalloc.codec import Codec

    torch.manual_seed(0)
    small = Codec("rgb-16x", width=8, blocks=1, norm="affine")
    small.save(tmp_path / "small.safetensors", half=False)
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (208, 208, 3), dtype=np.uint8)).save(
            images / f"{i}.png")
    runs = tmp_path / "runs"
    env = {**os.environ, "RUNS": str(runs), "FROM": str(tmp_path / "small.safetensors"),
           "IMAGES": str(images), "MIN": "0.02", "PRESETS": "rgb-16x", "BF16": "0"}
    proc = subprocess.run(["bash", str(ROOT / "experiments" / "train_medium_ste.sh")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    err = (runs / "rgb-16x.err").read_text() if (runs / "rgb-16x.err").exists() else ""
    assert proc.returncode == 0, proc.stderr[-2000:] + err[-2000:]
    init = runs / "rgb-16x-init-w256.safetensors"
    assert pywalloc.load(init).size_spec.width == 256
    trained = pywalloc.load(runs / "rgb-16x" / "model.safetensors")
    assert trained.size_spec.width == 256 and trained.preset.name == "rgb-16x"
    assert json.loads((runs / "rgb-16x" / "train_config.json").read_text())["ste"] is True
    assert json.loads((runs / "rgb-16x" / "result.json").read_text())["step"] >= 1


def test_training_recipes_use_flags_the_trainer_knows():
    """Every `python3 -m pywalloc.training` call in experiments/*.sh spells only options that
    `walloc train` accepts (old spellings included), so a recipe does not rot silently when a
    flag is renamed; the recipes themselves train for minutes to hours and are not run here."""
    from pywalloc.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    known = set(train._option_string_actions)
    calls = 0
    for script in sorted((ROOT / "experiments").glob("*.sh")):
        text = script.read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if "-m pywalloc.training" not in line:
                continue
            calls += 1
            args = line.split("-m pywalloc.training", 1)[1]
            flags = set(re.findall(r"(?<![\w$-])(--?[a-z][a-z0-9-]*)", args))
            assert flags <= known, f"{script.name}: {sorted(flags - known)}"
    assert calls >= 10  # the recipes are found at all


def test_record_metrics_writes_figures_of_the_default_only(tmp_path, monkeypatch):
    """experiments/record_metrics.py: a model card row measured on the default's weights goes
    into its sidecar (the weights hash unchanged) and `zoo.measured` reads it back; a row of
    other weights is skipped."""
    import shutil

    from pywalloc import zoo

    for f in (zoo.WEIGHTS_DIR).glob("rgb-16x-small.*"):
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path)
    path = zoo.weights_path("rgb-16x")
    assert path.parent == tmp_path
    side = zoo.config_sidecar(path)  # start from a sidecar without figures
    body = json.loads(side.read_text())
    body.pop("measured", None)
    side.write_text(json.dumps(body))
    h = zoo.file_hash(path)
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import record_metrics
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    row = {"codec": "rgb-16x", "items": 24, "psnr": 29.7054, "bpp": 0.56440, "ms_ssim": 0.96967,
           "decode_s": 0.0945, "weights_hash": "0" * 16}
    figures = {"images": [row], "audio": [], "date": "2026-12-04 19:50 UTC",
               "command": "python benchmarks/model_card.py", "cpu": "test CPU"}
    lines = record_metrics.record(figures, zoo.weights_path)
    assert "skipped" in lines[0] and zoo.measured("rgb-16x") is None
    row["weights_hash"] = h
    lines = record_metrics.record(figures, zoo.weights_path)
    assert "recorded" in lines[0]
    m = zoo.measured("rgb-16x")
    assert m["psnr_db"] == 29.7054 and m["bpp"] == 0.5644 and m["weights_hash"] == h
    assert m["data"] == "Kodak, 24 photos" and m["date"] == "2026-12-04 19:50 UTC"
    from pywalloc.codec import Codec

    assert Codec.from_file(path).weight_hash == h
    assert m["file_sha256"] == zoo.file_sha256(path)
    # other weights copied over the file, the sidecar left: its figures are not shown
    good = path.read_bytes()
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert zoo.measured("rgb-16x") is None
    path.write_bytes(good)
    assert zoo.measured("rgb-16x")["psnr_db"] == 29.7054
    # a sidecar write that changed the weights hash is put back as it was, and said
    before = side.read_text()

    class Changed:  # what the script reads back: other weights
        weight_hash = "f" * 16

        @classmethod
        def from_file(cls, path):
            return cls()

    monkeypatch.setattr(record_metrics, "Codec", Changed)
    row["psnr"] = 31.0
    with pytest.raises(RuntimeError, match="changed the weights hash"):
        record_metrics.record(figures, zoo.weights_path)
    assert side.read_text() == before and zoo.measured("rgb-16x")["psnr_db"] == 29.7054
    monkeypatch.setattr(record_metrics, "Codec", Codec)
    # a new default written over it, with its sidecar as bundle_weights.py writes it, carries
    # no figures
    from dataclasses import asdict

    new = Codec.from_file(path)
    new.save(path, half=True)
    zoo.write_sidecar(path, asdict(new.config), {"recipe": "test"})
    assert zoo.measured("rgb-16x") is None


def test_judge_entries_applies_the_chain_rules(tmp_path, capsys):
    """experiments/judge_entries.py: the ship bar needs +0.100 dB on both sets; the candidate
    rule takes a held-out lead of +0.010 within 0.100 dB on stems/test, or a stems/test gain
    with +0.005 held-out; ties at a printed threshold pass; the highest held-out entry wins."""
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import judge_entries as j
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    default, cand = (33.684, 34.308), (34.001, 34.401)

    def one(s, h):
        return j.judge([{"name": "x", "stems_psnr": s, "heldout_psnr": h}], default, cand)

    assert one(33.784, 34.408)["ship"] == "x"              # exactly at the bar
    assert one(33.784, 34.4079)["ship"] is None            # held-out short of it
    assert one(33.7839, 34.5)["ship"] is None              # stems/test short of it
    assert one(33.901, 34.411)["candidate"] == "x"         # lead, at the slack's edge
    assert one(33.900, 34.411)["candidate"] is None        # lead, but too far below on stems
    assert one(34.002, 34.406)["candidate"] == "x"         # stems gain, held-out edge
    assert one(34.001, 34.406)["candidate"] is None        # no stems gain, under the lead
    assert one(34.002, 34.405)["candidate"] is None        # stems gain, held-out under edge
    both = j.judge([{"name": "a", "stems_psnr": 33.95, "heldout_psnr": 34.412},
                    {"name": "b", "stems_psnr": 33.95, "heldout_psnr": 34.420},
                    {"name": "c", "stems_psnr": 34.20, "heldout_psnr": 34.390}], default, cand)
    assert both["candidate"] == "b" and both["ship"] == "b"
    assert [r["qualifies"] for r in both["rows"]] == [True, True, False]
    score = tmp_path / "score-soup-x.json"
    score.write_text(json.dumps([{"hash": "ab" * 8, "stems_psnr": 33.8, "heldout_psnr": 34.41}]))
    bare = tmp_path / "score-bare.json"
    bare.write_text(json.dumps([{"hash": "cd" * 8, "stems_psnr": 33.8}]))
    assert j.main([str(score), "--default", *map(str, default), "--candidate",
                   *map(str, cand), "--json", str(tmp_path / "v.json")]) == 0
    out = capsys.readouterr().out
    assert "| soup-x | `abababababababab` | 33.800 dB (-0.201" in out
    assert out.strip().endswith("verdict: ship soup-x")
    assert json.loads((tmp_path / "v.json").read_text())["ship"] == "soup-x"
    assert j.main([str(bare), "--default", "1", "2", "--candidate", "1", "2"]) == 2
    assert "no held-out figure" in capsys.readouterr().err


def test_refine_sweep_keep_sets_the_pull_of_every_row():
    """--keep reaches refine(): with an overwhelming pull no refined code beats the plain
    encoder's, so the refined rows give back the plain row's rate and PSNR (at the usual pull
    both quick rows of this clip differ from it); the header says which pull was used."""
    res = subprocess.run([sys.executable, str(ROOT / "experiments" / "refine_sweep.py"),
                          "stereo-20x", str(ROOT / "pywalloc" / "samples" / "chimes.flac"),
                          "--quick", "--keep", "1000"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "keep 1000" in res.stdout.splitlines()[0]
    rows = [line.split("|") for line in res.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 3 and len({(r[3], r[4]) for r in rows}) == 1, rows
