"""The training loop: one process, or many under ``torchrun`` with DistributedDataParallel."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from ..codec import Codec
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import ResumableSampler, collate, make_dataset
from .init import DEFAULT_GAIN, analysis_row_norms, pca_init, renorm_analysis, wpt_statistics
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


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) a codec; returns the final metrics. Rank 0 writes ``cfg.out``."""
    rank, world, local = _setup_distributed()
    if cfg.device == "auto":
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed = cfg.seed + rank
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank

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
    crop = cfg.crop or (256 if p.modality == "image" else 32768)
    gain = cfg.gain or DEFAULT_GAIN.get(p.name, 8.0)
    resuming = cfg.resume and (ckpt_dir / "state.json").is_file()
    if not resuming and cfg.init:
        codec.load_state_dict(start.state_dict())
    elif not resuming:
        mean, cov = wpt_statistics(codec, cfg.data)
        pca_init(codec, mean, cov, gain)
    if cfg.decoder_only:
        codec.train_noise = False
        codec.analysis.requires_grad_(False)
    codec.to(device)
    norms = analysis_row_norms(codec).to(device)

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
    model = codec
    if world > 1:
        ddp_dev = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(codec, device_ids=ddp_dev)

    per_batch = max(1, cfg.batch // cfg.per_item)
    ds = make_dataset(p.modality, cfg.data, crop, repeats=1, per_item=cfg.per_item)
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
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    log_path = out / "log.csv"
    new_log = not log_path.exists() or not resuming
    # Kept open for the whole run (flushed each log line), closed after the loop.
    logf = open(log_path, "w" if new_log else "a", newline="") if rank == 0 else None  # noqa: SIM115
    writer = csv.writer(logf) if logf else None
    if writer and new_log:
        writer.writerow(["step", "loss", "train_psnr", "val_psnr", "lr", "items_per_s", "minutes"])

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, disable=rank != 0 or cfg.quiet, dynamic_ncols=True,
               file=sys.stderr, mininterval=2.0)
    t0 = time.time()
    deadline = t0 + (cfg.max_minutes - minutes_before) * 60 if cfg.max_minutes > 0 else float("inf")
    epoch = 0
    seen, last_t, loss_acc, n_acc = 0, time.time(), 0.0, 0
    val_psnr = float("nan")
    peak2 = 1.0  # PSNR with peak 1: the image range [-0.5, 0.5], audio's full scale
    stop = False
    model.train()
    while step < cfg.steps and not stop:
        if world > 1:
            sampler.set_epoch(epoch)
        for batch in loader:
            batch = batch.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                res = model(batch)
                loss = res.mse + cfg.wpt_loss * res.mse_wpt
            factor = lr_factor(cfg, step, minutes_before + (time.time() - t0) / 60)
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = base * factor
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_(codec.parameters(), cfg.clip)
            opt.step()
            renorm_analysis(codec, norms)
            step += 1
            seen += batch.shape[0] * world
            loss_acc += float(res.mse.detach())
            n_acc += 1
            bar.update(1)
            done = step >= cfg.steps or time.time() > deadline
            if step % cfg.log_every == 0 or done:
                now = time.time()
                mse = loss_acc / max(1, n_acc)
                psnr = 10 * math.log10(peak2 / max(mse, 1e-12))
                rate = seen / max(1e-9, now - last_t)
                bar.set_postfix(loss=f"{mse:.2e}", psnr=f"{psnr:.2f}", val=f"{val_psnr:.2f}",
                                ips=f"{rate:.0f}")
                if writer:
                    writer.writerow([step, f"{mse:.6g}", f"{psnr:.3f}", f"{val_psnr:.3f}",
                                     f"{opt.param_groups[0]['lr']:.3g}", f"{rate:.1f}",
                                     f"{minutes_before + (now - t0) / 60:.2f}"])
                    logf.flush()
                seen, last_t, loss_acc, n_acc = 0, now, 0.0, 0
            if cfg.val and rank == 0 and (step % cfg.val_every == 0 or done):
                val_psnr = validate(codec, cfg.val, limit=cfg.val_limit)["psnr"]  # restores train()
            if rank == 0 and (step % cfg.ckpt_every == 0 or done):
                save_checkpoint(ckpt_dir, codec, opt, step, {
                    "norms": norms.tolist(), "minutes": minutes_before + (time.time() - t0) / 60})
                codec.save(out / "model.safetensors", half=False,
                           extra={"step": step, "gain": gain,
                                  "val_psnr": None if math.isnan(val_psnr) else val_psnr})
            if done:
                stop = True
                break
        epoch += 1
    bar.close()
    if logf:
        logf.close()
    result = {"step": step, "val_psnr": None if math.isnan(val_psnr) else val_psnr,
              "minutes": minutes_before + (time.time() - t0) / 60,
              "weight_hash": codec.weight_hash}
    if rank == 0:
        (out / "result.json").write_text(json.dumps(result, indent=2))
    if world > 1:
        # Every rank records its final weights' hash: they must agree (tests check it).
        (out / f"weights_rank{rank}.hash").write_text(result["weight_hash"])
        dist.barrier()
        dist.destroy_process_group()
    return result
