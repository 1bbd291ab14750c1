"""loop doctor against fake /dev and /sys trees: each problem found, each with its fix."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from loopapp.doctor import Check, format_checks, report, run_checks
from sim.pwm import PI4_PWM, PI5_PWM, FakePwmSysfs

PI4 = "Raspberry Pi 4 Model B Rev 1.4"


def fake_run(active: str = "active", throttled: str | None = None):  # type: ignore[no-untyped-def]
    def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if args[0] == "systemctl":
            return subprocess.CompletedProcess(args, 0 if active == "active" else 3, active + "\n", "")
        if throttled is None:
            raise FileNotFoundError(args[0])
        return subprocess.CompletedProcess(args, 0, f"throttled={throttled}\n", "")

    return run


def make_pi(
    root: Path, *, bufsiz: int = 65536, spi: bool = True, label: str = "pinctrl-bcm2711", model: str = PI4
) -> tuple[Path, Path]:
    """/dev and /sys as a 6.6+ kernel lays them out (the legacy GPIO class entry named by base)."""
    dev, sys = root / "dev", root / "sys"
    dev.mkdir()
    if spi:
        (dev / "spidev0.0").touch()
    (dev / "gpiochip0").touch()  # a plain file: libgpiod and the chip-info ioctl both fail on it
    params = sys / "module/spidev/parameters"
    params.mkdir(parents=True)
    params.joinpath("bufsiz").write_text(f"{bufsiz}\n")
    parent = sys / "devices/platform/soc/fe200000.gpio"
    (parent / "gpiochip0").mkdir(parents=True)
    (parent / "gpio/gpiochip512").mkdir(parents=True)
    (parent / "gpio/gpiochip512/label").write_text(label + "\n")
    (sys / "bus/gpio/devices").mkdir(parents=True)
    (sys / "bus/gpio/devices/gpiochip0").symlink_to(parent / "gpiochip0")
    (root / "model").write_bytes(model.encode() + b"\0")
    return dev, sys


def checks(tmp_path: Path, dev: Path, sys: Path, **kwargs: object) -> dict[str, Check]:
    options: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "dev_root": dev,
        "sysfs_root": sys,
        "user": "pi",
        "run": fake_run(),
        "access": lambda p: True,
        "groups": {"spi", "gpio"},
        "find_spec": lambda name: object(),
        "disk_usage": lambda path: SimpleNamespace(free=10_000 * 2**20, total=30_000 * 2**20),
        "model_path": dev.parent / "model",
        "pwm_files": FakePwmSysfs([PI4_PWM], root=sys / "class/pwm"),
    }
    options.update(kwargs)
    return {c.name: c for c in run_checks(**options)}  # type: ignore[arg-type]


def test_healthy_pi_passes_every_check(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path)
    result = checks(tmp_path, dev, sys)
    assert all(c.ok for c in result.values()), format_checks(list(result.values()))
    assert format_checks(list(result.values())).endswith("All checks passed.")


def test_spi_disabled(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path, spi=False)
    spi = checks(tmp_path, dev, sys)["SPI enabled"]
    assert (
        not spi.ok and spi.fix and "raspi-config nonint do_spi 0" in spi.fix and "dtparam=spi=on" in spi.fix
    )


def test_small_bufsiz(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path, bufsiz=4096)
    check = checks(tmp_path, dev, sys)["spidev bufsiz"]
    assert not check.ok and "38 transfers" in check.detail
    assert check.fix and "spidev.bufsiz=65536" in check.fix and "cmdline.txt" in check.fix


def test_permission_denied_names_the_nodes_and_the_groups(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path)
    check = checks(tmp_path, dev, sys, access=lambda p: p.name != "spidev0.0", groups=set())[
        "device permissions"
    ]
    assert (
        not check.ok and "spidev0.0" in check.detail and check.fix and "usermod -aG spi,gpio pi" in check.fix
    )


def test_gpio_chip_by_label(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path, label="pinctrl-rp1")
    assert checks(tmp_path, dev, sys)["GPIO chip"].ok
    wrong = checks(tmp_path, dev, sys, gpio_chip="gpio-brcmstb@107d508500")["GPIO chip"]
    assert not wrong.ok and "gpiochip0=pinctrl-rp1" in wrong.detail and wrong.fix


def test_missing_extra_service_disk_and_power(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path)
    result = checks(
        tmp_path, dev, sys,
        find_spec=lambda name: None if name == "gpiod" else object(),
        run=fake_run("inactive", throttled="0x50005"),
        disk_usage=lambda path: SimpleNamespace(free=50 * 2**20, total=30_000 * 2**20),
    )  # fmt: skip
    assert not result["pi extra"].ok and "libloop[pi]" in (result["pi extra"].fix or "")
    assert not result["service"].ok and "install-service" in (result["service"].fix or "")
    assert not result["disk space"].ok and "50 MB" in result["disk space"].detail
    assert not result["power"].ok and "under-voltage detected now" in result["power"].detail
    report = format_checks(list(result.values()))
    assert "4 problems found." in report and report.count("fix:") == 4


@pytest.mark.parametrize("state", ["failed", "activating"])
def test_service_states(tmp_path: Path, state: str) -> None:
    dev, sys = make_pi(tmp_path)
    check = checks(tmp_path, dev, sys, run=fake_run(state))["service"]
    assert not check.ok and state in check.detail and check.fix


def test_the_gpio_label_is_found_next_to_the_chip_on_new_kernels(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path, label="pinctrl-rp1")
    check = checks(tmp_path, dev, sys)["GPIO chip"]
    assert check.ok and check.detail == "gpiochip0 (pinctrl-rp1)"


@pytest.mark.parametrize(
    ("model", "clock"),
    [
        (PI4, "62.5 MHz"),
        ("Raspberry Pi 5 Model B Rev 1.0", "50 MHz"),
        ("Raspberry Pi Zero 2 W Rev 1.0", "50 MHz"),
    ],
)
def test_the_real_spi_clock_is_reported(tmp_path: Path, model: str, clock: str) -> None:
    dev, sys = make_pi(tmp_path, model=model)
    check = checks(tmp_path, dev, sys)["SPI clock"]
    assert check.ok and f"64 MHz requested runs at {clock}" in check.detail and "--spi-sweep" in check.detail


def test_a_measured_core_clock_wins_over_the_usual_one(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path, model="Raspberry Pi 3 Model B Rev 1.2")

    def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if args[:2] == ["vcgencmd", "measure_clock"]:
            return subprocess.CompletedProcess(args, 0, "frequency(1)=250000000\n", "")  # enable_uart=1
        return fake_run()(args, **kwargs)

    check = checks(tmp_path, dev, sys, run=run)["SPI clock"]
    assert "runs at 62.5 MHz" in check.detail and "250 MHz, not the usual 400 MHz" in check.detail


def test_missing_pwm_says_which_line_to_add(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path)
    check = checks(tmp_path, dev, sys, pwm_files=FakePwmSysfs([], root=sys / "class/pwm"))["backlight PWM"]
    assert not check.ok and "on/off" in check.detail
    assert check.fix and "dtoverlay=pwm,pin=18,func=2" in check.fix and "config.txt" in check.fix
    pi5 = FakePwmSysfs([("1f0009c000.pwm", 4), PI5_PWM], root=sys / "class/pwm")
    found = checks(tmp_path, dev, sys, pwm_files=pi5)["backlight PWM"]
    assert found.ok and "pwmchip1 channel 2" in found.detail
    locked = FakePwmSysfs([PI4_PWM], root=sys / "class/pwm")
    locked.locked = {"pwmchip0/export"}
    denied = checks(tmp_path, dev, sys, pwm_files=locked)["backlight PWM"]
    assert not denied.ok and denied.fix and "usermod -aG gpio pi" in denied.fix


def test_a_degraded_running_device_is_a_problem_with_a_fix(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path)
    spi = {"degraded": True, "reason": "transfers over 64 bytes time out", "max_transfer": 64}
    check = checks(tmp_path, dev, sys, device_spi=spi)["SPI transfers"]
    assert not check.ok and "64 bytes" in check.detail and check.fix and "full-upgrade" in check.fix
    assert "SPI transfers" not in checks(tmp_path, dev, sys)  # no device running: no finding


def test_the_json_report_has_every_finding_with_its_fix_and_the_real_clock(tmp_path: Path) -> None:
    dev, sys = make_pi(tmp_path, spi=False)
    found = list(checks(tmp_path, dev, sys).values())
    body = report(found, model_path=tmp_path / "model", run=fake_run())
    assert body["ok"] is False and body["problems"] == sum(not c.ok for c in found)
    findings = body["findings"]
    assert isinstance(findings, list)
    assert all(set(f) == {"check", "ok", "detail", "fix"} for f in findings)
    assert all(f["fix"] for f in findings if not f["ok"])
    spi = body["spi"]
    assert isinstance(spi, dict) and spi["clock_hz"] == 62_500_000 and spi["read_clock_hz"] == 5_952_380


def test_loop_doctor_json_prints_the_report_and_fails_when_there_are_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from loopapp.cli import main

    status = main(["doctor", "--json", "--data", str(tmp_path / "data")])
    out, err = capsys.readouterr()
    body = json.loads(out)
    assert status == (0 if body["ok"] else 1)
    assert {f["check"] for f in body["findings"]} >= {"SPI enabled", "SPI clock", "backlight PWM"}
    assert "clock_hz" in body["spi"]
    if not body["ok"]:
        assert err.count("\n") == 1 and "listed in the report" in err
