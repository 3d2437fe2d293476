"""Training: a few real steps, exact resume, the CLI flags, and DDP on two CPU processes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from pywalloc.codec import Codec
from pywalloc.training import TrainConfig, train
from pywalloc.training.cli import add_parser, config_from_args
from pywalloc.training.data import AudioSegments, ImageCrops


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(8):
        yy, xx = np.mgrid[0:48, 0:40]
        a = np.stack([xx * 3 + i, yy * 4, (xx + yy) * 2], 2) + rng.integers(0, 30, (48, 40, 3))
        Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(d / f"{i}.png")
    Image.fromarray(np.full((10, 12, 3), 100, np.uint8)).save(d / "small.png")  # < crop size
    return d


def _cfg(data, out, **kw):
    base = {"preset": "rgb-16x", "data": str(data), "out": str(out), "steps": 4, "batch": 2, "crop": 32,
                "workers": 0, "log_every": 2, "ckpt_every": 2, "val_every": 4, "warmup": 2,
                "overrides": {"width": 16, "blocks": 1}}
    base.update(kw)
    return TrainConfig(**base)


def test_datasets(image_dir, tmp_path):
    ds = ImageCrops(image_dir, crop=32, crops_per_image=3)
    x = ds[len(ds) - 1]
    assert x.shape == (3, 3, 32, 32) and x.min() >= -0.5 and x.max() <= 0.5
    sf.write(tmp_path / "m.wav", np.sin(np.arange(3000) / 9)[:, None].astype(np.float32), 44100)
    seg = AudioSegments(tmp_path, length=4096, crops_per_file=2)[0]
    assert seg.shape == (2, 2, 4096)  # mono duplicated, short file zero-padded
    assert torch.equal(seg[:, 0], seg[:, 1])


def test_train_logs_checkpoints_and_validates(image_dir, tmp_path):
    res = train(_cfg(image_dir, tmp_path / "run", val=str(image_dir), val_limit=2))
    assert res["step"] == 4 and res["val_psnr"] > 10
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,loss,train_psnr") and len(log) == 3
    codec = Codec.from_file(tmp_path / "run" / "model.safetensors")
    assert codec.weight_hash == res["weight_hash"]


def test_resume_continues_exactly(image_dir, tmp_path):
    """2 steps + resume to 4 gives bit-identical weights to 4 uninterrupted steps (workers=0:
    the data order, crops, bottleneck noise, optimizer and schedule all continue exactly)."""
    full = train(_cfg(image_dir, tmp_path / "a", steps=4))
    train(_cfg(image_dir, tmp_path / "b", steps=2))
    with open(tmp_path / "b" / "log.csv", "a") as f:  # logged by a run killed before its
        f.write("4,0.1,10.000,nan,0.001,1.0,0.10\n")  # next checkpoint: the resumed run redoes it
    resumed = train(_cfg(image_dir, tmp_path / "b", steps=4, resume=True))
    assert resumed["step"] == 4
    assert resumed["weight_hash"] == full["weight_hash"]
    other = train(_cfg(image_dir, tmp_path / "c", steps=4, seed=1))
    assert other["weight_hash"] != full["weight_hash"]  # the comparison can fail
    log = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert [ln.split(",")[0] for ln in log[1:]] == ["2", "4"]


def test_analysis_rows_keep_their_norms(image_dir, tmp_path):
    train(_cfg(image_dir, tmp_path / "n", steps=3, analysis_lr=0.05))
    codec = Codec.from_file(tmp_path / "n" / "model.safetensors")
    norms = codec.analysis.weight.flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, 8.0), rtol=1e-4)  # rgb-16x gain


def test_flat_loss_teaches_flat_colours_with_replicate_padding(image_dir, tmp_path):
    """--flat adds a loss on flat one-latent pictures; --pad replicate is kept in the saved
    config and the weights hash (the same tensors under zero padding hash differently)."""
    from pywalloc.training.loop import flat_batch

    over = {"width": 16, "blocks": 1, "pad": "replicate"}
    base = train(_cfg(image_dir, tmp_path / "a", steps=30, lr=3e-3, overrides=over))
    flat = train(_cfg(image_dir, tmp_path / "b", steps=30, lr=3e-3, overrides=over, flat=4.0))
    a, b = (Codec.from_file(tmp_path / r / "model.safetensors") for r in ("a", "b"))
    assert b.config.pad == "replicate" and b.size_spec.pad == "replicate"
    torch.manual_seed(9)
    x = flat_batch(b, "cpu", 64)
    assert x.shape == (64, 3, 8, 8) and torch.all(x == x[..., :1, :1])
    with torch.no_grad():
        assert b(x).mse < a(x).mse  # the flat loss helps flat pictures
    zeros = Codec("rgb-16x", width=16, blocks=1)
    zeros.load_state_dict(b.state_dict())
    assert zeros.weight_hash != flat["weight_hash"] == b.weight_hash
    assert base["weight_hash"] != flat["weight_hash"]
    with pytest.raises(ValueError, match="image codecs"):
        train(TrainConfig(preset="stereo-20x", data=str(image_dir), out=str(tmp_path / "c"),
                          flat=1.0, steps=1, workers=0))


def test_ste_bottleneck_rounds_forward_and_passes_gradients_straight_through():
    codec = Codec("rgb-16x", width=16, blocks=1).train()
    y = torch.tensor([-1.7, -0.2, 0.49, 2.51], requires_grad=True)
    codec.train_bottleneck = "ste"
    out = codec.bottleneck(y)
    assert torch.equal(out.detach(), torch.round(y.detach()))
    (out * torch.arange(1.0, 5.0)).sum().backward()
    assert torch.equal(y.grad, torch.arange(1.0, 5.0))
    codec.train_bottleneck = "noise"  # the noise of ordinary training is not the rounding
    assert not torch.equal(codec.bottleneck(y.detach()), torch.round(y.detach()))
    codec.train_bottleneck = "round"  # decoder-only fine-tuning: rounding, no gradient
    assert torch.equal(codec.bottleneck(y.detach()), torch.round(y.detach()))
    with pytest.raises(ValueError, match="train_bottleneck"):  # refused when set
        codec.train_bottleneck = "nosie"
    assert codec.train_bottleneck == "round"
    codec.eval()  # inference always rounds, whatever the training mode
    assert torch.equal(codec.bottleneck(y.detach()), torch.round(y.detach()))


def test_ste_trains_the_encoder_on_rounded_latents(image_dir, tmp_path, monkeypatch):
    start = train(_cfg(image_dir, tmp_path / "a", steps=2))
    init = str(tmp_path / "a" / "model.safetensors")
    seen = []
    real = Codec.bottleneck

    def spy(self, y):
        out = real(self, y)
        seen.append(bool(torch.equal(out, torch.round(out))))
        return out

    monkeypatch.setattr(Codec, "bottleneck", spy)
    res = train(_cfg(image_dir, tmp_path / "b", steps=3, init=init, ste=True, analysis_lr=0.05))
    monkeypatch.undo()
    assert seen and all(seen)  # every training pass decoded integer latents
    a, b = (Codec.from_file(tmp_path / r / "model.safetensors") for r in ("a", "b"))
    assert not torch.equal(a.analysis.weight, b.analysis.weight)  # the encoder moved
    assert torch.allclose(b.analysis.weight.flatten(1).norm(dim=1),
                          a.analysis.weight.flatten(1).norm(dim=1), rtol=1e-4)  # same rate
    assert res["weight_hash"] != start["weight_hash"]
    with pytest.raises(ValueError, match="--decoder-only"):
        train(_cfg(image_dir, tmp_path / "c", steps=1, ste=True, decoder_only=True))


def test_cli_flags_map_to_config(tmp_path):
    import argparse

    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers()
    add_parser(sub)
    cfgfile = tmp_path / "c.json"
    cfgfile.write_text(json.dumps({"steps": 77, "batch": 3}))
    args = ap.parse_args(["train", "--preset", "rgb-4x", "--data", "d", "--out", "o",
                          "--config", str(cfgfile), "--batch", "5", "--bf16", "--width", "32",
                          "--pad", "replicate", "--flat", "0.5", "--ste"])
    cfg = config_from_args(args)
    assert (cfg.preset, cfg.steps, cfg.batch, cfg.bf16, cfg.flat) == ("rgb-4x", 77, 5, True, 0.5)
    assert cfg.ste and not cfg.decoder_only
    assert cfg.overrides == {"width": 32, "pad": "replicate"}


def test_ddp_two_processes_agree(image_dir, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "pywalloc.training", "--preset", "rgb-16x", "--data", str(image_dir),
           "--out", str(out), "--steps", "3", "--batch", "2", "--crop", "32", "--workers", "0",
           "--width", "16", "--blocks", "1", "--threads", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    h0 = (out / "weights_rank0.hash").read_text()
    h1 = (out / "weights_rank1.hash").read_text()
    assert h0 == h1
    assert Codec.from_file(out / "model.safetensors").weight_hash == h0


def test_bf16_runs_only_the_decoder_convolutions_in_bf16(image_dir, tmp_path):
    """``--bf16``: in training the CNN's convolutions compute in bf16 and hand float32 on (the
    loss and gradients stay close to float32's); the latents and inference are untouched, and
    switching it off restores the float32 forward exactly."""
    torch.manual_seed(0)
    codec = Codec("rgb-16x", width=16, blocks=1).train()
    with torch.no_grad():
        codec.synthesis.net[-1].weight.normal_(0, 0.05)
    codec.train_bottleneck = "round"
    x = torch.rand(2, 3, 32, 32) - 0.5
    seen = []
    # What the layer after the first convolution receives.
    hook = codec.synthesis.net[1].register_forward_pre_hook(lambda m, i: seen.append(i[0].dtype))

    def run():
        out = codec(x)
        codec.zero_grad()
        out.mse.backward()
        grad = torch.cat([p.grad.flatten() for p in codec.synthesis.parameters()])
        return out, grad

    ref, g_ref = run()
    codec.synthesis.train_bf16 = True
    low, g_low = run()
    assert codec.synthesis.train_bf16 and seen == [torch.float32, torch.float32]
    assert low.x_hat.dtype == torch.float32 and torch.equal(low.latents, ref.latents)
    assert not torch.equal(low.x_hat, ref.x_hat)  # bf16 did run
    assert abs(float(low.mse.detach()) / float(ref.mse.detach()) - 1) < 1e-2
    assert float(torch.nn.functional.cosine_similarity(g_ref, g_low, 0)) > 0.99
    codec.eval()
    with torch.no_grad():  # inference ignores the switch
        z = codec.encode(x)
        a = codec.decode(z)
        codec.synthesis.train_bf16 = False
        assert torch.equal(a, codec.decode(z))
    codec.train()
    again, _ = run()
    hook.remove()
    assert torch.equal(again.x_hat, ref.x_hat)
    cfg = TrainConfig(preset="rgb-16x", data=str(image_dir), out=str(tmp_path / "b"), steps=2,
                      batch=2, crop=32, workers=0, bf16=True,
                      overrides={"width": 16, "blocks": 1})
    assert train(cfg)["step"] == 2


def test_bf16_is_ignored_on_a_cpu_without_bf16(image_dir, tmp_path, monkeypatch, capsys):
    """Emulated bf16 is about 10x slower than float32: --bf16 then trains in float32, with one
    warning line."""
    import pywalloc.training.loop as loop_mod

    monkeypatch.setattr(loop_mod, "cpu_has_bf16", lambda: False)
    cfg = TrainConfig(preset="rgb-16x", data=str(image_dir), out=str(tmp_path / "r"), steps=1,
                      batch=2, crop=32, workers=0, bf16=True, device="cpu",
                      overrides={"width": 16, "blocks": 1})
    run = loop_mod.setup(cfg)
    assert not run.codec.synthesis.train_bf16
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--bf16 ignored" in err
    monkeypatch.setattr(loop_mod, "cpu_has_bf16", lambda: True)
    assert loop_mod.setup(cfg).codec.synthesis.train_bf16


def test_audio_segments_retry_a_failed_seek(tmp_path, monkeypatch):
    """A segment read that fails (libsndfile's Ogg seeking failed once in a long run) is
    retried at another start; a file that cannot be read at all still raises."""
    import pywalloc.training.data as data_mod
    from pywalloc.errors import MediaError

    t = np.linspace(0, 1, 44100, dtype=np.float32)
    sf.write(tmp_path / "a.wav", np.stack([np.sin(300 * t), np.cos(300 * t)], 1) * 0.4, 44100)
    ds = AudioSegments(tmp_path, length=4096)
    real, calls = data_mod.read_audio, []

    def flaky(path, start=0, frames=None):
        calls.append(start)
        if len(calls) == 1:
            raise MediaError("cannot read audio: negative dimensions are not allowed")
        return real(path, start=start, frames=frames)

    monkeypatch.setattr(data_mod, "read_audio", flaky)
    seg = ds[0]
    assert seg.shape == (1, 2, 4096) and len(calls) == 2

    def broken(path, start=0, frames=None):
        calls.append(start)
        raise MediaError("cannot read audio: broken")

    calls.clear()
    monkeypatch.setattr(data_mod, "read_audio", broken)
    with pytest.raises(MediaError, match="broken"):
        ds[0]
    assert len(calls) == 4 and calls[-1] == 0


def test_training_data_errors_name_the_problem(tmp_path):
    """A missing folder is said to be missing; an existing one without such files says so."""
    from pywalloc.training.data import list_files

    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_files(tmp_path / "nowhere", "image")
    with pytest.raises(FileNotFoundError, match="no audio files under"):
        list_files(tmp_path, "audio")
