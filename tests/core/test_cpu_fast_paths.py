"""The CPU inference fast paths compute what the plain modules compute: frozen BatchNorm folded into ResNet
convolutions, the chunked FFN, and the allocator setting that keeps freed memory for reuse."""
import platform

import pytest
import torch

from referformer_core.backbones.resnet import ResNetBackbone
from referformer_core.memory import reuse_freed_memory
from referformer_core.transformer import FFN_CHUNK_ROWS, feed_forward


def test_folded_frozen_batchnorm_matches_the_module_path():
    torch.manual_seed(0)
    backbone = ResNetBackbone("resnet50").eval()
    for module in backbone.modules():  # non-trivial statistics, so folding has something to fold
        if hasattr(module, "running_var"):
            module.running_var.uniform_(0.5, 2.0)
            module.running_mean.normal_(0, 0.1)
            module.weight.uniform_(0.5, 1.5)
            module.bias.normal_(0, 0.1)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        folded = backbone(x, 2)
    with torch.enable_grad():
        plain = [y.detach() for y in backbone(x, 2)]
    assert [f.shape for f in folded] == [(2, 256, 16, 24), (2, 512, 8, 12), (2, 1024, 4, 6), (2, 2048, 2, 3)]
    for f, p in zip(folded, plain):
        assert not torch.equal(f, p)  # a different computation ...
        torch.testing.assert_close(f, p, rtol=1e-4, atol=1e-4 * p.abs().max().item())  # ... of the same function


def test_chunked_feed_forward_is_bitwise_the_unchunked_one():
    torch.manual_seed(0)
    linear1, linear2 = torch.nn.Linear(32, 64), torch.nn.Linear(64, 32)
    x = torch.randn(FFN_CHUNK_ROWS * 2 + 77, 1, 32)
    with torch.no_grad():
        chunked = feed_forward(x, linear1, linear2, torch.nn.Dropout(0.1).eval())
        whole = torch.cat([linear2(torch.relu(linear1(part))) for part in x.split(FFN_CHUNK_ROWS)])
    assert chunked.shape == x.shape and torch.equal(chunked, whole)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):  # autocast takes the plain path
        assert feed_forward(x, linear1, linear2, torch.nn.Identity()).dtype == torch.bfloat16


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting exists in glibc only")
def test_freed_memory_is_kept_for_reuse_on_glibc():
    assert reuse_freed_memory() is True and reuse_freed_memory() is True
