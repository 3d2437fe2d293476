"""The light subcommands never import torch (the timing itself is benchmarks/startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import sys\nfrom pywalloc.cli import main\n"
         "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
         "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)\n"
         "sys.exit(code)\n")


@pytest.fixture(scope="module")
def wlc(tmp_path_factory):
    import pywalloc

    path = tmp_path_factory.mktemp("wlc") / "x.wlc"
    path.write_bytes(pywalloc.compress(np.full((16, 24, 3), 100, np.uint8)))
    return path


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["info", "WLC"],
                                  ["info", "--json", "WLC"], ["models"], ["encode", "--help"],
                                  ["train", "--help"], ["eval", "--help"]])
def test_light_commands_do_not_import_torch(args, wlc):
    args = [str(wlc) if a == "WLC" else a for a in args]
    res = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         check=False, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines()[-1] == "no torch"


def test_package_import_is_lazy_but_complete():
    code = ("import sys, pywalloc\nassert 'torch' not in sys.modules\n"
            "assert callable(pywalloc.compress) and pywalloc.Codec.__name__ == 'Codec'\n"
            "assert set(pywalloc.__all__) <= set(dir(pywalloc))\n"
            "assert not {'importlib', 'Any', 'TYPE_CHECKING'} & set(dir(pywalloc))\n"
            "import pywalloc.training as t, pywalloc.learning as l\n"
            "assert t.TrainConfig and callable(t.train) and l.LatentDataset\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr


def test_train_help_reads_as_sentences():
    from pywalloc.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for raw in ("(default: None)", "lr (default", "batch (default", "LOG_EVERY", "WEIGHT_DECAY"):
        assert raw not in text
    assert "--lr LR" in text and "peak learning rate" in text
