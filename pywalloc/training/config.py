"""The training settings as data: :class:`TrainConfig` and its help text (no torch import, so
that ``walloc --help`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HELP", "TrainConfig"]


@dataclass
class TrainConfig:
    preset: str
    data: str
    out: str
    size: str = "small"
    val: str | None = None
    steps: int = 20000
    batch: int = 16
    crop: int = 0  # 0: 256 for images, 32768 frames for audio
    per_item: int = 1  # crops decoded per file read
    lr: float = 1e-3
    analysis_lr: float = 1e-4
    warmup: int = 500
    weight_decay: float = 1e-4
    wpt_loss: float = 0.0
    flat: float = 0.0  # weight of the flat-colour loss (images)
    clip: float = 1.0
    gain: float = 0.0  # 0: the preset's default
    seed: int = 0
    workers: int = 2
    threads: int = 0
    log_every: int = 50
    val_every: int = 1000
    ckpt_every: int = 500
    max_minutes: float = 0.0
    bf16: bool = False
    resume: bool = False
    init: str | None = None  # start from these weights (fine-tuning) instead of PCA
    decoder_only: bool = False  # freeze the analysis layer and train on rounded latents
    ste: bool = False  # rounded latents with straight-through gradients to the encoder
    device: str = "auto"
    val_limit: int = 8
    quiet: bool = False  # no progress bar
    overrides: dict = field(default_factory=dict)


# One line per flag of ``walloc train``: what it does, in words.
HELP = {
    "preset": "codec preset (rgb-16x, rgb-4x, gray-16x, gray-4x, stereo-20x, stereo-5x; "
              "gray codecs train on the images' luma)",
    "data": "folder of training images or audio files (searched recursively)",
    "out": "run folder: log.csv, checkpoint/, model.safetensors",
    "size": "decoder size: small, medium (wider) or paper (the paper's, with attention)",
    "val": "folder of validation files (PSNR with real rounding)",
    "steps": "number of optimizer steps",
    "batch": "crops per step",
    "crop": "crop size in pixels (images) or frames (audio); 0 = 256 / 32768",
    "per_item": "crops taken from each decoded file (feeds fast GPUs)",
    "lr": "peak learning rate of the decoder (warm-up, then cosine decay)",
    "analysis_lr": "peak learning rate of the linear analysis (encoder) layer",
    "warmup": "steps of linear learning-rate warm-up",
    "weight_decay": "AdamW weight decay of the decoder (the analysis layer has none)",
    "wpt_loss": "weight of an extra MSE loss in the wavelet domain (0 = off)",
    "flat": "weight of an extra MSE loss on flat pictures of random colours, one latent each "
            "(images; teaches the decoder flat areas and tiny pictures; 0 = off)",
    "clip": "gradient-norm clipping threshold",
    "gain": "latent gain (sets the bit rate); 0 = the preset's default",
    "seed": "random seed (crops, initialisation, data order)",
    "workers": "DataLoader worker processes",
    "threads": "torch CPU threads (0 = torch default)",
    "log_every": "write a log.csv row every N steps",
    "val_every": "validate every N steps",
    "ckpt_every": "save a checkpoint every N steps",
    "max_minutes": "stop and save cleanly after this many minutes (0 = no limit)",
    "bf16": "the decoder CNN's convolutions in bfloat16 (about 1.5x faster steps on CPUs with "
            "bf16 instructions, and on GPUs); the encoder, transforms, norms and linear path "
            "stay float32",
    "resume": "continue from OUT/checkpoint exactly (model, optimizer, schedule, RNG)",
    "init": "start from these weights (.safetensors) instead of the PCA initialisation",
    "decoder_only": "freeze the encoder; train the decoder on rounded latents (fine-tuning)",
    "ste": "train encoder and decoder on rounded latents, the rounding's gradient passed "
           "straight through to the encoder (joint fine-tuning to the rounding the files use)",
    "device": "auto (CUDA when available), cpu, cuda or cuda:N",
    "val_limit": "at most this many validation files per validation",
    "quiet": "no progress bar",
}
# Metavariables shown in the usage line instead of the upper-cased flag name.
METAVAR = {"preset": "NAME", "data": "DIR", "out": "DIR", "val": "DIR", "size": "NAME",
           "init": "FILE", "device": "DEVICE", "lr": "LR", "analysis_lr": "LR", "gain": "X",
           "weight_decay": "X", "wpt_loss": "X", "flat": "X", "clip": "X", "max_minutes": "MIN", "crop": "N"}
