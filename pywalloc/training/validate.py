"""Validation during training: PSNR with real rounding (eval mode), on whole images or clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..codec import Codec, peak_gain
from ..evaluation.metrics import psnr
from ..media import audio_info, read_audio
from ..modality import IMAGE
from .data import list_files, read_pixels


def _finite(db: float) -> float:
    """A perfect reconstruction counts as 120 dB, so that one file cannot make the mean inf."""
    return min(db, 120.0)


@torch.no_grad()
def validate(codec: Codec, root: str | Path, limit: int = 8, max_seconds: float = 12.0) -> dict:
    """Mean PSNR over up to ``limit`` files: 8-bit RGB (gray codecs: luma) for images, peak
    1 for audio."""
    was_training = codec.training
    codec.eval()
    dev = codec.analysis.weight.device
    psnrs = []
    files = list_files(root, codec.preset.modality)[:limit]
    if codec.preset.modality is IMAGE:
        for f in files:
            a = read_pixels(f, codec.preset.channels)
            x = IMAGE.float_tensor(a)[None].to(dev)
            x_hat = codec.decode(codec.encode(x), x.shape[2:])[0].cpu()
            out = IMAGE.from_tensor(x_hat)
            psnrs.append(_finite(psnr(a.reshape(out.shape), out, 255.0)))
    else:
        for f in files:
            rate = audio_info(f).sample_rate
            a = read_audio(f, frames=int(max_seconds * rate))[0]  # stereo float32
            gain = peak_gain(np.abs(a).max())
            x = torch.from_numpy(np.ascontiguousarray(a.T))[None].to(dev)
            x_hat = codec.decode(codec.encode(x * gain), x.shape[2:]) / gain
            psnrs.append(_finite(psnr(x.cpu().numpy(), x_hat.cpu().numpy(), 1.0)))
    if was_training:
        codec.train()
    return {"psnr": float(np.mean(psnrs)) if psnrs else float("nan"), "files": len(psnrs)}
