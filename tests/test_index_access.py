"""API tokens and login sessions in the library database (``libloop.index.access``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libloop.errors import InvalidChange, TokenExists, TokenNotFound
from libloop.index import SCHEMA_VERSION, ApiTokens, Library, LoginSessions, schema
from libloop.index.access import MAX_SESSIONS, MAX_TOKENS, check_token_name


class WallClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    with Library(tmp_path / "data") as lib:
        yield lib


def test_a_token_is_shown_once_and_found_by_its_secret(library: Library) -> None:
    clock = WallClock()
    tokens = ApiTokens(library, now=clock)
    secret = tokens.create("backup")
    assert secret.startswith("loop_")
    (info,) = tokens.list()
    assert (info.name, info.created, info.last_used) == ("backup", clock.now, None)
    clock.now += 5
    found = tokens.authenticate(secret)
    assert found is not None and found.name == "backup" and found.last_used == clock.now
    assert tokens.authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert tokens.authenticate("") is None
    assert tokens.authenticate("loop_" + "x" * 10_000) is None


def test_last_used_is_written_at_most_once_a_minute(library: Library) -> None:
    clock = WallClock()
    tokens = ApiTokens(library, now=clock)
    secret = tokens.create("poller")
    tokens.authenticate(secret)
    generation = library.generation
    clock.now += 30
    assert tokens.authenticate(secret).last_used == clock.now - 30  # type: ignore[union-attr]
    clock.now += 31
    assert tokens.authenticate(secret).last_used == clock.now  # type: ignore[union-attr]
    assert library.generation == generation  # the player is not woken by logins or token use


def test_names_are_unique_validated_and_revocable(library: Library) -> None:
    library.tokens.create("a")
    with pytest.raises(TokenExists, match="already exists"):
        library.tokens.create("a")
    with pytest.raises(TokenNotFound, match="loop token ls"):
        library.tokens.revoke("b")
    library.tokens.revoke("a")
    assert library.tokens.list() == []


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=70))
def test_token_names_are_short_and_url_safe(name: str) -> None:
    try:
        check_token_name(name)
    except InvalidChange:
        return
    assert 1 <= len(name) <= 64
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)


def test_the_number_of_tokens_is_bounded(library: Library) -> None:
    for n in range(MAX_TOKENS):
        library.tokens.create(f"t{n}")
    with pytest.raises(InvalidChange, match="revoke some"):
        library.tokens.create("one-more")


def test_another_process_sees_a_new_and_a_revoked_token_at_once(library: Library, tmp_path: Path) -> None:
    with Library(library.data_dir) as cli:  # what `loop token` opens while the device runs
        secret = cli.tokens.create("script")
        assert library.tokens.authenticate(secret) is not None
        cli.tokens.revoke("script")
    assert library.tokens.authenticate(secret) is None


def test_sessions_start_end_and_expire(library: Library) -> None:
    clock = WallClock()
    sessions = LoginSessions(library, now=clock, lifetime_s=100.0)
    a, b = sessions.start(), sessions.start()
    assert sessions.is_live(a) and sessions.is_live(b)
    assert sessions.end(a) and not sessions.end(a)
    assert not sessions.is_live(a) and sessions.is_live(b)
    clock.now += 100
    assert not sessions.is_live(b)
    sessions.start()  # pruning happens at the next login
    assert sessions.count() == 1
    assert sessions.end_all() == 1 and sessions.count() == 0
    assert not sessions.is_live("x" * 1000)


def test_the_number_of_sessions_is_bounded(library: Library) -> None:
    first = library.sessions.start()
    for _ in range(MAX_SESSIONS):
        library.sessions.start()
    assert library.sessions.count() == MAX_SESSIONS
    assert not library.sessions.is_live(first)  # the oldest login ended


def test_only_hashes_reach_the_database(library: Library) -> None:
    secret, session_id = library.tokens.create("x"), library.sessions.start()
    raw = b"".join(p.read_bytes() for p in library.data_dir.glob("library.db*"))
    assert secret.encode() not in raw and session_id.encode() not in raw


def test_a_version_2_database_gains_the_tables(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    conn = sqlite3.connect(data / "library.db")
    schema.MIGRATIONS[0](conn)
    schema.MIGRATIONS[1](conn)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with Library(data) as library:
        assert schema.version(library._require()) == SCHEMA_VERSION
        assert schema.schema_problems(library._require()) == []
        assert library.tokens.list() == []
