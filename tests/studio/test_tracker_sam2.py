"""The SAM 2 engine (SAM 2 and EdgeTAM) gives exactly the masks of transformers' own documented calls (processor, inference session,
``propagate_in_video_iterator``, ``post_process_masks``) on the same weights, frames and prompts: this guards the
coordinates, resizing and thresholds that real weights will go through."""
import numpy as np
import pytest

from studio.errors import StudioError
from studio.tracker import Frames, Prompt, TrackerSettings, load_engine

from .conftest import moving_square_frames
from .tracker_models import save_tiny_edgetam, save_tiny_sam2

H, W, T = 72, 96, 14


@pytest.fixture(scope="module", params=["Sam2VideoModel", "EdgeTamVideoModel"])
def folder(request, tmp_path_factory):
    save = save_tiny_sam2 if request.param == "Sam2VideoModel" else save_tiny_edgetam
    return request.param, save(tmp_path_factory.mktemp("tracker") / request.param)


@pytest.fixture(scope="module")
def frames():
    return moving_square_frames(T, H, W)


@pytest.fixture(scope="module")
def engine(folder):
    engine = load_engine(TrackerSettings(str(folder[1])))
    assert type(engine.model).__name__ == folder[0]
    return engine


@pytest.fixture(scope="module")
def direct(folder):
    import transformers

    model_class = getattr(transformers, folder[0])
    return (model_class.from_pretrained(str(folder[1])).eval(),
            transformers.Sam2VideoProcessor.from_pretrained(str(folder[1])))


def as_frames(frames, key="clip"):
    return Frames((key,), len(frames), frames.shape[1], frames.shape[2], lambda t: frames[t])


def post(processor, out):
    return processor.post_process_masks([out.pred_masks], original_sizes=[[H, W]])[0][:, 0].numpy()


def direct_click(direct, frames, frame, points=None, labels=None, boxes=None):
    model, processor = direct
    session = processor.init_video_session(video=frames, inference_device="cpu")
    processor.add_inputs_to_inference_session(inference_session=session, frame_idx=frame, obj_ids=1,
                                              input_points=points, input_labels=labels, input_boxes=boxes)
    return post(processor, model(inference_session=session, frame_idx=frame))[0]


def direct_track(direct, frames, conditioning, start, reverses, max_frames):
    model, processor = direct
    session = processor.init_video_session(video=frames, inference_device="cpu")
    for t in sorted(conditioning):
        ids = sorted(conditioning[t])
        processor.add_inputs_to_inference_session(inference_session=session, frame_idx=t, obj_ids=ids,
                                                  input_masks=[conditioning[t][o] for o in ids])
        model(inference_session=session, frame_idx=t)
    found = []
    for reverse in reverses:
        for out in model.propagate_in_video_iterator(session, start_frame_idx=start, max_frame_num_to_track=max_frames,
                                                     reverse=reverse):
            masks = post(processor, out)
            found.append((out.frame_idx, {o: masks[i] for i, o in enumerate(out.object_ids)}))
    return found


CLICKS = [
    (Prompt(((40.0, 30.0),), (1,)), dict(points=[[[[40.0, 30.0]]]], labels=[[[1]]])),
    (Prompt(((40.0, 30.0), (80.5, 60.25), (10.0, 5.0)), (1, 0, 1)),
     dict(points=[[[[40.0, 30.0], [80.5, 60.25], [10.0, 5.0]]]], labels=[[[1, 0, 1]]])),
    (Prompt(box=(20.0, 18.0, 70.0, 50.0)), dict(boxes=[[[20.0, 18.0, 70.0, 50.0]]])),
    (Prompt(((45.0, 33.0),), (0,), (20.0, 18.0, 70.0, 50.0)),
     dict(points=[[[[45.0, 33.0]]]], labels=[[[0]]], boxes=[[[20.0, 18.0, 70.0, 50.0]]])),
]


def test_clicks_and_boxes_equal_transformers(engine, direct, frames):
    found = []
    for prompt, inputs in CLICKS:
        ours = engine.segment(as_frames(frames), 3, prompt)
        theirs = direct_click(direct, frames[:4], 3, **inputs)  # a click needs only its own frame
        assert ours.shape == (H, W) and ours.dtype == bool
        np.testing.assert_array_equal(ours, theirs, err_msg=str(prompt))
        found.append(0 < ours.sum() < ours.size)
    assert sum(found) >= 2  # real masks, so equality means something


def test_further_click_reuses_the_frame_features_and_still_equals(engine, direct, frames):
    video = as_frames(frames, "refine")
    engine.segment(video, 5, Prompt(((40.0, 30.0),), (1,)))
    ours = engine.segment(video, 5, Prompt(((40.0, 30.0), (60.0, 40.0)), (1, 0)))
    theirs = direct_click(direct, frames[:6], 5, [[[[40.0, 30.0], [60.0, 40.0]]]], [[[1, 0]]])
    np.testing.assert_array_equal(ours, theirs)


