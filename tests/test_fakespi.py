"""The fake spidev device fails like the real driver, times and records transfers, injects faults."""

from __future__ import annotations

import errno
import re
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.clock import FakeClock
from libloop.errors import TransportError
from libloop.transport.spidev_bus import read_bufsiz
from sim.fakespi import DEFAULT_OVERHEAD_S, FakeSpiDev
from sim.pins import FakeBacklight, FakePin


class Recorder:
    """A sink that keeps every transfer."""

    def __init__(self) -> None:
        self.writes: list[tuple[bytes, bool]] = []

    def write(self, data: bytes, dc: bool) -> None:
        self.writes.append((bytes(data), dc))


class Answering(Recorder):
    """A sink that also drives MISO."""

    def read(self, n: int) -> bytes:
        return bytes(range(1, n + 1))


def opened(**kwargs: object) -> FakeSpiDev:
    dev = FakeSpiDev(**kwargs)  # type: ignore[arg-type]
    dev.open(0, 0)
    return dev


# Calls whose outcome the real module decides before touching the device, so an unopened real
# SpiDev and an unopened fake with the same bufsiz must fail identically (the sizes below probe
# the 4096 default, which is what a machine without /sys/module/spidev gets).
CASES = [
    ("writebytes2", b""),
    ("writebytes2", bytearray()),
    ("writebytes2", []),
    ("writebytes2", 123),
    ("writebytes2", None),
    ("writebytes2", "abc"),
    ("writebytes2", ["a"]),
    ("writebytes2", b"ab"),
    ("writebytes2", [1, 2]),
    ("writebytes2", np.zeros((4, 4), np.uint8)[:, ::2]),
    ("writebytes2", np.zeros((4, 4), np.uint16)),
    ("writebytes", []),
    ("writebytes", b""),
    ("writebytes", b"ab"),
    ("writebytes", [0] * 4097),
    ("writebytes", [0] * 65537),
    ("writebytes", ["x"]),
    ("writebytes", 5),
    ("xfer", []),
    ("xfer", [0] * 4097),
    ("xfer2", []),
    ("xfer2", [0] * 4097),
    ("xfer2", [0] * 65536),
    ("xfer2", [0] * 65537),
    ("xfer2", [1.0]),
    ("xfer2", 5),
    ("xfer2", b"ab"),
    ("xfer3", []),
    ("xfer3", [0] * 5000),
    ("readbytes", 0),
    ("readbytes", 5),
]


def outcome(dev: object, method: str, arg: object) -> tuple[str, str]:
    try:
        result = getattr(dev, method)(arg)
    except BaseException as exc:
        message = re.sub(r"[0-9a-f]{6,}", "ADDR", str(exc))  # a pointer in one message
        message = re.sub(r" at 0x\w+|<built-in method .*?>", "", message)
        return type(exc).__name__, message
    return "ok", repr(result)


@pytest.mark.parametrize(("method", "arg"), CASES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(CASES)])
def test_fails_like_the_installed_spidev_module(method: str, arg: object) -> None:
    spidev = pytest.importorskip("spidev")
    real = outcome(spidev.SpiDev(), method, arg)
    fake = outcome(FakeSpiDev(bufsiz=read_bufsiz()), method, arg)  # the module's view of bufsiz
    if real[0] == "SystemError":  # CPython's wording of a C-level mistake; the type is what counts
        assert fake[0] == "SystemError"
    else:
        assert fake == real


def test_settings_fail_like_the_real_module() -> None:
    spidev = pytest.importorskip("spidev")
    for name, value in [
        ("mode", 5),
        ("mode", "x"),
        ("bits_per_word", 40),
        ("max_speed_hz", 1000),
        ("mode", 0),
    ]:
        outcomes = []
        for dev in (spidev.SpiDev(), FakeSpiDev()):
            try:
                setattr(dev, name, value)
                outcomes.append(("ok", ""))
            except (TypeError, OSError) as exc:
                outcomes.append((type(exc).__name__, str(exc)))
        assert outcomes[0] == outcomes[1], name


def test_kernel_rejects_a_transfer_over_bufsiz_with_emsgsize() -> None:
    # The module cached a bigger bufsiz than the driver now has: the write(2) itself fails.
    dev = opened(bufsiz=4096, module_block_size=8192)
    with pytest.raises(OSError, match="Message too long") as info:
        dev.writebytes2(bytes(5000))
    assert info.value.errno == errno.EMSGSIZE
    assert dev.transfers == 0


def test_missing_and_forbidden_nodes() -> None:
    with pytest.raises(FileNotFoundError):
        FakeSpiDev(present=False).open(0, 0)
    with pytest.raises(PermissionError):
        FakeSpiDev(permitted=False).open(0, 0)


