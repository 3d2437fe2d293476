"""Average the weights of codecs fine-tuned from one start (a "weight soup") into one file.

    python experiments/soup_weights.py RUN_A/model.safetensors RUN_B/model.safetensors \
        --out /tmp/soup/model.safetensors [--mix 0.5 0.5]

Links of a chain that start from the same weights and train side by side with other seeds or
learning rates end near each other; their average is often better than either (it sits nearer
the middle of the basin they share). The files must be the same preset and architecture. The
analysis rows set the bit rate through their norms, which the trainer holds at the start's;
an average of rows that point in slightly different directions is shorter, so the soup's rows
are projected back to the first file's norms (the same rate). Floating-point tensors are
averaged in float32 (``--mix``: the weights of the average, default equal, must sum to 1);
anything else must be equal in all files. Writes a float32 ``.safetensors`` like the trainer's
``model.safetensors``, so ``experiments/int8_weights.py`` and ``compare_weights.py`` take it,
and prints its weights hash and how much the projection lengthened the rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class SoupError(Exception):
    pass


def soup(paths: list[Path], mix: list[float]):
    """The averaged codec, and the factor by which the projection lengthened its rows
    (largest over rows)."""
    import copy

    import torch

    from pywalloc.codec import Codec

    codecs = [Codec.from_file(p) for p in paths]
    first = codecs[0]
    for p, c in zip(paths[1:], codecs[1:]):
        if c.config != first.config:
            raise SoupError(f"{p} is not the same codec as {paths[0]} ({c.config} against "
                            f"{first.config})")
    norms = first.analysis_row_norms()
    for p, c in zip(paths[1:], codecs[1:]):
        if not torch.allclose(c.analysis_row_norms(), norms, rtol=1e-3):
            raise SoupError(f"{p} has other analysis row norms (another bit rate) than "
                            f"{paths[0]}: not links of one chain")
    states = [c.state_dict() for c in codecs]
    out = {}
    for name, ref in states[0].items():
        if ref.is_floating_point():
            out[name] = sum(w * s[name].float() for w, s in zip(mix, states)).to(ref.dtype)
        elif all(torch.equal(ref, s[name]) for s in states[1:]):
            out[name] = ref
        else:
            raise SoupError(f"tensor {name} ({ref.dtype}) differs between the files")
    result = copy.deepcopy(first)
    result.load_state_dict(out)
    before = result.analysis_row_norms()
    result.constrain_rate(norms)
    return result, float((norms / before.clamp_min(1e-12)).max())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", nargs="+", type=Path, help="weights files (two or more)")
    ap.add_argument("--out", type=Path, required=True, help="the averaged .safetensors")
    ap.add_argument("--mix", type=float, nargs="+", help="weight of each file (sum 1)")
    args = ap.parse_args(argv)
    mix = args.mix or [1 / len(args.weights)] * len(args.weights)
    from pywalloc.errors import WallocError

    try:
        if len(args.weights) < 2:
            raise SoupError("give two or more weights files")
        if len(mix) != len(args.weights) or abs(sum(mix) - 1) > 1e-6 or min(mix) < 0:
            raise SoupError(f"--mix needs {len(args.weights)} non-negative weights summing to 1")
        codec, stretch = soup(args.weights, mix)
    except (SoupError, WallocError) as exc:
        print(f"soup_weights: error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    codec.save(args.out, half=False,
               extra={"soup": [str(p) for p in args.weights], "mix": mix})
    print(f"{args.out}: {codec.preset.name}, weights hash {codec.weight_hash}, the average of "
          f"{len(args.weights)} files (mix {', '.join(f'{w:g}' for w in mix)}); rows "
          f"lengthened by up to {100 * (stretch - 1):.4f} % to keep the bit rate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
