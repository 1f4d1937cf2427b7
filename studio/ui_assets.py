"""Static parts of the page: keyboard shortcuts (script and help text) and a little CSS. No external files."""
from __future__ import annotations

SHORTCUTS: tuple[tuple[str, str, str], ...] = (
    ("ArrowRight", "next_frame", "→ / d: next frame"),
    ("d", "next_frame", ""),
    ("ArrowLeft", "prev_frame", "← / a: previous frame"),
    ("a", "prev_frame", ""),
    (" ", "play", "space: play / pause"),
    ("r", "mark_reviewed", "r: mark the frame reviewed and go to the next"),
    ("f", "mark_fix", "f: mark the frame as needing a fix"),
    ("u", "next_unreviewed", "u: next unreviewed frame"),
    ("l", "next_lowconf", "l: next frame whose score is below the threshold"),
    ("s", "segment_obj", "s: segment the selected object"),
    ("z", "undo", "z: undo"),
    ("y", "redo", "y: redo"),
    ("b", "show_boxes", "b: show / hide boxes"),
    ("c", "show_candidates", "c: show the model's candidates for the selected object"),
    ("e", "brush_load", "e: edit this frame's mask with the brush / eraser"),
    ("m", "brush_save", "m: save the painted mask (it replaces the frame's mask)"),
    ("p", "propagate", "p: propagate this frame's mask to the next frames"),
)

HELP = "\n".join(f"- {text}" for _, _, text in SHORTCUTS if text) + (
    "\n\nShortcuts do nothing while the cursor is in a text box; press Esc to leave it.")

_KEYMAP = ", ".join(f'"{key}": "{elem}"' for key, elem, _ in SHORTCUTS)

SHORTCUTS_JS = """
() => {
  const keys = {%s};
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const tag = (target && target.tagName || "").toLowerCase();
    if (event.key === "Escape" && target && target.blur) { target.blur(); return; }
    if (tag === "input" || tag === "textarea" || tag === "select" || (target && target.isContentEditable)) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat && event.key === " ") return;
    const id = keys[event.key];
    if (!id) return;
    const root = document.getElementById(id);
    if (!root) return;
    const control = root.matches("button, input") ? root : root.querySelector("button, input");
    if (!control) return;
    event.preventDefault();
    control.click();
  });
}
""" % _KEYMAP

CSS = """
#header { align-items: baseline; }
#model_line { text-align: right; opacity: 0.75; }
#message { min-height: 2.2em; }
#status { font-variant-numeric: tabular-nums; }
#transport button { font-size: 0.9em; }
#confidence img { cursor: crosshair; }
#viewer img { object-fit: contain; }
"""
