"""The model zoo: codecs from bundled weights (by preset name, or by the weights hash a ``.wlc``
file records) and from weights a user trained (by path).

Bundled weights live in ``pywalloc/weights/``: ``<preset>-<size>.safetensors.xz`` (or, as
a user's own bundle may have it, ``<preset>-<size>.safetensors``) is a preset's current default.
Older weights that files may still name sit beside them or in ``weights/legacy/``, under any
name; decoding finds them by hash. Hashes are computed when first needed and cached for the
process (keyed by path, size and modification time).

Bundled weights are stored xz-compressed, as ``<name>.safetensors.xz`` with their config also in
``<name>.json``: ``xz -d`` gives the plain safetensors file back, and loading unpacks it in
memory (bounded by ``MAX_WEIGHTS_BYTES``), once per process, and keeps the unpacked file in a
user cache (:func:`cache_dir`), where the next process finds it. :func:`xz_pack` compresses them
with LZMA2 set for 2-byte values (fp16), some 15 % smaller than the plain file.

Weights that differ from another bundled file only in their config (the same tensors under
another norm) are stored once: ``<name>.alias.json`` holds ``{"config": {...}, "tensors":
"<file>.safetensors"}`` (a file in the same folder, or ``../<file>`` in the folder above it:
a legacy alias of a default) and counts as a weights file of its own.
Weights that share most tensors with another file (a few norm parameters changed) are an alias
with ``"overrides": "<name>.overrides.safetensors"``: the few tensors that differ, which
replace the target's.
Weights with the same tensor names and shapes as another file but other values (an older
training of the same preset) are an alias with ``"delta": "<name>.delta.xz"``: for every fp16
value, the difference of its bits from the target's (modulo 2^16, zigzagged so that small
differences of either sign are small numbers), as two byte planes (all high bytes, then all low
bytes, tensors in name order), xz-compressed (:func:`delta_pack`). Between two trainings of a
preset most values move by few units in the last place, so this is some 11-35 % smaller than xz
of the file itself. With ``"delta_of": "stored"`` the planes are against the target's tensors
as stored, int8 ones and their float32 scales included (each value's bits minus the target's,
in its own width: the 2-byte values' planes, then the 1-byte, then the 4-byte), so that an
older int8 decoder is stored as small integer steps against a newer one, about half of xz of
the file. Such an alias records the weights hash it must reproduce
(``"weights_hash"``), checked when it loads. An alias's target may itself be an alias, to a
depth of ``MAX_ALIAS_DEPTH``.

The bundle has a size budget (60 MB). When a new default does not fit, the oldest replaced
weights leave the package for the repository's ``weights-archive/`` folder
(``experiments/archive_weights.py``), as plain fp16 ``.safetensors.xz`` files with the same
hash, and ``weights/archived.json`` lists them: a file that names them then fails with a message
that says where they are, and decodes with ``--weights`` or with their folder in
``PYWALLOC_WEIGHTS_PATH`` (:func:`find` searches those folders after the bundled ones).
"""

from __future__ import annotations

import json
import lzma
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import WeightsFileError, WeightsNotFoundError
from .presets import PRESETS, get_preset, get_size

if TYPE_CHECKING:  # pragma: no cover - torch and the codec load on first use
    import torch

    from .codec import Codec

__all__ = [
    "LEGACY_DIR",
    "WEIGHTS_DIR",
    "AliasSpec",
    "alias_spec",
    "archived",
    "available",
    "bundled_files",
    "bundled_weights",
    "cache_dir",
    "default_file",
    "default_name",
    "delta_pack",
    "delta_unpack",
    "dequantize",
    "extra_folders",
    "file_hash",
    "find",
    "load",
    "quantize_int8",
    "read_weights",
    "retired",
    "stored_tensors",
    "weights_path",
    "xz_pack",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
LEGACY_DIR = WEIGHTS_DIR / "legacy"
# Weights retired from the package (to keep it small) -> where the repository keeps them.
ARCHIVED_INDEX = WEIGHTS_DIR / "archived.json"
# Folders (os.pathsep-separated) that find() searches after the bundled ones: for example the
# repository's weights-archive/, which holds the retired weights that ARCHIVED_INDEX lists.
PATH_ENV = "PYWALLOC_WEIGHTS_PATH"

# path -> ((mtime_ns, size), config, tensors): each weights file is read once per process.
_FILES: dict[Path, tuple[tuple[int, int], dict, dict[str, Any]]] = {}
_HASHES: dict[Path, tuple[tuple[int, int], str]] = {}
_STORED: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}  # stored_tensors()
_FROZEN: dict[tuple[Path, str], Any] = {}


