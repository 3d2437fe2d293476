"""The model zoo: codecs from bundled weights (by preset name, or by the weights hash a ``.wlc``
file records) and from weights a user trained (by path).

Bundled weights live in ``pywalloc/weights/``: ``<preset>-<size>.safetensors`` is a preset's
current default. Older weights that files may still name sit beside them or in
``weights/legacy/``, under any name; decoding finds them by hash. Hashes are computed when first
needed and cached for the process (keyed by path, size and modification time).

Rarely needed bundled weights (those in ``legacy/``) are stored xz-compressed, as
``<name>.safetensors.xz`` with their config in ``<name>.json``: ``xz -d`` gives the plain
safetensors file back, and loading unpacks it in memory (bounded by ``MAX_WEIGHTS_BYTES``).

Weights that differ from another bundled file only in their config (the same tensors under
another norm) are stored once: ``<name>.alias.json`` holds ``{"config": {...}, "tensors":
"<file>.safetensors"}`` (a file in the same folder, or ``../<file>`` in the folder above it:
a legacy alias of a default) and counts as a weights file of its own.
Weights that share most tensors with another file (a few norm parameters changed) are an alias
with ``"overrides": "<name>.overrides.safetensors"``: the few tensors that differ, which
replace the target's.
"""

from __future__ import annotations

import json
import lzma
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WeightsFileError, WeightsNotFoundError
from .presets import PRESETS, get_preset, get_size

if TYPE_CHECKING:  # pragma: no cover - torch and the codec load on first use
    import torch

    from .codec import Codec

