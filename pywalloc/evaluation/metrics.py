"""Signal-level quality metrics for images (PSNR, MS-SSIM) and stereo audio (PSNR, SI-SDR,
SSDR/SRDR), plus the dB forms in which the WaLLoC paper reports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import MetricInputError, MissingEvalDependencyError

__all__ = [
    "MS_SSIM_FULL_MIN_SIDE",
    "MS_SSIM_WEIGHTS",
    "SPATIAL_DB_CEILING",
    "MSSSIMScorer",
    "SpatialScores",
    "audio_psnr",
    "distance_db",
    "ms_ssim",
    "ms_ssim_db",
    "mse_psnr",
    "psnr",
    "psnr_rgb8",
    "si_sdr",
    "spatial_distortion",
]

# Standard five-scale weights of Wang, Simoncelli & Bovik (2003), as pytorch-msssim uses them.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WIN_SIZE = 11
_WIN_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03
# pytorch-msssim needs the smaller side strictly above (win-1) * 2**4 for five scales.
MS_SSIM_FULL_MIN_SIDE = (_WIN_SIZE - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1

# A frame whose decomposition error is exactly zero gets this many dB instead of +inf, so
# that one perfect frame does not make the clip average infinite.
SPATIAL_DB_CEILING = 80.0


def _check_pair(reference: np.ndarray, distorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference)
    dist = np.asarray(distorted)
    if ref.shape != dist.shape:
        raise MetricInputError(f"shape mismatch: reference {ref.shape} vs distorted {dist.shape}")
    if ref.size == 0:
        raise MetricInputError("empty input")
    return ref, dist


def psnr(reference: np.ndarray, distorted: np.ndarray, peak: float) -> float:
    """PSNR in dB, ``10*log10(peak**2 / MSE)`` with the MSE over every element (all pixels and
    channels, or all samples of all channels), in float64; ``inf`` if identical. pywalloc's one
    definition: 8-bit images use peak 255, audio and codec-range tensors peak 1."""
    ref, dist = _check_pair(reference, distorted)
    mse = float(np.mean((ref.astype(np.float64) - dist.astype(np.float64)) ** 2))
    return mse_psnr(mse, peak)


def mse_psnr(mse: float, peak: float) -> float:
    """:func:`psnr` from an MSE already computed (e.g. a training loss): ``10*log10(peak**2 /
    mse)``, ``inf`` for 0."""
    if peak <= 0:
        raise MetricInputError(f"peak must be positive, got {peak}")
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _check_rgb8(reference: np.ndarray, distorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, dist = _check_pair(reference, distorted)
    if ref.dtype != np.uint8 or dist.dtype != np.uint8:
        raise MetricInputError(f"expected uint8 images, got {ref.dtype} and {dist.dtype}")
    if ref.ndim != 3 or ref.shape[2] != 3:
        raise MetricInputError(f"expected HxWx3 images, got shape {ref.shape}")
    return ref, dist


def psnr_rgb8(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR of two 8-bit RGB images (HxWx3 uint8), peak 255, MSE over all pixels and channels."""
    ref, dist = _check_rgb8(reference, distorted)
    return psnr(ref, dist, peak=255.0)


def _to_nchw(img: np.ndarray) -> torch.Tensor:
    return torch.tensor(img, dtype=torch.float32).permute(2, 0, 1)[None]


def _gauss_window() -> torch.Tensor:
    x = torch.arange(_WIN_SIZE, dtype=torch.float64) - _WIN_SIZE // 2
    g = torch.exp(-(x**2) / (2 * _WIN_SIGMA**2))
    return (g / g.sum()).float()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Separable Gaussian, 'valid' borders, one filter per channel.
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _halve(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=2, padding=[s % 2 for s in x.shape[2:]])


def _levels_for(min_side: int) -> int:
    levels = 1
    while levels < len(MS_SSIM_WEIGHTS) and min_side > (_WIN_SIZE - 1) * 2**levels:
        levels += 1
    return levels


