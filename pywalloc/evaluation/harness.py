"""End-to-end evaluation of WaLLoC codecs against classical baselines on a folder of images or
audio clips: real byte counts, quality metrics and wall-clock throughput per item.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from .. import modality as _modality
from ..errors import MediaError
from ..media import iter_inputs, no_inputs
from ..modality import AUDIO, IMAGE, Modality, luma
from . import EvaluationError
from . import baselines as B
from . import metrics as M

__all__ = [
    "DEFAULT_BASELINES",
    "EvalConfig",
    "evaluate",
    "find_items",
    "load_audio",
    "load_image",
]

DEFAULT_BASELINES = {"image": ("webp", "jpeg", "jpeg2000", "avif"),
                     "audio": ("opus", "vorbis", "mp3")}


@dataclass
class EvalConfig:
    """What ``walloc eval`` runs. ``baselines=None`` means the modality's defaults."""

    codecs: Sequence[str]
    data: Path
    baselines: Sequence[str] | None = None
    limit: int | None = None
    perceptual: bool = True  # LPIPS and DISTS (images only)
    sweep: bool = True  # quality sweeps of the baselines for RD curves
    metrics_device: str = "cpu"
    progress: bool = True
    refine: int = 0  # encoder-side refinement steps (pywalloc.refine); 0: the plain encoder
    command: str = ""
    extra_meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- inputs
def find_items(data: Path, modality: Modality | str,
               limit: int | None = None) -> list[tuple[str, list[Path]]]:
    """(name, files) per item, sorted by name. For audio, a folder holding both ``lead.*`` and
    ``accomp.*`` (the stems layout) is one item, their sum; any other audio file is one item."""
    data = Path(data)
    if not data.is_dir():
        raise EvaluationError(f"data folder {data} does not exist")
    items: list[tuple[str, list[Path]]] = []
    modality = _modality.get(modality)
    files = iter_inputs(data, modality)
    if modality is IMAGE:
        items = [(str(p.relative_to(data)), [p]) for p in files]
    else:
        stems: dict[Path, list[Path]] = {}
        for p in files:
            if p.stem in ("lead", "accomp"):
                stems.setdefault(p.parent, []).append(p)
        for p in files:
            group = stems.get(p.parent, [])
            if len(group) == 2 and p in group:
                if p == group[0]:
                    items.append((str(p.parent.relative_to(data)) or p.parent.name, group))
            else:
                items.append((str(p.relative_to(data)), [p]))
        items.sort()
    if not items:
        raise EvaluationError(no_inputs(data, modality))
    return items[:limit] if limit else items


def load_image(path: Path) -> np.ndarray:
    """An image as HxWx3 uint8 through the one image reader (:func:`pywalloc.media.read_image`:
    EXIF orientation, 16-bit, gray and alpha handled as ``walloc encode`` does)."""
    import warnings

    from ..media import read_image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read_image(path)[0]
    except MediaError as exc:
        raise EvaluationError(str(exc)) from None


def load_audio(paths: Sequence[Path]) -> tuple[np.ndarray, int]:
    """float32 [frames, channels] and the sample rate; several files are summed (stems)."""
    total, rate = None, None
    for p in paths:
        try:
            x, extra = AUDIO.read(p)
        except MediaError as exc:
            raise EvaluationError(str(exc)) from None
        sr = extra["sample_rate"]
        if total is None:
            total, rate = x, sr
        elif sr != rate or x.shape != total.shape:
            raise EvaluationError(f"stems in {p.parent} differ in rate or shape")
        else:
            total = total + x
    return total, int(rate)


