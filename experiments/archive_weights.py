"""Retire replaced weights from the package into the repository, to make room in the bundle.

    python experiments/archive_weights.py stereo-20x-small-finetune45 --reason "..."

The bundled weights have a budget (60 MB, see experiments/bundle_weights.py). Every replaced
default stays bundled as a legacy alias so that old ``.wlc`` files decode, and the bundle fills
up. This moves one legacy alias (``pywalloc/weights/legacy/NAME.alias.json`` and its delta or
overrides file) out of the package:

- writes ``weights-archive/<preset>-<hash>.safetensors.xz`` (fp16, xz, config in its metadata)
  and its JSON sidecar, and checks that the file has the alias's weights hash (a file that
  named the alias decodes bit for bit the same with it);
- adds the hash to ``pywalloc/weights/archived.json``, so that decoding such a file without it
  says where the weights are;
- removes the alias and its files from the package.

It refuses an alias that another bundled alias is built on (re-base that one first) and a
preset's current default. Old files then decode with ``walloc decode --weights
weights-archive/FILE`` or with ``PYWALLOC_WEIGHTS_PATH=weights-archive``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pywalloc import zoo
from pywalloc.errors import WallocError
from pywalloc.media import atomic_write

ARCHIVE = ROOT / "weights-archive"


def _dependents(alias: Path) -> list[str]:
    """Bundled aliases whose target is ``alias``."""
    return sorted(other.name for other in zoo.bundled_files()
                  if other.name.endswith(zoo.ALIAS_SUFFIX) and other != alias
                  and zoo.alias_spec(other).target.resolve() == alias.resolve())


def archive(name: str, reason: str, folder: Path = ARCHIVE,
            index: Path = zoo.ARCHIVED_INDEX, today: str | None = None) -> Path:
    """Move legacy alias ``name`` into ``folder``; the archived file."""
    alias = zoo.LEGACY_DIR / f"{name}{zoo.ALIAS_SUFFIX}"
    if not alias.is_file():
        raise ValueError(f"no bundled legacy alias {alias.name}")
    users = _dependents(alias)
    if users:
        raise ValueError(f"{alias.name} is the target of {', '.join(users)}: re-base those first")
    spec = zoo.alias_spec(alias)
    want = zoo.file_hash(alias)
    codec = zoo.load(alias)
    preset = codec.config.preset
    meta = json.loads(alias.read_text())
    today = today or datetime.date.today().isoformat()
    info = {**(meta.get("info") or {}), "was": f"pywalloc/weights/legacy/{alias.name}",
            "retired": today, "reason": reason}
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / f"{preset}-{want}{zoo.XZ_SUFFIX}"
    codec.save(dst, half=True, extra=info)
    got = zoo.file_hash(dst)
    if got != want:
        dst.unlink()
        raise ValueError(f"the fp16 copy of {alias.name} hashes to {got}, not {want}: not archived")
    zoo.write_sidecar(dst, asdict(codec.config), info, weights_hash=want)
    entries = zoo.archived()
    entries[want] = {"preset": preset, "file": dst.relative_to(ROOT).as_posix()
                     if dst.is_relative_to(ROOT) else str(dst),
                     "retired": today, "reason": reason}
    body = {"about": "weights retired from the package; experiments/archive_weights.py",
            "weights": dict(sorted(entries.items()))}
    atomic_write(index, (json.dumps(body, indent=2) + "\n").encode(), "archive index")
    for part in (alias, spec.delta, spec.overrides):  # last: a stop before leaves both copies
        if part is not None and part.is_file():
            part.unlink()
    return dst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", help="legacy alias name, without .alias.json")
    ap.add_argument("--reason", required=True, help="why it leaves the package")
    args = ap.parse_args(argv)
    try:
        dst = archive(args.name, args.reason)
    except (WallocError, OSError, ValueError) as exc:
        print(f"archive_weights.py: {exc}", file=sys.stderr)
        return 2
    print(f"{dst.relative_to(ROOT)}: {dst.stat().st_size / 1e6:.2f} MB, weights hash "
          f"{zoo.file_hash(dst)}; bundle now "
          f"{sum(r['bytes'] for r in zoo.bundled_weights()) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
