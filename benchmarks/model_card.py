"""Measure the bundled codecs against the issue's quality bars and the best linear decoders.

    python benchmarks/model_card.py [--shared ../shared/data] [--quick] [--out docs/models_figures.md]
    python benchmarks/model_card.py --codecs stereo-20x    # re-measure one codec, keep the rest

Images: mean over Kodak of PSNR (8-bit RGB), MS-SSIM and bpp from the real .wlc byte count.
Audio: the mixtures (lead + accomp) of stems/test, PSNR with peak 1 over the whole clip, SI-SDR
(per channel, zero-mean, averaged: pywalloc.evaluation.metrics.si_sdr, as `walloc eval`).
Baseline: PCA of the wavelet channels fitted on the training data (BSDS500; music-train and
stems/train mixtures), no quantisation. Also parameter counts, CPU decode time and the
training logs' steps and minutes. Exit status 1 if a quality bar is missed (unless --quick).

``--codecs A,B`` measures only those codecs' rows (after one of their defaults changed, in
about a fifth of the time) and keeps the other rows, and the decode times per size (which
depend on the architecture, not the weights), from the previous figures (``--out``'s JSON);
every row carries its own date and CPU, and the page says when rows were measured apart.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import median_time  # the sibling module (the script's folder leads sys.path)

import pywalloc
from pywalloc import api
from pywalloc.evaluation import metrics as M
from pywalloc.evaluation.harness import _three_equal, load_image
from pywalloc.modality import luma
from pywalloc.training.init import wpt_statistics
from pywalloc.wavelets import iwpt, wpt

BARS = {  # (min PSNR dB, max bpp) from the issue; audio has no rate bar; gray has no bar
    "rgb-16x": (29.0, 0.75), "rgb-4x": (37.5, 3.0), "gray-16x": (None, None),
    "stereo-20x": (29.0, None), "stereo-5x": (40.0, None),
}
IMAGE_CODECS = ("rgb-16x", "rgb-4x", "gray-16x")  # gray: measured on the pictures' luma
AUDIO_CODECS = ("stereo-20x", "stereo-5x")


def merge(previous: dict, new: dict, codecs: set[str]) -> dict:
    """The figures of a partial run (``new``, only ``codecs`` measured) joined with the
    ``previous`` full figures: measured rows replace theirs, the other rows and the size table
    are kept, each kept row with the date and CPU it was measured on."""
    out = dict(new)
    for kind, order in (("images", IMAGE_CODECS), ("audio", AUDIO_CODECS)):
        fresh = {r["codec"]: r for r in new.get(kind, [])}
        old = {r["codec"]: {"date": previous.get("date"), "cpu": previous.get("cpu"),
                            "command": previous.get("command"), **r}
               for r in previous.get(kind, [])}
        out[kind] = [fresh[c] if c in codecs else old[c] for c in order
                     if (c in fresh if c in codecs else c in old)]
    out["sizes"] = previous.get("sizes", [])
    return out


def when_measured(figures: dict) -> str:
    """One sentence on when (and on what CPU) the rows were measured."""
    rows = figures.get("images", []) + figures.get("audio", [])
    stamps = {(r.get("date", figures.get("date")), r.get("cpu", figures.get("cpu")))
              for r in rows}
    if len(stamps) <= 1:
        return f"Measured {figures.get('date')}. CPU: {figures.get('cpu')}."
    parts = "; ".join(f"{r['codec']} {r.get('date', figures.get('date'))}" for r in rows)
    cpus = sorted({cpu for _, cpu in stamps if cpu})
    return (f"Rows measured apart (`--codecs`): {parts}. Size table: "
            f"{figures.get('sizes_date', figures.get('date'))}. CPU: {' / '.join(cpus)}.")


def _pca(mean, cov, k):
    ev, vec = torch.linalg.eigh(cov)
    top = vec[:, ev.argsort(descending=True)[:k]].T.float()
    return top, mean.float()


def _project(coeffs, top, mu):
    n = coeffs.shape[1]
    flat = coeffs.reshape(n, -1) if coeffs.dim() == 3 else coeffs[0].reshape(n, -1)
    rec = top.T @ (top @ (flat - mu[:, None])) + mu[:, None]
    return rec.reshape(coeffs.shape)


def image_rows(shared: Path, quick: bool, only: set[str] | None = None) -> list[dict]:
    files = sorted((shared / "kodak").glob("*.png"))[: 3 if quick else None]
    train = shared / "train-images" / "bsds500"
    rows = []
    for name in IMAGE_CODECS:
        if name not in pywalloc.available() or (only is not None and name not in only):
            continue
        codec = pywalloc.load(name)
        gray = codec.preset.channels == 1
        mean, cov = wpt_statistics(codec, train, max_files=40 if quick else 200)
        top, mu = _pca(mean, cov, codec.preset.latent_channels)
        ps, ss, bpps, pca, dec_s = [], [], [], [], []
        for f in files:
            img = load_image(f)
            if gray:  # the luma, as `walloc eval` scores a gray codec
                img = luma(img)
            blob = api.compress_image(img, codec)
            t0 = time.perf_counter()
            out = api.decompress(blob)
            dec_s.append(time.perf_counter() - t0)
            ref = torch.from_numpy(img.copy().reshape(*img.shape[:2], -1)).permute(2, 0, 1)
            ref = ref[None].float()
            ps.append(M.psnr(img, out, 255.0))
            ss.append(M.ms_ssim(*(_three_equal(a) for a in (img, out))) if gray
                      else M.ms_ssim(img, out))
            bpps.append(8 * len(blob) / (img.shape[0] * img.shape[1]))
            x = ref / 255 - 0.5
            lin = iwpt(_project(wpt(x, 3), top, mu), 3).clamp(-0.5, 0.5)
            lin = torch.round((lin + 0.5) * 255)
            pca.append(M.psnr(ref.numpy(), lin.numpy(), 255.0))
        rows.append({"codec": name, "items": len(files), "luma": gray, "psnr": float(np.mean(ps)),
                     "ms_ssim": float(np.mean(ss)), "bpp": float(np.mean(bpps)),
                     "pca_psnr": float(np.mean(pca)), "decode_s": float(np.median(dec_s)),
                     "params": codec.num_parameters(), "weights_hash": codec.weight_hash})
    return rows


def audio_rows(shared: Path, quick: bool, only: set[str] | None = None) -> list[dict]:
    import soundfile as sf

    pieces = sorted(p for p in (shared / "stems" / "test").iterdir() if p.is_dir())
    pieces = pieces[: 2 if quick else None]
    rows = []
    for name in AUDIO_CODECS:
        if only is not None and name not in only:
            continue
        codec = pywalloc.load(name)
        mean, cov = wpt_statistics(codec, shared / "music-train", max_files=2 if quick else 200)
        top, mu = _pca(mean, cov, codec.preset.latent_channels)
        ps, si, kbps, pca, dec_s = [], [], [], [], []
        for p in pieces:
            a = sf.read(p / "lead.flac", dtype="float32")[0] + sf.read(p / "accomp.flac",
                                                                       dtype="float32")[0]
            blob = api.compress_audio(a, 44100, codec)
            t0 = time.perf_counter()
            out, _ = api.decompress(blob)
            dec_s.append(time.perf_counter() - t0)
            ps.append(M.psnr(a, out, 1.0))
            si.append(M.si_sdr(a, out))
            kbps.append(8 * len(blob) / (a.shape[0] / 44100) / 1000)
            n = a.shape[0] // 256 * 256
            x = torch.from_numpy(np.ascontiguousarray(a[:n].T))[None]
            lin = iwpt(_project(wpt(x, 8), top, mu), 8)[0].numpy().T
            pca.append(M.psnr(a[:n], lin, 1.0))
        rows.append({"codec": name, "items": len(pieces), "psnr": float(np.mean(ps)),
                     "si_sdr": float(np.mean(si)), "kbps": float(np.mean(kbps)),
                     "pca_psnr": float(np.mean(pca)), "decode_s": float(np.median(dec_s)),
                     "params": codec.num_parameters(), "weights_hash": codec.weight_hash})
    return rows


# Timed decodes per size (the median is reported): one decode's time varied up to 40 % between
# back-to-back runs of this script on a 2-core machine.
SIZE_RUNS = 5


def size_rows(quick: bool) -> list[dict]:
    """Parameters and CPU decode time (median of SIZE_RUNS decodes after a warm-up) of each
    preset at each size (random weights suffice)."""
    from pywalloc.codec import Codec
    from pywalloc.presets import PRESETS, SIZES

    rows = []
    for name, p in PRESETS.items():
        for size in SIZES[p.modality]:
            codec = Codec(name, size).eval()
            shape = (512, 768) if p.dims == 2 else (12 * 44100,)
            if quick:
                shape = (64, 64) if p.dims == 2 else (44100,)
            z = torch.zeros(1, p.latent_channels, *codec.latent_size(shape))
            runs = 1 if quick else SIZE_RUNS
            decode_s, _ = median_time(runs, codec.decode, z, shape)
            rows.append({"codec": name, "size": size, "params": codec.num_parameters(),
                         "decode_s": float(decode_s), "runs": runs,
                         "input": "x".join(map(str, shape))})
    return rows


# Training stages of a bundled codec, in order: each stage's log starts at step 0.
STAGES = ("", "-finetune", "-flat", "-flat2", "-hp", "-hp2", "-hp3", "-hp4", "-hp5", "-hp6",
          "-ste", "-ste2", "-ste3", "-ste4", "-ste-b2i", "-ste-c3i", "-ste-c7i", "-ste-c10i",
          "-ste-c11i", "-ste-c12i", "-ste-c13i", "-ste-c14i", "-ste-c15i", "-ste-b1", "-ste-c1",
          "-ste-c2", "-ste-c3", "-ste-c4", "-ste-c5", "-ste-c6", "-ste-c7", "-ste-c8", "-ste-c9",
          "-ste-c10", "-ste-c11", "-ste-c12", "-ste-c13",
          # stereo-20x's chain from the fifteenth session's ship to the twenty-fourth's (logs
          # keep the names they had as candidates; both links of each averaged pair count)
          "-ste-c14-kept", "-ste-c16b-kept", "-ste-c17-kept", "-ste-c18-kept", "-ste-c19m-tried",
          "-ste-c20m-kept", "-ste-c21m-kept", "-ste-c22l-kept", "-ste-c23l-soup", "-ste-c23m-soup",
          "-ste-c24l-soup", "-ste-c24m-soup", "-ste-c25l-soup", "-ste-c25m-soup")


def lost_stages(logs: Path) -> dict[str, dict]:
    """Stages whose log was lost (``lost.json`` beside the logs: name without ``.csv`` ->
    ``steps``, ``minutes`` as recorded when the run was scored, and a ``note``)."""
    f = logs / "lost.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def training_summary(logs: Path = ROOT / "docs" / "training-logs") -> dict:
    lost = lost_stages(logs)
    out = {}
    for name in BARS:
        steps, minutes = 0, 0.0
        for stem in (f"{name}{stage}" for stage in STAGES):
            f = logs / f"{stem}.csv"
            if f.is_file():
                rows = list(csv.DictReader(f.open()))
                if rows:
                    steps += int(rows[-1]["step"])
                    minutes += float(rows[-1]["minutes"])
            elif stem in lost:
                steps += int(lost[stem]["steps"])
                minutes += float(lost[stem]["minutes"])
        out[name] = {"steps": steps, "minutes": minutes}
    return out


def cpu_description() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``, else ``platform.processor()``) and the
    vector instructions torch uses on it: decode times differ some 2.5x between machines."""
    import platform

    name = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        isa = "unknown"
    return f"{name}, torch CPU capability {isa}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "models_figures.md"))
    ap.add_argument("--quick", action="store_true", help="few items, no bar check, no docs")
    ap.add_argument("--codecs", help="comma-separated codecs to re-measure; the other rows "
                    "are kept from the previous figures (the JSON beside --out)")
    args = ap.parse_args(argv)
    only, previous = None, None
    if args.codecs:
        only = {c.strip() for c in args.codecs.split(",") if c.strip()}
        unknown = sorted(only - set(BARS))
        if unknown or not only:
            print(f"model_card: error: unknown codec(s) {', '.join(unknown) or '(none)'}; "
                  f"choose from {', '.join(BARS)}", file=sys.stderr)
            return 2
        if not args.quick:
            try:
                previous = json.loads(Path(args.out).with_suffix(".json").read_text())
            except (OSError, ValueError) as exc:
                print(f"model_card: error: --codecs keeps the other rows from a previous full "
                      f"run, and cannot read them: {exc}", file=sys.stderr)
                return 2
    torch.set_num_threads(2)
    shared = Path(args.shared)
    if not (shared / "kodak").is_dir():
        print(f"shared data not found at {shared}", file=sys.stderr)
        return 2
    cpu = cpu_description()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cmd = "python benchmarks/model_card.py" + (f" --codecs {args.codecs}" if args.codecs else "")
    with torch.inference_mode():
        img, aud = image_rows(shared, args.quick, only), audio_rows(shared, args.quick, only)
        sizes = size_rows(args.quick) if only is None else []
    for r in img + aud:
        r.update(date=date, cpu=cpu, command=cmd)
    train = training_summary()
    figures = {"images": img, "audio": aud, "sizes": sizes, "training": train, "cpu": cpu,
               "date": date, "command": cmd, "sizes_date": date}
    if previous is not None:
        figures = merge(previous, figures, only)
        figures["sizes_date"] = previous.get("sizes_date", previous.get("date"))
        from pywalloc import zoo

        for r in figures["images"] + figures["audio"]:
            path = zoo.weights_path(r["codec"])
            now = zoo.file_hash(path) if path.is_file() else None
            if r["codec"] not in only and now != r.get("weights_hash"):
                print(f"model_card: warning: the kept {r['codec']} row was measured on "
                      f"{r.get('weights_hash')}, the default is now {now}; re-measure it with "
                      f"--codecs {r['codec']}", file=sys.stderr)
    img, aud, sizes = figures["images"], figures["audio"], figures["sizes"]
    head = ("| codec | params | train steps | train min | bpp / kbps | PSNR dB | MS-SSIM / SI-SDR "
            "| PCA (no quant.) dB | bar | CPU decode s |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    ok = True
    for r in img + aud:
        lo, cap = BARS[r["codec"]]
        rate = r.get("bpp", r.get("kbps"))
        if lo is None:
            bar = "none (luma of the colour pictures)" if r.get("luma") else "none"
        else:
            passed = r["psnr"] >= lo and (cap is None or rate <= cap)
            ok &= passed
            bar = (f"≥{lo} dB" + (f", ≤{cap} bpp" if cap else "")
                   + (": pass" if passed else ": MISS"))
        second = f"{r['ms_ssim']:.4f}" if "ms_ssim" in r else f"{r['si_sdr']:.2f} dB"
        t = train[r["codec"]]
        steps, minutes = ((str(t["steps"]), f"{t['minutes']:.1f}") if t["steps"]
                          else ("no logs", "no logs"))
        lines.append(f"| {r['codec']} | {r['params'] / 1e6:.2f} M | {steps} | "
                     f"{minutes} | {rate:.3f} | {r['psnr']:.2f} | {second} | "
                     f"{r['pca_psnr']:.2f} | {bar} | {r['decode_s']:.2f} |")
    runs = sizes[0]["runs"] if sizes else 0
    if sizes:
        lines += ["", f"| codec | size | params | CPU decode s (median of {runs}) | input |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['codec']} | {r['size']} | {r['params'] / 1e6:.2f} M | "
                  f"{r['decode_s']:.2f} | {r['input']} |" for r in sizes]
    table = "\n".join(lines)
    print(table + f"\n\nCPU: {cpu}")
    if not args.quick:
        items = (f"Images: {img[0]['items']} Kodak images; " if img else "") + \
            (f"audio: {aud[0]['items']} stems/test mixtures. " if aud else "")
        Path(args.out).write_text(
            f"<!-- generated by `{cmd}`; do not edit -->\n\n{table}\n\n"
            f"{items}Threads: {torch.get_num_threads()}. {when_measured(figures)}\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps(figures, indent=2))
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
