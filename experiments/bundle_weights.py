"""Ship a trained codec as a preset's bundled default weights (fp16), keeping the old ones.

    python experiments/bundle_weights.py PRESET RUN/model.safetensors --legacy-name NAME
        [--recipe "experiments/train_flat.sh"] [--dry-run]

- The current default ``pywalloc/weights/<preset>-small.safetensors.xz`` (or a plain
  ``.safetensors`` one, and its ``.json``) moves to
  ``pywalloc/weights/legacy/<preset>-small-<NAME>.safetensors.xz`` (``xz -d`` gives the file
  back): files made with it still decode (the zoo finds weights by the hash in each file's
  header). When a legacy file already
  holds the same tensors (the same weights under another config, e.g. another norm), the old
  default becomes ``legacy/<preset>-small-<NAME>.alias.json`` instead: its config and the name
  of that file, so the tensors are stored once. When one holds nearly the same tensors (at
  most 5 % of the values differ, e.g. a few norm parameters), the alias also names a
  ``.overrides.safetensors`` file with just the tensors that differ.
  When the old default has the new one's tensor names and shapes (another training of the
  same architecture), it is stored as ``legacy/<preset>-small-<NAME>.alias.json`` naming the new
  default plus ``.delta.xz`` delta planes against it, if that is smaller than xz of the file
  (it usually is, by 11-35 %: see ``pywalloc.zoo``; an int8 default against an int8 one, as
  int8 steps against the stored tensors: about half).
- The trained weights are written in fp16 as the new default, xz-compressed
  (``zoo.xz_pack``), with a JSON copy of the config and where they came from (source hash,
  training steps and minutes, recipe).
- Printed: the old and new weight hashes and the bundled total size (target: under 60 MB).

Decide first with ``experiments/compare_weights.py`` whether the run beats the shipped weights.

    python experiments/bundle_weights.py --dedupe [--dry-run]

rewrites every legacy weights file that nearly duplicates another legacy file, or a current
default, as such an alias (checking that the alias reproduces the file's hash before deleting
it; an alias of a default names it as ``../<preset>-small.safetensors.xz``). When a default that
legacy aliases name is replaced, it moves to ``legacy/`` as above and those aliases are
rewritten to name it there, each checked against its hash. Then every legacy file left that has
its preset's default tensor names and shapes becomes delta planes against that default or
another legacy file of the preset (whichever is smaller), where that is smaller than the file
(aliases that named the file are pointed at the new alias).

    python experiments/bundle_weights.py --pack-defaults [--dry-run]

rewrites every plain ``<preset>-small.safetensors`` default as ``.safetensors.xz`` (the same
bytes once unpacked, so the same hash) and points the aliases that named it at the new file.
"""

from __future__ import annotations

import argparse
import json
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
        return json.loads(zoo.config_sidecar(path).read_text()).get("info", {})
    except (OSError, ValueError, AttributeError):
        return {}


SHARE = 0.05  # an alias may override at most this fraction of the values


