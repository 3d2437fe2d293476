"""The model zoo: independent and frozen codecs, user weights, and finding weights by hash."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import pywalloc
from pywalloc import zoo
from pywalloc.codec import Codec
from pywalloc.errors import (
    UnknownPresetError,
    WallocError,
    WeightsFileError,
    WeightsMismatchError,
    WeightsNotFoundError,
)


def test_load_returns_independent_codecs():
    a, b = pywalloc.load("rgb-16x"), pywalloc.load("rgb-16x")
    assert a is not b and a.weight_hash == b.weight_hash and not a.training
    with torch.no_grad():
        a.analysis.bias.add_(1.0)
    assert a.weight_hash != b.weight_hash
    assert pywalloc.load("rgb-16x").weight_hash == b.weight_hash  # the zoo's copy is untouched
    a.train()  # an independent codec can be trained
    assert any(p.requires_grad for p in a.parameters())


def test_frozen_codecs_are_shared_and_refuse_training():
    a = zoo.load("stereo-20x", frozen=True)
    assert a is zoo.load("stereo-20x", frozen=True)
    assert not any(p.requires_grad for p in a.parameters())
    with pytest.raises(WallocError):
        a.train()


def test_errors_derive_from_walloc_error():
    with pytest.raises(UnknownPresetError) as info:
        pywalloc.load("rgb-99x")
    assert isinstance(info.value, (WallocError, KeyError)) and "rgb-16x" in str(info.value)
    with pytest.raises(WeightsNotFoundError) as info2:
        pywalloc.load("/nonexistent/w.safetensors")
    assert isinstance(info2.value, WallocError)
    with pytest.raises(WeightsNotFoundError):
        pywalloc.load("rgb-16x", size="paper")


def test_user_weights_by_path(tmp_path):
    codec = Codec("rgb-16x", width=16, blocks=1).eval()
    path = tmp_path / "mine.safetensors"
    codec.save(path, half=False)
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    again = pywalloc.load(path)
    assert again.weight_hash == codec.weight_hash and again.config == codec.config
    # Without metadata, a JSON config beside the file.
    bare = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in codec.state_dict().items()}, str(bare))
    with pytest.raises(WeightsFileError):
        pywalloc.load(bare)
    bare.with_suffix(".json").write_text(json.dumps({"config": {
        "preset": "rgb-16x", "width": 16, "blocks": 1, "norm": "channel"}}))
    assert pywalloc.load(bare).weight_hash == codec.weight_hash
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(WeightsFileError):
        pywalloc.load(tmp_path / "junk.safetensors")


def _umask() -> int:
    import os

    old = os.umask(0)
    os.umask(old)
    return old


def test_decoding_finds_older_weights_by_hash(tmp_path, monkeypatch):
    """Files made with weights that are no longer the default still decode, from legacy/."""
    img = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    current = zoo.weights_path("rgb-16x")
    old = Codec("rgb-16x", width=16, blocks=1).eval()
    blob_old = pywalloc.compress(img, codec=old)
    blob_new = pywalloc.compress(img, codec="rgb-16x")
    weights = tmp_path / "weights"
    (weights / "legacy").mkdir(parents=True)
    shutil.copy(current, weights / current.name)
    old.save(weights / "legacy" / "rgb-16x-first.safetensors")  # fp16: a new hash
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(zoo, "LEGACY_DIR", weights / "legacy")
    with pytest.raises(WeightsMismatchError, match="none bundled"):
        pywalloc.decompress(blob_old)  # saved in fp16: not the weights that made blob_old
    blob_old = pywalloc.compress(img, codec=pywalloc.load(weights / "legacy" /
                                                          "rgb-16x-first.safetensors"))
    assert pywalloc.decompress(blob_old).shape == img.shape
    assert pywalloc.decompress(blob_new).shape == img.shape
    assert [p.name for p in zoo.bundled_files("rgb-16x")] == [current.name,
                                                              "rgb-16x-first.safetensors"]
    assert zoo.bundled_files("stereo-5x") == []


def test_alias_entries_share_tensors_under_another_config(tmp_path, monkeypatch):
    """A legacy ``.alias.json`` (config + the name of a tensor file beside it) is a bundled
    weights entry of its own: found by its own hash, decoded under its own config."""
    from dataclasses import asdict

    img = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    torch.manual_seed(0)
    base = Codec("rgb-16x", width=16, blocks=1, norm="affine").eval()
    with torch.no_grad():
        base.synthesis.net[-1].weight.normal_(0, 0.05)
    weights = tmp_path / "weights"
    (weights / "legacy").mkdir(parents=True)
    current = zoo.weights_path("rgb-16x")
    shutil.copy(current, weights / current.name)
    base.save(weights / "legacy" / "rgb-16x-a.safetensors")
    config = {**asdict(zoo.load(weights / "legacy" / "rgb-16x-a.safetensors").config),
              "pad": "replicate"}
    alias = weights / "legacy" / "rgb-16x-b.alias.json"
    alias.write_text(json.dumps({"config": config, "tensors": "rgb-16x-a.safetensors"}))
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(zoo, "LEGACY_DIR", weights / "legacy")
    a = zoo.load(weights / "legacy" / "rgb-16x-a.safetensors")
    b = zoo.load(alias)
    assert b.config.pad == "replicate" and a.config.pad is None
    assert b.weight_hash != a.weight_hash == zoo.file_hash(weights / "legacy" /
                                                           "rgb-16x-a.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values()))
    assert [p.name for p in zoo.bundled_files("rgb-16x")] == [
        current.name, "rgb-16x-a.safetensors", "rgb-16x-b.alias.json"]
    for codec in (a, b):  # each file decodes with the weights that made it
        blob = pywalloc.compress(img, codec=codec)
        assert np.array_equal(pywalloc.decompress(blob), pywalloc.decompress(blob, codec))
    # A legacy alias may name a file in the folder above (a default); no other paths.
    up = weights / "legacy" / "rgb-16x-c.alias.json"
    top = asdict(zoo.load(weights / current.name).config)
    up.write_text(json.dumps({"config": top, "tensors": "../" + current.name}))
    assert torch.equal(zoo.load(up).state_dict()["analysis.weight"],
                       zoo.load(weights / current.name).state_dict()["analysis.weight"])
    for bad in ("../../rgb-16x-small.safetensors", "sub/rgb-16x-a.safetensors", "..", "/etc/x",
                7):
        up.write_text(json.dumps({"config": top, "tensors": bad}))
        with pytest.raises(zoo.WeightsFileError, match="alias"):
            zoo.load(up)
    up.unlink()
    alias.write_text("{")  # a broken alias is not a weights file of the preset
    assert "rgb-16x-b.alias.json" not in [p.name for p in zoo.bundled_files("rgb-16x")]


def test_xz_weights_load_like_the_plain_file_and_bad_ones_fail_cleanly(tmp_path, monkeypatch):
    """``.safetensors.xz`` (how legacy weights are bundled) gives the same codec and hash as the
    plain file; a damaged one, or one that unpacks past the limit, is a WeightsFileError."""
    import lzma

    from safetensors.torch import save

    torch.manual_seed(0)
    Codec("rgb-16x", width=8, blocks=1).save(tmp_path / "w.safetensors")
    packed = tmp_path / "w.safetensors.xz"
    packed.write_bytes(lzma.compress((tmp_path / "w.safetensors").read_bytes()))
    assert zoo.file_hash(packed) == zoo.file_hash(tmp_path / "w.safetensors")
    assert zoo.load(packed).preset.name == "rgb-16x"
    # Config only in the JSON beside it (as the bundled legacy files have it).
    meta, tensors = zoo.read_weights(tmp_path / "w.safetensors")
    bare = tmp_path / "bare.safetensors.xz"
    bare.write_bytes(lzma.compress(save(tensors)))
    (tmp_path / "bare.json").write_text(json.dumps({"config": json.loads(meta["config"])}))
    assert zoo.file_hash(bare) == zoo.file_hash(packed)
    assert zoo._config_preset(bare) == "rgb-16x"
    broken = tmp_path / "broken.safetensors.xz"
    broken.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    with pytest.raises(WeightsFileError, match="broken"):
        zoo.load(broken)
    monkeypatch.setenv("PYWALLOC_NO_CACHE", "1")  # the limit applies to unpacking
    monkeypatch.setattr(zoo, "MAX_WEIGHTS_BYTES", 1000)
    with pytest.raises(WeightsFileError, match="larger than"):
        zoo.read_weights(packed)


def test_xz_weights_are_unpacked_once_into_the_user_cache(tmp_path, monkeypatch):
    """The first read of a ``.safetensors.xz`` keeps the unpacked file in the cache folder; later
    reads (other processes) use it without unpacking and get the same metadata and tensors. A
    damaged copy is unpacked again and replaced; an unusable cache folder, or
    PYWALLOC_NO_CACHE, only means unpacking every time."""
    import lzma

    torch.manual_seed(0)
    Codec("rgb-16x", width=8, blocks=1).save(tmp_path / "w.safetensors.xz")
    packed = tmp_path / "w.safetensors.xz"
    cache = tmp_path / "cache"
    monkeypatch.setenv("PYWALLOC_CACHE_DIR", str(cache))
    first = zoo.read_weights(packed)
    copies = list((cache / "weights").iterdir())
    assert len(copies) == 1 and copies[0].read_bytes() == lzma.decompress(packed.read_bytes())

    class NoUnpacking:
        def __init__(self, *a, **k):
            raise AssertionError("unpacked although the cache holds the file")

    with monkeypatch.context() as m:
        m.setattr(lzma, "LZMADecompressor", NoUnpacking)
        again = zoo.read_weights(packed)
    assert again[0] == first[0] and again[1].keys() == first[1].keys()
    assert all(torch.equal(again[1][k], first[1][k]) for k in first[1])
    copies[0].write_bytes(copies[0].read_bytes()[:100])  # damaged: unpacked and replaced
    assert torch.equal(zoo.read_weights(packed)[1]["analysis.weight"],
                       first[1]["analysis.weight"])
    assert copies[0].read_bytes() == lzma.decompress(packed.read_bytes())
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("PYWALLOC_CACHE_DIR", str(blocked))
    assert zoo.read_weights(packed)[0] == first[0]
    monkeypatch.setenv("PYWALLOC_CACHE_DIR", str(tmp_path / "unused"))
    monkeypatch.setenv("PYWALLOC_NO_CACHE", "1")
    assert zoo.cache_dir() is None and zoo.read_weights(packed)[0] == first[0]
    assert not (tmp_path / "unused").exists()


def test_bundled_legacy_weights_are_packed_with_their_config_beside_them():
    """Every bundled legacy tensor file is packed (xz, or delta planes against another file) and
    has its config in a JSON beside it, so listing a preset's files never unpacks one; an
    alias's overrides file is small and part of an alias; delta planes are part of an alias."""
    files = [p for p in zoo.LEGACY_DIR.iterdir() if not p.name.endswith(".json")]
    over = [p for p in files if p.name.endswith(zoo.OVERRIDES_SUFFIX)]
    delta = [p for p in files if p.name.endswith(zoo.DELTA_SUFFIX)]
    files = [p for p in files if p not in over and p not in delta]
    assert files or delta
    assert all(p.name.endswith(zoo.XZ_SUFFIX) for p in files)
    assert all(zoo.config_sidecar(p).is_file() for p in files)
    for part, key, limit in [*((p, "overrides", 100_000) for p in over),
                             *((p, "delta", 10_000_000) for p in delta)]:
        assert part.stat().st_size < limit
        stem = part.name.removesuffix(zoo.OVERRIDES_SUFFIX).removesuffix(zoo.DELTA_SUFFIX)
        alias = part.with_name(stem + zoo.ALIAS_SUFFIX)
        assert json.loads(alias.read_text())[key] == part.name


