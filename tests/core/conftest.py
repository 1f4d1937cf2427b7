"""Shared pieces for the model tests: a small RoBERTa tokenizer trained on the fly, a recipe-weight model."""
from pathlib import Path

import pytest
import torch

from referformer_core.parity import Fixture, apply_recipe
from referformer_core.referformer import ReferFormer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CORPUS = [
    "the brown dog jumping over the fence",
    "a person riding a bike on the left",
    "the white cat sitting next to the window",
    "a red car driving down the road",
    "the man in a black shirt holding a surfboard",
] * 20


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A RoBERTa-style byte-level BPE tokenizer (vocab < 1000) saved as a transformers directory."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaTokenizerFast

    out = tmp_path_factory.mktemp("roberta_tiny")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=600, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(out))
    tok = RobertaTokenizerFast(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"))
    tok.save_pretrained(str(out))
    fixture = Fixture.load(FIXTURES / "fixture_resnet50.pt")
    RobertaConfig(**fixture.meta["text"]).save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def recipe_model() -> ReferFormer:
    """The ResNet-50 parity model (2-layer RoBERTa, vocab 1000) with the fixture recipe weights."""
    torch.manual_seed(0)
    model = ReferFormer(Fixture.load(FIXTURES / "fixture_resnet50.pt").config()).eval()
    apply_recipe(model)
    return model
