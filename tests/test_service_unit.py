"""The generated systemd unit: verified by systemd-analyze with zero warnings, and its arithmetic."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopapp.service import ServiceError, StartLimit, install_service, render_unit

ANALYZE = "/usr/bin/systemd-analyze"


def parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_unit_runs_this_environments_interpreter_unresolved(tmp_path: Path) -> None:
    venv_python = tmp_path / "venv" / "bin" / "python"
    unit = parse(render_unit(python=venv_python, data_dir=tmp_path / "data", user="pi"))
    service = unit["Service"]
    assert service["ExecStart"].startswith(f"{venv_python} -m loopapp run --data {tmp_path / 'data'}")
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["Restart"] == "on-failure" and int(service["WatchdogSec"]) >= 5
    assert service["SupplementaryGroups"] == "spi gpio"
    assert service["ReadWritePaths"] == str(tmp_path / "data")
    assert "PrivateDevices" not in service  # would hide /dev/spidev0.0
    assert "StartLimitBurst" in unit["Unit"] and "StartLimitIntervalSec" in unit["Unit"]
    assert "StartLimitBurst" not in service
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert render_unit(data_dir=tmp_path, user="pi").count(sys.executable) == 1


def test_unit_lets_the_player_process_have_real_time_scheduling(tmp_path: Path) -> None:
    from loopapp.config import PlayerConfig

    service = parse(render_unit(data_dir=tmp_path / "data", user="pi"))["Service"]
    # An ordinary user may ask for SCHED_FIFO up to RLIMIT_RTPRIO: the default priority fits.
    assert int(service["LimitRTPRIO"]) >= PlayerConfig().realtime_priority
    assert "CPUSchedulingPolicy" not in service  # only the player process asks, not the web app


@given(st.integers(1, 60), st.integers(1, 20), st.integers(1, 120))
def test_start_limit_can_trigger(restart_sec: int, burst: int, start_sec: int) -> None:
    limit = StartLimit(restart_sec=restart_sec, burst=burst, start_sec=start_sec)
    assert limit.interval_sec() > burst * (restart_sec + start_sec)


def test_default_start_limit_arithmetic_in_the_rendered_unit(tmp_path: Path) -> None:
    unit = parse(render_unit(python=Path("/usr/bin/python3"), data_dir=tmp_path, user="pi"))
    interval = int(unit["Unit"]["StartLimitIntervalSec"])
    burst = int(unit["Unit"]["StartLimitBurst"])
    restart = int(unit["Service"]["RestartSec"])
    start = int(unit["Service"]["TimeoutStartSec"])
    assert interval > burst * (restart + start)


def test_arguments_with_spaces_and_percent_are_quoted(tmp_path: Path) -> None:
    text = render_unit(python=Path("/opt/loop/bin/python"), data_dir=tmp_path, user="pi",
                       config=Path("/etc/loop/my 100% config.toml"))  # fmt: skip
    assert '--config "/etc/loop/my 100%% config.toml"' in text


@pytest.mark.parametrize("user", ["root", "", "a b"])
def test_bad_users_are_refused(tmp_path: Path, user: str) -> None:
    with pytest.raises(ServiceError):
        render_unit(data_dir=tmp_path, user=user)


@pytest.mark.skipif(
    not Path(ANALYZE).exists(), reason="systemd-analyze is not installed (Debian's systemd package)"
)
def test_unit_passes_systemd_analyze_verify_without_any_warning(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    python = Path(sys.executable)  # an existing executable, as verify checks ExecStart
    text = render_unit(python=python, data_dir=data, user="pi", config=tmp_path / "config.toml")
    unit = tmp_path / "loop.service"
    unit.write_text(text)
    done = subprocess.run(
        [ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, output
    assert output == "", f"systemd-analyze printed warnings:\n{output}"


def test_systemd_analyze_would_catch_a_bad_key(tmp_path: Path) -> None:
    """Guards the test above: verify really reports unknown keys on this machine."""
    if not Path(ANALYZE).exists():
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    unit = tmp_path / "bad.service"
    unit.write_text(
        render_unit(data_dir=tmp_path, user="pi").replace("[Service]\n", "[Service]\nBogusKey=1\n")
    )
    done = subprocess.run(
        [ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "BogusKey" in done.stdout + done.stderr


def test_install_writes_the_unit_and_enables_it(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")

    owners: list[tuple[Path, str]] = []
    target = tmp_path / "loop.service"
    path = install_service(
        data_dir=tmp_path / "data",
        user="pi",
        unit_path=target,
        run=run,
        euid=lambda: 0,
        chown=lambda p, u: owners.append((p, u)),
    )
    assert path == target and "Type=notify" in target.read_text()
    assert calls == [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", "loop.service"]]
    # Run as root, but the data directory goes to the user the service runs as.
    assert owners == [(tmp_path / "data", "pi")] and (tmp_path / "data").is_dir()


def test_install_refuses_an_unknown_user(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="no user named"):
        install_service(
            data_dir=tmp_path / "data", user="no-such-user-here", unit_path=tmp_path / "x", euid=lambda: 0
        )


def test_install_needs_root(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"Run this as root: sudo .* -m loopapp install-service"):
        install_service(data_dir=tmp_path, user="pi", unit_path=tmp_path / "x", euid=lambda: 1000)


def test_install_reports_systemctl_failure(tmp_path: Path) -> None:
    def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 1, "", "Failed to connect to bus\n")

    with pytest.raises(ServiceError, match="Failed to connect to bus"):
        install_service(
            data_dir=tmp_path,
            user="pi",
            unit_path=tmp_path / "x",
            run=run,
            euid=lambda: 0,
            chown=lambda p, u: None,
        )


def test_the_sandbox_leaves_the_pwm_files_writable(tmp_path: Path) -> None:
    # ProtectKernelTunables=yes makes all of /sys read-only, which would leave the backlight
    # at full brightness: the dimmable backlight writes /sys/class/pwm.
    service = parse(render_unit(data_dir=tmp_path / "data", user="pi"))["Service"]
    assert "ProtectKernelTunables" not in service
    assert "DeviceAllow" not in service and "PrivateDevices" not in service