def _total_mb(folder: Path) -> float:
    """Size of every file under ``folder`` (tensors, xz, JSON), in MB: what the package's
    budget test counts."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _snapshot(folder: Path) -> dict[Path, bytes]:
    """Every file under ``folder`` and its bytes (the bundle is tens of MB: memory is fine)."""
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _restore(folder: Path, snap: dict[Path, bytes]) -> None:
    """Put ``folder`` back as :func:`_snapshot` saw it: new files removed, changed or removed
    ones written again (each whole, through the atomic writer)."""
    for p in [p for p in folder.rglob("*") if p.is_file() and p not in snap]:
        p.unlink()
    for p, data in snap.items():
        if not p.is_file() or p.read_bytes() != data:
            p.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(p, data, "weights")


def _legacy_files(legacy: Path) -> list[Path]:
    """The tensor-holding weights files in ``legacy`` (no aliases, no overrides)."""
    if not legacy.is_dir():
        return []
    found = [*legacy.glob("*.safetensors"), *legacy.glob("*" + zoo.XZ_SUFFIX)]
    return sorted(p for p in found if not p.name.endswith(zoo.OVERRIDES_SUFFIX))


def _differing(mine: dict, theirs: dict) -> list[str] | None:
    """Names of the tensors of ``mine`` that differ from ``theirs``; None unless both have the
    same names, shapes and dtypes."""
    import torch

    if theirs.keys() != mine.keys() or any(
            theirs[k].shape != mine[k].shape or theirs[k].dtype != mine[k].dtype for k in mine):
        return None
    return [k for k in mine if not torch.equal(theirs[k], mine[k])]


def _defaults(folder: Path) -> list[Path]:
    """The current default weights files in ``folder``, of every preset and decoder size."""
    from pywalloc.presets import SIZES

    return sorted(p for n, pre in zoo.PRESETS.items() for size in SIZES[pre.modality]
                  if (p := zoo.default_file(folder, n, size)).is_file())


def _nearest_tensors(path: Path, legacy: Path, skip=(),
                     also=()) -> tuple[Path, list[str]] | None:
    """(file, names of the tensors that differ) for the legacy weights file (or file in
    ``also``) that shares the most values with ``path``, if at most ``SHARE`` of them differ;
    legacy files win ties."""
    mine = _tensors(path)
    total = sum(t.numel() for t in mine.values())
    best = None
    for other in [*_legacy_files(legacy), *also]:
        if other == path or other in skip:
            continue
        diff = _differing(mine, _tensors(other))
        if diff is None:
            continue
        changed = sum(mine[k].numel() for k in diff)
        if changed <= SHARE * total and (best is None or changed < best[0]):
            best = (changed, other, diff)
    return None if best is None else (best[1], best[2])


def _tensors_name(alias: Path, target: Path) -> str:
    """How ``alias`` names its tensor file ``target``: beside it, or ``../`` one folder up."""
    return target.name if target.parent == alias.parent else "../" + target.name


def _part(alias: Path, suffix: str) -> Path:
    """The file beside ``alias`` that belongs to it (overrides or delta planes)."""
    return alias.with_name(alias.name[: -len(zoo.ALIAS_SUFFIX)] + suffix)


def _write_spec(alias: Path, spec: dict, want: str) -> bool:
    """Write the alias ``spec`` to ``alias``; whether it reproduces the weights hash ``want``."""
    alias.write_text(json.dumps(spec, indent=2) + "\n")
    try:
        return zoo.file_hash(alias) == want
    except zoo.WeightsFileError:
        return False


def _write_alias(alias: Path, config: dict, source: Path, target: Path, diff: list[str],
                 want: str, info: dict | None = None) -> bool:
    """Write ``alias`` (and its overrides file when ``diff`` names tensors of ``source``) on
    ``target``; keep it only if it reproduces the weights hash ``want``."""
    from safetensors.torch import save

    spec = {"config": config, "tensors": _tensors_name(alias, target)}
    over = _part(alias, zoo.OVERRIDES_SUFFIX)
    if diff:
        mine = _tensors(source)
        atomic_write(over, save({k: mine[k].contiguous() for k in diff}), "weights")
        spec["overrides"] = over.name
    if info:
        spec["info"] = info
    ok = _write_spec(alias, spec, want)
    if not ok:
        alias.unlink()
        over.unlink(missing_ok=True)
    return ok


def _aliases_of(target: Path, legacy: Path) -> list[Path]:
    """The legacy aliases whose tensors are ``target``."""
    if not legacy.is_dir():
        return []
    return sorted(a for a in legacy.glob("*" + zoo.ALIAS_SUFFIX)
                  if zoo.alias_spec(a).target.resolve() == target.resolve())


def _retarget(wants: dict[Path, str], target: Path) -> str | None:
    """Point each alias (mapped to the weights hash it must keep) at ``target`` (a file in its
    folder or the one above); the first alias whose hash changed, else None. On failure every
    alias is restored as it was."""
    before = {alias: alias.read_text() for alias in wants}
    for alias, want in wants.items():
        spec = {**json.loads(before[alias]), "tensors": _tensors_name(alias, target)}
        if not _write_spec(alias, spec, want):
            for a, text in before.items():
                a.write_text(text)
            return alias.name
    return None


def _best_delta(source: Path, bases: list[Path]) -> tuple[Path, bytes, bool] | None:
    """(base, delta planes, whether they are against the stored tensors) for whichever of
    ``bases`` gives ``source`` the smallest delta planes, against its weights in fp16 or its
    tensors as stored (int8 decoders: int8 steps against int8 steps); None when no base has
    ``source``'s tensor names, shapes (and for stored planes, dtypes)."""
    best = None
    mine = (_tensors(source), zoo.stored_tensors(source))
    for base in bases:
        theirs = (_tensors(base), zoo.stored_tensors(base))
        for stored in (False, True):
            try:
                packed = zoo.delta_pack(mine[stored], theirs[stored], stored=stored)
            except ValueError:  # another architecture, or other dtypes
                continue
            if best is None or len(packed) < len(best[1]):
                best = (base, packed, stored)
    return best


