"""Resource monitor: CPU, memory, disk, temperature and the Pi's power and throttling flags.

Thresholds act, not only report: :meth:`ResourceMonitor.check_upload` refuses an upload that
would leave less than the reserve free on the data directory's disk, so a full SD card can
never corrupt the library. The Pi's power flags come from the ``rpi_volt`` hwmon's
``in0_lcrit_alarm`` (under-voltage now; the kernel's supported interface, and a file read)
or from ``vcgencmd get_throttled`` (every flag, since boot too; a process per call, so the
periodic monitor asks it only when there is no hwmon, while ``loop doctor`` asks it first).
``/sys/devices/platform/soc/soc:firmware/get_throttled`` is never read: it is deprecated and
the kernel logs a WARNING with a backtrace the first time it is read. The sysfs root and the
subprocess runner are injectable for tests.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from libloop.clock import Clock, MonotonicClock
from libloop.errors import StorageFull
from libloop.health.component import PeriodicTask

MB = 1024 * 1024

Runner = Callable[..., "subprocess.CompletedProcess[str]"]

# Bits of the firmware's get_throttled word.
_NOW = {0: "under_voltage", 1: "freq_capped", 2: "throttled", 3: "soft_temp_limit"}


@dataclass(frozen=True)
class ThrottleFlags:
    """The Pi firmware's power and throttling flags, decoded."""

    raw: int
    source: str
    under_voltage: bool = False
    freq_capped: bool = False
    throttled: bool = False
    soft_temp_limit: bool = False
    under_voltage_occurred: bool = False
    freq_capped_occurred: bool = False
    throttled_occurred: bool = False
    soft_temp_limit_occurred: bool = False

    @classmethod
    def decode(cls, raw: int, source: str) -> ThrottleFlags:
        """Bits 0-3: the condition now; bits 16-19: it happened since boot."""
        flags: dict[str, bool] = {}
        for bit, name in _NOW.items():
            flags[name] = bool(raw >> bit & 1)
            flags[f"{name}_occurred"] = bool(raw >> (bit + 16) & 1)
        return cls(raw, source, **flags)

    def problems(self) -> list[str]:
        """One phrase per active condition, for people."""
        out = []
        if self.under_voltage:
            out.append("under-voltage now: use a better power supply or cable")
        elif self.under_voltage_occurred:
            out.append("under-voltage happened since boot: the power supply is marginal")
        if self.throttled or self.soft_temp_limit:
            out.append("the CPU is being throttled")
        return out


def parse_throttled(text: str) -> int:
    """Parse ``throttled=0x50005`` (vcgencmd) or ``50005`` (sysfs, hex without prefix)."""
    value = text.strip().rpartition("=")[2].strip()
    try:
        return int(value, 16)
    except ValueError:
        raise ValueError(f"cannot read the throttling flags from {text!r}") from None


def read_throttle(
    sysfs_root: Path = Path("/sys"),
    *,
    run: Runner = subprocess.run,
    vcgencmd: str = "vcgencmd",
    order: tuple[str, ...] = ("rpi_volt", "vcgencmd"),
) -> ThrottleFlags | None:
    """The Pi's power flags from the first source in ``order`` that answers, or None off a Pi."""
    for source in order:
        flags = _from_vcgencmd(run, vcgencmd) if source == "vcgencmd" else _from_hwmon(sysfs_root)
        if flags is not None:
            return flags
    return None


