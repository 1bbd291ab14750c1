"""Import the old device's ``media_index.json`` into the library.

The old firmware wrote its index in several shapes over its life, and read it back as a dict
while writing it as a list, so real files mix them. Every shape is accepted:

- a list of entries: ``[{...}, {...}]`` (list position is the fallback order);
- a dict keyed by id: ``{"a1": {...}, "b2": {...}}`` (the key is the id unless the entry has one);
- both mixed: ``{"version": 2, "items": [{...}], "c3": {...}}`` (``items``, ``media``, ``files``
  or ``playlist`` hold a list; other dict values are keyed entries; scalars are ignored, noted);
- entries that are a bare file name string: ``["cat.gif", ...]``.

Field mapping (first one present wins; all optional except a file):

| old field | becomes |
|---|---|
| ``id``, ``uid``, ``uuid``, ``key`` (or the dict key) | the item id, if it is a valid unused id |
| ``filename``, ``file``, ``path``, ``src``, ``filepath``, ``file_path``, ``media`` | the source file |
| ``name``, ``title``, ``label`` (else the file's stem) | name |
| ``enabled``, ``active``, ``visible``; ``disabled`` inverted | enabled (bools, 0/1, "yes"/"no") |
| ``order``, ``position``, ``index``, ``sort`` | play order (entries without one go last) |
| ``type``, ``kind``, ``frames``, ``duration`` | ignored: the conversion measures them afresh |

A relative file is looked up next to the JSON file, then in its ``media/`` and ``uploads/``
folders. The old device kept source media, so each entry is converted by the caller's
``convert(source) -> (frame_file, NewItem)`` (the CLI passes one that runs
``libloop.media.import_media``). Entries whose file is missing or fails to convert are
reported, not imported; entries already in the library (same content hash) are skipped, so
re-running an interrupted import is safe. Afterwards the JSON is renamed to
``media_index.json.imported-<timestamp>``; unreadable JSON is renamed to
``media_index.json.unreadable-<timestamp>`` and reported: it is never dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libloop.errors import InvalidChange, LegacyIndexError, LoopError

from . import durable
from .items import ID_PATTERN, Item, NewItem, check_name

if TYPE_CHECKING:
    from .store import Library

Converter = Callable[[Path], tuple[Path, NewItem]]

ID_FIELDS = ("id", "uid", "uuid", "key")
FILE_FIELDS = ("filename", "file", "path", "src", "filepath", "file_path", "media")
NAME_FIELDS = ("name", "title", "label")
ENABLED_FIELDS = ("enabled", "active", "visible")
ORDER_FIELDS = ("order", "position", "index", "sort")
LIST_KEYS = ("items", "media", "files", "playlist")
_TRUE = {"true", "yes", "on", "1", "enabled"}
_FALSE = {"false", "no", "off", "0", "disabled"}


@dataclass(frozen=True)
class LegacyEntry:
    """One entry of the old index, normalised."""

    key: str  # the old id, or "#<n>" for an entry without one
    file: str
    name: str | None = None
    enabled: bool = True
    order: float | None = None
    legacy_id: str | None = None


@dataclass(frozen=True)
class Skipped:
    """An old entry that was not imported, and why."""

    key: str
    file: str | None
    reason: str


@dataclass
class LegacyReport:
    """What an import did. ``ok``: the JSON was readable and every entry was imported or present."""

    source: Path
    backup: Path | None = None
    error: str | None = None
    imported: list[Item] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.skipped

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "backup": str(self.backup) if self.backup else None,
            "error": self.error,
            "ok": self.ok,
            "imported": [i.to_dict() for i in self.imported],
            "already_present": list(self.already_present),
            "skipped": [dataclasses.asdict(s) for s in self.skipped],
            "notes": list(self.notes),
        }


def parse_legacy(data: Any) -> tuple[list[LegacyEntry], list[Skipped], list[str]]:
    """Normalise any old index value into entries (in play order), malformed entries, and notes.

    Never raises, whatever the JSON value is.
    """
    raw: list[tuple[str | None, Any]] = []
    notes: list[str] = []
    if isinstance(data, list):
        raw = [(None, v) for v in data]
    elif isinstance(data, dict):
        for key, value in data.items():
            if key in LIST_KEYS and isinstance(value, list):
                raw.extend((None, v) for v in value)
            elif isinstance(value, dict | str):
                raw.append((str(key), value))
            else:
                notes.append(f"ignored the top-level field {key!r}")
    else:
        return [], [], [f"the index holds a {type(data).__name__}, not a list or an object"]
    entries: list[LegacyEntry] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for n, (dict_key, value) in enumerate(raw):
        entry = _entry(n, dict_key, value)
        if isinstance(entry, Skipped):
            skipped.append(entry)
        elif entry.key in seen:
            skipped.append(Skipped(entry.key, entry.file, "a second entry with the same id"))
        else:
            seen.add(entry.key)
            entries.append(entry)
    ranked = sorted(enumerate(entries), key=lambda p: (p[1].order is None, p[1].order or 0.0, p[0]))
    return [e for _, e in ranked], skipped, notes


def _entry(n: int, dict_key: str | None, value: Any) -> LegacyEntry | Skipped:
    if isinstance(value, str):
        value = {"file": value}
    if not isinstance(value, dict):
        return Skipped(dict_key or f"#{n}", None, f"the entry is a {type(value).__name__}, not an object")
    own_id = _first(value, ID_FIELDS)
    legacy_id = str(own_id) if isinstance(own_id, str | int) and not isinstance(own_id, bool) else dict_key
    key = legacy_id or f"#{n}"
    file = _first(value, FILE_FIELDS)
    if not isinstance(file, str) or not file.strip() or "\0" in file:
        return Skipped(key, None, "the entry names no file")
    name = _first(value, NAME_FIELDS)
    return LegacyEntry(
        key=key,
        file=file,
        name=name if isinstance(name, str) else None,
        enabled=_enabled(value),
        order=_number(_first(value, ORDER_FIELDS)),
        legacy_id=legacy_id if legacy_id and ID_PATTERN.fullmatch(legacy_id) else None,
    )


def _first(entry: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in entry and entry[name] is not None:
            return entry[name]
    return None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def _enabled(entry: dict[str, Any]) -> bool:
    flag = _flag(_first(entry, ENABLED_FIELDS))
    if flag is not None:
        return flag
    disabled = _flag(entry.get("disabled"))
    return not disabled if disabled is not None else True


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def resolve_source(index_path: Path, file: str) -> Path | None:
    """Where an entry's source file is now, or None if it is gone."""
    base = index_path.parent
    given = Path(file)
    candidates = [given] if given.is_absolute() else [base / given]
    candidates += [base / "media" / given.name, base / "uploads" / given.name, base / given.name]
    for candidate in candidates:
        with contextlib.suppress(OSError, ValueError):
            if candidate.is_file():
                return candidate
    return None


