"""The decoder sizes table: ``medium`` sits between ``small`` and ``paper`` and is position-local."""

from __future__ import annotations

import pytest
import torch

from pywalloc.codec import Codec
from pywalloc.errors import WeightsNotFoundError
from pywalloc.presets import SIZES
from pywalloc.zoo import load, weights_path


@pytest.mark.parametrize("preset", ["rgb-16x", "stereo-20x"])
def test_medium_is_between_small_and_paper(preset):
    counts = {s: Codec(preset, s).num_parameters() for s in ("small", "medium", "paper")}
    assert counts["small"] < counts["medium"] < counts["paper"]


def test_medium_uses_channel_norm_and_decodes():
    for modality, sizes in SIZES.items():
        assert sizes["medium"].norm == "channel", modality
    codec = Codec("rgb-16x", "medium").eval()
    z = torch.randint(-20, 21, (1, 12, 3, 5), dtype=torch.int8)
    with torch.inference_mode():
        x = codec.decode(z, (20, 37))
    assert x.shape == (1, 3, 20, 37) and torch.isfinite(x).all()


def test_medium_survives_save_and_load(tmp_path):
    codec = Codec("stereo-20x", "medium")
    codec.save(tmp_path / "m.safetensors", half=False)
    again = Codec.from_file(tmp_path / "m.safetensors")
    assert again.size_spec == codec.size_spec
    assert again.weight_hash == codec.weight_hash


def test_medium_without_weights_is_a_clear_error():
    if weights_path("rgb-16x", "medium").is_file():
        pytest.skip("medium weights are bundled")
    with pytest.raises(WeightsNotFoundError, match="medium"):
        load("rgb-16x", "medium")
