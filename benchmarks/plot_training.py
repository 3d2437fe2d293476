"""Plot the bundled codecs' training curves (train PSNR against step) from docs/training-logs.

    python benchmarks/plot_training.py [--out docs/training-curves.png]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from model_card import STAGES, lost_stages  # benchmarks/model_card.py, beside this script

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", default=str(ROOT / "docs" / "training-logs"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "training-curves.png"))
    args = ap.parse_args()
    lost = lost_stages(Path(args.logs))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, names in zip(axes, (("rgb-16x", "rgb-4x"), ("stereo-20x", "stereo-5x"))):
        for name in names:
            steps, psnr, offset = [], [], 0
            for stem in (f"{name}{stage}" for stage in STAGES):
                part = f"{stem}.csv"
                f = Path(args.logs) / part
                if not f.is_file():
                    if stem in lost:  # its steps happened, its curve is lost: a shaded gap
                        ax.axvspan(offset, offset + lost[stem]["steps"], color="gray", alpha=0.15)
                        offset += int(lost[stem]["steps"])
                    continue
                rows = list(csv.DictReader(f.open()))
                steps += [offset + int(r["step"]) for r in rows]
                psnr += [float(r["train_psnr"]) for r in rows]
                if part != f"{name}.csv" and rows:  # a later stage starts here
                    ax.axvline(offset, color="gray", lw=0.5, ls="--")
                offset = steps[-1] if steps else 0
            # a running mean over 10 log points: the raw per-100-step PSNR is noisy
            smooth = [sum(psnr[max(0, i - 9): i + 1]) / len(psnr[max(0, i - 9): i + 1])
                      for i in range(len(psnr))]
            ax.plot(steps, smooth, label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("training PSNR, dB (running mean)")
        ax.grid(alpha=0.3)
        ax.legend()
    # Stages differ in data, crops, batch and bottleneck (docs/models.md): each dashed line starts
    # one, and its PSNR level does not line up with the stage before.
    axes[0].set_title("images (dashed: a fine-tuning stage starts; shaded: log lost)")
    axes[1].set_title("audio (dashed: a fine-tuning stage starts; shaded: log lost)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
