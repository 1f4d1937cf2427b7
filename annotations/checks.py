"""Validation of untrusted input: strict JSON loading, safe names and paths, typed fields.

Every failure raises :class:`FormatError` naming the file and the field.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from referformer_core.errors import ExpressionError
from referformer_core.text import validate_expression

from .errors import FormatError


def load_json(path: Path) -> Any:
    """Read a UTF-8 JSON file, refusing truncated/malformed JSON and duplicate keys."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(path, "(file)", "file not found") from None
    except OSError as exc:
        raise FormatError(path, "(file)", f"cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(path, "(file)", f"not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise FormatError(path, str(exc.args[0]), "duplicate key") from None
    except json.JSONDecodeError as exc:
        raise FormatError(path, "(json)", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def safe_name(file: Path, field: str, name: Any) -> str:
    """Check ``name`` is a single safe path component (video, frame): no separators, no ``..``, UTF-8."""
    if not isinstance(name, str) or not name:
        raise FormatError(file, field, f"must be a non-empty string, got {name!r}")
    if not _is_utf8(name):
        raise FormatError(file, field, f"name {ascii(name)} is not valid UTF-8")
    if name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise FormatError(file, field, f"unsafe name {name!r} (path separators, '..' or NUL)")
    return name


def safe_relative_path(file: Path, field: str, value: Any) -> PurePosixPath:
    """Check ``value`` is a relative POSIX path whose parts are all safe names."""
    if not isinstance(value, str) or not value:
        raise FormatError(file, field, f"must be a non-empty string, got {value!r}")
    if value.startswith("/") or "\\" in value or (len(value) > 1 and value[1] == ":"):
        raise FormatError(file, field, f"absolute path {value!r} is not allowed")
    path = PurePosixPath(value)
    for part in path.parts:
        safe_name(file, field, part)
    return path


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def field(file: Path, obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """Return ``obj[key]`` checked to be of ``kind``; ``where`` is the dotted path of ``obj``."""
    name = f"{where}.{key}" if where else key
    if not isinstance(obj, dict):
        raise FormatError(file, where or "(root)", "must be a JSON object")
    if key not in obj:
        raise FormatError(file, name, "missing")
    value = obj[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise FormatError(file, name, f"must be {_kind_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise FormatError(file, name, f"must be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def positive_int(file: Path, obj: Any, key: str, where: str) -> int:
    value = field(file, obj, key, int, where)
    if value <= 0:
        raise FormatError(file, f"{where}.{key}", f"must be a positive integer, got {value}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def expressions_field(file: Path, values: list, field: str) -> list[str]:
    """``values`` each checked by the one expression rule (:func:`referformer_core.text.validate_expression`);
    ``FormatError`` naming ``field`` and carrying that rule's message otherwise."""
    try:
        return [validate_expression(v) for v in values]
    except ExpressionError as exc:
        raise FormatError(file, field, str(exc)) from None
