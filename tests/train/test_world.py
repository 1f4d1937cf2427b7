"""``train.bundled.world``: the procedurally generated referring-video world (small sizes, a few videos each)."""
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotations.ytvos import read_meta_expressions, read_ytvos
from train.data import ClipDataset, read_expressions
from train.evaluate import evaluate, format_table, load_expressions
from train.transforms import AugmentOptions
from train.bundled.world import (ATTRIBUTES, HELD_OUT_PAIRS, MIX_WEIGHTS, VideoSpec, generate_world, layout,
                                 render_video, video_spec)
from train.bundled.world.__main__ import main as world_main
from train.bundled.world.language import primary_category
from train.bundled.world.semantics import MOTIONS, ObjectFacts, Phrase, resolve
from train.bundled.world.spec import Background, Motion, ObjectSpec, trajectory
from train.bundled.world.vocab import COLOURS, KIND_WORDS, parse_mix

SIZE = dict(num_frames=4, height=72, width=96)
SMALL = AugmentOptions(scales=(64,), max_size=96, crop_scales=(72,), crop_min_size=40, crop_max_size=64)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Three train videos of four 72x96 frames, seed 3."""
    return generate_world(tmp_path_factory.mktemp("world"), "train", num_videos=3, seed=3, **SIZE)


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(world, tmp_path):
    again = generate_world(tmp_path / "again", "train", num_videos=3, seed=3, **SIZE)
    assert files(world) == files(again)
    names = set(files(world))
    assert {"meta.json", "meta_expressions.json", "world.json"} <= names
    assert sum(n.startswith("JPEGImages/train_0002/") for n in names) == 4
    other = files(generate_world(tmp_path / "other", "train", num_videos=3, seed=4, **SIZE))
    assert set(other) != names or any(other[n] != b for n, b in files(world).items())
    assert other["meta_expressions.json"] != files(world)["meta_expressions.json"]


def test_worker_processes_write_the_same_files(world, tmp_path):
    assert files(generate_world(tmp_path / "workers", "train", num_videos=3, seed=3, workers=2, **SIZE)) == files(world)


def test_one_video_regenerates_exactly_from_its_spec(world):
    spec = video_spec("train", 3, 1, **SIZE)
    frames, labels, expressions = render_video(spec)
    assert frames.shape == (4, 72, 96, 3) and frames.dtype == np.uint8
    assert labels.shape == (4, 72, 96) and labels.dtype == np.uint8
    written = json.loads((world / "meta_expressions.json").read_text())["videos"]["train_0001"]
    assert list(written["expressions"].values()) == expressions
    assert written["frames"] == ["00000", "00005", "00010", "00015"]
    for t, name in enumerate(written["frames"]):
        buffer = io.BytesIO()
        Image.fromarray(frames[t]).save(buffer, format="JPEG", quality=90)
        assert (world / "JPEGImages/train_0001" / f"{name}.jpg").read_bytes() == buffer.getvalue()
        with Image.open(world / "Annotations/train_0001" / f"{name}.png") as png:
            assert png.mode == "P" and np.array_equal(np.asarray(png), labels[t])
            assert png.getpalette()[3:6] != png.getpalette()[6:9]  # distinct colours for ids 1, 2


def _specs(split: str, count: int, seed: int = 0) -> list[VideoSpec]:
    return [video_spec(split, seed, i, **SIZE) for i in range(count)]


def _words(kind: str) -> tuple[str, ...]:
    return KIND_WORDS[kind]


def test_every_expression_names_exactly_one_visible_object():
    for spec in _specs("train", 8) + _specs("heldout", 4):
        geo = layout(spec)
        assert 2 <= len(spec.referred) <= 4 and 2 <= len(spec.objects) <= 5
        by_id = {o.obj_id: o for o in spec.objects}
        for e in spec.expressions:
            target = by_id[e.obj_id]
            others = [o for o in spec.objects if o.obj_id != e.obj_id]
            assert e.obj_id in spec.referred and set(e.attributes) <= set(ATTRIBUTES) and e.attributes
            assert (geo.labels[0] == e.obj_id).any(), "the referred object shows in the first frame"
            text = f" {e.exp} "
            if "colour" in e.attributes:
                assert f" {target.colour} " in text
            if "kind" in e.attributes:
                assert any(f" {w} " in text for w in _words(target.kind))
            if set(e.attributes) == {"colour", "kind"}:
                assert not any((o.colour, o.kind) == (target.colour, target.kind) for o in others), e
            if set(e.attributes) == {"kind"}:
                assert not any(o.kind == target.kind for o in others), e
            if set(e.attributes) == {"colour"}:
                assert not any(o.colour == target.colour for o in others), e
            if set(e.attributes) == {"size"}:
                area = np.sqrt(geo.full_area)
                ratio = area[e.obj_id - 1] / np.delete(area, e.obj_id - 1, axis=0)
                bigger = any(w in text for w in (" big", " larg"))
                assert (ratio >= 1.25).all() if bigger else (ratio <= 1 / 1.25).all(), e
            if set(e.attributes) == {"position"} and ("left" in text or "right" in text):
                for t in range(spec.num_frames):  # on every frame, not only the first
                    x = [trajectory(o, spec.num_frames, spec.height, spec.width)[t].x for o in spec.objects]
                    own = x.pop(e.obj_id - 1)
                    assert own < min(x) if "left" in text else own > max(x), (e, t)
        for obj_id in spec.referred:
            assert any(e.obj_id == obj_id for e in spec.expressions)


def _facts(obj_id: int, kind: str, xs: list[float]) -> ObjectFacts:
    """A still 10-pixel-radius red object of ``kind`` whose centre moves along ``xs`` at y = 50."""
    centres = np.array([[x, 50.0] for x in xs])
    ones = np.ones(len(xs))
    return ObjectFacts(obj_id, "red", kind, "solid", centres, 10 * ones, 20 * ones, {m: False for m in MOTIONS})


def test_position_and_relations_must_hold_on_every_frame_not_only_the_first():
    square, star = _facts(1, "square", [10, 10, 10]), _facts(2, "star", [80, 80, 80])
    crossing = _facts(1, "square", [10, 50, 90])  # left of the star at first, right of it at the end
    left, left_of = Phrase(position="left"), Phrase(relation="left of", anchor=Phrase(kind="star"))
    assert resolve(left, [square, star], 100, 100) == 1 and resolve(left_of, [square, star], 100, 100) == 1
    assert resolve(left, [crossing, star], 100, 100) is None
    assert resolve(left_of, [crossing, star], 100, 100) is None
    assert resolve(Phrase(position="right"), [crossing, star], 100, 100) is None


def test_referred_objects_are_visible_enough_and_appear_in_annotations(world):
    for spec in _specs("train", 6) + _specs("heldout", 3):
        geo = layout(spec)
        for obj_id in spec.referred:
            visible = (geo.labels == obj_id).reshape(spec.num_frames, -1).sum(1)
            fraction = visible / geo.full_area[obj_id - 1]
            assert visible[0] > 0 and np.mean(fraction >= 0.3) >= 0.8
    meta = json.loads((world / "meta.json").read_text())["videos"]
    for video, data in json.loads((world / "meta_expressions.json").read_text())["videos"].items():
        for e in data["expressions"].values():
            assert e["obj_id"] in meta[video]["objects"]
            seen = [np.asarray(Image.open(world / "Annotations" / video / f"{f}.png")) == int(e["obj_id"])
                    for f in data["frames"]]
            assert seen[0].any() and [f for f, s in zip(data["frames"], seen) if s.any()] == \
                meta[video]["objects"][e["obj_id"]]["frames"]


def _object(obj_id: int, depth: int, x: float, kind: str = "circle") -> ObjectSpec:
    return ObjectSpec(obj_id, kind, "red" if obj_id == 1 else "blue", "solid", 20.0, depth,
                      Motion((x, 40.0), (0.0, 0.0), False, 0.0, 0.0, 1.0))


def _scene(objects: tuple[ObjectSpec, ...]) -> VideoSpec:
    background = Background("gradient", False, (0.5, 0.5, 1.0), (0.5, 0.5, 1.0), (1.0, 1.0, 1.0))
    return VideoSpec("hand", "train", 0, 0, 2, 80, 120, objects, background, 0.0, 0.0, 0)


def test_occlusion_labels_the_top_object_and_areas_count_hidden_parts():
    front, back = _object(1, 1, 50.0), _object(2, 0, 70.0)
    geo = layout(_scene((front, back)))
    assert geo.labels[0, 40, 60] == 1 and geo.labels[0, 40, 85] == 2 and geo.labels[0, 40, 35] == 1
    assert abs(geo.full_area[0, 0] - math.pi * 20 ** 2) < 0.05 * math.pi * 20 ** 2
    assert geo.visible_area[0, 0] == geo.full_area[0, 0] and geo.visible_area[1, 0] < 0.8 * geo.full_area[1, 0]
    swapped = layout(_scene((dataclasses.replace(front, depth=0), dataclasses.replace(back, depth=1))))
    assert swapped.labels[0, 40, 60] == 2
    frames, labels, _ = render_video(_scene((front, back)))
    assert np.array_equal(labels, geo.labels)
    assert np.abs(frames[0, 40, 60].astype(int) - COLOURS["red"]).max() < 60
    assert np.abs(frames[0, 40, 85].astype(int) - COLOURS["blue"]).max() < 60
    off = layout(_scene((_object(1, 0, -10.0, "square"), back)))
    assert 0 < off.visible_area[0, 0] < 0.5 * off.full_area[0, 0], "the part outside the frame is not visible"


def test_heldout_pairs_only_in_the_heldout_split():
    held = set(HELD_OUT_PAIRS)
    assert len(held) == 6 and all(c in COLOURS and k in KIND_WORDS for c, k in held)
    for spec in _specs("train", 12):
        assert not any((o.colour, o.kind) in held for o in spec.objects)
    heldout = _specs("heldout", 6)
    for spec in heldout:
        assert any((spec.object(i).colour, spec.object(i).kind) in held for i in spec.referred)
        assert spec.name.startswith("heldout_")
    train0 = video_spec("train", 0, 0, **SIZE)
    assert [(o.colour, o.kind, o.radius) for o in train0.objects] != \
        [(o.colour, o.kind, o.radius) for o in heldout[0].objects]
    with pytest.raises(ValueError):
        video_spec("valid", 0, 0, **SIZE)


def test_expression_mix_covers_every_attribute():
    assert sum(MIX_WEIGHTS.values()) == pytest.approx(1.0)
    specs = _specs("train", 30, seed=1)
    categories = [primary_category(e.attributes) for s in specs for e in s.expressions]
    assert set(categories) == set(MIX_WEIGHTS)
    assert {a for s in specs for e in s.expressions for a in e.attributes} == set(ATTRIBUTES)
    assert 0.2 < categories.count("colour") / len(categories) < 0.6
    texts = [e.exp for s in specs for e in s.expressions]
    assert len(set(texts)) > 0.6 * len(texts)
    for s in specs:
        per_object = [[e.exp for e in s.expressions if e.obj_id == i] for i in s.referred]
        assert all(1 <= len(t) <= 3 and len(set(t)) == len(t) for t in per_object)


def test_written_folder_reads_back_with_the_project_readers(world):
    videos = read_meta_expressions(world / "meta_expressions.json")
    assert [v.name for v in videos] == ["train_0000", "train_0001", "train_0002"]
    expressions = load_expressions(world / "meta_expressions.json")
    assert len(expressions) == sum(len(v.expressions) for v in videos)
    assert all(e.attributes and set(e.attributes) <= set(ATTRIBUTES) for e in expressions)
    dataset = read_ytvos(world)
    assert [v.width for v in dataset.videos] == [96] * 3 and all(len(v.frames) == 4 for v in dataset.videos)
    records = read_expressions(world)
    clips = ClipDataset(world, records, 2, 2, SMALL, False, seed=0)
    frames, target = clips[0]
    assert frames.shape[:2] == (2, 3) and target["masks"].sum() > 0 and target["caption"] == records[0].expression
    summary = json.loads((world / "world.json").read_text())
    assert summary["split"] == "train" and summary["seed"] == 3 and summary["counts"]["videos"] == 3
    assert summary["counts"]["expressions"] == len(expressions)


def _predict_ground_truth(world: Path, pred: Path) -> None:
    for video, data in json.loads((world / "meta_expressions.json").read_text())["videos"].items():
        for exp_id, e in data["expressions"].items():
            (pred / video / exp_id).mkdir(parents=True)
            for f in data["frames"]:
                labels = np.asarray(Image.open(world / "Annotations" / video / f"{f}.png"))
                Image.fromarray((labels == int(e["obj_id"])).astype(np.uint8) * 255).save(
                    pred / video / exp_id / f"{f}.png")


def test_evaluate_reports_per_attribute_scores(world, tmp_path):
    pred = tmp_path / "pred"
    _predict_ground_truth(world, pred)
    result = evaluate(pred, world)
    per_attribute = result["per_attribute"]
    meta = json.loads((world / "meta_expressions.json").read_text())["videos"]
    all_exps = [e for v in meta.values() for e in v["expressions"].values()]
    for attribute, row in per_attribute.items():
        assert row["J&F"] == row["J"] == row["F"] == 1.0
        assert row["count"] == sum(attribute in e["attributes"] for e in all_exps)
    table = format_table(result)
    assert any(line.split()[:2] == ["colour", "100.00"] for line in table.splitlines())

    wrong = meta["train_0000"]["expressions"]["0"]
    for f in meta["train_0000"]["frames"]:
        Image.fromarray(np.zeros((72, 96), np.uint8)).save(pred / "train_0000/0" / f"{f}.png")
    lowered = evaluate(pred, world)["per_attribute"]
    for attribute, row in lowered.items():
        if attribute in wrong["attributes"]:
            n = row["count"]
            assert row["J"] == pytest.approx((n - 1) / n) and row["J&F"] < 1.0
        else:
            assert row["J&F"] == 1.0

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "Annotations").symlink_to(world / "Annotations")
    stripped = {v: {**d, "expressions": {k: {"exp": e["exp"], "obj_id": e["obj_id"]}
                                         for k, e in d["expressions"].items()}} for v, d in meta.items()}
    (plain / "meta_expressions.json").write_text(json.dumps({"videos": stripped}))
    assert "per_attribute" not in evaluate(pred, plain)


def test_cli_writes_a_split_and_prints_progress(tmp_path, capsys):
    out = tmp_path / "cli"
    assert world_main([str(out), "--split", "heldout", "--videos", "2", "--frames", "3", "--height", "48",
                       "--width", "64", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert "videos 2/2" in printed and "wrote 2 heldout videos" in printed and "ms/frame" in printed
    assert sorted(p.name for p in (out / "JPEGImages").iterdir()) == ["heldout_0000", "heldout_0001"]
    assert json.loads((out / "world.json").read_text())["split"] == "heldout"


def test_mix_reweighs_expression_categories():
    mix = parse_mix("relation=1, kind=1, colour=0")
    assert sum(mix.values()) == pytest.approx(1.0) and mix["colour"] == 0
    assert mix["relation"] == pytest.approx(1 / (2 + sum(MIX_WEIGHTS.values()) - MIX_WEIGHTS["relation"]
                                                 - MIX_WEIGHTS["kind"] - MIX_WEIGHTS["colour"]))
    default = [primary_category(e.attributes) for s in _specs("train", 20, seed=3) for e in s.expressions]
    weighed = [primary_category(e.attributes) for i in range(20)
               for e in video_spec("train", 3, i, **SIZE, mix=mix).expressions]
    assert weighed.count("relation") > 2 * max(default.count("relation"), 1)
    assert weighed.count("colour") < default.count("colour") / 2
    assert parse_mix("") == MIX_WEIGHTS


@pytest.mark.parametrize("text, message", [("relation", "CATEGORY=WEIGHT"), ("shape=1", "CATEGORY=WEIGHT"),
                                           ("kind=lots", "not a number"), ("kind=-1", "non-negative"),
                                           ("kind=nan", "non-negative"),
                                           (",".join(f"{k}=0" for k in MIX_WEIGHTS), "every category")])
def test_mix_rejects_bad_weights_with_one_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_mix(text)


def test_cli_mix_is_recorded_and_bad_mix_exits_with_usage(tmp_path, capsys):
    out = tmp_path / "mixed"
    assert world_main([str(out), "--videos", "1", "--frames", "2", "--height", "48", "--width", "64",
                       "--mix", "relation=0.5"]) == 0
    assert json.loads((out / "world.json").read_text())["mix_weights"] == parse_mix("relation=0.5")
    with pytest.raises(SystemExit) as exit_info:
        world_main([str(tmp_path / "bad"), "--mix", "relation=x"])
    assert exit_info.value.code == 2 and "not a number" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
