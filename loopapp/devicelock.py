"""One device per data directory: ``loop sim`` and ``loop run`` hold ``DATA/device.lock``.

The lock is an exclusive ``flock`` taken before the device touches anything else in the data
directory and held for the life of the process. The kernel drops it when the process ends,
however it ends (SIGKILL, a power cut's reboot), so a stale lock never keeps a device from
starting. The holder writes its PID into the file, so the one refused can name it. The file
itself is never removed: unlinking a lock file lets two processes lock two different files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

from libloop.errors import LoopError

LOCK_FILE = "device.lock"


class DeviceAlreadyRunning(LoopError):
    """Another device process holds the data directory."""

    code = "device_already_running"

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        self.data_dir = data_dir
        self.pid = pid
        who = f"Another LOOP device (PID {pid})" if pid else "Another LOOP device"
        super().__init__(
            f"{who} is already running on {data_dir}; stop it first, or give this one its own "
            "data directory with --data."
        )


class DeviceLock:
    """The exclusive lock of one data directory. ``acquire()`` raises DeviceAlreadyRunning."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting and record this process's PID in it."""
        if self._fd is not None:
            return
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DeviceAlreadyRunning(self.data_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):  # a read-only or full card: the lock still holds
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _open(self) -> int:
        """The lock file's descriptor; on a read-only or full card, the existing file read-only,
        else a lock file for this data directory in the temporary directory (a flock needs no
        write access, and the device must start on such a card)."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES):
                raise
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            key = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:16]
            fallback = Path(tempfile.gettempdir()) / f"loop-{key}.lock"
            return os.open(fallback, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def release(self) -> None:
        """Give the lock up (closing the file drops it); safe to call when not held."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode("ascii").strip()) or None
    except (OSError, ValueError, UnicodeDecodeError):
        return None  # the holder is between taking the lock and writing its PID
