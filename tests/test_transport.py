"""SpidevBus, GpiodPin and the backlights, over fakes of spidev, gpiod and sysfs."""

from __future__ import annotations

import errno
import logging
import os
import sys
import types
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.errors import DeviceNotFound, DevicePermissionError, MissingExtra, TransportError
from libloop.transport import GpiodPin, PinBacklight, SpidevBus
from libloop.transport.base import byte_view, split_transfers
from sim.fakespi import FakeSpiDev
from sim.pins import FakePin


def one_sentence(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text.endswith(".") and text[0].isupper(), text
    return text


def bus_over(dev: FakeSpiDev, bufsiz: int | None = 4096, **kwargs: Any) -> SpidevBus:
    return SpidevBus(spidev_factory=lambda: dev, bufsiz=bufsiz, **kwargs)


# --- SpidevBus ---------------------------------------------------------------------------------


# Any bufsiz, and any length up to 500 transfers' worth (so tiny bufsiz values stay fast).
SIZES = st.integers(1, 200_000).flatmap(
    lambda bufsiz: st.tuples(st.integers(0, min(200_000, bufsiz * 500)), st.just(bufsiz))
)


@given(SIZES)
def test_transfers_are_never_empty_nor_over_bufsiz(case: tuple[int, int]) -> None:
    n, bufsiz = case
    dev = FakeSpiDev(bufsiz=bufsiz, record_payloads=True, transcript_limit=None)
    bus = bus_over(dev, bufsiz)
    bus.open()
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    bus.write(data)
    sizes = dev.sizes()
    assert all(0 < s <= bufsiz for s in sizes)
    assert dev.payload() == data
    assert bus.stats.bytes == n and bus.stats.transfers == len(sizes)
    # As few transfers as the limit allows (even-sized, capped by py-spidev at 65535).
    limit = min(bufsiz, 65535)
    limit -= limit % 2 if limit > 1 else 0
    assert len(sizes) == -(-n // limit)


def test_transfer_size_comes_from_bufsiz_file(tmp_path: Path) -> None:
    path = tmp_path / "bufsiz"
    path.write_text("65536\n")
    dev = FakeSpiDev(bufsiz=65536)
    bus = SpidevBus(spidev_factory=lambda: dev, bufsiz_path=path)
    bus.open()
    assert bus.max_transfer == 65534
    bus.write(bytes(153_600))
    assert dev.sizes() == [65534, 65534, 22532]


@pytest.mark.parametrize("content", [None, "junk", "0"])
def test_unreadable_bufsiz_falls_back_to_4096_with_a_warning(
    tmp_path: Path, content: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bufsiz"
    if content is not None:
        path.write_text(content)
    bus = SpidevBus(spidev_factory=FakeSpiDev, bufsiz_path=path)
    with caplog.at_level(logging.WARNING):
        bus.open()
    assert bus.max_transfer == 4096
    assert "bufsiz" in caplog.text


@pytest.mark.parametrize(
    "make",
    [
        lambda: bytearray(range(256)) * 40,
        lambda: bytes(10_000),
        lambda: np.arange(10_000, dtype=np.uint8),
        lambda: np.zeros((50, 60, 2), np.uint8),
        lambda: np.zeros(3000, ">u2"),
    ],
    ids=["bytearray", "bytes", "ndarray", "ndarray-3d", "ndarray-u16"],
)
def test_write_never_copies(make: Any) -> None:
    buf = make()
    dev = FakeSpiDev(bufsiz=4096)
    seen: list[memoryview] = []
    real_write = dev.writebytes2

    def spy(obj: Any) -> None:
        seen.append(obj)
        real_write(obj)

    dev.writebytes2 = spy  # type: ignore[method-assign,assignment]
    bus = bus_over(dev)
    bus.open()
    bus.write(buf)
    assert seen and all(isinstance(v, memoryview) for v in seen)
    assert all(v.obj is buf for v in seen)  # a view into the caller's own buffer
    assert sum(len(v) for v in seen) == memoryview(buf).nbytes
    start = np.frombuffer(memoryview(buf).cast("B"), np.uint8)
    assert np.shares_memory(np.frombuffer(seen[-1], np.uint8), start)


def test_write_accepts_memoryview_slices_and_empty_data() -> None:
    dev = FakeSpiDev(record_payloads=True)
    bus = bus_over(dev)
    bus.open()
    bus.write(b"")
    bus.write(memoryview(b"hello world")[6:])
    assert dev.payload() == b"world" and dev.transfers == 1


def test_write_refuses_strided_and_non_bytes_data() -> None:
    bus = bus_over(FakeSpiDev())
    bus.open()
    with pytest.raises(ValueError, match="contiguous"):
        bus.write(np.zeros((4, 4), np.uint8)[:, ::2].data)
    with pytest.raises(TypeError, match="bytes-like"):
        bus.write([1, 2, 3])  # type: ignore[arg-type]


def test_open_sets_clock_and_mode() -> None:
    dev = FakeSpiDev()
    bus = bus_over(dev, speed_hz=32_000_000, mode=3)
    bus.open()
    assert (dev.max_speed_hz, dev.mode, dev.bits_per_word) == (32_000_000, 3, 8)
    bus.close()
    bus.close()
    assert dev.closed


def test_missing_device_names_how_to_enable_spi() -> None:
    bus = bus_over(FakeSpiDev(present=False))
    with pytest.raises(DeviceNotFound) as info:
        bus.open()
    text = one_sentence(info.value)
    assert "/dev/spidev0.0" in text and "raspi-config" in text and "dtparam=spi=on" in text


def test_permission_error_names_the_spi_group() -> None:
    with pytest.raises(DevicePermissionError) as info:
        bus_over(FakeSpiDev(permitted=False)).open()
    assert "spi group" in one_sentence(info.value)


def test_missing_spidev_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spidev", None)
    with pytest.raises(MissingExtra) as info:
        SpidevBus(bufsiz=4096).open()
    assert str(info.value) == "SPI needs the pi extra: pip install 'libloop[pi]'."


def test_real_spidev_on_a_machine_without_spi_is_device_not_found() -> None:
    pytest.importorskip("spidev")
    if os.path.exists("/dev/spidev9.9"):
        pytest.skip("this machine has /dev/spidev9.9")
    with pytest.raises(DeviceNotFound):
        SpidevBus(9, 9, bufsiz=4096).open()


def test_io_error_during_a_transfer_is_a_transport_error() -> None:
    dev = FakeSpiDev(bufsiz=100)
    bus = bus_over(dev, 100)
    bus.open()
    dev.fail_transfer(2)
    with pytest.raises(TransportError) as info:
        bus.write(bytes(250))
    assert "100 bytes" in one_sentence(info.value)
    assert bus.stats.transfers == 1 and bus.stats.errors == 1


def test_bufsiz_shrinking_under_an_open_bus_is_explained() -> None:
    dev = FakeSpiDev(bufsiz=4096)
    bus = bus_over(dev, 4096)
    bus.open()
    dev.bufsiz = 1024  # the driver was reloaded with a smaller bufsiz
    with pytest.raises(TransportError, match="reopen"):
        bus.write(bytes(4096))


def test_write_before_open_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="open"):
        bus_over(FakeSpiDev()).write(b"x")


def test_a_read_is_one_frame_with_its_command_at_the_read_clock() -> None:
    class Answering:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes, dc: bool) -> None:
            self.writes.append(data)

        def read(self, n: int) -> bytes:
            return bytes(range(1, n + 1))

    dev = FakeSpiDev(Answering(), bufsiz=65536)
    bus = bus_over(dev, 65536, read_speed_hz=6_000_000)
    bus.open()
    assert bus.max_read == 4096  # one xfer2, whatever bufsiz says
    assert bus.read(b"\x2e", 10) == bytes(range(2, 12))  # the byte clocked during the command is dropped
    [entry] = dev.transcript
    assert (entry.kind, entry.nbytes, entry.hz) == ("xfer", 11, 5_952_380)  # 500 MHz / 84 on a Pi 4
    with pytest.raises(ValueError, match="at most 4096"):
        bus.read(b"\x2e", 4096)
    with pytest.raises(ValueError, match="command"):
        bus.read(b"", 3)
    assert bus_over(FakeSpiDev(bufsiz=100), 100).max_read == 100


def test_constructor_validates_and_does_no_io() -> None:
    bus = SpidevBus(spidev_factory=lambda: pytest.fail("opened in the constructor"))
    assert not bus.is_open
    with pytest.raises(ValueError):
        SpidevBus(mode=4)


def test_byte_view_and_split() -> None:
    view = byte_view(np.zeros((2, 3), ">u2").data)
    assert (view.format, len(view)) == ("B", 12)
    parts = list(split_transfers(view, 5))
    assert [len(p) for p in parts] == [5, 5, 2]
    with pytest.raises(ValueError):
        list(split_transfers(view, 0))


# --- GpiodPin over a fake gpiod module -----------------------------------------------------------


class FakeValue(Enum):
    INACTIVE = 0
    ACTIVE = 1


class FakeDirection(Enum):
    AS_IS = 1
    INPUT = 2
    OUTPUT = 3


class FakeBias(Enum):
    AS_IS = 1
    PULL_UP = 4
    PULL_DOWN = 5


@dataclass
class FakeLineSettings:
    direction: FakeDirection = FakeDirection.AS_IS
    bias: FakeBias = FakeBias.AS_IS
    output_value: FakeValue = FakeValue.INACTIVE


@dataclass
class FakeChipInfo:
    name: str
    label: str
    num_lines: int


class FakeRequest:
    def __init__(self, gpiod: FakeGpiod, path: str, line: int, value: FakeValue) -> None:
        self.gpiod, self.path, self.line = gpiod, path, line
        gpiod.levels[(path, line)] = [value]
        self.released = False

    def set_value(self, line: int, value: FakeValue) -> None:
        if self.gpiod.fail_set:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        self.gpiod.levels[(self.path, line)].append(value)

    def reconfigure_lines(self, config: dict[int, FakeLineSettings]) -> None:
        self.gpiod.reconfigured.append(dict(config))

    def release(self) -> None:
        self.released = True


class FakeGpiod(types.ModuleType):
    """Just enough of the gpiod 2.x API: Chip(path).get_info().label, request_lines, line enums."""

    def __init__(self, labels: dict[str, str], denied: tuple[str, ...] = (), busy: bool = False) -> None:
        super().__init__("gpiod")
        self.labels, self.denied, self.busy = labels, denied, busy
        self.levels: dict[tuple[str, int], list[FakeValue]] = {}
        self.requests: list[dict[str, Any]] = []
        self.reconfigured: list[dict[int, FakeLineSettings]] = []
        self.fail_set = False
        self.line = types.SimpleNamespace(Value=FakeValue, Direction=FakeDirection, Bias=FakeBias)
        self.LineSettings = FakeLineSettings
        gpiod = self

        class Chip(AbstractContextManager["Chip"]):
            def __init__(self, path: str) -> None:
                name = os.path.basename(path)
                if name in gpiod.denied:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
                if name not in gpiod.labels:
                    raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
                self.info = FakeChipInfo(name, gpiod.labels[name], 54)

            def get_info(self) -> FakeChipInfo:
                return self.info

            def __exit__(self, *exc: object) -> None:
                return None

        self.Chip = Chip

    def request_lines(self, path: str, consumer: str, config: dict[int, FakeLineSettings]) -> FakeRequest:
        if self.busy:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        ((line, settings),) = config.items()
        assert settings.direction is FakeDirection.OUTPUT
        self.requests.append({"path": path, "consumer": consumer, "line": line})
        return FakeRequest(self, path, line, settings.output_value)


def make_chips(tmp_path: Path, labels: dict[str, str]) -> None:
    for name in labels:
        (tmp_path / name).touch()
    (tmp_path / "gpiochip99").touch()  # a node that is not a GPIO chip at all


PI5_OLD_KERNEL = {"gpiochip0": "gpio-brcmstb@107d508500", "gpiochip4": "pinctrl-rp1", "gpiochip10": "x"}


def test_pin_finds_the_header_chip_by_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpiod = FakeGpiod(PI5_OLD_KERNEL)
    make_chips(tmp_path, PI5_OLD_KERNEL)
    monkeypatch.setitem(sys.modules, "gpiod", gpiod)
    pin = GpiodPin(24, dev_dir=str(tmp_path), initial=True)
    pin.open()
    assert pin.chip_path == str(tmp_path / "gpiochip4")
    assert gpiod.requests == [{"path": str(tmp_path / "gpiochip4"), "consumer": "loop", "line": 24}]
    pin.set(False)
    pin.set(True)
    assert gpiod.levels[(pin.chip_path, 24)] == [FakeValue.ACTIVE, FakeValue.INACTIVE, FakeValue.ACTIVE]
    assert pin.value is True
    pin.close()
    with pytest.raises(TransportError, match="not open"):
        pin.set(False)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"gpiochip0": "pinctrl-bcm2711", "gpiochip1": "raspberrypi-exp-gpio"}, "gpiochip0"),
        ({"gpiochip0": "pinctrl-bcm2835", "gpiochip1": "raspberrypi-exp-gpio"}, "gpiochip0"),
        ({"gpiochip0": "pinctrl-rp1", "gpiochip10": "gpio-brcmstb@107d508500"}, "gpiochip0"),
    ],
)
def test_every_pi_generation_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labels: dict[str, str], expected: str
) -> None:
    make_chips(tmp_path, labels)
    monkeypatch.setitem(sys.modules, "gpiod", FakeGpiod(labels))
    pin = GpiodPin(25, dev_dir=str(tmp_path))
    pin.open()
    assert pin.chip_path == str(tmp_path / expected)


