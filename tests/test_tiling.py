"""Tiled encoding and decoding give the same bits as the whole input (issue 11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import pywalloc
from pywalloc import tiling
from pywalloc.codec import Codec, compand, decompand
from pywalloc.synthesis import ChannelNorm, LocalGroupNorm
from pywalloc.wavelets import wpt

SAMPLES = Path(pywalloc.__file__).resolve().parent / "samples"


def _random_decoder(preset: str, norm: str = "channel", pad: str = "zeros") -> Codec:
    """A fresh position-local codec whose CNN matters: its zero-initialised last layer and the
    norms' affine parameters perturbed."""
    torch.manual_seed(0)
    model = Codec(preset, norm=norm, pad=pad).eval()
    assert model.position_local
    with torch.no_grad():
        for p in model.synthesis.net[-1].parameters():
            p.normal_(0, 0.05)
        for m in model.synthesis.modules():
            if isinstance(m, (ChannelNorm, LocalGroupNorm)):
                m.weight.normal_(1, 0.2)
                m.bias.normal_(0, 0.2)
    return model


def _whole_decode(model: Codec, z: torch.Tensor, size) -> torch.Tensor:
    y = z.float()
    return model._reconstruct(model.synthesis(decompand(y), y), size).clamp(model.lo, model.hi)


def test_support_and_receptive_field() -> None:
    assert tiling.support(3, True) == (4, 3) and tiling.support(3, False) == (4, 3)
    model = Codec("rgb-16x")
    assert tiling.receptive_radius(model.synthesis.net) == 2 * model.size_spec.blocks + 1


@pytest.mark.parametrize(("tile", "pad"), [(3, "zeros"), (7, "zeros"), (3, "replicate"),
                                           (7, "replicate")])
def test_image_tiles_equal_the_whole_image(tile: int, pad: str) -> None:
    model = _random_decoder("rgb-16x", pad=pad)
    h, w = 75, 301  # not multiples of the block; 10 x 38 latents: border and wrapped tiles
    gen = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (1, 3, h, w), generator=gen, dtype=torch.uint8)
    with torch.inference_mode():
        z = model.encode_uint8(pixels, tile=tile)
        assert torch.equal(z, model.encode_uint8(pixels, tile=1000))
        # The whole-input analysis through a plain convolution: the same latents.
        wgt, bias = model._folded_analysis()
        plain = torch.round(compand(F.conv2d(wpt(model._pad(pixels.float()), 3), wgt, bias)))
        assert torch.equal(z, plain.clamp_(-127, 127).to(torch.int8))
        whole = _whole_decode(model, z, (h, w))
        assert torch.equal(model.decode(z, (h, w), tile=tile), whole)
        assert torch.equal(model.decode(z, (h, w)), whole)


@pytest.mark.parametrize(("norm", "pad"), [("channel", "zeros"), ("local", "zeros"),
                                           ("channel", "replicate")])
def test_audio_chunks_equal_the_whole_clip(norm: str, pad: str) -> None:
    model = _random_decoder("stereo-20x", norm, pad)
    n = 256 * 90 + 77
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(1, 2, n, generator=gen) * 1.6 - 0.8
    with torch.inference_mode():
        z = model.encode(x, tile=16)
        assert torch.equal(z, model.encode(x))
        assert torch.equal(model.decode(z, (n,), tile=25), _whole_decode(model, z, (n,)))


def test_api_decodes_tile_by_tile_to_the_same_pixels(monkeypatch) -> None:
    model = _random_decoder("rgb-16x")
    gen = np.random.default_rng(3)
    pixels = gen.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    blob = pywalloc.compress(pixels, model)
    whole = pywalloc.decompress(blob, model)
    monkeypatch.setitem(tiling.TILE, 2, 4)
    assert np.array_equal(pywalloc.decompress(blob, model), whole)
    gray = pywalloc.compress(pixels[:, :, 0], model)
    monkeypatch.setitem(tiling.TILE, 2, 128)
    ref = pywalloc.decompress(gray, model)
    monkeypatch.setitem(tiling.TILE, 2, 3)
    assert np.array_equal(pywalloc.decompress(gray, model), ref)


def test_decode_progress_counts_the_tiles_and_changes_nothing(monkeypatch, capsys,
                                                              tmp_path) -> None:
    """``progress=True``: a bar on stderr over the tiles (a long decode is not silent), the
    same pixels; one tile, or no progress asked, writes nothing."""
    model = _random_decoder("rgb-16x")
    pixels = np.random.default_rng(4).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    blob = pywalloc.compress(pixels, model)
    whole = pywalloc.decompress(blob, model, progress=True)  # 8 x 12 latents: one tile
    assert capsys.readouterr().err == ""
    monkeypatch.setitem(tiling.TILE, 2, 4)  # 2 x 3 tiles
    assert np.array_equal(pywalloc.decompress(blob, model), whole)
    assert capsys.readouterr().err == ""
    assert np.array_equal(pywalloc.decompress(blob, model, progress=True), whole)
    err = capsys.readouterr().err  # tqdm may skip drawing some steps; the total is there
    assert "decode" in err and "0/6" in err
    from pywalloc.api import decompress_file

    decompress_file(blob, tmp_path / "out.png", codec=model, progress=True)
    assert "0/6" in capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), whole)
    with tiling.decode_progress("outer"):  # the setting ends with its block
        pass
    assert tiling._PROGRESS.get() is None