class MSSSIMScorer:
    """MS-SSIM of many distorted versions of one reference (HxWx3 uint8, data range 255).

    The reference pyramid and its local means and variances are computed once; each
    :meth:`score` then blurs only the distorted terms. Per scale this is pytorch-msssim's
    definition (valid 11-tap Gaussian, sigma 1.5, K = 0.01/0.03, ReLU on the contrast terms,
    2x2 average pooling padded on odd sizes, per-channel values averaged), computed in float32.
    ``levels`` defaults to five, or as many as the image size allows (see :func:`ms_ssim`),
    with the first ``levels`` standard weights renormalised to sum to 1.
    """

    def __init__(self, reference: np.ndarray, levels: int | None = None) -> None:
        ref, _ = _check_rgb8(reference, reference)
        min_side = min(ref.shape[:2])
        if min_side < _WIN_SIZE:
            raise MetricInputError(f"image {ref.shape[:2]} is under the {_WIN_SIZE}px window")
        self.levels = levels or _levels_for(min_side)
        self.shape = ref.shape
        weights = torch.tensor(MS_SSIM_WEIGHTS[: self.levels], dtype=torch.float64)
        self._weights = weights / weights.sum()
        self._g = _gauss_window()
        self._ref = []
        x = _to_nchw(ref)
        for level in range(self.levels):
            mu, ex2 = _blur(torch.cat([x, x * x], 1), self._g).split(3, dim=1)
            self._ref.append((x, mu, ex2 - mu**2))
            if level < self.levels - 1:
                x = _halve(x)

    def score(self, distorted: np.ndarray) -> float:
        """MS-SSIM of ``distorted`` against the reference."""
        _check_rgb8(np.empty(self.shape, np.uint8), distorted)
        c1 = (_K1 * 255.0) ** 2
        c2 = (_K2 * 255.0) ** 2
        y = _to_nchw(distorted)
        terms = []
        for level, (x, mu_x, sxx) in enumerate(self._ref):
            mu_y, ey2, exy = _blur(torch.cat([y, y * y, x * y], 1), self._g).split(3, dim=1)
            syy = ey2 - mu_y**2
            sxy = exy - mu_x * mu_y
            cs_map = (2 * sxy + c2) / (sxx + syy + c2)
            if level < self.levels - 1:
                terms.append(torch.relu(cs_map.mean(dim=(2, 3))))
                y = _halve(y)
            else:
                lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
                terms.append(torch.relu((lum * cs_map).mean(dim=(2, 3))))
        stacked = torch.stack(terms, dim=0).double()  # (levels, N, C)
        return float(torch.prod(stacked ** self._weights.view(-1, 1, 1), dim=0).mean())