def default_name(name: str, size: str = "small") -> str:
    """The file name a new default of a preset and size is written under."""
    return f"{name}-{size}{XZ_SUFFIX}"


def default_file(folder: Path, name: str, size: str = "small") -> Path:
    """The default weights of a preset and size in ``folder``: :func:`default_name`
    (``<name>-<size>.safetensors.xz``) or, if only that exists, ``<name>-<size>.safetensors``;
    the ``.xz`` name (where a new default goes) when neither exists."""
    packed = folder / default_name(name, size)
    plain = folder / f"{name}-{size}.safetensors"
    return plain if plain.is_file() and not packed.is_file() else packed


def weights_path(name: str, size: str = "small") -> Path:
    """Where the current default weights of a preset and size are (whether or not they exist):
    :func:`default_file` in the package's weights folder."""
    return default_file(WEIGHTS_DIR, name, size)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a file's bytes, read in blocks: which file this is, without
    loading it (milliseconds, where :func:`file_hash` decodes the tensors)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def measured(name: str, size: str = "small") -> dict | None:
    """The figures measured on a preset's current default weights, as
    ``experiments/record_metrics.py`` wrote them into its sidecar from the model card
    (``data``, ``psnr_db``, the rate, ``weights_hash``, ``file_sha256``, ``date``,
    ``command``...); None when none were recorded for it, or when the weights file is not the
    one they were measured on (its bytes' SHA-256 differs from ``file_sha256``: a sidecar
    copied beside other weights). Reads JSON and hashes the file's bytes; loads no tensors."""
    path = weights_path(name, size)
    try:
        body = json.loads(config_sidecar(path).read_text())
        entry = body.get("measured") if isinstance(body, dict) else None
        if not isinstance(entry, dict) or entry.get("file_sha256") != file_sha256(path):
            return None
    except (OSError, ValueError):
        return None
    return entry


def weights_meta(path: Path, weights_hash: Callable[[], str], metadata: dict | None = None
                 ) -> dict:
    """What is known of a weights file besides its tensors (``Codec.meta``): ``file``, the
    provenance ``info`` (recipe, training steps and minutes, source weights...) and the
    ``measured`` figures that ``experiments/record_metrics.py`` wrote for a bundled default
    (None when none were, or when they name other weights than ``weights_hash()``, asked only
    then). Read from the JSON beside the file, else from the file's own metadata
    (``metadata``, when the caller has read it). Never raises: a codec loads without it."""
    body: dict = {}
    try:
        found = json.loads(config_sidecar(path).read_text())
        body = found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        try:
            if metadata is None:
                metadata = (read_weights(path)[0] if path.name.endswith(XZ_SUFFIX)
                            else _plain_metadata(path))
            body = {"info": json.loads(metadata["info"])}
        except (KeyError, ValueError, TypeError, OSError, WeightsFileError):
            pass
    info, measured = body.get("info"), body.get("measured")
    if not isinstance(measured, dict) or measured.get("weights_hash") != weights_hash():
        measured = None  # figures of other weights (a JSON copied beside new ones) would lie
    return {"file": str(path), "info": info if isinstance(info, dict) else {},
            "measured": measured}


def _plain_metadata(path: Path) -> dict:
    """The header metadata of an uncompressed ``.safetensors`` file ({} for anything else)."""
    from safetensors import SafetensorError, safe_open

    if not path.name.endswith(".safetensors"):
        return {}
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError):
        return {}


def available() -> list[str]:
    """Preset names that have bundled default weights."""
    return [n for n in PRESETS if weights_path(n).is_file()]


ALIAS_SUFFIX = ".alias.json"
# The tensors an alias changes in its target: part of an alias, not a weights file of its own.
OVERRIDES_SUFFIX = ".overrides.safetensors"
XZ_SUFFIX = ".safetensors.xz"
# An alias's delta planes: part of an alias, like an overrides file.
DELTA_SUFFIX = ".delta.xz"
# An xz weights file must not expand past this (a hostile or damaged file could ask for more).
MAX_WEIGHTS_BYTES = 1 << 30
# How many aliases deep a chain of targets may go (a cycle would otherwise never end).
MAX_ALIAS_DEPTH = 16


