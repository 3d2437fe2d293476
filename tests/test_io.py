"""The one atomic writer (permissions, no-overwrite, no leftovers) and audio windows."""

import os

import numpy as np
import pytest
import soundfile as sf

from pywalloc.errors import MediaError
from pywalloc.media import OutputExistsError, atomic_write, audio_info, read_audio


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_atomic_write_permissions_and_overwrite(tmp_path):
    path = tmp_path / "x.wlc"
    atomic_write(path, b"abc")
    assert path.read_bytes() == b"abc"
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not 0600
    with pytest.raises(OutputExistsError):
        atomic_write(path, b"new", overwrite=False)
    assert path.read_bytes() == b"abc"
    atomic_write(path, "text")
    assert path.read_text() == "text"

    def fail(fh):
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(MediaError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == "text" and sorted(p.name for p in tmp_path.iterdir()) == ["x.wlc"]


def test_read_audio_window(tmp_path):
    a = (np.arange(1000, dtype=np.float32)[:, None] / 2000).repeat(2, axis=1)
    sf.write(tmp_path / "a.wav", a, 8000, subtype="FLOAT")
    info = audio_info(tmp_path / "a.wav")
    assert (info.frames, info.sample_rate, info.channels) == (1000, 8000, 2)
    part, rate, info = read_audio(tmp_path / "a.wav", start=100, frames=50)
    np.testing.assert_array_equal(part, a[100:150])
    assert rate == 8000 and info.frames == 1000  # info describes the file
    tail, _, _ = read_audio(tmp_path / "a.wav", start=990, frames=50)
    assert tail.shape == (10, 2)


def test_atomic_write_removes_its_own_stale_temporary_files(tmp_path):
    import os
    import time

    from pywalloc.media import STALE_TEMP_SECONDS, atomic_write

    target = tmp_path / "photo.wlc"
    stale = tmp_path / ".photo.wlc.0123abcd.tmp"  # orphaned by a killed process
    fresh = tmp_path / ".photo.wlc.89abcdef.tmp"  # another writer, still at work
    other = tmp_path / ".other.wlc.0123abcd.tmp"  # another target's
    mine_not = tmp_path / ".photo.wlc.backup.tmp"  # not our naming
    old = time.time() - STALE_TEMP_SECONDS - 60
    for p in (stale, fresh, other, mine_not):
        p.write_bytes(b"x")
    for p in (stale, other, mine_not):
        os.utime(p, (old, old))
    atomic_write(target, b"data")
    assert target.read_bytes() == b"data"
    assert not stale.exists()
    assert fresh.exists() and other.exists() and mine_not.exists()
