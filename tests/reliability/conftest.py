"""Fixtures of the reliability suite: small file systems of our own (tmpfs) to fill or make read-only."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

import pytest


def _mount_tmpfs(path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` at ``path``; None on success, else why it cannot be done here."""
    if os.geteuid() != 0:
        return "needs root to mount a small tmpfs (CI runs as root)"
    if not shutil.which("mount"):
        return "no mount command on this machine"
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode:
        return f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}): no CAP_SYS_ADMIN?"
    return None


class SmallDisk:
    """A tmpfs mounted at ``path`` that a test can fill (``fill(free_bytes)``), empty again
    (``free()``) or remount read-only (``read_only()``)."""

    def __init__(self, path):
        self.path = path
        self.filler = path / "filler"

    def fill(self, leave: int) -> None:
        self.free()
        st = os.statvfs(self.path)
        room = st.f_bavail * st.f_frsize
        with open(self.filler, "wb") as fh:
            with contextlib.suppress(OSError):
                fh.write(b"\0" * max(0, room - leave))

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def read_only(self, on: bool = True) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    path = tmp_path / "disk"
    path.mkdir()
    why = _mount_tmpfs(path, "2m")
    if why:
        pytest.skip(why)
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
