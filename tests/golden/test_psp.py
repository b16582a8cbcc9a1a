"""PSP against the official code (jasongief/PSP_CVPR_2021), on its outputs in fixtures.

Full network: outputs, the AVPS target and loss, the SEL loss and the gradients equal the
official ones to float64 rounding. Weak network: outputs equal; the WSEL loss and its
gradients to float32 rounding, since :meth:`PSP.wsel_loss` computes the binary
cross-entropy in float32 (for mixed precision).
"""

import torch
import torch.nn.functional as F

from pipeline.models.psp import PSP, avps_target
from pipeline.training.losses import sel_loss
from tests.golden.common import check_probes, close, load, load_ours


def inputs(arrays: dict, grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    audio = torch.tensor(arrays["audio"], dtype=torch.float64, requires_grad=grad)
    return audio, torch.tensor(arrays["visual"], dtype=torch.float64)


def test_full_network_outputs_losses_and_gradients_equal_the_official():
    meta, f = load("psp_full")
    model = load_ours(PSP(psp_threshold=meta["tau"]), "psp_full", meta)
    audio, visual = inputs(f)
    scores, features = model(audio, visual, return_features=True)
    v_psp, a_psp = features.chunk(2, dim=-1)
    close(scores, f["scores"], what="segment scores")
    close(v_psp, f["v_psp"], what="v_psp")
    close(a_psp, f["a_psp"], what="a_psp")
    close((v_psp + a_psp) / 2, f["fusion"], what="fusion")
    close(F.cosine_similarity(v_psp, a_psp, dim=-1), f["similarity"], what="similarity")
    labels = torch.from_numpy(f["labels"])
    loss_cls, loss_avps = sel_loss(scores, labels), model.feature_loss(features, labels)
    close(loss_cls, f["loss_cls"], what="cross-entropy")
    close(loss_avps, 100 * f["loss_avps"], what="lambda * AVPS loss")
    (loss_cls + loss_avps).backward()
    close(audio.grad, f["grad/audio"], what="d loss / d audio")
    assert check_probes(model, "psp_full", meta, f, atol=1e-9) == 37


def test_avps_target_and_segment_labels_equal_the_official_loader():
    # Five videos: our batch, one without events, one all event, one with two classes.
    meta, f = load("psp_full")
    labels = torch.from_numpy(f["target_labels"])
    close(avps_target(labels, background=28), f["avps_target"], atol=1e-7, what="AVPS target")
    assert (labels.numpy() == f["segment_labels"]).all()


def test_weak_network_outputs_equal_the_official():
    meta, f = load("psp_weak")
    model = load_ours(PSP(psp_network="weak", psp_threshold=meta["tau"]), "psp_weak", meta)
    audio, visual = inputs(f)
    scores = model(audio, visual)
    close(scores, f["raw_scores"], what="raw segment scores")
    close(model.segment_weights(scores) * scores, f["weighted_scores"], what="weighted scores")
    close(model.video_probabilities(scores), f["video_probs"], what="video probabilities")
    loss = model.wsel_loss(scores, torch.from_numpy(f["video_labels"]))
    close(loss, f["loss"], atol=0, rtol=1e-6, what="WSEL loss (float32)")
    loss.backward()
    close(audio.grad, f["grad/audio"], atol=1e-9, rtol=1e-5, what="d loss / d audio")
    assert check_probes(model, "psp_weak", meta, f, atol=1e-9, rtol=1e-5) == 34
