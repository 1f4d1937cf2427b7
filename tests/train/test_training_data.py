"""Data reading, clip sampling, augmentations, batching and the CLI's error lines."""
import json
import shutil

import numpy as np
import pytest
import torch

from train.__main__ import main
from train.data import (ClipDataset, EpochBatchSampler, TrainingDataError, clip_count, clip_target, collate_clips,
                        read_expressions, sample_frame_indices, split_by_video, steps_per_epoch)
from train.transforms import AugmentOptions, Clip, augment_clip, hflip, random_crop_keeping_object, swap_left_right

SMALL = AugmentOptions(scales=(64, 72), max_size=112, crop_scales=(72, 80), crop_min_size=40, crop_max_size=64)


def _clip(h=64, w=96, t=3) -> Clip:
    frames = [np.full((h, w, 3), 100, np.uint8) for _ in range(t)]
    masks = np.zeros((t, h, w), bool)
    masks[:, 10:20, 5:15] = True  # object on the left
    for f, m in zip(frames, masks):
        f[m] = (250, 0, 0)
    return Clip(frames, masks, "the red square on the left of the upright man")


def test_reads_the_generated_layout(tiny_data):
    records = read_expressions(tiny_data)
    assert len(records) == 4 and {r.obj_id for r in records} == {1, 2}
    assert all(r.frames == ("00000", "00005", "00010") for r in records)
    assert all(r.expression.startswith("the ") for r in records)


def test_expressions_are_read_in_the_form_the_predictor_feeds_the_model(tiny_data):
    import json

    from referformer_core.text import normalize_expression

    meta_path = tiny_data / "meta_expressions.json"
    meta = json.loads(meta_path.read_text())
    video = next(iter(meta["videos"].values()))
    exp = next(iter(video["expressions"].values()))
    exp["exp"] = "  The RED  Square "
    meta_path.write_text(json.dumps(meta))
    texts = [r.expression for r in read_expressions(tiny_data)]
    assert "the red square" in texts and normalize_expression(exp["exp"]) == "the red square"


@pytest.mark.parametrize("damage, message", [
    (lambda root: shutil.rmtree(root / "JPEGImages"), "no JPEGImages/ folder"),
    (lambda root: (root / "meta_expressions.json").write_text("{not json"), "invalid JSON"),
    (lambda root: (root / "meta_expressions.json").write_text('{"videos": {}}'), "lists no videos"),
    (lambda root: (root / "meta_expressions.json").unlink(), r"meta_expressions.json: \(file\): file not found"),
    (lambda root: shutil.rmtree(root / "JPEGImages" / "video000"), "does not exist"),
])
def test_malformed_folders_give_one_line(tiny_data, tmp_path, damage, message):
    root = tmp_path / "copy"
    shutil.copytree(tiny_data, root)
    damage(root)
    with pytest.raises(TrainingDataError, match=message) as error:
        read_expressions(root)
    assert "\n" not in str(error.value)