def config_sidecar(path: Path) -> Path:
    """The JSON file that may hold a weights file's config: ``x.json`` beside ``x.safetensors``
    or ``x.safetensors.xz``."""
    name = path.name
    for suffix in (XZ_SUFFIX, ".safetensors"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_suffix(".json")


def write_sidecar(path: Path, config: dict, info: dict | None, **fields: Any) -> Path:
    """Write ``path``'s JSON sidecar (:func:`config_sidecar`): its config, provenance ``info``
    and any further ``fields``, whole or not at all. The one writer of sidecars."""
    from .media import atomic_write

    side = config_sidecar(path)
    body = {"config": config, **fields, "info": info}
    atomic_write(side, (json.dumps(body, indent=2) + "\n").encode(), "weights sidecar")
    return side


def read_weights(path: Path, stored: bool = False) -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata, tensors) of a ``.safetensors`` file, or of an xz-compressed one
    (``.safetensors.xz``, decompressed in memory); WeightsFileError when it cannot be read.
    int8 tensors come dequantised (:func:`dequantize`), or as stored with ``stored=True``."""
    from safetensors import SafetensorError, safe_open

    try:
        def plain(file: Path) -> tuple[dict, dict[str, torch.Tensor]]:
            with safe_open(str(file), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
                return meta, tensors if stored else dequantize(tensors)

        if path.suffix != ".xz":
            return plain(path)
        from safetensors.torch import load

        packed = path.read_bytes()
        copy = _copy_path(packed)  # hashes the packed bytes once, for the lookup and the write
        if copy is not None and _touch(copy):
            try:
                return plain(copy)
            except (SafetensorError, OSError, ValueError):
                pass  # a damaged copy: unpack again, and replace it
        unpack = lzma.LZMADecompressor()
        raw = unpack.decompress(packed, max_length=MAX_WEIGHTS_BYTES)
        if not unpack.eof:
            raise ValueError(f"truncated, or larger than {MAX_WEIGHTS_BYTES >> 20} MiB unpacked")
        tensors = load(raw)  # checks the header and the offsets
        meta = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")]).get("__metadata__")
        _keep_copy(copy, raw)
        return meta or {}, tensors if stored else dequantize(tensors)
    except (SafetensorError, OSError, ValueError, lzma.LZMAError) as exc:
        raise WeightsFileError(f"cannot read weights '{path}': {exc}") from None


# An int8 weights tensor ``name`` comes with ``name + QSCALE_SUFFIX``: float32, one scale per
# output channel (the tensor's first dimension).
QSCALE_SUFFIX = ".qscale"


def quantize_int8(tensors: dict[str, torch.Tensor], names,
                  keep_sums: bool = True) -> dict[str, torch.Tensor]:
    """``tensors`` with each of ``names`` stored as int8 in [-127, 127] times a float32 scale
    per output channel (max |w| / 127 of that channel), the scale as ``name.qscale``.

    Rounding keeps each kernel's sum: the taps of one (output, input) kernel are rounded to
    the nearest step, then the ones rounded furthest down (or up) move one step until the
    kernel's integer sum is its rounded exact sum. A convolution's response to a flat input is
    that sum times the input, so flat areas decode as with float weights (plain rounding let
    rgb-16x miss the flat-colour target of ``benchmarks/flat.py``: docs/models.md). The
    weights that :func:`dequantize` gives back differ from the originals by less than one step
    of their channel, each kernel's sum by at most half a step (a 1x1 kernel: plain rounding).
    ``keep_sums=False``: plain rounding to the nearest step (how the defaults shipped before
    2026-12-02 were stored), each weight within half a step.
    """
    import torch

    out = dict(tensors)
    for k in names:
        w = tensors[k].detach().float()
        rows = w.reshape(w.shape[0], -1)
        scale = rows.abs().amax(1) / 127.0
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        x = (rows / safe[:, None]).reshape(-1, w[0, 0].numel())  # one row per kernel
        q = torch.round(x)
        if keep_sums:
            need = torch.round(x.sum(1)) - q.sum(1)  # steps the kernel's sum is off by
            order = torch.argsort(x - q, dim=1, descending=True, stable=True)
            rank = torch.empty_like(order).scatter_(
                1, order, torch.arange(x.shape[1]).expand_as(order).contiguous())
            up = rank < need[:, None]  # the taps rounded furthest down go up one step
            down = rank >= x.shape[1] + need[:, None]  # the ones rounded furthest up go down
            q = q + up.float() - down.float()
        q = q.clamp(-127, 127)
        out[k] = q.to(torch.int8).reshape(w.shape).contiguous()
        out[k + QSCALE_SUFFIX] = scale.contiguous()
    return out


def dequantize(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 weights of :func:`quantize_int8`'s tensors (int8 times its channel's
    scale: one IEEE multiply each, the same bits on every machine); other tensors as they
    are. ValueError for an int8 tensor without a matching scale, or a scale without one."""
    import torch

    scales = {k[: -len(QSCALE_SUFFIX)]: v for k, v in tensors.items() if k.endswith(QSCALE_SUFFIX)}
    ints = {k for k, v in tensors.items() if v.dtype == torch.int8}
    if not scales and not ints:
        return tensors
    if ints != set(scales):
        odd = sorted(ints ^ set(scales))
        raise ValueError(f"int8 tensors and their scales do not match ({', '.join(odd[:3])})")
    out = {k: v for k, v in tensors.items() if not k.endswith(QSCALE_SUFFIX)}
    for k, scale in scales.items():
        q = tensors[k]
        if scale.dtype != torch.float32 or scale.shape != (q.shape[0],):
            raise ValueError(f"{k}{QSCALE_SUFFIX} is not one float32 scale per output channel")
        out[k] = q.float() * scale.view(-1, *([1] * (q.dim() - 1)))
    return out


