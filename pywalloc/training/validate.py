"""Validation during training: PSNR with real rounding (eval mode), on whole images or clips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..codec import Codec, peak_gain
from .data import AUDIO_SUFFIXES, IMAGE_SUFFIXES, list_files


@torch.no_grad()
def validate(codec: Codec, root: str | Path, limit: int = 8, max_seconds: float = 12.0) -> dict:
    """Mean PSNR over up to ``limit`` files: 8-bit RGB for images, peak 1 for audio."""
    was_training = codec.training
    codec.eval()
    dev = codec.analysis.weight.device
    psnrs = []
    if codec.preset.modality == "image":
        from PIL import Image

        for f in list_files(root, IMAGE_SUFFIXES)[:limit]:
            with Image.open(f) as im:
                a = np.asarray(im.convert("RGB"))
            x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float().div(255).sub(0.5).to(dev)
            x_hat = codec.decode(codec.encode(x), x.shape[2:])
            x_hat = torch.round((x_hat + 0.5) * 255) / 255 - 0.5
            mse = float(((x_hat - x) ** 2).mean())
            psnrs.append(10 * math.log10(1.0 / max(mse, 1e-12)))
    else:
        import soundfile as sf

        for f in list_files(root, AUDIO_SUFFIXES)[:limit]:
            info = sf.info(str(f))
            a, _ = sf.read(str(f), frames=int(max_seconds * info.samplerate), dtype="float32",
                           always_2d=True)
            a = a[:, :2] if a.shape[1] >= 2 else np.repeat(a, 2, axis=1)
            gain = peak_gain(np.abs(a).max())
            x = torch.from_numpy(np.ascontiguousarray(a.T))[None].to(dev)
            x_hat = codec.decode(codec.encode(x * gain), x.shape[2:]) / gain
            mse = float(((x_hat - x) ** 2).mean())
            psnrs.append(10 * math.log10(1.0 / max(mse, 1e-12)))
    if was_training:
        codec.train()
    return {"psnr": float(np.mean(psnrs)) if psnrs else float("nan"), "files": len(psnrs)}
