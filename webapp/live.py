"""The dashboard's live view: what the panel shows, pushed as MJPEG at the panel's own pace.

``GET /api/display.mjpeg`` answers ``multipart/x-mixed-replace``, one JPEG part each time the
panel shows something new — which browsers play in a plain ``<img>``. One encoder serves every
viewer: a thread, running only while someone watches, checks the panel's version (a counter
in the player process's shared framebuffer) up to ``max_fps`` times a second, renders and
encodes a frame when it changed, and wakes the streams. The player process is never asked
for anything: the cost (reading the framebuffer, rendering, JPEG) is the web process's.

Each stream holds a server thread for as long as it is open, so at most ``max_streams`` run
at once; beyond that the route answers 503 and the dashboard falls back to the still image.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["BOUNDARY", "LiveFrames"]

#: The multipart boundary of the stream.
BOUNDARY = "loopframe"


class LiveFrames:
    """The shared encoder behind every live stream (see the module docstring).

    Args:
        version: a number that changes when the panel shows something new.
        image: what the panel shows now, as a PIL image.
        max_fps: the most frames a second any stream gets (the panel's own rate is lower).
        quality: JPEG quality.
        max_streams: streams open at once.
        keepalive_s: how often an unchanged panel is sent again (keeps proxies and the browser
            from giving up on a still).
    """

    def __init__(
        self,
        version: Callable[[], int],
        image: Callable[[], Any],
        *,
        max_fps: float = 30.0,
        quality: int = 80,
        max_streams: int = 4,
        keepalive_s: float = 10.0,
    ) -> None:
        self._version = version
        self._image = image
        self.period = 1.0 / max_fps
        self.quality = quality
        self.max_streams = max_streams
        self.keepalive_s = keepalive_s
        self._cond = threading.Condition()
        self._frame: tuple[int, bytes] | None = None  # (serial, jpeg)
        self._serial = 0
        self._streams = 0
        self._epoch = 0
        self._thread: threading.Thread | None = None
        #: Frames encoded since start (one per change of the panel while someone watched).
        self.encoded = 0

    # --- streams -------------------------------------------------------------------------------

    def open_stream(self) -> Iterator[bytes] | None:
        """A new stream's body (multipart parts), or None when ``max_streams`` are open."""
        with self._cond:
            if self._streams >= self.max_streams:
                return None
            self._streams += 1
            epoch = self._epoch
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._encode_loop, name="loop-live", daemon=True)
                self._thread.start()
        return self._parts(epoch)

    def _parts(self, epoch: int) -> Iterator[bytes]:
        seen = [-1]  # the serial of the last frame this stream sent
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(
                        lambda: (
                            self._epoch != epoch or (self._frame is not None and self._frame[0] != seen[0])
                        ),
                        self.keepalive_s,
                    )
                    if self._epoch != epoch:
                        return
                    frame = self._frame
                if frame is None:
                    continue
                seen[0], jpeg = frame
                yield (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
        finally:
            with self._cond:
                self._streams -= 1
                self._cond.notify_all()

    def end_streams(self) -> None:
        """End every open stream (the server is stopping); new ones may open afterwards."""
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()

    @property
    def streams(self) -> int:
        with self._cond:
            return self._streams

    # --- the encoder -----------------------------------------------------------------------------

    def _encode_loop(self) -> None:
        last_version: int | None = None
        last_sent = 0.0
        next_check = time.monotonic()
        while True:
            with self._cond:
                if self._streams == 0:
                    self._thread = None
                    self._frame = None  # a later viewer gets a fresh frame at once
                    return
            now = time.monotonic()
            try:
                version = self._version()
                if version != last_version or now - last_sent >= self.keepalive_s:
                    jpeg = self._encode()
                    last_version, last_sent = version, now
                    with self._cond:
                        self._serial += 1
                        self._frame = (self._serial, jpeg)
                        self.encoded += 1
                        self._cond.notify_all()
            except Exception as exc:  # the panel is not readable right now: try again shortly
                log.debug("live view frame failed: %s", exc)
            next_check = max(next_check + self.period, time.monotonic())
            with self._cond:
                self._cond.wait(max(0.0, next_check - time.monotonic()))

    def _encode(self) -> bytes:
        image = self._image()
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=self.quality)
        return out.getvalue()
