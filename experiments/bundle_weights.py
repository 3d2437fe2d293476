"""Ship a trained codec as a preset's bundled default weights (fp16), keeping the old ones.

    python experiments/bundle_weights.py PRESET RUN/model.safetensors --legacy-name NAME
        [--recipe "experiments/train_flat.sh"] [--dry-run]

- The current default ``pywalloc/weights/<preset>-small.safetensors`` (and its ``.json``) moves
  to ``pywalloc/weights/legacy/<preset>-small-<NAME>.safetensors.xz``, compressed with xz (about
  10 % smaller; ``xz -d`` gives the file back): files made with it still decode (the zoo finds
  weights by the hash in each file's header). When a legacy file already
  holds the same tensors (the same weights under another config, e.g. another norm), the old
  default becomes ``legacy/<preset>-small-<NAME>.alias.json`` instead: its config and the name
  of that file, so the tensors are stored once.
- The trained weights are written in fp16 as the new default, with a JSON copy of the config
  and where they came from (source hash, training steps and minutes, recipe).
- Printed: the old and new weight hashes and the bundled total size (target: under 60 MB).

Decide first with ``experiments/compare_weights.py`` whether the run beats the shipped weights.
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pywalloc import zoo
from pywalloc.codec import Codec
from pywalloc.media import atomic_write

LIMIT_MB = 60


def _tensors(path: Path) -> dict:
    return zoo.read_weights(path)[1]


def _info(path: Path) -> dict:
    """The ``info`` a default's JSON records (where the weights came from), if any."""
    try:
        return json.loads(path.with_suffix(".json").read_text()).get("info", {})
    except (OSError, ValueError, AttributeError):
        return {}


def _same_tensors(path: Path, legacy: Path) -> Path | None:
    """A legacy weights file (``.safetensors`` or ``.safetensors.xz``) holding exactly the
    tensors of ``path``, if any."""
    import torch

    mine = _tensors(path)
    found = [*legacy.glob("*.safetensors"), *legacy.glob("*" + zoo.XZ_SUFFIX)]
    for other in sorted(found) if legacy.is_dir() else ():
        theirs = _tensors(other)
        if theirs.keys() == mine.keys() and all(
                theirs[k].dtype == mine[k].dtype and torch.equal(theirs[k], mine[k]) for k in mine):
            return other
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("preset")
    ap.add_argument("weights", type=Path, help="the trained model.safetensors (fp32)")
    ap.add_argument("--legacy-name", required=True,
                    help="suffix of the old default's name in weights/legacy/")
    ap.add_argument("--recipe", default="", help="the command or script that trained it")
    ap.add_argument("--dry-run", action="store_true", help="print what would happen")
    ap.add_argument("--weights-dir", type=Path, default=zoo.WEIGHTS_DIR,
                    help="the bundled weights folder (default: the package's)")
    args = ap.parse_args(argv)
    folder = args.weights_dir

    new = Codec.from_file(args.weights)
    if new.preset.name != args.preset:
        print(f"bundle_weights: error: {args.weights} is a {new.preset.name} codec",
              file=sys.stderr)
        return 2
    dst = folder / zoo.weights_path(args.preset).name
    old = Codec.from_file(dst) if dst.is_file() else None
    old_hash = old.weight_hash if old else None
    stem = folder / "legacy" / f"{args.preset}-small-{args.legacy_name}"
    legacy = stem.with_name(stem.name + zoo.XZ_SUFFIX)
    alias = stem.with_name(stem.name + zoo.ALIAS_SUFFIX)
    if legacy.exists() or alias.exists() or stem.with_name(stem.name + ".safetensors").exists():
        print(f"bundle_weights: error: {legacy} or its alias exists", file=sys.stderr)
        return 2
    same = _same_tensors(dst, folder / "legacy") if dst.is_file() else None
    info = {"source": new.weight_hash, "recipe": args.recipe}
    meta_path = args.weights.parent / "result.json"
    if meta_path.is_file():
        result = json.loads(meta_path.read_text())
        info.update({k: result[k] for k in ("step", "minutes") if k in result})
    if args.dry_run:
        where = f"{alias} (tensors in {same.name})" if same else str(legacy)
        print(f"would move {dst.name} ({old_hash}) to {where} and bundle {args.weights}")
        return 0
    if same is not None:
        alias.write_text(json.dumps({"config": asdict(old.config), "tensors": same.name},
                                    indent=2) + "\n")
        dst.unlink()
        dst.with_suffix(".json").unlink(missing_ok=True)
        legacy = alias
    elif dst.is_file():
        legacy.parent.mkdir(exist_ok=True)
        packed = lzma.compress(dst.read_bytes(), preset=9 | lzma.PRESET_EXTREME)
        atomic_write(legacy, packed, "weights")
        if zoo.file_hash(legacy) != old_hash:  # never drop the only copy of weights unchecked
            legacy.unlink()
            print(f"bundle_weights: error: {legacy} does not reproduce {old_hash}", file=sys.stderr)
            return 1
        # The config goes beside it in any case, so listing presets needs no unpacking.
        zoo.config_sidecar(legacy).write_text(
            json.dumps({"config": asdict(old.config), "info": _info(dst)}, indent=2) + "\n")
        dst.unlink()
        dst.with_suffix(".json").unlink(missing_ok=True)
    new.save(dst, half=True, extra=info)
    dst.with_suffix(".json").write_text(
        json.dumps({"config": asdict(new.config), "info": info}, indent=2) + "\n")
    shipped = Codec.from_file(dst)
    total = sum(p.stat().st_size for p in folder.rglob("*")
                if p.suffix in (".safetensors", ".xz", ".json")) / 1e6
    print(f"{args.preset}: {old_hash} -> {shipped.weight_hash} (fp16; trained {new.weight_hash}); "
          f"{f'old weights in {legacy}' if old else 'no earlier default'}; "
          f"bundled total {total:.1f} MB "
          f"(limit {LIMIT_MB})")
    return 0 if total < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
