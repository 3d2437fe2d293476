"""How much of a codec's distortion the int8 rounding costs: its decoder on rounded latents
(as shipped) and on the same latents unrounded (the quantisation removed, infinite rate).

    python experiments/quant_ceiling.py rgb-16x rgb-4x stereo-20x stereo-5x
        [--kodak DIR] [--stems DIR] [--limit N] [--threads T] [--json OUT]

Images: the Kodak PNGs, mean PSNR of 8-bit RGB (``psnr_rgb8``). Audio: the stems/test mixtures
(lead + accomp), peak-normalised as ``compress`` does, mean peak-1 PSNR over the whole clip
(``audio_psnr``): the figures ``compare_weights.py`` and ``walloc eval`` report. Three figures
per codec: through the real byte path (``compress`` -> bytes -> ``decompress``, with its rate),
the decoder on ``Codec.encode``'s
int8 latents (the same figure: a check that the probe decodes what files decode), and the
decoder on ``Codec.continuous_latents`` (the same companded latents, not rounded). The
difference is the most that any finer quantisation (a higher latent gain, more bits) could
buy this decoder; what is left below a goal needs a better decoder or more latent channels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _items(codec, kodak: Path, stems: Path, limit: int | None) -> list[np.ndarray]:
    if codec.preset.dims == 2:
        from PIL import Image

        out = []
        for f in sorted(kodak.glob("*.png"))[:limit]:
            with Image.open(f) as im:
                out.append(np.asarray(im.convert("RGB")))
        return out
    import soundfile as sf

    clips = []
    for d in sorted(p for p in stems.iterdir() if p.is_dir())[:limit]:
        a = sf.read(d / "lead.flac", dtype="float32", always_2d=True)[0]
        clips.append(a + sf.read(d / "accomp.flac", dtype="float32", always_2d=True)[0])
    return clips


def measure(codec, items: list[np.ndarray]) -> dict:
    """Mean PSNR through the byte path, of the decoder on rounded and on unrounded latents,
    and the byte path's mean rate (bpp or kbps)."""
    import torch

    import pywalloc
    from pywalloc.evaluation.metrics import audio_psnr, psnr_rgb8

    modality = codec.preset.modality
    image = codec.preset.dims == 2
    score = psnr_rgb8 if image else audio_psnr
    ps: dict[str, list[float]] = {"bytes": [], "rounded": [], "unrounded": []}
    rates = []
    for a in items:
        if image:
            blob = pywalloc.compress(a, codec=codec)
            back = pywalloc.decompress(blob, codec=codec)
            x = codec.prepare(a)
            units = a.shape[0] * a.shape[1]
        else:
            blob = pywalloc.compress(a, codec=codec, sample_rate=44100)
            back = pywalloc.decompress(blob, codec=codec)[0]
            x = modality.to_tensor(a, 44100)[0]  # peak-normalised as compress does
            units = a.shape[0] / 44100 * 1000  # kbps: bits per millisecond
        rates.append(8 * len(blob) / units)
        ps["bytes"].append(score(a, back))
        size = tuple(x.shape[2:])
        header = pywalloc.inspect(blob).header  # how decompress turns codec output back
        with torch.no_grad():
            for key, z in (("rounded", codec.encode(x)), ("unrounded", codec.continuous_latents(x))):
                y = codec.decode(z, size)[0]
                ps[key].append(score(a, modality.from_tensor(y, header.mode if image else header)))
    out = {key: float(np.mean(v)) for key, v in ps.items()}
    return {**out, "rate": float(np.mean(rates)), "items": len(items)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("codecs", nargs="+", help="presets (bundled weights) or weights files")
    shared = ROOT.parent / "shared" / "data"
    ap.add_argument("--kodak", type=Path, default=shared / "kodak")
    ap.add_argument("--stems", type=Path, default=shared / "stems" / "test")
    ap.add_argument("--limit", type=int, default=None, help="first N items only")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", type=Path, help="write the rows here too")
    args = ap.parse_args(argv)
    import torch

    import pywalloc
    from pywalloc.errors import WallocError
    from pywalloc.media import atomic_write

    torch.set_num_threads(args.threads)
    rows = []
    print("| codec | weights | items | rate | byte path | rounded | unrounded | rounding costs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.codecs:
        try:
            codec = pywalloc.load(name)
            items = _items(codec, args.kodak, args.stems, args.limit)
        except (WallocError, OSError) as exc:
            print(f"quant_ceiling: error: {exc}", file=sys.stderr)
            return 2
        if not items:
            print(f"quant_ceiling: error: no items for {name}", file=sys.stderr)
            return 2
        r = {"codec": name, "weights": codec.weight_hash, **measure(codec, items)}
        unit = codec.preset.modality.rate_unit
        print(f"| {name} | `{r['weights']}` | {r['items']} | {r['rate']:.3f} {unit} | "
              f"{r['bytes']:.2f} dB | {r['rounded']:.2f} dB | {r['unrounded']:.2f} dB | "
              f"{r['unrounded'] - r['rounded']:.2f} dB |", flush=True)
        rows.append(r)
    if args.json:
        atomic_write(args.json, json.dumps(rows, indent=2) + "\n", "results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
