"""Annotation projects (SQLite store + frames) and the Ref-Youtube-VOS, YouTube-VIS and COCO formats."""
from .coco import export_coco, import_coco, read_coco, to_coco
from .errors import AnnotationError, EditError, FormatError, ProjectError, SchemaVersionError
from .exchange import export_project, import_into
from .model import Dataset, Frame, Origin, ReviewState, Track, VideoData
from .store import HistoryEntry, MaskInfo, ObjectInfo, Project, VideoInfo
from .ytvis import export_ytvis, import_ytvis, read_ytvis, to_ytvis
from .ytvos import export_ytvos, import_ytvos, read_ytvos

__all__ = [
    "AnnotationError", "Dataset", "EditError", "FormatError", "Frame", "HistoryEntry", "MaskInfo", "ObjectInfo",
    "Origin", "Project", "ProjectError", "ReviewState", "SchemaVersionError", "Track", "VideoData", "VideoInfo",
    "export_coco", "export_project", "export_ytvis", "export_ytvos", "import_coco", "import_into", "import_ytvis",
    "import_ytvos", "read_coco", "read_ytvis", "read_ytvos", "to_coco", "to_ytvis",
]
