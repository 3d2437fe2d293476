"""pywalloc: WaLLoC wavelet learned lossy compression for images and stereo audio.

Public API: ``load``, ``compress``, ``decompress``, ``wpt``, ``iwpt``, ``Codec``, ``FormatError``.
"""

from .codec import Codec, CodecConfig, compand, decompand
from .presets import PRESETS, Preset, WeightsNotFoundError, available, load
from .wavelets import iwpt, tune_allocator, wpt

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "Codec",
    "CodecConfig",
    "Preset",
    "WeightsNotFoundError",
    "__version__",
    "available",
    "compand",
    "decompand",
    "iwpt",
    "load",
    "tune_allocator",
    "wpt",
]

try:  # the file-format layer lands separately; the core works without it
    from .api import compress, decompress
    from .errors import FormatError

    __all__ += ["FormatError", "compress", "decompress"]
except ImportError:  # pragma: no cover
    pass
