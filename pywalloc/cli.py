"""The ``walloc`` command: parse arguments, call the library, print, set the exit status."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from . import __version__
from .cliopts import option

WLC_SUFFIX = ".wlc"
STDIO = "-"  # as an input: read stdin; as -o: write stdout
DECODED = ".decoded"  # photo.wlc -> photo.decoded.png beside it: never the source's own name


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _fail_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


def _atomic_write(path: Path, data: bytes, force: bool) -> None:
    """Write via a temporary file in the target folder, then rename: never a partial file."""
    if path.exists() and not force:
        raise CliError(f"'{path}' exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _expand(inputs: list[str], suffixes: set[str] | None) -> list[tuple[Path, Path]]:
    """(file, path relative to its root argument) for files and folders (searched recursively)."""
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                           and (suffixes is None or f.suffix.lower() in suffixes))
            if not files:
                raise CliError(f"no input files in folder '{p}'")
            out += [(f, f.relative_to(p)) for f in files]
        else:
            out.append((p, Path(p.name)))
    return out


def _targets(pairs: list[tuple[Path, Path]], out: str | None, suffix_for, many: bool,
             beside: str = ""):
    """Pair each input with its output path (``beside`` is inserted before the suffix of
    outputs written next to their input, when no ``-o`` is given)."""
    if out is None:
        return [(src, src.with_suffix(beside + suffix_for(src))) for src, _ in pairs]
    o = Path(out)
    if many or o.is_dir() or out.endswith(os.sep):
        return [(src, (o / rel).with_suffix(suffix_for(src))) for src, rel in pairs]
    return [(pairs[0][0], o)]


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _raw_bytes(header) -> int:
    """Uncompressed size: 8-bit pixels for images, 16-bit PCM for audio."""
    if header.modality == "image":
        return header.shape[0] * header.shape[1] * (1 if header.mode == "L" else 3)
    return header.shape[0] * header.channels * 2


def _batch(jobs, work, label: str, quiet: bool) -> int:
    """Run ``work(src, dst) -> (raw_bytes, out_bytes)`` over jobs; report failures, go on."""
    from tqdm import tqdm

    failed, raw_total, out_total, t0 = 0, 0, 0, time.perf_counter()
    show_bar = len(jobs) > 1 and not quiet
    with tqdm(jobs, desc=label, unit="file", disable=not show_bar, file=sys.stderr,
              dynamic_ncols=True) as bar:
        for src, dst in bar:
            try:
                raw, size = work(src, dst)
                raw_total += raw
                out_total += size
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop a batch
                failed += 1
                bar.write(f"walloc: error: {src}: {_fail_line(exc)}", file=sys.stderr)
    ok = len(jobs) - failed
    if not quiet and ok:
        secs = time.perf_counter() - t0
        ratio = raw_total / out_total if out_total else 0.0
        print(f"{label}d {ok} file{'s' if ok != 1 else ''}"
              f"{f' ({failed} failed)' if failed else ''}: raw {_human(raw_total)}, "
              f"compressed {_human(out_total)}, ratio {ratio:.1f}:1, {secs:.2f} s")
    return 1 if failed else 0


# -- stdin / stdout ---------------------------------------------------------------------------
def _read_stdin() -> bytes:
    if sys.stdin is None or sys.stdin.isatty():
        raise CliError("'-' reads stdin, but stdin is a terminal (pipe or redirect a file)")
    data = sys.stdin.buffer.read()
    if not data:
        raise CliError("stdin is empty")
    return data


def _write_stdout(data: bytes) -> None:
    if sys.stdout.isatty():
        raise CliError("refusing to write binary data to a terminal (redirect it, or use -o FILE)")
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _stdio_only(args: argparse.Namespace) -> bool:
    """True when stdin or stdout is used: then there is one input and no batch."""
    if STDIO in args.inputs and len(args.inputs) > 1:
        raise CliError("'-' (stdin) must be the only input")
    if args.output == STDIO and len(args.inputs) > 1:
        raise CliError("-o - (stdout) takes a single input")
    return STDIO in args.inputs or args.output == STDIO


def _stdio_job(args: argparse.Namespace, convert) -> int:
    """One input (a file or stdin) -> ``convert(path, tmpdir) -> bytes`` -> -o FILE or stdout."""
    from .errors import WallocError

    with tempfile.TemporaryDirectory(prefix="walloc-") as tmp:
        if args.inputs[0] == STDIO:
            src = Path(tmp) / "stdin"
            src.write_bytes(_read_stdin())
        else:
            src = Path(args.inputs[0])
            if not src.is_file():
                raise CliError(f"'{src}': file not found")
        try:
            data = convert(src, Path(tmp))
        except WallocError as exc:  # name stdin as the user knows it, not the temporary file
            raise CliError(_fail_line(exc).replace(str(src), "<stdin>")) from None
    if args.output in (None, STDIO):
        _write_stdout(data)
    else:
        _atomic_write(Path(args.output), data, args.force)
    return 0


# -- subcommands ------------------------------------------------------------------------------
def cmd_encode(args: argparse.Namespace) -> int:
    from . import container
    from .api import compress_file

    if _stdio_only(args):
        return _stdio_job(args, lambda src, tmp: compress_file(src, args.codec, args.effort,
                                                              device=args.device))
    pairs = _expand(args.inputs, _MEDIA_SUFFIXES)
    jobs = _targets(pairs, args.output, lambda s: WLC_SUFFIX, len(pairs) > 1 or
                    any(Path(i).is_dir() for i in args.inputs))

    def work(src: Path, dst: Path):
        if dst.exists() and not args.force:
            raise CliError(f"'{dst}' exists (use --force to overwrite)")
        blob = compress_file(src, args.codec, args.effort, device=args.device)  # any modality
        _atomic_write(dst, blob, args.force)
        header, _ = container.read(blob)
        return _raw_bytes(header), len(blob)

    return _batch(jobs, work, "encode", args.quiet)


def cmd_decode(args: argparse.Namespace) -> int:
    from .api import decompress_file

    if _stdio_only(args):
        def convert(src: Path, tmp: Path) -> bytes:
            from . import container

            header, _ = container.read(src.read_bytes())
            want = Path(args.output) if args.output not in (None, STDIO) else None
            # to stdout: PNG or WAV; to a file: the format its suffix names
            out = tmp / ("out" + (want.suffix if want else
                                  ".png" if header.modality == "image" else ".wav"))
            decompress_file(src.read_bytes(), out, device=args.device)
            return out.read_bytes()

        return _stdio_job(args, convert)
    pairs = _expand(args.inputs, {WLC_SUFFIX})

    def suffix_for(src: Path) -> str:
        from . import container

        try:
            modality = container.read(src.read_bytes())[0].modality
        except Exception:  # noqa: BLE001 - the decode step reports the problem itself
            modality = "image"
        return ".png" if modality == "image" else ".wav"

    jobs = _targets(pairs, args.output, suffix_for,
                    len(pairs) > 1 or any(Path(i).is_dir() for i in args.inputs), DECODED)

    def work(src: Path, dst: Path):
        if dst.exists() and not args.force:
            raise CliError(f"'{dst}' exists (use --force to overwrite)")
        if not src.is_file():
            raise CliError(f"'{src}': file not found")
        blob = src.read_bytes()
        dst.parent.mkdir(parents=True, exist_ok=True)
        out = decompress_file(blob, dst, device=args.device)
        return _raw_bytes(out.header), len(blob)

    return _batch(jobs, work, "decode", args.quiet)


def _header_dict(header) -> dict:
    d = {
        "modality": header.modality, "codec": header.preset,
        "weights_hash": header.weights_hash.hex(), "shape": list(header.shape),
        "channels": header.channels, "latent_shape": list(header.latent_shape),
        "padding": list(header.padding), "mode": header.mode, "gain": header.gain,
    }
    if header.modality == "audio":
        d["sample_rate"] = header.sample_rate
    return d


def cmd_info(args: argparse.Namespace) -> int:
    from . import container

    path = Path(args.file)
    if args.file == STDIO:
        blob = _read_stdin()
    elif not path.is_file():
        raise CliError(f"'{path}': file not found")
    else:
        blob = path.read_bytes()
    header, payload = container.read(blob)
    d = _header_dict(header)
    d["file_bytes"], d["payload_bytes"] = len(blob), len(payload)
    if header.modality == "image":
        d["bpp"] = 8 * len(blob) / (header.shape[0] * header.shape[1])
    else:
        d["kbps"] = 8 * len(blob) / (header.shape[0] / header.sample_rate) / 1000
    d["compression_ratio"] = _raw_bytes(header) / len(blob)
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        width = max(len(k) for k in d)
        for k, v in d.items():
            print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    return 0


def _warm_up(modality: str, codec: str | None, device: str | None) -> None:
    """Load weights and run a tiny input once, so timings exclude one-off start-up costs."""
    import numpy as np

    from . import api

    if modality == "image":
        blob = api.compress_image(np.zeros((16, 16, 3), np.uint8), codec, device=device)
    else:
        blob = api.compress_audio(np.zeros((512, 2), np.float32), 44100, codec, device=device)
    api.decompress(blob, device=device)


def cmd_roundtrip(args: argparse.Namespace) -> int:
    import numpy as np

    from . import api, container
    from .media import detect_modality, read_audio, read_image
    from .presets import get_preset

    src = Path(args.input)
    modality = detect_modality(src)
    _warm_up(modality, args.codec, args.device)
    if modality == "image":
        pixels, info = read_image(src)
        ref = pixels[:, :, 0] if info.mode == "L" else pixels
        t0 = time.perf_counter()
        blob = api.compress_image(ref, args.codec, device=args.device)
        t1 = time.perf_counter()
        out = api.decompress(blob, device=args.device)
        t2 = time.perf_counter()
        err = out.astype(np.float64) - ref
        psnr = 10 * np.log10(255.0**2 / max(float(np.mean(err**2)), 1e-12))
        n = ref.shape[0] * ref.shape[1]
        rate, unit, speed_unit, key = 8 * len(blob) / n, "bpp", "MPix/s", "mpix_per_s"
    else:
        samples, sr, info = read_audio(src)
        ref = samples[:, :1] if info.channels == 1 else samples
        t0 = time.perf_counter()
        blob = api.compress_audio(ref, sr, args.codec, device=args.device)
        t1 = time.perf_counter()
        out, _ = api.decompress(blob, device=args.device)
        t2 = time.perf_counter()
        psnr = 10 * np.log10(1.0 / max(float(np.mean((out - ref) ** 2)), 1e-20))
        n = ref.shape[0] * ref.shape[1]
        rate, unit = 8 * len(blob) / (ref.shape[0] / sr) / 1000, "kbps"
        speed_unit, key = "MSamples/s", "msamples_per_s"
    header, _ = container.read(blob)
    d = {"input": str(src), "codec": header.preset, unit: rate,
         "compression_ratio": _raw_bytes(header) / len(blob),
         "dimensionality_reduction": get_preset(header.preset).dr, "psnr_db": psnr,
         "bytes": len(blob), "encode_s": t1 - t0, "decode_s": t2 - t1,
         f"encode_{key}": n / (t1 - t0) / 1e6, f"decode_{key}": n / (t2 - t1) / 1e6}
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        print(f"{src.name}: {header.preset}, {rate:.3f} {unit}, ratio {d['compression_ratio']:.1f}:1, "
              f"DR {d['dimensionality_reduction']:.2f}, PSNR {psnr:.2f} dB, "
              f"encode {d['encode_s'] * 1000:.0f} ms ({d[f'encode_{key}']:.1f} {speed_unit}), "
              f"decode {d['decode_s'] * 1000:.0f} ms")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Encode and decode the bundled samples, writing the files, and print the figures."""
    from . import api
    from .presets import available

    samples = Path(__file__).resolve().parent / "samples"
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    wanted = [c for c in ("rgb-16x", "rgb-4x", "stereo-20x", "stereo-5x") if c in available()]
    if not wanted:
        raise CliError("no bundled weights found; reinstall pywalloc")
    for name in wanted:
        src = samples / ("kodim23.png" if name.startswith("rgb") else "chimes.flac")
        blob = api.compress_file(src, name, device=args.device)
        wlc = out / f"{src.stem}.{name}.wlc"
        _atomic_write(wlc, blob, force=True)
        dec = out / f"{src.stem}.{name}{'.png' if name.startswith('rgb') else '.wav'}"
        api.decompress_file(wlc.read_bytes(), dec, device=args.device)
        rt = argparse.Namespace(input=str(src), codec=name, json=False, device=args.device)
        cmd_roundtrip(rt)
        print(f"  wrote {wlc} ({len(blob)} bytes) and {dec}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .presets import PRESETS, available, get_size

    bundled = set(available())
    if args.json:
        print(json.dumps([{
            "codec": p.name, "modality": p.modality, "levels": p.levels,
            "latent_channels": p.latent_channels, "dimensionality_reduction": p.dr,
            "bundled": p.name in bundled, "small_width": get_size(p, "small").width,
            "small_blocks": get_size(p, "small").blocks} for p in PRESETS.values()], indent=2))
        return 0
    for p in PRESETS.values():
        size = get_size(p, "small")
        print(f"{p.name:<11} {p.modality:<6} J={p.levels} C_z={p.latent_channels:<4} "
              f"DR={p.dr:<6.2f} small: width {size.width}, {size.blocks} blocks"
              f"{'  [bundled]' if p.name in bundled else ''}")
    return 0


_MEDIA_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm",
                   ".pgm", ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"}


def build_parser() -> argparse.ArgumentParser:
    from .presets import PRESETS

    ap = argparse.ArgumentParser(
        prog="walloc", description="WaLLoC wavelet learned lossy compression for images and audio.")
    ap.add_argument("--version", action="version", version=f"pywalloc {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    codecs = list(PRESETS)

    def common(p: argparse.ArgumentParser, quiet_help: str = "hide warnings") -> None:
        p.add_argument("-q", "--quiet", action="store_true", help=quiet_help)

    def device(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", default=None, metavar="DEVICE",
                       help="where the codec runs: cpu (default), cuda or cuda:N")

    p = sub.add_parser("encode", help="compress images or audio files to .wlc")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="files or folders; - reads one file from stdin")
    option(p, "-o", "--output", aliases=("--out",),
           help="output file, or folder for many inputs; - writes stdout "
                "(the default for stdin input)")
    option(p, "--codec", aliases=("--preset",), choices=codecs, metavar="NAME",
           help=f"one of {', '.join(codecs)}; default: rgb-16x for images, stereo-20x for audio")
    p.add_argument("--effort", type=int, choices=range(7), default=0, metavar="0-6",
                   help="lossless WebP effort: higher is slower and a few %% smaller "
                        "(same decoded output; default 0)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    device(p)
    common(p, "no progress bar, summary or warnings")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="decompress .wlc files to PNG/WAV (or what -o names)")
    p.add_argument("inputs", nargs="+", metavar="FILE.wlc",
                   help="files or folders; - reads one file from stdin")
    option(p, "-o", "--output", aliases=("--out",),
           help="output file (its suffix picks the format) or folder; - writes PNG/WAV to "
                "stdout (the default for stdin input). Default: NAME.decoded.png (or .wav) "
                "beside each input")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    device(p)
    common(p, "no progress bar, summary or warnings")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("info", help="print a .wlc file's header")
    p.add_argument("file", metavar="FILE.wlc", help="- reads stdin")
    p.add_argument("--json", action="store_true", help="print JSON")
    common(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("roundtrip", help="encode and decode in memory; print rate, PSNR, speed")
    p.add_argument("input")
    option(p, "--codec", aliases=("--preset",), choices=codecs, metavar="NAME",
           help="default: rgb-16x for images, stereo-20x for audio")
    p.add_argument("--json", action="store_true", help="print JSON")
    device(p)
    common(p)
    p.set_defaults(func=cmd_roundtrip)

    p = sub.add_parser("demo", help="encode and decode the bundled sample image and audio clip")
    option(p, "-o", "--output", aliases=("--out",), default="walloc-demo",
           help="folder for the files written (default: walloc-demo)")
    device(p)
    common(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="list codec presets and bundled weights")
    p.add_argument("--json", action="store_true", help="print JSON")
    common(p)
    p.set_defaults(func=cmd_models)

    from .training.cli import add_parser as add_train
    from .training.cli import run as run_train

    add_train(sub).set_defaults(func=run_train)
    for module in ("evaluation", "learning"):
        try:
            mod = __import__(f"pywalloc.{module}.cli", fromlist=["add_parser", "run"])
        except ImportError:
            continue
        mod.add_parser(sub).set_defaults(func=mod.run)
    return ap


_LIGHT_COMMANDS = {"info", "models"}


def _route_warnings(quiet: bool) -> None:
    """Warnings (RGBA input, animations, 16-bit samples...) become one ``walloc: warning:``
    line on stderr, without Python's source line; ``--quiet`` hides them."""
    if quiet:
        warnings.simplefilter("ignore")
        return

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message).strip().splitlines()
        print(f"walloc: warning: {text[0] if text else category.__name__}", file=sys.stderr)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    from .errors import WallocError
    from .presets import UnknownPresetError, WeightsNotFoundError

    args = build_parser().parse_args(argv)
    _route_warnings(bool(getattr(args, "quiet", False)))
    if args.command not in _LIGHT_COMMANDS:  # these never import torch: keep them fast
        from .wavelets import tune_allocator

        tune_allocator()  # a CLI process may keep its peak heap; big tensors stop page-faulting
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("walloc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `walloc models | head`: the reader left; not an error here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CliError, WallocError, WeightsNotFoundError, UnknownPresetError, OSError,
            ValueError) as exc:
        print(f"walloc: error: {_fail_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
