"""Turn evaluation results into files: JSON with every number, a Markdown table shaped like the
WaLLoC paper's Table 1 (images) / Table 2 (audio), and rate-distortion plots (PNG).
"""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path
from typing import Any

from .. import modality as _modality
from ..modality import IMAGE
from . import EvaluationError, MissingEvalDependencyError

__all__ = ["markdown_table", "plot_rd", "to_jsonable", "write_outputs"]

_NAMES = {"webp": "WebP", "jpeg": "JPEG", "jpeg2000": "JPEG 2000", "avif": "AVIF",
          "opus": "Opus", "vorbis": "Vorbis", "mp3": "MP3"}

# A matched baseline whose mean rate is further than this from its target gets a dagger.
_RATE_TOLERANCE = 0.1

_IMAGE_NOTES = (
    ("DR: input values per latent value. CR: raw 24-bit RGB bytes / compressed bytes (container "
    "header included). MS-SSIM dB = -10·log10(1 - MS-SSIM); LPIPS and DISTS dB = -10·log10(d). "
    "dB columns are means of per-image dB values."),
    ("Baselines are each re-encoded per image at the setting whose bpp is closest to the named "
    "WaLLoC codec's bpp on that image."),
)
_AUDIO_NOTES = (
    ("CR: 16-bit PCM bytes / compressed bytes (header included). PSNR with peak 1 over the clip; "
    "SI-SDR per channel, averaged; SSDR/SRDR after Watcharasupat & Lerch (ICASSP 2024), 2 s "
    "frames, 1 s hop. MSamples/s counts frames × channels."),
    ("Baselines are re-encoded per clip at the setting whose real kbps is closest to the named "
    "WaLLoC codec's kbps on that clip."),
)


def to_jsonable(obj: Any) -> Any:
    """Plain JSON: +-inf become the strings "inf"/"-inf", NaN becomes null."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
    return obj


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.{digits}f}"


def _label(row: dict, rates: dict[str, float], rate_key: str) -> str:
    if row["match"] is None:
        return f"**WaLLoC {row['codec']}**"
    label = f"{_NAMES.get(row['codec'], row['codec'])} @ {row['match']} rate"
    target = rates.get(row["match"])
    if target and abs(row[rate_key] - target) > _RATE_TOLERANCE * target:
        label += " †"
    return label


def markdown_table(results: dict) -> str:
    """The summary as a Markdown table (dB forms, raw values in parentheses) plus notes."""
    meta, summary = results["meta"], results["summary"]
    kind = _modality.get(meta["modality"])
    rate_key = kind.rate_unit
    rates = {r["codec"]: r[rate_key] for r in summary if r["match"] is None}
    lines = []
    if kind is IMAGE:
        perceptual = meta.get("perceptual", False)
        head = ["Codec", "DR", "CR", "bpp", "PSNR (dB)", "MS-SSIM dB (raw)"]
        if perceptual:
            head += ["LPIPS dB (raw)", "DISTS dB (raw)"]
        head += ["Enc MPix/s", "Dec MPix/s"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in summary:
            dr = _f(r["dr"], 1) + "×" if r["dr"] else "—"
            cells = [_label(r, rates, rate_key), dr, _f(r["cr"], 1) + "×",
                     _f(r["bpp"], 3), _f(r["psnr"]),
                     f"{_f(r['ms_ssim_db'])} ({_f(r['ms_ssim'], 4)})"]
            if perceptual:
                cells += [f"{_f(r['lpips_db'])} ({_f(r['lpips'], 4)})",
                          f"{_f(r['dists_db'])} ({_f(r['dists'], 4)})"]
            cells += [_f(r["enc_mps"], 1), _f(r["dec_mps"], 1)]
            lines.append("| " + " | ".join(cells) + " |")
        notes = list(_IMAGE_NOTES)
        if meta.get("gray"):
            notes[0] = notes[0].replace("raw 24-bit RGB bytes", "raw 8-bit gray bytes")
            notes.insert(1, "Gray codecs: every picture is scored on its luma (Pillow's "
                         "convert(\"L\")); the baselines code that luma as a colour picture of "
                         "three equal channels and are scored on the luma they decode.")
    else:
        at_rate = any(r.get("psnr_at_rate") is not None for r in summary)
        head = ["Codec", "DR", "CR", "kbps", "PSNR (dB)"]
        head += ["PSNR at rate (dB)"] if at_rate else []
        head += ["SI-SDR (dB)", "SSDR (dB)", "SRDR (dB)", "Enc MSamples/s", "Dec MSamples/s"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in summary:
            dr = _f(r["dr"], 1) + "×" if r["dr"] else "—"
            cells = [_label(r, rates, rate_key), dr, _f(r["cr"], 1) + "×",
                     _f(r["kbps"], 1), _f(r["psnr"])]
            if at_rate:
                cells += [_f(r.get("psnr_at_rate"))]
            cells += [_f(r["si_sdr"]), _f(r["ssdr"]), _f(r["srdr"]), _f(r["enc_mps"], 1),
                      _f(r["dec_mps"], 1)]
            lines.append("| " + " | ".join(cells) + " |")
        notes = list(_AUDIO_NOTES)
        if at_rate:
            notes.append("PSNR at rate: each baseline's PSNR interpolated linearly in log-kbps "
                         "between its two tried settings that bracket the WaLLoC codec's kbps on "
                         "that clip (never extrapolated), then averaged; steadier than the "
                         "nearest setting where the baseline's bitrate moves in coarse steps.")
    if any(" †" in line for line in lines):
        notes.append(f"†: mean {rate_key} more than {_RATE_TOLERANCE:.0%} away from the WaLLoC "
                     "codec's: the baseline cannot reach that rate (its lowest setting is used).")
    notes.append(f"{meta['items']} items from `{meta['data']}`; timings are wall clock, "
                 f"warm-up excluded, torch threads = {meta['torch_threads']} "
                 f"({meta['cpu_count']} CPUs), metrics device {meta['metrics_device']}.")
    if meta.get("command"):
        notes.append(f"Command: `{meta['command']}` ({meta['date']}).")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


_RD_SPAN = 2.5  # the x axis ends at this multiple of the largest WaLLoC rate


def rd_view(curves: list[tuple[list[float], list[float]]], points: list[tuple[float, float]]
            ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The axes' limits of an RD plot: x from 0 to ``_RD_SPAN`` times the largest WaLLoC rate
    (``points``), where the baselines' sweeps (``curves``) go on much further (lossy audio
    codecs reach 500 kbit/s and would squeeze the codecs' region into a corner), y over what
    is then visible, with a margin. None where nothing needs cutting."""
    if not points:
        return None
    hi = _RD_SPAN * max(x for x, _ in points)
    widest = max((x for xs, _ in curves for x in xs), default=0.0)
    if widest <= hi:
        return None
    ys = [y for _, y in points] + [y for xs, cy in curves for x, y in zip(xs, cy) if x <= hi]
    for xs, cy in curves:  # where a curve leaves the view, its height at the edge
        pairs = sorted(zip(xs, cy))
        for (xa, ya), (xb, yb) in itertools.pairwise(pairs):
            if xa <= hi < xb:
                ys.append(ya + (yb - ya) * (hi - xa) / (xb - xa))
    lo_y, hi_y = min(ys), max(ys)
    pad = 0.06 * (hi_y - lo_y) or 1.0
    return (0.0, hi), (lo_y - pad, hi_y + pad)