def _delta_alias(alias: Path, base: Path, packed: bytes, config: dict, want: str,
                 info: dict | None, stored: bool = False) -> bool:
    """Write ``alias`` on ``base`` and its delta planes ``packed`` (against base's stored
    tensors with ``stored``); kept only if the alias reproduces the weights hash ``want``."""
    planes = _part(alias, zoo.DELTA_SUFFIX)
    atomic_write(planes, packed, "weights")
    spec = {"config": config, "tensors": _tensors_name(alias, base), "delta": planes.name,
            "weights_hash": want}
    if stored:
        spec["delta_of"] = "stored"
    if info:
        spec["info"] = info
    if _write_spec(alias, spec, want):
        return True
    alias.unlink()
    planes.unlink()
    return False


def _delta_legacy(folder: Path, dry_run: bool) -> int:
    """Rewrite each legacy tensor file as delta planes where that is smaller, against its
    preset's default or another legacy tensor file of that preset, whichever gives the smaller
    planes (a converted file is never a base, so no cycle can form); aliases that named the
    file name the new alias. Returns the bytes saved."""
    legacy = folder / "legacy"
    saved = 0
    presets = {p: Codec.from_file(p).config for p in _legacy_files(legacy)}
    for path, config in presets.items():
        default = zoo.default_file(folder, config.preset, config.size)
        stem = path.name.removesuffix(zoo.XZ_SUFFIX).removesuffix(".safetensors")
        alias = legacy / (stem + zoo.ALIAS_SUFFIX)
        if alias.exists():
            continue
        # Bases: the default and the legacy tensor files still whole (converted ones are gone).
        bases = [p for p, c in presets.items() if p != path and p.exists()
                 and (c.preset, c.size) == (config.preset, config.size)]
        best = _best_delta(path, [default, *bases] if default.is_file() else bases)
        size = path.stat().st_size
        if best is None or len(best[1]) >= size:
            continue
        base, packed, stored = best
        note = (f"{path.name}: delta planes against {base.name} "
                f"({size / 1e6:.2f} -> {len(packed) / 1e6:.2f} MB)")
        if dry_run:
            print("would write " + note)
            saved += size - len(packed)
            continue
        want = zoo.file_hash(path)
        wants = {a: zoo.file_hash(a) for a in _aliases_of(path, legacy)}
        sidecar = zoo.config_sidecar(path)
        side = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        if not _delta_alias(alias, base, packed, side.get("config") or asdict(config), want,
                            side.get("info"), stored):
            continue
        broken = _retarget(wants, alias)
        if broken is not None:
            print(f"bundle_weights: {broken} changes its hash on {alias.name}; "
                  f"{path.name} kept", file=sys.stderr)
            alias.unlink()
            _part(alias, zoo.DELTA_SUFFIX).unlink()
            continue
        print(note)
        saved += size - len(packed)
        path.unlink()
        sidecar.unlink(missing_ok=True)
    return saved


def dedupe(folder: Path, dry_run: bool) -> int:
    """Rewrite legacy files that nearly duplicate another legacy file or a current default as
    aliases of it."""
    legacy = folder / "legacy"
    done: list[Path] = []
    defaults = _defaults(folder)
    for path in _legacy_files(legacy):
        if _aliases_of(path, legacy):  # aliases name it: it keeps its tensors
            continue
        near = _nearest_tensors(path, legacy, skip=done, also=defaults)
        if near is None:
            continue
        target, diff = near
        stem = path.name.removesuffix(zoo.XZ_SUFFIX).removesuffix(".safetensors")
        alias = legacy / (stem + zoo.ALIAS_SUFFIX)
        print(f"{path.name}: alias of {target.name}, {len(diff)} tensors overridden")
        if dry_run:
            done.append(path)
            continue
        if alias.exists():
            print(f"bundle_weights: error: {alias} exists", file=sys.stderr)
            return 2
        want = zoo.file_hash(path)
        sidecar = zoo.config_sidecar(path)
        side = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        config = side.get("config") or asdict(Codec.from_file(path).config)
        if not _write_alias(alias, config, path, target, diff, want, side.get("info")):
            print(f"bundle_weights: error: an alias of {target.name} does not reproduce "
                  f"{path.name} ({want})", file=sys.stderr)
            return 1
        path.unlink()
        sidecar.unlink(missing_ok=True)
        done.append(path)
    saved = _delta_legacy(folder, dry_run)
    if saved:
        print(f"delta planes save {saved / 1e6:.2f} MB")
    total = _total_mb(folder)
    print(f"bundled total {total:.1f} MB (limit {LIMIT_MB})")
    return 0


