"""bench.modality_swap: partners of another class, the outcome shares, batched prediction."""

import numpy as np
import pytest
import torch

from bench.modality_swap import OUTCOMES, outcome_shares, parse_args, predict, swap_partners
from pipeline.errors import PipelineError


def test_every_partner_has_another_class_and_the_draw_is_seeded():
    classes = np.array([0, 0, 1, 2, 2, 2])
    partners = swap_partners(classes, seed=3)
    assert partners.shape == (6,)
    assert (classes[partners] != classes).all()
    np.testing.assert_array_equal(partners, swap_partners(classes, seed=3))


def test_videos_of_one_class_are_refused():
    with pytest.raises(PipelineError, match="at least two classes"):
        swap_partners(np.array([4, 4, 4]), seed=0)


def test_the_outcome_shares_of_a_hand_computed_case():
    # background = 9; video 0: own 1, sound 2; video 1: own 3, sound 1
    predictions = np.array([[2, 2, 1, 9], [1, 3, 5, 9]])
    shares = outcome_shares(predictions, np.array([1, 3]), np.array([2, 1]), background=9)
    assert shares == {
        "sound's class": 3 / 8, "look's class": 2 / 8, "another class": 1 / 8, "background": 2 / 8
    }  # fmt: skip
    assert list(shares) == list(OUTCOMES) and sum(shares.values()) == 1


class _Sum(torch.nn.Module):
    """Scores class ``k`` of segment ``t`` by ``audio[t, k] + visual[t, k]``."""

    def forward(self, audio, visual):
        return audio + visual


def test_predict_in_batches_equals_one_pass():
    generator = torch.Generator().manual_seed(0)
    audio, visual = torch.randn(7, 10, 5, generator=generator), torch.randn(7, 10, 5)
    expected = (audio + visual).argmax(-1).numpy()
    np.testing.assert_array_equal(predict(_Sum(), audio, visual, batch=3), expected)


def test_the_change_is_one_of_what_ifs_and_defaults_to_none():
    assert parse_args([]).change is None
    assert parse_args(["--change", "standardized-inputs"]).change == "standardized-inputs"
    with pytest.raises(SystemExit):
        parse_args(["--change", "faster"])
