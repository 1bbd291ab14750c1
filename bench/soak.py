"""The soak: the whole device for an hour of real time under a steady load, sampled every minute.

``nox -s soak`` (or ``python -m bench.soak --minutes N``; default 60) starts ``loop sim
--headless`` on a fresh data directory and drives it over HTTP the way a busy household would:
four clients polling the player, the panel image, the health report and the library; uploads
of small animations, deletes and reorders every few seconds, the library kept between 4 and 12
items. Every minute it records the device process's resident memory, open file descriptors,
threads, and the frames shown and dropped. The goal is flat lines. The figures go to
``bench/soak.md``, which ``bench/REPORT.md`` includes (``nox -s bench`` keeps it).

CI does not run it: an hour is the point.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from PIL import Image

HERE = Path(__file__).resolve().parent
SOAK_MD = HERE / "soak.md"
REPORT_MD = HERE / "REPORT.md"
BEGIN, END = "<!-- soak: written by `nox -s soak` -->", "<!-- /soak -->"
HEADERS = {"X-Loop-Request": "1"}


@dataclass
class Sample:
    minute: float
    rss_mb: float
    fds: int
    threads: int
    #: The player process (the panel's own process), or zeros when the player runs in-process.
    player_rss_mb: float
    player_fds: int
    player_threads: int
    player_pid: int
    frames_shown: int
    frames_dropped: int
    items: int
    requests: int
    errors: int


@dataclass
class Load:
    """What the clients did, counted across their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    errors: int = 0  # answers >= 500, or no answer
    uploads: int = 0
    deletes: int = 0
    reorders: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    last_error: str = ""

    def count(self, status: int, what: str) -> None:
        with self.lock:
            self.requests += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status >= 500 or status == 0:
                self.errors += 1
                self.last_error = f"{what}: {status}"


def _request(
    url: str, method: str = "GET", body: bytes | None = None, ctype: str | None = None
) -> tuple[int, bytes]:
    headers = dict(HEADERS)
    if ctype:
        headers["Content-Type"] = ctype
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _gif(seed: int) -> bytes:
    rng = random.Random(seed)
    size = (rng.choice([48, 64, 96]), rng.choice([48, 64, 80]))
    frames = []
    for k in range(rng.randint(3, 8)):
        img = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        img.paste((255, 255, 255), (k * 4 % size[0], 4, k * 4 % size[0] + 8, 12))
        frames.append(img)
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return out.getvalue()


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/gif\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _poller(base: str, paths: list[str], stop: threading.Event, load: Load, period: float) -> None:
    k = 0
    while not stop.is_set():
        path = paths[k % len(paths)]
        status, _ = _request(base + path)
        load.count(status, f"GET {path}")
        k += 1
        stop.wait(period)


def _churn(base: str, stop: threading.Event, load: Load, period: float, seed: int) -> None:
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        n += 1
        status, raw = _request(base + "/api/media")
        load.count(status, "GET /api/media")
        items = json.loads(raw)["items"] if status == 200 else []
        if len(items) < 12:
            body, ctype = _multipart(f"soak-{n}.gif", _gif(seed * 100_000 + n))
            status, _ = _request(base + "/api/media?wait=true", "POST", body, ctype)
            load.count(status, "POST /api/media")
            load.uploads += status == 201
        if len(items) > 4 and n % 2 == 0:
            victim = rng.choice(items)["id"]
            status, _ = _request(base + f"/api/media/{victim}", "DELETE")
            load.count(status, "DELETE /api/media/{id}")
            load.deletes += status == 200
        status, raw = _request(base + "/api/media")
        load.count(status, "GET /api/media")
        if status == 200:
            ids = [i["id"] for i in json.loads(raw)["items"]]
            rng.shuffle(ids)
            status, _ = _request(
                base + "/api/playlist", "PUT", json.dumps({"ids": ids}).encode(), "application/json"
            )
            load.count(status, "PUT /api/playlist")
            load.reorders += status == 200
        stop.wait(period)


