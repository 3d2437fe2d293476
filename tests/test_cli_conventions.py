"""One spelling of each option across subcommands; old spellings still parse but are hidden."""

from __future__ import annotations

import pytest

from pywalloc.cli import build_parser


def _sub(name: str):
    return build_parser()._subparsers._group_actions[0].choices[name]


def _parse(*argv: str):
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize(("argv", "dest", "value"), [
    (["train", "--codec", "rgb-4x", "--data", "d", "-o", "r"], "preset", "rgb-4x"),
    (["train", "--preset", "rgb-4x", "--data", "d", "--out", "r"], "preset", "rgb-4x"),
    (["train", "--codec", "rgb-4x", "--data", "d", "--output", "r", "-q"], "out", "r"),
    (["train", "--codec", "rgb-4x", "--data", "d", "--out", "r"], "out", "r"),
    (["eval", "--codec", "rgb-16x", "--data", "d", "-o", "r", "-q"], "quiet", True),
    (["eval", "--codec", "rgb-16x", "--data", "d", "--out", "r"], "out", "r"),
    (["encode-dataset", "--codec", "rgb-16x", "--data", "d", "-o", "r", "-q"], "quiet", True),
    (["encode-dataset", "--codec", "rgb-16x", "--data", "d", "--out", "r"], "out", "r"),
])
def test_new_and_old_spellings_parse_the_same(argv, dest, value):
    assert str(getattr(_parse(*argv), dest)) == str(value)


@pytest.mark.parametrize("name", ["train", "eval", "encode-dataset"])
def test_help_shows_one_spelling(name):
    text = _sub(name).format_help()
    assert "--codec" in text and "-o OUT" in text.replace("-o DIR", "-o OUT").replace(
        "-o RESULTS_DIR", "-o OUT").replace("-o OUT_DIR", "-o OUT") and "-q, --quiet" in text
    assert "--preset" not in text and "--out " not in text


def test_required_option_given_by_neither_spelling(capsys):
    from pywalloc.training.cli import run

    assert run(_parse("train", "--data", "d", "-o", "r")) == 2
    assert "required: --codec" in capsys.readouterr().err


def test_train_help_names_every_decoder_size():
    """`walloc train --size`'s help lists the sizes there are (it once named two of three)."""
    from pywalloc.presets import SIZES

    text = " ".join(_sub("train").format_help().split())
    for sizes in SIZES.values():
        for name in sizes:
            assert name in text.rsplit("--size NAME", 1)[1].split("--val", 1)[0], name


@pytest.mark.parametrize(("command", "failing"), [
    ("encode", ["{d}/missing.png", "-q"]),
    ("decode", ["{d}/missing.wlc", "-q"]),
    ("info", ["{d}/missing.wlc"]),
    ("roundtrip", ["{d}/missing.png"]),
    ("train", ["--codec", "rgb-16x", "--data", "{d}", "-o", "{d}/run", "-q"]),
    ("eval", ["--codec", "rgb-16x", "--data", "{d}", "-o", "{d}/res", "-q"]),
    ("encode-dataset", ["--codec", "rgb-16x", "--data", "{d}", "-o", "{d}/lat", "-q"]),
])
def test_a_subcommand_starts_its_usage_and_run_errors_alike(command, failing, tmp_path, capsys):
    """argparse prefixes a subcommand's usage errors with ``walloc SUBCOMMAND``; the errors
    raised while it runs (here a missing input or an empty data folder) get the same prefix."""
    import warnings

    from pywalloc.cli import main

    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--no-such-option"])
    usage = capsys.readouterr().err.strip().splitlines()[-1]
    assert usage.startswith(f"walloc {command}: error: ")
    with warnings.catch_warnings():  # main() routes warnings for the process it runs in
        rc = main([command, *(a.format(d=tmp_path) for a in failing)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(lines) == 1, lines
    assert lines[0].startswith(f"walloc {command}: error: "), lines
