import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from annotations import EditError, Origin, Project, ProjectError, ReviewState, SchemaVersionError
from referformer_core.errors import ExpressionError
from annotations_testkit import box_mask, frames, make_project

REPO = Path(__file__).resolve().parents[2]


def test_create_add_video_and_reopen(tmp_path):
    folder = tmp_path / "proj"
    images = frames(3, 16, 20)
    with Project.create(folder) as project:
        info = project.add_video("clip", images, fps=12.5, source_path="/data/clip.mp4",
                                 source_indices=[0, 5, 10], sampling={"stride": 5})
        assert (info.width, info.height, info.frame_count) == (20, 16, 3)
    with Project.open(folder) as project:
        (info,) = project.videos()
        assert info.name == "clip" and info.fps == 12.5 and info.source_path == "/data/clip.mp4"
        assert info.sampling == {"stride": 5}
        assert project.source_indices("clip") == [0, 5, 10]
        assert project.frame_names("clip") == ["00000", "00001", "00002"]
        assert project.frame_path("clip", 1).is_file()
        decoded = project.read_frame("clip", 1)
        assert decoded.shape == (16, 20, 3) and decoded.dtype == np.uint8
        assert np.abs(decoded.astype(int) - images[1]).mean() < 4
        assert project.review_states("clip") == [ReviewState.UNREVIEWED] * 3
    assert sqlite3.connect(folder / "project.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_add_video_refuses_bad_frames_and_leaves_nothing(tmp_path):
    project = Project.create(tmp_path / "p")
    with pytest.raises(EditError, match="frame 1: size"):
        project.add_video("v", [np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])
    with pytest.raises(EditError, match="frame 0: must be"):
        project.add_video("v", [np.zeros((4, 4), np.uint8)])
    with pytest.raises(EditError, match="no frames"):
        project.add_video("v", [])
    with pytest.raises(EditError, match="unsafe name"):
        project.add_video("../evil", frames(1, 4, 4))
    assert project.videos() == []
    assert list((tmp_path / "p" / "frames").iterdir()) == []
    project.add_video("v", frames(1, 4, 4))
    with pytest.raises(EditError, match="already in the project"):
        project.add_video("v", frames(1, 4, 4))


def test_create_refuses_non_empty_folder_and_open_refuses_non_projects(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file.txt").write_text("hi")
    with pytest.raises(ProjectError, match="not empty"):
        Project.create(tmp_path / "x")
    with pytest.raises(ProjectError, match="no project.sqlite"):
        Project.open(tmp_path / "x")
    (tmp_path / "x" / "project.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(ProjectError, match="not a valid project database"):
        Project.open(tmp_path / "x")


@pytest.mark.parametrize("version, word", [(3, "newer"), (0, "older")])
def test_open_reports_other_schema_versions(tmp_path, version, word):
    Project.create(tmp_path / "p").close()
    db = sqlite3.connect(tmp_path / "p" / "project.sqlite")
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()
    with pytest.raises(SchemaVersionError, match=f"schema {version}, made by an? {word} version.*reads schema 2"):
        Project.open(tmp_path / "p")


def test_a_schema_1_project_opens_with_its_masks_and_takes_tracked_masks(tmp_path):
    project = make_project(tmp_path / "p", {"v": (4, 24, 32)})
    before = [(i.frame, i.origin, i.score) for i in project.mask_infos("v", 1)]
    project.close()
    db = sqlite3.connect(tmp_path / "p" / "project.sqlite")
    old = db.execute("SELECT sql FROM sqlite_master WHERE name = 'masks'").fetchone()[0]
    db.executescript("PRAGMA foreign_keys = OFF; BEGIN;"
                     + old.replace("'tracked', ", "").replace("CREATE TABLE masks", "CREATE TABLE masks_old")
                     + "; INSERT INTO masks_old SELECT * FROM masks; DROP TABLE masks;"
                       " ALTER TABLE masks_old RENAME TO masks; PRAGMA user_version = 1; COMMIT;")
    db.close()
    project = Project.open(tmp_path / "p")
    assert [(i.frame, i.origin, i.score) for i in project.mask_infos("v", 1)] == before
    project.set_mask("v", 1, 0, np.ones((24, 32), bool), Origin.TRACKED)
    assert project.mask_infos("v", 1)[0].origin is Origin.TRACKED
    project.close()
    db = sqlite3.connect(tmp_path / "p" / "project.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert "'tracked'" in db.execute("SELECT sql FROM sqlite_master WHERE name = 'masks'").fetchone()[0]


def test_origin_by_person_is_the_one_rule_for_a_persons_mask():
    assert {o for o in Origin if o.by_person} == {Origin.HAND, Origin.PROPAGATED, Origin.TRACKED}


def test_objects_expressions_and_categories(tmp_path):
    project = make_project(tmp_path / "p")
    assert [(o.obj_id, o.category, o.expressions) for o in project.objects("v1")] == [
        (1, "dog", ("the brown dog", "a dog on the left")), (2, "cat", ("the cat",))]
    project.set_expressions("v1", 2, ["the grey cat", "cat on the sofa", "a cat"])
    project.set_expressions("v1", 1, ["only dog"])
    project.set_category("v1", 2, "kitten")
    assert project.object("v1", 1).expressions == ("only dog",)
    assert project.object("v1", 2) .expressions == ("the grey cat", "cat on the sofa", "a cat")
    assert project.object("v1", 2).category == "kitten"
    assert project.add_object("v1", ["third"]).obj_id == 3
    assert project.add_object("v1", [], obj_id=9).obj_id == 9
    with pytest.raises(EditError, match="object 9 already exists"):
        project.add_object("v1", [], obj_id=9)
    with pytest.raises(ExpressionError, match="expression is empty"):
        project.add_object("v1", ["  "])
    with pytest.raises(EditError, match="no video named 'nope'"):
        project.add_object("nope", ["x"])


def test_masks_scores_origins_and_queries(tmp_path):
    project = make_project(tmp_path / "p")
    infos = project.mask_infos("v1", 1)
    assert [i.frame for i in infos] == [0, 1, 2, 3]
    assert all(i.origin is Origin.MODEL for i in infos)
    assert infos[0].score == pytest.approx(0.5)
    first = box_mask(24, 32, 1, 1, 8, 8)
    assert infos[0].area == 64 and infos[0].bbox == (1.0, 1.0, 8.0, 8.0)
    assert np.array_equal(project.get_mask("v1", 1, 0), first)
    assert project.get_mask("v1", 2, 1) is None
    stack = project.get_masks("v1", 2)
    assert stack.shape == (4, 24, 32) and not stack[1].any() and stack[2].any()
    assert [(i.obj_id, i.origin) for i in project.mask_infos("v1") if i.frame == 0] == [
        (1, Origin.MODEL), (2, Origin.HAND)]
    project.set_masks("v1", 2, {1: first, 3: first}, "propagated", {1: 0.25})
    assert [(i.frame, i.origin, i.score) for i in project.mask_infos("v1", 2)] == [
        (0, Origin.HAND, None), (1, Origin.PROPAGATED, 0.25), (2, Origin.HAND, None), (3, Origin.PROPAGATED, None)]
    project.clear_mask("v1", 2, 3)
    assert project.get_mask("v1", 2, 3) is None


@pytest.mark.parametrize("call, message", [
    (lambda p: p.set_mask("v1", 1, 0, np.zeros((5, 5), bool), "hand"), r"mask shape \(5, 5\) is not \(24, 32\)"),
    (lambda p: p.set_mask("v1", 1, 4, np.zeros((24, 32), bool), "hand"), "frame 4 out of range 0..3"),
    (lambda p: p.set_mask("v1", 1, -1, np.zeros((24, 32), bool), "hand"), "frame -1 out of range"),
    (lambda p: p.set_mask("v1", 7, 0, np.zeros((24, 32), bool), "hand"), "no object 7"),
    (lambda p: p.set_mask("v1", 1, 0, np.zeros((24, 32), bool), "guess"), "origin must be one of"),
    (lambda p: p.set_review("v1", [0, 9], "reviewed"), "frame 9 out of range"),
    (lambda p: p.set_review("v1", 0, "maybe"), "review state must be one of"),
])
def test_bad_edits_are_refused_without_changing_anything(tmp_path, call, message):
    project = make_project(tmp_path / "p")
    before = (project.get_masks("v1", 1).tobytes(), project.review_states("v1"), len(project.history()))
    with pytest.raises(EditError, match=message):
        call(project)
    assert (project.get_masks("v1", 1).tobytes(), project.review_states("v1"), len(project.history())) == before


def test_review_states(tmp_path):
    project = make_project(tmp_path / "p")
    project.set_review("v1", [0, 2], ReviewState.REVIEWED)
    project.set_review("v1", 3, "needs_fixing")
    assert project.review_states("v1") == ["reviewed", "unreviewed", "reviewed", "needs_fixing"]
    assert project.frames_in_state("v1", "reviewed") == [0, 2]
    assert project.frames_in_state("v1", ReviewState.NEEDS_FIXING) == [3]


def test_undo_redo_walks_the_linear_history(tmp_path):
    project = make_project(tmp_path / "p", {"v": (2, 8, 8)})
    full = np.ones((8, 8), bool)
    original = project.get_mask("v", 1, 0)
    project.set_mask("v", 1, 0, full, "hand")
    project.set_review("v", [0, 1], "reviewed")
    assert project.undo() == "mark 2 frame(s) of v reviewed"
    assert project.review_states("v") == ["unreviewed", "unreviewed"]
    assert project.undo() == "hand masks of object 1 of v"
    assert np.array_equal(project.get_mask("v", 1, 0), original)
    assert project.mask_infos("v", 1)[0].origin is Origin.MODEL
    assert project.redo() == "hand masks of object 1 of v"
    assert np.array_equal(project.get_mask("v", 1, 0), full)
    project.clear_mask("v", 1, 1)
    assert project.redo() is None, "a new edit drops the redo stack"
    assert project.undo() == "clear mask of object 1 of v at 1"
    assert project.get_mask("v", 1, 1) is not None
    while project.undo() is not None:
        pass
    assert project.videos() == [], "adding the video is undone too"
    assert project.undo() is None
    while project.redo() is not None:
        pass
    assert np.array_equal(project.get_mask("v", 1, 0), full)
    assert project.get_mask("v", 1, 1) is None


def test_remove_object_is_undoable_and_no_op_edits_are_not_recorded(tmp_path):
    project = make_project(tmp_path / "p", {"v": (3, 8, 8)})
    masks = project.get_masks("v", 2)
    project.remove_object("v", 2)
    assert [o.obj_id for o in project.objects("v")] == [1]
    count = len(project.history())
    project.set_review("v", 0, "unreviewed")
    assert len(project.history()) == count
    project.undo()
    assert project.object("v", 2).expressions == ("the cat",)
    assert np.array_equal(project.get_masks("v", 2), masks)
    assert project.mask_infos("v", 2)[0].origin is Origin.HAND


def test_history_survives_reopen(tmp_path):
    make_project(tmp_path / "p", {"v": (2, 8, 8)}).set_mask("v", 1, 0, np.ones((8, 8), bool), "hand")
    with Project.open(tmp_path / "p") as project:
        assert project.undo() == "hand masks of object 1 of v"
        assert project.mask_infos("v", 1)[0].origin is Origin.MODEL


def test_remove_video_is_undoable_and_its_frames_stay_until_the_history_is_cleared(tmp_path):
    project = make_project(tmp_path / "p", {"a": (2, 8, 8), "b": (2, 8, 8)})
    masks = project.get_masks("a", 1)
    folder = project.frame_path("a", 0).parent
    project.remove_video("a")
    assert [v.name for v in project.videos()] == ["b"]
    assert folder.is_dir(), "the removal can be undone"
    assert project.undo() == "remove video a"
    assert [v.name for v in project.videos()] == ["b", "a"] or [v.name for v in project.videos()] == ["a", "b"]
    assert np.array_equal(project.get_masks("a", 1), masks) and project.read_frame("a", 1).shape == (8, 8, 3)
    assert project.redo() == "remove video a"
    project.close()
    with Project.open(tmp_path / "p") as project:
        assert folder.is_dir(), "opening keeps frames the history names"
        project.clear_history()
        assert project.history() == [] and not folder.exists()
        assert project.get_masks("b", 1).any()


def test_add_and_import_video_are_undoable_and_a_discarded_redo_frees_the_frames(tmp_path):
    project = make_project(tmp_path / "p", {"a": (2, 8, 8)})
    project.import_dataset(make_project(tmp_path / "src", {"b": (3, 8, 8)}).dataset())
    folder = project.frame_path("b", 0).parent
    assert project.undo().startswith("import 1 video(s)")
    assert [v.name for v in project.videos()] == ["a"] and folder.is_dir()
    assert project.redo().startswith("import 1 video(s)")
    assert project.get_masks("b", 1).any() and project.read_frame("b", 2).shape == (8, 8, 3)
    project.undo()
    project.set_review("a", 0, "reviewed")
    assert not folder.exists(), "the import can no longer be redone"
    project.add_video("c", frames(2, 8, 8))
    assert project.undo() == "add video c"
    assert [v.name for v in project.videos()] == ["a"]


def test_orphaned_frame_folders_are_removed_on_open_but_not_folders_being_written(tmp_path):
    from annotations.frames import new_frames_dir

    make_project(tmp_path / "p", {"a": (2, 8, 8)}).close()
    orphan = tmp_path / "p" / "frames" / "crashed-0123abcd"
    orphan.mkdir()
    (orphan / "00000.jpg").write_bytes(b"x")
    with new_frames_dir(tmp_path / "p" / "frames", "busy") as busy:
        with Project.open(tmp_path / "p") as project:
            assert not orphan.exists() and busy.is_dir()
            assert project.read_frame("a", 1).shape == (8, 8, 3)


def test_dataset_subsets(tmp_path):
    project = make_project(tmp_path / "p", {"a": (4, 8, 8), "b": (2, 8, 8)})
    project.set_review("a", [1, 3], "reviewed")
    data = project.dataset(reviewed_only=True)
    video = data.videos[0]
    assert [f.name for f in video.frames] == ["00001", "00003"]
    assert sorted(video.objects[0].masks) == [0, 1]
    assert video.objects[1].masks == {}, "object 2 only has masks on even frames"
    assert [v.name for v in data.videos] == ["a"], "b has no reviewed frame"
    only = project.dataset(objects=[("b", 2)])
    assert [v.name for v in only.videos] == ["b"]
    assert [t.obj_id for t in only.videos[0].objects] == [2]
    assert [v.name for v in project.dataset(videos=["b"]).videos] == ["b"]
    with pytest.raises(EditError, match="no object 5"):
        project.dataset(objects=[("a", 5)])


def test_a_second_connection_reads_while_the_first_writes(tmp_path):
    writer = make_project(tmp_path / "p", {"v": (2, 8, 8)})
    reader = Project.open(tmp_path / "p")
    writer.set_mask("v", 1, 1, np.ones((8, 8), bool), "hand")
    assert reader.get_mask("v", 1, 1).all()
    assert reader.mask_infos("v", 1)[1].origin is Origin.HAND


def test_killing_the_process_keeps_the_last_committed_edit(tmp_path):
    with make_project(tmp_path / "p", {"v": (50, 32, 32)}) as project:
        edits_before = len(project.history())
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(REPO)!r})
        from annotations import Project
        p = Project.open({str(tmp_path / 'p')!r})
        i = 0
        while True:
            mask = np.zeros((32, 32), bool)
            mask[: (i % 31) + 1] = True
            p.set_mask("v", 2, i % 50, mask, "hand", float(i))
            p.set_review("v", i % 50, "reviewed")
            print(i, flush=True)
            i += 1
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    done = [int(child.stdout.readline()) for _ in range(60)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    db = sqlite3.connect(tmp_path / "p" / "project.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Project.open(tmp_path / "p") as project:
        infos = project.mask_infos("v", 2)
        last = max(i.score for i in infos if i.origin is Origin.HAND)
        assert last >= done[-1]
        edits = [h.description for h in project.history()][edits_before:]
        assert sum(d.startswith("hand masks") for d in edits) == int(last) + 1, "no edit half-recorded"
        assert project.get_mask("v", 2, int(last) % 50).sum() == 32 * ((int(last) % 31) + 1)


def test_import_dataset_is_all_or_nothing_even_when_copying_fails(tmp_path, monkeypatch):
    source = make_project(tmp_path / "src", {"a": (2, 8, 8), "b": (2, 8, 8)})
    target = make_project(tmp_path / "dst", {"existing": (1, 8, 8)})
    folders = sorted(p.name for p in (target.folder / "frames").iterdir())
    with pytest.raises(EditError, match="'existing' is already in the project"):
        target.import_dataset(make_project(tmp_path / "other", {"existing": (1, 8, 8)}).dataset())
    import shutil
    original = shutil.copyfile
    copies = []

    def failing_copy(src, dst):
        copies.append(dst)
        if len(copies) == 3:
            raise OSError("disk full")
        return original(src, dst)

    monkeypatch.setattr("annotations.store.shutil.copyfile", failing_copy)
    with pytest.raises(OSError, match="disk full"):
        target.import_dataset(source.dataset())
    assert [v.name for v in target.videos()] == ["existing"]
    assert sorted(p.name for p in (target.folder / "frames").iterdir()) == folders
    monkeypatch.undo()
    target.import_dataset(source.dataset())
    assert [v.name for v in target.videos()] == ["existing", "a", "b"]
    assert np.array_equal(target.get_masks("b", 2), source.get_masks("b", 2))
