"""The player process's child side: what runs in it, and how it is described.

``HostSpec`` says how the child builds its side: a module-level function (picklable by
reference) called in the child with a :class:`HostContext` that returns a :class:`Hosted`
(the player, the display, the state words to publish and extra calls). ``child_main`` is the
child: real-time scheduling where the OS allows it (:func:`apply_realtime`), build, play, and
answer calls from the control channel on a few worker threads until told to stop or the
parent goes away. The parent side is ``libloop.player.process.PlayerProcess``, which
describes the whole arrangement.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from libloop import childlog
from libloop import errors as _errors
from libloop.errors import ItemNotFound, LoopError, PlayerError
from libloop.player.framebuffer import SharedFramebuffer
from libloop.player.ports import PlayDisplay

__all__ = [
    "HostContext",
    "HostSpec",
    "Hosted",
    "apply_realtime",
    "child_main",
    "decode_error",
    "encode_error",
]

log = logging.getLogger(__name__)

#: Calls the child runs at once.
CHILD_WORKERS = 4


# --- what the caller provides -------------------------------------------------------------


@dataclass(frozen=True)
class HostContext:
    """What ``HostSpec.build`` gets in the child."""

    framebuffer: SharedFramebuffer
    #: Report that the loop stopped (becomes a ``fatal`` event in the parent).
    fatal: Callable[[BaseException], None]
    #: Report a fault sentence (an item skipped, a transport error) to the parent.
    fault: Callable[[str], None]
    #: Ids evicted before this child started: they must never play.
    banned: tuple[str, ...]
    #: ``HostSpec.args``.
    args: Any


@dataclass
class Hosted:
    """What the child runs: the player, its display, and how to report and shut down."""

    player: Any  # libloop.player.Player (Any: it is also duck-typed in tests)
    display: PlayDisplay
    #: The state words published with each frame (see ``SharedFramebuffer.set_state_source``).
    state: Callable[[], Sequence[int]]
    close: Callable[[], None]
    #: Extra calls the parent may make (``probe``, ``display_info`` …), by name.
    calls: Mapping[str, Callable[..., Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class HostSpec:
    """How to build the child's side. Everything here must pickle.

    Attributes:
        build: a module-level function ``build(HostContext) -> Hosted``.
        args: handed to ``build`` as ``HostContext.args``.
        payload_bytes: the size of the shared framebuffer's payload.
        realtime_priority: ``SCHED_FIFO`` priority for the child (1-99), or None for none.
        start_timeout: how long the child may take to build and start (imports included).
    """

    build: Callable[[HostContext], Hosted]
    args: Any
    payload_bytes: int
    realtime_priority: int | None = 10
    start_timeout: float = 60.0


# --- scheduling -----------------------------------------------------------------------------


def apply_realtime(priority: int | None) -> dict[str, Any]:
    """Ask for ``SCHED_FIFO`` at ``priority`` for this thread and the threads it starts.

    Returns what was applied, for ``/api/health``: ``{"policy": "fifo", "priority": n}``, or
    ``{"policy": "other", "nice": n, "reason": ...}`` when it is off or not permitted (an
    ordinary user needs ``LimitRTPRIO=`` or ``CAP_SYS_NICE``; the systemd unit grants it).
    """
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    if priority is None or priority <= 0:
        return {"policy": "other", "nice": nice, "reason": "real-time scheduling is off in the config"}
    if not hasattr(os, "sched_setscheduler"):
        return {"policy": "other", "nice": nice, "reason": "this OS has no SCHED_FIFO"}
    try:
        top = os.sched_get_priority_max(os.SCHED_FIFO)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(min(priority, top)))
    except OSError as exc:
        return {
            "policy": "other",
            "nice": nice,
            "reason": f"SCHED_FIFO not permitted ({exc.strerror or exc}); the unit's LimitRTPRIO= grants it",
        }
    return {"policy": "fifo", "priority": min(priority, top)}


# --- errors across the pipe -----------------------------------------------------------------


def encode_error(exc: BaseException) -> tuple[str, str, str | None]:
    item_id = getattr(exc, "item_id", None) if isinstance(exc, ItemNotFound) else None
    return type(exc).__name__, str(exc), item_id


def decode_error(name: str, message: str, item_id: str | None) -> Exception:
    if name == "ItemNotFound" and item_id is not None:
        return ItemNotFound(item_id)
    if name in ("ValueError", "TypeError"):
        return ValueError(message)
    cls = getattr(_errors, name, None)
    if isinstance(cls, type) and issubclass(cls, LoopError):
        try:
            error: Exception = cls(message)
            if str(error) == message:
                return error
        except TypeError:
            pass
    return PlayerError(message)


# --- the child --------------------------------------------------------------------------------

_CONTROLS = frozenset(
    {
        "pause", "resume", "next", "previous", "show", "set_brightness", "sleep", "wake",
        "set_night", "set_dashboard_url", "show_error", "clear_error", "evict", "unban",
        "reset_stats_window", "apply_settings",
    }
)  # fmt: skip


def child_main(spec: HostSpec, conn: Any, fb_name: str, banned: tuple[str, ...]) -> None:
    """The player process: build, play, answer calls until told to stop or the parent goes."""
    childlog.configure()
    # The parent decides when this process ends (it asks, or its end closes the pipe): a Ctrl-C
    # in the terminal or systemd's SIGTERM to the whole group must not cut the panel off first.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    scheduling = apply_realtime(spec.realtime_priority)  # before any thread: they inherit it
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock, contextlib.suppress(OSError, ValueError):
            conn.send(message)

    framebuffer = SharedFramebuffer.attach(fb_name)
    framebuffer.set_writer_pid(os.getpid())
    context = HostContext(
        framebuffer=framebuffer,
        fatal=lambda exc: send(("event", "fatal", f"{type(exc).__name__}: {exc}")),
        fault=lambda message: send(("event", "fault", str(message))),
        banned=banned,
        args=spec.args,
    )
    try:
        hosted = spec.build(context)
    except BaseException as exc:
        send(("failed", *encode_error(exc)))
        framebuffer.close()
        return
    framebuffer.set_state_source(hosted.state)
    player = hosted.player
    if banned:
        player.ban(banned)
    # What start-up made lives as long as the process: out of the collector's sight, a full
    # collection (tens of milliseconds with the GIL held) no longer walks it mid-frame.
    gc.collect()
    gc.freeze()
    player.start()
    framebuffer.publish()
    send(("ready", {"pid": os.getpid(), "scheduling": scheduling}))

    def restart() -> None:
        if not player.stop():
            # The loop is stuck in a call (a hung transfer holds the display): only a new
            # process frees it. Say so at once rather than hang here too.
            raise PlayerError("The player's loop is stuck; it needs a new process.")
        hosted.display.reinit()
        player.start()

    def run(call_id: int, name: str, args: tuple[Any, ...]) -> None:
        try:
            if name == "status":
                value: Any = player.status().to_dict()
            elif name == "restart":
                restart()
                value = None
            elif name in _CONTROLS:
                value = getattr(player, name)(*args)
            elif name in hosted.calls:
                value = hosted.calls[name](*args)
            else:
                raise PlayerError(f"The player process has no call named {name!r}.")
            send(("reply", call_id, True, value))
        except BaseException as exc:
            send(("reply", call_id, False, encode_error(exc)))

    pool = concurrent.futures.ThreadPoolExecutor(CHILD_WORKERS, thread_name_prefix="loop-player-call")
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break  # the parent is gone
            kind = message[0]
            if kind == "stop":
                break
            if kind == "changed":
                player.notify_change()
            elif kind == "note" and message[1] in _CONTROLS:  # a control nobody waits for
                pool.submit(run, 0, message[1], tuple(message[2]))
            elif kind == "call":
                pool.submit(run, message[1], message[2], tuple(message[3]))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            player.stop()
        with contextlib.suppress(Exception):
            hosted.close()
        send(("stopped",))
        with contextlib.suppress(OSError):
            conn.close()
