"""The training loop: one process, or many under ``torchrun`` with DistributedDataParallel."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from ..codec import Codec
from ..evaluation.metrics import mse_psnr
from ..media import atomic_write
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import ResumableSampler, collate, make_dataset
from .init import pca_init, wpt_statistics
from .validate import validate


def lr_factor(cfg: TrainConfig, step: int, minutes: float) -> float:
    """Linear warm-up, then cosine decay over whichever budget (steps or minutes) ends first."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    if cfg.max_minutes > 0:
        t = max(t, minutes / cfg.max_minutes)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _setup_distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if world > 1 else 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


@dataclass
class _Run:
    """Everything a training run holds between steps (built by :func:`setup`)."""

    cfg: TrainConfig
    rank: int
    world: int
    device: torch.device
    codec: Codec
    model: torch.nn.Module  # the codec, or its DDP wrapper
    opt: torch.optim.Optimizer
    base_lrs: list[float]
    norms: torch.Tensor  # analysis row norms the rate constraint keeps
    gain: float
    step: int
    minutes_before: float  # of earlier sessions (resume)
    sampler: Any
    loader: DataLoader
    out: Path
    resuming: bool
    t0: float = field(default_factory=time.time)

    @property
    def minutes(self) -> float:
        return self.minutes_before + (time.time() - self.t0) / 60