def test_closed_device_is_ebadf() -> None:
    dev = opened()
    dev.close()
    with pytest.raises(OSError) as info:
        dev.writebytes2(b"x")
    assert info.value.errno == errno.EBADF


@given(n=st.integers(0, 20_000), bufsiz=st.integers(1, 70_000))
def test_writebytes2_splits_into_module_blocks(n: int, bufsiz: int) -> None:
    sink = Recorder()
    dev = opened(sink=sink, bufsiz=bufsiz)
    data = bytes(i % 251 for i in range(n))
    dev.writebytes2(data)
    block = min(bufsiz, 65535)
    assert all(0 < len(d) <= block for d, _ in sink.writes)
    assert b"".join(d for d, _ in sink.writes) == data
    assert dev.transfers == -(-n // block) and dev.bytes == n


def test_xfer2_overwrites_a_list_in_place_and_reads_from_the_sink() -> None:
    dev = opened(sink=Answering())
    values = [9, 9, 9]
    assert dev.xfer2(values) is values
    assert values == [1, 2, 3]
    assert dev.xfer2((0, 0)) == (1, 2)
    assert dev.readbytes(0) == [1]  # the module reads at least one byte
    assert dev.xfer3([0] * 10) == tuple(range(1, 11))


def test_reads_without_an_answering_sink_return_zeros() -> None:
    dev = opened(sink=Recorder())
    assert dev.xfer2([5, 6]) == [0, 0]


def test_dc_level_is_forwarded_and_recorded() -> None:
    sink = Recorder()
    dc = FakePin("dc")
    dc.open()
    dev = opened(sink=sink, dc=dc)
    dev.writebytes2(b"\x2a")
    dc.set(True)
    dev.writebytes2(b"\x00\x01")
    assert sink.writes == [(b"\x2a", False), (b"\x00\x01", True)]
    assert [(e.dc, e.nbytes) for e in dev.transcript] == [(False, 1), (True, 2)]


def test_wire_time_advances_a_fake_clock() -> None:
    clock = FakeClock(10.0)
    dev = opened(clock=clock)
    dev.max_speed_hz = 64_000_000
    dev.writebytes2(bytes(4096))
    expected = 4096 * 8 / 62.5e6 + DEFAULT_OVERHEAD_S  # a Pi 4 divides its 500 MHz core by 8
    assert clock.monotonic() == pytest.approx(10.0 + expected)
    assert dev.transcript[0].t == 10.0 and dev.transcript[0].hz == 62_500_000
    assert dev.wire_seconds == pytest.approx(expected)


def test_payloads_are_recorded_only_on_request() -> None:
    dev = opened()
    dev.writebytes2(b"abc")
    assert dev.transcript[0].data is None
    dev = opened(record_payloads=True)
    dev.writebytes2(b"abc")
    assert dev.payload() == b"abc"


def test_fail_transfer_hits_exactly_the_nth() -> None:
    dev = opened()
    dev.fail_transfer(3)
    dev.writebytes2(b"a")
    dev.writebytes2(b"b")
    with pytest.raises(OSError) as info:
        dev.writebytes2(b"c")
    assert info.value.errno == errno.EIO
    dev.writebytes2(b"d")
    assert dev.transfers == 3 and dev.errors == 1


def test_random_faults_are_repeatable_with_a_seed() -> None:
    def run() -> list[bool]:
        dev = opened()
        dev.fail_randomly(0.3, seed=42)
        results = []
        for _ in range(50):
            try:
                dev.writebytes2(b"x")
                results.append(True)
            except OSError:
                results.append(False)
        return results

    first = run()
    assert first == run()
    assert 5 < first.count(False) < 30


def test_dropped_transfers_are_counted_but_never_arrive() -> None:
    sink = Recorder()
    dev = opened(sink=sink)
    dev.drop_transfer(2)
    for b in (b"a", b"b", b"c"):
        dev.writebytes2(b)
    assert [d for d, _ in sink.writes] == [b"a", b"c"]
    assert dev.transfers == 3 and dev.dropped == 1
    assert [e.dropped for e in dev.transcript] == [False, True, False]


def test_a_hung_transfer_blocks_until_released() -> None:
    dev = opened(sink=Recorder())
    dev.hang_transfer(1)
    done = threading.Event()

    def writer() -> None:
        dev.writebytes2(b"x")
        done.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert dev.hung.wait(10)
    assert not done.is_set()
    dev.release()
    thread.join(10)
    assert done.is_set() and not dev.hung.is_set()
    assert dev.transfers == 1


def test_fake_pin_records_levels_with_timestamps_and_fails_on_demand() -> None:
    clock = FakeClock(5.0)
    pin = FakePin("reset", initial=True, clock=clock)
    with pytest.raises(TransportError, match="not open"):
        pin.set(False)
    pin.open()
    pin.set(False)
    clock.advance(0.001)
    pin.set(True)
    assert pin.states == [(5.0, True), (5.0, False), (5.001, True)]
    pin.assert_states([True, False, True])
    pin.fail_next(2)
    pin.set(True)
    with pytest.raises(TransportError, match="reset"):
        pin.set(False)
    assert pin.value is True
    pin.fail_open()
    pin.close()
    with pytest.raises(TransportError):
        pin.open()


def test_fake_pin_reports_changes() -> None:
    seen: list[bool] = []
    pin = FakePin(on_change=seen.append)
    pin.open()
    pin.set(False)
    pin.set(True)
    pin.set(True)
    assert seen == [False, True]


def test_fake_backlight_validates_and_records() -> None:
    levels: list[int] = []
    light = FakeBacklight(on_change=levels.append)
    light.open()
    light.set_level(40)
    with pytest.raises(ValueError):
        light.set_level(101)
    assert levels == [40] and light.level == 40


# --- the kernel's mode, chip select and the wire ------------------------------------------------


def test_the_spi_devices_mode_outlives_an_open_and_unsupported_bits_are_einval() -> None:
    dev = FakeSpiDev(kernel_mode=0x04)  # cshigh, left by another program
    dev.open(0, 0)
    assert dev.cshigh and dev.mode == 0
    dev.mode = 3
    dev.close()
    dev.open(0, 0)
    assert dev.mode == 3 and dev.cshigh  # mode only ever touched CPOL/CPHA
    with pytest.raises(OSError) as info:
        dev.lsbfirst = True  # spi-bcm2835 has no LSB-first mode: spi_setup refuses it
    assert info.value.errno == errno.EINVAL and not dev.lsbfirst


def test_each_xfer3_block_is_its_own_chip_select_frame_so_a_long_read_breaks() -> None:
    from sim.panel import Ili9341Panel

    panel = Ili9341Panel(strict=True, clock=FakeClock(1.0))
    panel.write(b"\x2c", False)
    panel.write(b"\xfc" * 60, True)  # 20 white pixels (18-bit, the reset format)
    dc = FakePin("dc")  # low: command
    dc.open()
    dev = FakeSpiDev(panel, dc, bufsiz=16, clock=panel.clock)
    dev.open(0, 0)
    assert dev.xfer2([0xD3, 0, 0, 0, 0], 6_000_000)[1:] == [0x00, 0x00, 0x93, 0x41]  # RDID4 in one frame
    answer = dev.xfer3([0x2E] + [0] * 40, 6_000_000)  # RAMRD: 16-byte blocks, one frame each
    assert answer[2:16] == (0xFC,) * 14  # the first frame: the dummy byte, then pixels
    assert answer[16:] == (0,) * 25  # chip select rose: the rest are NOPs and MISO is idle


def test_no_cs_leaves_chip_select_to_a_gpio_line() -> None:
    from sim.panel import Ili9341Panel

    panel = Ili9341Panel(clock=FakeClock(1.0))
    cs = FakePin("cs", initial=True, on_change=panel.csx)
    dc = FakePin("dc")  # low: command
    for pin in (cs, dc):
        pin.open()
    dev = FakeSpiDev(panel, dc, clock=panel.clock)
    dev.open(0, 0)
    dev.no_cs = True
    dev.writebytes2(b"\x11")  # CS high on the GPIO: the chip ignores it
    assert panel.sleeping and panel.violations[-1].kind.name == "CHIP_SELECT_INACTIVE"
    cs.set(False)
    dev.writebytes2(b"\x11")
    assert not panel.sleeping


def test_lsbfirst_reverses_bits_and_an_unwired_miso_reads_zeros() -> None:
    from libloop.transport.spiclock import SpiController

    sink = Recorder()
    dev = FakeSpiDev(sink, controller=SpiController("spi-dw", 200_000_000), kernel_mode=0x08)
    dev.open(0, 0)  # a controller model that would take LSB-first, set by someone else
    dev.writebytes2(b"\x01\x80")
    assert sink.writes[-1][0] == b"\x80\x01"
    assert FakeSpiDev(Answering(), miso=False, bufsiz=8).effective_hz(64_000_000) == 62_500_000
    quiet = FakeSpiDev(Answering(), miso=False)
    quiet.open(0, 0)
    assert quiet.xfer2([1, 2, 3]) == [0, 0, 0]
