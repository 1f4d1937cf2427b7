"""The shipped sample videos: listed, opened as a project with their expressions, regenerable exactly."""
import numpy as np
import pytest

from referformer_core.video import iter_frames
from studio.errors import StudioError
from studio.samples import get_sample, list_samples


def test_three_samples_ship_with_their_expressions():
    samples = list_samples()
    assert [s.name for s in samples] == ["sample_1", "sample_2", "sample_3"]
    for sample in samples:
        assert sample.file.is_file() and sample.file.stat().st_size < 1_000_000
        assert len(sample.expressions) >= 2 and all(text and obj >= 1 for text, obj in sample.expressions)


def test_a_sample_mp4_is_its_generated_video():
    world = pytest.importorskip("train.bundled.world")
    sample = get_sample("sample_2")
    frames, labels, expressions = world.render_video(world.video_spec(sample.split, sample.seed, sample.index,
                                                                      sample.num_frames, sample.height, sample.width))
    decoded = np.stack(list(iter_frames(sample.file)))
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 8  # H.264 at its default quality
    assert [(e["exp"], int(e["obj_id"])) for e in expressions] == list(sample.expressions)
    assert all((labels == obj).any() for _, obj in sample.expressions)
    spec = world.video_spec(sample.split, sample.seed, sample.index, sample.num_frames, sample.height, sample.width)
    assert sample.categories == {obj: spec.object(obj).kind for _, obj in sample.expressions}


def test_open_sample_makes_a_project_with_one_object_per_referred_object(studio):
    sample = get_sample("sample_1")
    answer = studio.open_sample("sample_1")
    view, note = answer.view, answer.message
    assert view.project and view.video and "press Segment" in note
    objects = studio.objects(view)
    assert sorted(o.obj_id for o in objects) == sorted({obj for _, obj in sample.expressions})
    texts = sorted(t for o in objects for t in o.expressions)
    assert texts == sorted(text for text, _ in sample.expressions)
    assert view.obj_id == objects[0].obj_id
    assert {o.obj_id: o.category for o in objects} == sample.categories  # the kinds, not "others"
    answer = studio.open_sample("sample_1")  # opened as left, not imported twice
    again, note = answer.view, answer.message
    assert again.project == view.project and note.startswith("opened") and len(studio.objects(again)) == len(objects)
    assert sample.file.is_file()  # the shipped file is read, never moved or deleted


def test_an_unknown_sample_is_one_readable_error(studio):
    with pytest.raises(StudioError, match="no sample called 'nope' \\(known: sample_1, sample_2, sample_3\\)"):
        studio.open_sample("nope")


def test_first_screen_points_at_the_samples(studio):
    from studio.screen import build_screen
    from studio.session import View

    screen = build_screen(studio, View())
    assert "sample" in screen.status and screen.projects == studio.library.names()


def test_the_studio_predictor_keeps_to_the_memory_budget(studio):
    """The studio's model windows are at most its spec's window, and fewer when the default budget asks."""
    from referformer_core.memory import DEFAULT_MAX_MEMORY

    spec = studio.config.model
    predictor = studio.models.get(spec)
    assert predictor.settings.max_memory == DEFAULT_MAX_MEMORY and predictor.settings.window == spec.window


def test_the_studio_memory_budget_comes_from_its_command_line(tiny_model):
    """``python app.py --max-memory GB`` reaches the predictor (0: no budget); a budget below one frame's
    activations leaves one frame per forward pass."""
    import app
    from studio.model import ModelCache, startup_settings

    checkpoint, tokenizer = tiny_model
    assert app.parse_args([]).max_memory == 4.0
    for flag, expected in (("1.5", 1.5), ("0", None)):
        args = app.parse_args(["--checkpoint", str(checkpoint), "--text-encoder", str(tokenizer), "--max-memory", flag])
        spec = startup_settings(args.checkpoint, args.text_encoder, "cpu", 64, args.max_memory)
        assert spec.budget == expected and ModelCache().get(spec).settings.budget == expected
    with pytest.raises(SystemExit):
        app.parse_args(["--max-memory", "-1"])
    starved = ModelCache().get(startup_settings(str(checkpoint), str(tokenizer), "cpu", 64, 0.001))
    state = starved.init_state(np.zeros((4, 64, 80, 3), np.uint8))
    starved.add_expression(state, 1, "the red circle")
    assert starved.window_for(state) == 1
