"""Errors of the annotations package: each message is one readable line naming the file and field."""
from __future__ import annotations

from pathlib import Path

from referformer_core.errors import ReferFormerError


class AnnotationError(ReferFormerError):
    """Base class of every user-facing error raised by the annotations package."""


class ProjectError(AnnotationError):
    """The project folder or its database cannot be used (missing, not a project, corrupt)."""


class SchemaVersionError(ProjectError):
    """The project was written by a different schema version than this code understands."""


class EditError(AnnotationError):
    """An edit was refused: unknown video/object/frame, bad mask shape, bad review state."""


class FormatError(AnnotationError):
    """An imported file is malformed: bad JSON, wrong field, mismatching ids or sizes, unsafe names."""

    def __init__(self, file: str | Path, field: str, problem: str) -> None:
        self.file = str(file)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.file}: {field}: {problem}")
