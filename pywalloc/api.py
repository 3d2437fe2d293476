"""In-memory and file-level compress/decompress: media → codec → entropy coding → container."""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass

import numpy as np
import torch

from . import container, entropy, limits
from . import modality as _modality
from .codec import Codec
from .container import Encoded, inspect
from .errors import FormatError, MediaError, UnsupportedInputError, WeightsMismatchError
from .modality import AUDIO, CODEC_RATE, IMAGE, Modality
from .presets import GRAY_COUNTERPART, get_preset

__all__ = ["CODEC_RATE", "Decoded", "Encoded", "MediaError", "compress", "compress_audio",
           "compress_file", "compress_image", "decode_blob", "decompress", "decompress_file",
           "encode", "encode_file", "inspect"]


@dataclass(frozen=True)
class Decoded:
    """A decoded file: image pixels (``H x W x 3`` or ``H x W`` uint8) or audio samples."""

    data: np.ndarray
    header: container.Header
    sample_rate: int = 0


def _device(device) -> str:
    """``device`` as a string for the zoo; a clear error when CUDA is asked for and missing."""
    name = "cpu" if device is None else str(device)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UnsupportedInputError(f"device {name!r} was asked for, but CUDA is not available")
    return name


def _model_device(model: Codec) -> torch.device:
    return next(model.parameters()).device


def _codec(codec: str | Codec | None, modality: Modality, device=None) -> Codec:
    """The codec to encode ``modality`` with: an instance as given, or the bundled codec of a
    preset name or of the modality's default (on ``device``, default CPU)."""
    from . import zoo

    if isinstance(codec, Codec):
        preset = codec.preset
    else:
        preset = get_preset(codec or modality.default_preset)
    if preset.modality is not modality:
        raise UnsupportedInputError(f"codec {preset.name} is for {preset.modality}, "
                                    f"not {modality}")
    if isinstance(codec, Codec):
        return codec
    return zoo.load(preset.name, device=_device(device), frozen=True)


def _image_codec(codec: str | Codec | None, gray: bool, as_rgb: bool, device=None) -> Codec:
    """The codec for an image: a gray one goes to the gray counterpart of the RGB preset
    asked for (``rgb-16x`` -> ``gray-16x``), when its weights are bundled and ``as_rgb`` is
    off; a codec instance is used as given."""
    from . import zoo

    if gray and not as_rgb and not isinstance(codec, Codec):
        counterpart = GRAY_COUNTERPART.get(codec or IMAGE.default_preset)
        if counterpart is not None and counterpart in zoo.available():
            codec = counterpart
    return _codec(codec, IMAGE, device)


def _hash(codec: Codec) -> bytes:
    return bytes.fromhex(codec.weight_hash)[: container.WEIGHTS_HASH_LEN]


def _check_refine_lr(lr) -> None:
    """ValueError unless ``lr`` is None or a finite positive real number."""
    if lr is not None and not (isinstance(lr, numbers.Real) and not isinstance(lr, bool)
                               and math.isfinite(lr) and lr > 0):
        raise ValueError(f"refine_lr must be a positive number, got {lr!r}")