def test_encode_progress_counts_the_tiles_and_changes_nothing(monkeypatch, capsys,
                                                              tmp_path) -> None:
    """A long encode is not silent either: ``progress=True`` (``walloc encode`` unless -q)
    shows a bar over the tiles, for arrays, image files and streamed audio files alike."""
    pixels = np.random.default_rng(5).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    one = pywalloc.api.encode(pixels, "rgb-16x", progress=True)
    assert capsys.readouterr().err == ""  # one tile: nothing
    monkeypatch.setitem(tiling.TILE, 2, 4)  # 2 x 3 tiles
    assert pywalloc.api.encode(pixels, "rgb-16x").blob == one.blob
    assert capsys.readouterr().err == ""
    assert pywalloc.api.encode(pixels, "rgb-16x", progress=True).blob == one.blob
    err = capsys.readouterr().err
    assert "encode" in err and "0/6" in err
    Image.fromarray(pixels).save(tmp_path / "p.png")
    assert pywalloc.api.encode_file(tmp_path / "p.png", "rgb-16x", progress=True).blob == one.blob
    assert "0/6" in capsys.readouterr().err
    import soundfile as sf

    from pywalloc import api

    monkeypatch.setattr(api, "STREAM_FRAMES", 1)
    monkeypatch.setitem(tiling.TILE, 1, 40)  # 51,000 frames: 200 latents in 5 tiles
    sf.write(tmp_path / "a.flac", np.random.default_rng(6).uniform(-.3, .3, (51_000, 2)), 44100)
    api.encode_file(tmp_path / "a.flac", "stereo-20x", progress=True)
    assert "0/5" in capsys.readouterr().err
    assert tiling._PROGRESS.get() is None


def test_group_norm_decoders_decode_whole() -> None:
    model = Codec("rgb-16x", norm="group").eval()
    assert not model.position_local
    z = torch.randint(-20, 20, (1, 12, 5, 6), dtype=torch.int8)
    with torch.inference_mode():
        assert torch.equal(model.decode(z, (40, 48), tile=2), _whole_decode(model, z, (40, 48)))


def _pca_codec() -> Codec:
    from pywalloc.training.init import pca_init

    model = Codec("rgb-16x").eval()  # a fresh decoder is its linear path (the CNN adds zero)
    img = np.array(Image.open(SAMPLES / "kodim23.png").convert("RGB"))  # a writable copy
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255 - 0.5
    coeffs = wpt(model._pad(x), 3)[0].flatten(1).double()
    pca_init(model, coeffs.mean(1), torch.cov(coeffs), model.preset.gain)
    return model


@pytest.mark.parametrize("side", [1, 8, 32])
def test_small_flat_images_round_trip_within_3(side: int) -> None:
    model = _pca_codec()
    flat = np.empty((side, side, 3), np.uint8)
    flat[:] = (200, 50, 30)
    out = pywalloc.decompress(pywalloc.compress(flat, model), model)
    assert np.abs(out.astype(int) - flat).max() <= 3


_FLAT_COLOURS = [(200, 50, 30), (0, 0, 0), (255, 255, 255), (128, 128, 128), (255, 0, 0),
                 (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
                 *(tuple(int(v) for v in c)
                   for c in np.random.default_rng(5).integers(0, 256, (6, 3)))]


@pytest.mark.parametrize("preset", ["rgb-16x", "rgb-4x"])
def test_bundled_codecs_round_trip_flat_pictures_within_3(preset: str, one_thread) -> None:
    """Issue 11: flat 1x1, 8x8 and 32x32 pictures in saturated, extreme and random colours come
    back within 3 code values through the real byte path, with the bundled decoders."""
    codec = pywalloc.load(preset)
    worst = []
    for side in (1, 8, 32):
        for col in _FLAT_COLOURS:
            flat = np.empty((side, side, 3), np.uint8)
            flat[:] = col
            out = pywalloc.decompress(pywalloc.compress(flat, codec), codec)
            worst.append((int(np.abs(out.astype(int) - flat).max()), side, col))
    assert max(worst)[0] <= 3, f"worst (error, side, colour): {max(worst)}"


def test_decoding_across_thread_counts() -> None:
    """Pictures decode to the same bytes with 1 and 2 threads; audio (float output) within a
    quarter of a 16-bit step (oneDNN splits its 1D convolutions by thread count)."""
    threads = torch.get_num_threads()
    model, audio_model = _random_decoder("rgb-16x"), _random_decoder("stereo-20x")
    pixels = np.random.default_rng(0).integers(0, 256, (120, 300, 3), dtype=np.uint8)
    samples = np.random.default_rng(1).uniform(-0.8, 0.8, (256 * 200, 2)).astype(np.float32)
    blob, ablob = pywalloc.compress(pixels, model), pywalloc.compress(samples, audio_model, 44100)
    pics, clips = [], []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            pics.append(pywalloc.decompress(blob, model))
            clips.append(pywalloc.decompress(ablob, audio_model)[0])
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(pics[0], pics[1])
    assert np.abs(clips[0] - clips[1]).max() < 0.25 / 2**15


def test_mirror_gather_by_slices_equals_index_select() -> None:
    """The encoder's padding gather (slices and flips of runs) gives index_select's result for
    every window, including one- and two-sample inputs that fold many times."""
    gen = torch.Generator().manual_seed(4)
    t = torch.randn(2, 3, 37, 5, generator=gen)
    rng = np.random.default_rng(4)
    for n in (1, 2, 3, 9, 37):
        part = t[:, :, :n]
        g = -(-n // 8) * 8
        for _ in range(40):
            a = int(rng.integers(-40, 40))
            padded = torch.arange(a, a + int(rng.integers(1, 120))) % g
            idx = tiling.mirror_index(g, n)[padded]
            assert torch.equal(tiling._gather(part, 2, idx.tolist()), part.index_select(2, idx))
