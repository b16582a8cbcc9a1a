"""CMRAN against the official code (FloretCat/CMRAN), on its outputs in fixtures.

The official outputs come from one batch of the official ``train_epoch`` (SEL and WSEL),
dropout 0. The heads of ours equal the official ones to float64 rounding; where our
``pipeline/models/cmran.py`` departs on purpose, the test asserts the departure as it is:

- the class head has 29 rows, background included (official SEL: 28). With the mapped
  weights our background row is zero: the 28 others equal the official logits, and our
  cross-entropy exceeds the official one by exactly
  :math:`\\log(1 + e^{0 - \\mathrm{LSE}(k_{1..28})})`;
- a video without events has the event-class target background (official: class 0, the
  argmax of an all-zero row);
- WSEL pools the relevance in log space (:func:`segment_scores`, then eq 6's max pooling)
  where the official code pools :math:`\\sigma(e_t) k` over time. The official pooling
  applied to our heads gives the official video prediction, loss and gradients.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.models.cmran import CMRAN, segment_scores, video_event_class
from tests.golden.common import check_probes, close, load, load_ours


def heads(name: str, **kwargs) -> tuple:
    meta, f = load(name)
    model = load_ours(CMRAN(**kwargs), name, meta)
    audio = torch.tensor(f["audio"], dtype=torch.float64, requires_grad=True)
    relevance, class_logits = model.heads(audio, torch.tensor(f["visual"], dtype=torch.float64))
    return meta, f, model, audio, relevance, class_logits


def test_sel_heads_losses_and_gradients_equal_the_official():
    meta, f, model, audio, relevance, class_logits = heads("cmran_sel")
    close(relevance, f["relevance"], what="event relevance e_t")
    close(class_logits[:, :28], f["class_logits"], what="class logits (28 official)")
    assert (class_logits[:, 28] == 0).all()  # our background row, zero in the mapping
    labels = torch.from_numpy(f["labels"])
    close((labels != 28).double(), f["relevance_target"], atol=0, what="relevance target")
    event = video_event_class(labels, background=28)
    assert event.tolist() == f["event_target"].tolist()
    bce = F.binary_cross_entropy_with_logits(relevance, (labels != 28).double())
    close(bce, f["loss_relevance"], what="relevance BCE")
    # Our 29-class cross-entropy: the official 28-class one plus the background's share.
    _, features = model(audio, torch.tensor(f["visual"], dtype=torch.float64), True)
    ours = model.feature_loss(features, labels)
    share = torch.log1p(torch.exp(-class_logits[:, :28].logsumexp(dim=-1))).mean()
    close(ours - bce, f["loss_event"] + share.item(), what="29-class CE = 28-class CE + share")
    # The official loss on our heads: same gradients.
    (bce + F.cross_entropy(class_logits[:, :28], event)).backward()
    close(audio.grad, f["grad/audio"], what="d loss / d audio")
    assert check_probes(model, "cmran_sel", meta, f, atol=1e-9) == 106


def test_event_target_of_a_video_without_events_is_background_not_class_0():
    _, f = load("cmran_sel")
    labels = torch.from_numpy(f["more_labels"])  # no event; classes 4 and 9
    assert f["more_event_target"].tolist() == [0, 9]  # the official target
    assert video_event_class(labels, background=28).tolist() == [28, 9]
    close((labels != 28).double(), f["more_relevance_target"], atol=0)


@pytest.fixture(scope="module")
def wsel() -> tuple:
    return heads("cmran_wsel", av_heads=2)


def test_wsel_heads_equal_and_the_official_pooling_of_them_gives_its_loss(wsel):
    meta, f, model, audio, relevance, class_logits = wsel
    close(relevance, f["relevance"], what="event relevance e_t")
    close(class_logits, f["class_logits"], what="class logits (29)")
    pooled = (relevance.sigmoid().unsqueeze(-1) * class_logits.unsqueeze(1)).amax(dim=1)
    official = pooled.softmax(dim=-1)  # (B, C): the official WSEL video prediction
    close(official, f["video_probs"], what="official pooling of our heads")
    loss = F.multilabel_soft_margin_loss(official, torch.from_numpy(f["video_labels"]))
    close(loss, f["loss"], what="official WSEL loss on our heads")
    loss.backward()
    close(audio.grad, f["grad/audio"], what="d loss / d audio")
    assert check_probes(model, "cmran_wsel", meta, f, atol=1e-9) == 106


def test_wsel_log_space_pooling_is_our_documented_departure(wsel):
    _, f, model, _, relevance, class_logits = wsel
    ours = model.video_probabilities(segment_scores(relevance, class_logits, 28))
    # What ours is, exactly: eq 6 on log sigma(e_t) + log softmax(k) - max log softmax(k),
    # background max(log sigma(-e_t), ...).
    log_k = class_logits.log_softmax(dim=-1)
    top = F.logsigmoid(relevance).amax(dim=1, keepdim=True) + log_k - log_k.amax(-1, True)
    no_event = F.logsigmoid(-relevance).amax(dim=1)
    top[:, 28] = torch.maximum(top[:, 28], no_event)
    close(ours, top.softmax(dim=-1), what="log-space pooling")
    # It is not the official prediction (the departure is real on these inputs).
    assert (ours.detach().numpy() - f["video_probs"]).__abs__().max() > 1e-3
    assert math.isfinite(float(ours.detach().sum()))


def test_wsel_pooling_official_trains_on_the_official_loss():
    # The declared alternative (model.wsel_pooling: official), dropout 0 as in the fixture.
    meta, f = load("cmran_wsel")
    options = {"av_heads": 2, "dropout": 0.0, "input_dropout": 0.0, "wsel_pooling": "official"}
    model = load_ours(CMRAN(**options), "cmran_wsel", meta).train()
    audio, visual = (torch.tensor(f[k], dtype=torch.float64) for k in ("audio", "visual"))
    scores = model(audio, visual)  # (B, T, C): sigma(e_t) k in training
    close(model.video_probabilities(scores), f["video_probs"], what="official pooling")
    close(model.wsel_loss(scores, torch.from_numpy(f["video_labels"])), f["loss"])
    relevance, class_logits = model.heads(audio, visual)
    evaluated = model.eval()(audio, visual)  # evaluation: the decision-rule scores
    close(evaluated, segment_scores(relevance, class_logits, 28), what="evaluation scores")