# The cache keeps at most this much, least recently used copies going first (the bundled
# defaults unpacked take 29 MB).
CACHE_LIMIT_BYTES = 256 << 20


def cache_dir() -> Path | None:
    """Where unpacked copies of xz weights are kept between processes (so only the first
    process pays for unpacking, 0.25-0.75 s a file): ``$PYWALLOC_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/pywalloc``, else ``~/.cache/pywalloc``; None when ``PYWALLOC_NO_CACHE``
    is set. Nothing there is needed: a missing, unwritable or damaged cache only costs time.
    It holds at most ``CACHE_LIMIT_BYTES``; the least recently used copies go first."""
    if os.environ.get("PYWALLOC_NO_CACHE"):
        return None
    if os.environ.get("PYWALLOC_CACHE_DIR"):
        return Path(os.environ["PYWALLOC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pywalloc"


def _copy_path(packed: bytes) -> Path | None:
    import hashlib

    folder = cache_dir()
    if folder is None:
        return None
    # Named by the packed file's content: a changed file never finds an old copy.
    return folder / "weights" / f"{hashlib.sha256(packed).hexdigest()[:40]}.safetensors"


def _touch(copy: Path) -> bool:
    """Whether the cached ``copy`` exists; marks it recently used (pruned last)."""
    if not copy.is_file():
        return False
    try:
        os.utime(copy)
    except OSError:
        pass
    return True


def _prune(folder: Path, keep: Path) -> None:
    """Delete the least recently used copies until the folder holds at most
    ``CACHE_LIMIT_BYTES`` (never ``keep``, the copy just written)."""
    try:
        files = [(f.stat().st_mtime, f.stat().st_size, f) for f in folder.glob("*.safetensors")]
    except OSError:
        return
    total = sum(size for _, size, _ in files)
    for _, size, f in sorted(files, key=lambda t: t[0]):
        if total <= CACHE_LIMIT_BYTES:
            break
        if f != keep:
            try:
                f.unlink()
                total -= size
            except OSError:
                pass


def _keep_copy(copy: Path | None, raw: bytes) -> None:
    """Best effort: an unwritable or full disk leaves the cache as it was."""
    from .errors import WallocError
    from .media import atomic_write

    if copy is None:
        return
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(copy, raw, "cached weights")
    except (OSError, WallocError):
        return
    _prune(copy.parent, copy)


def xz_pack(data: bytes) -> bytes:
    """``data`` (a safetensors file) as a standard ``.xz`` file, with LZMA2 set for 2-byte
    values (no literal context, 2-byte position alignment): 4-5 % smaller than the xz preset
    alone on fp16 weights."""
    chain = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "lc": 0, "lp": 1,
              "pb": 1}]
    return lzma.compress(data, format=lzma.FORMAT_XZ, filters=chain)


def _is_alias(path: Path) -> bool:
    return path.name.endswith(ALIAS_SUFFIX)


