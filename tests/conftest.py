"""Fixtures shared by the test modules."""

import atexit
import os
import shutil
import tempfile

import pytest
import torch

# Unpacked copies of xz weights (zoo.cache_dir) go to a folder of the test run's own, which
# subprocesses inherit, not into the user's cache.
if not os.environ.get("PYWALLOC_CACHE_DIR"):
    os.environ["PYWALLOC_CACHE_DIR"] = tempfile.mkdtemp(prefix="pywalloc-test-cache-")
    atexit.register(shutil.rmtree, os.environ["PYWALLOC_CACHE_DIR"], True)


@pytest.fixture
def one_thread():
    """One torch thread for the test (bit-exact golden digests, steady timings of small
    work), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
