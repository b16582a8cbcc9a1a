"""The AVE baseline against the official code (YapengTian/AVE-ECCV18), on its fixtures.

The attention, the attended features and both Bi-LSTMs equal the official ones to float64
rounding. After them ours follows seed 004 §4.1 eqs 4-5 (:math:`x_t = W^o U^o([h^v_t;
h^a_t])`) where the official ``att_Net`` computes
:math:`W^o U^o(\\mathrm{ReLU}([h^a_t; h^v_t])) + b^o` (a ReLU on the LSTM states and a
bias on the last layer); the tests assert that relation exactly, with our own layers.
The official MIL pooling and weak loss (``models_weakly.py``, the multi-label soft margin
loss on the softmax of the max-pooled scores) equal ours
(:func:`~pipeline.training.losses.video_prediction`, :func:`~pipeline.training.losses.mil_loss`).
"""

import torch
import torch.nn.functional as F

from pipeline.models.ave import AVEBaseline
from pipeline.training.losses import mil_loss, video_prediction
from tests.golden.common import close, load, load_ours, weights_of


def setup():
    meta, f = load("ave")
    model = load_ours(AVEBaseline(), "ave", meta)
    audio, visual = (torch.tensor(f[k], dtype=torch.float64) for k in ("audio", "visual"))
    return meta, f, model, audio, visual


def official_head(model: AVEBaseline, meta: dict, h_v: torch.Tensor, h_a: torch.Tensor):
    """The official scores from our layers: ``W^o U^o(ReLU([h^v; h^a])) + b^o``."""
    bias = torch.from_numpy(weights_of(meta)["L2.bias"])
    return model.w_o(model.u_o(torch.relu(torch.cat([h_v, h_a], dim=-1)))) + bias


def test_attention_and_lstms_equal_the_official():
    meta, f, model, audio, visual = setup()
    alpha = model.attention(audio, visual)  # (B, T, 49)
    attended = torch.einsum("btr,btrc->btc", alpha, visual.flatten(2, 3))
    close(attended, f["attended"], what="attended visual features")
    close(model.lstm_v(attended)[0], f["lstm_v"], what="visual Bi-LSTM")
    close(model.lstm_a(audio)[0], f["lstm_a"], what="audio Bi-LSTM")


def test_scores_differ_from_the_official_by_its_relu_and_bias_only():
    meta, f, model, audio, visual = setup()
    h_v, h_a = (torch.from_numpy(f[k]) for k in ("lstm_v", "lstm_a"))
    official = official_head(model, meta, h_v, h_a)
    close(official.softmax(dim=-1), f["probs"], what="official SEL probabilities")
    # The official SEL loss: multi-label soft margin on those probabilities.
    one_hot = F.one_hot(torch.from_numpy(f["labels"]), 29).double()
    close(F.multilabel_soft_margin_loss(official.softmax(-1), one_hot), f["loss"])
    # Ours: the same layers without the ReLU and the bias (seed 004 eqs 4-5).
    ours = model(audio, visual)
    close(ours, model.w_o(model.u_o(torch.cat([h_v, h_a], dim=-1))), what="our scores")
    assert (ours - official).abs().max() > 1e-3  # the departure is real


def test_weak_pooling_and_loss_equal_the_official():
    meta, f, model, _, _ = setup()
    h_v, h_a = (torch.from_numpy(f[k]) for k in ("lstm_v", "lstm_a"))
    scores = torch.from_numpy(f["weak_scores"])
    close(official_head(model, meta, h_v, h_a), scores, what="official weak scores")
    close(video_prediction(scores), f["weak_probs"], what="MIL video prediction (eq 6)")
    close(mil_loss(scores, torch.from_numpy(f["video_labels"])), f["weak_loss"], what="MIL")
