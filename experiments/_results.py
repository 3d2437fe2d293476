"""Shared by the experiment scripts: the environment record and the JSON + Markdown output."""

from __future__ import annotations

import json
import os
import platform
import sys
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


def load_parts(files: list[Path], prog: str, keep: tuple[str, ...]) -> list[dict] | None:
    """The result files of one-seed runs of one configuration, for ``--combine``; None (after a
    ``PROG: ...`` line on stderr) if one cannot be read or their settings (less ``keep``) or
    codec weights differ."""
    parts = []
    for f in files:
        try:
            parts.append(json.loads(f.read_text()))
        except (OSError, ValueError) as exc:
            print(f"{prog}: cannot read {f}: {exc}", file=sys.stderr)
            return None
    same = [{k: v for k, v in p["config"].items() if k not in keep} for p in parts]
    if any(c != same[0] for c in same) or any(p["codecs"] != parts[0]["codecs"] for p in parts):
        print(f"{prog}: the runs differ in settings or codec weights", file=sys.stderr)
        return None
    return parts


def combined(parts: list[dict], files: list[Path], runs: list[dict], seeds: list[int],
             summary: dict) -> dict:
    """The result of several runs: the first run's record with every run, the seeds, the
    summary, all commands and the longest wall time."""
    return {**parts[0], "command": " + ".join(p["command"] for p in parts),
            "seeds_done": sorted(seeds), "runs": runs, "summary": summary,
            "wall_seconds": max(p["wall_seconds"] for p in parts),
            "combined_from": [str(f) for f in files]}