def _device(cfg: TrainConfig, local: int) -> torch.device:
    if cfg.device == "auto":
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def setup(cfg: TrainConfig) -> _Run:
    """Processes, seeds, the codec (PCA initialisation, ``--init`` weights or the checkpoint),
    the optimiser and the data loader."""
    rank, world, local = _setup_distributed()
    device = _device(cfg, local)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed = cfg.seed + rank
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank

    if cfg.decoder_only and cfg.ste:  # before any weights are read or statistics taken
        raise ValueError("--ste trains the encoder through the rounding; --decoder-only freezes it")
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoint"
    if cfg.init:
        # The architecture (size, norm, overrides) comes from the weights being fine-tuned.
        start = Codec.from_file(cfg.init)
        if start.preset.name != cfg.preset:
            raise ValueError(f"--init {cfg.init} is a {start.preset.name} codec, not {cfg.preset}")
        arch = {k: v for k, v in asdict(start.config).items() if k not in ("preset", "size")}
        codec = Codec(cfg.preset, start.config.size, **{**arch, **cfg.overrides})
    else:
        codec = Codec(cfg.preset, cfg.size, **cfg.overrides)
    p = codec.preset
    if cfg.flat and (p.dims != 2 or world > 1):
        raise ValueError("--flat is for image codecs trained in a single process")
    crop = cfg.crop or p.modality.train_crop
    gain = cfg.gain or p.gain
    resuming = cfg.resume and (ckpt_dir / "state.json").is_file()
    if not resuming and cfg.init:
        codec.load_state_dict(start.state_dict())
    elif not resuming:
        mean, cov = wpt_statistics(codec, cfg.data)
        pca_init(codec, mean, cov, gain)
    if cfg.decoder_only:
        codec.analysis.requires_grad_(False)
    codec.train_bottleneck = "ste" if cfg.ste else "round" if cfg.decoder_only else "noise"
    codec.to(device)
    # bf16 for the decoder CNN's convolutions only: the analysis, the transforms and the
    # linear path stay float32 (bf16 latents would carry errors as large as the rounding).
    bf16 = cfg.bf16
    if bf16 and device.type == "cpu" and not cpu_has_bf16():
        bf16 = False
        if rank == 0:
            print("walloc train: warning: this CPU has no bf16 instructions (bf16 would be "
                  "emulated, about 10x slower); --bf16 ignored, training in float32",
                  file=sys.stderr)
    codec.synthesis.train_bf16 = bf16
    norms = codec.analysis_row_norms().to(device)

    enc_params = [q for q in codec.analysis.parameters() if q.requires_grad]
    dec_params = [q for n, q in codec.named_parameters() if not n.startswith("analysis.")]
    groups = [{"params": dec_params, "lr": cfg.lr, "weight_decay": cfg.weight_decay}]
    if enc_params:
        groups.append({"params": enc_params, "lr": cfg.analysis_lr, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups)
    base_lrs = [g["lr"] for g in opt.param_groups]
    step, minutes_before = 0, 0.0
    if resuming:
        step, extra = load_checkpoint(ckpt_dir, codec, opt)
        norms = torch.tensor(extra["norms"], device=device)
        minutes_before = extra["minutes"]
    model: torch.nn.Module = codec
    if world > 1:
        ddp_dev = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(codec, device_ids=ddp_dev)

    per_batch = max(1, cfg.batch // cfg.per_item)
    ds = make_dataset(p.modality, cfg.data, crop, repeats=1, per_item=cfg.per_item,
                      channels=p.channels)
    if world > 1:
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    else:
        sampler = ResumableSampler(len(ds), cfg.seed, start=step * per_batch)
    # A generator of its own, so creating the loader draws nothing from the global RNG
    # (which the checkpoint restores, and the bottleneck noise uses).
    loader_gen = torch.Generator().manual_seed(cfg.seed * 7919 + step)
    loader = DataLoader(ds, batch_size=per_batch, sampler=sampler, num_workers=cfg.workers,
                        collate_fn=collate, drop_last=True, persistent_workers=cfg.workers > 0,
                        pin_memory=device.type == "cuda", generator=loader_gen)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "train_config.json", json.dumps(asdict(cfg), indent=2), "config")
    return _Run(cfg, rank, world, device, codec, model, opt, base_lrs, norms, gain, step,
                minutes_before, sampler, loader, out, resuming)


def cpu_has_bf16() -> bool:
    """Whether oneDNN has native bf16 on this CPU (AVX512-BF16 or AMX); without them torch
    emulates bf16 convolutions, which costs far more than it saves."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private check: if it is gone, assume native
        return True


def flat_batch(codec: Codec, device, n: int = 32) -> torch.Tensor:
    """``n`` flat pictures of random colours, one latent position each (one block of pixels),
    in the model's input range; about a third of the channel values are snapped to 0 or 255,
    so saturated colours, black and white are common."""
    p = codec.preset
    u = torch.rand(n, p.channels, device=device)
    snap = torch.rand(n, p.channels, device=device) < 0.3
    u = torch.where(snap, (u > 0.5).to(u.dtype), u)
    x = (u * 255).round() / 255 - 0.5
    return x[..., None, None].expand(n, p.channels, p.block, p.block).contiguous()


def train_step(run: _Run, batch: torch.Tensor) -> float:
    """One optimiser step on ``batch`` (schedule, clipping, rate constraint); the batch MSE."""
    cfg = run.cfg
    batch = batch.to(run.device, non_blocking=True)
    res = run.model(batch)
    loss = res.mse + cfg.wpt_loss * res.mse_wpt
    if cfg.flat:
        loss = loss + cfg.flat * run.model(flat_batch(run.codec, run.device)).mse
    factor = lr_factor(cfg, run.step, run.minutes)
    for group, base in zip(run.opt.param_groups, run.base_lrs):
        group["lr"] = base * factor
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.clip > 0:
        torch.nn.utils.clip_grad_norm_(run.codec.parameters(), cfg.clip)
    run.opt.step()
    run.codec.constrain_rate(run.norms)
    run.step += 1
    return float(res.mse.detach())


class _Log:
    """log.csv (rank 0) and the progress bar: one row per ``log_every`` steps."""

    HEADER = ("step", "loss", "train_psnr", "val_psnr", "lr", "items_per_s", "minutes")

    def __init__(self, run: _Run, resuming: bool) -> None:
        from tqdm import tqdm

        path = run.out / "log.csv"
        new = not path.exists() or not resuming
        if not new and run.rank == 0:
            # A run stopped after its last checkpoint logged steps that the resumed run repeats:
            # drop those rows, so each step is logged once.
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            kept = [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= run.step]
            if len(kept) < len(rows) - 1:
                with open(path, "w", newline="") as f:
                    csv.writer(f).writerows([rows[0], *kept])
        # Kept open for the whole run (flushed each row), closed by close().
        self.file = open(path, "w" if new else "a", newline="") if run.rank == 0 else None  # noqa: SIM115
        self.writer = csv.writer(self.file) if self.file else None
        if self.writer and new:
            self.writer.writerow(self.HEADER)
        self.bar = tqdm(total=run.cfg.steps, initial=run.step,
                        disable=run.rank != 0 or run.cfg.quiet, dynamic_ncols=True,
                        file=sys.stderr, mininterval=2.0)
        self.seen, self.last_t, self.loss_acc, self.n_acc = 0, time.time(), 0.0, 0

    def add(self, mse: float, items: int) -> None:
        self.seen += items
        self.loss_acc += mse
        self.n_acc += 1
        self.bar.update(1)

    def row(self, run: _Run, val_psnr: float) -> None:
        now = time.time()
        mse = self.loss_acc / max(1, self.n_acc)
        # PSNR with peak 1: the image range [-0.5, 0.5], audio's full scale.
        train_psnr = mse_psnr(max(mse, 1e-12), 1.0)
        rate = self.seen / max(1e-9, now - self.last_t)
        self.bar.set_postfix(loss=f"{mse:.2e}", psnr=f"{train_psnr:.2f}", val=f"{val_psnr:.2f}",
                             ips=f"{rate:.0f}")
        if self.writer:
            self.writer.writerow([run.step, f"{mse:.6g}", f"{train_psnr:.3f}", f"{val_psnr:.3f}",
                                  f"{run.opt.param_groups[0]['lr']:.3g}", f"{rate:.1f}",
                                  f"{run.minutes:.2f}"])
            self.file.flush()
        self.seen, self.last_t, self.loss_acc, self.n_acc = 0, now, 0.0, 0

    def close(self) -> None:
        self.bar.close()
        if self.file:
            self.file.close()


def save(run: _Run, val_psnr: float) -> None:
    """The exact-resume checkpoint and the current weights (``model.safetensors``)."""
    save_checkpoint(run.out / "checkpoint", run.codec, run.opt, run.step,
                    {"norms": run.norms.tolist(), "minutes": run.minutes})
    run.codec.save(run.out / "model.safetensors", half=False,
                   extra={"step": run.step, "gain": run.gain,
                          "val_psnr": None if math.isnan(val_psnr) else val_psnr})


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) a codec; returns the final metrics. Rank 0 writes ``cfg.out``."""
    run = setup(cfg)
    log = _Log(run, run.resuming)
    deadline = run.t0 + (cfg.max_minutes - run.minutes_before) * 60 if cfg.max_minutes > 0 \
        else float("inf")
    epoch = 0
    val_psnr = float("nan")
    stop = False
    run.model.train()
    while run.step < cfg.steps and not stop:
        if run.world > 1:
            run.sampler.set_epoch(epoch)
        for batch in run.loader:
            log.add(train_step(run, batch), batch.shape[0] * run.world)
            done = run.step >= cfg.steps or time.time() > deadline
            if run.step % cfg.log_every == 0 or done:
                log.row(run, val_psnr)
            if cfg.val and run.rank == 0 and (run.step % cfg.val_every == 0 or done):
                val_psnr = validate(run.codec, cfg.val, limit=cfg.val_limit)["psnr"]  # restores train()
            if run.rank == 0 and (run.step % cfg.ckpt_every == 0 or done):
                save(run, val_psnr)
            if done:
                stop = True
                break
        epoch += 1
    log.close()
    return _finish(run, val_psnr)


def _finish(run: _Run, val_psnr: float) -> dict:
    result = {"step": run.step, "val_psnr": None if math.isnan(val_psnr) else val_psnr,
              "minutes": run.minutes, "weight_hash": run.codec.weight_hash}
    if run.rank == 0:
        atomic_write(run.out / "result.json", json.dumps(result, indent=2), "result")
    if run.world > 1:
        # Every rank records its final weights' hash: they must agree (tests check it).
        (run.out / f"weights_rank{run.rank}.hash").write_text(result["weight_hash"])
        dist.barrier()
        dist.destroy_process_group()
    return result