def plot_rd(results: dict, out_dir: Path) -> list[tuple[Path, bytes]]:
    """RD plots: PSNR and MS-SSIM (dB) vs bpp for images, PSNR and SI-SDR vs kbps for audio.
    One line per baseline; WaLLoC codecs as labelled points joined by one line; the view ends
    where :func:`rd_view` says."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingEvalDependencyError("matplotlib") from exc
    image = _modality.get(results["meta"]["modality"]) is IMAGE
    rate = "bpp" if image else "kbps"
    panels = [("psnr", "PSNR (dB)", "rd_psnr.png")]
    panels.append(("ms_ssim_db", "MS-SSIM (dB)", "rd_msssim.png") if image
                  else ("si_sdr", "SI-SDR (dB)", "rd_sisdr.png"))
    walloc = sorted((r for r in results["summary"] if r["match"] is None), key=lambda r: r[rate])
    written = []
    for key, ylabel, fname in panels:
        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
        curves = []
        for codec, pts in results["rd"].items():
            xs = [p[rate] for p in pts if _finite(p.get(key))]
            ys = [p[key] for p in pts if _finite(p.get(key))]
            ax.plot(xs, ys, marker=".", label=_NAMES.get(codec, codec))
            curves.append((xs, ys))
        if walloc:
            ax.plot([r[rate] for r in walloc], [r[key] for r in walloc], "k-", marker="*",
                    markersize=11, label="WaLLoC")
            for r in walloc:
                ax.annotate(r["codec"], (r[rate], r[key]), textcoords="offset points",
                            xytext=(5, -10), fontsize=8)
        view = rd_view(curves, [(r[rate], r[key]) for r in walloc if _finite(r.get(key))])
        if view:  # the sweeps go on to the right, out of this view
            ax.set_xlim(*view[0])
            ax.set_ylim(*view[1])
        ax.set_xlabel("bits per pixel" if image else "kbit/s")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / fname
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        written.append((path, buf.getvalue()))
    return written


def has_curves(results: dict) -> bool:
    """True when some baseline was swept at two or more settings (a real RD curve)."""
    return any(len(pts) >= 2 for pts in results.get("rd", {}).values())


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def write_outputs(results: dict, out_dir: str | Path) -> list[Path]:
    """Write results.json, results.md and the RD plots into ``out_dir``.

    The plots are written only when there are RD curves (not with ``--no-sweep``).
    Everything is rendered in memory first and then written file by file through
    :func:`pywalloc.media.atomic_write`, so a failure leaves no half-written file behind.
    """
    from ..errors import MediaError
    from ..media import atomic_write

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvaluationError(f"cannot create output folder {out}: {exc}") from exc
    files = [(out / "results.json", json.dumps(to_jsonable(results), indent=1) + "\n"),
             (out / "results.md", markdown_table(results))]
    if has_curves(results):  # without sweeps there is nothing to draw lines through
        files += plot_rd(results, out)
    try:
        for path, data in files:
            atomic_write(path, data, "results")
    except MediaError as exc:
        raise EvaluationError(str(exc)) from None
    return [path for path, _ in files]
