"""loop doctor against fake /dev and /sys trees: each problem found, each with its fix."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from loopapp.doctor import Check, format_checks, run_checks


def fake_run(active: str = "active", throttled: str | None = None):  # type: ignore[no-untyped-def]
    def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if args[0] == "systemctl":
            return subprocess.CompletedProcess(args, 0 if active == "active" else 3, active + "\n", "")
        if throttled is None:
            raise FileNotFoundError(args[0])
        return subprocess.CompletedProcess(args, 0, f"throttled={throttled}\n", "")

    return run


def make_pi(
    root: Path, *, bufsiz: int = 65536, spi: bool = True, label: str = "pinctrl-bcm2711"
) -> tuple[Path, Path]:
    dev, sys = root / "dev", root / "sys"
    dev.mkdir()
    if spi:
        (dev / "spidev0.0").touch()
    (dev / "gpiochip0").touch()
    params = sys / "module/spidev/parameters"
    params.mkdir(parents=True)
    params.joinpath("bufsiz").write_text(f"{bufsiz}\n")
    chip = sys / "bus/gpio/devices/gpiochip0"
    chip.mkdir(parents=True)
    chip.joinpath("label").write_text(label + "\n")
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
