"""CPU time of one training step, float32 against ``--bf16`` (the decoder CNN's convolutions in
bfloat16), for each preset's ``small`` decoder, and how far bf16 moves the loss and gradients
at the bundled weights.

    python benchmarks/train_step.py [--quick] [--repeat 3] [--presets rgb-16x stereo-5x]

One torch thread; CPU time (``time.process_time``), so the figure holds on a shared machine.
Steps as the CPU fine-tuning scripts run them: batch 8 of 192x192 crops (images) or 32,768
frames (audio), decoder-only (rounded latents), AdamW. Inputs are random (timing does not
depend on them); the loss and gradient comparison uses the bundled weights on random
inputs of the same shapes. Target: where the CPU has bf16 instructions (oneDNN's native bf16:
``avx512_bf16`` or ``amx_bf16``), bf16 steps take at most 0.8x the float32 time; the script
exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pywalloc
from pywalloc.presets import get_preset
from pywalloc.training.loop import cpu_has_bf16

TARGET = 0.8


def batch(preset: str, quick: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    p = get_preset(preset)
    if p.dims == 2:
        side = 64 if quick else 192
        return torch.rand(8, p.channels, side, side, generator=g) - 0.5
    return (torch.rand(8, p.channels, 4096 if quick else 32768, generator=g) - 0.5) * 0.5


def measure(preset: str, repeat: int, quick: bool) -> dict:
    codec = pywalloc.load(preset).train()
    codec.train_bottleneck = "round"  # decoder-only fine-tuning rounds
    codec.analysis.requires_grad_(False)
    x = batch(preset, quick)
    opt = torch.optim.AdamW([q for q in codec.synthesis.parameters()], lr=0.0)  # no drift

    def step() -> tuple[float, torch.Tensor]:
        out = codec(x)
        opt.zero_grad()
        out.mse.backward()
        opt.step()
        grad = torch.cat([q.grad.flatten() for q in codec.synthesis.parameters()])
        return float(out.mse.detach()), grad

    row = {}
    for name, on in (("fp32", False), ("bf16", True)):
        codec.synthesis.train_bf16 = on
        row[f"{name}_loss"], row[f"{name}_grad"] = step()  # warm-up, and the comparison
        t0 = time.process_time()
        for _ in range(repeat):
            step()
        row[name] = (time.process_time() - t0) / repeat
    g32, g16 = row.pop("fp32_grad"), row.pop("bf16_grad")
    row["grad_diff"] = float((g32 - g16).norm() / g32.norm().clamp_min(1e-30))
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small inputs, one repeat, one preset")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--presets", nargs="+",
                    default=["rgb-16x", "rgb-4x", "stereo-20x", "stereo-5x"])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    presets = args.presets[:1] if args.quick else args.presets
    repeat = 1 if args.quick else args.repeat
    bf16_cpu = cpu_has_bf16()
    print(f"torch {torch.__version__}, one thread, CPU bf16 instructions: "
          f"{'yes' if bf16_cpu else 'no'}\n")
    print("| codec | float32 s/step | bf16 s/step | ratio | loss change | gradient change |")
    print("|---|---:|---:|---:|---:|---:|")
    worst = 0.0
    for preset in presets:
        r = measure(preset, repeat, args.quick)
        ratio = r["bf16"] / r["fp32"]
        worst = max(worst, ratio)
        print(f"| {preset} | {r['fp32']:.3f} | {r['bf16']:.3f} | {ratio:.2f} | "
              f"{100 * (r['bf16_loss'] / r['fp32_loss'] - 1):+.2f} % | "
              f"{100 * r['grad_diff']:.1f} % |", flush=True)
    if bf16_cpu and not args.quick and worst > TARGET:
        print(f"\nMISS: a bf16 step takes {worst:.2f}x the float32 time (target <= {TARGET})")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
