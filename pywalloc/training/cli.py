"""``walloc train``: flags map one to one onto :class:`TrainConfig`."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

from ..cliopts import option
from .config import HELP, METAVAR, TrainConfig

# Fields whose flags are spelled as in the other subcommands (old spellings stay as aliases).
_FLAGS = {"preset": (("--codec",), ("--preset",)), "out": (("-o", "--output"), ("--out",)),
          "quiet": (("-q", "--quiet"), ())}


def add_parser(sub) -> argparse.ArgumentParser:
    ap = sub.add_parser("train", help="train a codec", description="Train a WaLLoC codec.")
    for f in fields(TrainConfig):
        if f.name == "overrides":
            continue
        flags, aliases = _FLAGS.get(f.name, (("--" + f.name.replace("_", "-"),), ()))
        required = f.name in ("preset", "data", "out")
        # Defaults stay None so that a --config file's values are not overridden by them;
        # TrainConfig supplies the real defaults (shown in the help).
        shown = "" if required or f.default is None or f.default is False else f" (default: {f.default})"
        if f.type in ("bool", bool):
            option(ap, *flags, aliases=aliases, dest=f.name, action="store_true", default=None,
                   help=HELP[f.name])
        else:
            typ = {"int": int, "float": float}.get(str(f.type), str)
            metavar = METAVAR.get(f.name, "N" if typ is int else "X" if typ is float else "VALUE")
            option(ap, *flags, aliases=aliases, dest=f.name, type=typ, required=required,
                   default=None, metavar=metavar, help=HELP[f.name] + shown)
    ap.add_argument("--config", metavar="FILE",
                    help="JSON file of the same keys; flags given override it")
    ap.add_argument("--width", type=int, metavar="N", help="override the decoder width")
    ap.add_argument("--blocks", type=int, metavar="N", help="override the decoder depth")
    ap.add_argument("--pad", choices=("zeros", "replicate"),
                    help="override the padding of the decoder's convolutions at the borders")
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
    missing = [flag for dest, flag in getattr(args, "_required_options", [])
               if dest not in values]
    if missing:  # neither a flag nor the --config file gave them
        raise MissingOptionError(f"the following arguments are required: {', '.join(missing)}")
    over = {k: getattr(args, k) for k in ("width", "blocks", "pad") if getattr(args, k, None)}
    if over:
        values["overrides"] = over
    return TrainConfig(**values)


class MissingOptionError(ValueError):
    """A required setting is given neither as a flag nor in the --config file."""


def run(args: argparse.Namespace) -> int:
    import sys

    try:
        cfg = config_from_args(args)
    except MissingOptionError as exc:
        print(f"walloc train: error: {exc}", file=sys.stderr)
        return 2
    from .loop import train

    result = train(cfg)
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pywalloc.training")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_parser(sub)
    return run(ap.parse_args(["train", *(argv if argv is not None else __import__("sys").argv[1:])]))
