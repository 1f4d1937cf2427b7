"""``SentenceRefiner``: pooled word features added to the sentence feature, zero until trained."""
import pytest
import torch

from referformer_core.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from referformer_core.config import get_config
from referformer_core.referformer import ReferFormer
from referformer_core.sentence_refiner import SentenceRefiner


def _words_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    words = torch.randn(3, 7, 64)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    return words, mask


def _trained_refiner() -> SentenceRefiner:
    torch.manual_seed(0)
    refiner = SentenceRefiner(64, 32, width=48, num_layers=2)
    torch.nn.init.normal_(refiner.output_proj.weight, std=0.1)
    return refiner.eval()


def test_a_fresh_refiner_outputs_zero_but_its_output_projection_learns():
    refiner = SentenceRefiner(64, 32, width=48, num_layers=2)
    words, mask = _words_and_mask()
    out = refiner(words, mask)
    assert out.shape == (3, 32)
    assert torch.count_nonzero(out) == 0
    (out - 1.0).pow(2).sum().backward()
    assert refiner.output_proj.weight.grad.abs().sum() > 0


def test_padding_does_not_change_the_output_and_word_order_does():
    refiner = _trained_refiner()
    words, mask = _words_and_mask()
    with torch.no_grad():
        out = refiner(words, mask)
        noisy = words.clone()
        noisy[1, 4:] = 50.0
        noisy[2, 2:] = -50.0
        assert torch.allclose(refiner(noisy, mask), out, atol=1e-5)
        swapped = words.clone()
        swapped[0, [1, 3]] = words[0, [3, 1]]
        assert not torch.allclose(refiner(swapped, mask)[0], out[0], atol=1e-3)


def test_the_same_output_with_and_without_autograd():
    """Inference (no grad) may take PyTorch's fused encoder-layer path; it must agree with training's path."""
    refiner = _trained_refiner()
    words, mask = _words_and_mask()
    with torch.no_grad():
        fast = refiner(words, mask)
    assert torch.allclose(refiner(words, mask), fast, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_model() -> ReferFormer:
    torch.manual_seed(0)
    return ReferFormer(get_config("tiny")).eval()


def test_adding_a_refiner_keeps_what_the_model_computes(tiny_model):
    ids = torch.tensor([[0, 11, 12, 13, 2], [0, 21, 22, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    with torch.no_grad():
        before = tiny_model.encode_text(ids, mask)
        grown = ReferFormer(get_config("tiny")).eval()
        grown.load_state_dict(tiny_model.state_dict())
        grown.add_sentence_refiner(2)
        grown.eval()
        after = grown.encode_text(ids, mask)
    assert grown.config.sentence_refiner_layers == 2 and tiny_model.sentence_refiner is None
    assert torch.equal(before.sentence, after.sentence) and torch.equal(before.words, after.words)


def test_a_model_with_a_refiner_round_trips_through_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ReferFormer(get_config("tiny").replace(sentence_refiner_layers=1)).eval()
    torch.nn.init.normal_(model.sentence_refiner.output_proj.weight)
    path = tmp_path / "refined.pth"
    save_checkpoint(model, path)
    assert read_checkpoint(path)["referformer_config"]["sentence_refiner_layers"] == 1
    loaded = load_checkpoint(path)
    assert len(loaded.sentence_refiner.layers) == 1
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_a_checkpoint_from_before_the_refiner_loads_without_one(tmp_path):
    """Checkpoints whose stored config predates the field (the shipped bundle until then) have no refiner."""
    torch.manual_seed(0)
    model = ReferFormer(get_config("tiny")).eval()
    path = tmp_path / "old.pth"
    save_checkpoint(model, path)
    data = torch.load(path, weights_only=True)
    for key in ("sentence_refiner_layers", "sentence_refiner_dim"):
        del data["referformer_config"][key]
    torch.save(data, path)
    assert load_checkpoint(path).sentence_refiner is None
