"""``walloc eval``: compare WaLLoC codecs with classical baselines on a folder of images or
audio and write JSON, a Markdown table and RD plots. Wired into ``walloc`` via add_parser/run.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..cliopts import option, steps

__all__ = ["add_parser", "main", "run"]

_DESCRIPTION = """Evaluate WaLLoC codecs end to end (compress -> bytes -> decompress) on every
image or audio file under --data, next to classical codecs at matched bitrates. Images: bpp,
compression ratio, PSNR, MS-SSIM, LPIPS, DISTS and MPix/s. Audio: kbps, PSNR, SI-SDR,
SSDR/SRDR and MSamples/s."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``eval`` subcommand on an ``argparse`` subparsers object."""
    ap = subparsers.add_parser("eval", help="evaluate codecs against classical baselines",
                               description=_DESCRIPTION)
    ap.add_argument("--codec", action="append", required=True, metavar="NAME",
                    help="WaLLoC codec to evaluate (repeatable), e.g. rgb-16x or stereo-5x")
    ap.add_argument("--data", required=True, type=Path,
                    help="folder of images or audio files (searched recursively)")
    ap.add_argument("--baselines", default=None, metavar="LIST",
                    help="comma-separated baselines, or 'none' (default: webp,jpeg,jpeg2000,"
                         "avif for images; opus,vorbis,mp3 for audio)")
    option(ap, "-o", "--output", aliases=("--out",), dest="out", type=Path, default=None,
           metavar="RESULTS_DIR", help="write results.json, results.md and rd_*.png here")
    ap.add_argument("--limit", type=int, default=None, metavar="N",
                    help="evaluate only the first N items (sorted by name)")
    ap.add_argument("--no-sweep", action="store_true",
                    help="skip the baseline quality sweeps (no RD curves; faster)")
    ap.add_argument("--no-perceptual", action="store_true", help="skip LPIPS and DISTS")
    ap.add_argument("--refine", type=steps, default=0, metavar="STEPS",
                    help="encode with this many steps of encoder-side refinement (as "
                         "walloc encode --refine; default 0: the plain encoder)")
    ap.add_argument("--metrics-device", default="cpu",
                    help="torch device for LPIPS/DISTS (e.g. cuda); codecs run where "
                         "pywalloc puts them")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (0 = torch default); reported with the timings")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ap.set_defaults(func=run, error_prefix="walloc eval")
    return ap


def _baselines(text: str | None) -> list[str] | None:
    if text is None:
        return None
    if text.strip().lower() in ("", "none"):
        return []
    return [b.strip().lower() for b in text.split(",") if b.strip()]


def run(args: argparse.Namespace) -> int:
    """Run ``walloc eval``; returns the exit status (errors raise; ``run_command`` prints)."""
    import torch

    from ..cli import UsageError
    from .harness import EvalConfig, evaluate
    from .report import markdown_table, write_outputs

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.metrics_device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--metrics-device cuda, but CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    argv = getattr(args, "argv", None) or sys.argv
    cfg = EvalConfig(codecs=args.codec, data=args.data, baselines=_baselines(args.baselines),
                     limit=args.limit, perceptual=not args.no_perceptual,
                     sweep=not args.no_sweep, metrics_device=args.metrics_device,
                     progress=not args.quiet, refine=args.refine,
                     command=" ".join(shlex.quote(a) for a in ["walloc", *argv[1:]]))
    results = evaluate(cfg)
    if args.out is not None:
        written = write_outputs(results, args.out)
        print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    print(markdown_table(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m pywalloc.evaluation.cli eval ...``."""
    parser = argparse.ArgumentParser(prog="walloc")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.argv = ["walloc", *(argv if argv is not None else sys.argv[1:])]
    from ..cli import run_command

    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
