"""Exact-resume checkpoints without pickle: tensors in safetensors, everything else in JSON."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from ..media import atomic_write


def _split_state(obj, prefix: str, tensors: dict):
    """Replace every tensor in a nested dict/list with a key into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {str(k): _split_state(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def _join_state(obj, tensors: dict):
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        return {k: _join_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_state(v, tensors) for v in obj]
    return obj


def _int_keys(state: dict) -> dict:
    """Optimizer state is keyed by parameter index; JSON made those strings."""
    state = dict(state)
    state["state"] = {int(k): v for k, v in state["state"].items()}
    return state


def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer, step: int,
                    extra: dict) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    opt = _split_state(optimizer.state_dict(), "opt", tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    py_state = random.getstate()
    meta = {
        "step": step,
        "optimizer": opt,
        "rng_numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "rng_python": [py_state[0], list(py_state[1]), py_state[2]],
        "extra": extra,
    }
    atomic_write(path / "state.safetensors", safetensors_bytes(tensors), "checkpoint")
    atomic_write(path / "state.json", json.dumps(meta), "checkpoint")


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer) -> tuple[int, dict]:
    path = Path(path)
    tensors = load_file(str(path / "state.safetensors"))
    meta = json.loads((path / "state.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer.load_state_dict(_int_keys(_join_state(meta["optimizer"], tensors)))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    n = meta["rng_numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
    p = meta["rng_python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    return meta["step"], meta["extra"]
