"""Shared by the experiment scripts: the environment record and the JSON + Markdown output."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
from pathlib import Path

import torch


def add_merge_options(ap) -> None:
    """The ``--combine`` and ``--compare`` options that classify.py and read_text.py share."""
    ap.add_argument("--combine", type=Path, nargs="+", metavar="JSON",
                    help="merge the results (JSON files) of runs made with the same settings "
                         "but different --seeds (e.g. one process per seed) into --out")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="paired change of the variants two runs (JSON files, made with other "
                         "codec weights) share: AFTER minus BEFORE, per seed; FILE:VARIANT "
                         "pairs two named variants instead (e.g. new latents against an older "
                         "run's resize)")


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


def interval(diffs: list[float]) -> dict:
    """Mean, std and 95 % t interval of paired (same seed) differences (``lo`` and ``hi`` are
    NaN for one seed)."""
    from scipy.stats import t as student

    m = statistics.mean(diffs)
    if len(diffs) < 2:
        return {"mean": m, "std": 0.0, "lo": float("nan"), "hi": float("nan"), "n": len(diffs)}
    s = statistics.stdev(diffs)
    h = float(student.ppf(0.975, len(diffs) - 1)) * s / math.sqrt(len(diffs))
    return {"mean": m, "std": s, "lo": m - h, "hi": m + h, "n": len(diffs)}


def _file_and_variant(arg: str | Path) -> tuple[Path, str | None]:
    """``FILE`` or ``FILE:VARIANT`` (a path that exists as written is always a file)."""
    text = str(arg)
    if Path(text).exists() or ":" not in text:
        return Path(text), None
    path, variant = text.rsplit(":", 1)
    return Path(path), variant


def compare(files: list, prog: str, keep: tuple[str, ...], metrics: dict[str, str]) -> int:
    """``--compare BEFORE AFTER``: the paired (same seed) change, AFTER minus BEFORE, of each
    variant the two runs share, per metric (result key -> label). With ``BEFORE:VARIANT
    AFTER:VARIANT`` it pairs the two named variants instead, e.g. the latents of a run with new
    codec weights against resize of an older run (inputs that do not depend on the codec). The
    runs may differ in codec weights and in the settings named in ``keep``, nothing else.
    Prints a Markdown table."""
    named = [_file_and_variant(f) for f in files]
    files = [f for f, _ in named]
    chosen = [v for _, v in named]
    if (chosen[0] is None) != (chosen[1] is None):
        print(f"{prog}: name a variant for both runs (FILE:VARIANT) or for neither",
              file=sys.stderr)
        return 2
    parts = []
    for f in files:
        try:
            parts.append(json.loads(Path(f).read_text()))
        except (OSError, ValueError) as exc:
            print(f"{prog}: cannot read {f}: {exc}", file=sys.stderr)
            return 2
    try:
        same = [{k: v for k, v in p["config"].items() if k not in keep} for p in parts]
        by = [{(r["variant"], r["seed"]): r for r in p["runs"]} for p in parts]
        if any(key not in r for b in by for r in b.values() for key in metrics):
            raise KeyError("metric")
    except (KeyError, TypeError, AttributeError):
        print(f"{prog}: {' or '.join(map(str, files))} is not a {prog} result file",
              file=sys.stderr)
        return 2
    if same[0] != same[1]:
        print(f"{prog}: the runs differ in settings other than the codecs", file=sys.stderr)
        return 2
    if chosen[0] is not None:
        for f, v, b in zip(files, chosen, by):
            if not any(w == v for w, _ in b):
                print(f"{prog}: {f} has no variant {v}", file=sys.stderr)
                return 2
        pairs = [(chosen[0], chosen[1])]
    else:
        pairs = [(v, v) for v in dict.fromkeys(r["variant"] for r in parts[0]["runs"])]
    seeds_of = {(va, vb): sorted(s for (w, s) in by[0] if w == va and (vb, s) in by[1])
                for va, vb in pairs}
    if not any(seeds_of.values()):
        print(f"{prog}: the runs share no variant and seed", file=sys.stderr)
        return 2
    lines = [f"Codecs: {parts[0]['codecs']} -> {parts[1]['codecs']}", "",
             "| variant | metric | before | after | change (95 % CI) | seeds |",
             "|---|---|---|---|---|---|"]
    for (va, vb), seeds in seeds_of.items():
        label_v = va if va == vb else f"{vb} (after) - {va} (before)"
        for key, label in metrics.items() if seeds else ():
            a = [by[0][(va, s)][key] for s in seeds]
            b = [by[1][(vb, s)][key] for s in seeds]
            d = interval([y - x for x, y in zip(a, b)])
            ci = f" [{d['lo']:+.1f}, {d['hi']:+.1f}]" if math.isfinite(d["lo"]) else ""
            lines.append(f"| {label_v} | {label} | {statistics.mean(a):.1f} | "
                         f"{statistics.mean(b):.1f} | {d['mean']:+.1f}{ci} | {len(seeds)} |")
    print("\n".join(lines))
    return 0
