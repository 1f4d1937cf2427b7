import torch

from referformer_core.msda import ms_deform_attn_pytorch


def test_single_point_at_pixel_centre_returns_that_pixel():
    # one level 2x3, one head, 1 channel, one point at the centre of pixel (row 1, col 2)
    value = torch.arange(6, dtype=torch.float64).view(1, 6, 1, 1)
    shapes = torch.tensor([[2, 3]])
    start = torch.tensor([0])
    loc = torch.tensor([(2 + 0.5) / 3, (1 + 0.5) / 2], dtype=torch.float64).view(1, 1, 1, 1, 1, 2)
    w = torch.ones(1, 1, 1, 1, 1, dtype=torch.float64)
    out = ms_deform_attn_pytorch(value, shapes, start, loc, w)
    assert out.shape == (1, 1, 1)
    assert out.item() == 5.0
