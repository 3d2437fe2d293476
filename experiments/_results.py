"""Shared by the experiment scripts: the environment record and the JSON + Markdown output."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch


def environment(threads: int) -> dict:
    return {"torch": torch.__version__, "threads": threads, "machine": platform.machine(),
            "cpus": os.cpu_count()}


def write(out: Path, name: str, result: dict, table: str) -> None:
    """``OUT/NAME.json`` with every number, ``OUT/NAME.md`` with the command and the table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    (out / f"{name}.md").write_text(
        f"Command: `{result['command']}` — wall time {result['wall_seconds'] / 60:.1f} min "
        f"({result['threads']} torch thread(s), {result['cpus']} CPUs)\n\n" + table)
    print(table)
