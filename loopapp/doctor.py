"""``loop doctor``: checks what a Pi needs to run LOOP, and says how to fix each problem.

Every check is a pure reading of the system (files under ``/dev`` and ``/sys``, group
membership, ``systemctl is-active``, ``vcgencmd``); the roots and the runner are injectable
so the checks are tested against a fake tree. ``report()`` is the ``--json`` shape: every
finding as ``{"check", "ok", "detail", "fix"}`` and the SPI clock this board really runs.
"""

from __future__ import annotations

import contextlib
import grp
import importlib.util
import os
import pwd
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from libloop.health.resources import MB, Thresholds, read_throttle
from libloop.transport.pwm import SysfsFiles
from libloop.transport.spiclock import MODEL_PATH, read_model
from libloop.transport.spidev_bus import READ_SPEED_HZ
from libloop.wording import plural
from loopapp.config import MqttConfig
from loopapp.doctor_pi import Check, check_clock, check_link, check_pwm, gpio_chip_label, spi_clock_info

__all__ = ["Check", "format_checks", "report", "run_checks"]

Runner = Callable[..., "subprocess.CompletedProcess[str]"]

BUFSIZ_WANTED = 65536


def _check_spi(dev: Path, bus: int, device: int) -> Check:
    node = dev / f"spidev{bus}.{device}"
    if node.exists():
        return Check("SPI enabled", True, f"{node} exists")
    return Check(
        "SPI enabled",
        False,
        f"{node} does not exist",
        "Enable SPI: sudo raspi-config nonint do_spi 0, or add dtparam=spi=on to /boot/firmware/config.txt, "
        "then reboot",
    )


def _check_bufsiz(sysfs: Path) -> Check:
    path = sysfs / "module/spidev/parameters/bufsiz"
    try:
        value = int(path.read_text().strip())
    except (OSError, ValueError):
        return Check("spidev bufsiz", False, f"cannot read {path} (the spidev module is not loaded)",
                     "Enable SPI (see above); the spidev module loads with it")  # fmt: skip
    if value >= BUFSIZ_WANTED:
        return Check("spidev bufsiz", True, f"{value} bytes per transfer")
    return Check(
        "spidev bufsiz",
        False,
        f"{value} bytes per transfer: a frame needs {-(-153600 // value)} transfers",
        f"Add spidev.bufsiz={BUFSIZ_WANTED} to the single line of /boot/firmware/cmdline.txt, then reboot",
    )


def _user_groups(user: str) -> set[str]:
    names = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
    with contextlib.suppress(KeyError):
        names.add(grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name)
    return names


def _check_access(
    dev: Path, bus: int, device: int, user: str, access: Callable[[Path], bool], groups: set[str]
) -> Check:
    nodes = [dev / f"spidev{bus}.{device}", *sorted(dev.glob("gpiochip*"))]
    present = [n for n in nodes if n.exists()]
    denied = [str(n) for n in present if not access(n)]
    missing_groups = [g for g in ("spi", "gpio") if g not in groups]
    if not present:
        return Check("device permissions", False, f"no SPI or GPIO device nodes in {dev}",
                     "Run this on the Pi with SPI enabled")  # fmt: skip
    if not denied:
        detail = f"read/write on {plural(len(present), 'device node')}"
        if missing_groups and user != "root":
            detail += f" (note: {user} is not in {', '.join(missing_groups)}; the service adds them itself)"
        return Check("device permissions", True, detail)
    fix = f"sudo usermod -aG spi,gpio {user}, then log out and back in"
    return Check("device permissions", False, f"{user} cannot read and write {', '.join(denied)}", fix)


def _check_gpio(dev: Path, sysfs: Path, wanted: str) -> Check:
    chips = sorted(dev.glob("gpiochip*"))
    labels = {c.name: gpio_chip_label(c, sysfs) for c in chips}
    if wanted:
        found = [name for name, label in labels.items() if label == wanted]
    else:
        found = [name for name, label in labels.items() if label and label.startswith("pinctrl-")]
    if found:
        return Check("GPIO chip", True, f"{found[0]} ({labels[found[0]]})")
    seen = ", ".join(f"{name}={label or '?'}" for name, label in labels.items()) or "no gpiochip devices"
    target = repr(wanted) if wanted else "the header's pinctrl-* chip"
    return Check("GPIO chip", False, f"did not find {target}; found {seen}",
                 "Set wiring.gpio_chip in config.toml to one of the labels found, or leave it empty to detect")  # fmt: skip


def _check_extra(find_spec: Callable[[str], object]) -> Check:
    missing = [m for m in ("spidev", "gpiod") if find_spec(m) is None]
    if not missing:
        return Check("pi extra", True, "spidev and gpiod are installed")
    return Check("pi extra", False, f"not installed: {', '.join(missing)}",
                 f"{sys.executable} -m pip install 'libloop[pi]'")  # fmt: skip


