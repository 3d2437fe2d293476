"""``walloc train``: flags map one to one onto :class:`TrainConfig`."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

from .config import HELP, METAVAR, TrainConfig


def add_parser(sub) -> argparse.ArgumentParser:
    ap = sub.add_parser("train", help="train a codec", description="Train a WaLLoC codec.")
    for f in fields(TrainConfig):
        if f.name == "overrides":
            continue
        flag = "--" + f.name.replace("_", "-")
        required = f.name in ("preset", "data", "out")
        # Defaults stay None so that a --config file's values are not overridden by them;
        # TrainConfig supplies the real defaults (shown in the help).
        shown = "" if required or f.default is None or f.default is False else f" (default: {f.default})"
        if f.type in ("bool", bool):
            ap.add_argument(flag, action="store_true", default=None, help=HELP[f.name])
        else:
            typ = {"int": int, "float": float}.get(str(f.type), str)
            metavar = METAVAR.get(f.name, "N" if typ is int else "X" if typ is float else "VALUE")
            ap.add_argument(flag, type=typ, required=required, default=None, metavar=metavar,
                            help=HELP[f.name] + shown)
    ap.add_argument("--config", metavar="FILE",
                    help="JSON file of the same keys; flags given override it")
    ap.add_argument("--width", type=int, metavar="N", help="override the decoder width")
    ap.add_argument("--blocks", type=int, metavar="N", help="override the decoder depth")
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
