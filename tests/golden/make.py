"""Golden bitstreams: for each bundled preset, the .wlc of a small piece of a bundled sample and
the sha256 of its decoded output; for each RGB preset with a gray counterpart also the gray
path of before the gray codecs (the luma of that piece coded through the RGB codec, file
``<preset>-gray-<hash>.wlc``, entry ``"input": "gray"``). ``tests/test_golden.py`` checks that encoding still gives these
bytes and decoding still gives this output, bit for bit (with torch on one thread: decoded
samples can differ by one LSB between thread counts). Files written with an entropy coder
other than 1 are named ``...-e<id>.wlc`` and their entry records ``"entropy"``; entries
without it are entropy 1, and are re-encoded with it.

    python tests/golden/make.py                                  # check, change nothing
    python tests/golden/make.py --threads 2                      # check every file on 2 threads
    python tests/golden/make.py --regenerate --reason "why"      # rewrite for current weights

Regenerating rewrites the files of the presets' current default weights only; files of older
weights stay, since they check that files made with those weights still decode. Put the reason
in the commit message too.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
# Weights retired from the package (pywalloc/weights/archived.json): older golden files name them.
ARCHIVE = HERE.parent.parent / "weights-archive"
sys.path.insert(0, str(HERE.parent.parent))

from pywalloc import api, zoo
from pywalloc.modality import AUDIO, IMAGE, luma
from pywalloc.presets import GRAY_COUNTERPART, get_preset

INDEX = HERE / "golden.json"
SAMPLES = Path(api.__file__).resolve().parent / "samples"


def golden_input(preset: str, variant: str = "") -> tuple[np.ndarray, dict]:
    """The input of a preset's golden file: a 45x77 crop of kodim23.png (odd-sized on purpose:
    padding is exercised; its luma, Pillow's convert("L"), for gray codecs and the ``"gray"``
    variant), or 0.25 s of chimes.flac; and the keyword arguments of encode."""
    p = get_preset(preset)
    m = p.modality
    data, extra = m.read(SAMPLES / m.sample)
    if m is IMAGE:
        crop = np.ascontiguousarray(data[200:245, 300:377])
        if p.channels == 1 or variant == "gray":
            return luma(crop), {**extra, "as_rgb": p.channels == 3}
        return crop, extra
    assert m is AUDIO
    return np.ascontiguousarray(data[44100:44100 + 11025]), extra


def digest(array: np.ndarray) -> str:
    a = np.ascontiguousarray(array)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


def make(preset: str, variant: str = "") -> tuple[bytes, dict]:
    """(.wlc bytes, index entry) for the preset's current default weights."""
    codec = zoo.load(preset, frozen=True)
    data, extra = golden_input(preset, variant)
    enc = api.encode(data, codec, **extra)
    blob, coder = enc.blob, enc.header.entropy
    decoded = api.decode_blob(blob).data
    tag = f"-{variant}" if variant else ""
    suffix = f"-e{coder}" if coder != 1 else ""
    return blob, {"preset": preset, "weights_hash": codec.weight_hash, "input": variant,
                  "entropy": coder, "file": f"{preset}{tag}-{codec.weight_hash}{suffix}.wlc",
                  "wlc_sha256": hashlib.sha256(blob).hexdigest(), "decoded_sha256": digest(decoded),
                  "decoded": f"{decoded.dtype} {list(decoded.shape)}"}


def check_threads(threads: int) -> int:
    """Encode and decode every golden file with torch on ``threads`` threads; 1 if any differs."""
    torch.set_num_threads(threads)
    differ = 0
    for e in load_index()["entries"]:
        blob = (HERE / e["file"]).read_bytes()
        same_dec = digest(api.decode_blob(blob).data) == e["decoded_sha256"]
        data, extra = golden_input(e["preset"], e.get("input", ""))
        same_enc = api.encode(data, zoo.find(e["preset"], e["weights_hash"]),
                              entropy_id=e.get("entropy", 1), **extra).blob == blob
        differ += not (same_dec and same_enc)
        print(f"{e['file']} on {threads} threads: decode {'same' if same_dec else 'DIFFERS'}, "
              f"encode {'same' if same_enc else 'DIFFERS'}")
    return 1 if differ else 0


def load_index() -> dict:
    return json.loads(INDEX.read_text()) if INDEX.is_file() else {"entries": [], "history": []}


def main() -> int:
    os.environ[zoo.PATH_ENV] = os.pathsep.join(
        p for p in (os.environ.get(zoo.PATH_ENV), str(ARCHIVE)) if p)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regenerate", action="store_true", help="rewrite the golden files")
    ap.add_argument("--reason", help="why (required with --regenerate; kept in golden.json)")
    ap.add_argument("--threads", type=int, default=0,
                    help="only check every golden file (encode and decode) on this many threads")
    args = ap.parse_args()
    if args.regenerate and not args.reason:
        ap.error("--regenerate needs --reason")
    if args.threads:
        return check_threads(args.threads)
    torch.set_num_threads(1)
    index = load_index()
    entries = {e["file"]: e for e in index["entries"]}
    changed = []
    jobs = [(p, "") for p in zoo.available()]
    jobs += [(p, "gray") for p in zoo.available() if p in GRAY_COUNTERPART]
    for preset, variant in jobs:
        blob, entry = make(preset, variant)
        old = entries.get(entry["file"])
        same = old is not None and all(old[k] == entry[k] for k in ("wlc_sha256",
                                                                    "decoded_sha256"))
        print(f"{entry['file']}: {'unchanged' if same else 'new' if old is None else 'CHANGED'}")
        if not same:
            changed.append(entry["file"])
            if args.regenerate:
                (HERE / entry["file"]).write_bytes(blob)
                entries[entry["file"]] = entry
    if args.regenerate and changed:
        index["entries"] = [entries[k] for k in sorted(entries)]
        index["history"].append({
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "reason": args.reason, "files": changed, "torch": torch.__version__})
        INDEX.write_text(json.dumps(index, indent=1) + "\n")
        print(f"wrote {len(changed)} golden file(s) and {INDEX.name}")
    return 1 if changed and not args.regenerate else 0


if __name__ == "__main__":
    raise SystemExit(main())