# ----------------------------------------------------------------------------- helpers
def _version(module: str) -> str:
    import importlib

    mod = importlib.import_module(module)
    return str(getattr(mod, "__libsndfile_version__", None) or getattr(mod, "__version__", "?"))


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """fn(*args, **kwargs) and its wall time in seconds."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _refine(cfg: EvalConfig) -> dict[str, int]:
    """``compress`` keywords for the configured refinement (none when off, so any ``api``
    with the plain ``compress`` signature works)."""
    return {"refine": cfg.refine} if cfg.refine else {}


def _modality_of(api: ModuleType, codecs: Sequence[str]) -> tuple[Modality, dict[str, float], bool]:
    """The codecs' one modality, their dimensionality reductions, and whether they are
    one-channel (gray) image codecs: those are scored on the images' luma, so gray and colour
    codecs cannot share a run."""
    if not codecs:
        raise EvaluationError("give at least one --codec")
    kinds, drs, gray = set(), {}, set()
    for name in codecs:
        preset = api.load(name).preset
        kinds.add(_modality.get(preset.modality))
        drs[name] = float(preset.dr)
        gray.add(getattr(preset, "channels", 3) == 1)
    if len(kinds) != 1:
        raise EvaluationError("all --codec values must be of one modality (image or audio)")
    modality = kinds.pop()
    if modality is IMAGE and len(gray) != 1:
        raise EvaluationError("gray and colour codecs in one run: evaluate them separately "
                              "(a gray codec is scored on the images' luma)")
    return modality, drs, modality is IMAGE and gray.pop()


def _three_equal(pixels: np.ndarray) -> np.ndarray:
    """A picture's luma in three equal channels (what a gray codec is scored against: the
    colour metrics then measure the luma alone)."""
    y = luma(pixels) if pixels.ndim == 3 else pixels
    return np.repeat(y[..., None], 3, axis=2)


def _progress(items: list, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="item")


def _image_metrics(ref: np.ndarray, out: np.ndarray, msssim: M.MSSSIMScorer,
                   perceptual: Any = None) -> dict[str, float]:
    row = {"psnr": M.psnr_rgb8(ref, out), "ms_ssim": msssim.score(out)}
    row["ms_ssim_db"] = M.ms_ssim_db(row["ms_ssim"])
    if perceptual is not None:
        row["lpips"], row["dists"] = perceptual.score(out)
        row["lpips_db"] = M.distance_db(row["lpips"])
        row["dists_db"] = M.distance_db(row["dists"])
    return row


def _audio_metrics(ref: np.ndarray, out: np.ndarray, sr: int) -> dict[str, float]:
    spatial = M.spatial_distortion(ref, out, sr)
    return {"psnr": M.audio_psnr(ref, out), "si_sdr": M.si_sdr(ref, out),
            "ssdr": spatial.ssdr, "srdr": spatial.srdr}


def _warm_baselines(modality: str, baselines: Sequence[str]) -> None:
    """One tiny untimed encode/decode per baseline so library start-up is not timed."""
    for name in baselines:
        if modality is IMAGE:
            next(B.sweep_image(np.full((16, 16, 3), 128, np.uint8), B.image_baseline(name), [50]))
        else:
            codec = B.audio_baseline(name)
            next(B.sweep_audio(np.zeros((4800, 2), np.float32), 48000, codec, [0.5]))


# ----------------------------------------------------------------------------- per item
def _eval_image(api, cfg, name, img, codecs, baselines, warm, gray=False) -> list[dict]:
    h, w = img.shape[:2]
    pixels = h * w
    # A gray codec codes the luma; the reference, the baselines' input and every decoded
    # picture are that luma in three equal channels (a baseline's output as its luma).
    src = luma(img) if gray else img
    if gray:
        img = _three_equal(src)
    channels = 1 if gray else 3
    # Reference-side work (MS-SSIM statistics, LPIPS/DISTS features) is done once per image.
    msssim = M.MSSSIMScorer(img)
    scorer = None
    if cfg.perceptual:
        from .perceptual import PerceptualScorer

        scorer = PerceptualScorer(img, cfg.metrics_device)
    rows: list[dict] = []
    for codec in codecs:
        if codec not in warm:  # first call loads weights and warms kernels: not timed
            api.decompress(api.compress(src, codec=codec))
            warm.add(codec)
        blob, t_enc = _timed(api.compress, src, codec=codec, **_refine(cfg))
        out, t_dec = _timed(api.decompress, blob)
        out = np.asarray(out)
        if gray and out.ndim == 2:
            out = _three_equal(out)
        if out.shape != img.shape or out.dtype != np.uint8:
            raise EvaluationError(f"{codec} decoded {name} to {out.dtype} {out.shape}")
        row = {"item": name, "codec": codec, "kind": "walloc", "pixels": pixels,
               "bytes": len(blob), "bpp": 8.0 * len(blob) / pixels,
               "cr": channels * pixels / len(blob), "enc_s": t_enc, "dec_s": t_dec}
        row.update(_image_metrics(img, out, msssim, scorer))
        rows.append(row)
    for bname in baselines:
        codec = B.image_baseline(bname)
        swept = list(B.sweep_image(img, codec)) if cfg.sweep else []
        for p in swept:
            rows.append({"item": name, "codec": bname, "kind": "sweep", "quality": p.quality,
                         "pixels": pixels, "bytes": p.nbytes, "bpp": p.bpp,
                         **_image_metrics(img, _three_equal(p.decoded) if gray else p.decoded,
                                          msssim)})
        for wrow in [r for r in rows if r["kind"] == "walloc"]:
            p = B.match_image_bpp(img, codec, wrow["bpp"], known=swept)
            row = {"item": name, "codec": bname, "kind": "matched", "match": wrow["codec"],
                   "quality": p.quality, "pixels": pixels, "bytes": p.nbytes, "bpp": p.bpp,
                   "cr": channels * pixels / p.nbytes, "enc_s": p.enc_s, "dec_s": p.dec_s}
            decoded = _three_equal(p.decoded) if gray else p.decoded
            row.update(_image_metrics(img, decoded, msssim, scorer))
            rows.append(row)
    return rows


def _eval_audio(api, cfg, name, x, sr, codecs, baselines, warm) -> list[dict]:
    frames, chans = x.shape
    seconds = frames / sr
    rows: list[dict] = []
    for codec in codecs:
        if codec not in warm:
            api.decompress(api.compress(x, codec=codec, sample_rate=sr))
            warm.add(codec)
        blob, t_enc = _timed(api.compress, x, codec=codec, sample_rate=sr, **_refine(cfg))
        (out, sr_out), t_dec = _timed(api.decompress, blob)
        out = np.asarray(out)
        if out.shape != x.shape or int(sr_out) != sr:
            raise EvaluationError(f"{codec} decoded {name} to {out.shape} @ {sr_out} Hz, "
                                  f"expected {x.shape} @ {sr} Hz")
        row = {"item": name, "codec": codec, "kind": "walloc", "samples": frames * chans,
               "seconds": seconds, "bytes": len(blob), "kbps": 8e-3 * len(blob) / seconds,
               "cr": 2.0 * frames * chans / len(blob), "enc_s": t_enc, "dec_s": t_dec}
        row.update(_audio_metrics(x, out, sr))
        rows.append(row)
    for bname in baselines:
        codec = B.audio_baseline(bname)
        if cfg.sweep:
            for p in B.sweep_audio(x, sr, codec):
                rows.append({"item": name, "codec": bname, "kind": "sweep", "quality": p.level,
                             "seconds": seconds, "bytes": p.nbytes, "kbps": p.kbps,
                             "psnr": M.audio_psnr(x, p.decoded), "si_sdr": M.si_sdr(x, p.decoded)})
        for wrow in [r for r in rows if r["kind"] == "walloc"]:
            br = B.bracket_audio_bitrate(x, sr, codec, wrow["kbps"])
            p = br.nearest
            row = {"item": name, "codec": bname, "kind": "matched", "match": wrow["codec"],
                   "quality": p.level, "samples": frames * chans, "seconds": seconds,
                   "bytes": p.nbytes, "kbps": p.kbps, "cr": 2.0 * frames * chans / p.nbytes,
                   "enc_s": p.enc_s, "dec_s": p.dec_s}
            row.update(_audio_metrics(x, p.decoded, sr))
            row["psnr_at_rate"] = br.at_rate(lambda y: M.audio_psnr(x, y))
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------- summaries
_MEAN_KEYS = ("bpp", "kbps", "cr", "psnr", "psnr_at_rate", "ms_ssim", "ms_ssim_db", "lpips",
              "lpips_db", "dists", "dists_db", "si_sdr", "ssdr", "srdr")


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _summarise(rows: list[dict], modality: str, drs: dict[str, float]) -> list[dict]:
    """One row per WaLLoC codec and per (baseline, matched codec): means over items of every
    metric (dB forms are means of per-item dB values) and pooled throughput."""
    size_key = modality.size_unit
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["kind"] == "walloc":
            groups.setdefault((r["codec"], None), []).append(r)
        elif r["kind"] == "matched":
            groups.setdefault((r["codec"], r["match"]), []).append(r)
    summary = []
    for (codec, match), grp in groups.items():
        s: dict[str, Any] = {"codec": codec, "match": match, "items": len(grp),
                             "dr": drs.get(codec) if match is None else None}
        for k in _MEAN_KEYS:
            if k in grp[0]:
                s[k] = _mean([g[k] for g in grp])
        total = sum(g[size_key] for g in grp) / 1e6
        s["enc_mps"] = total / sum(g["enc_s"] for g in grp)
        s["dec_mps"] = total / sum(g["dec_s"] for g in grp)
        summary.append(s)
    order = {c: i for i, c in enumerate(drs)}
    summary.sort(key=lambda s: (order.get(s["match"] or s["codec"], 99), s["match"] is not None,
                                s["codec"]))
    return summary


def _rd_curves(rows: list[dict], modality: str) -> dict[str, list[dict]]:
    """Per baseline, per quality setting: means over items (rate, PSNR, MS-SSIM or SI-SDR)."""
    rate = modality.rate_unit
    seconds = ("ms_ssim", "ms_ssim_db") if modality is IMAGE else ("si_sdr",)
    curves: dict[str, dict[float, list[dict]]] = {}
    for r in rows:
        if r["kind"] == "sweep":
            curves.setdefault(r["codec"], {}).setdefault(r["quality"], []).append(r)
    out: dict[str, list[dict]] = {}
    for codec, by_q in curves.items():
        pts = []
        for q, grp in by_q.items():
            pt = {"quality": q, "items": len(grp)}
            for k in (rate, "psnr", *seconds):
                pt[k] = _mean([g[k] for g in grp])
            pts.append(pt)
        out[codec] = sorted(pts, key=lambda p: p[rate])
    return out


def evaluate(cfg: EvalConfig, api: ModuleType | Any = None) -> dict[str, Any]:
    """Run the evaluation and return every number (items, summary, RD curves, metadata).

    ``api`` is anything with ``load``, ``compress`` and ``decompress`` (default: pywalloc).
    """
    if api is None:  # the real end-to-end path
        import pywalloc

        api = pywalloc
    modality, drs, gray = _modality_of(api, cfg.codecs)
    baselines = list(DEFAULT_BASELINES[modality] if cfg.baselines is None else cfg.baselines)
    lookup = B.image_baseline if modality is IMAGE else B.audio_baseline
    for b in baselines:
        if not lookup(b).available:
            raise EvaluationError(f"baseline {b} is not available in this installation")
    items = find_items(cfg.data, modality, cfg.limit)
    _warm_baselines(modality, baselines)
    rows: list[dict] = []
    warm: set[str] = set()
    started = time.time()
    for name, paths in _progress(items, cfg.progress, f"eval {modality}"):
        if modality is IMAGE:
            rows += _eval_image(api, cfg, name, load_image(paths[0]), cfg.codecs, baselines, warm,
                                gray)
        else:
            x, sr = load_audio(paths)
            rows += _eval_audio(api, cfg, name, x, sr, cfg.codecs, baselines, warm)
    meta = {
        "command": cfg.command, "refine": cfg.refine, "modality": modality, "data": str(cfg.data),
        "items": len(items), "codecs": list(cfg.codecs), "baselines": baselines,
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "pillow": _version("PIL"), "libsndfile": _version("soundfile"),
        "cpu_count": os.cpu_count(), "metrics_device": cfg.metrics_device,
        "perceptual": cfg.perceptual and modality is IMAGE, "gray": gray,
        "wall_s": time.time() - started,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **cfg.extra_meta,
    }
    return {"meta": meta, "summary": _summarise(rows, modality, drs),
            "rd": _rd_curves(rows, modality), "items": rows}
