"""Golden bitstreams (tests/golden): encoding and decoding still match bit for bit.

A change to the wavelets, the layout, the companding or the entropy coder that alters what a
``.wlc`` file means fails here even when the weights hash stays the same. Regenerate only on
purpose: ``python tests/golden/make.py --regenerate --reason "..."``. Torch runs on one thread
here: decoded samples can differ by one LSB between thread counts.
"""

import hashlib
import importlib.util
from pathlib import Path

import pytest

from pywalloc import api, zoo

HERE = Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("golden_make", HERE / "make.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)
ENTRIES = golden.load_index()["entries"]


@pytest.fixture
def archive_path(monkeypatch):
    """Older golden files name weights retired from the package: find them in the archive."""
    monkeypatch.setenv(zoo.PATH_ENV, str(golden.ARCHIVE))


def test_every_bundled_preset_has_a_golden_file():
    have = {(e["preset"], e["weights_hash"], e.get("input", ""), e.get("entropy", 1))
            for e in ENTRIES}
    for preset in zoo.available():
        codec = zoo.load(preset, frozen=True)
        current, coder = codec.weight_hash, codec.preset.entropy
        assert (preset, current, "", coder) in have, \
            f"no golden file for {preset} weights {current}, entropy {coder}"
        if preset in golden.GRAY_COUNTERPART:  # gray through the RGB codec: the old gray path
            assert (preset, current, "gray", coder) in have, f"no gray golden file for {preset}"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_golden_decode_and_encode(entry, one_thread, archive_path):
    blob = (HERE / entry["file"]).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == entry["wlc_sha256"], "golden file altered"
    decoded = api.decode_blob(blob).data
    assert golden.digest(decoded) == entry["decoded_sha256"], "decoded output changed"
    codec = zoo.find(entry["preset"], entry["weights_hash"])  # older weights too
    data, extra = golden.golden_input(entry["preset"], entry.get("input", ""))
    again = api.encode(data, codec, entropy_id=entry.get("entropy", 1), **extra).blob
    assert again == blob, "encoder output changed"
