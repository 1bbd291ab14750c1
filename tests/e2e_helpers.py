"""Helpers for tests that run the device as a subprocess and talk to it over HTTP."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: Header the dashboard sends on state-changing calls (cross-site request protection).
CSRF_HEADERS = {"X-Loop-Request": "1"}


@dataclass
class HttpResult:
    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> HttpResult:
    request = urllib.request.Request(
        url, data=body, method=method, headers={**CSRF_HEADERS, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return HttpResult(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return HttpResult(exc.code, exc.read())


def multipart(files: list[tuple[str, bytes]], field: str = "file") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, data in files:
        out.write(f"--{boundary}\r\n".encode())
        out.write(f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'.encode())
        out.write(b"Content-Type: application/octet-stream\r\n\r\n")
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def solid_gif(
    colours: list[tuple[int, int, int]], size: tuple[int, int] = (64, 48), delay_ms: int = 100
) -> bytes:
    frames = [Image.new("RGB", size, c) for c in colours]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=delay_ms, loop=0)
    return buf.getvalue()


def dominant_colour(png: bytes) -> tuple[int, int, int]:
    """The most common colour of the middle of a PNG (ignores letterbox bars)."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    h, w = image.shape[:2]
    centre = image[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].reshape(-1, 3)
    values, counts = np.unique(centre, axis=0, return_counts=True)
    r, g, b = (int(v) for v in values[counts.argmax()])
    return r, g, b


def close_to(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll an external process's observable state until `predicate` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class DeviceProcess:
    """`loop sim --headless` in a subprocess, with its dashboard URL read from its output."""

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        wrapper: list[str] | None = None,
        timeout: float = 60,
    ) -> None:
        full_env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", **(env or {})}
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()/kill()
        if "NOTIFY_SOCKET" not in (env or {}):
            full_env.pop("NOTIFY_SOCKET", None)  # never talk to a systemd the test runner may be under
        self.wrapped = bool(wrapper)
        self.proc = subprocess.Popen(
            [
                *(wrapper or []),  # e.g. strace injecting faults
                sys.executable,
                "-m",
                "loopapp",
                "sim",
                "--headless",
                "--port",
                "0",
                "--data",
                str(data_dir),
                *extra,
            ],
            stdout=subprocess.PIPE,
            # A file, not a pipe: a device that logs a lot must never block on a full pipe.
            stderr=self._stderr,
            env=full_env,
        )
        self.stdout = b""
        self.url = self._read_url(timeout=timeout)

    def _read_url(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not sel.select(timeout=deadline - time.monotonic()):
                break
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            self.stdout += chunk
            match = re.search(rb"http://[\w.\[\]:-]+:(\d+)", self.stdout)
            if match:
                return match.group(0).decode()
        self.proc.kill()
        self.proc.communicate()
        raise AssertionError(f"loop sim did not print its address; stderr:\n{self.stderr()}")

    @property
    def pid(self) -> int:
        """The device's own process id (the wrapper's child when there is a wrapper)."""
        return self.device_pid()

    def stderr(self) -> str:
        """What the device has written to standard error so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def device_pid(self) -> int:
        """The device's own process (under a wrapper such as strace, the wrapper's child)."""
        if not self.wrapped:
            return self.proc.pid
        import psutil

        children = psutil.Process(self.proc.pid).children()
        return children[0].pid if children else self.proc.pid

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        os.kill(self.device_pid(), signal.SIGTERM)  # a wrapper exits with the device's status
        out, _ = self.proc.communicate(timeout=timeout)
        self.stdout += out
        err = self.stderr()
        self._stderr.close()
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.device_pid(), signal.SIGKILL)
            self.proc.kill()
            self.proc.communicate()
        self._stderr.close()