def _refined(model: Codec, x: torch.Tensor, z: torch.Tensor, steps: int,
             show: bool = False, lr: float | None = None) -> torch.Tensor:
    """``z[0]`` on the CPU, after ``steps`` of encoder-side refinement (none for 0) with step
    size ``lr`` (None: the preset's); ``show``: a progress bar on stderr."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"refine must be a whole number of steps >= 0, got {steps!r}")
    _check_refine_lr(lr)
    if steps:
        from .refine import refine

        z = refine(model, x, z, steps, show=show, lr=lr)
    return z[0].cpu()


def encode(data, codec: str | Codec | None = None, sample_rate: float | None = None,
           subtype: str = "", effort: int | None = None, *,
           value_range: tuple[float, float] | None = None, device=None,
           max_pixels: int | None = None, max_frames: int | None = None,
           as_rgb: bool = False, refine: int = 0, progress: bool = False,
           entropy_id: int | None = None, refine_lr: float | None = None) -> Encoded:
    """Like :func:`compress`, returning the bytes with their header (and rate figures).
    ``max_pixels`` / ``max_frames``: budgets (see :mod:`pywalloc.limits`). ``refine``:
    encoder-side refinement steps (see :mod:`pywalloc.refine`), ``refine_lr`` their step size
    (None: the preset's, :data:`pywalloc.refine.LEARNING_RATE`). ``progress``: progress bars
    on stderr for an encode of more than one tile and for the refinement. ``entropy_id``: the
    payload's entropy coder (None: the preset's, ``Preset.entropy``; 1 writes files as
    pywalloc did before id 2 existed)."""
    from .inputs import audio_samples, image_pixels, is_path, sample_rate_int

    if is_path(data) and sample_rate is None:
        return encode_file(data, codec, effort, device=device, max_pixels=max_pixels,
                           max_frames=max_frames, as_rgb=as_rgb, refine=refine,
                           progress=progress, entropy_id=entropy_id, refine_lr=refine_lr)
    if sample_rate is None:
        pixels = image_pixels(data, value_range)
        limits.check_encode_image(pixels.shape[0], pixels.shape[1], max_pixels)
        model = _image_codec(codec, pixels.ndim == 2, as_rgb, device)
        x, mode = IMAGE.to_tensor(pixels, model.preset.channels)
        x = x.to(_model_device(model))
        with torch.inference_mode(), _progress(progress, "encode"):
            z = model.encode_uint8(x)
        z = _refined(model, x, z, refine, progress, refine_lr)
        shape = padded = tuple(x.shape[2:])
        channels, gain, rate = (1 if mode == "L" else 3), 1.0, 0
    else:
        rate = sample_rate_int(sample_rate)
        samples = audio_samples(data)
        limits.check_encode_audio(samples.shape[0], rate, max_frames)
        model = _codec(codec, AUDIO, device)
        x, gain = AUDIO.to_tensor(samples, rate)
        x = x.to(_model_device(model))
        with torch.inference_mode(), _progress(progress, "encode"):
            z = model.encode(x)
        z = _refined(model, x, z, refine, progress, refine_lr)
        shape, channels, mode, padded = (samples.shape[0],), samples.shape[1], subtype, \
            tuple(x.shape[2:])
    return _encoded(model, z, shape, channels, mode, padded, rate, gain, effort, entropy_id)


def _encoded(model: Codec, z: torch.Tensor, shape: tuple[int, ...], channels: int, mode: str,
             padded: tuple[int, ...], rate: int, gain: float, effort: int | None,
             entropy_id: int | None = None) -> Encoded:
    """The header and entropy-coded payload of one item's int8 latents ``z`` ``[C, *grid]``."""
    m = model.preset.modality
    coder = entropy.coder(model.preset.entropy if entropy_id is None else entropy_id)
    header = container.Header(
        modality=m, preset=model.preset.name, weights_hash=_hash(model), shape=shape,
        channels=channels, latent_shape=tuple(z.shape),
        padding=m.padding(padded, model.preset.block), sample_rate=rate, mode=mode, gain=gain,
        entropy=coder.id)
    method = model.preset.effort if effort is None else effort
    return Encoded(container.write(header, coder.pack(z.numpy(), method=method)), header)


# Audio files from this many frames up are encoded from, and decoded to, the file in chunks
# (at any rate the resampler accepts; lossy files through a temporary float32 copy): memory
# stays near one chunk.
STREAM_FRAMES = 2**22
_STREAM_FORMATS = frozenset({"WAV", "WAVEX", "FLAC", "W64", "RF64", "AIFF", "CAF"})
_STREAM_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT",
                              "DOUBLE"})
_READ_BLOCK = 2**20  # frames per block of the streamed first pass
_SPOOL_MARGIN = 1 << 20  # bytes kept free beyond a spool's samples (its header, the file system)


def _streamable_audio(path: str | os.PathLike) -> str | None:
    """How :func:`_encode_audio_stream` can give the whole path's bits for a long file at a
    rate the whole path accepts (the resampler computes any range of its output alike):
    ``"seek"`` for a losslessly stored file, read where the tiles need it; ``"spool"`` for
    others (lossy formats, whose decoders may not seek exactly), decoded once, in order, into
    a temporary float32 file that is then read like the first kind; None for short files."""
    from .media import audio_info, resample_factors

    try:
        info = audio_info(path)
        resample_factors(info.sample_rate, CODEC_RATE)
    except (MediaError, UnsupportedInputError):
        return None
    if info.frames < STREAM_FRAMES or info.channels not in (1, 2):
        return None
    lossless = info.format in _STREAM_FORMATS and info.subtype in _STREAM_SUBTYPES
    return "seek" if lossless else "spool"


