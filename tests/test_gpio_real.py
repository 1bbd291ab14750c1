"""GpiodPin through the real gpiod 2.x package, with only the kernel side of a chip faked.

The package's Python layer (``Chip``, ``request_lines``, ``LineRequest``, ``LineSettings``
and their conversion to the C extension's settings objects) all run for real; only the
C extension's ``Chip``, which opens ``/dev/gpiochipN``, is replaced by an in-memory chip with
the header's label and 54 lines. A wrong argument, enum or settings field fails here as it
would on a Pi.
"""

from __future__ import annotations

import errno
import os
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from libloop.errors import TransportError
from libloop.transport.gpio import GpiodPin

gpiod = pytest.importorskip("gpiod")
from gpiod import _ext  # noqa: E402  (after the skip: the C extension of the real package)


class KernelRequest:
    """The C extension's Request for a line: what the kernel holds."""

    def __init__(self, chip: KernelChip, offsets: list[int]) -> None:
        self.chip, self._offsets = chip, offsets
        self.released = False

    @property
    def chip_name(self) -> str:
        return self.chip.name

    @property
    def offsets(self) -> list[int]:
        return list(self._offsets)

    def set_values(self, values: dict[int, Any]) -> None:
        for offset, value in values.items():
            self.chip.levels.setdefault(offset, []).append(value)

    def get_values(self, offsets: list[int], out: list[Any]) -> None:
        for i, offset in enumerate(offsets):
            out[i] = self.chip.levels[offset][-1]

    def reconfigure_lines(self, line_cfg: Any) -> None:
        assert isinstance(line_cfg, _ext.LineConfig)
        self.chip.reconfigured += 1

    def release(self) -> None:
        self.released = True
        self.chip.released += 1


class KernelChip:
    """The C extension's Chip over an in-memory header chip."""

    chips: ClassVar[dict[str, str]] = {}  # node name -> label
    requested: ClassVar[list[int]] = []  # the offsets the next request is for
    last: ClassVar[KernelChip]  # the chip opened last

    def __init__(self, path: str) -> None:
        name = os.path.basename(path)
        if name not in self.chips:
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
        self.name, self.label = name, self.chips[name]
        self.levels: dict[int, list[Any]] = {}
        self.reconfigured = 0
        self.released = 0
        KernelChip.last = self

    def get_info(self) -> Any:
        return gpiod.ChipInfo(self.name, self.label, 54)

    def get_line_name(self, offset: int) -> str | None:
        return f"GPIO{offset}"

    def request_lines(
        self, line_cfg: Any, consumer: str | None, event_buffer_size: int | None
    ) -> KernelRequest:
        assert isinstance(line_cfg, _ext.LineConfig) and consumer == "loop"
        return KernelRequest(self, list(self.requested))

    def close(self) -> None:
        pass


@pytest.fixture
def header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """A Pi 4's header chip at tmp/gpiochip0; yields the LineSettings the package was given."""
    (tmp_path / "gpiochip0").touch()
    KernelChip.chips = {"gpiochip0": "pinctrl-bcm2711"}
    fake_ext = types.SimpleNamespace(Chip=KernelChip, LineConfig=_ext.LineConfig)
    monkeypatch.setattr(gpiod.chip, "_ext", fake_ext)
    seen: list[Any] = []
    real_convert = gpiod.line_settings._line_settings_to_ext

    def convert(settings: Any) -> Any:
        seen.append(settings)
        return real_convert(settings)  # builds the real C settings: bad values fail here

    monkeypatch.setattr(gpiod.chip, "_line_settings_to_ext", convert)
    monkeypatch.setattr(gpiod.line_request, "_line_settings_to_ext", convert)
    yield seen


def test_a_pin_requests_drives_and_releases_through_the_real_package(
    header: list[Any], tmp_path: Path
) -> None:
    KernelChip.requested = [25]
    pin = GpiodPin(25, dev_dir=str(tmp_path), initial=True)
    pin.open()
    chip = KernelChip.last
    first = header[0]
    assert first.direction is gpiod.line.Direction.OUTPUT and first.output_value is gpiod.line.Value.ACTIVE
    pin.set(False)
    pin.set(True)
    assert chip.levels[25] == [gpiod.line.Value.INACTIVE, gpiod.line.Value.ACTIVE]
    pin.close()
    held = header[-1]
    # Released as an input pulled toward its last level: RESET stays high between owners.
    assert held.direction is gpiod.line.Direction.INPUT and held.bias is gpiod.line.Bias.PULL_UP
    assert chip.reconfigured == 1 and chip.released == 1


def test_a_low_line_is_left_pulled_down(header: list[Any], tmp_path: Path) -> None:
    KernelChip.requested = [18]
    pin = GpiodPin(18, dev_dir=str(tmp_path))
    pin.open()
    pin.set(False)
    pin.close()
    assert header[-1].bias is gpiod.line.Bias.PULL_DOWN


def test_a_line_beyond_the_chip_is_a_transport_error(header: list[Any], tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="does not exist"):
        GpiodPin(60, dev_dir=str(tmp_path)).open()  # the package checks num_lines (54)