def pack_defaults(folder: Path, dry_run: bool) -> int:
    """Rewrite each plain weights file in ``folder`` (the defaults, not legacy/) as
    ``.safetensors.xz``, checked against its hash, and point the aliases that named it at the
    new file."""
    legacy = folder / "legacy"
    saved = 0
    for plain in sorted(p for p in folder.glob("*.safetensors")
                        if not p.name.endswith(zoo.OVERRIDES_SUFFIX)):
        packed = plain.with_name(plain.name + ".xz")
        if packed.exists():
            print(f"bundle_weights: error: both {plain.name} and {packed.name} exist",
                  file=sys.stderr)
            return 2
        data = zoo.xz_pack(plain.read_bytes())
        size = plain.stat().st_size
        note = f"{plain.name} -> {packed.name} ({size / 1e6:.2f} -> {len(data) / 1e6:.2f} MB)"
        saved += size - len(data)
        if dry_run:
            print("would write " + note)
            continue
        want = zoo.file_hash(plain)
        wants = {a: zoo.file_hash(a) for a in _aliases_of(plain, legacy)}
        atomic_write(packed, data, "weights")
        broken = None if zoo.file_hash(packed) == want else packed.name
        broken = broken or _retarget(wants, packed)
        if broken is not None:
            packed.unlink()
            print(f"bundle_weights: error: {broken} changes its hash; {plain.name} kept",
                  file=sys.stderr)
            return 1
        plain.unlink()
        print(note)
    print(f"xz saves {saved / 1e6:.2f} MB; bundled total {_total_mb(folder):.1f} MB "
          f"(limit {LIMIT_MB})")
    return 0