class AliasSpec(NamedTuple):
    """What an ``.alias.json`` entry says: the config, the file whose tensors it starts from,
    and what changes them (an overrides file, delta planes, or neither)."""

    config: dict
    target: Path
    overrides: Path | None
    delta: Path | None
    weights_hash: str | None
    delta_stored: bool = False  # planes against the target's stored tensors, not its weights


def alias_spec(path: Path) -> AliasSpec:
    """The entry of an alias file. The tensor file is a name in the alias's folder or
    ``../name`` in the folder above; the overrides and delta files are names in the alias's
    folder. WeightsFileError when the entry is malformed."""
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
        over, delta, want = spec.get("overrides"), spec.get("delta"), spec.get("weights_hash")
        if not isinstance(config, dict) or not all(
                isinstance(v, (str, type(None))) for v in (over, delta, want)):
            raise TypeError("bad entry types")
        if over is not None:
            over = path.parent / Path(over).name
            if not over.name.endswith(OVERRIDES_SUFFIX):
                raise ValueError(f"overrides must be a *{OVERRIDES_SUFFIX} file")
        if delta is not None:
            delta = path.parent / Path(delta).name
            if not delta.name.endswith(DELTA_SUFFIX) or over is not None or want is None:
                raise ValueError(f"delta must be a *{DELTA_SUFFIX} file, with a weights_hash "
                                 f"and no overrides")
        delta_of = spec.get("delta_of", "weights")
        if delta_of not in ("weights", "stored") or (delta is None and "delta_of" in spec):
            raise ValueError(f"delta_of must be 'weights' or 'stored', beside a delta, "
                             f"not {delta_of!r}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsFileError(f"cannot read weights alias '{path}': {exc}") from None
    return AliasSpec(config, target, over, delta, want, delta_of == "stored")


def _stamp(path: Path, depth: int = 0) -> tuple[int, int]:
    st = path.stat()
    if not _is_alias(path):
        return st.st_mtime_ns, st.st_size
    if depth >= MAX_ALIAS_DEPTH:
        raise WeightsFileError(f"weights alias '{path}': aliases nest deeper than "
                               f"{MAX_ALIAS_DEPTH} (a cycle?)")
    # The alias changes when any of its files does, its target's included.
    spec = alias_spec(path)
    mtime, size = st.st_mtime_ns, st.st_size
    for part in (spec.target, spec.overrides, spec.delta):
        if part is not None:
            try:  # a target that is an alias recurses; other parts are plain files
                other = _stamp(part, depth + 1)
            except OSError:
                raise WeightsFileError(f"weights alias '{path}' names a missing file "
                                       f"'{part.name}'") from None
            mtime, size = mtime ^ other[0], size + other[1]
    return mtime, size


# The order in which stored delta planes hold each value width, in bytes (2-byte values first,
# so that fp16-only planes are laid out as they always were).
_DELTA_WIDTHS = (2, 1, 4)


def _int_types(width: int):
    """(torch signed, numpy signed, numpy unsigned) integer types of ``width`` bytes."""
    import numpy as np
    import torch

    return {1: (torch.int8, np.int8, np.uint8), 2: (torch.int16, np.int16, np.uint16),
            4: (torch.int32, np.int32, np.uint32)}[width]


def _width_dtypes():
    import torch

    return {torch.float16: 2, torch.bfloat16: 2, torch.int16: 2, torch.int8: 1, torch.uint8: 1,
            torch.float32: 4, torch.int32: 4}


def _bits(tensors: dict[str, torch.Tensor], names: list[str], width: int, cast=None):
    """The bits of ``tensors`` (in ``names`` order; each cast to ``cast`` first if given) as one
    flat int64 numpy array of unsigned ``width``-byte numbers."""
    import numpy as np
    import torch

    if not names:
        return np.zeros(0, np.int64)
    signed, _, unsigned = _int_types(width)
    parts = [(tensors[k].detach().to("cpu", cast) if cast is not None else
              tensors[k].detach().cpu()).contiguous().reshape(-1).view(signed) for k in names]
    return torch.cat(parts).numpy().view(unsigned).astype(np.int64)


def _delta_layout(base: dict[str, torch.Tensor], stored: bool) -> list[tuple[int, list[str]]]:
    """(width, names) groups in plane order: every tensor as fp16, or as stored in ``base``."""
    names = sorted(base)
    if not stored:
        return [(2, names)]
    widths = _width_dtypes()
    odd = [k for k in names if base[k].dtype not in widths]
    if odd:
        raise ValueError(f"delta planes cannot hold {base[odd[0]].dtype} tensors ({odd[0]})")
    return [(w, [k for k in names if widths[base[k].dtype] == w]) for w in _DELTA_WIDTHS
            if any(widths[base[k].dtype] == w for k in names)] or [(2, [])]


def delta_pack(tensors: dict[str, torch.Tensor], base: dict[str, torch.Tensor],
               stored: bool = False) -> bytes:
    """``tensors`` as delta planes against ``base`` (the same names and shapes): each value's
    bits minus base's, modulo 2^(8 width) and zigzagged (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...),
    one plane per byte, most significant first, xz-compressed. Without ``stored`` every tensor
    is fp16 and base's values are taken as fp16; with it, each tensor has base's dtype (fp16,
    int8, float32, ...) and the planes of the 2-byte values come first, then the 1-byte, then
    the 4-byte ones."""
    import numpy as np
    import torch

    names = sorted(base)
    if sorted(tensors) != names or any(tensors[k].shape != base[k].shape for k in names):
        raise ValueError("delta planes need the same tensor names and shapes as their base")
    if not stored and any(t.dtype != torch.float16 for t in tensors.values()):
        raise ValueError("delta planes hold fp16 tensors only")
    if stored and any(tensors[k].dtype != base[k].dtype for k in names):
        raise ValueError("stored delta planes need the same dtypes as their base")
    planes, cast = [], None if stored else torch.float16
    for width, group in _delta_layout(base, stored):
        top = 1 << (8 * width)
        diff = (_bits(tensors, group, width, cast) - _bits(base, group, width, cast)) % top
        diff = np.where(diff >= top >> 1, diff - top, diff)  # as a signed number
        zig = ((diff << 1) ^ (diff >> 63)) % top
        planes += [((zig >> (8 * i)) & 0xFF).astype(np.uint8) for i in reversed(range(width))]
    raw = np.concatenate(planes) if planes else np.zeros(0, np.uint8)
    return lzma.compress(raw.tobytes(), preset=9 | lzma.PRESET_EXTREME)


def delta_unpack(data: bytes, base: dict[str, torch.Tensor],
                 stored: bool = False) -> dict[str, torch.Tensor]:
    """The tensors that :func:`delta_pack` packed against ``base`` (fp16, or with ``stored``
    base's dtypes); ValueError when ``data`` is not delta planes of base's size."""
    import numpy as np
    import torch

    layout = _delta_layout(base, stored)
    size = sum(w * base[k].numel() for w, group in layout for k in group)
    unpack = lzma.LZMADecompressor()
    raw = unpack.decompress(data, max_length=size + 1)
    if not unpack.eof or len(raw) != size:
        raise ValueError(f"delta planes are not {size} bytes (the base's values)")
    planes = np.frombuffer(raw, np.uint8).astype(np.int64)
    cast = None if stored else torch.float16
    out, at = {}, 0
    for width, group in layout:
        count = sum(base[k].numel() for k in group)
        zig = np.zeros(count, np.int64)
        for i in range(width):  # most significant byte first
            zig = (zig << 8) | planes[at + i * count: at + (i + 1) * count]
        at += width * count
        diff = (zig >> 1) ^ -(zig & 1)
        bits = (_bits(base, group, width, cast) + diff) % (1 << (8 * width))
        _, signed, unsigned = _int_types(width)
        flat = torch.from_numpy(bits.astype(unsigned).view(signed).copy())
        start = 0
        for k in group:
            dtype = base[k].dtype if stored else torch.float16
            n = base[k].numel()
            out[k] = flat[start:start + n].view(dtype).reshape(base[k].shape)
            start += n
    return out


def stored_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file as stored (int8 ones and their scales not dequantised);
    for an alias, its target's with the alias's overrides or delta planes applied. Cached
    like :func:`_read` (the tensors must not be modified): an older weights file is stored as
    delta planes against the next newer one, so without the cache each file of a chain would
    unpack all the newer ones again (``walloc models --weights`` unpacked delta planes 50
    times for its 16 delta files, in 13.7 s instead of 5.6). WeightsFileError when a file
    cannot be read."""
    stamp = _stamp(path)  # a missing part or an alias cycle fails here, before any reading
    hit = _STORED.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    if not _is_alias(path):
        tensors = read_weights(path, stored=True)[1]
    else:
        spec = alias_spec(path)
        if spec.delta is not None and not spec.delta_stored:  # fp16 planes against the weights
            tensors = _applied(path, spec, _read(spec.target)[1], stored=True)
        else:
            tensors = _applied(path, spec, stored_tensors(spec.target), stored=True)
    _STORED[path] = (stamp, tensors)
    return tensors


def _applied(path: Path, spec: AliasSpec, tensors: dict[str, torch.Tensor],
             stored: bool) -> dict[str, torch.Tensor]:
    """``tensors`` (those the alias ``spec`` at ``path`` starts from) with its overrides (read
    as stored with ``stored``, else dequantised) or its delta planes applied."""
    if spec.overrides is not None:
        changed = read_weights(spec.overrides, stored=stored)[1]
        unknown = sorted(set(changed) - set(tensors))
        if unknown:
            raise WeightsFileError(f"weights alias '{path}': {spec.overrides.name} names "
                                   f"tensors its target lacks ({', '.join(unknown[:3])})")
        tensors = {**tensors, **changed}
    if spec.delta is not None:
        try:
            tensors = delta_unpack(spec.delta.read_bytes(), tensors, spec.delta_stored)
        except (OSError, ValueError, lzma.LZMAError) as exc:
            raise WeightsFileError(f"weights alias '{path}': cannot read {spec.delta.name}: "
                                   f"{exc}") from None
    return tensors


def _codec_from(path: Path) -> Codec:
    from .codec import Codec

    if not _is_alias(path):
        return Codec.from_file(path)
    spec = alias_spec(path)
    if spec.delta_stored:  # planes against the target's stored tensors (int8 ones too)
        try:
            tensors = dequantize(stored_tensors(path))
        except ValueError as exc:
            raise WeightsFileError(f"weights alias '{path}': {exc}") from None
        return _checked(path, spec, Codec.from_state(spec.config, tensors))
    # The target's weights (read once, cached) with the overrides or fp16 planes applied.
    tensors = _applied(path, spec, _read(spec.target)[1], stored=False)
    return _checked(path, spec, Codec.from_state(spec.config, tensors))


def _checked(path: Path, spec: AliasSpec, codec: Codec) -> Codec:
    """``codec``, if it has the weights hash that the alias ``spec`` records (or it records
    none)."""
    if spec.weights_hash is not None and codec.weight_hash != spec.weights_hash:
        raise WeightsFileError(f"weights alias '{path}' gives weights {codec.weight_hash}, not "
                               f"the {spec.weights_hash} it records (its target changed?)")
    return codec


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config, tensors) of a weights file, cached; the tensors must not be modified. An alias
    chain deeper than ``MAX_ALIAS_DEPTH`` (a cycle) fails in ``_stamp``, before any loading."""
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
    codec = Codec.from_state(config, {k: v.clone() for k, v in tensors.items()}).to(device)
    codec.meta = weights_meta(path, lambda: file_hash(path))
    return codec


def _config_preset(path: Path) -> str | None:
    """The preset a weights file is for, from its metadata or JSON (without loading tensors)."""
    from safetensors import SafetensorError, safe_open

    try:
        if _is_alias(path):
            return alias_spec(path).config.get("preset")
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


def _weights_files(folder: Path) -> list[Path]:
    """The weights files in ``folder`` (plain, xz and aliases; not an alias's parts), sorted;
    none when it is not a folder."""
    if not folder.is_dir():
        return []
    return sorted(p for p in [*folder.glob("*.safetensors"), *folder.glob("*" + XZ_SUFFIX),
                              *folder.glob("*" + ALIAS_SUFFIX)]
                  if not p.name.endswith((OVERRIDES_SUFFIX, DELTA_SUFFIX)))


def bundled_files(preset: str | None = None) -> list[Path]:
    """Bundled weight files (defaults first, then the others, then legacy/), optionally only
    those of one preset."""
    found = [p for folder in (WEIGHTS_DIR, LEGACY_DIR) for p in _weights_files(folder)]
    defaults = [weights_path(n) for n in PRESETS]
    found.sort(key=lambda p: (p not in defaults, p.parent != WEIGHTS_DIR))
    if preset is not None:
        found = [p for p in found if _config_preset(p) == preset]
    return found


def bundled_weights(preset: str | None = None) -> list[dict]:
    """One row per bundled weights file (:func:`bundled_files` order): its ``name``, ``preset``,
    ``weights_hash`` (the hash a ``.wlc`` header names; None if the file cannot be read, with
    the reason in ``error``), whether it is the preset's current ``default``, how it is
    ``stored`` (``plain``, ``xz``, ``alias``, ``overrides`` or ``delta``) and the ``bytes`` of
    its own files (an alias's target not included). Loads every file once: seconds."""
    defaults = {weights_path(n) for n in PRESETS}
    rows = []
    for path in bundled_files(preset):
        row: dict[str, Any] = {"name": path.name, "preset": _config_preset(path)}
        try:
            if _is_alias(path):
                spec = alias_spec(path)
                stored = "delta" if spec.delta else "overrides" if spec.overrides else "alias"
                parts = [path, spec.overrides, spec.delta]
            else:
                stored = "xz" if path.name.endswith(XZ_SUFFIX) else "plain"
                parts = [path, config_sidecar(path)]
            size = sum(p.stat().st_size for p in parts if p is not None and p.is_file())
            row.update(weights_hash=file_hash(path), error=None)
        except (WeightsFileError, WeightsNotFoundError) as exc:
            stored, size = "unreadable", path.stat().st_size
            row.update(weights_hash=None, error=str(exc))
        row.update(default=path in defaults, stored=stored, bytes=size)
        rows.append(row)
    return rows


def file_hash(path: str | os.PathLike) -> str:
    """``Codec.weight_hash`` of a weights file (16 hex digits), computed once per process."""
    path = Path(path).resolve()
    stamp = _stamp(path)
    hit = _HASHES.get(path)
    if hit is None or hit[0] != stamp:
        _read(path)
        hit = _HASHES[path]
    return hit[1]


def extra_folders() -> list[Path]:
    """The folders named by the ``PYWALLOC_WEIGHTS_PATH`` environment variable (separated by
    ``os.pathsep``), in order: where :func:`find` looks after the bundled weights."""
    return [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]


def archived() -> dict[str, dict]:
    """Weights retired from the package: weights hash -> ``preset``, ``file`` (its path in the
    pywalloc repository), ``retired`` (date) and ``reason``. Empty when the index is absent."""
    try:
        index = json.loads(ARCHIVED_INDEX.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise WeightsFileError(f"cannot read '{ARCHIVED_INDEX}': {exc}") from None
    return index.get("weights", {}) if isinstance(index, dict) else {}


def retired(preset: str, weights_hash: bytes | str) -> str | None:
    """For ``preset`` weights retired from the package whose hash starts with ``weights_hash``:
    a sentence (the full hash onwards) that says where the repository keeps them and how to use
    them; None for any other hash."""
    want = weights_hash.hex() if isinstance(weights_hash, (bytes, bytearray)) else weights_hash
    for full, entry in archived().items():
        if full.startswith(want) and entry.get("preset") == preset:
            return (f"{full}, retired from the package on {entry.get('retired')} "
                    f"({entry.get('reason')}); the pywalloc repository keeps them as "
                    f"{entry.get('file')}: pass that file with --weights (in Python, "
                    f"pywalloc.load(FILE)), or put its folder in {PATH_ENV}")
    return None


def _extra_files(preset: str) -> list[Path]:
    found = [p for folder in extra_folders() for p in _weights_files(folder)]
    return [p for p in found if _config_preset(p) == preset]


def find(preset: str, weights_hash: bytes | str, device: str | torch.device = "cpu") -> Codec:
    """The shared frozen codec of the ``preset`` weights whose hash starts with
    ``weights_hash`` (the 8 bytes a ``.wlc`` header records): bundled ones first, then those in
    the folders of ``PYWALLOC_WEIGHTS_PATH``. WeightsNotFoundError if none; for weights retired
    from the package, its message names the repository file that holds them."""
    want = weights_hash.hex() if isinstance(weights_hash, (bytes, bytearray)) else weights_hash
    get_preset(preset)
    for path in [*bundled_files(preset), *_extra_files(preset)]:
        try:
            if file_hash(path).startswith(want):
                return load(path, device=device, frozen=True)
        except WeightsFileError:
            continue  # an unreadable file is simply not the one asked for
    hint = retired(preset, want)
    if hint:
        raise WeightsNotFoundError(f"{preset} weights {hint}", retired=hint)
    raise WeightsNotFoundError(
        f"no bundled {preset} weights have hash {want}; the file was made with other weights "
        "(decode it with the pywalloc version that made it, or pass those weights)")
