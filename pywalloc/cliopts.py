"""One spelling of each option across the ``walloc`` subcommands (``--codec``, ``-o/--output``,
``-q/--quiet``), with the older spellings (``--preset``, ``--out``) kept as hidden aliases."""

from __future__ import annotations

import argparse
import sys

__all__ = ["option", "require", "steps"]

# Keyword arguments an alias must share with its option to parse the same way.
_SHARED = ("type", "action", "choices", "metavar", "nargs")


def option(ap: argparse.ArgumentParser, *flags: str, aliases: tuple[str, ...] = (),
           required: bool = False, **kwargs) -> argparse.Action:
    """``ap.add_argument(*flags, **kwargs)`` plus hidden ``aliases`` (not in ``--help``) that
    set the same value. argparse cannot check a required option given by an alias, so those
    are checked by :func:`require` when the command runs."""
    action = ap.add_argument(*flags, required=required and not aliases, **kwargs)
    for alias in aliases:
        ap.add_argument(alias, dest=action.dest, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS, **{k: kwargs[k] for k in _SHARED if k in kwargs})
    if required and aliases:
        needed = list(ap.get_default("_required_options") or [])
        ap.set_defaults(_required_options=[*needed, (action.dest, flags[-1])])
    return action


def require(args: argparse.Namespace, prog: str) -> int:
    """0, or 2 after argparse's one-line message when a required option is missing."""
    missing = [flag for dest, flag in getattr(args, "_required_options", [])
               if getattr(args, dest, None) is None]
    if missing:
        print(f"{prog}: error: the following arguments are required: {', '.join(missing)}",
              file=sys.stderr)
        return 2
    return 0


def steps(text: str) -> int:
    """argparse type of ``--refine``: a whole number of steps, 0 or more."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of steps >= 0, got '{text}'")
    return n