def _spool(path: str | os.PathLike, folder: str, announced: int) -> str:
    """Decode an audio file once, block by block and in order, into a float32 W64 file in
    ``folder``: the samples a whole read gives, now seekable.

    The caller checked the room for the ``announced`` frames (the header's count). A file that
    decodes to more is followed only while ``folder`` has room for the next block and while it
    stays within :data:`media.MAX_FRAMES`, so a lying header cannot fill the disk."""
    import shutil

    import soundfile as sf

    from .media import MAX_FRAMES

    name, out = os.fspath(path), os.path.join(folder, "spool.w64")
    try:
        with sf.SoundFile(name) as fh, sf.SoundFile(out, "w", fh.samplerate, fh.channels,
                                                    "FLOAT", format="W64") as dst:
            written = 0
            for block in fh.blocks(blocksize=_READ_BLOCK, dtype="float32", always_2d=True):
                if written + block.shape[0] > MAX_FRAMES:
                    raise UnsupportedInputError(
                        f"cannot read audio '{name}': it decodes to more than {MAX_FRAMES} "
                        "frames, the limit")
                if (written + block.shape[0] > announced
                        and shutil.disk_usage(folder).free < block.nbytes + _SPOOL_MARGIN):
                    raise MediaError(
                        f"cannot encode audio '{name}': it decodes to more than the {announced} "
                        f"frames its header announces, and {folder} has no room for more "
                        "(set TMPDIR to a folder with room)")
                dst.write(block)
                written += block.shape[0]
    except (sf.SoundFileError, OSError, RuntimeError) as exc:
        raise MediaError(f"cannot decode audio '{name}' into a temporary file in {folder} "
                         f"(is it full? TMPDIR chooses the folder): {exc}") from None
    return out


def _encode_audio_stream(path: str | os.PathLike, codec, effort, device,
                         max_frames: int | None, entropy_id: int | None = None,
                         kind: str = "seek") -> Encoded:
    """Encode a long audio file without holding it whole, as :func:`_streamable_audio` said
    (``kind``); the same bits as reading it whole."""
    if kind != "spool":
        return _encode_audio_seek(path, codec, effort, device, max_frames, entropy_id)
    import shutil
    import tempfile

    from .media import audio_info

    info = audio_info(path)
    subtype = info.subtype  # the source's, as the whole path records it
    where = tempfile.gettempdir()
    need = info.frames * info.channels * 4 + _SPOOL_MARGIN  # float32 samples, a header's room
    free = shutil.disk_usage(where).free
    if free < need:
        def size(n: int) -> str:
            return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"

        raise MediaError(f"cannot encode audio '{os.fspath(path)}': reading it in bounded "
                         f"memory decodes it into a temporary file of {size(need)}, and "
                         f"{where} has {size(free)} free (set TMPDIR to a folder with room)")
    with tempfile.TemporaryDirectory(prefix="pywalloc-") as folder:
        return _encode_audio_seek(_spool(path, folder, info.frames), codec, effort, device, max_frames,
                                  entropy_id, shown=os.fspath(path), subtype=subtype)


