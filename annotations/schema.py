"""The project database: its tables, their primary keys, and opening one (version and application checked).

Tables::

    info        key -> value ('application')
    videos      one row per video; frames_dir names its folder under frames/
    frames      (video_id, frame_index) -> frame name, index in the source video
    objects     one row per object; obj_id is the per-video id used in the exports
    expressions (object_id, position) -> referring expression
    masks       (object_id, frame_index) -> COCO RLE counts, area, bbox, origin, score
    reviews     (video_id, frame_index) -> review state
    history     one row per undoable edit: its row changes as JSON, and whether it is undone
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from .errors import ProjectError, SchemaVersionError

SCHEMA_VERSION = 2
APPLICATION = "referformer-studio-annotations"
DB_NAME = "project.sqlite"

SCHEMA = """
CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE videos (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    frames_dir TEXT NOT NULL UNIQUE,
    source_path TEXT NOT NULL,
    fps REAL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    frame_count INTEGER NOT NULL,
    sampling TEXT NOT NULL
);
CREATE TABLE frames (
    video_id INTEGER NOT NULL REFERENCES videos(id),
    frame_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    source_index INTEGER NOT NULL,
    PRIMARY KEY (video_id, frame_index),
    UNIQUE (video_id, name)
);
CREATE TABLE objects (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES videos(id),
    obj_id INTEGER NOT NULL CHECK (obj_id > 0),
    category TEXT NOT NULL,
    UNIQUE (video_id, obj_id)
);
CREATE TABLE expressions (
    object_id INTEGER NOT NULL REFERENCES objects(id),
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (object_id, position)
);
CREATE TABLE masks (
    object_id INTEGER NOT NULL REFERENCES objects(id),
    frame_index INTEGER NOT NULL,
    counts TEXT NOT NULL,
    area INTEGER NOT NULL,
    bbox TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('model', 'hand', 'propagated', 'tracked', 'imported')),
    score REAL,
    PRIMARY KEY (object_id, frame_index)
);
CREATE TABLE reviews (
    video_id INTEGER NOT NULL REFERENCES videos(id),
    frame_index INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('unreviewed', 'reviewed', 'needs_fixing')),
    PRIMARY KEY (video_id, frame_index)
);
CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    description TEXT NOT NULL,
    changes TEXT NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
);
"""

TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "videos": ("id",),
    "frames": ("video_id", "frame_index"),
    "objects": ("id",),
    "expressions": ("object_id", "position"),
    "masks": ("object_id", "frame_index"),
    "reviews": ("video_id", "frame_index"),
}


def create_database(path: Path) -> sqlite3.Connection:
    """A new, empty project database at ``path``."""
    db = _connect(path)
    db.executescript("BEGIN;" + SCHEMA + "COMMIT;")
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO info VALUES ('application', ?)", (APPLICATION,))
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.execute("COMMIT")
    return db


def open_database(path: Path) -> sqlite3.Connection:
    """Open a project database; refuses files that are not projects or use another schema version."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    try:
        _configure(db)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        app = db.execute("SELECT value FROM info WHERE key = 'application'").fetchone()
    except sqlite3.DatabaseError as exc:
        db.close()
        raise ProjectError(f"{path}: not a valid project database ({exc})") from None
    if app is None or app[0] != APPLICATION:
        db.close()
        raise ProjectError(f"{path}: info.application: not a ReferFormer Studio annotation project")
    if version in _UPGRADES:
        _upgrade(db, version)
        version = SCHEMA_VERSION
    if version != SCHEMA_VERSION:
        db.close()
        age = "a newer" if version > SCHEMA_VERSION else "an older"
        raise SchemaVersionError(
            f"{path}: user_version: project uses schema {version}, made by {age} version of "
            f"ReferFormer Studio; this version reads schema {SCHEMA_VERSION}"
        )
    return db


def _masks_v2(db: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the masks table's origin check admits ``tracked`` (SQLite cannot alter a CHECK: copy)."""
    masks = SCHEMA[SCHEMA.index("CREATE TABLE masks"):SCHEMA.index("CREATE TABLE reviews")]
    db.execute(masks.replace("CREATE TABLE masks", "CREATE TABLE masks_v2"))
    db.execute("INSERT INTO masks_v2 SELECT * FROM masks")
    db.execute("DROP TABLE masks")
    db.execute("ALTER TABLE masks_v2 RENAME TO masks")


_UPGRADES = {1: _masks_v2}


def _upgrade(db: sqlite3.Connection, version: int) -> None:
    """Bring an older project's database to :data:`SCHEMA_VERSION` in one transaction (all or nothing)."""
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] == version:
            while version in _UPGRADES:
                _UPGRADES[version](db)
                version += 1
            db.execute(f"PRAGMA user_version = {version}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    finally:
        db.execute("PRAGMA foreign_keys = ON")


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    _configure(db)
    return db


def _configure(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
