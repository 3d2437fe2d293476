"""Evaluation harness for pywalloc codecs: quality metrics, classical baselines, reports.

Heavy optional dependencies (pytorch-msssim, matplotlib, the LPIPS/DISTS weight packages)
are imported lazily by the submodules that need them, so importing this package is cheap.
"""

from __future__ import annotations

from ..errors import WallocError


class EvaluationError(WallocError):
    """Base class for errors raised by :mod:`pywalloc.evaluation`."""


class MetricInputError(EvaluationError, ValueError):
    """Inputs to a metric have mismatched shapes, wrong dtypes or are too small."""


class MissingEvalDependencyError(EvaluationError, ImportError):
    """An optional evaluation dependency (the ``eval`` extra) is not installed."""

    def __init__(self, what: str, install: str = 'pip install "pywalloc[eval]"') -> None:
        super().__init__(f"{what} is not installed; install it with: {install}")


class UnsafeWeightsError(EvaluationError):
    """A weight file contains something other than plain arrays and dicts."""


class BaselineCodecError(EvaluationError):
    """A classical baseline codec is unavailable or failed to encode/decode."""


__all__ = [
    "BaselineCodecError",
    "EvaluationError",
    "MetricInputError",
    "MissingEvalDependencyError",
    "UnsafeWeightsError",
]
