"""The analytic FLOP count of the DPNet throughput bench matches PyTorch's own count."""

import pytest
import torch

from bench.dpnet_throughput import (
    AUDIO_DIM,
    VISUAL_DIM,
    counted_step_flops,
    dpnet_step_flops,
    make_batch,
)
from pipeline.models import build_model


@pytest.mark.parametrize(("hidden", "blocks", "kernel"), [(32, 1, 3), (48, 3, 2), (16, 4, 5)])
def test_analytic_step_flops_equal_the_operator_count(hidden, blocks, kernel):
    torch.manual_seed(0)
    size = {"hidden": hidden, "blocks": blocks, "kernel": kernel}
    model = build_model("dpnet", audio_dim=AUDIO_DIM, visual_dim=VISUAL_DIM, **size)
    counted = counted_step_flops(model, make_batch(4))
    assert dpnet_step_flops(4, hidden, blocks, kernel) == pytest.approx(counted, rel=2e-3)
