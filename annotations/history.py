"""The linear undo/redo history: an edit is a list of row changes ``(table, key, before, after)``.

Rows are applied as they are recorded; undo applies the ``before`` rows in reverse order, redo the
``after`` rows in order (so foreign keys hold at every step).  A new edit discards the redo stack.
Callers run every function here inside one write transaction.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from .records import HistoryEntry
from .schema import TABLE_KEYS

Row = dict[str, Any]
Change = tuple[str, Row, "Row | None", "Row | None"]


class Edit:
    """Collects the row changes of one edit: applied immediately, recorded by :func:`record`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.changes: list[Change] = []

    def put(self, table: str, row: Row) -> None:
        """Insert or replace ``row`` (all columns) in ``table``."""
        self._record(table, {k: row[k] for k in TABLE_KEYS[table]}, row)

    def delete(self, table: str, key: Row) -> None:
        """Delete the row of ``table`` with primary key ``key`` (nothing when absent)."""
        self._record(table, key, None)

    def _record(self, table: str, key: Row, after: Row | None) -> None:
        before = read_row(self._db, table, key)
        if before == after:
            return
        apply_row(self._db, table, key, after)
        self.changes.append((table, key, before, after))


def record(db: sqlite3.Connection, description: str, edit: Edit) -> bool:
    """Store ``edit`` as the newest history entry, discarding the redo stack; True when redo entries were dropped."""
    if not edit.changes:
        return False
    dropped = db.execute("DELETE FROM history WHERE undone = 1").rowcount > 0
    db.execute("INSERT INTO history (description, changes) VALUES (?, ?)", (description, json.dumps(edit.changes)))
    return dropped


def undo(db: sqlite3.Connection) -> str | None:
    """Undo the newest edit; its description, or None when there is nothing to undo."""
    row = db.execute(
        "SELECT id, description, changes FROM history WHERE undone = 0 ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    for table, key, before, _after in reversed(json.loads(row[2])):
        apply_row(db, table, key, before)
    db.execute("UPDATE history SET undone = 1 WHERE id = ?", (row[0],))
    return row[1]


def redo(db: sqlite3.Connection) -> str | None:
    """Redo the oldest undone edit; its description, or None when there is nothing to redo."""
    row = db.execute("SELECT id, description, changes FROM history WHERE undone = 1 ORDER BY id LIMIT 1").fetchone()
    if row is None:
        return None
    for table, key, _before, after in json.loads(row[2]):
        apply_row(db, table, key, after)
    db.execute("UPDATE history SET undone = 0 WHERE id = ?", (row[0],))
    return row[1]


def entries(db: sqlite3.Connection) -> list[HistoryEntry]:
    """All recorded edits, oldest first."""
    return [HistoryEntry(r[0], r[1], bool(r[2]))
            for r in db.execute("SELECT id, description, undone FROM history ORDER BY id")]


def mentions(db: sqlite3.Connection, value: str) -> bool:
    """Whether any history entry holds the string ``value`` as a JSON value (e.g. a frames folder name)."""
    return db.execute("SELECT 1 FROM history WHERE instr(changes, ?) > 0 LIMIT 1",
                      (json.dumps(value),)).fetchone() is not None


def apply_row(db: sqlite3.Connection, table: str, key: Row, row: Row | None) -> None:
    """Make the row of ``table`` at ``key`` be ``row`` (None: absent)."""
    where = " AND ".join(f"{k} = ?" for k in key)
    if row is None:
        db.execute(f"DELETE FROM {table} WHERE {where}", tuple(key.values()))
    else:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        db.execute(f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({marks})", tuple(row.values()))


def read_row(db: sqlite3.Connection, table: str, key: Row) -> Row | None:
    """The row of ``table`` at ``key`` as a dict, or None."""
    where = " AND ".join(f"{k} = ?" for k in key)
    cur = db.execute(f"SELECT * FROM {table} WHERE {where}", tuple(key.values()))
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row))
