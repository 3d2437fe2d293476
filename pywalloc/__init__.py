"""pywalloc: WaLLoC wavelet learned lossy compression for images and stereo audio.

Public API: ``load``, ``compress``, ``decompress``, ``wpt``, ``iwpt``, ``Codec``, ``FormatError``.
"""

from .codec import Codec, CodecConfig, compand, decompand
from .presets import PRESETS, Preset, WeightsNotFoundError, available, load
from .wavelets import iwpt, wpt

__version__ = "0.1.0"

__all__ = [
    "Codec", "CodecConfig", "PRESETS", "Preset", "WeightsNotFoundError", "available",
    "compand", "decompand", "iwpt", "load", "wpt", "__version__",
]

try:  # the file-format layer lands separately; the core works without it
    from .api import compress, decompress  # noqa: F401
    from .errors import FormatError  # noqa: F401

    __all__ += ["compress", "decompress", "FormatError"]
except ImportError:  # pragma: no cover
    pass
