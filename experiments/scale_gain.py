"""Start weights at a higher latent gain: finer quantisation, more bits, for a decoder fine-tune.

    python experiments/scale_gain.py rgb-4x 1.15 runs/gain4/init-s115.safetensors

The analysis rows (and biases) are multiplied by S, so the latents before companding are S
times larger and the fixed rounding step is relatively finer; the training's rate constraint
then keeps the new row norms. The decoder's linear path, which reads the decompanded latents,
is divided by S, so that path gives the same output as before for unquantised latents. Its CNN
path reads the companded latents, where S is not a plain scale (the Gaussian companding
saturates), so it is left as is for the fine-tune to adapt (``train_flat.sh`` with
``INIT_PATTERN`` set to the written file, decoder only).

The first argument is a preset (its bundled weights) or a weights file. Written in float32.
Printed: the source and new weights hashes and the new mean analysis row norm.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scaled(codec, s: float):
    """``codec`` with its analysis times ``s`` and its decoder's linear path divided by
    ``s`` (in place; returned)."""
    import torch

    if not s > 0:
        raise ValueError(f"the gain factor must be positive, not {s}")
    with torch.no_grad():
        codec.analysis.weight.mul_(s)
        if codec.analysis.bias is not None:
            codec.analysis.bias.mul_(s)
        codec.synthesis.linear.weight.div_(s)
    return codec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", help="a preset name (bundled weights) or a weights file")
    ap.add_argument("factor", type=float, help="S: the gain multiplier (1.15: 15 %% finer)")
    ap.add_argument("out", type=Path, help="where to write the float32 start weights")
    args = ap.parse_args(argv)
    import pywalloc
    from pywalloc.errors import WallocError

    try:
        codec = pywalloc.load(args.weights)
        before = codec.weight_hash
        scaled(codec, args.factor)
    except (WallocError, ValueError) as exc:
        print(f"scale_gain: error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    codec.save(args.out, half=False)
    norm = float(codec.analysis_row_norms().mean())
    print(f"{before} -> {codec.weight_hash} (x{args.factor:g}); mean analysis row norm "
          f"{norm:.3f}; written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
