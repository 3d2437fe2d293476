"""pywalloc: WaLLoC wavelet learned lossy compression for images and stereo audio.

Public API: ``load``, ``compress``, ``decompress``, ``encode``, ``inspect``, ``wpt``, ``iwpt``,
``Codec``, ``FormatError``, ``WallocError``.
Importing the package is cheap: the names that need torch are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import FormatError, UnknownPresetError, WallocError, WeightsNotFoundError

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it)

# public name -> module that defines it; imported on first attribute access (PEP 562)
_LAZY = {
    "Codec": "codec",
    "CodecConfig": "codec",
    "compand": "codec",
    "decompand": "codec",
    "PRESETS": "presets",
    "Preset": "presets",
    "IMAGE": "modality",
    "AUDIO": "modality",
    "available": "zoo",
    "load": "zoo",
    "iwpt": "wavelets",
    "tune_allocator": "wavelets",
    "wpt": "wavelets",
    "compress": "api",
    "decompress": "api",
    "encode": "api",
    "inspect": "api",
    "Encoded": "api",
    "Decoded": "api",
}

__all__ = [
    "AUDIO",
    "IMAGE",
    "PRESETS",
    "Codec",
    "CodecConfig",
    "Decoded",
    "Encoded",
    "FormatError",
    "Preset",
    "UnknownPresetError",
    "WallocError",
    "WeightsNotFoundError",
    "__version__",
    "available",
    "compand",
    "compress",
    "decompand",
    "decompress",
    "encode",
    "inspect",
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
    # the public names (tab completion), not the helpers this module imports for itself
    return sorted(set(__all__) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover - static type checkers see the real names
    from .api import Decoded as Decoded
    from .api import Encoded as Encoded
    from .api import compress as compress
    from .api import decompress as decompress
    from .api import encode as encode
    from .api import inspect as inspect
    from .codec import Codec as Codec
    from .codec import CodecConfig as CodecConfig
    from .codec import compand as compand
    from .codec import decompand as decompand
    from .modality import AUDIO as AUDIO
    from .modality import IMAGE as IMAGE
    from .presets import PRESETS as PRESETS
    from .presets import Preset as Preset
    from .wavelets import iwpt as iwpt
    from .wavelets import tune_allocator as tune_allocator
    from .wavelets import wpt as wpt
    from .zoo import available as available
    from .zoo import load as load
