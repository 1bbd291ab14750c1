"""Brightness 0-100 through hardware PWM, on every Pi's layout, over a model of the kernel's files."""

from __future__ import annotations

import errno
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from libloop.errors import DeviceNotFound, DevicePermissionError
from libloop.transport.backlight import AutoBacklight, SysfsPwmBacklight
from libloop.transport.pwm import PWM_ROOT, RealSysfs, find_pwm, overlay_line
from loopapp.config import load_config
from loopapp.device import Device
from loopapp.hardware import sim_hardware
from sim.pins import FakePin
from sim.pwm import PI4_PWM, PI5_PWM, FakePwmSysfs
from sim.wiring import SimWiring
from tests.e2e_helpers import wait_until

PI5_FAN = ("1f0009c000.pwm", 4)  # RP1's second block, bound to the fan


def no_sleep(seconds: float) -> None:
    pass


def test_gpio18_is_channel_0_of_the_soc_block_on_a_pi_4() -> None:
    fs = FakePwmSysfs([PI4_PWM])
    light = SysfsPwmBacklight(gpio=18, files=fs, sleep=no_sleep)
    light.open()
    assert (light.chip_dir, light.channel) == (PWM_ROOT / "pwmchip0", 0)
    light.set_level(40)
    assert fs.duty(0, 0) == pytest.approx(0.40)
    light.close()
    assert fs.duty(0, 0) == 0.0


def test_gpio18_is_channel_2_of_rp1_pwm0_on_a_pi_5_whatever_its_chip_number() -> None:
    fs = FakePwmSysfs([PI5_FAN, PI5_PWM])  # the fan's block probed first: pwmchip0 is not ours
    light = SysfsPwmBacklight(gpio=18, files=fs, sleep=no_sleep)
    light.open()
    assert (light.chip_dir.name, light.channel) == ("pwmchip1", 2)
    light.set_level(75)
    assert fs.duty(1, 2) == pytest.approx(0.75) and fs.duty(0, 2) == 0.0


def test_a_channel_another_program_left_is_taken_over_in_an_order_the_kernel_accepts() -> None:
    fs = FakePwmSysfs([PI4_PWM])
    fs.set_by_another_program(0, 0, period=20_000_000, duty=15_000_000, enabled=True, polarity="inversed")
    with pytest.raises(OSError) as info:  # the naive order: a period shorter than the duty cycle
        fs.write(PWM_ROOT / "pwmchip0/pwm0/period", "1000000\n")
    assert info.value.errno == errno.EINVAL
    light = SysfsPwmBacklight(gpio=18, files=fs, sleep=no_sleep)
    light.open()
    light.set_level(10)
    assert fs.read(PWM_ROOT / "pwmchip0/pwm0/polarity") == "normal\n"
    assert fs.duty() == pytest.approx(0.10)


def test_the_fake_refuses_what_the_kernel_refuses() -> None:
    fs = FakePwmSysfs([PI4_PWM])
    root = PWM_ROOT / "pwmchip0"

    def errno_of(path: Path, text: str) -> int:
        try:
            fs.write(path, text)
        except OSError as exc:
            return exc.errno or 0
        return 0

    assert errno_of(root / "pwm0/period", "1000") == errno.ENOENT  # not exported yet
    assert errno_of(root / "export", "2") == errno.ENODEV  # two channels: 0 and 1
    assert errno_of(root / "export", "0") == 0
    assert errno_of(root / "export", "0") == errno.EBUSY
    assert errno_of(root / "pwm0/duty_cycle", "0") == errno.EINVAL  # period still 0
    assert errno_of(root / "pwm0/period", "1000") == 0
    assert errno_of(root / "pwm0/duty_cycle", "1001") == errno.EINVAL
    assert errno_of(root / "pwm0/enable", "1") == 0
    assert errno_of(root / "pwm0/polarity", "inversed") == errno.EBUSY  # only while disabled
    assert errno_of(root / "pwm0/enable", "2") == errno.EINVAL


