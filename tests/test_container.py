"""The .wlc container: round trips, and FormatError (never anything else) on hostile input."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywalloc.container import MAGIC, MAX_SAMPLES, MIN_SIZE, Header, read, write
from pywalloc.errors import FormatError


def _image_header(**kw: object) -> Header:
    base = {
        "modality": "image", "preset": "rgb-16x", "weights_hash": bytes(range(8)),
        "shape": (61, 37),
        "channels": 3, "latent_shape": (12, 8, 5), "padding": (0, 3, 1, 2), "mode": "RGB",
    }
    base.update(kw)
    return Header(**base)  # type: ignore[arg-type]


def _audio_header(**kw: object) -> Header:
    base = {
        "modality": "audio", "preset": "stereo-20x", "weights_hash": b"\xff" * 8, "shape": (44100,),
        "channels": 2, "latent_shape": (27, 173), "padding": (0, 188), "sample_rate": 44100,
        "mode": "PCM_16", "gain": 0.125,
    }
    base.update(kw)
    return Header(**base)  # type: ignore[arg-type]


VALID = write(_image_header(), b"payload bytes \x00\x01\x02")


def _reseal(body: bytes) -> bytes:
    """Recompute the CRC so that a hand-crafted file reaches the field checks."""
    return body + struct.pack("<I", zlib.crc32(body))


def _craft(meta: bytes, payload: bytes = b"", modality: int = 1, version: int = 1) -> bytes:
    head = MAGIC + bytes([version, modality, 1, 0]) + struct.pack("<I", len(meta))
    return _reseal(head + meta + struct.pack("<I", len(payload)) + payload)


def _meta(preset: bytes = b"rgb-16x", mode: bytes = b"RGB", channels: int = 3, rate: int = 0,
          gain: float = 1.0, shape: tuple[int, ...] = (8, 8), pad: tuple[int, ...] = (0, 0, 0, 0),
          latent: tuple[int, ...] = (12, 1, 1)) -> bytes:
    return (
        bytes([len(preset)]) + preset + bytes([len(mode)]) + mode + b"h" * 8
        + struct.pack("<BId", channels, rate, gain)
        + bytes([len(shape)]) + struct.pack(f"<{len(shape)}I", *shape)
        + struct.pack(f"<{len(pad)}I", *pad)
        + bytes([len(latent)]) + struct.pack(f"<{len(latent)}I", *latent)
    )


@pytest.mark.parametrize("header", [_image_header(), _audio_header(), _image_header(channels=1,
                         mode="L", padding=())])
def test_roundtrip(header: Header) -> None:
    payload = bytes(range(256)) * 3
    got, data = read(write(header, payload))
    assert got == header and data == payload


def test_layout_starts_with_magic_and_version() -> None:
    assert VALID[:5] == b"\x89WLC\x01"
    assert len(write(_image_header(), b"")) >= MIN_SIZE
    assert zlib.crc32(VALID[:-4]) == struct.unpack("<I", VALID[-4:])[0]


def test_weights_hash_accepts_hex_string() -> None:
    h = _image_header(weights_hash="0123456789abcdef")
    assert h.weights_hash == bytes.fromhex("0123456789abcdef")
    assert read(write(h, b""))[0].weights_hash.hex() == "0123456789abcdef"
    with pytest.raises(ValueError, match="hash"):
        write(_image_header(weights_hash="zz"), b"")


def test_empty_padding_means_zeros_and_numpy_scalars_are_accepted() -> None:
    import numpy as np
    h = _image_header(padding=(), shape=[np.int64(61), 37], gain=np.float32(1.0))
    assert h.padding == (0, 0, 0, 0) and h.shape == (61, 37) and h.gain == 1.0
    assert read(write(h, b""))[0] == h


@pytest.mark.parametrize("kw, match", [
    ({"modality": "video"}, "modality"),
    ({"preset": ""}, "preset"),
    ({"preset": "x" * 65}, "preset"),
    ({"preset": "bad\nname"}, "preset"),
    ({"weights_hash": b"123"}, "hash"),
    ({"shape": (0, 5)}, "shape"),
    ({"shape": (5,)}, "shape"),
    ({"shape": (2**15, 2**14)}, "above"),
    ({"padding": (0, 0, 0, -1)}, "padding"),
    ({"latent_shape": (12, 8)}, "latent"),
    ({"channels": 2}, "channels"),
    ({"sample_rate": 44100}, "sample rate"),
    ({"gain": float("nan")}, "gain"),
    ({"gain": 0.0}, "gain"),
    ({"entropy": 9}, "entropy"),
])
def test_write_rejects_invalid_headers(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        write(_image_header(**kw), b"")


def test_write_rejects_invalid_audio_headers() -> None:
    with pytest.raises(ValueError, match="sample rate"):
        write(_audio_header(sample_rate=0), b"")
    with pytest.raises(ValueError, match="channels"):
        write(_audio_header(channels=3), b"")


@pytest.mark.parametrize("blob, match", [
    (b"", "truncated"),
    (b"\x89WL", "truncated"),
    (b"PK\x03\x04" + bytes(40), "magic"),
    (b"RIFF" + bytes(40), "magic"),
    (MAGIC + b"\x02" + VALID[5:], "version"),
    (VALID + b"\x00", "unexpected bytes"),
    (VALID[:-1], "truncated"),
    (VALID[:8] + struct.pack("<I", 10**6) + VALID[12:], "implausible"),
])
def test_read_reports_what_is_wrong(blob: bytes, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        read(blob)


def test_payload_length_past_the_end() -> None:
    meta_len = struct.unpack_from("<I", VALID, 8)[0]
    at = 12 + meta_len
    blob = VALID[:at] + struct.pack("<I", 2**32 - 1) + VALID[at + 4 :]
    with pytest.raises(FormatError, match="truncated"):
        read(blob)


@pytest.mark.parametrize("meta, modality, match", [
    (_meta(), 1, None),  # the crafting helpers themselves produce a valid file
    (_meta(preset=b"\xff\xfe"), 1, "UTF-8"),
    (_meta(mode=b"\xc3"), 1, "UTF-8"),
    (_meta(shape=(2**16, 2**16)), 1, "above"),
    (_meta(latent=(255, 2**16, 2**16)), 1, "above"),
    (_meta(pad=(0, 2**31, 0, 0)), 1, "above"),
    (_meta(shape=(8,)), 1, "rank"),
    (_meta(latent=(12, 1)), 1, "rank"),
    (_meta() + b"\x00", 1, "unexpected bytes"),
    (_meta()[:-3], 1, "past the end"),
    (_meta(), 3, "modality"),
    (_meta(gain=float("inf")), 1, "gain"),
    (_meta(channels=7), 1, "channels"),
    (_meta(shape=(100,), pad=(0, 0), latent=(27, 1), channels=2, rate=0), 2, "sample rate"),
    (_meta(shape=(100,), pad=(0, 0), latent=(27, 1), channels=2, rate=10**9), 2, "sample rate"),
])
def test_hostile_metadata_with_valid_crc(meta: bytes, modality: int, match: str | None) -> None:
    blob = _craft(meta, modality=modality)
    if match is None:
        assert read(blob)[0].shape == (8, 8)
        return
    with pytest.raises(FormatError, match=match):
        read(blob)


def test_reserved_byte_and_unknown_entropy_coding() -> None:
    body = bytearray(VALID[:-4])
    body[7] = 1
    with pytest.raises(FormatError, match="reserved"):
        read(_reseal(bytes(body)))
    body[7], body[6] = 0, 3  # ids 1 and 2 exist
    with pytest.raises(FormatError, match="entropy"):
        read(_reseal(bytes(body)))


def test_every_truncation_fails_cleanly() -> None:
    for n in range(len(VALID)):
        with pytest.raises(FormatError):
            read(VALID[:n])


def test_every_single_bit_flip_is_detected() -> None:
    for i in range(len(VALID) * 8):
        blob = bytearray(VALID)
        blob[i // 8] ^= 1 << (i % 8)
        with pytest.raises(FormatError):
            read(bytes(blob))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_format_error(blob: bytes) -> None:
    with pytest.raises(FormatError):
        read(blob)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_after_magic_raise_format_error(tail: bytes) -> None:
    with pytest.raises(FormatError):
        read(MAGIC + b"\x01" + tail)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(VALID) * 8 - 1), min_size=1, max_size=8, unique=True))
def test_random_multi_bit_flips_raise_format_error(bits: list[int]) -> None:
    blob = bytearray(VALID)
    for i in bits:
        blob[i // 8] ^= 1 << (i % 8)
    with pytest.raises(FormatError):
        read(bytes(blob))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_metadata_with_valid_crc_never_crashes(meta: bytes) -> None:
    try:
        header, _ = read(_craft(meta))
    except FormatError:
        return
    assert write(header, b"") == _craft(meta)  # anything accepted must be canonical


_texts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn")),
                 max_size=16).filter(lambda s: s.isprintable() and len(s.encode()) <= 16)


@settings(max_examples=200, deadline=None)
@given(
    image=st.booleans(),
    preset=_texts.filter(bool),
    mode=_texts,
    whash=st.binary(min_size=8, max_size=8),
    dims=st.lists(st.integers(1, 4096), min_size=3, max_size=3),
    pads=st.lists(st.integers(0, 300), min_size=4, max_size=4),
    gain=st.floats(min_value=1e-30, max_value=1e30),
    rate=st.integers(1, 1_000_000),
    payload=st.binary(max_size=64),
)
def test_random_valid_headers_roundtrip(image: bool, preset: str, mode: str, whash: bytes,
                                        dims: list[int], pads: list[int], gain: float, rate: int,
                                        payload: bytes) -> None:
    if image:
        h = Header("image", preset, whash, tuple(dims[:2]), 3, (dims[2], 3, 4), tuple(pads),
                   0, mode, gain)
    else:
        h = Header("audio", preset, whash, (dims[0] * dims[1],), 1, (dims[2], 9), tuple(pads[:2]),
                   rate, mode, gain)
    got, data = read(write(h, payload))
    assert got == h and data == payload


def test_cap_is_on_values_not_on_bytes() -> None:
    # The largest allowed geometry is fine; one more pixel row is not.
    side = 2**14
    write(_image_header(shape=(side, MAX_SAMPLES // side), padding=()), b"")
    with pytest.raises(ValueError, match="above"):
        write(_image_header(shape=(side + 1, MAX_SAMPLES // side), padding=()), b"")