def test_write_sidecar_writes_the_json_that_readers_expect(tmp_path):
    """The one sidecar writer: the JSON beside ``x.safetensors.xz`` is ``x.json`` with the
    config first, extra fields, then the provenance; it replaces an old one whole and leaves no
    temporary file behind."""
    weights = tmp_path / "rgb-16x-x.safetensors.xz"
    side = zoo.write_sidecar(weights, {"preset": "rgb-16x"}, {"note": "old"})
    assert side == tmp_path / "rgb-16x-x.json"
    side = zoo.write_sidecar(weights, {"preset": "rgb-16x"}, {"note": "n"}, weights_hash="ab")
    body = json.loads(side.read_text())
    assert list(body) == ["config", "weights_hash", "info"]
    assert body == {"config": {"preset": "rgb-16x"}, "weights_hash": "ab", "info": {"note": "n"}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb-16x-x.json"]


def test_bundled_defaults_are_xz_with_their_config_beside_them():
    """Each bundled default is one ``<preset>-small.safetensors.xz`` (no plain copy beside it)
    whose config is also in the JSON beside it, and weights_path names it."""
    plain = [p.name for p in zoo.WEIGHTS_DIR.glob("*.safetensors")]
    assert plain == []
    for name in zoo.available():
        path = zoo.weights_path(name)
        assert path.name == f"{name}-small.safetensors.xz" and path.is_file()
        config = json.loads(zoo.config_sidecar(path).read_text())["config"]
        assert config["preset"] == name
        assert zoo.load(name).config.preset == name


def test_delta_planes_give_back_every_fp16_bit_pattern():
    """Delta planes are lossless for any bits: all 65,536 fp16 patterns (NaNs, infinities,
    signed zeros, subnormals) against their reverse (differences that wrap around) and
    against zeros."""
    every = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(torch.float16)
    mine = {"w": every.reshape(256, 256), "b": every[::9362].clone()}
    for base in ({"w": every.flip(0).reshape(256, 256), "b": torch.zeros(8, dtype=torch.float16)},
                 {"w": torch.zeros(256, 256), "b": every[:8].float()}):
        back = zoo.delta_unpack(zoo.delta_pack(mine, base), base)
        assert all(torch.equal(back[k].view(torch.int16), mine[k].view(torch.int16))
                   for k in mine)


def test_stored_delta_planes_give_back_every_int8_fp16_and_float32_pattern():
    """Stored delta planes keep each tensor's dtype and every bit: all 256 int8 values and all
    65,536 fp16 patterns against their reverse (differences that wrap around), float32 bit
    patterns with NaNs and infinities; fp16-only planes are laid out exactly as the fp16 planes
    have always been (old files read the same); dtypes other than the base's are refused."""
    every8 = torch.arange(-128, 128, dtype=torch.int32).to(torch.int8)
    every16 = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(torch.float16)
    rng = np.random.default_rng(0)
    f32 = torch.from_numpy(rng.integers(-2**31, 2**31, 1000, dtype=np.int64).astype(np.int32))
    f32[:3] = torch.tensor([0x7FC00000, 0x7F800000, -0x80000000], dtype=torch.int32)
    mine = {"q": every8.reshape(16, 16), "h": every16.reshape(256, 256),
            "s": f32.view(torch.float32)}
    base = {"q": every8.flip(0).reshape(16, 16), "h": every16.flip(0).reshape(256, 256),
            "s": f32.flip(0).view(torch.float32)}
    back = zoo.delta_unpack(zoo.delta_pack(mine, base, stored=True), base, stored=True)
    for k, v in mine.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        assert back[k].numpy().tobytes() == v.numpy().tobytes(), k
    half = {"h": every16.reshape(256, 256)}
    assert zoo.delta_pack(half, {"h": base["h"]}, stored=True) == zoo.delta_pack(
        half, {"h": base["h"]})
    with pytest.raises(ValueError, match="dtypes"):
        zoo.delta_pack({**mine, "q": mine["q"].float()}, base, stored=True)
    with pytest.raises(ValueError, match="bytes"):  # planes of another base's size
        zoo.delta_unpack(zoo.delta_pack(mine, base, stored=True),
                         {**base, "q": every8[:8]}, stored=True)


def test_stored_delta_alias_keeps_an_older_int8_decoder_in_half_the_bytes(tmp_path, monkeypatch):
    """An older int8 decoder as an alias with ``"delta_of": "stored"``: int8 steps against a
    newer int8 file's stored tensors. It gives back exactly the old weights (their hash),
    takes fewer bytes than xz of the old file, and a malformed ``delta_of`` is refused."""
    from dataclasses import asdict

    torch.manual_seed(0)
    old = Codec("rgb-16x", width=32, blocks=2)
    new = Codec("rgb-16x", width=32, blocks=2)
    with torch.no_grad():
        for p_old, p_new in zip(old.parameters(), new.parameters()):
            p_old.add_(torch.randn_like(p_old) * 0.1)
            p_new.copy_(p_old + torch.randn_like(p_old) * 0.002)  # a little more training
    weights = tmp_path / "weights"
    legacy = weights / "legacy"
    legacy.mkdir(parents=True)
    new.save(weights / "rgb-16x-small.safetensors.xz", int8=True)
    old.save(tmp_path / "old.safetensors.xz", int8=True)
    want = zoo.file_hash(tmp_path / "old.safetensors.xz")
    mine = zoo.stored_tensors(tmp_path / "old.safetensors.xz")
    assert any(v.dtype == torch.int8 for v in mine.values())
    with pytest.raises(ValueError, match="fp16"):  # the fp16 planes cannot hold it
        zoo.delta_pack(zoo.read_weights(tmp_path / "old.safetensors.xz")[1],
                       zoo.read_weights(weights / "rgb-16x-small.safetensors.xz")[1])
    planes = zoo.delta_pack(mine, zoo.stored_tensors(weights / "rgb-16x-small.safetensors.xz"),
                            stored=True)
    assert len(planes) < (tmp_path / "old.safetensors.xz").stat().st_size
    (legacy / "rgb-16x-old.delta.xz").write_bytes(planes)
    spec = {"config": asdict(old.config), "tensors": "../rgb-16x-small.safetensors.xz",
            "delta": "rgb-16x-old.delta.xz", "weights_hash": want, "delta_of": "stored"}
    alias = legacy / "rgb-16x-old.alias.json"
    alias.write_text(json.dumps(spec))
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(zoo, "LEGACY_DIR", legacy)
    assert zoo.load(alias).weight_hash == want
    assert all(torch.equal(zoo.stored_tensors(alias)[k], v) for k, v in mine.items())
    # Read as fp16 planes against the weights (no "delta_of"), the same planes are refused.
    alias.write_text(json.dumps({k: v for k, v in spec.items() if k != "delta_of"}))
    with pytest.raises(WeightsFileError, match="delta.xz"):
        zoo.load(alias)
    for bad in ({**spec, "delta_of": "bits"},
                {k: v for k, v in spec.items() if k not in ("delta", "weights_hash")}):
        alias.write_text(json.dumps(bad))
        with pytest.raises(WeightsFileError, match="delta_of"):
            zoo.load(alias)


def test_delta_alias_gives_back_the_weights_and_refuses_wrong_ones(tmp_path, monkeypatch):
    """An alias with delta planes against another file's fp16 bits gives back exactly the packed
    weights (its recorded hash), may name another alias as its target, and is a WeightsFileError
    when its target changed, its planes are damaged or of another size, or aliases form a
    cycle."""
    from dataclasses import asdict

    torch.manual_seed(0)
    base = Codec("rgb-16x", width=8, blocks=1)
    old = Codec("rgb-16x", width=8, blocks=1)
    with torch.no_grad():  # another training of the same architecture: values drift a little
        for p_old, p_base in zip(old.parameters(), base.parameters()):
            p_old.copy_(p_base * 1.01 + 1e-3)
    weights = tmp_path / "weights"
    legacy = weights / "legacy"
    legacy.mkdir(parents=True)
    base.save(weights / "rgb-16x-small.safetensors")
    old.save(tmp_path / "old.safetensors")
    want = zoo.file_hash(tmp_path / "old.safetensors")
    old_tensors = zoo.read_weights(tmp_path / "old.safetensors")[1]
    planes = zoo.delta_pack(old_tensors, zoo.read_weights(weights / "rgb-16x-small.safetensors")[1])
    (legacy / "rgb-16x-old.delta.xz").write_bytes(planes)
    config = asdict(old.config)
    spec = {"config": config, "tensors": "../rgb-16x-small.safetensors",
            "delta": "rgb-16x-old.delta.xz", "weights_hash": want}
    alias = legacy / "rgb-16x-old.alias.json"
    alias.write_text(json.dumps(spec))
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(zoo, "LEGACY_DIR", legacy)
    got = zoo.load(alias)
    assert got.weight_hash == want == zoo.file_hash(alias)
    assert all(torch.equal(got.state_dict()[k].half(), v) for k, v in old_tensors.items())
    assert "rgb-16x-old.alias.json" in [p.name for p in zoo.bundled_files("rgb-16x")]
    assert "rgb-16x-old.delta.xz" not in [p.name for p in zoo.bundled_files()]
    assert zoo.find("rgb-16x", bytes.fromhex(want[:16])).weight_hash == want
    # An alias of the delta alias (another config on the same tensors) is found through it.
    chained = legacy / "rgb-16x-pad.alias.json"
    chained.write_text(json.dumps({"config": {**config, "pad": "replicate"},
                                   "tensors": "rgb-16x-old.alias.json"}))
    assert zoo.load(chained).config.pad == "replicate"
    assert all(torch.equal(zoo.load(chained).state_dict()[k], v)
               for k, v in got.state_dict().items())
    # The target changed: the recorded hash catches it.
    Codec("rgb-16x", width=8, blocks=1).save(weights / "rgb-16x-small.safetensors")
    with pytest.raises(WeightsFileError, match="records"):
        zoo.load(alias)
    base.save(weights / "rgb-16x-small.safetensors")
    assert zoo.file_hash(alias) == want
    # Damaged planes, or planes of another size.
    for bad in (planes[: len(planes) // 2], __import__("lzma").compress(b"\0" * 10)):
        (legacy / "rgb-16x-old.delta.xz").write_bytes(bad)
        with pytest.raises(WeightsFileError, match="delta.xz"):
            zoo.load(alias)
    (legacy / "rgb-16x-old.delta.xz").write_bytes(planes)
    # delta planes need a recorded hash and no overrides.
    alias.write_text(json.dumps({k: v for k, v in spec.items() if k != "weights_hash"}))
    with pytest.raises(WeightsFileError, match="weights_hash"):
        zoo.load(alias)
    # A cycle of aliases ends with an error, not a hang or a RecursionError.
    alias.write_text(json.dumps({**spec, "tensors": "rgb-16x-pad.alias.json"}))
    with pytest.raises(WeightsFileError, match="deeper|cycle"):
        zoo.load(chained)
    with pytest.raises(ValueError, match="names and shapes"):
        zoo.delta_pack(old_tensors, {"x": torch.zeros(3)})
    with pytest.raises(ValueError, match="fp16"):
        zoo.delta_pack({k: v.float() for k, v in old_tensors.items()}, old_tensors)


def test_alias_with_overrides_changes_only_the_tensors_it_names(tmp_path, monkeypatch):
    """An alias with ``overrides``: the target's tensors with a few replaced, its own hash,
    never listed as a file of its own; overrides naming tensors the target lacks, or a
    target that is gone, are WeightsFileErrors."""
    from dataclasses import asdict

    from safetensors.torch import save_file

    torch.manual_seed(0)
    base = Codec("rgb-16x", width=8, blocks=1, norm="affine").eval()
    legacy = tmp_path / "weights" / "legacy"
    legacy.mkdir(parents=True)
    base.save(legacy / "rgb-16x-a.safetensors")
    state = zoo.read_weights(legacy / "rgb-16x-a.safetensors")[1]
    name = "synthesis.net.1.body.0.weight"  # a ChannelAffine scale
    changed = {name: (state[name] * 2).contiguous()}
    save_file(changed, legacy / "rgb-16x-b.overrides.safetensors")
    alias = legacy / "rgb-16x-b.alias.json"
    config = asdict(zoo.load(legacy / "rgb-16x-a.safetensors").config)
    alias.write_text(json.dumps({"config": config, "tensors": "rgb-16x-a.safetensors",
                                 "overrides": "rgb-16x-b.overrides.safetensors"}))
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr(zoo, "LEGACY_DIR", legacy)
    a, b = zoo.load(legacy / "rgb-16x-a.safetensors"), zoo.load(alias)
    sa, sb = a.state_dict(), b.state_dict()
    assert [k for k in sa if not torch.equal(sa[k], sb[k])] == [name]
    assert torch.equal(sb[name], sa[name] * 2)
    assert zoo.file_hash(alias) == b.weight_hash != a.weight_hash
    assert [p.name for p in zoo.bundled_files("rgb-16x")] == ["rgb-16x-a.safetensors",
                                                              "rgb-16x-b.alias.json"]
    assert zoo.find("rgb-16x", b.weight_hash[:16]).weight_hash == b.weight_hash
    save_file({"no.such.tensor": changed[name]}, legacy / "rgb-16x-b.overrides.safetensors")
    with pytest.raises(WeightsFileError, match="lacks"):
        zoo.load(alias)
    alias.write_text(json.dumps({"config": config, "tensors": "rgb-16x-a.safetensors",
                                 "overrides": "x.safetensors"}))
    with pytest.raises(WeightsFileError, match="overrides"):
        zoo.load(alias)
    # A missing overrides file: the alias is unreadable, and finding weights skips it.
    alias.write_text(json.dumps({"config": config, "tensors": "rgb-16x-a.safetensors",
                                 "overrides": "gone.overrides.safetensors"}))
    with pytest.raises(WeightsFileError, match="missing"):
        zoo.load(alias)
    assert zoo.find("rgb-16x", a.weight_hash).weight_hash == a.weight_hash
    with pytest.raises(WeightsNotFoundError):
        zoo.find("rgb-16x", b.weight_hash)


def test_bundled_weights_stay_within_the_60_mb_budget():
    """All bundled weights together (defaults, legacy files, aliases, configs) stay under
    60 MB, the package's budget for them."""
    total = sum(p.stat().st_size for p in zoo.WEIGHTS_DIR.rglob("*") if p.is_file())
    assert 0 < total < 60_000_000, f"{total / 1e6:.1f} MB"


ROOT = Path(__file__).resolve().parent.parent  # the repository (weights-archive/, experiments/)


def test_archived_weights_are_in_the_repository_with_their_hash():
    """Every weights file retired from the package (weights/archived.json) is in the
    repository's weights-archive/ under its path, for its preset, with the hash files name,
    and is no longer bundled."""
    entries = zoo.archived()
    assert entries, "no archived weights listed"
    bundled = {r["weights_hash"] for r in zoo.bundled_weights()}
    for full, entry in entries.items():
        path = ROOT / entry["file"]
        assert path.is_file(), entry["file"]
        assert zoo.file_hash(path) == full
        assert zoo.load(path).config.preset == entry["preset"]
        assert full not in bundled


def test_find_names_the_archive_for_retired_weights(monkeypatch):
    """find() of a retired hash: without the archive, a WeightsNotFoundError that names the
    file to get and how to pass it; with the archive in PYWALLOC_WEIGHTS_PATH, those weights."""
    full, entry = next(iter(zoo.archived().items()))
    monkeypatch.delenv(zoo.PATH_ENV, raising=False)
    with pytest.raises(WeightsNotFoundError, match=f"retired.*{entry['file']}.*--weights") as info:
        zoo.find(entry["preset"], bytes.fromhex(full))
    assert info.value.retired == zoo.retired(entry["preset"], full)
    monkeypatch.setenv(zoo.PATH_ENV, str((ROOT / entry["file"]).parent))
    assert zoo.find(entry["preset"], bytes.fromhex(full)).weight_hash == full
    # Another preset's hash is not looked up in the archive index.
    other = "rgb-16x" if entry["preset"] != "rgb-16x" else "rgb-4x"
    monkeypatch.delenv(zoo.PATH_ENV)
    with pytest.raises(WeightsNotFoundError, match="no bundled") as info:
        zoo.find(other, bytes.fromhex(full))
    assert info.value.retired is None


def test_int8_weights_load_as_their_dequantized_values(tmp_path):
    """Codec.save(int8=True): the decoder CNN's convolutions as int8 with a scale per output
    channel; loading gives int8 x scale (within one step of each original weight, and each
    kernel's sum, its response to a flat input, within half a step), the same weights hash
    on every load, the other tensors as fp16 saves them, and a smaller
    file. An int8 tensor without its scale is a WeightsFileError."""
    from safetensors.torch import load_file

    torch.manual_seed(0)
    codec = Codec("rgb-16x", width=16, blocks=1)
    with torch.no_grad():
        for q in codec.synthesis.parameters():
            q.add_(torch.randn_like(q) * 0.1)
    codec.save(tmp_path / "h.safetensors")
    codec.save(tmp_path / "q.safetensors", int8=True)
    raw = load_file(tmp_path / "q.safetensors")
    convs = [k for k in raw if k.startswith("synthesis.net.") and raw[k].dtype == torch.int8]
    assert convs and all(k + zoo.QSCALE_SUFFIX in raw for k in convs)
    assert raw["synthesis.linear.weight"].dtype == torch.float16  # only the CNN is int8
    assert (tmp_path / "q.safetensors").stat().st_size < 0.7 * (
        tmp_path / "h.safetensors").stat().st_size
    loaded = Codec.from_file(tmp_path / "q.safetensors")
    half = Codec.from_file(tmp_path / "h.safetensors")
    for k, v in codec.state_dict().items():
        got = loaded.state_dict()[k]
        if k in convs:
            v = half.state_dict()[k]  # what was quantised: the fp16 weights
            amax = v.reshape(v.shape[0], -1).abs().amax(1)  # step: amax / 127
            err = (got - v).reshape(v.shape[0], -1).abs().amax(1)
            assert (err < amax / 127 * (1 + 1e-4)).all(), k
            sums = (got - v).reshape(v.shape[0], v.shape[1], -1).sum(2).abs().amax(1)
            assert (sums <= amax / 254 * (1 + 1e-4)).all(), k
            if v[0, 0].numel() > 1:  # plain rounding would be off by more in some kernel
                plain = torch.round(v.reshape(v.shape[0], -1) / (amax[:, None] / 127))
                off = (plain * (amax[:, None] / 127) - v.reshape(v.shape[0], -1)).reshape(
                    v.shape[0], v.shape[1], -1).sum(2).abs().amax()
                assert off > amax.max() / 254, k
            assert not torch.equal(got, v)
        else:
            assert torch.equal(got, half.state_dict()[k]), k
    assert pywalloc.load(tmp_path / "q.safetensors").weight_hash == loaded.weight_hash
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    blob = pywalloc.compress(img, codec=loaded)
    assert pywalloc.decompress(blob, codec=loaded).shape == img.shape
    del raw[convs[0] + zoo.QSCALE_SUFFIX]
    save_file(raw, tmp_path / "bad.safetensors", metadata=zoo.read_weights(
        tmp_path / "h.safetensors")[0])
    with pytest.raises(WeightsFileError, match="scales"):
        Codec.from_file(tmp_path / "bad.safetensors")


def test_the_weights_cache_drops_the_least_recently_used_copies(tmp_path, monkeypatch):
    """Past CACHE_LIMIT_BYTES the cache deletes the copies used longest ago, never the one
    it has just written; a copy read again counts as recently used."""
    import os
    import time

    monkeypatch.setenv("PYWALLOC_CACHE_DIR", str(tmp_path / "cache"))
    files = []
    for seed in range(3):
        torch.manual_seed(seed)
        f = tmp_path / f"w{seed}.safetensors.xz"
        Codec("rgb-16x", width=8, blocks=1).save(f)
        files.append(f)
    zoo.read_weights(files[0])
    one = next((tmp_path / "cache" / "weights").iterdir()).stat().st_size
    monkeypatch.setattr(zoo, "CACHE_LIMIT_BYTES", int(2.5 * one))
    zoo.read_weights(files[1])
    first = zoo._copy_path(files[0].read_bytes())
    second = zoo._copy_path(files[1].read_bytes())
    past = time.time() - 100
    os.utime(first, (past, past))  # the oldest of the two ...
    os.utime(second, (past + 1, past + 1))
    zoo.read_weights(files[0])  # used again: now the most recent of the two
    zoo.read_weights(files[2])  # a third copy: over the limit, one must go
    left = set((tmp_path / "cache" / "weights").iterdir())
    assert left == {first, zoo._copy_path(files[2].read_bytes())}  # ... until read again


def test_archive_weights_moves_a_legacy_alias_out_with_its_hash(tmp_path, monkeypatch):
    """experiments/archive_weights.py: refuses an alias that another one is built on; moves a
    leaf alias to an fp16 file of the same hash, lists it in the index, removes its files from
    the (here: copied) package, and find() gets it back from the archive folder."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "archive_weights", ROOT / "experiments" / "archive_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    weights, legacy = tmp_path / "weights", tmp_path / "weights" / "legacy"
    legacy.mkdir(parents=True)
    for name in ("rgb-4x-small.safetensors.xz", "rgb-4x-small.json"):
        shutil.copy(zoo.WEIGHTS_DIR / name, weights / name)
    for name in ("rgb-4x-small-groupnorm.alias.json", "rgb-4x-small-groupnorm.delta.xz",
                 "rgb-4x-small-affine.alias.json", "rgb-4x-small-affine.overrides.safetensors"):
        shutil.copy(zoo.LEGACY_DIR / name, legacy / name)
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(zoo, "LEGACY_DIR", legacy)
    index, archive = weights / "archived.json", tmp_path / "archive"
    with pytest.raises(ValueError, match="target of rgb-4x-small-affine"):
        mod.archive("rgb-4x-small-groupnorm", "test", archive, index)
    want = zoo.file_hash(legacy / "rgb-4x-small-affine.alias.json")
    dst = mod.archive("rgb-4x-small-affine", "test", archive, index, today="2026-12-03")
    assert dst == archive / f"rgb-4x-{want}.safetensors.xz" and zoo.file_hash(dst) == want
    assert not (legacy / "rgb-4x-small-affine.alias.json").exists()
    assert not (legacy / "rgb-4x-small-affine.overrides.safetensors").exists()
    entry = json.loads(index.read_text())["weights"][want]
    assert entry["preset"] == "rgb-4x" and entry["retired"] == "2026-12-03"
    monkeypatch.setattr(zoo, "ARCHIVED_INDEX", index)
    monkeypatch.delenv(zoo.PATH_ENV, raising=False)
    with pytest.raises(WeightsNotFoundError, match="retired"):
        zoo.find("rgb-4x", want)
    monkeypatch.setenv(zoo.PATH_ENV, str(archive))
    assert zoo.find("rgb-4x", want).weight_hash == want


def test_loaded_codecs_say_where_their_weights_came_from(tmp_path):
    """``Codec.meta`` (as torchvision's weights carry theirs): the file, its provenance and the
    figures measured on a bundled default; a file's own metadata when no JSON is beside it."""
    from pywalloc import zoo
    from pywalloc.codec import Codec

    c = pywalloc.load("rgb-16x")
    assert c.meta["file"] == str(zoo.weights_path("rgb-16x"))
    assert c.meta["info"].get("recipe") and c.meta["measured"] == zoo.measured("rgb-16x")
    assert pywalloc.load("rgb-16x", frozen=True).meta["measured"] == zoo.measured("rgb-16x")
    assert Codec("rgb-16x").meta == {}
    f = tmp_path / "mine.safetensors"
    Codec("stereo-20x").save(f, extra={"recipe": "a test", "step": 3})
    for codec in (Codec.from_file(f), pywalloc.load(f)):
        assert codec.meta["info"] == {"recipe": "a test", "step": 3}
        assert codec.meta["measured"] is None
    (tmp_path / "mine.json").write_text("not JSON")  # a broken sidecar costs the info only
    assert Codec.from_file(f).meta["info"] == {"recipe": "a test", "step": 3}
    # a default's JSON copied beside other weights: its figures are not theirs, so not shown
    body = json.loads(zoo.config_sidecar(zoo.weights_path("stereo-20x")).read_text())
    (tmp_path / "mine.json").write_text(json.dumps(body))
    for codec in (Codec.from_file(f), pywalloc.load(f)):
        assert codec.meta["info"] == body["info"] and codec.meta["measured"] is None


def test_listing_the_bundled_weights_unpacks_each_delta_file_once(monkeypatch):
    """Older weights are delta planes against newer ones, in chains: stored_tensors() is
    cached, so listing every file unpacks each delta file once, not once per older file."""
    saved = [dict(c) for c in (zoo._FILES, zoo._HASHES, zoo._STORED)]  # restored below
    calls = []
    unpack = zoo.delta_unpack
    monkeypatch.setattr(zoo, "delta_unpack", lambda *a, **k: calls.append(1) or unpack(*a, **k))
    try:
        for cache in (zoo._FILES, zoo._HASHES, zoo._STORED):
            cache.clear()
        rows = zoo.bundled_weights()
    finally:
        for cache, old in zip((zoo._FILES, zoo._HASHES, zoo._STORED), saved):
            cache.clear()
            cache.update(old)
    deltas = sorted(zoo.WEIGHTS_DIR.rglob(f"*{zoo.DELTA_SUFFIX}"))
    assert deltas and all(r["error"] is None for r in rows)
    assert 0 < len(calls) <= len(deltas)
