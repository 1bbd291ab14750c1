"""A panel's memory in shared memory, published a whole frame at a time, plus a heartbeat.

The process that drives the panel (the player process) keeps the panel's memory — the
simulated panel's frame memory, or the display's shadow copy on a Pi — *in* this block, so
publishing costs no copy: the panel model or the shadow writes where readers look. Readers in
other processes (``GET /api/display.png``, the live view, MQTT's image, the simulator window)
copy it out and render it, so what they cost is paid outside the player process.

Readers never see a torn frame: a sequence counter (a seqlock) is made odd by ``begin()``
before the first byte of a frame changes and even again by ``end()`` after the last; a reader
copies, and keeps the copy only if the counter was even and unchanged around the copy. The
writer never waits for a reader. Memory barriers around the counter keep the order of the
stores on weakly ordered CPUs (a lock acquired and released is one on every platform CPython
runs on).

``end()`` also stores a few *state words* (up to :data:`STATE_WORDS` 32-bit integers, e.g.
the panel's MADCTL and sleep state) that readers need to render the memory as a person sees
it. A separate *heartbeat* counter, bumped every turn of the player loop, lets a supervisor in
another process see that the loop makes progress, and a *status* counter moves whenever the
player's state changes (what MQTT waits on), so no face has to ask the player process.

Layout (little-endian): 128 bytes of header — magic, layout version, sequence, heartbeat,
payload size, writer pid, status counter, then the state words — followed by the payload.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing import shared_memory

import numpy as np
import numpy.typing as npt

from libloop.errors import LoopError

__all__ = ["STATE_WORDS", "FramebufferError", "SharedFramebuffer"]

_MAGIC = 0x4C4F4F50  # "LOOP"
_LAYOUT = 2
_HEADER = 128
_SEQ, _BEAT, _SIZE, _PID, _STATUS = 2, 3, 4, 5, 6
_STATE0 = 7
#: How many state words a frame carries.
STATE_WORDS = (_HEADER // 4) - _STATE0


class FramebufferError(LoopError):
    """A shared framebuffer could not be made or attached."""

    code = "framebuffer_error"


class SharedFramebuffer:
    """One writer, any number of readers, in any processes (see the module docstring).

    Make one with :meth:`create` (the owner, which unlinks it) and open it elsewhere with
    :meth:`attach`. ``pixels`` is the payload as a flat ``uint8`` array for the writer to
    draw into (or to wrap in a shaped view).
    """

    def __init__(self, shm: shared_memory.SharedMemory, *, owner: bool) -> None:
        self._shm = shm
        self._owner = owner
        self._words: npt.NDArray[np.uint32] = np.ndarray((_HEADER // 4,), dtype="<u4", buffer=shm.buf)
        if int(self._words[0]) != _MAGIC or int(self._words[1]) != _LAYOUT:
            raise FramebufferError(f"Shared memory {shm.name} is not a LOOP framebuffer.")
        size = int(self._words[_SIZE])
        self.pixels: npt.NDArray[np.uint8] = np.ndarray(
            (size,), dtype=np.uint8, buffer=shm.buf, offset=_HEADER
        )
        self._barrier = threading.Lock()
        self._closed = False
        self._state_source: Callable[[], Sequence[int]] | None = None
        self._depth = 0

    @classmethod
    def create(cls, nbytes: int) -> SharedFramebuffer:
        """A new, zeroed framebuffer with an ``nbytes`` payload (this process owns it)."""
        if nbytes < 1:
            raise ValueError("a framebuffer holds at least one byte")
        try:
            shm = shared_memory.SharedMemory(create=True, size=_HEADER + nbytes)
        except OSError as exc:
            raise FramebufferError(
                f"Cannot make a {nbytes}-byte shared framebuffer ({exc.strerror or exc}); "
                "check that /dev/shm is mounted and has room."
            ) from exc
        words = np.ndarray((_HEADER // 4,), dtype="<u4", buffer=shm.buf)
        words[:] = 0
        words[0], words[1], words[_SIZE], words[_PID] = _MAGIC, _LAYOUT, nbytes, os.getpid()
        del words
        return cls(shm, owner=True)

    @classmethod
    def attach(cls, name: str) -> SharedFramebuffer:
        """Open the framebuffer another process made.

        Raises:
            FramebufferError: there is none by that name, or it is not a framebuffer.
        """
        try:
            # The block is registered with the resource tracker of the process tree that made it
            # (attaching processes are its children and share that tracker): the owner's
            # unlink unregisters it, and the tracker removes it if the owner dies first.
            shm = shared_memory.SharedMemory(name=name)
        except (OSError, ValueError) as exc:
            raise FramebufferError(f"No shared framebuffer named {name!r} ({exc}).") from exc
        return cls(shm, owner=False)

    @property
    def name(self) -> str:
        return self._shm.name

    @property
    def size(self) -> int:
        return int(self.pixels.size)

    # --- writing (one process, one thread at a time) ---------------------------------------

    def set_state_source(self, source: Callable[[], Sequence[int]] | None) -> None:
        """What ``end()`` stores as the state words (called once a frame; keep it cheap)."""
        self._state_source = source

    def begin(self) -> None:
        """A frame starts changing: readers discard copies made from now until ``end()``."""
        self._depth += 1
        if self._depth > 1:
            return
        self._words[_SEQ] = (int(self._words[_SEQ]) + 1) | 1
        with self._barrier:  # the odd count is visible before any payload store
            pass

    def end(self) -> None:
        """The frame is complete: store the state words, then make the count even."""
        if self._depth == 0:
            raise RuntimeError("end() without begin()")
        self._depth -= 1
        if self._depth > 0:
            return
        if self._state_source is not None:
            state = list(self._state_source())[:STATE_WORDS]
            self._words[_STATE0 : _STATE0 + len(state)] = np.asarray(state, dtype=np.int64).astype("<u4")
        with self._barrier:  # every payload store is visible before the even count
            pass
        self._words[_SEQ] = (int(self._words[_SEQ]) + 1) & ~1 & 0xFFFFFFFF

    def publish(self) -> None:
        """``begin()`` and ``end()`` at once: the state words changed, the payload did not."""
        self.begin()
        self.end()

    def beat(self) -> None:
        """Prove that the writer's loop makes progress (cheap: one store)."""
        self._words[_BEAT] = (int(self._words[_BEAT]) + 1) & 0xFFFFFFFF

    def set_status(self, version: int) -> None:
        """Publish the player's status counter (see ``Player.version``)."""
        self._words[_STATUS] = version & 0xFFFFFFFF

    # --- reading (any process) --------------------------------------------------------------

    @property
    def sequence(self) -> int:
        """Changes whenever a frame is published (even: complete)."""
        return int(self._words[_SEQ])

    @property
    def heartbeat(self) -> int:
        return int(self._words[_BEAT])

    def state_words(self) -> tuple[int, ...]:
        """The state words as they are now (a frame may be changing them; :meth:`read` is exact)."""
        return tuple(int(v) for v in self._words[_STATE0:])

    @property
    def status(self) -> int:
        """The player's status counter, as last published."""
        return int(self._words[_STATUS])

    @property
    def writer_pid(self) -> int:
        return int(self._words[_PID])

    def set_writer_pid(self, pid: int) -> None:
        self._words[_PID] = pid

    def read(self, out: npt.NDArray[np.uint8], *, timeout: float = 0.1) -> tuple[int, tuple[int, ...]] | None:
        """Copy a complete frame into ``out`` (``size`` bytes); returns (sequence, state words).

        While a frame is being drawn (a whole one takes its wire time) the copy waits for it,
        polling every half millisecond, for at most ``timeout`` seconds; None if the writer
        was still drawing then (the caller keeps what it had).
        """
        if out.size != self.pixels.size:
            raise ValueError(f"the copy needs {self.pixels.size} bytes, not {out.size}")
        flat = out.reshape(-1)
        give_up = time.monotonic() + timeout
        while True:
            before = int(self._words[_SEQ])
            if not before & 1:
                with self._barrier:  # no payload load before the count is read
                    pass
                np.copyto(flat, self.pixels)
                state = tuple(int(v) for v in self._words[_STATE0:])
                with self._barrier:  # every payload load done before the count is read again
                    pass
                if int(self._words[_SEQ]) == before:
                    return before, state
            if time.monotonic() >= give_up:
                return None
            time.sleep(0.0005)

    # --- life --------------------------------------------------------------------------------

    def close(self) -> None:
        """Detach (and, for the owner, remove the block); safe to call twice.

        Views of ``pixels`` made by the caller must be gone first, or the block stays mapped
        until they are (it is still removed).
        """
        if self._closed:
            return
        self._closed = True
        shm = self._shm
        del self.pixels, self._words
        with contextlib.suppress(BufferError):  # someone still holds a view: it keeps the mapping
            shm.close()
        if self._owner:
            with contextlib.suppress(FileNotFoundError):
                shm.unlink()