def _set_aside(path: Path, label: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{label}-{stamp}-{n}")
    durable.move_durably(path, target)
    return target


def import_legacy(library: Library, path: Path, convert: Converter) -> LegacyReport:
    """Import the entries of the old index at ``path`` (see the module docstring)."""
    report = LegacyReport(source=path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise LegacyIndexError(f"There is no legacy index at {path}; check the path.") from None
    except OSError as err:
        raise LegacyIndexError(f"The legacy index at {path} cannot be read ({err.strerror}).") from err
    try:
        data = json.loads(text.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as err:
        report.backup = _set_aside(path, "unreadable")
        report.error = f"The legacy index is not valid JSON ({err}); it was kept as {report.backup.name}."
        return report
    entries, report.skipped, report.notes = parse_legacy(data)
    if not isinstance(data, list | dict):
        report.error = f"The legacy index holds no entries ({report.notes[0]}); it was kept as a backup."
    for entry in entries:
        _import_one(library, path, entry, convert, report)
    report.backup = _set_aside(path, "imported" if report.error is None else "unreadable")
    return report


def _import_one(
    library: Library, path: Path, entry: LegacyEntry, convert: Converter, report: LegacyReport
) -> None:
    source = resolve_source(path, entry.file)
    if source is None:
        report.skipped.append(Skipped(entry.key, entry.file, "the file no longer exists"))
        return
    try:
        staged, meta = convert(source)
    except (LoopError, OSError, ValueError) as err:
        report.skipped.append(Skipped(entry.key, entry.file, f"it could not be converted: {err}"))
        return
    existing = library.find_by_hash(meta.content_hash)
    if existing is not None:
        with contextlib.suppress(OSError):
            durable.unlink(staged)
        if existing.id == entry.legacy_id and existing.enabled != entry.enabled:
            library.update(existing.id, enabled=entry.enabled)  # finish an interrupted import
        report.already_present.append(existing.id)
        return
    if entry.name is not None:
        with contextlib.suppress(InvalidChange):
            meta = dataclasses.replace(meta, name=check_name(entry.name.strip()))
    item_id = entry.legacy_id
    if item_id is not None and library._query("SELECT 1 FROM used_ids WHERE id = ?", (item_id,)):
        report.notes.append(f"entry {entry.key!r} got a new id because its old one is taken")
        item_id = None
    try:
        item = library.add(staged, meta, item_id=item_id)
        if not entry.enabled:
            item = library.update(item.id, enabled=False)
    except InvalidChange as err:
        report.skipped.append(Skipped(entry.key, entry.file, str(err)))
        return
    report.imported.append(item)