def _start_device(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopapp", "sim", "--headless", "--port", "0", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sel.select(timeout=deadline - time.monotonic()):
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
        match = re.search(rb"http://[\w.\[\]:-]+:(\d+)", seen)
        if match:
            return proc, f"http://127.0.0.1:{match.group(1).decode()}"
    proc.kill()
    raise SystemExit(f"loop sim did not start: {seen.decode(errors='replace')}")


def _figures(proc: psutil.Process) -> tuple[int, int, int]:
    """Resident bytes, open file descriptors and threads of one process."""
    with proc.oneshot():
        return proc.memory_info().rss, proc.num_fds(), proc.num_threads()


def _player_pid(base: str, device_pid: int) -> int:
    """The pid of the process that plays (``isolation.pid`` in the health report)."""
    status, raw = _request(base + "/api/health")
    if status != 200:
        return 0
    pid = int((json.loads(raw).get("isolation") or {}).get("pid") or 0)
    return 0 if pid == device_pid else pid


def _sample(proc: psutil.Process, base: str, t0: float, load: Load) -> Sample:
    status, raw = _request(base + "/api/player")
    stats = json.loads(raw)["stats"] if status == 200 else {}
    status, raw = _request(base + "/api/media")
    items = len(json.loads(raw)["items"]) if status == 200 else -1
    rss, fds, threads = _figures(proc)
    player_pid = _player_pid(base, proc.pid)
    player = (0, 0, 0)
    if player_pid:
        with contextlib.suppress(psutil.Error):
            player = _figures(psutil.Process(player_pid))
    with load.lock:
        requests, errors = load.requests, load.errors
    return Sample(
        minute=(time.monotonic() - t0) / 60,
        rss_mb=rss / 2**20,
        fds=fds,
        threads=threads,
        player_rss_mb=player[0] / 2**20,
        player_fds=player[1],
        player_threads=player[2],
        player_pid=player_pid,
        frames_shown=int(stats.get("frames_shown", 0)),
        frames_dropped=int(stats.get("frames_dropped", 0)),
        items=items,
        requests=requests,
        errors=errors,
    )


def run(minutes: float, *, interval: float = 60.0, clients: int = 4, churn_period: float = 4.0) -> str:
    """Soak the device for ``minutes``; return the Markdown section."""
    with tempfile.TemporaryDirectory(prefix="loop-soak-") as tmp:
        device, base = _start_device(Path(tmp) / "data")
        proc = psutil.Process(device.pid)
        load = Load()
        stop = threading.Event()
        polls = [
            ["/api/player", "/api/display.png"],
            ["/api/health"],
            ["/api/media", "/api/player"],
            ["/api/display.png"],
        ]
        threads = [
            threading.Thread(
                target=_poller, args=(base, polls[k % len(polls)], stop, load, 0.25), daemon=True
            )
            for k in range(clients)
        ]
        threads.append(threading.Thread(target=_churn, args=(base, stop, load, churn_period, 7), daemon=True))
        t0 = time.monotonic()
        samples = [_sample(proc, base, t0, load)]
        for t in threads:
            t.start()
        end = t0 + minutes * 60
        try:
            while time.monotonic() < end:
                stop.wait(max(0.0, min(interval, end - time.monotonic())))
                if device.poll() is not None:
                    raise SystemExit(f"the device died during the soak (status {device.returncode})")
                samples.append(_sample(proc, base, t0, load))
                s = samples[-1]
                print(
                    f"soak: {s.minute:5.1f} min  rss {s.rss_mb:6.1f} MB  fds {s.fds:3d}  threads {s.threads:3d}  "
                    f"player rss {s.player_rss_mb:6.1f} MB  fds {s.player_fds:3d}  threads {s.player_threads:3d}  "
                    f"shown {s.frames_shown}  dropped {s.frames_dropped}  items {s.items}  "
                    f"requests {s.requests}  5xx {s.errors}",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            stop.set()
            for t in threads:
                t.join(90)
            device.send_signal(signal.SIGTERM)
            try:
                code = device.wait(60)
            except subprocess.TimeoutExpired:
                device.kill()
                code = -9
    return render(minutes, samples, load, code)


def render(minutes: float, samples: list[Sample], load: Load, exit_code: int) -> str:
    first, last = samples[0], samples[-1]
    warm = next((s for s in samples if s.minute >= 1.0), last)  # imports and caches have warmed up
    half = samples[len(samples) // 2]
    hours = max(1e-9, (last.minute - half.minute) / 60)
    slope = (last.rss_mb - half.rss_mb) / hours
    player_slope = (last.player_rss_mb - half.player_rss_mb) / hours
    player_pids = sorted({s.player_pid for s in samples if s.player_pid})
    restarts = max(0, len(player_pids) - 1)
    lines = [
        BEGIN,
        "## Soak (the whole device, real time)",
        "",
        f"`nox -s soak -- --minutes {minutes:g}`: `loop sim --headless` for {last.minute:.0f} minutes with four "
        "clients polling `/api/player`, `/api/display.png`, `/api/health` and `/api/media` every 0.25 s, and "
        "an upload (with `?wait=true`), a delete and a reorder every few seconds (library kept at 4-12 items). "
        "The device's process and its player process (which owns the panel) are sampled every minute.",
        "",
        "| figure | start | after 1 min | end | note |",
        "|---|---|---|---|---|",
        f"| resident memory | {first.rss_mb:.1f} MB | {warm.rss_mb:.1f} MB | {last.rss_mb:.1f} MB | "
        f"second half: {slope:+.1f} MB/h |",
        f"| open file descriptors | {first.fds} | {warm.fds} | {last.fds} | |",
        f"| threads | {first.threads} | {warm.threads} | {last.threads} | |",
        f"| player process: resident memory | {first.player_rss_mb:.1f} MB | {warm.player_rss_mb:.1f} MB | "
        f"{last.player_rss_mb:.1f} MB | second half: {player_slope:+.1f} MB/h; {restarts} restarts |",
        f"| player process: open file descriptors | {first.player_fds} | {warm.player_fds} | {last.player_fds} | |",
        f"| player process: threads | {first.player_threads} | {warm.player_threads} | {last.player_threads} | |",
        f"| frames dropped | {first.frames_dropped} | {warm.frames_dropped} | {last.frames_dropped} | "
        f"of {last.frames_shown} shown |",
        f"| requests answered | | | {load.requests} | {load.uploads} uploads, {load.deletes} deletes, "
        f"{load.reorders} reorders; {load.errors} 5xx or unanswered{': ' + load.last_error if load.last_error else ''} |",
        f"| exit status on SIGTERM | | | {exit_code} | |",
        "",
        "<details><summary>Every minute</summary>",
        "",
        "| minute | RSS MB | fds | threads | player RSS MB | player fds | player threads "
        "| frames shown | dropped | items | requests | 5xx |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {s.minute:.1f} | {s.rss_mb:.1f} | {s.fds} | {s.threads} | {s.player_rss_mb:.1f} | {s.player_fds} "
            f"| {s.player_threads} | {s.frames_shown} | {s.frames_dropped} | "
            f"{s.items} | {s.requests} | {s.errors} |"
            for s in samples
        ),
        "",
        "</details>",
        END,
        "",
    ]
    return "\n".join(lines)


def include_in_report(section: str, report: Path = REPORT_MD) -> None:
    """Put the soak section into REPORT.md, replacing an earlier one."""
    text = report.read_text() if report.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END) + r"\n?", re.S)
    text = pattern.sub("", text).rstrip("\n") + "\n\n" + section
    report.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="how long to soak (default 60)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples (default 60)")
    parser.add_argument("--out", type=Path, default=SOAK_MD)
    args = parser.parse_args(argv)
    section = run(args.minutes, interval=args.interval)
    args.out.write_text(section)
    with contextlib.suppress(OSError):
        include_in_report(section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
