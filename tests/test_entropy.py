"""Bit-exact round trips and layout rules of the lossless-WebP latent packing."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pywalloc.entropy import (
    MAX_CHANNELS,
    WEBP_MAX_SIDE,
    from_canvas,
    layout,
    pack,
    to_canvas,
    unpack,
)
from pywalloc.errors import FormatError

IMAGE_SIZES = [(1, 1), (1, 97), (97, 1), (64, 96), (61, 37), (8, 8)]
AUDIO_LENGTHS = [1, 2, 7, 255, 1001]


def _data(kind: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(-127, 128, shape).astype(np.int8)
    if kind == "structured":  # smooth ramps per channel plus small noise, like real latents
        n = int(np.prod(shape[1:]))
        ramp = np.linspace(-100, 100, n).reshape(shape[1:])
        z = ramp[None] * rng.uniform(-1, 1, (shape[0],) + (1,) * (len(shape) - 1))
        z = z + rng.integers(-2, 3, shape)
        return np.clip(np.round(z), -127, 127).astype(np.int8)
    if kind == "extreme":  # alternating saturation values
        return np.where(rng.random(shape) < 0.5, -127, 127).astype(np.int8)
    raise AssertionError(kind)


def _roundtrip(z: np.ndarray, **kw: int) -> bytes:
    data = pack(z, **kw)
    back = unpack(data, z.shape)
    assert back.dtype == np.int8 and back.shape == z.shape
    np.testing.assert_array_equal(back, z)
    return data


@pytest.mark.parametrize("kind", ["random", "structured", "extreme"])
@pytest.mark.parametrize("channels", [12, 48])
@pytest.mark.parametrize("hw", IMAGE_SIZES)
def test_image_latents_roundtrip(kind: str, channels: int, hw: tuple[int, int]) -> None:
    _roundtrip(_data(kind, (channels, *hw)))


@pytest.mark.parametrize("kind", ["random", "structured", "extreme"])
@pytest.mark.parametrize("channels", [27, 108])
@pytest.mark.parametrize("length", AUDIO_LENGTHS)
def test_audio_latents_roundtrip(kind: str, channels: int, length: int) -> None:
    _roundtrip(_data(kind, (channels, length)))


def test_full_int8_range_including_minus_128() -> None:
    z = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16).repeat(5, axis=0)
    _roundtrip(z)


def test_torch_tensor_input() -> None:
    z = _data("random", (12, 5, 7))
    assert pack(torch.from_numpy(z)) == pack(z)
    _roundtrip(z)


@pytest.mark.parametrize("method", range(7))
def test_every_method_is_lossless(method: int) -> None:
    _roundtrip(_data("structured", (12, 16, 24)), method=method, quality=50)


@settings(max_examples=40, deadline=None)
@given(
    channels=st.integers(1, 20),
    dims=st.lists(st.integers(1, 40), min_size=1, max_size=2),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_shapes_roundtrip(channels: int, dims: list[int], seed: int) -> None:
    z = np.random.default_rng(seed).integers(-128, 128, (channels, *dims)).astype(np.int8)
    _roundtrip(z)


def test_padding_plane_is_a_zero_latent_and_costs_almost_nothing() -> None:
    z = _data("structured", (10, 32, 32))
    padded = np.concatenate([z, np.zeros((2, 32, 32), np.int8)])
    # C=10 is stored exactly as if the missing two channels were zero latents.
    assert pack(z) == pack(padded)
    zeros = np.zeros((48, 64, 64), np.int8)
    assert len(pack(zeros)) < zeros.size // 100


def test_layout_of_presets_is_square_grid() -> None:
    # 12, 48, 27, 108 channels give 4, 16, 9, 36 tiles: square grids of square-ish tiles.
    for shape, grid in [((12, 256, 256), 2), ((48, 64, 96), 4), ((27, 5000), 3), ((108, 9), 6)]:
        lay = layout(shape)
        assert (lay.grid_h, lay.grid_w) == (grid, grid)
        assert lay.tiles == shape[0] // 3
    audio = layout((27, 1001))
    assert audio.folded and audio.tile_w == 32 and audio.tile_h == 32


def test_elongated_image_is_folded_to_fit_webp() -> None:
    lay = layout((3, 1, 3 * WEBP_MAX_SIDE))
    assert lay.folded and max(lay.size) <= WEBP_MAX_SIDE
    z = _data("random", (3, 1, 20000))
    _roundtrip(z)


def test_pack_rejects_non_int8() -> None:
    with pytest.raises(ValueError, match="int8"):
        pack(np.zeros((3, 4, 4), np.int16))
    with pytest.raises(ValueError):
        pack(np.zeros((3, 4, 4), np.int8), method=7)
    with pytest.raises(ValueError):
        pack(np.zeros((3, 4, 4, 4), np.int8))


def test_unpack_rejects_garbage_and_mismatched_shape() -> None:
    z = _data("structured", (12, 8, 8))
    data = pack(z)
    with pytest.raises(FormatError, match="WebP"):
        unpack(b"not a webp at all", z.shape)
    with pytest.raises(FormatError, match="expected"):
        unpack(data, (12, 8, 9))
    with pytest.raises(FormatError):
        unpack(data[: len(data) // 2], z.shape)
    with pytest.raises(FormatError, match="shape"):
        unpack(data, (12, 0, 8))


def test_unpack_enforces_size_cap_before_decoding() -> None:
    # A 1x1 WebP claimed to hold 2^30 values must be refused from the shape alone.
    with pytest.raises(FormatError, match="cap"):
        unpack(pack(np.zeros((3, 1, 1), np.int8)), (4, 2**14, 2**14))
    with pytest.raises(FormatError, match="cap"):
        unpack(pack(np.zeros((3, 8, 8), np.int8)), (3, 8, 8), max_values=100)


def test_unpack_rejects_lossy_webp() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (1, 2, 3)).save(buf, "WEBP", quality=90)
    with pytest.raises(FormatError, match="lossless"):
        unpack(buf.getvalue(), (3, 2, 2))


def test_unpack_rejects_webp_with_alpha() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (2, 2), (1, 2, 3, 4)).save(buf, "WEBP", lossless=True)
    with pytest.raises(FormatError, match="mode"):
        unpack(buf.getvalue(), (3, 2, 2))


def test_canvas_is_the_documented_layout() -> None:
    # Tile k holds channels 3k, 3k+1, 3k+2 as R, G, B, tiles in row-major grid order, +128.
    z = _data("random", (7, 2, 2))
    canvas = to_canvas(z)
    assert canvas.shape == (4, 4, 3)  # 3 tiles of 2x2 on a 2x2 grid (one empty)
    np.testing.assert_array_equal(canvas[0:2, 0:2, 1], z[1].astype(int) + 128)
    np.testing.assert_array_equal(canvas[0:2, 2:4, 2], z[5].astype(int) + 128)
    np.testing.assert_array_equal(canvas[2:4, 0:2, 0], z[6].astype(int) + 128)
    assert (canvas[2:4, 0:2, 1:] == 128).all() and (canvas[2:4, 2:4] == 128).all()
    np.testing.assert_array_equal(from_canvas(canvas, z.shape), z)
    audio = _data("random", (3, 10))  # folded: rows of 4, tail padded with 128
    folded = to_canvas(audio)
    assert folded.shape == (3, 4, 3)
    np.testing.assert_array_equal(folded.reshape(12, 3)[:10].T, audio.astype(int) + 128)
    assert (folded.reshape(12, 3)[10:] == 128).all()


def test_raw_coder_keeps_the_layout_with_two_s_complement_bytes() -> None:
    """Entropy id 2: the same canvas with the bytes v & 0xFF (padding: latent 0, byte 0); every
    int8 value round-trips; each coder reads only its own payloads correctly."""
    from pywalloc.entropy import CODERS, WEBP, WEBP_RAW, coder

    assert coder(2) is WEBP_RAW and sorted(CODERS) == [1, 2]
    z = _data("random", (7, 2, 2))
    raw = to_canvas(z, offset=0)
    np.testing.assert_array_equal(raw, to_canvas(z) ^ np.uint8(128))
    np.testing.assert_array_equal(raw[0:2, 2:4, 2], z[5].view(np.uint8))
    assert (raw[2:4, 2:4] == 0).all()
    np.testing.assert_array_equal(from_canvas(raw, z.shape, offset=0), z)
    every = np.arange(-128, 128, dtype=np.int8).reshape(4, 8, 8)
    data = WEBP_RAW.pack(every, method=1)
    np.testing.assert_array_equal(WEBP_RAW.unpack(data, every.shape), every)
    assert not np.array_equal(WEBP.unpack(data, every.shape), every)
    audio = _data("random", (3, 10))
    np.testing.assert_array_equal(WEBP_RAW.unpack(WEBP_RAW.pack(audio), audio.shape), audio)
    with pytest.raises(ValueError, match="offset"):
        to_canvas(z, offset=5)


def test_hostile_channel_count_is_refused_quickly() -> None:
    with pytest.raises(FormatError, match="channels"):
        layout((MAX_CHANNELS + 1, 1, 1))
    with pytest.raises(FormatError, match="channels"):
        unpack(b"", (2**27, 1, 1))