def _check_service(run: Runner) -> Check:
    try:
        done = run(
            ["systemctl", "is-active", "loop.service"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Check(
            "service", False, f"cannot ask systemd ({exc})", "Only needed on the Pi: run loop under systemd"
        )
    state = done.stdout.strip() or "unknown"
    if state == "active":
        return Check("service", True, "loop.service is active")
    if state == "failed":
        return Check("service", False, "loop.service has failed",
                     "See why: journalctl -u loop.service -b; then: sudo systemctl restart loop.service")  # fmt: skip
    return Check(
        "service", False, f"loop.service is {state}", f"sudo {sys.executable} -m loopapp install-service"
    )


def _check_disk(data_dir: Path, disk_usage: Callable[[str], object], reserve_mb: int) -> Check:
    probe = next((p for p in (data_dir, *data_dir.parents) if p.exists()), Path("/"))
    free = int(getattr(disk_usage(str(probe)), "free", 0)) // MB
    if free >= reserve_mb:
        return Check("disk space", True, f"{free} MB free for {data_dir}")
    return Check(
        "disk space",
        False,
        f"only {free} MB free for {data_dir}",
        "Delete some media: loop ls, then loop rm ID",
    )


def _check_power(sysfs: Path, run: Runner) -> Check:
    flags = read_throttle(sysfs, run=run, order=("vcgencmd", "rpi_volt"))  # every flag, once
    if flags is None:
        return Check("power", True, "no Raspberry Pi power flags on this machine")
    if flags.under_voltage or flags.under_voltage_occurred:
        when = "now" if flags.under_voltage else "since boot"
        return Check("power", False, f"under-voltage detected {when} (flags {flags.raw:#x})",
                     "Use the official power supply (5 V, 3 A or more) and a short, thick cable")  # fmt: skip
    detail = "no under-voltage" + (" (the CPU was throttled since boot)" if flags.throttled_occurred else "")
    return Check("power", True, detail)


def check_mqtt(mqtt: MqttConfig, *, timeout: float = 5.0) -> Check:
    """The configured MQTT broker takes the device's login (connects once, bounded by ``timeout``)."""
    if not mqtt.url:
        return Check("MQTT broker", True, "not configured (set [mqtt] url to use Home Assistant)")
    from loopapp.integrations.broker import Broker, MqttError, probe_broker

    try:
        broker = Broker.parse(mqtt.url, mqtt.username, mqtt.password)
        return Check("MQTT broker", True, probe_broker(broker, timeout))
    except MqttError as exc:
        text = str(exc)
    if "needs paho-mqtt" in text:
        fix = f"{sys.executable} -m pip install 'paho-mqtt>=2.0'"
    elif "refused the connection" in text:
        fix = "Check [mqtt] username and password against the broker's users (Home Assistant: Settings > People > Users, or the Mosquitto add-on's logins)"
    elif "not trusted" in text:
        fix = "Give the broker a certificate from a CA in the system store (or add its CA: sudo cp ca.crt /usr/local/share/ca-certificates/ && sudo update-ca-certificates)"
    else:
        fix = "Check [mqtt] url (host and port: 1883, or 8883 for mqtts://) and that the broker runs and can be reached from this machine"
    return Check("MQTT broker", False, text, fix)


def run_checks(
    *,
    spi_bus: int = 0,
    spi_device: int = 0,
    gpio_chip: str = "",
    data_dir: Path,
    dev_root: Path = Path("/dev"),
    sysfs_root: Path = Path("/sys"),
    user: str | None = None,
    run: Runner = subprocess.run,
    access: Callable[[Path], bool] | None = None,
    groups: set[str] | None = None,
    find_spec: Callable[[str], object] = importlib.util.find_spec,
    disk_usage: Callable[[str], object] | None = None,
    reserve_mb: int = Thresholds().disk_reserve_mb,
    speed_hz: int = 64_000_000,
    backlight_gpio: int = 18,
    backlight_pwm: str = "auto",
    model_path: Path = MODEL_PATH,
    pwm_files: SysfsFiles | None = None,
    device_spi: Mapping[str, Any] | None = None,
    mqtt: MqttConfig | None = None,
) -> list[Check]:
    """Run every check, in the order a person would fix them.

    ``device_spi`` is the running device's SPI state (its ``/api/health`` display section's
    ``spi``), when one runs.
    """
    import psutil  # a core dependency; imported here to keep module import light

    who = user or pwd.getpwuid(os.geteuid()).pw_name
    can_use = access or (lambda p: os.access(p, os.R_OK | os.W_OK))
    link = check_link(device_spi)
    checks = [
        _check_spi(dev_root, spi_bus, spi_device),
        _check_bufsiz(sysfs_root),
        _check_access(
            dev_root, spi_bus, spi_device, who, can_use, groups if groups is not None else _user_groups(who)
        ),
        _check_gpio(dev_root, sysfs_root, gpio_chip),
        _check_extra(find_spec),
        check_clock(read_model(model_path), speed_hz, run),
        check_pwm(sysfs_root, backlight_gpio, backlight_pwm, files=pwm_files, user=who),
        *([link] if link is not None else []),
        _check_service(run),
        _check_disk(data_dir, disk_usage or psutil.disk_usage, reserve_mb),
        _check_power(sysfs_root, run),
    ]
    if mqtt is not None:
        checks.append(check_mqtt(mqtt))
    return checks


def format_checks(checks: list[Check]) -> str:
    """The report the CLI prints: one line per check, the fix indented under each problem."""
    lines = []
    for check in checks:
        lines.append(f"[{'ok' if check.ok else '!!'}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"     fix: {check.fix}")
    problems = sum(not c.ok for c in checks)
    lines.append("All checks passed." if not problems else f"{problems} problem{'s' * (problems > 1)} found.")
    return "\n".join(lines)


def report(
    checks: list[Check],
    *,
    speed_hz: int = 64_000_000,
    model_path: Path = MODEL_PATH,
    run: Runner = subprocess.run,
    sweep: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """What ``loop doctor --json`` prints: the verdict, every finding with its fix, the real SPI clock."""
    body: dict[str, object] = {
        "ok": all(c.ok for c in checks),
        "problems": sum(not c.ok for c in checks),
        "findings": [c.to_dict() for c in checks],
        "spi": spi_clock_info(read_model(model_path), speed_hz, READ_SPEED_HZ, run),
    }
    if sweep is not None:
        body["sweep"] = dict(sweep)
    return body
