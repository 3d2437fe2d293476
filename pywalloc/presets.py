"""The codec presets and model sizes as data (no code that loads weights: see :mod:`pywalloc.zoo`)."""

from __future__ import annotations

from dataclasses import dataclass

from . import modality as _modality
from .errors import UnknownPresetError, WeightsNotFoundError
from .modality import Modality

__all__ = [
    "DEFAULT_AUDIO",
    "DEFAULT_IMAGE",
    "GRAY_COUNTERPART",
    "PRESETS",
    "SIZES",
    "Preset",
    "Size",
    "UnknownPresetError",
    "WeightsNotFoundError",
    "get_preset",
    "get_size",
]


@dataclass(frozen=True)
class Preset:
    """What a codec does to its input: transform depth and latent width, and its defaults."""

    name: str
    modality: Modality  # IMAGE or AUDIO (a name is converted)
    channels: int  # input channels (3 for RGB, 1 for gray, 2 for stereo)
    levels: int  # wavelet packet levels J
    latent_channels: int  # C_z
    # Latent gain of the PCA initialisation: sets the quantisation step and so the bit rate.
    # Chosen by measuring bits per pixel of lossless-WebP-packed PCA latents on training photos
    # (BSDS500), aiming below the bpp caps with room for Kodak; audio gains by the PSNR of the
    # quantised linear codec on training mixtures (docs/models.md).
    gain: float = 8.0
    # Default lossless WebP method (0-6) used by ``compress`` for this codec's latents; any
    # method decodes with the same reader. Chosen on the bundled weights' latents, keeping
    # rgb-16x ``compress`` of a 2048x2048 photo at or above 25 MPix/s (docs/entropy.md).
    effort: int = 1
    # Entropy id ``compress`` writes (pywalloc.entropy.CODERS): 2, raw two's-complement bytes,
    # is 0.7-2.9 % smaller than 1 on image latents and no different on audio's (docs/entropy.md),
    # so audio keeps 1 and its files stay as they were.
    entropy: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "modality", _modality.get(self.modality))

    @property
    def dims(self) -> int:
        return self.modality.dims

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
    # Padding of the decoder's convolutions at the input's borders: "zeros" (the bundled
    # decoders before flat-colour training) or "replicate", under which a flat latent field
    # (a flat picture of any size, down to one latent) decodes like the inside of a large flat
    # area. Both are position-local, so tiled decoding stays exact.
    pad: str = "zeros"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("rgb-16x", "image", 3, 3, 12, gain=8.0, effort=1, entropy=2),
        Preset("rgb-4x", "image", 3, 3, 48, gain=20.0, effort=1, entropy=2),
        # One-channel codecs for gray images: the luma's 64 wavelet channels, the same
        # dimensionality reductions as their RGB counterparts (GRAY_COUNTERPART).
        Preset("gray-16x", "image", 1, 3, 4, gain=8.0, effort=1, entropy=2),
        Preset("gray-4x", "image", 1, 3, 16, gain=20.0, effort=1, entropy=2),
        Preset("stereo-20x", "audio", 2, 8, 27, gain=24.0, effort=3),
        Preset("stereo-5x", "audio", 2, 8, 108, gain=40.0, effort=3),
    )
}

SIZES: dict[str, dict[str, Size]] = {
    "image": {
        "small": Size("small", width=128, blocks=6),
        # medium: the widest decoder measured to decode 768x512 within 1.0 s on one core
        # (0.9 s CPU), so within budget on 2 cores even when the machine is busy
        # (benchmarks/decoder_sizes.py, docs/models.md). Not trained yet: no bundled weights.
        "medium": Size("medium", width=256, blocks=6, norm="channel"),
        "paper": Size("paper", width=768, blocks=8, attention=True),
    },
    "audio": {
        "small": Size("small", width=192, blocks=4),
        # medium: 25x real time on one core (CPU time), 20x is the budget (docs/models.md).
        "medium": Size("medium", width=256, blocks=6, norm="channel"),
        "paper": Size("paper", width=768, blocks=8, attention=True),
    },
}

# The codec a gray image takes instead of an RGB one (when its weights are bundled).
GRAY_COUNTERPART: dict[str, str] = {"rgb-16x": "gray-16x", "rgb-4x": "gray-4x"}

DEFAULT_IMAGE = _modality.IMAGE.default_preset
DEFAULT_AUDIO = _modality.AUDIO.default_preset


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        known = ", ".join(PRESETS)
        raise UnknownPresetError(f"unknown codec '{name}' (choose from {known})") from None


def get_size(preset: Preset, size: str) -> Size:
    try:
        return SIZES[preset.modality][size]
    except KeyError:
        known = ", ".join(SIZES[preset.modality])
        raise UnknownPresetError(f"unknown size '{size}' (choose from {known})") from None
