"""Upload figures on the whole device: upload-to-first-frame latency and memory during an upload.

``loop sim --headless`` runs as a subprocess (the production composition: cheroot, the import
worker process, the player thread). Each figure is measured from outside, as a phone sees it:

* **upload to first frame**: from the first byte of ``POST /api/media?show=true`` until
  ``GET /api/player`` says the panel holds a frame of the new item (``on_panel``), split into
  upload, import and show. The baseline is the same file's import in
  this process with ``import_media`` alone: what the device adds on top of the conversion.
* **peak RSS during a 200 MB upload**: the device process's resident set sampled every 10 ms
  while a 199 MiB body streams in, against its RSS just before. The body is not media, so its
  import fails at once; what is measured is receiving it.

The corpus files come from ``tests/real_corpus.py`` (the same generated media the tests use).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.report import Report

MB = 1024 * 1024


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _first_frame_latency(url: str, path: Path) -> dict[str, float]:
    from tests.http_uploads import post_files

    t0 = time.perf_counter()
    answer = post_files(url, [path], query="?show=true")
    t_uploaded = time.perf_counter()
    if answer.status != 202:
        raise RuntimeError(f"upload of {path.name} answered {answer.status}: {answer.body[:200]!r}")
    job_id = answer.json()["jobs"][0]["id"]
    while True:
        job = _get(f"{url}/api/jobs/{job_id}")
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.01)
    t_imported = time.perf_counter()
    if job["status"] != "done":
        raise RuntimeError(f"import of {path.name} failed: {job['error']}")
    item_id = job["item"]["id"]
    while _get(f"{url}/api/player")["on_panel"] != item_id:
        if time.perf_counter() - t_imported > 30:
            raise RuntimeError(f"{path.name} was imported but never shown")
        time.sleep(0.005)
    t_shown = time.perf_counter()
    return {
        "total": t_shown - t0,
        "upload": t_uploaded - t0,
        "import": t_imported - t_uploaded,
        "show": t_shown - t_imported,
        "bytes": float(path.stat().st_size),
    }


def _inline_import_seconds(path: Path, tmp: Path) -> float:
    from libloop.media.importer import import_media

    t = time.perf_counter()
    import_media(path, tmp / f"{path.stem}.loop")
    return time.perf_counter() - t


def _rss_during_upload(url: str, pid: int, size: int) -> tuple[float, float, float]:
    import psutil

    from tests.http_uploads import Generated, post_files

    proc = psutil.Process(pid)
    before = proc.memory_info().rss
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    answer = post_files(url, [Generated("big.mov", size, b"\x5a")])
    elapsed = time.perf_counter() - t
    done.set()
    sampler.join()
    if answer.status >= 500:
        raise RuntimeError(f"the 200 MB upload answered {answer.status}")
    return before / MB, peak / MB, elapsed


def run(report: Report, quick: bool) -> None:
    """Add the uploads section to ``report``."""
    from tests.e2e_helpers import DeviceProcess
    from tests.real_corpus import RealCorpus

    section = report.section(
        "Uploads on the whole device",
        "`loop sim --headless` as a subprocess, measured over HTTP on loopback (idle device, "
        "nothing else playing). Upload to first frame = upload + import (in the device's "
        "worker process) + until the panel holds the item's first frame. Baseline: `import_media` alone, "
        "in the benchmark's own process.",
    )
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        corpus = RealCorpus(d / "corpus")
        photo = corpus.get("jpeg_12mp_o1").path
        video = corpus.get("h264_1080p_30s").path
        device = DeviceProcess(d / "data")
        try:
            for label, path in (("12 MP JPEG photo", photo), ("30 s 1080p H.264 video", video)):
                figures = _first_frame_latency(device.url, path)
                baseline = _inline_import_seconds(path, d)
                section.add(
                    f"upload to first frame, {label} ({figures['bytes'] / 1e6:.1f} MB)",
                    f"{figures['total']:.2f} s",
                    f"import_media alone: {baseline:.2f} s",
                    f"upload {figures['upload']:.2f} s, import {figures['import']:.2f} s, "
                    f"shown {figures['show'] * 1000:.0f} ms after",
                )
            size = (20 if quick else 199) * MB
            before, peak, elapsed = _rss_during_upload(device.url, device.pid, size)
            section.add(
                f"device RSS during a {size / MB:.0f} MiB upload",
                f"peak {peak:.0f} MB",
                f"before the upload: {before:.0f} MB",
                f"+{peak - before:.1f} MB; body received in {elapsed:.1f} s "
                f"({size / MB / max(elapsed, 1e-9):.0f} MiB/s)",
            )
        finally:
            device.stop()
