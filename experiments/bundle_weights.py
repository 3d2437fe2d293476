"""Ship a trained codec as a preset's bundled default weights (fp16), keeping the old ones.

    python experiments/bundle_weights.py PRESET RUN/model.safetensors --legacy-name NAME
        [--recipe "experiments/train_flat.sh"] [--dry-run]

- The current default ``pywalloc/weights/<preset>-small.safetensors`` (and its ``.json``) moves
  to ``pywalloc/weights/legacy/<preset>-small-<NAME>.safetensors``: files made with it still
  decode (the zoo finds weights by the hash in each file's header). When a legacy file already
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
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pywalloc import zoo
from pywalloc.codec import Codec

LIMIT_MB = 60


def _tensors(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)


def _same_tensors(path: Path, legacy: Path) -> Path | None:
    """A legacy ``.safetensors`` file holding exactly the tensors of ``path``, if any."""
    import torch

    mine = _tensors(path)
    for other in sorted(legacy.glob("*.safetensors")) if legacy.is_dir() else ():
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
    legacy = folder / "legacy" / f"{args.preset}-small-{args.legacy_name}.safetensors"
    alias = legacy.with_name(legacy.name.replace(".safetensors", zoo.ALIAS_SUFFIX))
    if legacy.exists() or alias.exists():
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
        shutil.move(dst, legacy)
        if dst.with_suffix(".json").is_file():
            shutil.move(dst.with_suffix(".json"), legacy.with_suffix(".json"))
    new.save(dst, half=True, extra=info)
    dst.with_suffix(".json").write_text(
        json.dumps({"config": asdict(new.config), "info": info}, indent=2) + "\n")
    shipped = Codec.from_file(dst)
    total = sum(p.stat().st_size for p in folder.rglob("*")
                if p.suffix in (".safetensors", ".json")) / 1e6
    print(f"{args.preset}: {old_hash} -> {shipped.weight_hash} (fp16; trained {new.weight_hash}); "
          f"old weights in {legacy}; bundled total {total:.1f} MB "
          f"(limit {LIMIT_MB})")
    return 0 if total < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