def _compare(engine, direct, frames, conditioning, start, direction, max_frames):
    ours = list(engine.track(as_frames(frames), conditioning, start, direction, max_frames))
    reverses = {"forward": [False], "backward": [True], "both": [False, True]}[direction]
    if engine.one_object_per_pass:  # transformers' EdgeTAM cannot hold two objects in one session
        objects = sorted({o for masks in conditioning.values() for o in masks})
        theirs = [step for o in objects for step in direct_track(
            direct, frames, {t: {o: m[o]} for t, m in conditioning.items() if o in m}, start, reverses, max_frames)]
    else:
        theirs = direct_track(direct, frames, conditioning, start, reverses, max_frames)
    assert [t for t, _ in ours] == [t for t, _ in theirs]
    for (t, a), (_, b) in zip(ours, theirs):
        assert sorted(a) == sorted(b)
        for obj_id in a:
            np.testing.assert_array_equal(a[obj_id], b[obj_id], err_msg=f"frame {t} object {obj_id}")
    return ours


def square(t, frames):
    return (frames[t, :, :, 0] > 200) & (frames[t, :, :, 1] < 80)


@pytest.mark.parametrize("start, direction, max_frames", [(2, "forward", 13), (11, "backward", 13), (6, "both", 4)])
def test_track_from_a_mask_prompt_equals_transformers(engine, direct, frames, start, direction, max_frames):
    ours = _compare(engine, direct, frames, {start: {1: square(start, frames)}}, start, direction, max_frames)
    areas = [m[1].sum() for _, m in ours]
    assert any(0 < a < H * W for a in areas)


def test_track_two_objects_and_a_later_correction_equals_transformers(engine, direct, frames):
    other = np.zeros((H, W), bool)
    other[50:66, 10:40] = True
    conditioning = {1: {1: square(1, frames), 2: other}, 9: {1: square(9, frames)}}
    ours = _compare(engine, direct, frames, conditioning, 1, "forward", 12)
    assert {o for _, masks in ours for o in masks} == {1, 2}


def test_memory_of_far_frames_is_dropped(engine, frames):
    video = as_frames(frames, "memory")
    list(engine.track(video, {0: {1: square(0, frames)}}, 0, "forward", T))
    session = engine.last_session
    kept = session.output_dict_per_obj[0]["non_cond_frame_outputs"]
    assert len(kept) <= 2 * engine.window + 1 < T
    assert len(session.processed_frames._cache) <= 2


def test_bf16_runs_and_gives_masks_of_the_frame(folder, frames):
    engine = load_engine(TrackerSettings(str(folder[1]), precision="bf16"))
    mask = engine.segment(as_frames(frames), 2, Prompt(((40.0, 30.0),), (1,)))
    assert mask.shape == (H, W) and mask.dtype == bool
    [(t, masks)] = list(engine.track(as_frames(frames), {2: {1: square(2, frames)}}, 2, "forward", 0))
    assert t == 2 and masks[1].shape == (H, W)


def test_bad_direction_and_unknown_names_give_one_line(engine, frames, tmp_path):
    with pytest.raises(StudioError, match="direction"):
        list(engine.track(as_frames(frames), {0: {1: square(0, frames)}}, 0, "sideways", 3))
    with pytest.raises(StudioError, match="unknown tracker"):
        load_engine(TrackerSettings("no-such-tracker"))
    with pytest.raises(StudioError, match="no config.json"):
        load_engine(TrackerSettings(str(tmp_path)))
    with pytest.raises(StudioError, match="referformer download someone/missing"):
        load_engine(TrackerSettings("someone/missing", cache_dir=str(tmp_path / "cache")))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * __import__("os").sysconf("SC_PAGE_SIZE") / 2 ** 20


@pytest.mark.slow
def test_rss_does_not_grow_with_the_video_length(folder):
    """300 generated 360p frames (made on demand, as the store reads JPEGs): preprocessed all at once they would
    take 56 MB at the tiny model's input, the frames themselves 200 MB; tracking holds neither."""
    engine = load_engine(TrackerSettings(str(folder[1])))
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)

    def read(t):
        frame = background.copy()
        frame[120:240, t:t + 120] = 230
        return frame

    seed = np.zeros((360, 640), bool)
    seed[120:240, 0:120] = True
    video = Frames(("long",), 300, 360, 640, read)
    samples = {}
    for t, _ in engine.track(video, {0: {1: seed}}, 0, "forward", 299):
        if t in (60, 299):
            samples[t] = _rss_mb()
    assert samples[299] - samples[60] < 25
