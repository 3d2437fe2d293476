"""EncodeTransform (PIL / numpy / tensor in, latents out, in DataLoader workers) and WlcDataset
(.wlc files -> latents without decoding pixels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import pywalloc
from pywalloc.errors import WeightsMismatchError
from pywalloc.learning import (
    DatasetFormatError,
    EncodeTransform,
    LearningError,
    WlcDataset,
    list_wlc,
    resolve_codec,
)


@pytest.fixture(scope="module")
def codec():
    return pywalloc.load("rgb-16x")


def _image(h=40, w=56, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_transform_matches_codec_for_every_input_kind(codec):
    arr = _image()
    ref = codec.encode(torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255 - 0.5)[0]
    tf = EncodeTransform("rgb-16x")
    for inp in (arr, Image.fromarray(arr), torch.from_numpy(arr).permute(2, 0, 1),
                torch.from_numpy(arr).permute(2, 0, 1).float() / 255):
        z = tf(inp)
        assert z.dtype == torch.float32 and z.shape == (12, 5, 7)
        # encode_uint8 folds the scaling into the analysis: at most a rounding flip here and there
        assert (z - ref.float()).abs().max() <= 1
        assert (z == ref.float()).float().mean() > 0.99
    assert EncodeTransform(codec, dtype=torch.int8)(arr).dtype == torch.int8
    cont = EncodeTransform(codec, continuous=True)(arr)
    assert not torch.equal(cont, cont.round()) and (cont.round() - ref).abs().max() <= 1


def test_transform_gray_becomes_rgb(codec):
    gray = _image()[:, :, 0]
    tf = EncodeTransform(codec)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    assert torch.equal(tf(Image.fromarray(gray)), tf(rgb))
    assert torch.equal(tf(gray), tf(rgb))
    assert torch.equal(tf(torch.from_numpy(gray)[None]), tf(rgb))


def test_transform_refuses_bad_inputs(codec):
    tf = EncodeTransform(codec)
    with pytest.raises(LearningError, match=r"\[0, 1\]"):
        tf(torch.full((3, 8, 8), 2.0))  # 0..255 floats: would silently lose quality
    with pytest.raises(LearningError, match="uint8"):
        tf(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(LearningError):
        tf(torch.zeros(4, 8, 8, dtype=torch.uint8))
    with pytest.raises(LearningError, match="cannot encode"):
        tf("not an image")
    with pytest.raises(LearningError, match="audio"):
        EncodeTransform("stereo-20x")
    with pytest.raises(LearningError, match="neither"):
        EncodeTransform("no-such-codec")


def test_transform_accepts_a_weights_file(codec, tmp_path):
    path = tmp_path / "c.safetensors"
    codec.save(path, half=False)
    assert resolve_codec(str(path)).weight_hash == codec.weight_hash
    arr = _image()
    assert torch.equal(EncodeTransform(path)(arr), EncodeTransform(codec)(arr))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk")
    with pytest.raises(LearningError, match="cannot load"):
        resolve_codec(bad)


class _Images(torch.utils.data.Dataset):
    def __init__(self, tf):
        self.tf = tf

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return self.tf(Image.fromarray(_image(seed=i))), torch.get_num_threads()


def test_transform_in_dataloader_workers_uses_one_thread(codec):
    tf = EncodeTransform(codec)
    loader = torch.utils.data.DataLoader(_Images(tf), batch_size=2, num_workers=2)
    zs, threads = zip(*loader)
    assert torch.cat(zs).shape == (4, 12, 5, 7)
    assert torch.cat(threads).tolist() == [1, 1, 1, 1]
    assert torch.equal(torch.cat(zs)[0], tf(_image(seed=0)))
    # the batch form agrees with the per-image one
    b = torch.stack([torch.from_numpy(_image(seed=i)).permute(2, 0, 1) for i in range(4)])
    assert torch.equal(tf.batch(b), torch.cat(zs))


def _write_wlc(root, codec, classes=("a", "b"), n=2, size=(32, 48)):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            arr = _image(*size, seed=hash((c, i)) % 1000)
            (root / c / f"{i}.wlc").write_bytes(pywalloc.compress(arr, codec))


def test_wlc_dataset_yields_the_encoded_latents(codec, tmp_path):
    _write_wlc(tmp_path, codec)
    ds = WlcDataset(tmp_path, codec="rgb-16x")
    assert len(ds) == 4 and ds.labels == [0, 0, 1, 1] and ds.label_names == ["a", "b"]
    z, y = ds[2]
    arr = _image(32, 48, seed=hash(("b", 0)) % 1000)
    assert y == 1 and z.dtype == torch.float32
    assert torch.equal(z, codec.encode_uint8(torch.from_numpy(arr).permute(2, 0, 1)[None])[0]
                       .float())
    # no decoder runs: a dataset without a codec works the same
    loader = torch.utils.data.DataLoader(WlcDataset(tmp_path), batch_size=4, num_workers=2)
    (batch, labels), = list(loader)
    assert batch.shape == (4, 12, 4, 6) and labels.tolist() == [0, 0, 1, 1]
    assert torch.equal(batch[2], z)
    files, labels, _ = list_wlc(tmp_path)
    ds2 = WlcDataset(files, labels=labels, dtype=torch.int8, transform=lambda t: t * 0)
    assert ds2[0][0].dtype == torch.int8 and not ds2[0][0].any() and ds2[3][1] == 1


def test_wlc_dataset_errors(codec, tmp_path):
    _write_wlc(tmp_path / "d", codec, classes=("a",), n=1)
    with pytest.raises(WeightsMismatchError):
        WlcDataset(tmp_path / "d", codec="rgb-4x")[0]
    bad = tmp_path / "d" / "a" / "1.wlc"
    bad.write_bytes(b"\x89WLC garbage")
    with pytest.raises(DatasetFormatError, match="1.wlc"):
        WlcDataset(tmp_path / "d")[1]
    with pytest.raises(LearningError, match="does not exist"):
        WlcDataset(tmp_path / "d" / "nothing")
    (tmp_path / "e").mkdir()
    with pytest.raises(LearningError, match="no .wlc"):
        WlcDataset(tmp_path / "e")
    with pytest.raises(LearningError, match="labels"):
        WlcDataset([bad], labels=[0, 1])


def test_transform_and_encode_dataset_with_a_gray_codec(tmp_path):
    """A gray codec (one channel) takes the luma of colour input, as Pillow's convert("L"),
    in EncodeTransform and in encode_dataset; gray input goes in as it is."""
    from pywalloc.codec import Codec
    from pywalloc.learning import LatentDataset, encode_dataset

    torch.manual_seed(0)
    gray_codec = Codec("gray-16x").eval()
    arr = _image()
    lum = np.asarray(Image.fromarray(arr).convert("L"))
    ref = gray_codec.encode_uint8(torch.from_numpy(lum.copy())[None, None])[0].float()
    tf = EncodeTransform(gray_codec)
    chw = torch.from_numpy(arr).permute(2, 0, 1)
    for inp in (arr, Image.fromarray(arr), Image.fromarray(lum), lum, chw,
                torch.from_numpy(lum.copy())[None]):
        assert torch.equal(tf(inp), ref)
    assert ref.shape == (4, 5, 7)
    assert torch.equal(tf.batch(torch.from_numpy(lum.copy())[None, None])[0], ref)
    with pytest.raises(LearningError, match=r"\[B, 1, H, W\]"):
        tf.batch(chw[None])
    data = tmp_path / "imgs" / "a"
    data.mkdir(parents=True)
    Image.fromarray(arr).save(data / "x.png")
    encode_dataset(gray_codec, tmp_path / "imgs", tmp_path / "out", progress=False)
    z, label = LatentDataset(tmp_path / "out")[0]
    assert label == 0 and torch.equal(z, ref)
