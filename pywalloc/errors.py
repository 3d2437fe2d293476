"""Exception hierarchy of pywalloc: every error the library raises on bad input derives from
:class:`WallocError`, so callers (and the CLI) can catch one base class."""

from __future__ import annotations

__all__ = [
    "FormatError",
    "MediaError",
    "UnknownPresetError",
    "UnsupportedInputError",
    "WallocError",
    "WeightsFileError",
    "WeightsMismatchError",
    "WeightsNotFoundError",
]


class WallocError(Exception):
    """Base class of all pywalloc errors."""


class FormatError(WallocError, ValueError):
    """A ``.wlc`` file (or a payload inside it) is malformed, truncated or corrupted."""


class WeightsMismatchError(FormatError):
    """A ``.wlc`` file was made with other codec weights than the ones used to decode it."""


class MediaError(WallocError):
    """An input image or audio file cannot be read or an output cannot be written."""


class UnsupportedInputError(MediaError):
    """The input is readable but of a kind pywalloc does not support (e.g. 5.1 audio)."""


class UnknownPresetError(WallocError, KeyError):
    """A preset or model size name that is not in the tables."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class WeightsNotFoundError(WallocError, FileNotFoundError):
    """No weights for a preset/size, none bundled whose hash a file names, or a weights path
    that does not exist. ``retired``: for weights retired from the package, the sentence
    (``zoo.retired``) that says where the repository keeps them; None otherwise."""

    def __init__(self, *args, retired: str | None = None):
        super().__init__(*args)
        self.retired = retired


class WeightsFileError(WallocError, ValueError):
    """A weights file is unreadable, has no config, or its tensors do not fit the config."""
