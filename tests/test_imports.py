"""Every module imports on its own in a fresh interpreter: no import loops, no hidden order."""

import os
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pywalloc

ROOT = Path(pywalloc.__file__).resolve().parent.parent


def _modules() -> list[str]:
    names = ["pywalloc"]
    for info in pkgutil.walk_packages(pywalloc.__path__, "pywalloc."):
        if not info.name.endswith("__main__"):  # runs the trainer on import
            names.append(info.name)
    return names


def test_every_module_imports_alone():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(name: str) -> tuple[str, int, str]:
        res = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                             text=True, env=env, timeout=300, check=False)
        return name, res.returncode, res.stderr.strip().splitlines()[-1:] and res.stderr

    modules = _modules()
    assert "pywalloc.zoo" in modules and "pywalloc.modality" in modules
    with ThreadPoolExecutor(max_workers=4) as pool:
        failed = [(n, err) for n, rc, err in pool.map(run, modules) if rc != 0]
    assert failed == []
