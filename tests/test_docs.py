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
