"""The WaLLoC model: WPT → one linear 1x1 analysis layer → companding → bottleneck, and back."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .errors import WeightsFileError
from .modality import AUDIO_PEAK, peak_gain
from .presets import Preset, Size, get_preset, get_size
from .synthesis import Synthesis
from .tiling import decode_tiles, encode_tiles
from .wavelets import iwpt, wpt

# Companding constants from the published reference: y = 2L(Φ(x/s) − ½) lies in (−L, L),
# so rounding lands in the int8 range [−127, 127].
COMPAND_L = 127.499
COMPAND_S = 127.0 / 1.85
_PHI_EPS = 1e-4
# What Codec.bottleneck may do in training mode (Codec.train_bottleneck).
BOTTLENECK_MODES = ("noise", "round", "ste")

__all__ = ["AUDIO_PEAK", "COMPAND_L", "COMPAND_S", "Codec", "CodecConfig", "CodecOutput",
           "WeightsFileError", "compand", "decompand", "peak_gain", "state_hash"]

def compand(x: torch.Tensor) -> torch.Tensor:
    return COMPAND_L * torch.erf(x / (COMPAND_S * math.sqrt(2.0)))


def decompand(y: torch.Tensor) -> torch.Tensor:
    u = (y / COMPAND_L).clamp(-1 + 2 * _PHI_EPS, 1 - 2 * _PHI_EPS)
    return COMPAND_S * math.sqrt(2.0) * torch.erfinv(u)


def state_hash(tensors: dict[str, torch.Tensor], arch: str = "") -> str:
    """16 hex digits of sha256 over the weights (names in order, float32 values): what
    ``Codec.weight_hash`` returns and ``.wlc`` headers record (first 8 bytes). ``arch`` names
    what the tensors alone do not tell (the decoder's norm, when it is not the original
    GroupNorm: the same tensors decode differently under another norm)."""
    h = hashlib.sha256()
    if arch:
        h.update(arch.encode())
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class CodecOutput(NamedTuple):
    x_hat: torch.Tensor
    mse: torch.Tensor
    mse_wpt: torch.Tensor
    latents: torch.Tensor


@dataclass(frozen=True)
class CodecConfig:
    """Everything needed to rebuild a codec; stored as JSON beside its weights."""

    preset: str
    size: str = "small"
    width: int | None = None
    blocks: int | None = None
    attention: bool | None = None
    norm: str | None = None
    pad: str | None = None

    def resolved(self) -> tuple[Preset, Size]:
        preset = get_preset(self.preset)
        size = get_size(preset, self.size)
        over = {k: v for k, v in (("width", self.width), ("blocks", self.blocks),
                                   ("attention", self.attention),
                                   ("norm", self.norm), ("pad", self.pad)) if v is not None}
        if over:
            size = Size(**{**asdict(size), **over})
        return preset, size


class Codec(nn.Module):
    """One class for images (2D) and stereo audio (1D), chosen by the preset.

    Inputs: images ``[B, 3, H, W]`` (gray presets ``[B, 1, H, W]``) in [−0.5, 0.5]; audio ``[B, 2, T]`` in [−1, 1]. Any size:
    inputs are padded up to a multiple of 2^J (images: mirror; audio: zeros at the end) and
    ``decode(z, size)`` crops back.
    """

    def __init__(self, preset: str | Preset = "rgb-16x", size: str = "small", **overrides) -> None:
        super().__init__()
        name = preset.name if isinstance(preset, Preset) else preset
        self.config = CodecConfig(name, size, **overrides)
        self.preset, self.size_spec = self.config.resolved()
        # Record the norm explicitly, so saved configs do not depend on a later default.
        self.config = replace(self.config, norm=self.size_spec.norm,
                              pad=None if self.size_spec.pad == "zeros" else self.size_spec.pad)
        p, s = self.preset, self.size_spec
        conv = nn.Conv2d if p.dims == 2 else nn.Conv1d
        self.analysis = conv(p.wpt_channels, p.latent_channels, 1)
        self.synthesis = Synthesis(p.latent_channels, p.wpt_channels, s.width, s.blocks, p.dims,
                                   s.attention, s.kernel, s.kernel_1d, s.norm, s.pad)
        self.lo, self.hi = p.modality.lo, p.modality.hi
        # What the bottleneck does in training mode (eval mode always rounds):
        # "noise": additive uniform noise, the published recipe;
        # "round": rounding, for fine-tuning the decoder alone on the latents it will see;
        # "ste": straight-through rounding, for fine-tuning the encoder with the decoder: the
        # decoder sees the rounded latents, the encoder's gradient passes the rounding unchanged.
        self.train_bottleneck = "noise"
        # Where the weights came from, as torchvision's weights carry it: set by
        # ``pywalloc.load`` and :meth:`from_file` (see ``zoo.weights_meta``); empty otherwise.
        self.meta: dict = {}

    # -- geometry -------------------------------------------------------------------------
    def latent_size(self, size: tuple[int, ...]) -> tuple[int, ...]:
        b = self.preset.block
        return tuple(-(-n // b) for n in size)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return self.preset.modality.pad(x, self.preset.block)

    @property
    def position_local(self) -> bool:
        """True when every output sample depends on a bounded window of latents (no
        statistics over the whole input): then tiled decoding is exact."""
        return self.synthesis.position_local

    # -- encoder --------------------------------------------------------------------------
    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous analysis output (before companding), padded input."""
        expected = self.preset.dims + 2
        if x.dim() != expected or x.shape[1] != self.preset.channels:
            raise ValueError(f"{self.preset.name} expects [B, {self.preset.channels}, ...] with "
                             f"{expected} dims, got {tuple(x.shape)}")
        return self.analysis(wpt(self._pad(x), self.preset.levels))

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Companded latents before rounding, in (−127.5, 127.5): what downstream models train on."""
        return compand(self.analyse(x))

    def bottleneck(self, y: torch.Tensor) -> torch.Tensor:
        mode = self.train_bottleneck if self.training else "round"
        if mode == "ste":
            return y + (torch.round(y) - y).detach()
        if mode == "noise":
            return y + torch.empty_like(y).uniform_(-0.5, 0.5)
        return torch.round(y)

    @property
    def train_bottleneck(self) -> str:
        """What the bottleneck does in training mode: ``"noise"``, ``"round"`` or ``"ste"``
        (eval mode always rounds); any other value is refused when it is set."""
        return self._train_bottleneck

    @train_bottleneck.setter
    def train_bottleneck(self, mode: str) -> None:
        if mode not in BOTTLENECK_MODES:
            raise ValueError(f"train_bottleneck must be 'noise', 'round' or 'ste', got {mode!r}")
        self._train_bottleneck = mode

    def encode(self, x: torch.Tensor, tile: int | None = None) -> torch.Tensor:
        """int8 latents ``[B, C_z, ⌈H/8⌉, ⌈W/8⌉]`` (images) or ``[B, C_z, ⌈T/256⌉]`` (audio),
        computed in tiles of ``tile`` latents (default :data:`tiling.TILE`): memory stays
        bounded and the result does not depend on the tile size.

        ValueError for integer input or values outside the codec's range ([-0.5, 0.5] for
        images, [-1, 1] for audio): [0, 1] images would silently lose about 4 dB."""
        self._check_input(x)
        expected = self.preset.dims + 2
        if x.dim() != expected or x.shape[1] != self.preset.channels:
            raise ValueError(f"{self.preset.name} expects [B, {self.preset.channels}, ...] with "
                             f"{expected} dims, got {tuple(x.shape)}")
        return self._encode_tiled(x, self.analysis.weight, self.analysis.bias, tile)

    def continuous_latents(self, x: torch.Tensor, tile: int | None = None) -> torch.Tensor:
        """The companded latents before rounding (float, ``[B, C_z, ...]``), computed in tiles
        like :meth:`encode` (which rounds them); ``x`` is float in the codec's range or, for
        images, uint8 pixels."""
        if x.dtype == torch.uint8:
            weight, bias = self._folded_analysis()
        else:
            weight, bias = self.analysis.weight, self.analysis.bias
        return self._encode_tiled(x, weight, bias, tile, rounded=False)

    def _encode_tiled(self, x, weight, bias, tile, size=None, read=None,
                      rounded: bool = True) -> torch.Tensor:
        """int8 latents of ``x`` (the float companded latents when not ``rounded``), or of the
        ``size`` samples ``read(a, b)`` returns (one item; see :func:`tiling.encode_tiles`)."""
        size = tuple(x.shape[2:]) if x is not None else tuple(size)
        out = torch.empty(1 if x is None else x.shape[0], self.preset.latent_channels,
                          *self.latent_size(size), dtype=torch.int8 if rounded else weight.dtype,
                          device=weight.device)
        with torch.no_grad():
            for where, a in encode_tiles(self, x, size, weight, bias, tile, read):
                y = compand(a)
                out[(..., *where)] = (torch.round(y).clamp_(-127, 127).to(torch.int8) if rounded
                                      else y)
        return out

    def _check_input(self, x: torch.Tensor) -> None:
        from .inputs import check_range

        what = f"{self.preset.name} input values"
        if not x.is_floating_point():
            raise ValueError(f"{what} must be float in [{self.lo:g}, {self.hi:g}], got "
                             f"{x.dtype}{self.preset.modality.dtype_hint}")
        check_range(x, self.lo, self.hi, what, ValueError, self.preset.modality.range_hint)

    def prepare(self, data, value_range: tuple[float, float] | None = None) -> torch.Tensor:
        """What users hold → this codec's input ``[1, C, ...]`` on its device, in its range.

        Images: a PIL image, a path, numpy ``H x W x 3`` / ``H x W`` or a torch ``C x H x W``
        tensor (uint8, or float with ``value_range``), as :func:`pywalloc.compress` takes them;
        gray is replicated to RGB for RGB codecs (gray codecs take gray only). Audio: numpy ``[frames, channels]`` or torch
        ``[channels, frames]``, float or integer PCM, mono duplicated to stereo; it is not
        peak-normalised (``pywalloc.compress`` does that), so values must lie in [-1, 1]."""
        w = self.analysis.weight
        if self.preset.dims == 2:
            x = self.preset.modality.prepare(data, value_range, self.preset.channels)
        else:
            x = self.preset.modality.prepare(data, value_range)
        x = x.to(w.device, w.dtype)
        self._check_input(x)
        return x

    def encode_uint8(self, pixels: torch.Tensor, tile: int | None = None) -> torch.Tensor:
        """``encode`` for uint8 images ``[B, C, H, W]`` (the preset's channels), with the /255 − 0.5 scaling folded
        into the analysis layer (the transform is linear); tiles are cast to float one at a
        time, so memory stays near the uint8 input."""
        if self.preset.dims != 2 or pixels.dtype != torch.uint8:
            raise ValueError("encode_uint8 takes uint8 images for an image codec")
        w, b = self._folded_analysis()
        return self._encode_tiled(pixels, w, b, tile)

    def _folded_analysis(self) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = self.analysis.weight, self.analysis.bias
        key = (w._version, b._version, w.device, w.dtype) if not w.is_inference() else None
        cached = getattr(self, "_fold_cache", None)
        if cached is not None and key is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():
            # wpt of a constant image: the DC response of every wavelet channel.
            block = self.preset.block
            dc = wpt(torch.ones(1, self.preset.channels, block, block, dtype=w.dtype,
                                device=w.device), self.preset.levels)[0, :, 0, 0]
            w2 = w / 255.0
            b2 = b - 0.5 * (w.flatten(1) @ dc)
        if key is not None:
            self._fold_cache = (key, (w2, b2))
        return w2, b2

    # -- decoder --------------------------------------------------------------------------
    def decode(self, z: torch.Tensor, size: tuple[int, ...] | None = None,
               tile: int | None = None) -> torch.Tensor:
        """Reconstruction from int8 (or float) latents, cropped to ``size`` and clamped.

        Position-local decoders at inference decode in tiles of ``tile`` latents (default
        :data:`tiling.TILE`), bit for bit the same as the whole input; others decode whole."""
        y = z.to(self.analysis.weight.dtype) if not z.is_floating_point() else z
        if self.training or not self.position_local:
            x = self._reconstruct(self.synthesis(decompand(y), y), size)
            return x.clamp(self.lo, self.hi)
        full = tuple(n * self.preset.block for n in y.shape[2:])
        size = full if size is None else tuple(size)
        out = y.new_empty(y.shape[0], self.preset.channels, *size)
        with torch.no_grad():
            for where, x in self.decode_tiles(y, tile):
                keep = tuple(slice(w.start, min(w.stop, n)) for w, n in zip(where, size))
                if all(k.stop > k.start for k in keep):
                    out[(..., *keep)] = x[(..., *(slice(0, k.stop - k.start) for k in keep))]
        return out.clamp_(self.lo, self.hi)

    def decode_tiles(self, y: torch.Tensor, tile: int | None = None):
        """(output slices, unclamped reconstruction) per tile of float latents ``y``; see
        :func:`tiling.decode_tiles`."""
        return decode_tiles(self, y, tile)

    def _reconstruct(self, coeffs: torch.Tensor, size) -> torch.Tensor:
        """Inverse WPT of synthesised coefficients, cropped to ``size`` (None: no crop)."""
        x = iwpt(coeffs, self.preset.levels)
        return x if size is None else x[(..., *(slice(0, n) for n in size))]

    def forward(self, x: torch.Tensor) -> CodecOutput:
        """Training pass: noisy (train) or rounded (eval) bottleneck, MSE in both domains."""
        xp = self._pad(x)
        target = wpt(xp, self.preset.levels)
        y = compand(self.analysis(target))
        y_q = self.bottleneck(y)
        coeffs = self.synthesis(decompand(y_q), y_q)
        x_hat = self._reconstruct(coeffs, x.shape[2:])
        return CodecOutput(x_hat, F.mse_loss(x_hat, x), F.mse_loss(coeffs, target), y)

    # -- rate constraint (training) ---------------------------------------------------------
    def analysis_row_norms(self) -> torch.Tensor:
        """Norm of each analysis row: with the companding fixed, it sets the bit rate."""
        return self.analysis.weight.detach().flatten(1).norm(dim=1)

    def constrain_rate(self, norms: torch.Tensor) -> None:
        """Project the analysis rows back to fixed ``norms`` (keeps the bit rate where the
        initialisation set it, whatever the optimiser does to the directions)."""
        with torch.no_grad():
            w = self.analysis.weight
            cur = w.flatten(1).norm(dim=1).clamp_min(1e-12)
            w.mul_((norms.to(w) / cur).view(-1, *([1] * (w.dim() - 1))))

    # -- weights --------------------------------------------------------------------------
    @property
    def weight_hash(self) -> str:
        """Short content hash of the weights: files record it, decoding checks it.

        Cached until any weight tensor changes (tensor version counters tell in-place updates).
        """
        state = sorted(self.state_dict(keep_vars=True).items())
        try:
            stamp = tuple((id(t), t._version) for _, t in state)
        except RuntimeError:  # inference tensors carry no version counter: do not cache
            stamp = None
        cached = getattr(self, "_hash_cache", None)
        if cached and stamp is not None and cached[0] == stamp:
            return cached[1]
        norm, pad = self.config.norm, self.config.pad
        arch = "" if norm in (None, "group") else f"norm={norm};"
        if pad:  # None for zero padding (see __init__): the hashes of older weights stay
            arch += f"pad={pad};"
        digest = state_hash(dict(state), arch)
        self._hash_cache = (stamp, digest)
        return digest

    def freeze(self) -> Codec:
        """Make this codec read-only in spirit: eval mode, no gradients, ``train()`` refused.
        The zoo shares frozen codecs between callers (``load(name, frozen=True)``)."""
        self.requires_grad_(False)
        self.eval()
        self._frozen = True
        return self

    def train(self, mode: bool = True) -> Codec:
        if mode and getattr(self, "_frozen", False):
            raise WeightsFileError("this codec is a shared frozen one; pywalloc.load(name) "
                                   "returns an independent codec to train")
        return super().train(mode)

    def save(self, path: str | Path, half: bool = True, extra: dict | None = None,
             int8: bool = False, keep_sums: bool = True) -> None:
        """Write ``path`` (.safetensors, fp16 by default) with the config in its metadata;
        xz-compressed (``zoo.xz_pack``) when the name ends in ``.safetensors.xz``. ``int8``:
        the decoder CNN's convolution weights as int8 with a scale per output channel
        (``zoo.quantize_int8``; about half the size, and other weights than this codec's:
        load the file to get its weights hash; ``keep_sums``: the rounding of
        ``quantize_int8``)."""
        from safetensors.torch import save

        from .media import atomic_write
        from .zoo import XZ_SUFFIX, quantize_int8, xz_pack

        dtype = torch.float16 if half else torch.float32
        tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.state_dict().items()}
        meta = {"config": json.dumps(asdict(self.config)), "format": "pywalloc-codec-1"}
        if int8:
            convs = [k for k, v in tensors.items()
                     if k.startswith("synthesis.net.") and v.dim() >= 2]
            tensors = quantize_int8(tensors, convs, keep_sums)
            meta["quantized"] = ("int8 per output channel: synthesis.net convolutions"
                                 + (", kernel sums kept" if keep_sums else ""))
        if extra:
            meta["info"] = json.dumps(extra)
        data = save(tensors, metadata=meta)
        atomic_write(path, xz_pack(data) if str(path).endswith(XZ_SUFFIX) else data, "weights")

    @classmethod
    def from_file(cls, path: str | Path) -> Codec:
        """A codec in eval mode from a ``.safetensors`` file written by :meth:`save` (config in
        its metadata) or one with a JSON config beside it (``x.json`` for ``x.safetensors``).
        ``x.safetensors.xz`` is the same file compressed with xz (how rarely used bundled
        weights are stored); its config may be in ``x.json`` too."""
        from .zoo import config_sidecar, read_weights, weights_meta

        path = Path(path)
        meta, tensors = read_weights(path)
        if "config" in meta:
            config = json.loads(meta["config"])
        else:
            beside = config_sidecar(path)
            try:
                config = json.loads(beside.read_text())["config"]
            except (OSError, ValueError, KeyError, TypeError):
                raise WeightsFileError(f"'{path}' is not a pywalloc codec file (no config in its "
                                       f"metadata and no readable {beside.name} beside it)") from None
        codec = cls.from_state(config, tensors)
        codec.meta = weights_meta(path, lambda: codec.weight_hash, meta)
        return codec

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor]) -> Codec:
        """A codec in eval mode from a config (:class:`CodecConfig` fields) and its weights."""
        # Files written before the norm was configurable hold GroupNorm decoders.
        config = {"norm": "group", **config}
        state = {k: v.float() for k, v in tensors.items()}
        try:
            with torch.device("meta"):  # no random initialisation: the weights replace it
                codec = cls(**config)
            codec.load_state_dict(state, assign=True)
            if any(t.is_meta for t in (*codec.parameters(), *codec.buffers())):
                codec = cls(**config)  # a tensor outside the state dict: build it for real
                codec.load_state_dict(state)
        except (TypeError, RuntimeError, KeyError) as exc:
            raise WeightsFileError(f"weights do not fit config {config}: "
                                   f"{str(exc).splitlines()[0]}") from None
        return codec.eval()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
