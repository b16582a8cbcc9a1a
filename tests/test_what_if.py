"""bench.what_if: the log-likelihood loss, the in-process changes and their undoing."""

import pytest
import torch
import torch.nn.functional as F

from bench import what_if
from pipeline.losses import mil_loss, video_prediction
from pipeline.models.ave import AVEBaseline
from pipeline.models.cmran import CMRAN
from pipeline.models.psp import AudioGuidedAttention


def _case():
    torch.manual_seed(0)
    scores = torch.randn(2, 10, 4)
    labels = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 1]])
    return scores, labels


def test_log_likelihood_is_the_binary_cross_entropy_of_eq_6s_probabilities():
    scores, labels = _case()
    expected = F.binary_cross_entropy(video_prediction(scores), labels)
    assert what_if.log_likelihood_loss(scores, labels).item() == pytest.approx(expected.item())
    # by hand for one video and class: p = softmax(max_t x_t)
    p = torch.softmax(scores[0].amax(dim=0), dim=0)
    by_hand = -(torch.log(p[0]) + torch.log1p(-p[1:]).sum()) / 4
    single = what_if.log_likelihood_loss(scores[:1], labels[:1])
    assert single.item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_the_log_likelihood_change_replaces_both_mil_losses_and_is_undone():
    scores, labels = _case()
    ave = AVEBaseline(audio_dim=6, visual_dim=8, n_regions=4, n_classes=4, hidden=4)
    wanted = what_if.log_likelihood_loss(scores, labels)
    with what_if.changed("log-likelihood"):
        assert CMRAN.wsel_loss(scores, labels).item() == wanted.item()
        assert ave.wsel_loss(scores, labels).item() == wanted.item()
    assert CMRAN.wsel_loss(scores, labels).item() == mil_loss(scores, labels).item()
    assert ave.wsel_loss(scores, labels).item() == mil_loss(scores, labels).item()


def test_the_mean_regions_change_reads_the_maps_mean_and_is_undone():
    torch.manual_seed(0)
    attention = AudioGuidedAttention(6, 8, 4, 5, 3)
    audio, regions = torch.randn(2, 10, 6), torch.randn(2, 10, 4, 8)
    with what_if.changed("mean-regions"):
        torch.testing.assert_close(attention(audio, regions), regions.mean(dim=2))
    weighted = attention.weights(audio, regions).unsqueeze(-2) @ regions  # (2, 10, 1, 8)
    torch.testing.assert_close(attention(audio, regions), weighted.squeeze(-2))


def test_unknown_changes_and_stages_are_refused():
    with (
        pytest.raises(SystemExit, match="expected one of .*found 'faster'"),
        what_if.changed("faster"),
    ):
        pass
    with pytest.raises(SystemExit):
        what_if.parse_args(["--change", "mean-regions", "--stages", "train_everything"])
    args = what_if.parse_args(["--change", "mean-regions", "--stages", "train_sel", "evaluate@sel"])
    assert args.stages == ["train_sel", "evaluate@sel"]


def _cmran_case():
    torch.manual_seed(0)
    model = CMRAN(
        audio_dim=6,
        visual_dim=8,
        n_classes=5,
        hidden=8,
        heads=2,
        av_heads=2,
        encoder_layers=1,
        decoder_layers=1,
        feedforward=16,
        attention_hidden=8,
        bottleneck=4,
    )
    features = torch.randn(2, 10, 1 + 5)  # (B, T, 1 + C)
    labels = torch.tensor([[4] * 3 + [1] * 7, [2] * 10])  # background is 4
    return model, features, labels


def test_cmrans_two_loss_terms_sum_to_its_sel_loss_and_are_the_papers():
    model, features, labels = _cmran_case()
    terms = what_if.cmran_loss_terms(model, features, labels)
    total = model.feature_loss(features, labels)
    assert (terms["relevance"] + terms["class"]).item() == pytest.approx(total.item())
    # by hand: the video classes are 1 and 2; the first video's first 3 segments are background
    is_event = torch.tensor([[0.0] * 3 + [1.0] * 7, [1.0] * 10])
    bce = F.binary_cross_entropy(torch.sigmoid(features[..., 0]), is_event)
    ce = -torch.log_softmax(features[:, 0, 1:], dim=-1)[[0, 1], [1, 2]].mean()
    assert terms["relevance"].item() == pytest.approx(bce.item(), rel=1e-6)
    assert terms["class"].item() == pytest.approx(ce.item(), rel=1e-6)


@pytest.mark.parametrize("change, term", [("class-only", "class"), ("relevance-only", "relevance")])
def test_the_one_term_changes_keep_that_term_and_are_undone(change, term):
    model, features, labels = _cmran_case()
    terms = what_if.cmran_loss_terms(model, features, labels)
    with what_if.changed(change):
        assert model.feature_loss(features, labels).item() == terms[term].item()
    assert model.feature_loss(features, labels).item() == pytest.approx(sum(terms.values()).item())


def test_feature_statistics_are_per_feature_over_every_other_axis():
    audio = torch.tensor([[[1.0, 10.0], [3.0, 10.0]]])  # (1, 2, 2)
    visual = torch.arange(16.0).reshape(1, 2, 2, 2, 2)  # (1, T, 2, 2, 2): channel 0 even
    statistics = what_if.feature_statistics({"audio": audio, "visual": visual})
    mean, std = statistics["audio"]
    assert mean.tolist() == [2.0, 10.0]
    assert std[0].item() == pytest.approx(2**0.5) and std[1].item() == pytest.approx(what_if.EPS)
    mean, std = statistics["visual"]
    assert mean.tolist() == [7.0, 8.0]  # the evens 0..14 and the odds 1..15
    assert std[0].item() == pytest.approx(torch.arange(0.0, 16, 2).std().item())


def test_standardizing_gives_the_forward_standardized_inputs_and_fetches_once():
    seen, fetched = [], []
    statistics = {
        "audio": (torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])),
        "visual": (torch.tensor([3.0]), torch.tensor([0.5])),
    }

    def fetch():
        fetched.append(1)
        return statistics

    forward = what_if.standardizing(lambda self, a, v, flag=False: seen.append((a, v, flag)), fetch)
    audio, visual = torch.tensor([[[3.0, 2.0]]]), torch.full((1, 1, 2, 2, 1), 4.0)
    forward(None, audio, visual, flag=True)
    forward(None, audio, visual)
    assert len(fetched) == 1
    a, v, flag = seen[0]
    assert a.tolist() == [[[1.0, 0.0]]] and flag is True
    assert torch.equal(v, torch.full((1, 1, 2, 2, 1), 2.0))


def test_the_standardized_inputs_change_wraps_cmrans_forward_and_is_undone():
    original = CMRAN.forward
    with what_if.changed("standardized-inputs"):
        assert CMRAN.forward is not original
    assert CMRAN.forward is original


def test_no_change_patches_nothing():
    original = (CMRAN.forward, CMRAN.feature_loss, AudioGuidedAttention.forward)
    with what_if.changed(None):
        assert (CMRAN.forward, CMRAN.feature_loss, AudioGuidedAttention.forward) == original
