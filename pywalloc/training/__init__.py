"""Training: streamed data sets, PCA initialisation, the loop (DDP-ready) and checkpoints."""

from __future__ import annotations

from typing import Any

from .config import TrainConfig

__all__ = ["TrainConfig", "train"]


def __getattr__(name: str) -> Any:
    if name == "train":  # imports torch: only when asked for
        from .loop import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
