"""The codec presets and model sizes as data, and loading of the bundled weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .codec import Codec

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class Preset:
    """What a codec does to its input: transform depth and latent width."""

    name: str
    modality: str  # "image" or "audio"
    channels: int  # input channels (3 for RGB, 2 for stereo)
    levels: int  # wavelet packet levels J
    latent_channels: int  # C_z

    @property
    def dims(self) -> int:
        return 2 if self.modality == "image" else 1

    @property
    def block(self) -> int:
        """Each latent position covers block (1D) or block x block (2D) input samples."""
        return 2**self.levels

    @property
    def wpt_channels(self) -> int:
        return self.channels * (2**self.dims) ** self.levels

    @property
    def dr(self) -> float:
        """Dimensionality reduction: input values per latent value."""
        return self.wpt_channels / self.latent_channels


@dataclass(frozen=True)
class Size:
    """Decoder capacity. ``small`` trains on CPUs; ``paper`` follows the published width."""

    name: str
    width: int
    blocks: int
    attention: bool = False
    kernel: int = 3  # 2D kernel; 1D uses kernel_1d
    kernel_1d: int = 7
    # "channel": position-local ChannelNorm (exact tiling); "group": GroupNorm over the whole
    # input, the norm of the first bundled decoders (kept so that their files still decode).
    norm: str = "channel"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("rgb-16x", "image", 3, 3, 12),
        Preset("rgb-4x", "image", 3, 3, 48),
        Preset("stereo-20x", "audio", 2, 8, 27),
        Preset("stereo-5x", "audio", 2, 8, 108),
    )
}

SIZES: dict[str, dict[str, Size]] = {
    "image": {
        "small": Size("small", width=128, blocks=6),
        "paper": Size("paper", width=768, blocks=8, attention=True),
    },
    "audio": {
        "small": Size("small", width=192, blocks=4),
        "paper": Size("paper", width=768, blocks=8, attention=True),
    },
}

DEFAULT_IMAGE = "rgb-16x"
DEFAULT_AUDIO = "stereo-20x"


class UnknownPresetError(KeyError):
    """A preset or size name that is not in the tables."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0])


class WeightsNotFoundError(FileNotFoundError):
    """No bundled weights for a preset/size."""


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise UnknownPresetError(f"unknown codec '{name}' (choose from {known})") from None


def get_size(preset: Preset, size: str) -> Size:
    try:
        return SIZES[preset.modality][size]
    except KeyError:
        known = ", ".join(SIZES[preset.modality])
        raise UnknownPresetError(f"unknown size '{size}' (choose from {known})") from None


def weights_path(name: str, size: str = "small") -> Path:
    return WEIGHTS_DIR / f"{name}-{size}.safetensors"


def available() -> list[str]:
    """Preset names that have bundled weights."""
    return [n for n in PRESETS if weights_path(n).is_file()]


_CACHE: dict = {}


def load(name: str, size: str = "small", device: str = "cpu") -> Codec:
    """A ready codec in eval mode with the bundled weights of ``name`` (e.g. ``"rgb-16x"``)."""
    from .codec import Codec

    get_size(get_preset(name), size)
    path = weights_path(name, size)
    if not path.is_file():
        raise WeightsNotFoundError(f"no bundled weights for '{name}' ({size}); expected {path}")
    key = (name, size, str(device))
    if key not in _CACHE:
        _CACHE[key] = Codec.from_file(path).to(device).eval()
    return _CACHE[key]
