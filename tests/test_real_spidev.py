"""The SPI path against the real py-spidev module: its limits, its quirks, and a loopback node.

Three levels, from cheapest to closest to a Pi:

* the installed C extension, unopened: calls it refuses before any ioctl must fail the same
  way on ``sim.FakeSpiDev`` whatever bufsiz the fake is given (the module's limits are its
  own 4096-byte buffers, not bufsiz);
* the installed module on a node that is not a spidev device (``/dev/null``): it keeps the
  descriptor open, and ``SpidevBus`` must close it;
* the installed module over a loopback spidev node (``tests/fixtures/spidev_loopback.c``,
  preloaded into a child interpreter): the display's whole write and read path runs through
  the real module's ``writebytes2`` and ``xfer2`` and the node's log shows every transfer
  within the limits, the read frames at the read clock, the leftover mode flags cleared, and
  the same bytes on the wire as the simulator's fake sends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from libloop.errors import TransportError
from libloop.transport.spidev_bus import SpidevBus
from sim.fakespi import SPI_CS_HIGH, SPI_NO_CS, FakeSpiDev
from tests.test_fakespi import CASES, outcome

ROOT = Path(__file__).resolve().parent.parent
SHIM_SOURCE = Path(__file__).resolve().parent / "fixtures" / "spidev_loopback.c"


# writebytes2 and xfer3 follow the module's view of bufsiz; test_fakespi compares those.
FIXED = [(m, a) for m, a in CASES if m not in ("writebytes2", "xfer3")]


@pytest.mark.parametrize("bufsiz", [4096, 65536])
@pytest.mark.parametrize(("method", "arg"), FIXED, ids=[f"{m}-{i}" for i, (m, _) in enumerate(FIXED)])
def test_the_module_limits_do_not_follow_bufsiz(method: str, arg: object, bufsiz: int) -> None:
    spidev = pytest.importorskip("spidev")
    real = outcome(spidev.SpiDev(), method, arg)
    fake = outcome(FakeSpiDev(bufsiz=bufsiz), method, arg)
    assert fake == real


FLAG_CASES = [("cshigh", True), ("cshigh", 1), ("lsbfirst", "yes"), ("threewire", False), ("no_cs", None),
              ("loop", True), ("read0", 1), ("read0", True)]  # fmt: skip


@pytest.mark.parametrize(("name", "value"), FLAG_CASES)
def test_mode_flags_fail_like_the_real_module(name: str, value: object) -> None:
    spidev = pytest.importorskip("spidev")
    outcomes = []
    for dev in (spidev.SpiDev(), FakeSpiDev()):
        try:
            setattr(dev, name, value)
            outcomes.append(("ok", str(getattr(dev, name))))
        except (TypeError, OSError) as exc:
            outcomes.append((type(exc).__name__, str(exc)))
    assert outcomes[0] == outcomes[1]


def test_the_real_module_keeps_its_descriptor_after_a_failed_open_and_the_bus_closes_it() -> None:
    spidev = pytest.importorskip("spidev")
    probe = spidev.SpiDev()
    with pytest.raises(OSError):
        probe.open_path("/dev/null")  # open(2) works, SPI_IOC_RD_MODE is ENOTTY
    assert probe.fileno() >= 0  # the module's own behaviour: the fd is still open
    probe.close()

    class NotSpidev(spidev.SpiDev):  # type: ignore[misc]
        def open(self, bus: int, device: int) -> None:
            self.open_path("/dev/null")

    made: list[object] = []

    def factory() -> object:
        made.append(NotSpidev())
        return made[-1]

    with pytest.raises(TransportError, match="Could not open"):
        SpidevBus(spidev_factory=factory, bufsiz=4096, model_path=None).open()
    assert made[0].fileno() == -1  # type: ignore[attr-defined]
    fake = FakeSpiDev(spidev_node=False)
    with pytest.raises(TransportError):
        SpidevBus(spidev_factory=lambda: fake, bufsiz=4096, model_path=None).open()
    assert fake.closed


def test_flags_another_program_left_are_cleared_on_the_fake() -> None:
    dev = FakeSpiDev(kernel_mode=SPI_CS_HIGH | SPI_NO_CS | 0x3)
    bus = SpidevBus(spidev_factory=lambda: dev, bufsiz=4096, model_path=None)
    bus.open()
    assert (dev.cshigh, dev.no_cs, dev.lsbfirst, dev.threewire, dev.mode) == (False, False, False, False, 0)
    assert dev.kernel_mode == 0  # and the kernel keeps it that way for the next program


# --- the real module over a loopback node --------------------------------------------------------

CHILD = r"""
import json, sys
import numpy as np
from libloop.display import Display
from libloop.transport.spidev_bus import SpidevBus
from sim.fakespi import FakeSpiDev
from sim.pins import FakePin

