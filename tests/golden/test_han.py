"""HAN and the AVVP metrics against the official code (YapengTian/AVVP-ECCV20).

HAN's outputs (one batch of the official ``main_avvp.train``, dropout 0) equal ours to
float64 rounding; its loss and gradients to float32 rounding, since
:func:`~pipeline.losses.han_loss` computes the binary cross-entropy in float32.
The metrics: :func:`~pipeline.avvp.metrics.per_video_scores` on 20 edge cases and 40
random videos against the official ``segment_level`` and ``event_level``.
"""

import numpy as np
import torch

from pipeline.avvp.metrics import per_video_scores
from pipeline.losses import han_loss, mmil_pool, smooth
from pipeline.models.han import HAN
from tests.golden.common import check_probes, close, load, load_ours


def test_han_outputs_loss_and_gradients_equal_the_official():
    meta, f = load("han")
    model = load_ours(HAN(), "han", meta)
    audio = torch.tensor(f["audio"], dtype=torch.float64, requires_grad=True)
    frames, snippets = (torch.tensor(f[k], dtype=torch.float64) for k in ("frames", "snippets"))
    output = model(audio, frames, snippets)
    pooled = mmil_pool(output)
    close(output.probs, f["frame_probs"], what="segment probabilities")
    close(pooled.video, f["video_probs"], what="video probabilities")
    close(pooled.audio, f["audio_probs"], what="audio probabilities")
    close(pooled.visual, f["visual_probs"], what="visual probabilities")
    labels = torch.from_numpy(f["labels"])
    close(smooth(labels, 0.0), f["audio_target"], atol=0, what="audio target")
    close(smooth(labels, 0.1), f["visual_target"], atol=1e-7, what="visual target")
    loss = han_loss(pooled, labels)
    close(loss, f["loss_terms"].sum(), atol=0, rtol=1e-6, what="loss (float32)")
    loss.backward()
    close(audio.grad, f["grad/audio"], atol=1e-10, rtol=1e-4, what="d loss / d audio")
    assert check_probes(model, "han", meta, f, atol=1e-9, rtol=1e-4) == 30


# The official columns: segment level f_a, f_v, f (Event@AV), f_av, then the event level.
COLUMNS = [
    "audio_segment",
    "visual_segment",
    "event_segment",
    "av_segment",
    "audio_event",
    "visual_event",
    "event_event",
    "av_event",
]


def test_avvp_metrics_equal_the_official_on_every_video():
    _, f = load("avvp_metrics")
    pred, gt = f["pred"].astype(np.int64), f["gt"].astype(np.int64)
    ours = per_video_scores(pred, gt)
    for i, name in enumerate(COLUMNS):
        close(ours[name], f["scores"][:, i], atol=1e-15, what=name)
    for level in ("segment", "event"):  # Type@AV: the mean of the three means
        means = [
            f["scores"][:, COLUMNS.index(f"{k}_{level}")].mean() for k in ("audio", "visual", "av")
        ]
        close(ours[f"type_{level}"].mean(), sum(means) / 3, atol=1e-15, what=f"type {level}")
    assert len(pred) == 60 and (f["scores"] < 1).any() and (f["scores"] == 1).any()