def ms_ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """MS-SSIM of two 8-bit RGB images (data range 255), per-channel values averaged.

    Images whose smaller side is at least ``MS_SSIM_FULL_MIN_SIDE`` (161 px) use
    pytorch-msssim's standard five-scale MS-SSIM. Smaller images cannot be downsampled four
    times and still fit the 11-tap window, so they use as many scales as fit (the largest L with
    ``min_side > 10 * 2**(L-1)``) and the first L standard weights renormalised to sum to 1;
    at L = 1 this is plain SSIM. Images under 11 px on a side raise :class:`MetricInputError`.
    """
    ref, dist = _check_rgb8(reference, distorted)
    min_side = min(ref.shape[:2])
    if min_side < MS_SSIM_FULL_MIN_SIDE:
        return MSSSIMScorer(ref).score(dist)
    try:
        from pytorch_msssim import ms_ssim as _pt_ms_ssim
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingEvalDependencyError("pytorch-msssim") from exc
    return float(_pt_ms_ssim(_to_nchw(ref), _to_nchw(dist), data_range=255.0, size_average=True))


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in dB as the WaLLoC paper reports it: ``-10*log10(1 - msssim)``."""
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)


def distance_db(value: float) -> float:
    """A distance where lower is better (LPIPS, DISTS) in dB: ``-10*log10(d)``."""
    if value <= 0.0:
        return math.inf
    return -10.0 * math.log10(value)


def _check_audio(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, est = _check_pair(reference, estimate)
    if ref.ndim == 1:
        ref, est = ref[:, None], est[:, None]
    if ref.ndim != 2:
        raise MetricInputError(f"expected audio shaped [frames, channels], got {ref.shape}")
    return ref.astype(np.float64), est.astype(np.float64)


def audio_psnr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Audio PSNR in dB with peak 1 (float audio in [-1, 1]), MSE over the whole clip."""
    ref, est = _check_audio(reference, estimate)
    return psnr(ref, est, peak=1.0)


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR (Le Roux et al., 2019) in dB: pywalloc's one definition.

    **Per channel, zero-mean, averaged over channels.** Each channel of reference ``s`` and
    estimate ``s_hat`` has its mean removed; the estimate is projected on the reference,
    ``target = a*s`` with ``a = <s_hat, s>/||s||^2``, and the channel's SI-SDR is
    ``10*log10(||target||^2 / ||s_hat - target||^2)``; the result is the mean over channels
    (not one value over the flattened clip). Silent reference channels are skipped; ``nan`` if
    every channel is silent.
    """
    ref, est = _check_audio(reference, estimate)
    ref = ref - ref.mean(axis=0, keepdims=True)
    est = est - est.mean(axis=0, keepdims=True)
    values = []
    for c in range(ref.shape[1]):
        s, s_hat = ref[:, c], est[:, c]
        energy = float(s @ s)
        if energy == 0.0:
            continue
        target = (float(s_hat @ s) / energy) * s
        noise = s_hat - target
        noise_energy = float(noise @ noise)
        target_energy = float(target @ target)
        if noise_energy == 0.0:
            values.append(math.inf)
        elif target_energy == 0.0:
            values.append(-math.inf)
        else:
            values.append(10.0 * math.log10(target_energy / noise_energy))
    return float(np.mean(values)) if values else math.nan


@dataclass(frozen=True)
class SpatialScores:
    """Clip-level spatial metrics (dB), each the mean over analysis frames."""

    ssdr: float
    srdr: float
    frames: int


def _xcorr_lags(est: np.ndarray, ref: np.ndarray, max_shift: int) -> np.ndarray:
    """lag[c, d] maximising |sum_n est_c[n] * ref_d[n - lag]| over |lag| <= max_shift."""
    n = est.shape[1]
    nfft = 1 << math.ceil(math.log2(2 * n))
    fe = np.fft.rfft(est, nfft)
    fr = np.fft.rfft(ref, nfft)
    # corr[c, d, k] = sum_n est_c[n] ref_d[n - k]  (index k mod nfft)
    corr = np.fft.irfft(fe[:, None, :] * np.conj(fr[None, :, :]), nfft)
    # Search lags in order of increasing |lag| so that ties (and uncorrelated or silent
    # channel pairs) resolve to the smallest delay rather than to -max_shift.
    lags = np.array([0] + [sign * k for k in range(1, max_shift + 1) for sign in (1, -1)])
    window = np.abs(corr[:, :, lags % nfft])
    best = lags[np.argmax(window, axis=-1)]
    scale = np.sqrt(np.sum(est**2, axis=1)[:, None] * np.sum(ref**2, axis=1)[None, :])
    weak = window.max(axis=-1) <= 1e-9 * np.maximum(scale, 1e-300)
    best[weak] = 0
    return best


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    """y[n] = x[n - lag] with zeros where that index falls outside the frame."""
    y = np.zeros_like(x)
    if lag >= 0:
        y[lag:] = x[: len(x) - lag]
    else:
        y[:lag] = x[-lag:]
    return y


def _ratio_db(num: float, den: float) -> float:
    if den == 0.0:
        return SPATIAL_DB_CEILING if num > 0 else math.nan
    if num == 0.0:
        return -SPATIAL_DB_CEILING
    return min(10.0 * math.log10(num / den), SPATIAL_DB_CEILING)


def _spatial_frame(ref: np.ndarray, est: np.ndarray, max_shift: int) -> tuple[float, float]:
    """SSDR and SRDR of one frame; ``ref``/``est`` are [channels, samples]."""
    chans, n = ref.shape
    lags = _xcorr_lags(est, ref, max_shift)
    # Keep only samples where every delayed reference copy is defined.
    start = max(0, int(lags.max()))
    stop = n + min(0, int(lags.min()))
    if stop - start < 2:
        return math.nan, math.nan
    s = ref[:, start:stop]
    s_hat = est[:, start:stop]
    s_tilde = np.empty_like(s_hat)
    for c in range(chans):
        # Delayed reference channels feeding output channel c, then least-squares gains A[c, :].
        basis = np.stack([_shift(ref[d], int(lags[c, d]))[start:stop] for d in range(chans)])
        gains, *_ = np.linalg.lstsq(basis.T, s_hat[c], rcond=None)
        s_tilde[c] = gains @ basis
    e_spat = s_tilde - s
    e_resid = s_hat - s_tilde
    if float(np.sum(s * s)) == 0.0:
        return math.nan, math.nan
    ssdr = _ratio_db(float(np.sum(s * s)), float(np.sum(e_spat * e_spat)))
    srdr = _ratio_db(float(np.sum(s_tilde * s_tilde)), float(np.sum(e_resid * e_resid)))
    return ssdr, srdr


def spatial_distortion(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    window_s: float = 2.0,
    hop_s: float = 1.0,
    max_shift_s: float = 0.05,
) -> SpatialScores:
    """Signal-to-spatial-distortion (SSDR) and signal-to-residual-distortion (SRDR) ratios.

    From Watcharasupat & Lerch, "Quantifying spatial audio quality impairment" (ICASSP 2024).
    Each estimate channel is modelled as delayed, scaled reference channels plus a residual,
    ``s_hat_c[n] = sum_d A_cd s_d[n - tau_cd] + e_resid_c[n] =: s_tilde_c[n] + e_resid_c[n]``.
    Delays ``tau_cd`` maximise |cross-correlation| of ``s_hat_c`` and ``s_d`` within
    ``max_shift_s``; gains ``A`` are then least squares; ``e_spat = s_tilde - s``.
    SSDR = ``10 log10(||s||^2/||e_spat||^2)``, SRDR = ``10 log10(||s_tilde||^2/||e_resid||^2)``,
    computed on ``window_s`` frames every ``hop_s`` (the paper's 2 s, 50 % overlap), over the
    part of each frame where all delayed copies are defined, and averaged over frames with a
    non-silent reference. Clips shorter than one window are one frame. Per-frame values are
    capped at ``SPATIAL_DB_CEILING``.
    """
    ref, est = _check_audio(reference, estimate)
    if sample_rate <= 0 or window_s <= 0 or hop_s <= 0 or max_shift_s < 0:
        raise MetricInputError("sample_rate, window_s and hop_s must be positive")
    total = ref.shape[0]
    win = max(2, round(window_s * sample_rate))
    hop = max(1, round(hop_s * sample_rate))
    max_shift = round(max_shift_s * sample_rate)
    starts = [0] if total <= win else list(range(0, total - win + 1, hop))
    if total > win and starts[-1] + win < total:
        starts.append(total - win)  # cover the tail with one last full-length frame
    ssdrs, srdrs = [], []
    for a in starts:
        seg_r = ref[a : a + win].T
        seg_e = est[a : a + win].T
        shift = min(max_shift, seg_r.shape[1] // 4)
        ssdr, srdr = _spatial_frame(seg_r, seg_e, shift)
        if not math.isnan(ssdr):
            ssdrs.append(ssdr)
            srdrs.append(srdr)
    if not ssdrs:
        return SpatialScores(math.nan, math.nan, 0)
    return SpatialScores(float(np.mean(ssdrs)), float(np.mean(srdrs)), len(ssdrs))