__all__ = [
    "LEGACY_DIR",
    "WEIGHTS_DIR",
    "available",
    "bundled_files",
    "file_hash",
    "find",
    "load",
    "weights_path",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
LEGACY_DIR = WEIGHTS_DIR / "legacy"

# path -> ((mtime_ns, size), config, tensors): each weights file is read once per process.
_FILES: dict[Path, tuple[tuple[int, int], dict, dict[str, Any]]] = {}
_HASHES: dict[Path, tuple[tuple[int, int], str]] = {}
_FROZEN: dict[tuple[Path, str], Any] = {}


def weights_path(name: str, size: str = "small") -> Path:
    """Where the current default weights of a preset and size are (whether or not they exist)."""
    return WEIGHTS_DIR / f"{name}-{size}.safetensors"


def available() -> list[str]:
    """Preset names that have bundled default weights."""
    return [n for n in PRESETS if weights_path(n).is_file()]


ALIAS_SUFFIX = ".alias.json"
# The tensors an alias changes in its target: part of an alias, not a weights file of its own.
OVERRIDES_SUFFIX = ".overrides.safetensors"
XZ_SUFFIX = ".safetensors.xz"
# An xz weights file must not expand past this (a hostile or damaged file could ask for more).
MAX_WEIGHTS_BYTES = 1 << 30


def config_sidecar(path: Path) -> Path:
    """The JSON file that may hold a weights file's config: ``x.json`` beside ``x.safetensors``
    or ``x.safetensors.xz``."""
    name = path.name
    for suffix in (XZ_SUFFIX, ".safetensors"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_suffix(".json")


def read_weights(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata, tensors) of a ``.safetensors`` file, or of an xz-compressed one
    (``.safetensors.xz``, decompressed in memory); WeightsFileError when it cannot be read."""
    from safetensors import SafetensorError, safe_open

    try:
        if path.suffix != ".xz":
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                return meta, {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (no dict)
        from safetensors.torch import load

        unpack = lzma.LZMADecompressor()
        raw = unpack.decompress(path.read_bytes(), max_length=MAX_WEIGHTS_BYTES)
        if not unpack.eof:
            raise ValueError(f"truncated, or larger than {MAX_WEIGHTS_BYTES >> 20} MiB unpacked")
        tensors = load(raw)  # checks the header and the offsets
        meta = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")]).get("__metadata__")
        return meta or {}, tensors
    except (SafetensorError, OSError, ValueError, lzma.LZMAError) as exc:
        raise WeightsFileError(f"cannot read weights '{path}': {exc}") from None


def _is_alias(path: Path) -> bool:
    return path.name.endswith(ALIAS_SUFFIX)


def _alias(path: Path) -> tuple[dict, Path, Path | None]:
    """(config, tensor file, overrides file or None) of an alias entry. The tensor file is a
    name in the alias's folder or ``../name`` in the folder above; the overrides file a name in
    the alias's folder."""
    try:
        spec = json.loads(path.read_text())
        config, name = spec["config"], spec["tensors"]
        parts = Path(name).parts if isinstance(name, str) else ()
        if len(parts) == 1 and parts[0] not in (".", ".."):
            target = path.parent / parts[0]
        elif len(parts) == 2 and parts[0] == ".." and parts[1] != "..":
            target = path.parent.parent / parts[1]
        else:
            raise ValueError(f"tensors must name a file beside the alias or in the folder "
                             f"above it, not {name!r}")
        over = spec.get("overrides")
        if not isinstance(config, dict) or not isinstance(over, (str, type(None))):
            raise TypeError("bad entry types")
        if over is not None:
            over = path.parent / Path(over).name
            if not over.name.endswith(OVERRIDES_SUFFIX):
                raise ValueError(f"overrides must be a *{OVERRIDES_SUFFIX} file")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsFileError(f"cannot read weights alias '{path}': {exc}") from None
    return config, target, over


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    if _is_alias(path):  # the alias changes when any of its files does
        mtime, size = st.st_mtime_ns, st.st_size
        for part in _alias(path)[1:]:
            if part is not None:
                try:
                    other = part.stat()
                except OSError:
                    raise WeightsFileError(f"weights alias '{path}' names a missing file "
                                           f"'{part.name}'") from None
                mtime, size = mtime ^ other.st_mtime_ns, size + other.st_size
        return mtime, size
    return st.st_mtime_ns, st.st_size


def _codec_from(path: Path) -> Codec:
    from .codec import Codec

    if not _is_alias(path):
        return Codec.from_file(path)
    config, target, over = _alias(path)
    tensors = _read(target)[1]  # the target's tensors, read once
    if over is not None:
        changed = read_weights(over)[1]
        unknown = sorted(set(changed) - set(tensors))
        if unknown:
            raise WeightsFileError(f"weights alias '{path}': {over.name} names tensors its "
                                   f"target lacks ({', '.join(unknown[:3])})")
        tensors = {**tensors, **changed}
    return Codec.from_state(config, tensors)


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config, tensors) of a weights file, cached; the tensors must not be modified."""
    try:
        stamp = _stamp(path)
    except OSError:
        raise WeightsNotFoundError(f"weights file '{path}' not found") from None
    hit = _FILES.get(path)
    if hit is None or hit[0] != stamp:
        codec = _codec_from(path)  # validates config and tensors together
        tensors = {k: v.detach() for k, v in codec.state_dict().items()}
        hit = (stamp, _config_of(codec), tensors)
        _FILES[path] = hit
        _HASHES[path] = (stamp, codec.weight_hash)
    return hit[1], hit[2]


def _config_of(codec: Codec) -> dict:
    from dataclasses import asdict

    return asdict(codec.config)


def _resolve(which: str | os.PathLike, size: str) -> Path:
    """A preset name -> its bundled default weights; anything else is a path."""
    if isinstance(which, str) and which in PRESETS:
        preset = get_preset(which)
        get_size(preset, size)
        path = weights_path(which, size)
        if not path.is_file():
            raise WeightsNotFoundError(f"no bundled weights for '{which}' ({size}); "
                                       f"expected {path}")
        return path
    path = Path(which)
    if isinstance(which, str) and path.suffix == "" and os.sep not in which:
        get_preset(which)  # a name, not a file: UnknownPresetError lists the presets
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file '{path}' not found")
    return path.resolve()


def load(which: str | os.PathLike, size: str = "small", device: str | torch.device = "cpu",
         frozen: bool = False) -> Codec:
    """A codec in eval mode: the bundled default weights of a preset (``"rgb-16x"``) or the
    weights in a ``.safetensors`` file (config in its metadata, or a ``.json`` beside it).

    Each call returns an independent codec that the caller may train or modify. With
    ``frozen=True`` the codec is shared between callers and frozen (:meth:`Codec.freeze`):
    cheap to ask for repeatedly, not to be modified.
    """
    path = _resolve(which, size)
    if frozen:
        key = (path, str(device))
        codec = _FROZEN.get(key)
        if codec is None or _FILES.get(path, ((0, 0),))[0] != _stamp(path):
            codec = load(path, device=device).freeze()
            _FROZEN[key] = codec
        return codec
    from .codec import Codec

    config, tensors = _read(path)
    return Codec.from_state(config, {k: v.clone() for k, v in tensors.items()}).to(device)


def _config_preset(path: Path) -> str | None:
    """The preset a weights file is for, from its metadata or JSON (without loading tensors)."""
    from safetensors import SafetensorError, safe_open

    try:
        if _is_alias(path):
            return _alias(path)[0].get("preset")
        sidecar = config_sidecar(path)
        if path.name.endswith(XZ_SUFFIX):  # with a config beside it, no need to unpack it
            meta = {} if sidecar.is_file() else read_weights(path)[0]
        else:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        config = json.loads(meta["config"]) if "config" in meta else json.loads(
            sidecar.read_text())["config"]
        return config.get("preset")
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, AttributeError,
            WeightsFileError):
        return None


def bundled_files(preset: str | None = None) -> list[Path]:
    """Bundled weight files (defaults first, then the others, then legacy/), optionally only
    those of one preset."""
    found: list[Path] = []
    for folder in (WEIGHTS_DIR, LEGACY_DIR):
        if folder.is_dir():
            found += sorted(p for p in [*folder.glob("*.safetensors"),
                                        *folder.glob("*" + XZ_SUFFIX),
                                        *folder.glob("*" + ALIAS_SUFFIX)]
                            if not p.name.endswith(OVERRIDES_SUFFIX))
    defaults = [weights_path(n) for n in PRESETS]
    found.sort(key=lambda p: (p not in defaults, p.parent != WEIGHTS_DIR))
    if preset is not None:
        found = [p for p in found if _config_preset(p) == preset]
    return found


def file_hash(path: str | os.PathLike) -> str:
    """``Codec.weight_hash`` of a weights file (16 hex digits), computed once per process."""
    path = Path(path).resolve()
    stamp = _stamp(path)
    hit = _HASHES.get(path)
    if hit is None or hit[0] != stamp:
        _read(path)
        hit = _HASHES[path]
    return hit[1]


def find(preset: str, weights_hash: bytes | str, device: str | torch.device = "cpu") -> Codec:
    """The shared frozen codec of the bundled ``preset`` weights whose hash starts with
    ``weights_hash`` (the 8 bytes a ``.wlc`` header records); WeightsNotFoundError if none."""
    want = weights_hash.hex() if isinstance(weights_hash, (bytes, bytearray)) else weights_hash
    get_preset(preset)
    for path in bundled_files(preset):
        try:
            if file_hash(path).startswith(want):
                return load(path, device=device, frozen=True)
        except WeightsFileError:
            continue  # an unreadable file is simply not the one asked for
    raise WeightsNotFoundError(
        f"no bundled {preset} weights have hash {want}; the file was made with other weights "
        "(decode it with the pywalloc version that made it, or pass those weights)")
