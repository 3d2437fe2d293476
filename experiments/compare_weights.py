"""Compare codec weights through the real byte path (compress -> bytes -> decompress).

    python experiments/compare_weights.py rgb-16x runs/x/model.safetensors [more.safetensors]
        [--shared ../shared/data] [--heldout .devdata/audio/heldout-music] [--effort E]
        [--limit N] [--no-bundled] [--threads T] [--json out.json]

Each candidate (and the bundled weights of the preset, listed first) is scored on
images: the 24 Kodak images (mean PSNR of 8-bit RGB, bpp from the .wlc byte count; in gray,
Pillow's ``convert("L")``, for the one-channel presets);
audio: the stems/test mixtures (lead + accomp; peak-1 PSNR over the whole clip, kbps) and,
with --heldout, real music no codec trained on (experiments/prepare_audio.py's held-out
singularity tracks) against Opus at the same kbps: the nearest Opus setting per track
(opus_psnr) and Opus's PSNR interpolated in log-kbps between the two settings that bracket
WaLLoC's kbps (opus_psnr_at_rate; libsndfile's Opus moves in coarse bitrate steps).
Used to decide whether a training run beats the shipped weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pywalloc
import pywalloc.entropy
from pywalloc.codec import Codec
from pywalloc.evaluation.metrics import audio_psnr, psnr, psnr_rgb8
from pywalloc.presets import get_preset


def _image_scores(codec: Codec, shared: Path, effort: int, limit: int | None) -> dict:
    from PIL import Image

    gray = codec.preset.channels == 1  # gray presets: Kodak converted to gray, as gray_eval.py
    ps, bpp = [], []
    for f in sorted((shared / "kodak").glob("*.png"))[:limit]:
        with Image.open(f) as im:
            img = np.asarray(im.convert("L" if gray else "RGB"))
        blob = pywalloc.compress(img, codec=codec, effort=effort)
        out = pywalloc.decompress(blob, codec=codec)
        ps.append(psnr(img, out, 255.0) if gray else psnr_rgb8(img, out))
        bpp.append(8 * len(blob) / (img.shape[0] * img.shape[1]))
    return {"kodak_psnr": float(np.mean(ps)), "kodak_bpp": float(np.mean(bpp)), "items": len(ps)}


def _audio_clip(codec: Codec, a: np.ndarray, effort: int) -> tuple[float, float]:
    blob = pywalloc.compress(a, codec=codec, sample_rate=44100, effort=effort)
    out, _ = pywalloc.decompress(blob, codec=codec)
    return audio_psnr(a, out), 8 * len(blob) / (a.shape[0] / 44100) / 1000


def _audio_scores(codec: Codec, shared: Path, heldout: Path | None, effort: int,
                  limit: int | None) -> dict:
    import soundfile as sf

    from pywalloc.evaluation.baselines import audio_baseline, bracket_audio_bitrate

    res: dict = {}
    ps, kb = [], []
    for p in sorted(d for d in (shared / "stems" / "test").iterdir() if d.is_dir())[:limit]:
        a = sf.read(p / "lead.flac", dtype="float32", always_2d=True)[0]
        a = a + sf.read(p / "accomp.flac", dtype="float32", always_2d=True)[0]
        s, k = _audio_clip(codec, a, effort)
        ps.append(s)
        kb.append(k)
    res.update(stems_psnr=float(np.mean(ps)), stems_kbps=float(np.mean(kb)), stems_items=len(ps))
    if heldout and heldout.is_dir():
        opus = audio_baseline("opus")
        rows = []
        for f in sorted(heldout.glob("*.flac"))[:limit]:
            a, sr = sf.read(f, dtype="float32", always_2d=True)
            s, k = _audio_clip(codec, a, effort)
            br = bracket_audio_bitrate(a, sr, opus, k)
            rows.append({"track": f.stem, "psnr": s, "kbps": k,
                         "opus_psnr": audio_psnr(a, br.nearest.decoded),
                         "opus_kbps": br.nearest.kbps,
                         "opus_psnr_at_rate": br.at_rate(lambda y, a=a: audio_psnr(a, y))})
        res["heldout"] = rows
        res["heldout_psnr"] = float(np.mean([r["psnr"] for r in rows]))
        res["heldout_opus_psnr"] = float(np.mean([r["opus_psnr"] for r in rows]))
        res["heldout_opus_psnr_at_rate"] = float(np.mean([r["opus_psnr_at_rate"] for r in rows]))
        res["heldout_kbps"] = float(np.mean([r["kbps"] for r in rows]))
        res["heldout_opus_kbps"] = float(np.mean([r["opus_kbps"] for r in rows]))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset")
    ap.add_argument("weights", nargs="*", help="candidate .safetensors files")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--heldout", default=str(ROOT / ".devdata" / "audio" / "heldout-music"))
    ap.add_argument("--effort", type=int, default=None, help="lossless WebP method (default: "
                    "the library default)")
    ap.add_argument("--limit", type=int, default=None, help="first N items only (quick look)")
    ap.add_argument("--no-bundled", action="store_true", help="skip the bundled weights")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    shared = Path(args.shared)
    cands = ([] if args.no_bundled else [("bundled", pywalloc.load(args.preset))])
    cands += [(w, pywalloc.load(w)) for w in args.weights]  # any weights file, aliases too
    kw = {} if args.effort is None else {"effort": args.effort}
    effort = kw.get("effort", get_preset(args.preset).effort)
    out = []
    for name, codec in cands:
        if codec.preset.name != args.preset:
            sys.exit(f"{name} is a {codec.preset.name} codec, not {args.preset}")
        if codec.preset.dims == 2:
            r = _image_scores(codec, shared, effort, args.limit)
        else:
            r = _audio_scores(codec, shared, Path(args.heldout), effort, args.limit)
        r = {"weights": name, "hash": codec.weight_hash, "norm": codec.config.norm, **r}
        print(json.dumps({k: v for k, v in r.items() if k != "heldout"}), flush=True)
        out.append(r)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
