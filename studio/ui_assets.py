"""Static parts of the page: keyboard shortcuts (script and help text) and a little CSS. No external files."""
from __future__ import annotations

# (key, what it does: "#elem_id" clicks that control, a CSS selector clicks the first match, "size:N" changes the
# brush size by N pixels, "step:N" moves N frames (wrapping around); help line or "" when the key shares the line
# above)
SHORTCUTS: tuple[tuple[str, str, str], ...] = (
    ("ArrowRight", "step:1", "→ / d: next frame (hold or tap quickly to move several)"),
    ("d", "step:1", ""),
    ("ArrowLeft", "step:-1", "← / a: previous frame"),
    ("a", "step:-1", ""),
    (" ", "#play", "space: play / pause"),
    ("r", "#mark_reviewed", "r: accept the frame (mark it reviewed) and go to the next"),
    ("f", "#mark_fix", "f: mark the frame as needing a fix"),
    ("u", "#next_unreviewed", "u: next unreviewed frame"),
    ("l", "#next_lowconf", "l: next frame whose score is below the threshold"),
    ("s", "#segment_obj", "s: segment the selected object"),
    ("z", "#undo", "z: undo"),
    ("y", "#redo", "y: redo"),
    ("o", "#show_boxes", "o: show / hide boxes"),
    ("c", "#show_candidates", "c: show the model's candidates for the selected object"),
    ("e", "#brush_load", "e: edit this frame's mask with the brush / eraser"),
    ("b", "#brush button[aria-label='Brush']", "b: brush (paints the object)"),
    ("x", "#brush button[aria-label='Erase']", "x: eraser"),
    ("[", "size:-4", "[ / ]: smaller / larger brush"),
    ("]", "size:4", ""),
    ("m", "#brush_save", "m: save the painted mask (it replaces the frame's mask)"),
    ("p", "#propagate", "p: propagate this frame's mask to the next frames"),
)

HELP = "\n".join(f"- {text}" for _, _, text in SHORTCUTS if text) + (
    "\n\nShortcuts do nothing while the cursor is in a text box; press Esc to leave it.")

_KEYMAP = ", ".join(f'"{key}": "{action}"' for key, action, _ in SHORTCUTS)

SHORTCUTS_JS = """
() => {
  const keys = {%s};
  const brushSize = (delta) => {
    const apply = () => {
      const range = document.querySelector("#brush input[type=range]");
      if (!range) return false;
      range.value = Math.min(+range.max, Math.max(+range.min, +range.value + delta));
      range.dispatchEvent(new Event("input", {bubbles: true}));
      range.dispatchEvent(new Event("change", {bubbles: true}));
      return true;
    };
    if (apply()) return;
    const opener = document.querySelector("#brush button[aria-label='Brush Size']");
    if (opener) { opener.click(); setTimeout(apply, 60); }
  };
  // Frame steps move the slider at once and ask for the frame only when the keys pause, so quick presses add up
  // (a click per press would send the same starting frame each time while the first answer is on its way).
  let stepTimer = null;
  const stepFrames = (delta) => {
    const range = document.querySelector("#frame_slider input[type=range]");
    if (!range) return;
    const count = +range.max - +range.min + 1;
    range.value = +range.min + (((+range.value - +range.min + delta) %% count) + count) %% count;
    range.dispatchEvent(new Event("input", {bubbles: true}));
    clearTimeout(stepTimer);
    stepTimer = setTimeout(() => range.dispatchEvent(new Event("pointerup", {bubbles: true})), 150);
  };
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const tag = (target && target.tagName || "").toLowerCase();
    if (event.key === "Escape" && target && target.blur) { target.blur(); return; }
    const typing = tag === "textarea" || tag === "select" || (target && target.isContentEditable) ||
      (tag === "input" && !["range", "checkbox", "radio", "button"].includes(target.type));
    if (typing) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat && event.key === " ") return;
    const action = keys[event.key];
    if (!action) return;
    event.preventDefault();
    if (action.startsWith("size:")) { brushSize(parseInt(action.slice(5), 10)); return; }
    if (action.startsWith("step:")) { stepFrames(parseInt(action.slice(5), 10)); return; }
    const root = document.querySelector(action);
    if (!root) return;
    const control = root.matches("button, input") ? root : root.querySelector("button, input");
    if (control) control.click();
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
#candidates .caption-label { font-size: 0.72em; padding: 1px 4px; max-width: 98%; }
#viewer img { object-fit: contain; }
#sample_select input { font-size: 0.85em; text-overflow: ellipsis; padding-right: 1.6em; }
"""
