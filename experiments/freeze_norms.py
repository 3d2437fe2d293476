"""Make a legacy GroupNorm decoder position-local without retraining: measure each GroupNorm's
statistics once, pooled over training data, and freeze them into a per-channel affine.

    python experiments/freeze_norms.py rgb-16x OUT.safetensors [--data DIR] [--files 80]

The encoder is unchanged (same latents); only the decoder's normalisation changes, from
per-input statistics (GroupNorm over the whole image or clip) to fixed ones (norm "affine").
Data: images from ../shared/data/train-images, audio from experiments/prepare_audio.py's
train folder (never Kodak, stems/test or the held-out music). Score the result with
experiments/compare_weights.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pywalloc.codec import Codec
from pywalloc.errors import WallocError
from pywalloc.modality import peak_gain
from pywalloc.synthesis import freeze_group_norms, group_norm_statistics
from pywalloc.zoo import ALIAS_SUFFIX, LEGACY_DIR, load


def _inputs(codec: Codec, data: Path, files: int, seconds: float):
    """Inputs of the decoder CNN (companded rounded latents / 32), one file at a time."""
    from pywalloc.media import iter_inputs, read_audio, read_image

    paths = iter_inputs(data, codec.preset.modality)
    paths = paths[:: max(1, len(paths) // files)][:files]
    for p in paths:
        if codec.preset.dims == 2:
            a = read_image(p)[0]
            x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255 - 0.5
        else:
            a = read_audio(p, frames=int(seconds * 44100))[0]
            a = a * peak_gain(float(np.abs(a).max()))
            x = torch.from_numpy(np.ascontiguousarray(a.T))[None]
        yield codec.encode(x).float() * (1.0 / 32.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset")
    ap.add_argument("out")
    ap.add_argument("--weights", help="the GroupNorm codec (default: the bundled legacy one)")
    ap.add_argument("--data")
    ap.add_argument("--files", type=int, default=80)
    ap.add_argument("--seconds", type=float, default=20.0, help="audio read per file")
    args = ap.parse_args()
    torch.set_num_threads(2)
    # The bundled defaults are already frozen; the GroupNorm originals are in weights/legacy/.
    # (stored as an alias: delta planes against today's default, so loaded through the zoo).
    try:
        src = load(args.weights or LEGACY_DIR / f"{args.preset}-small-groupnorm{ALIAS_SUFFIX}")
    except WallocError as exc:
        sys.exit(f"freeze_norms: error: {exc}")
    if src.config.norm != "group":
        sys.exit(f"{args.preset}: the source decoder has norm '{src.config.norm}', not 'group'")
    default = (ROOT.parent / "shared" / "data" / "train-images" if src.preset.dims == 2
               else ROOT / ".devdata" / "audio" / "train")
    data = Path(args.data) if args.data else default
    source_hash = src.weight_hash
    with torch.inference_mode():
        stats = group_norm_statistics(src.synthesis.net, _inputs(src, data, args.files,
                                                                  args.seconds))
    net = src.synthesis.net
    n = freeze_group_norms(net, stats)
    dst = Codec(src.preset.name, src.config.size, norm="affine")
    missing = dst.load_state_dict(src.state_dict())
    assert not missing.missing_keys and not missing.unexpected_keys, missing
    dst.save(args.out, extra={"source": source_hash, "frozen_norms": n,
                              "stat_files": args.files})
    print(f"{args.preset}: froze {n} GroupNorms from {source_hash} -> {args.out} "
          f"({Codec.from_file(args.out).weight_hash})")


if __name__ == "__main__":
    main()
