"""The README's code blocks run verbatim, in order, in a temporary folder.

A block is skipped only when the line before its opening fence is
``<!-- readme-test: skip: REASON -->`` (REASON must be given: installs, or needs data sets and
long runs). Files the examples name (``photo.png``, ``song.flac``, ``photos/``) are copied
there from the bundled samples first; ``walloc`` runs this checkout's code.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "pywalloc" / "samples"
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!-- readme-test: skip: (\S.*\S) -->$")


def readme_blocks(text: str) -> list[tuple[str, str, str | None, int]]:
    """(language, code, skip reason or None, line number) of each fenced block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = _SKIP.match(prev.strip())
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        blocks.append((lang, "\n".join(body) + "\n", skip.group(1) if skip else None,
                       start + 1))
        i += 1
    return blocks


def test_skip_markers_are_parsed_and_need_a_reason():
    text = ("<!-- readme-test: skip: needs data -->\n```bash\nfalse\n```\n\n"
            "<!-- readme-test: skip -->\n```bash\ntrue\n```\n")
    (lang, code, reason, _), (_, _, reason2, _) = readme_blocks(text)
    assert (lang, code, reason, reason2) == ("bash", "false\n", "needs data", None)


def _workdir(tmp: Path) -> dict:
    shutil.copy(SAMPLES / "kodim23.png", tmp / "photo.png")
    shutil.copy(SAMPLES / "chimes.flac", tmp / "song.flac")
    (tmp / "photos").mkdir()
    shutil.copy(SAMPLES / "kodim23.png", tmp / "photos" / "a.png")
    bin_dir = tmp / ".bin"
    bin_dir.mkdir()
    shim = bin_dir / "walloc"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pywalloc "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PYTHONPATH": str(ROOT),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.slow
def test_readme_examples_run(tmp_path):
    blocks = readme_blocks((ROOT / "README.md").read_text())
    runnable = [b for b in blocks if b[2] is None]
    assert runnable, "the README has no runnable examples"
    env = _workdir(tmp_path)
    for lang, code, _, line in runnable:
        if lang == "bash":
            cmd = ["bash", "-euo", "pipefail", "-c", code]
        elif lang == "python":
            cmd = [sys.executable, "-c", code]
        else:
            continue
        res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                             check=False, timeout=900)
        assert res.returncode == 0, f"README block at line {line} failed:\n{res.stderr[-3000:]}"


def test_codec_table_matches_the_model_card():
    """README's "Which codec do I want?" table states each bundled default's rate and PSNR as
    the model card last measured them (docs/models_figures.json), rounded as printed there:
    bpp to 0.01, kbit/s to 1, dB to 0.1. A ship that forgets the README fails here."""
    import json

    card = json.loads((ROOT / "docs" / "models_figures.json").read_text())
    rows = {r["codec"]: r for r in card["images"] + card["audio"]}
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Which codec do I want?"):text.index("## Where the codecs stand")]
    seen = set()
    for line in table.splitlines():
        m = re.match(r"\| [^|]+ \| `([\w-]+)`[^|]* \| ([\d.]+) (bpp|kbit/s) \| ([\d.]+) dB", line)
        if not m:
            continue
        codec, rate, unit, psnr = m.group(1), float(m.group(2)), m.group(3), float(m.group(4))
        row = rows[codec]
        want = round(row["bpp"], 2) if unit == "bpp" else round(row["kbps"])
        assert rate == want, f"README says {codec} at {rate} {unit}; the model card {want}"
        assert psnr == round(row["psnr"], 1), f"README says {codec} {psnr} dB; the card {row['psnr']:.2f}"
        seen.add(codec)
    assert seen == set(rows), f"codecs missing from the README table: {set(rows) - seen}"
