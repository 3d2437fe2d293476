"""Smoke runs of the benchmark scripts' quick modes (they print tables; no timing is checked)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def _run(*args, timeout=600):
    res = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_encode_benchmark_quick():
    out = _run("benchmarks/encode.py", "--quick")
    assert "rgb-16x encode" in out and "JPEG q75" in out and "stereo-20x encode" in out


def test_throughput_benchmark_quick():
    """Every bundled RGB codec against WebP and JPEG (the gray codec, bundled since, broke it)."""
    out = _run("benchmarks/throughput.py", "--quick")
    assert "**WaLLoC rgb-16x**" in out and "**WaLLoC rgb-4x**" in out and "| webp |" in out
    assert "gray-16x" not in out


def test_flat_benchmark_quick():
    out = _run("benchmarks/flat.py", "--quick")
    assert "rgb-16x (" in out and "| 8x8 |" in out


def test_model_card_quick():
    if not (SHARED / "kodak").is_dir():
        pytest.skip("../shared/data not available")
    out = _run("benchmarks/model_card.py", "--quick")
    assert "rgb-16x" in out and "PCA (no quant.)" in out and "| paper |" in out
    gray = next(x for x in out.splitlines() if x.startswith("| gray-16x | 1."))  # the Kodak row
    assert "luma" in gray and "MISS" not in gray
    assert "torch CPU capability" in out  # decode times mean little without the machine


def _bench(name: str):
    """A module of benchmarks/, imported as its scripts import each other."""
    import importlib

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_model_card_partial_run_keeps_the_other_rows():
    mc = _bench("model_card")
    previous = {"date": "D0", "cpu": "C0", "command": "full",
                "images": [{"codec": "rgb-16x", "psnr": 1.0}, {"codec": "rgb-4x", "psnr": 2.0}],
                "audio": [{"codec": "stereo-20x", "psnr": 3.0}, {"codec": "stereo-5x",
                                                                 "psnr": 4.0}],
                "sizes": [{"codec": "rgb-16x", "size": "small"}]}
    new = {"date": "D1", "cpu": "C1", "command": "partial", "sizes": [],
           "images": [], "audio": [{"codec": "stereo-20x", "psnr": 3.5, "date": "D1",
                                    "cpu": "C1"}]}
    out = mc.merge(previous, new, {"stereo-20x"})
    assert [r["codec"] for r in out["images"] + out["audio"]] == \
        ["rgb-16x", "rgb-4x", "stereo-20x", "stereo-5x"]
    assert [r["psnr"] for r in out["images"] + out["audio"]] == [1.0, 2.0, 3.5, 4.0]
    assert out["audio"][1]["date"] == "D0" and out["audio"][1]["cpu"] == "C0"
    assert out["sizes"] == previous["sizes"] and out["date"] == "D1"
    said = mc.when_measured(out)
    assert "measured apart" in said and "stereo-20x D1" in said and "rgb-16x D0" in said
    assert "C0 / C1" in said
    assert mc.when_measured(previous) == "Measured D0. CPU: C0."
    # a codec the partial run was asked for but could not measure is not kept from before
    assert [r["codec"] for r in mc.merge(previous, {**new, "audio": []},
                                         {"stereo-20x"})["audio"]] == ["stereo-5x"]


def test_model_card_partial_run_errors(tmp_path):
    for args, said in ((["--codecs", "rgb-99x"], "unknown codec(s) rgb-99x"),
                       (["--codecs", "rgb-16x", "--out", str(tmp_path / "none.md")],
                        "cannot read them")):
        res = subprocess.run([sys.executable, "benchmarks/model_card.py", *args], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
        assert res.returncode == 2 and said in res.stderr
        assert res.stderr.strip().count("\n") == 0 and not (tmp_path / "none.md").exists()


def test_training_totals_count_a_lost_log(tmp_path):
    """A stage whose log was lost (lost.json) still adds its recorded steps and minutes."""
    model_card = _bench("model_card")
    (tmp_path / "rgb-16x.csv").write_text("step,minutes\n5,0.5\n10,1.0\n")
    (tmp_path / "rgb-16x-ste-c3i.csv").write_text("step,minutes\n7,2.0\n")
    assert model_card.training_summary(tmp_path)["rgb-16x"] == {"steps": 17, "minutes": 3.0}
    (tmp_path / "lost.json").write_text(
        '{"rgb-16x-ste-b2i": {"steps": 100, "minutes": 4.5, "note": "lost"}}')
    assert model_card.training_summary(tmp_path)["rgb-16x"] == {"steps": 117, "minutes": 7.5}
    assert model_card.training_summary(tmp_path)["rgb-4x"] == {"steps": 0, "minutes": 0.0}


def test_plot_training(tmp_path):
    pytest.importorskip("matplotlib")
    _run("benchmarks/plot_training.py", "--out", tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_plot_training_puts_the_links_of_an_averaged_pair_side_by_side():
    """The two links of a weight soup trained at once from one start: one group, one offset."""
    groups = _bench("plot_training").stage_groups(
        ("", "-ste-c13", "-ste-c23l-soup", "-ste-c23m-soup", "-ste-c24l-soup", "-ste-c24m-soup",
         "-ste-c25l-kept"))
    assert groups == [[""], ["-ste-c13"], ["-ste-c23l-soup", "-ste-c23m-soup"],
                      ["-ste-c24l-soup", "-ste-c24m-soup"], ["-ste-c25l-kept"]]


def test_pipelines_quick(tmp_path):
    out = _run("benchmarks/pipelines.py", "--quick", "--json", tmp_path / "p.json")
    for row in ("(a) JPEG decode + resize to 56x56", "(b) .wlc -> latents",
                "(c) latent shards", "(d) JPEG decode + EncodeTransform"):
        assert row in out
    import json

    r = json.loads((tmp_path / "p.json").read_text())["results"]
    # every pipeline delivers the same number of values per sample (equal dimension)
    assert {v["values"] for v in r.values()} == {9408}
    assert all(v["samples_per_s"] > 0 and v["samples"] == 64 for v in r.values())


def test_startup_benchmark_quick():
    out = _run("benchmarks/startup.py", "--quick")
    for name in ("--help", "--version", "info", "models"):
        assert f"| walloc {name} |" in out
    assert "First load of each default" in out and ".safetensors.xz |" in out


def test_entropy_benchmark_quick():
    if not (SHARED / "kodak").is_dir() or not (SHARED / "stems" / "test").is_dir():
        pytest.skip("../shared/data not available")
    out = _run("benchmarks/entropy.py", "--quick")
    assert "**(default)**" in out and "Pillow defaults" in out and "stereo-5x" in out


def test_borders_benchmark_quick():
    if not (SHARED / "kodak").is_dir():
        pytest.skip("../shared/data not available")
    out = _run("benchmarks/borders.py", "--quick")
    assert "| periodization |" in out and "| symmetric |" in out and "At equal rate" in out


def test_decoder_sizes_quick():
    out = _run("benchmarks/decoder_sizes.py", "--quick")
    assert "| 128 | 6 |" in out and "x real time" in out


def test_resample_benchmark_quick():
    """benchmarks/resample.py: every pair timed and checked against the target; a target no
    machine meets fails the run (exit 1) and names the pairs."""
    out = _run("benchmarks/resample.py", "--quick", "--target", "1")
    assert out.count("PASS") == 8 and "48000->44100" in out
    res = subprocess.run([sys.executable, "benchmarks/resample.py", "--quick", "--target",
                          "1e12"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=False)
    assert res.returncode == 1 and res.stdout.count("FAIL") == 8
    assert "below 1e+12x real time: 48000->44100" in res.stdout


def test_device_throughput_quick(tmp_path):
    """benchmarks/device_throughput.py on the CPU: every bundled codec plus a --weights file
    in the table and the JSON; a CUDA request without CUDA is one error line, exit 2."""
    import json

    import torch

    out = _run("benchmarks/device_throughput.py", "--quick", "--json", tmp_path / "t.json",
               "--weights", f"rgb-16x={ROOT / 'pywalloc/weights/rgb-16x-small.safetensors.xz'}")
    assert "rgb-4x small" in out and "stereo-5x small" in out and "end to end" in out
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert len(rows) == 5 and all(r["encode"] > 0 and r["decode"] > 0 for r in rows.values())
    # the extra file is the bundled rgb-16x decoder, so it reconstructs as well as it
    extra = next(k for k in rows if k.startswith("rgb-16x rgb-16x-small"))
    assert abs(rows[extra]["mse"] - rows["rgb-16x small"]["mse"]) < 1e-6
    if not torch.cuda.is_available():
        res = subprocess.run([sys.executable, "benchmarks/device_throughput.py", "--device",
                              "cuda"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             check=False)
        assert res.returncode == 2 and res.stderr.strip().count("\n") == 0


def test_memory_benchmark_quick():
    out = _run("benchmarks/memory.py", "--quick")
    assert "| encode 256x256 PNG |" in out and "| decode 0.05 min stereo FLAC |" in out
    out = _run("benchmarks/memory.py", "--quick", "--only", "audio", "--rate", "48000",
               "--format", "ogg")
    assert "| decode 0.05 min stereo OGG at 48 kHz |" in out and "PNG" not in out


def test_crops_quick(tmp_path):
    pytest.importorskip("matplotlib")
    out = _run("benchmarks/crops.py", "--quick", "--out", tmp_path / "c.png")
    assert "WaLLoC rgb-16x:" in out and "refine 2" in out and "WebP" in out and "JPEG" in out
    assert (tmp_path / "c.png").stat().st_size > 5_000


def test_train_step_benchmark_quick():
    out = _run("benchmarks/train_step.py", "--quick")
    row = next(line for line in out.splitlines() if line.startswith("| rgb-16x |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert float(cells[1]) > 0 and float(cells[2]) > 0


def test_timing_loop_counts_calls_and_reads_the_given_clock():
    """The benchmarks' one timing loop: a warm-up call that is not timed, the clock the caller
    gives, best and median, and the cap that stops repeating slow work."""
    timing = _bench("timing")
    durations = iter([9.0, 3.0, 1.0, 2.0, 5.0, 4.0, 6.0, 7.0, 0.5])
    now = [0.0]
    calls = []

    def clock():
        return now[0]

    def fn(tag):
        calls.append(tag)
        now[0] += next(durations)
        return len(calls)

    best, out = timing.best_time(3, fn, "a", clock=clock)
    assert calls == ["a"] * 4 and out == 4  # the warm-up (9 s) is not among the three timed
    assert best == 1.0
    med, _ = timing.median_time(3, fn, "b", clock=clock, warmup=False)
    assert med == 5.0 and len(calls) == 7  # 5, 4, 6: no warm-up this time
    times, _ = timing.call_times(lambda: fn("c"), 5, clock=clock, warmup=False, cap=6.5)
    assert times == [7.0] and len(calls) == 8  # 7 s > cap: not repeated
    times, _ = timing.call_times(lambda: None, 0, clock=clock, warmup=False)
    assert len(times) == 1  # at least one timed call