def test_no_pwm_chip_means_on_off_with_the_overlay_line_to_add() -> None:
    fs = FakePwmSysfs([])
    with pytest.raises(DeviceNotFound, match=r"dtoverlay=pwm,pin=18,func=2"):
        SysfsPwmBacklight(gpio=18, files=fs, sleep=no_sleep).open()
    pin = FakePin("backlight")
    light = AutoBacklight(18, pin, files=fs, sleep=no_sleep)
    light.open()
    light.set_level(30)
    assert not light.dimmable and pin.value is True
    assert light.why is not None and "dtoverlay=pwm,pin=18,func=2" in light.why
    assert (
        overlay_line(19) == "dtoverlay=pwm,pin=19,func=2"
        and overlay_line(12) == "dtoverlay=pwm,pin=12,func=4"
    )
    assert overlay_line(24) is None


def test_files_udev_has_not_handed_over_are_a_permission_error_naming_the_gpio_group() -> None:
    fs = FakePwmSysfs([PI4_PWM])
    fs.locked = {"pwmchip0/export"}
    waits: list[float] = []
    with pytest.raises(DevicePermissionError, match="gpio group"):
        SysfsPwmBacklight(gpio=18, files=fs, sleep=waits.append).open()
    fs.locked = {"pwmchip0/pwm0/period", "pwmchip0/pwm0/duty_cycle"}
    light = AutoBacklight(18, FakePin("bl"), files=fs, sleep=waits.append)
    light.open()  # exported, waited for udev for a second, then fell back to on/off
    assert sum(waits) == pytest.approx(1.0) and not light.dimmable
    assert light.why is not None and "permission denied" in light.why


def test_autobacklight_dims_when_pwm_is_there() -> None:
    fs = FakePwmSysfs([PI4_PWM])
    pin = FakePin("bl")
    light = AutoBacklight(18, pin, files=fs, sleep=no_sleep)
    light.open()
    light.set_level(55)
    assert light.dimmable and fs.duty() == pytest.approx(0.55)
    assert not pin.opened  # the line stays with the PWM function


def test_the_real_files_are_found_by_device_not_by_number(tmp_path: Path) -> None:
    devices = tmp_path / "devices"
    for name in ("1f0009c000.pwm", "1f00098000.pwm"):
        (devices / name / "pwm").mkdir(parents=True)
    root = tmp_path / "class"
    root.mkdir()
    for number, name in enumerate(("1f0009c000.pwm", "1f00098000.pwm")):
        chip = devices / name / "pwm" / f"pwmchip{number}"
        chip.mkdir()
        os.symlink(devices / name, chip / "device")
        os.symlink(chip, root / f"pwmchip{number}")
    found = find_pwm(18, root=root, files=RealSysfs())
    assert found is not None and (found.chip_dir.name, found.channel) == ("pwmchip1", 2)
    assert find_pwm(18, root=tmp_path / "none") is None
    RealSysfs().write(tmp_path / "x", "5\n")
    assert RealSysfs().read(tmp_path / "x") == "5\n"


def test_simulated_brightness_is_the_pwm_duty_and_dims_the_glass() -> None:
    wiring = SimWiring()
    display = wiring.display(brightness=100)
    display.open()
    display.fill((200, 200, 200))
    assert wiring.pwm is not None and wiring.pwm.duty() == 1.0
    full = np.asarray(wiring.snapshot()).astype(int)
    display.set_brightness(25)
    assert wiring.pwm.duty() == pytest.approx(0.25)
    assert np.abs(np.asarray(wiring.snapshot()).astype(int) - (full * 25 + 50) // 100).max() == 0
    display.close()
    assert wiring.pwm.duty() == 0.0


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Device]:
    config = load_config(None, data_dir=tmp_path / "data")
    # The test reads the PWM files of the simulated wiring in this process.
    dev = Device(
        config, sim_hardware(config), host="127.0.0.1", port=0, import_worker="inline", player_mode="thread"
    )
    dev.start()
    try:
        yield dev
    finally:
        dev.stop()


def test_brightness_from_the_api_sets_the_pwm_duty(device: Device) -> None:
    request = urllib.request.Request(
        f"{device.server.url}/api/player",
        data=json.dumps({"action": "brightness", "value": 30}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-Loop-Request": "1"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    pwm = device.hardware.wiring.pwm
    wait_until(lambda: pwm.duty() == pytest.approx(0.30), 10, "the PWM duty to follow the brightness")
    assert device.health()["display"]["brightness"] == 30