def _from_vcgencmd(run: Runner, vcgencmd: str) -> ThrottleFlags | None:
    try:
        done = run([vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=3, check=False)
        if done.returncode == 0:
            return ThrottleFlags.decode(parse_throttled(done.stdout), "vcgencmd")
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return None


def _from_hwmon(sysfs_root: Path) -> ThrottleFlags | None:
    for hwmon in sorted((sysfs_root / "class/hwmon").glob("hwmon*")):
        try:
            if (hwmon / "name").read_text().strip() != "rpi_volt":
                continue
            alarm = (hwmon / "in0_lcrit_alarm").read_text().strip() == "1"
        except OSError:
            continue
        return ThrottleFlags(int(alarm), "rpi_volt", under_voltage=alarm)
    return None


def read_temperature(sysfs_root: Path = Path("/sys")) -> float | None:
    """CPU temperature in °C from the thermal zones (the CPU's if named), or psutil's sensors."""
    zones = sorted((sysfs_root / "class/thermal").glob("thermal_zone*"))
    readings: list[tuple[bool, float]] = []
    for zone in zones:
        try:
            kind = (zone / "type").read_text().strip() if (zone / "type").exists() else ""
            readings.append(("cpu" in kind, int((zone / "temp").read_text().strip()) / 1000))
        except (OSError, ValueError):
            continue
    if readings:
        return max(readings, key=lambda r: r[0])[1]
    if sysfs_root != Path("/sys") or not hasattr(psutil, "sensors_temperatures"):
        return None
    sensors = psutil.sensors_temperatures()
    for name in ("cpu_thermal", "coretemp", "k10temp", *sensors):
        if sensors.get(name):
            return float(sensors[name][0].current)
    return None


@dataclass(frozen=True)
class Thresholds:
    """Levels at which a resource becomes a warning or critical."""

    disk_reserve_mb: int = 200  # uploads are refused below this
    disk_warning_mb: int = 500
    memory_warning_percent: float = 90.0
    memory_critical_percent: float = 97.0
    temperature_warning_c: float = 75.0
    temperature_critical_c: float = 82.0


@dataclass(frozen=True)
class ResourceSample:
    """One measurement and its verdict."""

    time: float
    cpu_percent: float
    memory_percent: float
    memory_available_mb: int
    process_rss_mb: int
    disk_free_mb: int
    disk_total_mb: int
    temperature_c: float | None
    throttle: ThrottleFlags | None
    level: str  # ok, warning or critical
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used in the health snapshot."""
        return asdict(self)


def _existing(path: Path) -> Path:
    """The path itself or its nearest existing parent (the data dir may not exist yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


class ResourceMonitor(PeriodicTask):
    """Samples resources every ``interval`` seconds (a non-essential component).

    Args:
        data_dir: the directory whose disk is watched.
        thresholds: the warning and critical levels.
        sysfs_root: ``/sys``, or a fake tree in tests.
        run: the subprocess runner (for ``vcgencmd``).
        disk_usage: ``psutil.disk_usage``, or a fake in tests.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        thresholds: Thresholds | None = None,
        clock: Clock | None = None,
        interval: float = 10.0,
        sysfs_root: Path = Path("/sys"),
        run: Runner = subprocess.run,
        disk_usage: Callable[[str], Any] = psutil.disk_usage,
    ) -> None:
        super().__init__("resources", self.sample, clock=clock or MonotonicClock(), interval=interval)
        self.data_dir = Path(data_dir)
        self.thresholds = thresholds or Thresholds()
        self.sysfs_root = sysfs_root
        self._run = run
        self._disk_usage = disk_usage
        self.latest: ResourceSample | None = None
        self._process = psutil.Process()

    def disk_free_bytes(self) -> tuple[int, int]:
        """(free, total) bytes on the data directory's disk."""
        usage = self._disk_usage(str(_existing(self.data_dir)))
        return int(usage.free), int(usage.total)

    def check_upload(self, size_bytes: int) -> None:
        """Refuse an upload that would leave less than the reserve free.

        Raises:
            StorageFull: with the free space in MB and what to do.
        """
        free, _ = self.disk_free_bytes()
        if free - max(size_bytes, 0) < self.thresholds.disk_reserve_mb * MB:
            raise StorageFull(free // MB)

    def sample(self) -> ResourceSample:
        """Measure everything once, judge it against the thresholds, and keep the result."""
        t = self.thresholds
        memory = psutil.virtual_memory()
        free, total = self.disk_free_bytes()
        temperature = read_temperature(self.sysfs_root)
        throttle = read_throttle(self.sysfs_root, run=self._run)
        warnings: list[str] = []
        critical: list[str] = []
        free_mb = free // MB
        if free_mb < t.disk_reserve_mb:
            critical.append(f"disk nearly full ({free_mb} MB free): uploads are refused")
        elif free_mb < t.disk_warning_mb:
            warnings.append(f"disk space low ({free_mb} MB free)")
        if memory.percent >= t.memory_critical_percent:
            critical.append(f"memory {memory.percent:.0f}% used")
        elif memory.percent >= t.memory_warning_percent:
            warnings.append(f"memory {memory.percent:.0f}% used")
        if temperature is not None and temperature >= t.temperature_critical_c:
            critical.append(f"CPU at {temperature:.0f} °C")
        elif temperature is not None and temperature >= t.temperature_warning_c:
            warnings.append(f"CPU at {temperature:.0f} °C")
        if throttle is not None:
            (critical if throttle.under_voltage else warnings).extend(throttle.problems())
        sample = ResourceSample(
            time=time.time(),
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_percent=float(memory.percent),
            memory_available_mb=int(memory.available) // MB,
            process_rss_mb=int(self._process.memory_info().rss) // MB,
            disk_free_mb=free_mb,
            disk_total_mb=total // MB,
            temperature_c=temperature,
            throttle=throttle,
            level="critical" if critical else "warning" if warnings else "ok",
            problems=critical + warnings,
        )
        self.latest = sample
        return sample

    def snapshot(self) -> dict[str, Any]:
        """The latest sample as a dict (``{"level": "unknown"}`` before the first)."""
        latest = self.latest
        return {"level": "unknown", "problems": []} if latest is None else latest.to_dict()