def _encode_audio_seek(path: str | os.PathLike, codec, effort, device,
                       max_frames: int | None, entropy_id: int | None = None, *,
                       shown: str | None = None, subtype: str | None = None) -> Encoded:
    """Encode a seekable audio file read in blocks: a first pass for the peak (the gain; at
    another rate than the codec's, the peak of the resampled signal, resampled as a stream
    in that pass), then the windows each latent chunk needs. ``shown``: the name for messages;
    ``subtype``: the source's sample format to record (default: this file's)."""
    import soundfile as sf

    from .media import MAX_FRAMES, audio_info
    from .resample import Resampler, StreamResampler

    info = audio_info(path)
    name = shown or os.fspath(path)
    rate = int(info.sample_rate)
    model = _codec(codec, AUDIO, device)
    try:
        with sf.SoundFile(os.fspath(path)) as fh:
            def stereo(d: np.ndarray) -> np.ndarray:
                return np.repeat(d, 2, axis=1) if d.shape[1] == 1 else d

            # At another rate the gain needs the peak of the resampled signal: resampled here,
            # in this same pass, as a stream over the frames the header announces.
            stream = (StreamResampler(CODEC_RATE, rate, info.frames) if rate != CODEC_RATE
                      else None)
            n, peak = 0, 0.0
            for block in fh.blocks(blocksize=_READ_BLOCK, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise UnsupportedInputError(f"cannot read audio '{name}': it contains NaN or "
                                                "infinite samples")
                n += block.shape[0]
                if stream is None:
                    peak = max(peak, float(np.abs(block).max()))
                elif n <= info.frames:
                    out = stream.push(stereo(block))
                    if out.size:
                        peak = max(peak, float(np.abs(out).max()))
            if n == 0:
                raise UnsupportedInputError(f"cannot read audio '{name}': it contains no samples")
            if n > MAX_FRAMES:
                raise UnsupportedInputError(f"cannot read audio '{name}': {n} frames is above "
                                            f"the limit of {MAX_FRAMES}")
            limits.check_encode_audio(n, rate, max_frames)

            def frames(a: int, b: int) -> np.ndarray:  # the file's frames [a, b), stereo
                fh.seek(a)
                d = fh.read(b - a, dtype="float32", always_2d=True)
                if d.shape[0] != b - a:
                    raise MediaError(f"cannot read audio '{name}': it ended after "
                                     f"{a + d.shape[0]} of {n} frames")
                return stereo(d)

            size, codec_frames = n, frames
            if rate != CODEC_RATE:  # read codec-rate frames as ranges of the resampled signal
                resampler = Resampler(CODEC_RATE, rate, n)
                size = resampler.out_frames
                if n != info.frames or not stream.done:  # the header miscounted: once more
                    peak = 0.0
                    for k in range(resampler.chunks):
                        peak = max(peak, float(np.abs(resampler.chunk(k, frames)).max()))

                # The tiles' windows overlap and share chunks: each chunk is computed once.
                codec_frames = resampler.ranges(frames)

            gain = _modality.peak_gain(peak)
            where = _model_device(model)

            def read(a: int, b: int) -> torch.Tensor:
                d = codec_frames(a, b)
                return torch.from_numpy(np.ascontiguousarray(d.T)).unsqueeze(0).mul_(gain) \
                    .to(where)

            with torch.inference_mode():
                z = model._encode_tiled(None, model.analysis.weight, model.analysis.bias, None,
                                        size=(size,), read=read)[0].cpu()
    except (sf.SoundFileError, OSError) as exc:
        raise MediaError(f"cannot read audio '{name}': {exc}") from None
    return _encoded(model, z, (n,), info.channels, subtype or info.subtype, (size,), rate, gain,
                    effort, entropy_id)


def compress_image(pixels, codec: str | Codec | None = None,
                   effort: int | None = None, device=None, *,
                   value_range: tuple[float, float] | None = None,
                   as_rgb: bool = False, refine: int = 0) -> bytes:
    """An image → ``.wlc`` bytes: ``H x W x 3`` (or gray ``H x W``) uint8 pixels, or any form
    :func:`compress` takes. ``effort`` is the lossless WebP method (0-6, None: the codec's
    default ``Preset.effort``): higher is slower and
    a few percent smaller, same pixels. ``as_rgb``, ``refine``: see :func:`compress`."""
    return encode(pixels, codec, effort=effort, value_range=value_range, device=device,
                  as_rgb=as_rgb, refine=refine).blob


def compress_audio(samples, sample_rate: float, codec: str | Codec | None = None,
                   subtype: str = "", effort: int | None = None, device=None, *,
                   refine: int = 0) -> bytes:
    """Audio at ``sample_rate`` (a whole number of Hz, int or float) → ``.wlc`` bytes: numpy
    ``[frames, channels]`` or torch ``[channels, frames]``, 1 or 2 channels; float, or int16 /
    int32 / int8 / uint8 PCM scaled as soundfile and torchaudio scale it."""
    if sample_rate is None:
        raise UnsupportedInputError("invalid sample rate None")
    return encode(samples, codec, sample_rate, subtype, effort, device=device,
                  refine=refine).blob


def compress(data, codec: str | Codec | None = None, sample_rate: float | None = None,
             effort: int | None = None, *,
             value_range: tuple[float, float] | None = None, device=None,
             max_pixels: int | None = None, max_frames: int | None = None,
             as_rgb: bool = False, refine: int = 0) -> bytes:
    """Compress an image, or with ``sample_rate`` audio, into ``.wlc`` bytes.

    Images: numpy ``H x W x 3`` / ``H x W`` (uint8 or uint16), a PIL image, or a torch tensor
    ``C x H x W`` / ``1 x C x H x W``; float pixels need ``value_range`` (``(0, 1)`` for
    torchvision's ``ToTensor``). Audio: numpy ``[frames, channels]`` or torch
    ``[channels, frames]``, float or integer PCM. A path (``str`` or ``Path``) is read as a
    file of either kind. ``effort``: lossless WebP method 0-6 (None: the codec's default,
    ``Preset.effort``). ``device``: where the bundled
    codec runs (``"cpu"`` by default, ``"cuda"`` when asked and available). ``max_pixels`` /
    ``max_frames``: budgets (see :mod:`pywalloc.limits`).

    Gray images (``H x W``, mode ``L``) asked to go through an RGB codec (``rgb-16x``, the
    default, or ``rgb-4x``) are coded as one channel by its gray counterpart (``gray-16x``,
    ``gray-4x``) when its weights are bundled; ``as_rgb=True`` keeps the RGB codec (gray
    replicated to three channels). Either way they decode as gray. A codec instance is
    used as given.

    ``refine``: steps of encoder-side refinement (:mod:`pywalloc.refine`; 0, the default, is
    the plain linear encoder). 15 steps give rgb-16x +0.7 dB for 3.8 % more bytes on
    Kodak (docs/results.md), at about 0.7 s per step for a Kodak picture on one core; 10 steps give
    stereo-20x +0.8 dB; rgb-4x +0.2 dB on four pictures; stereo-5x nothing. The file decodes
    as usual."""
    return encode(data, codec, sample_rate, effort=effort, value_range=value_range,
                  device=device, max_pixels=max_pixels, max_frames=max_frames,
                  as_rgb=as_rgb, refine=refine).blob


def _check_codec(header: container.Header, codec: str | Codec | None, device=None) -> Codec:
    """The codec that decodes this header: the one given, or the bundled weights whose hash
    the header names (current or legacy)."""
    from . import zoo
    from .errors import UnknownPresetError, WeightsNotFoundError

    if isinstance(codec, Codec):
        model = codec
        if model.preset.name != header.preset:
            raise WeightsMismatchError(
                f"file was made by codec {header.preset}, not {model.preset.name}")
        if _hash(model) != header.weights_hash:
            raise WeightsMismatchError(
                f"file was made by other {header.preset} weights (hash "
                f"{header.weights_hash.hex()}, these are {_hash(model).hex()})")
    else:
        if codec is not None and codec != header.preset:
            raise WeightsMismatchError(f"file was made by codec {header.preset}, not {codec}")
        try:
            model = zoo.find(header.preset, header.weights_hash, device=_device(device))
        except UnknownPresetError:
            raise FormatError(f"file names an unknown codec '{header.preset}'") from None
        except WeightsNotFoundError as exc:
            if exc.retired:
                raise WeightsMismatchError(
                    f"file was made by {header.preset} weights {exc.retired}") from None
            raise WeightsMismatchError(
                f"file was made by other {header.preset} weights (hash "
                f"{header.weights_hash.hex()}, none bundled with this pywalloc has it); decode "
                "it with the pywalloc version that made it") from None
    if model.preset.modality is not _modality.get(header.modality):
        raise FormatError(f"codec {header.preset} does not decode {header.modality}")
    return model


def _crop(header: container.Header, size: tuple[int, ...], block: int) -> tuple[slice, ...]:
    """Where the signal lies in the decoded (padded) block grid: the header's padding, checked
    against the latent grid."""
    pad = header.padding
    crop = []
    for i, n in enumerate(size):
        before, after = pad[2 * i], pad[2 * i + 1]
        if before + n + after != header.latent_shape[1 + i] * block:
            raise FormatError(f"padding {tuple(pad)} does not fit geometry {header.shape} and "
                              f"latent shape {header.latent_shape}")
        crop.append(slice(before, before + n))
    return tuple(crop)


def _pixel_bands(model: Codec, z: torch.Tensor, crop: tuple[slice, ...],
                 header: container.Header):
    """uint8 pixels decoded tile by tile, yielded as (first row, band of rows) from top to
    bottom: one row of tiles at a time, never a float copy of the whole picture (the same
    bits as :meth:`Codec.decode`, which tiles too)."""
    w = crop[1].stop - crop[1].start
    band, top = None, 0
    for where, x in model.decode_tiles(z):  # int8: converted a tile at a time
        lo = [max(t.start, c.start) for t, c in zip(where, crop)]
        hi = [min(t.stop, c.stop) for t, c in zip(where, crop)]
        if hi[0] <= lo[0] or hi[1] <= lo[1]:
            continue
        part = x[0, :, lo[0] - where[0].start:hi[0] - where[0].start,
                 lo[1] - where[1].start:hi[1] - where[1].start].clamp(model.lo, model.hi)
        if not bool(torch.isfinite(part).all()):
            raise FormatError("the decoded output is not finite (corrupt header or weights)")
        pixels = IMAGE.from_tensor(part.cpu(), header.mode)
        if band is None or lo[0] - crop[0].start != top:
            if band is not None:
                yield top, band
            top = lo[0] - crop[0].start
            band = np.empty((hi[0] - lo[0], w, *pixels.shape[2:]), np.uint8)
        band[:, lo[1] - crop[1].start:hi[1] - crop[1].start] = pixels
    if band is not None:
        yield top, band


def _decode_pixels(model: Codec, z: torch.Tensor, crop: tuple[slice, ...],
                   header: container.Header) -> np.ndarray:
    """uint8 pixels of the whole picture, from :func:`_pixel_bands`."""
    h, w = (c.stop - c.start for c in crop)
    out = np.empty((h, w) if header.mode == "L" else (h, w, 3), np.uint8)
    for top, band in _pixel_bands(model, z, crop, header):
        out[top:top + band.shape[0]] = band
    return out


def decode_blob(blob: bytes, codec: str | Codec | None = None, device=None, *,
                max_pixels: int | None = None, max_frames: int | None = None) -> Decoded:
    """Parse and decode ``.wlc`` bytes, keeping the header. The header's entropy id picks the
    entropy coder, its padding says where the signal lies in the decoded block grid. The
    budget (``max_pixels`` / ``max_frames``, see :func:`limits.check_decode`) is checked on
    the header before any work; non-finite output is refused."""
    return _decoded(*_prepare(blob, codec, device, max_pixels, max_frames))


def _prepare(blob: bytes, codec, device, max_pixels: int | None, max_frames: int | None
             ) -> tuple[container.Header, Codec, tuple[slice, ...], torch.Tensor]:
    """Header, codec, signal crop and int8 latents ``[1, C, *grid]`` of ``.wlc`` bytes, every
    check done (budget first, on the header alone)."""
    header, payload = container.read(blob)
    limits.check_decode(header, len(blob), max_pixels, max_frames)
    model = _check_codec(header, codec, device)
    m = model.preset.modality
    size = m.codec_shape(header)
    if tuple(header.latent_shape) != (model.preset.latent_channels, *model.latent_size(size)):
        raise FormatError(f"latent shape {header.latent_shape} does not fit geometry {header.shape}")
    crop = _crop(header, size, model.preset.block)
    latents = entropy.coder(header.entropy).unpack(payload, header.latent_shape)
    z = torch.from_numpy(latents).unsqueeze(0).to(_model_device(model))
    return header, model, crop, z


def _decoded(header: container.Header, model: Codec, crop: tuple[slice, ...],
             z: torch.Tensor) -> Decoded:
    m = model.preset.modality
    with torch.inference_mode():
        if m is IMAGE and model.position_local:
            return Decoded(_decode_pixels(model, z, crop, header), header, header.sample_rate)
        x = model.decode(z)[0][(..., *crop)].cpu()
        if header.modality is AUDIO:
            x = x / header.gain  # what decoded() will do: its result must be finite
        if not bool(torch.isfinite(x).all()):
            raise FormatError("the decoded output is not finite (corrupt header or weights)")
        if header.modality is AUDIO:
            x = x * header.gain
        return Decoded(m.decoded(x, header), header, header.sample_rate)


def decompress(blob: bytes, codec: str | Codec | None = None, *, device=None,
               max_pixels: int | None = None, max_frames: int | None = None,
               progress: bool = False):
    """``.wlc`` bytes → image pixels (uint8), or ``(samples [frames, channels], sample_rate)``.
    ``device``: where the bundled codec runs (``"cpu"`` by default). ``max_pixels`` /
    ``max_frames``: decode budget (see :func:`limits.check_decode`). ``progress``: a progress
    bar on stderr when the decode takes more than one tile (:func:`tiling.decode_progress`)."""
    with _progress(progress):
        out = decode_blob(blob, codec, device, max_pixels=max_pixels, max_frames=max_frames)
    return (out.data, out.sample_rate) if out.header.modality is AUDIO else out.data


# -- files ------------------------------------------------------------------------------------
def encode_file(path: str | os.PathLike, codec: str | Codec | None = None,
                effort: int | None = None, device=None, *,
                max_pixels: int | None = None, max_frames: int | None = None,
                as_rgb: bool = False, refine: int = 0, progress: bool = False,
                entropy_id: int | None = None, refine_lr: float | None = None) -> Encoded:
    """Read an image or audio file (modality by content/suffix) and compress it; the budget
    is checked on the file's header, before its samples are read. ``refine``, ``progress``,
    ``entropy_id``, ``refine_lr``: see :func:`encode`."""
    from .media import detect_modality

    _check_refine_lr(refine_lr)  # the streamed path below never refines, but a bad value is bad
    modality = detect_modality(path)
    if codec is not None:  # fail before decoding the input
        preset = codec.preset if isinstance(codec, Codec) else get_preset(codec)
        if preset.modality is not modality:
            raise UnsupportedInputError(f"'{os.fspath(path)}' holds {modality}; codec "
                                        f"{preset.name} is for {preset.modality}")
    limits.check_file(path, modality, max_pixels, max_frames)
    kind = _streamable_audio(path) if modality is AUDIO and not refine else None
    if kind:  # refine reads it whole
        with _progress(progress, "encode"):
            return _encode_audio_stream(path, codec, effort, device, max_frames, entropy_id,
                                        kind)
    data, extra = modality.read(path)
    if modality is IMAGE:
        extra = {**extra, "as_rgb": as_rgb}
    return encode(data, codec, effort=effort, device=device, max_pixels=max_pixels,
                  max_frames=max_frames, refine=refine, progress=progress,
                  entropy_id=entropy_id, refine_lr=refine_lr, **extra)


def compress_file(path: str | os.PathLike, codec: str | Codec | None = None,
                  effort: int | None = None, device=None, *,
                  max_pixels: int | None = None, max_frames: int | None = None,
                  as_rgb: bool = False, refine: int = 0) -> bytes:
    """Read an image or audio file (modality by content/suffix) and compress it
    (``as_rgb``, ``refine``: see :func:`compress`)."""
    return encode_file(path, codec, effort, device, max_pixels=max_pixels,
                       max_frames=max_frames, as_rgb=as_rgb, refine=refine).blob


def decompress_file(blob: bytes, out_path: str | os.PathLike, device=None, *,
                    codec: str | Codec | None = None, max_pixels: int | None = None,
                    max_frames: int | None = None, progress: bool = False) -> Decoded:
    """Decode ``.wlc`` bytes and write the image (format by suffix) or WAV/FLAC audio
    (``progress``: see :func:`decompress`).

    Long audio at 44.1 kHz (from :data:`STREAM_FRAMES` frames) and large pictures written as
    PNG (from ``media.STREAM_PIXELS`` pixels) from a position-local codec are decoded straight
    into the file, a chunk or a row of tiles at a time (the same samples and pixels); the
    returned ``data`` is then empty: read the file for them."""
    with _progress(progress):
        return _decompress_file(blob, out_path, device, codec, max_pixels, max_frames)


def _progress(enabled: bool, label: str = "decode"):
    """:func:`tiling.coding_progress` when ``enabled``, else a block that does nothing."""
    import contextlib

    from .tiling import coding_progress

    return coding_progress(label) if enabled else contextlib.nullcontext()


def _decompress_file(blob: bytes, out_path: str | os.PathLike, device, codec,
                     max_pixels: int | None, max_frames: int | None) -> Decoded:
    from . import media

    declared = container.peek_modality(bytes(blob[:12]))
    if declared is not None:  # a wrong suffix fails before the decode, not after it
        media.check_output(out_path, declared)
    header, model, crop, z = _prepare(blob, codec, device, max_pixels, max_frames)
    if (header.modality is AUDIO and model.position_local
            and header.shape[0] >= STREAM_FRAMES):
        _write_audio_stream(out_path, model, z, crop, header)
        return Decoded(np.empty((0, header.channels), np.float32), header, header.sample_rate)
    if (header.modality is IMAGE and model.position_local
            and os.path.splitext(os.fspath(out_path))[1].lower() == ".png"
            and header.shape[0] * header.shape[1] >= media.STREAM_PIXELS):
        _write_png_stream(out_path, model, z, crop, header)
        return Decoded(np.empty((0, 0) if header.mode == "L" else (0, 0, 3), np.uint8), header)
    out = _decoded(header, model, crop, z)
    _modality.get(out.header.modality).write(out_path, out.data, out.header)
    return out


def _write_png_stream(path: str | os.PathLike, model: Codec, z: torch.Tensor,
                      crop: tuple[slice, ...], header: container.Header) -> None:
    """Decode a picture a row of tiles at a time into a PNG (atomically), converting each band
    as ``write_image`` converts the whole picture: the same pixels, never the whole picture
    in memory."""
    from .media import atomic_write
    from .pngstrips import write_png

    h, w = header.shape
    gray = header.mode == "L"

    def strips():
        for _, band in _pixel_bands(model, z, crop, header):
            if gray and band.ndim == 3:
                band = ((band.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
            elif not gray and band.ndim == 2:
                band = np.repeat(band[:, :, None], 3, axis=2)
            yield band

    with torch.inference_mode():
        atomic_write(path, lambda fh: write_png(fh, h, w, gray, strips()), "image")


def _write_audio_stream(path: str | os.PathLike, model: Codec, z: torch.Tensor,
                        crop: tuple[slice, ...], header: container.Header) -> None:
    """Decode audio chunk by chunk into the file (atomically), with the arithmetic of the
    whole path (:func:`_decoded`, ``Audio.from_tensor``, ``Audio.write``) applied per chunk:
    the same samples, without the whole signal in memory."""
    import soundfile as sf

    from .media import AUDIO_SUFFIXES, atomic_write

    fmt = AUDIO_SUFFIXES.get(os.path.splitext(os.fspath(path))[1].lower())
    if fmt is None:  # write_audio's own error for an unsupported suffix
        AUDIO.write(path, np.zeros((1, header.channels), np.float32), header)
    subtype = header.mode if header.mode in ("PCM_16", "PCM_24", "FLOAT") else "PCM_16"
    if fmt == "FLAC" and subtype == "FLOAT":
        subtype = "PCM_24"
    gain, (keep,) = header.gain, crop
    frames = header.shape[0]
    stream = None
    if header.sample_rate != CODEC_RATE:  # resampled back chunk by chunk, as from_tensor does
        from .resample import StreamResampler

        stream = StreamResampler(header.sample_rate, CODEC_RATE, keep.stop - keep.start)

    def save(fh) -> None:
        written = 0
        with sf.SoundFile(fh, "w", header.sample_rate, header.channels, subtype,
                          format=fmt) as out, torch.inference_mode():

            def emit(audio: np.ndarray) -> None:
                nonlocal written
                audio = audio[:frames - written]
                written += audio.shape[0]
                if header.channels == 1:
                    audio = audio.mean(axis=1, keepdims=True)
                if subtype.startswith("PCM"):
                    audio = np.clip(audio, -1.0, 1.0)
                out.write(np.ascontiguousarray(audio, dtype=np.float32))

            for (where,), x in model.decode_tiles(z):
                lo, hi = max(where.start, keep.start), min(where.stop, keep.stop)
                if hi <= lo:
                    continue
                part = x[0, :, lo - where.start:hi - where.start].clamp(model.lo, model.hi)
                part = part / gain
                if not bool(torch.isfinite(part).all()):
                    raise FormatError("the decoded output is not finite (corrupt header or "
                                      "weights)")
                audio = ((part * gain) / gain).T.contiguous().numpy()
                emit(audio if stream is None else stream.push(audio))
            if stream is not None and not stream.done:  # every tile was pushed: cannot be
                raise RuntimeError("the resampling stream did not finish")  # (a bug if so)
            if written < frames:  # from_tensor pads a short resampled signal with zeros
                emit(np.zeros((frames - written, 2), np.float32))

    atomic_write(path, save, "audio")
