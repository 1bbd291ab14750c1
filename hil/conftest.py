"""The rig fixture: every test in hil/ runs once per rig that can load here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hil.rig import RIGS, Rig, RigUnavailable, selected_rigs


@pytest.fixture(params=list(RIGS), scope="module")
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    name: str = request.param
    if name not in selected_rigs():
        pytest.skip(f"rig {name!r} not selected (LOOP_RIG)")
    try:
        built = RIGS[name]()
    except RigUnavailable as exc:
        pytest.skip(f"{name} rig unavailable: {exc}")
    try:
        yield built
    finally:
        built.close()
