"""Static parts of the page: its script (keyboard shortcuts, click mode on the frame), the shortcuts' help text
and a little CSS. No external files."""
from __future__ import annotations

# (key, what it does: "#elem_id" clicks that control, a CSS selector clicks the first match, "tool:LABEL" selects
# the brush panel's tool of that label, "size:N" changes the current tool's size by N pixels, "step:N" moves N
# frames (wrapping around); help line or "" when the key shares the line above)
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
    ("b", "tool:Brush", "b: brush (paints the object)"),
    ("x", "tool:Erase", "x: eraser"),
    ("[", "size:-4", "[ / ]: smaller / larger brush"),
    ("]", "size:4", ""),
    ("m", "#brush_save", "m: save the painted mask (it replaces the frame's mask)"),
    ("p", "#propagate", "p: propagate this frame's mask to the next frames (optical flow)"),
    ("k", "#click_mode", "k: click mode on / off: click = the object, shift+click or right click = not the object, "
                         "drag = a box around it"),
    ("t", "#track_fwd", "t / shift+t: track the selected object forward / backward from this frame"),
    ("T", "#track_back", ""),
    ("Escape", "#click_clear", "Esc: clear this frame's clicks (and leave a text box)"),
)

HELP = "\n".join(f"- {text}" for _, _, text in SHORTCUTS if text) + (
    "\n\nShortcuts do nothing while the cursor is in a text box; press Esc to leave it.")

_KEYMAP = ", ".join(f'"{key}": "{action}"' for key, action, _ in SHORTCUTS)

PAGE_JS = """
() => {
  const keys = {%s};
  // Size keys act on the current tool's size slider, opening it first when closed; presses made while it opens
  // add up. A tool key drops a size change still waiting for its slider (it was meant for the other tool) and
  // checks its tool stays selected: the editor applies a size change a little later and then re-selects the tool
  // that change was made for.
  let pendingSize = 0, sizeTimer = null;
  const applySize = () => {
    const range = document.querySelector("#brush input[type=range]");
    if (!range) return false;
    range.value = Math.min(+range.max, Math.max(+range.min, +range.value + pendingSize));
    pendingSize = 0;
    range.dispatchEvent(new Event("input", {bubbles: true}));
    range.dispatchEvent(new Event("change", {bubbles: true}));
    return true;
  };
  const brushSize = (delta) => {
    pendingSize += delta;
    if (sizeTimer !== null || applySize()) return;
    const opener = document.querySelector(
      "#brush button[aria-label='Brush Size'], #brush button[aria-label='Eraser Size']");
    if (!opener) { pendingSize = 0; return; }
    opener.click();
    sizeTimer = setTimeout(() => { sizeTimer = null; if (!applySize()) pendingSize = 0; }, 60);
  };
  let toolTimer = null;
  const keepTool = (label, tries) => {
    const button = document.querySelector(`#brush button[aria-label='${label}']`);
    if (!button) return;
    if (!button.classList.contains("highlight")) button.click();
    toolTimer = tries > 1 ? setTimeout(() => keepTool(label, tries - 1), 250) : null;
  };
  const selectTool = (label) => {
    clearTimeout(sizeTimer); sizeTimer = null; pendingSize = 0;
    clearTimeout(toolTimer);
    keepTool(label, 6);
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
  // Click mode: a click on the frame is the object, a shift+click or a right click is not, a drag is a box
  // around it. Each gesture goes to the server as fractions of the picture through the hidden #gesture box.
  const clickMode = () => { const box = document.querySelector("#click_mode input"); return !!box && box.checked; };
  const frameImage = (target) => {  // the frame's picture, for a pointer anywhere on its frame (letterbox too)
    const frame = target && target.closest &&
      (target.closest("#viewer .image-frame") || target.closest("#viewer button:has(> .image-frame)"));
    return frame ? frame.querySelector("img") : null;
  };
  const inPicture = (img, event) => {
    const r = img.getBoundingClientRect();
    const nw = img.naturalWidth || r.width, nh = img.naturalHeight || r.height;
    const scale = Math.min(r.width / nw, r.height / nh);
    const left = r.left + (r.width - nw * scale) / 2, top = r.top + (r.height - nh * scale) / 2;
    return [(event.clientX - left) / (nw * scale), (event.clientY - top) / (nh * scale)];
  };
  const band = document.createElement("div");
  band.id = "click_band";
  document.body.appendChild(band);
  let drag = null;
  let sent = 0;
  const sendGesture = (gesture) => {
    const box = document.querySelector("#gesture textarea, #gesture input");
    const button = document.querySelector("#gesture_send");
    if (!box || !button) return;
    box.value = JSON.stringify(Object.assign(gesture, {n: ++sent}));
    box.dispatchEvent(new Event("input", {bubbles: true}));
    setTimeout(() => button.click(), 30);
  };
  document.addEventListener("pointerdown", (event) => {
    const img = frameImage(event.target);
    if (!img || !clickMode()) return;
    event.preventDefault();
    event.stopPropagation();
    drag = {img, at: inPicture(img, event), x: event.clientX, y: event.clientY,
            positive: !(event.shiftKey || event.button === 2)};
  }, true);
  document.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const x = Math.min(drag.x, event.clientX), y = Math.min(drag.y, event.clientY);
    Object.assign(band.style, {display: "block", left: x + "px", top: y + "px",
      width: Math.abs(event.clientX - drag.x) + "px", height: Math.abs(event.clientY - drag.y) + "px"});
  }, true);
  document.addEventListener("pointerup", (event) => {
    if (!drag) return;
    const start = drag;
    drag = null;
    band.style.display = "none";
    event.preventDefault();
    event.stopPropagation();
    const end = inPicture(start.img, event);
    sendGesture({x0: start.at[0], y0: start.at[1], x1: end[0], y1: end[1], positive: start.positive});
  }, true);
  for (const kind of ["click", "contextmenu"]) {  // in click mode the frame's own click (pick a candidate) is off
    document.addEventListener(kind, (event) => {
      if (clickMode() && frameImage(event.target)) { event.preventDefault(); event.stopPropagation(); }
    }, true);
  }
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const tag = (target && target.tagName || "").toLowerCase();
    const typing = tag === "textarea" || tag === "select" || (target && target.isContentEditable) ||
      (tag === "input" && !["range", "checkbox", "radio", "button"].includes(target.type));
    if (typing) { if (event.key === "Escape" && target.blur) target.blur(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat && event.key === " ") return;
    const action = keys[event.key];
    if (!action) return;
    event.preventDefault();
    if (action.startsWith("size:")) { brushSize(parseInt(action.slice(5), 10)); return; }
    if (action.startsWith("tool:")) { selectTool(action.slice(5)); return; }
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
#click_band { position: fixed; display: none; border: 2px dashed #fff; outline: 1px solid #000;
              pointer-events: none; z-index: 1000; }
#correct_tools, #correct_more { align-items: end; }
body:has(#click_mode input:checked) #viewer img { cursor: crosshair; }
#sample_select input { font-size: 0.85em; text-overflow: ellipsis; padding-right: 1.6em; }
"""
