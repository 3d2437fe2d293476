"""Start-up time of the ``walloc`` command for the subcommands that should not import torch.

    python benchmarks/startup.py [--quick] [--repeat 11]

Each command runs as ``python -m pywalloc ...`` in a fresh process (the repository's code, via
PYTHONPATH). Printed per command: the median wall time, the median CPU time (user + system of
the child: less sensitive to a busy machine than wall time), the wall time minus that of an
empty ``python -c pass`` (what pywalloc itself adds), and whether torch was imported. Target:
under 0.3 s for ``--help``, ``--version`` and ``info``. The verdict uses the wall time, or the CPU
time when the machine is busy (load average above its core count, where wall time mostly
measures waiting for a core; the table says which). Exit status 1 if one misses the target or
imports torch (not with --quick, which only checks that everything runs).

A second table: the first load of each bundled default in a fresh process
(``zoo.load(name).weight_hash``, timed inside the process after torch is imported), as shipped
(``.safetensors.xz``) without the user cache (``PYWALLOC_NO_CACHE=1``: unpacked in memory, what
the first process pays), as shipped with the cache's copy in place (every later process), and
from the same file unpacked beforehand. Targets, by the same wall/CPU rule: unpacking adds under
0.75 s (``UNPACK_TARGET_S``) per default, and with the cache under 0.1 s (``CACHED_TARGET_S``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.3
UNPACK_TARGET_S = 0.75
CACHED_TARGET_S = 0.1
# The first load of a weights file in a fresh process, timed inside it (torch and the zoo
# imported before the clock starts): wall and CPU seconds on stdout.
_LOAD = ("import sys, time, torch\n"
         "from pywalloc import zoo\n"
         "w, c = time.perf_counter(), time.process_time()\n"
         "zoo.load(sys.argv[1]).weight_hash\n"
         "print(time.perf_counter() - w, time.process_time() - c)\n")
# Run after the command in the same process: did it import torch?
_PROBE = ("import runpy, sys\n"
          "sys.argv = ['walloc', *sys.argv[1:]]\n"
          "try:\n"
          "    runpy.run_module('pywalloc', run_name='__main__')\n"
          "except SystemExit:\n"
          "    pass\n"
          "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\n")


def _env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), **extra}


def _time(cmd: list[str], repeat: int, env: dict | None = None) -> tuple[float, float]:
    """Median wall and CPU seconds of ``cmd`` over ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env or _env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def _imports_torch(args: list[str]) -> bool:
    res = subprocess.run([sys.executable, "-c", _PROBE, *args], env=_env(), capture_output=True,
                         text=True, check=False)
    return res.stderr.strip().endswith("\nTORCH") or res.stderr.strip() == "TORCH"


def _sample_wlc(folder: Path) -> Path:
    import numpy as np

    import pywalloc

    path = folder / "sample.wlc"
    path.write_bytes(pywalloc.compress(np.full((64, 64, 3), 128, np.uint8)))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 runs each, no pass/fail")
    ap.add_argument("--repeat", type=int, default=11)
    args = ap.parse_args()
    repeat = 3 if args.quick else args.repeat
    sys.path.insert(0, str(ROOT))  # the repository's code, as in the timed processes
    with tempfile.TemporaryDirectory() as tmp:
        wlc = _sample_wlc(Path(tmp))
        commands = {"--help": ["--help"], "--version": ["--version"],
                    "info": ["info", str(wlc)], "models": ["models"]}
        base_wall, base_cpu = _time([sys.executable, "-c", "pass"], repeat)
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        busy = load > cores
        print(f"python -c pass: wall {base_wall:.3f} s, cpu {base_cpu:.3f} s (median of {repeat}; "
              f"load average {load:.1f} on {cores} cores: verdict on "
              f"{'CPU time, the machine is busy' if busy else 'wall time'})")
        print(f"| command | wall s | cpu s | wall - python s | imports torch | < {TARGET_S} s |")
        print("|---|---:|---:|---:|---|---|")
        failed = False
        for name, cmd_args in commands.items():
            wall, cpu = _time([sys.executable, "-m", "pywalloc", *cmd_args], repeat)
            torch_in = _imports_torch(cmd_args)
            ok = (cpu if busy else wall) < TARGET_S and not torch_in
            failed |= name != "models" and not ok
            print(f"| walloc {name} | {wall:.3f} | {cpu:.3f} | {wall - base_wall:.3f} | "
                  f"{'yes' if torch_in else 'no'} | {'yes' if ok else 'NO'} |")
        failed |= _loads(Path(tmp), repeat, busy, args.quick)
    return 1 if failed and not args.quick else 0


def _load_time(path: Path, repeat: int, env: dict) -> tuple[float, float]:
    """Median wall and CPU seconds of the first ``zoo.load(path)`` in a fresh process."""
    walls, cpus = [], []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _LOAD, str(path)], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        walls.append(float(out[0]))
        cpus.append(float(out[1]))
    return statistics.median(walls), statistics.median(cpus)


def _loads(folder: Path, repeat: int, busy: bool, quick: bool) -> bool:
    """Print the first-load table; whether a default missed a target."""
    import lzma

    from pywalloc import zoo

    names = zoo.available()[:1] if quick else zoo.available()
    print(f"\nFirst load of each default in a fresh process (wall / cpu s, median of {repeat}, "
          f"timed inside the process after importing torch)")
    print(f"| default | as shipped, no cache | as shipped, cached | unpacked beforehand | "
          f"unpacking adds (< {UNPACK_TARGET_S} s) | with the cache (< {CACHED_TARGET_S} s) |")
    print("|---|---:|---:|---:|---:|---:|")
    failed = False
    cold = _env(PYWALLOC_NO_CACHE="1")
    cached = _env(PYWALLOC_CACHE_DIR=str(folder / "cache"))
    for name in names:
        shipped = zoo.weights_path(name)
        plain = folder / shipped.name.removesuffix(".xz")
        if shipped.name.endswith(".xz"):
            plain.write_bytes(lzma.decompress(shipped.read_bytes()))
        else:
            plain = shipped
        _load_time(shipped, 1, cached)  # fills the cache
        (w1, c1), (w2, c2), (w0, c0) = (_load_time(shipped, repeat, cold),
                                        _load_time(shipped, repeat, cached),
                                        _load_time(plain, repeat, cold))
        extra = (c1 - c0) if busy else (w1 - w0)
        extra2 = (c2 - c0) if busy else (w2 - w0)
        ok, ok2 = extra < UNPACK_TARGET_S, extra2 < CACHED_TARGET_S
        failed |= not (ok and ok2)
        print(f"| {shipped.name} | {w1:.3f} / {c1:.3f} | {w2:.3f} / {c2:.3f} | "
              f"{w0:.3f} / {c0:.3f} | {extra:.3f} {'yes' if ok else 'NO'} | "
              f"{extra2:.3f} {'yes' if ok2 else 'NO'} |")
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