def test_an_explicit_label_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = {"gpiochip0": "pinctrl-bcm2711", "gpiochip2": "my-expander"}
    make_chips(tmp_path, labels)
    monkeypatch.setitem(sys.modules, "gpiod", FakeGpiod(labels))
    pin = GpiodPin(3, chip_label="my-expander", dev_dir=str(tmp_path))
    pin.open()
    assert pin.chip_path == str(tmp_path / "gpiochip2")


def test_no_header_chip_is_device_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = {"gpiochip0": "gpio-mockup-A"}
    make_chips(tmp_path, labels)
    monkeypatch.setitem(sys.modules, "gpiod", FakeGpiod(labels))
    with pytest.raises(DeviceNotFound) as info:
        GpiodPin(24, dev_dir=str(tmp_path)).open()
    text = one_sentence(info.value)
    assert "pinctrl-rp1" in text and "gpio-mockup-A" in text


def test_chip_permission_names_the_gpio_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = {"gpiochip0": "pinctrl-bcm2711"}
    make_chips(tmp_path, labels)
    monkeypatch.setitem(sys.modules, "gpiod", FakeGpiod(labels, denied=("gpiochip0",)))
    with pytest.raises(DevicePermissionError) as info:
        GpiodPin(24, dev_dir=str(tmp_path)).open()
    assert "gpio group" in one_sentence(info.value)


