"""Start a wider (and deeper) decoder from a trained one, computing the same function.

    python experiments/widen.py rgb-16x runs/wide16/init-w256.safetensors --width 256

Every hidden channel of the decoder's CNN is copied k = new width / old width times (the
copies side by side, so each norm group holds the copies of one old group and its statistics
do not change). A convolution that reads the hidden channels gives each copy 1/k of the old
weight, times a factor 1 + d (d random, summing to zero over the k copies): the copies carry
identical activations at the start, so their sum, and the decoder's output, is unchanged,
while their gradients differ from the first step on (without the factors the copies would
train in lockstep for ever). Extra blocks, when ``--blocks`` asks for more, are appended
before the output layers with their last convolutions at zero, so each adds nothing yet.
The encoder, the linear path and the rate are untouched; train the result with the decoder
alone (``--decoder-only``, e.g. ``train_flat.sh`` with ``INIT_PATTERN`` set to the file).

The first argument is a preset (its bundled weights) or a weights file. Written in float32
under the size whose width and depth match (``medium`` for 256 wide, 6 blocks, of an image
codec), with the source's norm and padding. Printed: the source and new weights hashes, the
parameter counts and the largest output difference on a random input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _size_name(modality: str, width: int, blocks: int) -> str | None:
    from pywalloc.presets import SIZES

    for name, s in SIZES[modality].items():
        if s.width == width and s.blocks == blocks and not s.attention:
            return name
    return None


def widened(codec, width: int, blocks: int | None = None, spread: float = 0.2, seed: int = 0):
    """A new codec whose decoder CNN is ``width`` wide and ``blocks`` deep (default: as deep as
    ``codec``'s), computing what ``codec`` computes (up to float rounding)."""
    import torch

    from pywalloc.codec import Codec

    old = codec.size_spec
    blocks = old.blocks if blocks is None else blocks
    if old.attention:
        raise ValueError("decoders with attention cannot be widened")
    if width % old.width or width < old.width:
        raise ValueError(f"the new width must be a multiple of the old one ({old.width}), "
                         f"not {width}")
    if blocks < old.blocks:
        raise ValueError(f"the new decoder needs at least the old one's {old.blocks} blocks")
    k = width // old.width
    named = _size_name(codec.preset.modality.name, width, blocks)
    keep = {"norm": old.norm, **({"pad": codec.config.pad} if codec.config.pad else {})}
    torch.manual_seed(seed)
    if named:
        new = Codec(codec.preset.name, named, **keep)
    else:
        new = Codec(codec.preset.name, codec.config.size, width=width, blocks=blocks, **keep)
    gen = torch.Generator().manual_seed(seed)
    src = codec.state_dict()
    extra = blocks - old.blocks

    def rename(name: str) -> str:
        # net.0 is the input layer, net.1..B the blocks, then the output layers
        if name.startswith("synthesis.net."):
            i = int(name.split(".")[2])
            if i > old.blocks:
                return name.replace(f"synthesis.net.{i}.", f"synthesis.net.{i + extra}.", 1)
        return name

    def factors(n: int) -> torch.Tensor:
        d = torch.randn(n, k, generator=gen) * spread
        d = d - d.mean(1, keepdim=True)
        return (1.0 + d).reshape(n * k)

    state = new.state_dict()
    out = dict(state)
    for name, t in src.items():
        target = rename(name)
        shape = state[target].shape
        t = t.float()
        if name.endswith(".weight") and t.dim() >= 3:  # a convolution: [out, in, kernel...]
            if shape[0] == k * t.shape[0] and t.shape[0] == old.width:
                t = t.repeat_interleave(k, 0)
            if shape[1] == k * t.shape[1] and t.shape[1] == old.width:
                f = factors(t.shape[1]).view(1, -1, *([1] * (t.dim() - 2)))
                t = t.repeat_interleave(k, 1) * f / k
        else:  # biases, norm scales and shifts, Snake's alpha: one value per channel
            for d, n in enumerate(t.shape):
                if n == old.width and shape[d] == k * n:
                    t = t.repeat_interleave(k, d)
        if t.shape != shape:
            raise ValueError(f"cannot widen {name}: {tuple(t.shape)} -> {tuple(shape)}")
        out[target] = t
    # Appended blocks add nothing yet: zero the layer that ends each residual branch.
    with torch.no_grad():
        for i in range(old.blocks + 1, blocks + 1):
            block = new.synthesis.net[i]
            ends = ([block.body[-1]] if hasattr(block, "body")
                    else [stage[-1] for stage in block.stages])
            for conv in ends:
                conv.weight.zero_()
                conv.bias.zero_()
            for n_, v in block.state_dict().items():
                out[f"synthesis.net.{i}.{n_}"] = v
    new.load_state_dict(out)
    return new.eval()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", help="a preset name (bundled weights) or a weights file")
    ap.add_argument("out", type=Path, help="where to write the float32 start weights")
    ap.add_argument("--width", type=int, required=True, help="the new decoder width")
    ap.add_argument("--blocks", type=int, default=None, help="the new depth (default: the same)")
    ap.add_argument("--spread", type=float, default=0.2,
                    help="std of the copies' weight factors (symmetry breaking; default 0.2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import torch

    import pywalloc
    from pywalloc.errors import WallocError

    try:
        codec = pywalloc.load(args.weights)
        wide = widened(codec, args.width, args.blocks, args.spread, args.seed)
    except (WallocError, ValueError) as exc:
        print(f"widen: error: {exc}", file=sys.stderr)
        return 2
    p = codec.preset
    shape = (1, p.latent_channels) + ((24, 24) if p.dims == 2 else (96,))
    y = torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 200 - 100
    with torch.no_grad():
        a, b = codec.synthesis(y, y), wide.synthesis(y, y)
    diff = float((a - b).abs().max())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    wide.save(args.out, half=False)

    def count(c) -> int:
        return sum(q.numel() for q in c.synthesis.parameters())

    print(f"{codec.weight_hash} -> {wide.weight_hash}: decoder {count(codec):,} -> "
          f"{count(wide):,} parameters ({wide.config.size}, width {wide.size_spec.width}, "
          f"{wide.size_spec.blocks} blocks, norm {wide.size_spec.norm}); largest output "
          f"difference on a random latent field {diff:.2e}; written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
