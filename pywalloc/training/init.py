"""Start a codec at the best linear codec: PCA of the wavelet channels, at a chosen latent gain.

The gain sets the quantisation step in the wavelet domain (about 1/(1.48·gain)) and so the
bit rate; training keeps each analysis row at its initial norm, so the rate stays put.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..codec import Codec
from ..media import audio_info, read_audio
from ..modality import AUDIO_PEAK, IMAGE
from ..wavelets import wpt
from .data import list_files, read_pixels


def _image_chunks(files: list[Path], block: int, channels: int = 3):
    for f in files:
        a = read_pixels(f, channels)
        h, w = a.shape[0] // block * block, a.shape[1] // block * block
        if h and w:
            yield torch.from_numpy(a[:h, :w].copy()).permute(2, 0, 1)[None].float() / 255 - 0.5


def _audio_chunks(files: list[Path], block: int, chunk: int = 1 << 20):
    for f in files:
        total = audio_info(f).frames
        for start in range(0, total, chunk):
            n = min(chunk, total - start) // block * block
            if n == 0:
                break
            a = read_audio(f, start=start, frames=n)[0]  # stereo float32
            peak = np.abs(a).max()
            if peak > 1e-4:  # the codec's per-clip normalisation; near-silence left alone
                a = a * (AUDIO_PEAK / peak)
            yield torch.from_numpy(np.ascontiguousarray(a.T))[None]


def wpt_statistics(codec: Codec, root: str | Path, max_files: int = 200):
    """Mean and covariance (float64) of the codec's wavelet channels over training files."""
    p = codec.preset
    files = list_files(root, p.modality)
    step = max(1, len(files) // max_files)
    files = files[::step][:max_files]
    chunks = (_image_chunks(files, p.block, p.channels) if p.modality is IMAGE
              else _audio_chunks(files, p.block))
    n = p.wpt_channels
    s = torch.zeros(n, n, dtype=torch.float64)
    m = torch.zeros(n, dtype=torch.float64)
    count = 0
    with torch.no_grad():
        for x in chunks:
            c = wpt(x, p.levels)[0].reshape(n, -1).double()
            s += c @ c.T
            m += c.sum(1)
            count += c.shape[1]
    if count == 0:
        raise ValueError(f"no usable training data under {root}")
    m /= count
    return m, s / count - torch.outer(m, m)


def pca_init(codec: Codec, mean: torch.Tensor, cov: torch.Tensor, gain: float) -> torch.Tensor:
    """Set analysis = gain·top-k eigenvectors and the linear synthesis path to its inverse.

    Returns the explained variance of every component (for reports).
    """
    k = codec.preset.latent_channels
    ev, vec = torch.linalg.eigh(cov)
    order = ev.argsort(descending=True)
    ev, vec = ev[order], vec[:, order]
    top = vec[:, :k].T.float()  # [k, n]
    mu = mean.float()
    extra = (1,) * codec.preset.dims
    with torch.no_grad():
        codec.analysis.weight.copy_((gain * top).view(k, -1, *extra))
        codec.analysis.bias.copy_(-gain * (top @ mu))
        codec.synthesis.linear.weight.copy_((top.T / gain).view(-1, k, *extra))
        codec.synthesis.linear.bias.copy_(mu)
    return ev