def test_busy_line_and_failing_set_are_transport_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = {"gpiochip0": "pinctrl-bcm2711"}
    make_chips(tmp_path, labels)
    gpiod = FakeGpiod(labels, busy=True)
    monkeypatch.setitem(sys.modules, "gpiod", gpiod)
    with pytest.raises(TransportError, match="in use") as info:
        GpiodPin(24, dev_dir=str(tmp_path)).open()
    one_sentence(info.value)
    gpiod.busy = False
    pin = GpiodPin(24, dev_dir=str(tmp_path))
    pin.open()
    gpiod.fail_set = True
    with pytest.raises(TransportError):
        pin.set(True)
    assert pin.value is False


def test_missing_gpiod_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiod", None)
    with pytest.raises(MissingExtra, match=r"GPIO needs the pi extra"):
        GpiodPin(24).open()


def test_real_gpiod_module_matches_the_fake_api(tmp_path: Path) -> None:
    gpiod = pytest.importorskip("gpiod")
    assert {v.name for v in gpiod.line.Value} >= {"ACTIVE", "INACTIVE"}
    assert gpiod.line.Direction.OUTPUT is not None
    settings = gpiod.LineSettings(direction=gpiod.line.Direction.OUTPUT, output_value=gpiod.line.Value.ACTIVE)
    assert settings.output_value is gpiod.line.Value.ACTIVE
    assert callable(gpiod.request_lines) and hasattr(gpiod.Chip, "get_info")
    # The real bindings on a node that is not a GPIO chip: skipped, then "no chip found".
    (tmp_path / "gpiochip0").touch()
    with pytest.raises(DeviceNotFound):
        GpiodPin(24, dev_dir=str(tmp_path)).open()


# --- backlights --------------------------------------------------------------------------------


def test_pin_backlight_is_on_above_zero() -> None:
    pin = FakePin("bl")
    light = PinBacklight(pin)
    light.open()
    for level in (0, 1, 100, 0):
        light.set_level(level)
    pin.assert_states([False, True, False])
    with pytest.raises(ValueError):
        light.set_level(-1)
