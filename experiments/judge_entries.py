"""Apply the stereo-20x chain's rules (docs/training-history.md, every session since the fifteenth) to the
scores that ``experiments/compare_weights.py --json`` wrote, so that the verdict is read from
the files and not by eye:

    python experiments/judge_entries.py --default 33.684 34.308 --candidate 34.001 34.401 \\
        /tmp/score-ste-c24l.json /tmp/score-ste-c24m.json /tmp/score-soup-c24.json

Each figure pair is stems/test then held-out music PSNR (dB). Rules, as training-history.md states them:

- ship bar: at least ``--bar`` dB (0.100) over the default on both sets;
- candidate: at least ``--lead`` dB (0.010) over the candidate on the held-out music and at most
  ``--slack`` dB (0.100) below it on stems/test, or above it on stems/test and at least
  ``--edge`` dB (0.005) over it on the held-out music;
- of several entries that clear the bar (or qualify), the one highest on the held-out music.

Prints one Markdown table row per entry and a last line with the verdict; ``--json`` writes it.
Exit status 0 whatever the verdict (2 on unreadable input).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPS = 1e-9  # a figure equal to a threshold, as printed, passes


def judge(entries: list[dict], default: tuple[float, float], candidate: tuple[float, float],
          bar: float = 0.100, lead: float = 0.010, slack: float = 0.100,
          edge: float = 0.005) -> dict:
    """``entries``: dicts with ``name``, ``stems_psnr`` and ``heldout_psnr``. Returns
    ``{"rows": [...], "ship": name or None, "candidate": name or None}``, each row the entry
    with ``ships`` and ``qualifies`` (booleans) and its differences from the two references."""
    rows = []
    for e in entries:
        s, h = float(e["stems_psnr"]), float(e["heldout_psnr"])
        ships = s >= default[0] + bar - EPS and h >= default[1] + bar - EPS
        qualifies = ((h >= candidate[1] + lead - EPS and s >= candidate[0] - slack - EPS)
                     or (s > candidate[0] + EPS and h >= candidate[1] + edge - EPS))
        rows.append(dict(e, ships=ships, qualifies=qualifies,
                         stems_vs_default=s - default[0], heldout_vs_default=h - default[1],
                         stems_vs_candidate=s - candidate[0],
                         heldout_vs_candidate=h - candidate[1]))

    def best(key: str) -> str | None:
        chosen = [r for r in rows if r[key]]
        return max(chosen, key=lambda r: r["heldout_psnr"])["name"] if chosen else None

    return {"rows": rows, "ship": best("ships"), "candidate": best("qualifies")}


def read_entry(path: Path) -> dict:
    """The first weights' scores in a compare_weights.py JSON, named after the file
    (``score-NAME.json`` -> ``NAME``)."""
    body = json.loads(path.read_text())
    first = body[0] if isinstance(body, list) else body
    name = path.stem.removeprefix("score-")
    if first.get("heldout_psnr") is None:
        raise ValueError(f"{path}: no held-out figure (scored without --heldout?)")
    return {"name": name, "hash": first.get("hash"), "stems_psnr": first["stems_psnr"],
            "heldout_psnr": first["heldout_psnr"], "stems_kbps": first.get("stems_kbps"),
            "heldout_kbps": first.get("heldout_kbps")}


def table(verdict: dict) -> str:
    lines = ["| entry | hash | stems/test | held-out music | against the rules |",
             "|---|---|---|---|---|"]
    for r in verdict["rows"]:
        said = ("clears the ship bar" if r["ships"] else
                "qualifies as the candidate" if r["qualifies"] else "only reported")
        lines.append(f"| {r['name']} | `{r.get('hash') or '?'}` | {r['stems_psnr']:.3f} dB "
                     f"({r['stems_vs_candidate']:+.3f} against the candidate) | "
                     f"{r['heldout_psnr']:.3f} dB ({r['heldout_vs_candidate']:+.3f}) | {said} |")
    ship, keep = verdict["ship"], verdict["candidate"]
    lines.append(f"verdict: ship {ship}" if ship else
                 f"verdict: nothing ships; new candidate {keep}" if keep else
                 "verdict: nothing ships; the candidate stays")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scores", nargs="+", type=Path, help="compare_weights.py --json files")
    ap.add_argument("--default", nargs=2, type=float, required=True, metavar=("STEMS", "HELD"))
    ap.add_argument("--candidate", nargs=2, type=float, required=True,
                    metavar=("STEMS", "HELD"))
    ap.add_argument("--bar", type=float, default=0.100)
    ap.add_argument("--lead", type=float, default=0.010)
    ap.add_argument("--slack", type=float, default=0.100)
    ap.add_argument("--edge", type=float, default=0.005)
    ap.add_argument("--json", type=Path, help="also write the verdict here")
    args = ap.parse_args(argv)
    try:
        entries = [read_entry(p) for p in args.scores]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        print(f"judge_entries: error: {exc}", file=sys.stderr)
        return 2
    verdict = judge(entries, tuple(args.default), tuple(args.candidate), args.bar, args.lead,
                    args.slack, args.edge)
    print(table(verdict))
    if args.json:
        args.json.write_text(json.dumps(verdict, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
