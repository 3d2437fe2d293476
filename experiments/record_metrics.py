"""Write the model card's measured figures into the bundled defaults' sidecars, so that
``walloc models`` says what each default gives (as torchvision's weights carry their metrics).

    python benchmarks/model_card.py && python experiments/record_metrics.py [--figures FILE]

Reads ``docs/models_figures.json`` (written by ``benchmarks/model_card.py``). For each codec row
whose weights hash is the bundled default's, that default's sidecar
(``pywalloc/weights/<preset>-small.json``) gets a ``measured`` entry: the data, PSNR, rate, the
second metric, the CPU decode time, the weights hash, the SHA-256 of the weights file's bytes
(``walloc models`` shows the figures only while the file still has it), and the date, command
and CPU of the model card run that measured the row (``--codecs`` runs keep older rows with
their own).
A row measured on other weights is skipped with a line: figures of other weights are never
recorded. Replacing a default (``experiments/bundle_weights.py``) writes a new sidecar, without
figures, until this runs again. The weights hash of each file is checked unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pywalloc import zoo
from pywalloc.codec import Codec


def entry(row: dict, kind: str, figures: dict) -> dict:
    """The ``measured`` entry of one model card row (``kind``: images or audio)."""
    if kind == "images":
        rate = {"bpp": round(row["bpp"], 4), "ms_ssim": round(row["ms_ssim"], 4)}
        data = f"Kodak, {row['items']} photos" + (" (luma)" if row.get("luma") else "")
    else:
        rate = {"kbps": round(row["kbps"], 2), "si_sdr_db": round(row["si_sdr"], 2)}
        data = f"stems/test, {row['items']} mixtures"
    return {"data": data, "psnr_db": round(row["psnr"], 4), **rate,
            "decode_s": round(row["decode_s"], 3), "weights_hash": row["weights_hash"],
            **{k: row.get(k, figures.get(k)) for k in ("date", "command", "cpu")}}


def record(figures: dict, default_of: Callable[[str], Path] = zoo.weights_path) -> list[str]:
    """Write each matching row into its default's sidecar; one line per row, said or skipped.
    Raises RuntimeError, with the sidecar put back, if writing it changed the weights hash."""
    lines = []
    for kind in ("images", "audio"):
        for row in figures.get(kind, []):
            path = default_of(row["codec"])
            if not path.is_file():
                lines.append(f"{row['codec']}: no bundled default; skipped")
                continue
            before = zoo.file_hash(path)
            if row.get("weights_hash") != before:
                lines.append(f"{row['codec']}: measured on {row.get('weights_hash')}, the default "
                             f"is {before}; skipped (run benchmarks/model_card.py again)")
                continue
            side = zoo.config_sidecar(path)
            body = json.loads(side.read_text())
            fields = {k: v for k, v in body.items() if k not in ("config", "info")}
            fields["measured"] = dict(entry(row, kind, figures), file_sha256=zoo.file_sha256(path))
            zoo.write_sidecar(path, body["config"], body.get("info"), **fields)
            if Codec.from_file(path).weight_hash != before:  # read afresh, not from a cache
                old = {k: v for k, v in body.items() if k not in ("config", "info")}
                zoo.write_sidecar(path, body["config"], body.get("info"), **old)
                raise RuntimeError(f"writing {side} changed the weights hash; put back as it "
                                   "was")
            lines.append(f"{row['codec']}: {fields['measured']['psnr_db']} dB recorded in "
                         f"{side.name} ({before})")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--figures", type=Path, default=ROOT / "docs" / "models_figures.json",
                    help="the model card's JSON (default: docs/models_figures.json)")
    args = ap.parse_args(argv)
    try:
        figures = json.loads(args.figures.read_text())
    except (OSError, ValueError) as exc:
        print(f"record_metrics: error: cannot read {args.figures}: {exc}", file=sys.stderr)
        return 2
    try:
        lines = record(figures)
    except RuntimeError as exc:
        print(f"record_metrics: error: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
