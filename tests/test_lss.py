"""Tests of the Land-Shore-Sea loss (seed 002 eqs 8-10), computed by hand on tiny features."""

import math

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.losses import land_shore_sea_loss

G = 28  # background

# Sea [0, 3), land [3, 6): sea halves x0 vs x2, land halves x3 vs x5; one shore, x3.
HAND_LABELS = [G, G, G, 1, 1, 1]
HAND_FEATURES = [[0, 0], [2, 0], [4, 0], [0, 3], [0, 5], [3, 7]]
# |x3 - mean(x4, x5)| - |x3 - mean(x0, x1, x2)| + 1 = |(-1.5, -3)| - |(-2, 3)| + 1
HAND_SHORE = math.sqrt(11.25) - math.sqrt(13) + 1


def terms(features, labels, margin: float = 1.0) -> dict[str, float]:
    out = land_shore_sea_loss(
        torch.tensor(features, dtype=torch.float32), torch.tensor(labels), margin
    )
    return {name: value.item() for name, value in out.items()}


def test_hand_example() -> None:
    out = terms([HAND_FEATURES], [HAND_LABELS])
    assert out["sea"] == pytest.approx(4.0)  # |x0 - x2| = |(-4, 0)|
    assert out["land"] == pytest.approx(5.0)  # |x3 - x5| = |(-3, -4)|
    assert out["shore"] == pytest.approx(HAND_SHORE)


def test_terms_average_over_each_videos_patches_then_over_videos() -> None:
    # Video 1: lands [0, 2) and [4, 6), sea [2, 4), shores x1 and x4.
    second = [[1, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 2]]
    out = terms([HAND_FEATURES, second], [HAND_LABELS, [1, 1, G, G, 2, 2]])
    assert out["land"] == pytest.approx((5.0 + (1.0 + 2.0) / 2) / 2)
    assert out["sea"] == pytest.approx((4.0 + 0.0) / 2)
    # shore x1: |x1 - x0| - |x1 - x2| + 1 = 2; shore x4: |x4 - x5| - |x4 - x3| + 1 = 3.
    assert out["shore"] == pytest.approx((HAND_SHORE + (2.0 + 3.0) / 2) / 2)


def test_constant_patches_and_a_satisfied_triplet_give_zero() -> None:
    labels = [G, G, 1, 1, 1, G, G, G, 2, 2]
    land, sea = [0.0, 0.0], [10.0, 0.0]
    features = [sea if label == G else land for label in labels]
    assert terms([features], [labels]) == {"land": 0.0, "sea": 0.0, "shore": 0.0}
    # Margin 20: every shore (x2, x4, x8) costs 0 - 10 + 20.
    assert terms([features], [labels], margin=20.0)["shore"] == pytest.approx(10.0)


def test_all_background_and_all_foreground_videos() -> None:
    features = [[[float(t), 0.0] for t in range(10)]] * 2  # first half mean 2, second 7
    background = terms(features, [[G] * 10, [G] * 10])
    assert background == {"land": 0.0, "sea": pytest.approx(5.0), "shore": 0.0}
    foreground = terms(features, [[3] * 10, [G] * 10])
    assert foreground == {"land": pytest.approx(2.5), "sea": pytest.approx(2.5), "shore": 0.0}


def test_one_segment_patches_and_odd_middles_have_no_term() -> None:
    # Land [2, 3) is too short to halve and has no land besides its shore: no land, no
    # shore term. Sea [3, 10) compares [3, 6) with [7, 10); x6 (huge) is in neither half.
    features = [[0.0], [2.0], [50.0], [1.0], [1.0], [1.0], [1000.0], [4.0], [4.0], [4.0]]
    out = terms([features], [[G, G, 1, G, G, G, G, G, G, G]])
    assert out["land"] == 0.0
    assert out["shore"] == 0.0
    assert out["sea"] == pytest.approx((2.0 + 3.0) / 2)  # |x0 - x1| and |1 - 4|


def test_shores_need_a_sea_on_their_side() -> None:
    # Land 1 starts the video and meets land 2: no shore; land 2 has one shore, x3.
    features = [[0.0], [0.0], [5.0], [1.0], [3.0], [3.0]]
    out = terms([features], [[1, 1, 2, 2, G, G]], margin=0.5)
    assert out["land"] == pytest.approx((0.0 + 4.0) / 2)
    assert out["shore"] == pytest.approx(4.0 - 2.0 + 0.5)  # |x3 - x2| - |x3 - 3| + margin


def test_gradients_are_finite_at_zero_distance() -> None:
    features = torch.ones(2, 10, 3, requires_grad=True)
    labels = torch.tensor([[G] * 4 + [5] * 6, [G] * 10])
    out = land_shore_sea_loss(features, labels, margin=1.0)
    sum(out.values()).backward()
    assert torch.isfinite(features.grad).all()
    assert out["shore"].item() == pytest.approx((1.0 + 0.0) / 2)  # distances 0: the margin


def test_terms_without_patches_still_have_a_graph() -> None:
    features = torch.randn(1, 10, 3, requires_grad=True)
    out = land_shore_sea_loss(features, torch.full((1, 10), G), margin=1.0)
    assert out["land"].requires_grad and out["shore"].requires_grad
    out["land"].backward()
    assert (features.grad == 0).all()


def test_background_index_is_a_parameter() -> None:
    features = torch.tensor([HAND_FEATURES], dtype=torch.float32)
    labels = torch.tensor([[0, 0, 0, 7, 7, 7]])
    out = land_shore_sea_loss(features, labels, margin=1.0, background=0)
    assert out["land"].item() == pytest.approx(5.0)
    assert out["shore"].item() == pytest.approx(HAND_SHORE)


def test_shape_mismatch_is_a_user_error() -> None:
    with pytest.raises(PipelineError, match=r"expected features \(B, T, d\) and labels"):
        land_shore_sea_loss(torch.zeros(2, 10, 3), torch.zeros(2, 9, dtype=torch.long), 1.0)
