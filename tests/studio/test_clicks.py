"""The clicks of one frame: gestures from the page, frame pixels, refusals in one line, the drawing."""
from __future__ import annotations

import numpy as np
import pytest

from studio.clicks import Clicks, Gesture, draw_clicks, parse_gesture
from studio.errors import StudioError
from studio.projects import View

VIEW = View("p", "v", 3, 1)


def test_clicks_add_up_on_one_frame_and_start_afresh_elsewhere():
    clicks = Clicks().add(VIEW, Gesture(0.5, 0.25, 0.5, 0.25), 200, 100)
    clicks = clicks.add(VIEW, Gesture(0.1, 0.9, 0.1, 0.9, positive=False), 200, 100)
    assert clicks.points == ((100.0, 25.0, True), (20.0, 90.0, False)) and clicks.box is None
    boxed = clicks.add(VIEW, Gesture(0.6, 0.8, 0.2, 0.1), 200, 100)  # a drag: the box, any corner order
    assert boxed.box == (120.0, 80.0, 40.0, 10.0) and boxed.points == clicks.points
    assert boxed.describe() == "1 positive, 1 negative click(s), a box"
    other_frame = View("p", "v", 4, 1)
    assert boxed.on(other_frame).points == () and boxed.on(VIEW) is boxed
    fresh = boxed.add(other_frame, Gesture(1.0, 1.0, 1.0, 1.0), 200, 100)
    assert fresh.points == ((199.0, 99.0, True),) and fresh.box is None  # the far edge stays inside the frame


def test_bad_gestures_are_one_line():
    with pytest.raises(StudioError, match="outside the frame"):
        Clicks().add(VIEW, Gesture(1.2, 0.5, 1.2, 0.5), 200, 100)
    with pytest.raises(StudioError, match="select or add an object"):
        Clicks().add(View("p", "v", 0, None), Gesture(0.5, 0.5, 0.5, 0.5), 200, 100)
    for text in ("", "{", "[1, 2]", '{"x0": "a", "y0": 1}', '{"y0": 1}'):
        with pytest.raises(StudioError, match="could not read the click"):
            parse_gesture(text)
    gesture = parse_gesture('{"x0": 0.1, "y0": 0.2, "x1": 0.5, "y1": 0.6, "positive": false, "n": 3}')
    assert gesture == Gesture(0.1, 0.2, 0.5, 0.6, False) and gesture.is_box
    assert not parse_gesture('{"x0": 0.1, "y0": 0.2, "x1": 0.105, "y1": 0.2}').is_box


def test_draw_clicks_marks_points_and_box_without_touching_the_input():
    image = np.zeros((100, 200, 3), np.uint8)
    clicks = Clicks(("p", "v", 1, 3), ((50.0, 50.0, True), (150.0, 50.0, False)), (10.0, 10.0, 190.0, 90.0))
    drawn = draw_clicks(image, clicks)
    assert not image.any(), "the frame itself is not drawn on"
    assert drawn[50, 50, 1] > 150 and drawn[50, 50, 0] < 100  # positive: green
    assert drawn[50, 150, 0] > 150 and drawn[50, 150, 1] < 100  # negative: red
    assert drawn[10, 100].min() > 200 and drawn[50, 100].max() == 0  # the box's edge, not its inside
    assert draw_clicks(image, Clicks()) is image