def test_missing_folder_is_one_line_from_the_cli(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: data folder {tmp_path / 'nope'} does not exist"


def test_split_holds_out_whole_videos(tiny_data):
    train, held = split_by_video(read_expressions(tiny_data), 0.5, seed=0)
    assert len(train) == len(held) == 2
    assert not {r.video for r in train} & {r.video for r in held}
    assert split_by_video(read_expressions(tiny_data), 0.0, seed=0)[1] == []


@pytest.mark.parametrize("frame_id, video_len, num_frames", [(0, 10, 5), (9, 10, 5), (4, 10, 3), (10, 30, 5), (0, 1, 5), (2, 3, 5)])
def test_clip_sampling_follows_the_official_recipe(frame_id, video_len, num_frames):
    for seed in range(20):
        indices = sample_frame_indices(frame_id, num_frames, video_len, 3, np.random.default_rng(seed))
        assert len(indices) == num_frames and indices == sorted(indices)
        assert frame_id in indices and all(0 <= i < video_len for i in indices)
        if 3 <= frame_id <= video_len - 4:  # away from the ends (where neighbours clamp, as officially)
            assert len(set(indices)) == num_frames
            assert any(0 < frame_id - i <= 3 for i in indices) and any(0 < i - frame_id <= 3 for i in indices)


def test_flip_mirrors_masks_and_swaps_left_and_right():
    clip = _clip()
    flipped = hflip(clip)
    assert flipped.caption == "the red square on the right of the upright man"
    assert flipped.masks[:, 10:20, 96 - 15:96 - 5].all() and flipped.masks.sum() == clip.masks.sum()
    assert (flipped.frames[0][15, 90] == (250, 0, 0)).all()
    assert swap_left_right("left, right, leftmost; bright") == "right, left, rightmost; bright"


def test_random_crop_keeps_the_object():
    clip = _clip(h=200, w=300)
    for seed in range(30):
        cropped = random_crop_keeping_object(clip, np.random.default_rng(seed), 40, 64)
        assert cropped.masks.any()
        assert cropped.masks.shape[1:] == cropped.frames[0].shape[:2]
        assert 40 <= cropped.size[0] <= 64 and 40 <= cropped.size[1] <= 64


def test_augmentation_keeps_frames_and_masks_aligned_and_is_seeded():
    clip = _clip()
    for seed in range(20):
        out = augment_clip(clip, np.random.default_rng(seed), SMALL)
        assert min(out.size) in (64, 72) or max(out.size) <= 112
        assert out.masks.shape == (3, *out.size) and out.masks.any()
        assert out.caption in (clip.caption, "the red square on the right of the upright man")
        again = augment_clip(clip, np.random.default_rng(seed), SMALL)
        assert all(np.array_equal(a, b) for a, b in zip(out.frames, again.frames))


def test_target_boxes_are_normalised_mask_boxes():
    clip = _clip()
    clip.masks[1] = False
    target = clip_target(clip)
    assert target["valid"].tolist() == [1, 0, 1]
    assert torch.allclose(target["boxes"][0], torch.tensor([10 / 96, 15 / 64, 10 / 96, 10 / 64]))
    assert target["boxes"][1].tolist() == [0, 0, 0, 0]
    assert target["masks"].shape == (3, 64, 96) and target["size"].tolist() == [64, 96]


def test_collate_pads_to_32_with_a_padding_mask(tiny_data):
    dataset = ClipDataset(tiny_data, read_expressions(tiny_data), 3, 3, SMALL, True, seed=0)
    batch = collate_clips([dataset[0], dataset[1]])
    h, w = batch.frames.shape[-2:]
    assert h % 32 == 0 and w % 32 == 0 and batch.frames.shape[:3] == (2, 3, 3)
    for i, (sh, sw) in enumerate(batch.image_sizes.tolist()):
        assert not batch.padding_mask[i, :, :sh, :sw].any() and batch.padding_mask[i, :, sh:, :].all()
        assert batch.padding_mask[i, :, :, sw:].all()


def test_samples_depend_only_on_seed_epoch_and_index(tiny_data):
    records = read_expressions(tiny_data)
    a = ClipDataset(tiny_data, records, 3, 3, SMALL, True, seed=0)
    b = ClipDataset(tiny_data, records, 3, 3, SMALL, True, seed=0)
    b.set_epoch(1)
    b.set_epoch(0)
    assert torch.equal(a[2][0], b[2][0]) and a[2][1]["caption"] == b[2][1]["caption"]
    a.set_epoch(1)
    assert not torch.equal(a[2][0], b[2][0]) or a[2][1]["caption"] != b[2][1]["caption"]


def test_the_clip_count_and_steps_per_epoch_are_the_datasets_and_samplers(tiny_data):
    """The studio plans a fine-tuning run with these two: they are what the trainer's dataset and sampler do."""
    records = read_expressions(tiny_data)
    for num_frames in (1, 2, 3, 5):
        dataset = ClipDataset(tiny_data, records, num_frames, 3, SMALL, False, seed=0)
        assert clip_count(records, num_frames) == len(dataset)
        for batch, world in ((1, 1), (3, 1), (2, 2)):
            sampler = EpochBatchSampler(len(dataset), batch, seed=0, world_size=world)
            assert steps_per_epoch(len(dataset), batch, world) == sampler.steps_per_epoch() == len(list(sampler))


def test_ranks_share_out_the_single_process_batches():
    single = EpochBatchSampler(10, batch_size=4, seed=3)
    ranks = [EpochBatchSampler(10, batch_size=2, seed=3, rank=r, world_size=2) for r in range(2)]
    for s in [single, *ranks]:
        s.set_epoch(5)
    combined = [r0 + r1 for r0, r1 in zip(*ranks)]
    assert list(single) == combined and len(combined) == 2  # 10 // 4, the incomplete batch dropped
    single.set_epoch(5, start_step=1)
    assert list(single) == combined[1:]


def test_small_training_set_warns(tiny_config, tmp_path):
    from train.trainer import fit

    with pytest.warns(UserWarning, match="only 2 training videos"):
        fit(tiny_config.replace(max_steps=1))
    assert json.loads((tmp_path / "run" / "report.json").read_text())["global_step"] == 1


def test_training_on_the_cpu_reuses_freed_memory_as_the_pipeline_does(tiny_config, monkeypatch):
    import train.trainer

    calls = []
    monkeypatch.setattr(train.trainer, "reuse_freed_memory", lambda: calls.append(1) or True)
    with pytest.warns(UserWarning, match="only 2 training videos"):
        train.trainer.fit(tiny_config.replace(max_steps=1))
    assert calls == [1]


def test_cli_trains_and_reports_start_and_best(tiny_data, tokenizer_dir, tmp_path, capsys):
    args = ["--data", str(tiny_data), "--out", str(tmp_path / "cli"), "--config", "tiny", "--text-encoder",
            str(tokenizer_dir), "--num-frames", "2", "--train-scales", "64", "--max-size", "96",
            "--eval-short-side", "64", "--num-workers", "0", "--val-fraction", "0.5", "--batch-size", "1",
            "--epochs", "1", "--no-progress"]
    with pytest.warns(UserWarning, match="only 1 training videos"):
        assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("start: J&F ") and "\nbest:  J&F " in out and "(1 epochs, 4 steps)" in out  # 2 expressions x frames 0 and 2
    assert (tmp_path / "cli" / "checkpoint_best.pth").is_file() and (tmp_path / "cli" / "metrics.jsonl").is_file()
