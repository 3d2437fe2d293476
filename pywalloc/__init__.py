"""pywalloc: WaLLoC wavelet learned lossy compression for images and stereo audio.

Public API: ``load``, ``compress``, ``decompress``, ``wpt``, ``iwpt``, ``Codec``, ``FormatError``.
Importing the package is cheap: the names that need torch are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import FormatError

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it)

# public name -> module that defines it; imported on first attribute access (PEP 562)
_LAZY = {
    "Codec": "codec",
    "CodecConfig": "codec",
    "compand": "codec",
    "decompand": "codec",
    "PRESETS": "presets",
    "Preset": "presets",
    "WeightsNotFoundError": "presets",
    "available": "presets",
    "load": "presets",
    "iwpt": "wavelets",
    "tune_allocator": "wavelets",
    "wpt": "wavelets",
    "compress": "api",
    "decompress": "api",
}

__all__ = [
    "PRESETS",
    "Codec",
    "CodecConfig",
    "FormatError",
    "Preset",
    "WeightsNotFoundError",
    "__version__",
    "available",
    "compand",
    "compress",
    "decompand",
    "decompress",
    "iwpt",
    "load",
    "tune_allocator",
    "wpt",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover - static type checkers see the real names
    from .api import compress as compress
    from .api import decompress as decompress
    from .codec import Codec as Codec
    from .codec import CodecConfig as CodecConfig
    from .codec import compand as compand
    from .codec import decompand as decompand
    from .presets import PRESETS as PRESETS
    from .presets import Preset as Preset
    from .presets import WeightsNotFoundError as WeightsNotFoundError
    from .presets import available as available
    from .presets import load as load
    from .wavelets import iwpt as iwpt
    from .wavelets import tune_allocator as tune_allocator
    from .wavelets import wpt as wpt
