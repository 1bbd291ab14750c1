"""Resource monitor: firmware flags decoded, thresholds judged, uploads refused when the disk is full."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.errors import StorageFull
from libloop.health import ResourceMonitor, Thresholds, ThrottleFlags, read_throttle
from libloop.health.resources import parse_throttled, read_temperature

MB = 2**20


def no_vcgencmd(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    raise FileNotFoundError(args[0])


def disk(free_mb: int) -> object:
    return lambda path: SimpleNamespace(free=free_mb * MB, total=30_000 * MB)


def monitor(tmp_path: Path, free_mb: int = 5000, **kwargs: object) -> ResourceMonitor:
    return ResourceMonitor(tmp_path / "data", sysfs_root=tmp_path / "sys", run=no_vcgencmd,
                           disk_usage=disk(free_mb), **kwargs)  # type: ignore[arg-type]  # fmt: skip


def test_upload_refused_when_the_reserve_would_be_crossed(tmp_path: Path) -> None:
    mon = monitor(tmp_path, free_mb=300, thresholds=Thresholds(disk_reserve_mb=200))
    mon.check_upload(50 * MB)
    with pytest.raises(StorageFull) as info:
        mon.check_upload(150 * MB)
    assert str(info.value) == (
        "The SD card is nearly full (300 MB free); delete some media before uploading more."
    )
    assert info.value.code == "storage_full"


def test_known_throttle_words() -> None:
    flags = ThrottleFlags.decode(0x50005, "vcgencmd")
    assert flags.under_voltage and flags.throttled and not flags.freq_capped
    assert flags.under_voltage_occurred and flags.throttled_occurred and not flags.soft_temp_limit_occurred
    assert ThrottleFlags.decode(0, "firmware").problems() == []
    assert parse_throttled("throttled=0x50000\n") == 0x50000
    assert parse_throttled("50005\n") == 0x50005


@given(st.integers(0, 0xFFFFF))
def test_decoding_matches_the_bits(raw: int) -> None:
    flags = ThrottleFlags.decode(raw, "x")
    assert flags.under_voltage == bool(raw & 1) and flags.soft_temp_limit == bool(raw & 8)
    assert flags.under_voltage_occurred == bool(raw & 0x10000)
    assert flags.soft_temp_limit_occurred == bool(raw & 0x80000)
    assert parse_throttled(f"throttled={raw:#x}") == raw


def test_throttle_sources_in_order_and_never_the_deprecated_firmware_file(tmp_path: Path) -> None:
    sys = tmp_path / "sys"
    fw = sys / "devices/platform/soc/soc:firmware"
    fw.mkdir(parents=True)
    (fw / "get_throttled").write_text("50005\n")  # deprecated: the kernel WARNs when it is read
    assert read_throttle(sys, run=no_vcgencmd) is None

    def vcgencmd(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert args == ["vcgencmd", "get_throttled"] and kwargs["timeout"]
        return subprocess.CompletedProcess(args, 0, "throttled=0x4\n", "")

    flags = read_throttle(sys, run=vcgencmd)
    assert flags is not None and flags.source == "vcgencmd" and flags.throttled
    hwmon = sys / "class/hwmon/hwmon0"
    hwmon.mkdir(parents=True)
    (hwmon / "name").write_text("rpi_volt\n")
    (hwmon / "in0_lcrit_alarm").write_text("1\n")
    flags = read_throttle(sys, run=vcgencmd)  # the monitor's order: the hwmon file first
    assert flags is not None and flags.source == "rpi_volt" and flags.under_voltage
    flags = read_throttle(sys, run=vcgencmd, order=("vcgencmd", "rpi_volt"))  # doctor's
    assert flags is not None and flags.source == "vcgencmd"


def test_temperature_prefers_the_cpu_zone(tmp_path: Path) -> None:
    for i, (kind, milli) in enumerate([("gpu-thermal", "40000"), ("cpu-thermal", "61234")]):
        zone = tmp_path / f"sys/class/thermal/thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind)
        (zone / "temp").write_text(milli)
    assert read_temperature(tmp_path / "sys") == pytest.approx(61.234)
    assert read_temperature(tmp_path / "nothing") is None


def test_sample_levels(tmp_path: Path) -> None:
    assert monitor(tmp_path, free_mb=5000).sample().level in ("ok", "warning")  # memory depends on the host
    low = monitor(tmp_path, free_mb=100).sample()
    assert low.level == "critical" and any("disk nearly full" in p for p in low.problems)
    zone = tmp_path / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("90000")
    mon = monitor(
        tmp_path, free_mb=5000, thresholds=Thresholds(memory_warning_percent=101, memory_critical_percent=101)
    )
    hot = mon.sample()
    assert hot.level == "critical" and hot.temperature_c == 90.0
    snap = mon.snapshot()
    assert snap["level"] == "critical" and snap["disk_free_mb"] == 5000


def test_runs_as_a_periodic_component(tmp_path: Path) -> None:
    mon = monitor(tmp_path)
    assert mon.snapshot()["level"] == "unknown"
    assert not mon.liveness().alive and not mon.essential
    mon.run_once()
    assert mon.liveness().alive and mon.latest is not None
