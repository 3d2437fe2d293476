"""docs/ is written for users: no notes meant for the developers of this project."""

from pathlib import Path

import pytest

DOCS = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))
# Phrases of development-internal notes: the issue tracker's bars, a lent GPU, the data folder
# beside the repository.
INTERNAL = ("the issue's", "issue's bar", "lent for this session", "../shared", "borrowed")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_have_no_internal_notes(path):
    text = path.read_text().lower()
    assert not [p for p in INTERNAL if p in text]


def test_model_card_glance_matches_the_bundled_weights():
    """docs/models.md opens with a table of the bundled defaults; each row's weights hash,
    PSNR (to 0.01 dB) and rate (bpp to 0.001, kbit/s to 0.1) must be the figures recorded
    beside that codec's weights file (``zoo.measured``, which is None for a file they were not
    measured on), and the bundle's size the one on disk: a ship that forgets the table fails."""
    import re

    from pywalloc import zoo

    text = (DOCS[0].parent / "models.md").read_text()
    glance = text[text.index("## At a glance"):text.index("## The bundle and how it is stored")]
    seen = set()
    for line in glance.splitlines():
        m = re.match(r"\| `([\w-]+)` \| `([0-9a-f]{16})` \| ([\d.]+) dB \| ([\d.]+) (bpp|kbit/s) \|",
                     line)
        if not m:
            continue
        codec, digest, psnr, rate, unit = m.groups()
        rec = zoo.measured(codec)
        assert rec is not None, f"no figures recorded for {codec}'s bundled weights"
        assert digest == rec["weights_hash"], (codec, digest, rec["weights_hash"])
        assert float(psnr) == round(rec["psnr_db"], 2), (codec, psnr, rec["psnr_db"])
        want = round(rec["bpp"], 3) if unit == "bpp" else round(rec["kbps"], 1)
        assert float(rate) == want, (codec, rate, want)
        seen.add(codec)
    assert seen == set(zoo.available()), seen
    # what the budget counts (tests/test_zoo.py, experiments/bundle_weights.py): every file
    total = sum(p.stat().st_size for p in zoo.WEIGHTS_DIR.rglob("*") if p.is_file())
    m = re.search(r"All bundled\s+weights together, the replaced ones included: \*\*([\d.]+) MB\*\*",
                  glance)
    assert m and float(m.group(1)) == round(total / 1e6, 1), (m and m.group(1), total)
