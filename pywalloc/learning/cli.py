"""``walloc encode-dataset``: encode a folder of images or audio into sharded latents for
compressed-domain learning. Wired into ``walloc`` via add_parser/run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cliopts import option, require

__all__ = ["add_parser", "main", "run"]

_DESCRIPTION = """Encode every image (or audio file) under --data with a WaLLoC codec into
OUT_DIR/shard-NNNNN.safetensors (latents int8, or float16 with --continuous; labels from the
class subfolders) plus manifest.json. Re-running resumes: finished shards are verified and
skipped. On several machines, give each process --rank R --world-size W (or let torchrun set
RANK/WORLD_SIZE): each encodes a disjoint set of shards into the same OUT_DIR (a shared
filesystem), and the last one to finish writes manifest.json."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``encode-dataset`` subcommand on an ``argparse`` subparsers object."""
    ap = subparsers.add_parser("encode-dataset", help="encode a folder into sharded latents "
                               "for training models on them", description=_DESCRIPTION)
    ap.add_argument("--codec", required=True, help="codec preset, e.g. rgb-16x or stereo-20x")
    ap.add_argument("--data", required=True, type=Path,
                    help="input folder; first-level subfolders are the class labels")
    option(ap, "-o", "--output", aliases=("--out",), dest="out", required=True, type=Path,
           metavar="OUT_DIR", help="folder for the shards and manifest.json")
    ap.add_argument("--size", type=int, default=None,
                    help="images: resize the shorter side and center-crop to SIZE x SIZE; "
                         "audio: crop/zero-pad to SIZE frames (needed if inputs differ)")
    ap.add_argument("--sample-rate", type=int, default=44100,
                    help="audio: resample inputs to this rate (default 44100)")
    ap.add_argument("--continuous", action="store_true",
                    help="store companded latents before rounding (float16) instead of int8")
    ap.add_argument("--shard-size", type=int, default=1024, help="items per shard")
    ap.add_argument("--batch-size", type=int, default=16, help="items per encoder call")
    ap.add_argument("--workers", type=int, default=2,
                    help="DataLoader processes decoding the inputs (0: in this process)")
    ap.add_argument("--rank", type=int, default=None, help="this process's index (default "
                    "$RANK or 0)")
    ap.add_argument("--world-size", type=int, default=None,
                    help="number of processes sharing the work (default $WORLD_SIZE or 1)")
    ap.add_argument("--device", default="cpu", help="torch device for the encoder")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ap.set_defaults(func=run, error_prefix="walloc encode-dataset",
                    interrupt_note="finished shards are kept; rerun to resume")
    return ap


def run(args: argparse.Namespace) -> int:
    """Run ``walloc encode-dataset``; returns the exit status (errors raise; ``run_command``
    prints them)."""
    if require(args, "walloc encode-dataset"):
        return 2
    import torch

    from ..zoo import load
    from .encode import encode_dataset

    def log(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr)

    failed: list[str] = []

    def on_error(rel: str, reason: str) -> None:
        # One line per bad file, as `walloc encode` reports it; the run goes on.
        failed.append(rel)
        print(f"walloc encode-dataset: error: {Path(args.data) / rel}: {reason}",
              file=sys.stderr)

    if args.threads:
        torch.set_num_threads(args.threads)
    codec = load(args.codec, device=args.device)
    manifest = encode_dataset(
        codec, args.data, args.out, continuous=args.continuous, shard_size=args.shard_size,
        size=args.size, sample_rate=args.sample_rate, workers=args.workers,
        batch_size=args.batch_size, rank=args.rank, world_size=args.world_size,
        progress=not args.quiet, log=log, on_error=on_error)
    note = (f" ({len(failed)} file{'s' if len(failed) != 1 else ''} failed, listed in the "
            "manifest under 'skipped'; rerun to retry them)" if failed else "")
    if manifest is None:
        print(f"shards of this rank done in {args.out}{note}; manifest.json is written by the "
              "last rank to finish (or rerun with --world-size 1 to check and write it)")
    else:
        shape = manifest["latent_shape"]
        print(f"{manifest['count']} items in {len(manifest['shards'])} shards -> {args.out} "
              f"(latents {manifest['dtype']} {shape}, {len(manifest['label_names'])} labels)"
              f"{note}")
    return 1 if failed or (manifest and manifest.get("skipped")) else 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m pywalloc.learning.cli encode-dataset ...``."""
    parser = argparse.ArgumentParser(prog="walloc")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    from ..cli import run_command

    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
