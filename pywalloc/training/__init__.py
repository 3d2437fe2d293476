"""Training: streamed data sets, PCA initialisation, the loop (DDP-ready) and checkpoints."""

from .loop import TrainConfig, train

__all__ = ["TrainConfig", "train"]
