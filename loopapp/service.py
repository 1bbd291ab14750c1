"""The systemd unit for ``loop run``, generated for the interpreter that has LOOP installed.

The previous device's unit ran ``/usr/bin/python3`` while LOOP lived in a virtualenv, so the
service crash-looped on a missing ``psutil``. The unit is therefore rendered from
``sys.executable`` *as it is*: a virtualenv's ``bin/python`` is a symlink to the system
interpreter, and resolving it would lose the virtualenv.

Restart policy: ``Restart=on-failure`` (a non-zero exit or a watchdog timeout restarts the
service, ``SIGTERM``'s clean exit 0 does not). The start limit lives in ``[Unit]``, where
systemd reads it, and its interval is long enough for the limit to ever trigger: the burst
of starts must fit in the interval, i.e. ``interval > burst × (RestartSec + start time)``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from libloop.errors import LoopError

UNIT_NAME = "loop.service"
#: The highest SCHED_FIFO priority the service may give its player process (``LimitRTPRIO=``).
RT_PRIORITY_LIMIT = 20
UNIT_PATH = Path("/etc/systemd/system") / UNIT_NAME

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class ServiceError(LoopError):
    """The systemd unit could not be installed or enabled."""

    code = "service_error"


@dataclass(frozen=True)
class StartLimit:
    """How systemd restarts the service and when it gives up."""

    restart_sec: int = 5
    burst: int = 5
    start_sec: int = 30  # a generous bound on the time one start takes before it can fail

    def interval_sec(self) -> int:
        """A window in which ``burst`` failing starts fit, with 50 % to spare."""
        return math.ceil(self.burst * (self.restart_sec + self.start_sec) * 1.5)


def _quote(arg: str) -> str:
    """Quote one ExecStart argument: systemd splits on spaces and expands ``%`` and ``$``."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not any(c in arg for c in " \t\"'\\;"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _path_setting(path: Path) -> str:
    """A path value for a setting like WorkingDirectory (``%`` must be doubled)."""
    text = str(path).replace("%", "%%")
    if any(c.isspace() for c in text):
        raise ServiceError(
            f"The path {path} contains white space, which systemd settings cannot hold; use another."
        )
    return text


def render_unit(
    *,
    python: Path = Path(sys.executable),
    data_dir: Path,
    user: str,
    config: Path | None = None,
    watchdog_sec: int = 30,
    start_limit: StartLimit | None = None,
    timeout_stop_sec: int = 20,
    groups: Sequence[str] = ("spi", "gpio"),
) -> str:
    """The text of ``loop.service``: ``Type=notify``, watchdog, restart with a start limit.

    Args:
        python: the interpreter of the environment LOOP is installed in (not resolved).
        data_dir: the library's directory; the only path the service may write.
        user: the account the service runs as (never root).
        config: an optional ``config.toml`` passed to ``loop run --config``.
        watchdog_sec: how long systemd waits for ``WATCHDOG=1`` before restarting.
    """
    if not python.is_absolute() or not data_dir.is_absolute():
        raise ServiceError("The interpreter and data directory must be absolute paths for systemd.")
    if watchdog_sec < 5:
        raise ServiceError("A watchdog shorter than 5 s would restart a healthy device; use a longer one.")
    if not user or user == "root" or any(c.isspace() or c in ":/" for c in user):
        raise ServiceError(f"The service must run as an ordinary user, not {user!r}.")
    limit = start_limit or StartLimit()
    command = [str(python), "-m", "loopapp", "run", "--data", str(data_dir)]
    if config is not None:
        command += ["--config", str(config.absolute())]
    exec_start = " ".join(_quote(a) for a in command)
    lines = [
        "[Unit]",
        "Description=LOOP: plays GIFs, pictures and videos on the ILI9341 display",
        "Wants=network-online.target",
        "After=network-online.target",
        f"StartLimitIntervalSec={limit.interval_sec()}",
        f"StartLimitBurst={limit.burst}",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={exec_start}",
        f"User={user}",
        f"SupplementaryGroups={' '.join(groups)}",
        f"WorkingDirectory={_path_setting(data_dir)}",
        "Environment=PYTHONUNBUFFERED=1",
        f"WatchdogSec={watchdog_sec}",
        "Restart=on-failure",
        f"RestartSec={limit.restart_sec}",
        f"TimeoutStartSec={limit.start_sec}",
        f"TimeoutStopSec={timeout_stop_sec}",
        # Hardening that keeps /dev/spidev* and /dev/gpiochip* reachable (no PrivateDevices, no
        # DeviceAllow) and /sys/class/pwm writable for the dimmable backlight: no
        # ProtectKernelTunables, which makes all of /sys read-only. For a service running as an
        # ordinary user it protected little anyway: the only /sys files such a user can write
        # are the ones udev gives to its groups (the gpio group's PWM and GPIO files).
        # The player process asks for SCHED_FIFO (config [player] realtime_priority, 10 by
        # default): this limit lets an ordinary user have it up to this priority, no capability
        # needed. Nothing else in the service asks for it.
        f"LimitRTPRIO={RT_PRIORITY_LIMIT}",
        "NoNewPrivileges=yes",
        "ProtectSystem=full",
        f"ReadWritePaths={_path_setting(data_dir)}",
        "PrivateTmp=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def give_to_user(path: Path, user: str) -> None:
    """Make ``path`` and everything in it that root owns belong to ``user`` (and their group)."""
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ServiceError(f"There is no user named {user!r}; pass an existing one with --user.") from None
    for item in [path, *path.rglob("*")]:
        if item.lstat().st_uid == 0 and entry.pw_uid != 0:
            os.lchown(item, entry.pw_uid, entry.pw_gid)


def install_service(
    *,
    python: Path = Path(sys.executable),
    data_dir: Path,
    user: str,
    config: Path | None = None,
    watchdog_sec: int = 30,
    unit_path: Path = UNIT_PATH,
    run: Runner = subprocess.run,
    euid: Callable[[], int] = os.geteuid,
    chown: Callable[[Path, str], None] | None = None,
) -> Path:
    """Write the unit, reload systemd, and enable and start the service; returns the unit path.

    The data directory is created if needed and handed to ``user`` (this runs as root, but
    the service runs as ``user`` and must be able to write there).

    Raises:
        ServiceError: not root, the unit cannot be written, or systemctl failed.
    """
    if euid() != 0:
        raise ServiceError(f"Run this as root: sudo {python} -m loopapp install-service")
    text = render_unit(python=python, data_dir=data_dir, user=user, config=config, watchdog_sec=watchdog_sec)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        (chown or give_to_user)(data_dir, user)
        tmp = unit_path.with_name(unit_path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(unit_path)
    except OSError as exc:
        raise ServiceError(
            f"Cannot write {unit_path}: {exc.strerror or exc}; check the path and permissions."
        ) from None
    for args in (["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", unit_path.name]):
        try:
            done = run(args, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServiceError(f"Could not run {' '.join(args)} ({exc}); is this a systemd system?") from None
        if done.returncode != 0:
            why = (done.stderr or done.stdout or "").strip().splitlines()
            raise ServiceError(
                f"{' '.join(args)} failed ({why[-1] if why else f'status {done.returncode}'}); "
                f"see journalctl -u {unit_path.name}."
            )
    return unit_path
