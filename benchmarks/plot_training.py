"""Plot the bundled codecs' training curves (train PSNR against step) from docs/training-logs.

    python benchmarks/plot_training.py [--out docs/training-curves.png]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stage_groups(stages) -> list[list[str]]:
    """``stages`` in order, with the links of one averaged pair (a weight soup: names that
    differ only in the letter before ``-soup``, such as ``-ste-c23l-soup`` and
    ``-ste-c23m-soup``) in one group: they trained side by side from one start, so their
    curves share that start on the step axis instead of following each other."""
    groups: list[list[str]] = []
    for stage in stages:
        key = stage[:-len("x-soup")] if stage.endswith("-soup") else None
        last = groups[-1][-1] if groups else ""
        if key is not None and last.endswith("-soup") and last[:-len("x-soup")] == key:
            groups[-1].append(stage)
        else:
            groups.append([stage])
    return groups


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
            colour, offset = None, 0
            for group in stage_groups(STAGES):
                start, end = offset, offset
                for stage in group:  # the links of a group ran side by side from one start
                    stem = f"{name}{stage}"
                    f = Path(args.logs) / f"{stem}.csv"
                    if not f.is_file():
                        if stem in lost:  # its steps happened, its curve is lost: a shaded gap
                            n = int(lost[stem]["steps"])
                            ax.axvspan(start, start + n, color="gray", alpha=0.15)
                            end = max(end, start + n)
                        continue
                    rows = list(csv.DictReader(f.open()))
                    if not rows:
                        continue
                    steps = [start + int(r["step"]) for r in rows]
                    psnr = [float(r["train_psnr"]) for r in rows]
                    if stage:  # a later stage starts here
                        ax.axvline(start, color="gray", lw=0.5, ls="--")
                    # a running mean over 10 log points: the raw per-100-step PSNR is noisy
                    smooth = [sum(psnr[max(0, i - 9): i + 1]) / len(psnr[max(0, i - 9): i + 1])
                              for i in range(len(psnr))]
                    line, = ax.plot(steps, smooth, color=colour,
                                    label=None if colour else name)
                    colour = line.get_color()
                    end = max(end, steps[-1])
                offset = end
        ax.set_xlabel("step")
        ax.set_ylabel("training PSNR, dB (running mean)")
        ax.grid(alpha=0.3)
        ax.legend()
    # Stages differ in data, crops, batch and bottleneck (docs/models.md): each dashed line starts
    # one, and its PSNR level does not line up with the stage before.
    # The two links of an averaged pair share their start (stage_groups).
    axes[0].set_title("images (dashed: a fine-tuning stage starts; shaded: log lost)")
    axes[1].set_title("audio (dashed: a stage starts; averaged pairs side by side)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