bufsiz_path, out = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(7)
frame = rng.integers(0, 256, 240 * 320 * 2, dtype=np.uint8)
patch = rng.integers(0, 256, 50 * 30 * 2, dtype=np.uint8)


def drive(bus):
    display = Display(bus, FakePin("dc"), None, None, sleep=lambda s: None)
    display.open()
    display.show_frame(frame)
    display.blit(10, 20, 59, 49, patch)
    raw = display.read_memory(0, 0, 239, 319)
    display.close()
    return raw

real = SpidevBus(0, 0, bufsiz_path=bufsiz_path, model_path=None)
raw = drive(real)
bufsiz = int(open(bufsiz_path).read())
fake = FakeSpiDev(bufsiz=bufsiz, record_payloads=True, transcript_limit=None)
drive(SpidevBus(spidev_factory=lambda: fake, bufsiz_path=bufsiz_path, model_path=None))
writes = b"".join(e.data or b"" for e in fake.transcript if e.kind == "write")
json.dump({"max_transfer": real.max_transfer, "max_read": real.max_read, "read_bytes": len(raw),
           "fake_writes": writes.hex()}, open(out, "w"))
"""


@pytest.fixture(scope="module")
def loopback_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("spidev")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not Path("/usr/include/linux/spi/spidev.h").exists():
        pytest.skip("no C compiler or Linux headers to build the loopback spidev node")
    if not sys.platform.startswith("linux"):
        pytest.skip("LD_PRELOAD is Linux-only")
    lib = tmp_path_factory.mktemp("shim") / "spidev_loopback.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(lib), str(SHIM_SOURCE), "-ldl"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return lib


def parse_log(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


@pytest.mark.parametrize("bufsiz", [4096, 65536])
def test_the_display_through_the_real_module_stays_within_every_limit(
    loopback_shim: Path, tmp_path: Path, bufsiz: int
) -> None:
    bufsiz_file = tmp_path / "bufsiz"
    bufsiz_file.write_text(f"{bufsiz}\n")
    log, mosi, out = tmp_path / "spi.log", tmp_path / "mosi.bin", tmp_path / "out.json"
    env = {
        **os.environ,
        "LD_PRELOAD": str(loopback_shim),
        "LOOP_SPIDEV_BUFSIZ": str(bufsiz),
        "LOOP_SPIDEV_BUFSIZ_FILE": str(bufsiz_file),
        "LOOP_SPIDEV_MODE": hex(SPI_CS_HIGH | 0x1),  # a previous program's cshigh and mode 1
        "LOOP_SPIDEV_LOG": str(log),
        "LOOP_SPIDEV_MOSI": str(mosi),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(bufsiz_file), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    events = parse_log(log)
    assert not [e for e in events if "EMSGSIZE" in e or "EINVAL" in e]
    modes = [int(e[1], 16) for e in events if e[0] == "mode"]
    assert modes and modes[-1] == 0  # cshigh cleared, mode 0
    writes = [int(e[1]) for e in events if e[0] == "write"]
    assert writes and all(0 < n <= result["max_transfer"] for n in writes)
    assert max(writes) == result["max_transfer"] == min(bufsiz, 65534)
    reads = [e for e in events if e[0] == "message"]
    assert reads, "the read-back went through xfer2"
    for event in reads:
        assert event[1] == "1"  # one transfer: one chip-select frame
        length, speed = (int(x) for x in event[2].split("@"))
        assert length <= min(4096, bufsiz) and speed == 6_000_000
    assert result["read_bytes"] == 240 * 320 * 3
    # What went out of MOSI is byte for byte what the simulator's fake device was sent.
    sent = mosi.read_bytes()
    wire_writes = b"".join(_split_writes(sent, events))
    assert wire_writes == bytes.fromhex(result["fake_writes"])


def _split_writes(sent: bytes, events: list[list[str]]) -> list[bytes]:
    """The MOSI bytes of write(2) calls only (messages are reads, compared separately)."""
    out, at = [], 0
    for event in events:
        if event[0] == "write":
            n = int(event[1])
            out.append(sent[at : at + n])
            at += n
        elif event[0] == "message":
            at += sum(int(part.split("@")[0]) for part in event[2:])
    return out
