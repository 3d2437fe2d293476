"""``walloc train``: flags map one to one onto :class:`TrainConfig`."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

from .loop import TrainConfig

_HELP = {
    "preset": "codec preset (rgb-16x, rgb-4x, stereo-20x, stereo-5x)",
    "data": "folder of training images or audio files (searched recursively)",
    "out": "run folder: log.csv, checkpoint/, model.safetensors",
    "val": "folder of validation files (PSNR with real rounding)",
    "size": "model size: small or paper",
    "crop": "crop size in pixels (images) or frames (audio); 0 = 256 / 32768",
    "per_item": "crops taken from each decoded file (feeds fast GPUs)",
    "max_minutes": "stop and save cleanly after this many minutes (0 = no limit)",
    "gain": "latent gain (sets the bit rate); 0 = the preset's default",
    "resume": "continue from OUT/checkpoint exactly (model, optimizer, schedule, RNG)",
    "bf16": "bf16 autocast (GPU)",
    "threads": "torch CPU threads (0 = torch default)",
    "decoder_only": "freeze the encoder; train the decoder on rounded latents (fine-tuning)",
    "init": "start from these weights (.safetensors) instead of the PCA initialisation",
}


def add_parser(sub) -> argparse.ArgumentParser:
    ap = sub.add_parser("train", help="train a codec", description="Train a WaLLoC codec.")
    for f in fields(TrainConfig):
        if f.name == "overrides":
            continue
        flag = "--" + f.name.replace("_", "-")
        required = f.name in ("preset", "data", "out")
        # Defaults stay None so that a --config file's values are not overridden by them;
        # TrainConfig supplies the real defaults (shown in the help).
        shown = "" if required else f" (default: {f.default})"
        if f.type in ("bool", bool):
            ap.add_argument(flag, action="store_true", default=None,
                            help=(_HELP.get(f.name) or "") + shown)
        else:
            typ = {"int": int, "float": float}.get(str(f.type), str)
            ap.add_argument(flag, type=typ, required=required, default=None,
                            help=(_HELP.get(f.name) or f.name.replace("_", " ")) + shown)
    ap.add_argument("--config", help="JSON file of the same keys; flags given override it")
    ap.add_argument("--width", type=int, help="override the decoder width")
    ap.add_argument("--blocks", type=int, help="override the decoder depth")
    return ap


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {}
    if getattr(args, "config", None):
        with open(args.config) as fh:
            values.update(json.load(fh))
    names = {f.name for f in fields(TrainConfig)}
    for k, v in vars(args).items():
        if k in names and v is not None:
            values[k] = v
    over = {k: getattr(args, k) for k in ("width", "blocks") if getattr(args, k, None)}
    if over:
        values["overrides"] = over
    return TrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    from .loop import train

    result = train(config_from_args(args))
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pywalloc.training")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_parser(sub)
    return run(ap.parse_args(["train", *(argv if argv is not None else __import__("sys").argv[1:])]))