def _save_default(new: Codec, dst: Path, info: dict, int8: bool = False) -> None:
    """Write ``new`` as the default ``dst`` (fp16, xz; the decoder CNN int8 with ``int8``)
    with its JSON config and provenance."""
    new.save(dst, half=True, extra=info, int8=int8)
    zoo.write_sidecar(dst, asdict(new.config), info)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("preset", nargs="?")
    ap.add_argument("weights", type=Path, nargs="?",
                    help="the trained model.safetensors (fp32)")
    ap.add_argument("--legacy-name", help="suffix of the old default's name in weights/legacy/")
    ap.add_argument("--dedupe", action="store_true",
                    help="only rewrite legacy files as aliases of near duplicates, or as delta planes")
    ap.add_argument("--pack-defaults", action="store_true",
                    help="only rewrite plain default weights files as .safetensors.xz")
    ap.add_argument("--int8", action="store_true",
                    help="store the decoder CNN's convolutions as int8 with a scale per output "
                         "channel (about half the size; the shipped weights hash is then that "
                         "of the dequantised weights)")
    ap.add_argument("--recipe", default="", help="the command or script that trained it")
    ap.add_argument("--dry-run", action="store_true", help="print what would happen")
    ap.add_argument("--weights-dir", type=Path, default=zoo.WEIGHTS_DIR,
                    help="the bundled weights folder (default: the package's)")
    ap.add_argument("--limit-mb", type=float, default=LIMIT_MB,
                    help="the budget of all bundled weights: a ship that would pass it is "
                         "undone (default %(default)s)")
    args = ap.parse_args(argv)
    folder = args.weights_dir
    if args.dedupe:
        return dedupe(folder, args.dry_run)
    if args.pack_defaults:
        return pack_defaults(folder, args.dry_run)
    if args.preset is None or args.weights is None or args.legacy_name is None:
        ap.error("PRESET, WEIGHTS and --legacy-name are required (or --dedupe)")

    new = Codec.from_file(args.weights)
    if new.preset.name != args.preset:
        print(f"bundle_weights: error: {args.weights} is a {new.preset.name} codec",
              file=sys.stderr)
        return 2
    size = new.config.size  # a medium decoder replaces the medium default, not the small one
    cur = zoo.default_file(folder, args.preset, size)  # the default now: xz, plain, or none
    dst = folder / zoo.default_name(args.preset, size)  # where the new one goes
    old = Codec.from_file(cur) if cur.is_file() else None
    old_hash = old.weight_hash if old else None
    stem = folder / "legacy" / f"{args.preset}-{size}-{args.legacy_name}"
    legacy = stem.with_name(stem.name + zoo.XZ_SUFFIX)
    alias = stem.with_name(stem.name + zoo.ALIAS_SUFFIX)
    if legacy.exists() or alias.exists() or stem.with_name(stem.name + ".safetensors").exists():
        print(f"bundle_weights: error: {legacy} or its alias exists", file=sys.stderr)
        return 2
    aliased = _aliases_of(cur, folder / "legacy") if old else []
    # A default that aliases name keeps its tensors in a file of its own in legacy/.
    near = _nearest_tensors(cur, folder / "legacy") if old and not aliased else None
    same = near[0] if near else None
    info = {"source": new.weight_hash, "recipe": args.recipe}
    if args.int8:
        info["stored"] = "decoder CNN int8 (zoo.quantize_int8, kernel sums kept)"
    meta_path = args.weights.parent / "result.json"
    if meta_path.is_file():
        result = json.loads(meta_path.read_text())
        info.update({k: result[k] for k in ("step", "minutes") if k in result})
    if args.dry_run:
        where = (f"{alias} (tensors in {same.name}, {len(near[1])} overridden)" if same
                 else str(legacy))
        if aliased:
            where += f", and point {', '.join(a.name for a in aliased)} at it"
        print(f"would move {cur.name} ({old_hash}) to {where} and bundle {args.weights}")
        return 0
    snap = _snapshot(folder)  # a ship over the budget is undone whole (below)
    if same is not None:
        if not _write_alias(alias, asdict(old.config), cur, same, near[1], old_hash,
                            _info(cur) or None):
            print(f"bundle_weights: error: {alias} does not reproduce {old_hash}",
                  file=sys.stderr)
            return 1
        cur.unlink()
        zoo.config_sidecar(cur).unlink(missing_ok=True)
        legacy = alias
    elif old:
        wants = {a: zoo.file_hash(a) for a in aliased}  # before anything changes
        old_bytes = cur.read_bytes()
        old_info = _info(cur)
        legacy.parent.mkdir(exist_ok=True)
        packed = old_bytes if cur.name.endswith(zoo.XZ_SUFFIX) else zoo.xz_pack(old_bytes)
        atomic_write(legacy, packed, "weights")
        if zoo.file_hash(legacy) != old_hash:  # never drop the only copy of weights unchecked
            legacy.unlink()
            print(f"bundle_weights: error: {legacy} does not reproduce {old_hash}", file=sys.stderr)
            return 1
        # The config goes beside it in any case, so listing presets needs no unpacking.
        zoo.write_sidecar(legacy, asdict(old.config), old_info)
        _save_default(new, dst, info, args.int8)
        # Another training of the same architecture: delta planes against the new default.
        best = _best_delta(legacy, [dst])
        if best is not None and len(best[1]) < legacy.stat().st_size and _delta_alias(
                alias, dst, best[1], asdict(old.config), old_hash, old_info or None, best[2]):
            legacy.unlink()
            zoo.config_sidecar(legacy).unlink()
            legacy = alias
        broken = _retarget(wants, legacy)
        if broken is not None:
            print(f"bundle_weights: error: {broken} changes its hash on {legacy.name}; "
                  f"nothing replaced", file=sys.stderr)
            _restore(folder, snap)
            return 1
        if cur != dst:  # a plain default, replaced by an xz one
            cur.unlink()
    if not dst.is_file():  # no earlier default, or it became an alias
        _save_default(new, dst, info, args.int8)
    shipped = Codec.from_file(dst)
    total = _total_mb(folder)
    if total >= args.limit_mb:
        _restore(folder, snap)
        print(f"bundle_weights: error: with {args.weights} the bundled weights would take "
              f"{total:.2f} MB, over the {args.limit_mb:g} MB budget; nothing replaced "
              f"({_total_mb(folder):.2f} MB as before)", file=sys.stderr)
        return 1
    print(f"{args.preset}: {old_hash} -> {shipped.weight_hash} ({'int8 CNN, ' if args.int8 else ''}fp16; trained {new.weight_hash}); "
          f"{f'old weights in {legacy}' if old else 'no earlier default'}; "
          f"bundled total {total:.1f} MB "
          f"(limit {args.limit_mb:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
