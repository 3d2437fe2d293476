"""Keep, in git but outside the package, a trained run that beat the shipped weights without
clearing the bar to ship, so that a later session on another machine can go on from it.

    python experiments/keep_candidate.py PRESET RUN/PRESET/model.safetensors --note "..."

Training runs live in ``runs/`` (ignored) and die with the machine; a chain of CPU runs that
gains a little per session is lost when the next session starts elsewhere. This writes
``experiments/candidates/<preset>-<hash>.safetensors.xz`` (fp16, xz, the config in its metadata:
any ``--init`` reads it) and a JSON sidecar (the config, the source file's hash, the note: its
recipe and scores), and removes older candidates of the same preset (git history keeps them), so
the folder holds at most one per preset. It is not bundled: ``import pywalloc`` never sees it.
Go on from it with ``INIT_PATTERN=experiments/candidates/%s-<hash>.safetensors.xz``.

``--int8`` keeps the decoder CNN as int8, the form the defaults ship in (``bundle_weights.py
--int8``, ``int8_weights.py``): about half the bytes in git, and the kept file's hash is the
hash scored as it would ship (quantising it again gives the same weights, so a ship from it
keeps that hash).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pywalloc import zoo
from pywalloc.codec import Codec
from pywalloc.errors import WallocError

FOLDER = ROOT / "experiments" / "candidates"
LIMIT_MB = 10  # per candidate: a stereo-20x in fp16 packs to about 7 MB


def keep(preset: str, source: Path, note: str, folder: Path = FOLDER, int8: bool = False) -> Path:
    """Write the candidate and its sidecar, drop the preset's older ones; the new file."""
    codec = Codec.from_file(source)
    if codec.config.preset != preset:
        raise ValueError(f"{source} holds {codec.config.preset} weights, not {preset}")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{preset}-new.safetensors.xz"
    info = {"source": str(source), "source_hash": codec.weight_hash, "note": note}
    codec.save(tmp, half=True, extra=info, int8=int8)
    size = tmp.stat().st_size
    if size > LIMIT_MB * 1e6:
        tmp.unlink()
        raise ValueError(f"{preset} candidate is {size / 1e6:.1f} MB packed, over the "
                         f"{LIMIT_MB} MB a candidate may take")
    digest = zoo.file_hash(tmp)
    dst = folder / f"{preset}-{digest}.safetensors.xz"
    tmp.replace(dst)  # in place before the older ones go: a stop in between loses nothing
    for old in folder.glob(f"{preset}-*"):
        if old.name.split(".")[0] != dst.name.split(".")[0]:
            old.unlink()
    zoo.write_sidecar(dst, asdict(codec.config), info, weights_hash=digest)
    return dst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("preset")
    ap.add_argument("weights", type=Path, help="the run's model.safetensors")
    ap.add_argument("--note", required=True, help="recipe and scores, for the sidecar")
    ap.add_argument("--folder", type=Path, default=FOLDER)
    ap.add_argument("--int8", action="store_true",
                    help="the decoder CNN as int8, as the defaults ship (half the bytes)")
    args = ap.parse_args(argv)
    try:
        dst = keep(args.preset, args.weights, args.note, args.folder, args.int8)
    except (WallocError, OSError, ValueError) as exc:
        print(f"keep_candidate.py: {exc}", file=sys.stderr)
        return 2
    print(f"{dst.relative_to(ROOT) if dst.is_relative_to(ROOT) else dst}: "
          f"{dst.stat().st_size / 1e6:.2f} MB, weights hash {zoo.file_hash(dst)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
