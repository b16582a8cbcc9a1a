"""The AVE baseline of Tian et al. (2018), as described in seed 004 §4.1 (eqs 1-5).

Audio-guided visual attention pools each segment's ``w^2`` visual regions into one vector
(eq 1), two Bi-LSTMs add temporal context to the visual and audio streams (eqs 2-3), and
the concatenated states (eq 4) are mapped to raw segment-level class scores (eq 5). The
video-level MIL prediction (eq 6) and the losses live in :mod:`pipeline.training.losses`.

Against the official code (YapengTian/AVE-ECCV18, ``models.py``, ``models_weakly.py``;
``tests/golden/test_ave.py`` on its outputs in ``tests/golden/fixtures/ave.npz``): the
attention, the attended features and both Bi-LSTMs are equal to float64 rounding, and so
are the weak MIL prediction and loss (eq 6). Where the paper and that code differ, ours
follows the paper: the official ``att_Net`` applies a ReLU to :math:`h^*_t` before
:math:`U^o`, gives :math:`W^o` a bias, concatenates :math:`[h^a_t; h^v_t]` (a column
permutation of :math:`U^o`), makes :math:`U^v, U^a` 512 wide beside 128-unit LSTMs
(ours: one ``hidden`` for both), and trains SEL with the multi-class soft margin loss on
the softmax of the scores (ours: the trainer's cross-entropy of the raw scores). The test
asserts the first two as the exact relation between the official scores and our layers.
"""

import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.models.base import AVELModel, Hyper, register
from pipeline.models.checks import check_int, check_probability
from pipeline.training.losses import mil_loss, video_prediction


def _run_lstm(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """The output sequence of ``lstm`` on ``x`` ``(B, T, D)``.

    Under CPU autocast (``train.precision`` bf16 or fp16 on the CPU) the LSTM runs in
    float32: oneDNN's CPU LSTM has no bf16/fp16 kernel on processors without those
    instructions. On a GPU it runs in the autocast precision like every other layer.
    """
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return lstm(x.float())[0]
    return lstm(x)[0]


@register("ave")
class AVEBaseline(AVELModel):
    r"""Audio-guided visual attention + Bi-LSTMs + MIL classifier (seed 004 §4.1).

    For segment :math:`t` with visual regions :math:`f_t^v \in \mathbb{R}^{w^2 \times n_c}`
    and audio :math:`f_t^a \in \mathbb{R}^{n_a}` it computes (seed 004 §4.1 eqs 1-5)

    .. math::
        z_t &= U^v(f_t^v) W^v + W^a U^a(f_t^a) \mathbf{1}^T, \quad
        \alpha_t = \mathrm{SoftMax}(\tanh(z_t) W^f), \quad
        f_t^{v,att} = \textstyle\sum_k \alpha_t(k) f_t^v(k)

        h_t^v &= \text{Bi-LSTM}^v(f^{v,att})_t, \quad h_t^a = \text{Bi-LSTM}^a(f^a)_t,
        \quad h_t^* = [h_t^v; h_t^a], \quad x_t = W^o U^o(h_t^*)

    :math:`U^v, U^a, U^o` are fully-connected ReLU layers (with bias). :math:`W^v, W^a,
    W^f, W^o` are "learnable projection matrices" in the paper and are implemented as
    bias-free linear maps (Tian et al.'s code also has no bias in :math:`W^v, W^a, W^f`).
    ``dropout`` on :math:`h_t^*` is not in the paper; its default 0 disables it.

    Args:
        audio_dim: audio feature size :math:`n_a` (default 128, VGGish).
        visual_dim: visual channels :math:`n_c` (default 512, VGG-19 pool5).
        n_regions: visual regions :math:`w^2` per segment (default 49, a 7x7 map).
        n_classes: classes :math:`C+1` including background (default 29).
        hidden: :math:`h`, the size of :math:`U^v, U^a` and of each LSTM direction
            (default 128).
        attention_dim: :math:`d`, the columns of :math:`z_t` (default 49).
        classifier_hidden: :math:`h'`, the output size of :math:`U^o` (default 64).
        dropout: dropout probability on :math:`h_t^*` before :math:`U^o` (default 0.0).
    """

    hyperparameters = (
        Hyper("hidden", int, "h, the size of U^v, U^a and each LSTM direction (eqs 1-3)", ge=1),
        Hyper("dropout", float, "dropout on h*_t before U^o (not in the paper)", ge=0, lt=1),
        Hyper("attention_dim", int, "d, the columns of z_t (seed 004 eq 1)", ge=1),
        Hyper("classifier_hidden", int, "h', the output size of U^o (seed 004 eq 5)", ge=1),
    )
    needs_maps = True

    def __init__(
        self,
        audio_dim: int = 128,
        visual_dim: int = 512,
        n_regions: int = 49,
        n_classes: int = 29,
        hidden: int = 128,
        attention_dim: int = 49,
        classifier_hidden: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        sizes = {
            "audio_dim": audio_dim,
            "visual_dim": visual_dim,
            "n_regions": n_regions,
            "n_classes": n_classes,
            "hidden": hidden,
            "attention_dim": attention_dim,
            "classifier_hidden": classifier_hidden,
        }
        for name, value in sizes.items():
            check_int("AVEBaseline", name, value)
        check_probability("AVEBaseline", "dropout", dropout)
        self.audio_dim = audio_dim
        self.visual_dim = visual_dim
        self.n_regions = n_regions
        # eq 1: U^v, U^a (FC + ReLU) and the bias-free projections W^v, W^a, W^f.
        self.u_v = nn.Sequential(nn.Linear(visual_dim, hidden), nn.ReLU())
        self.u_a = nn.Sequential(nn.Linear(audio_dim, hidden), nn.ReLU())
        self.w_v = nn.Linear(hidden, attention_dim, bias=False)  # weight = (W^v)^T, (d, h)
        self.w_a = nn.Linear(hidden, n_regions, bias=False)  # weight = W^a, (w^2, h)
        self.w_f = nn.Linear(attention_dim, 1, bias=False)  # weight = (W^f)^T, (1, d)
        # eqs 2-3: separate Bi-LSTMs, h per direction.
        self.lstm_v = nn.LSTM(visual_dim, hidden, batch_first=True, bidirectional=True)
        self.lstm_a = nn.LSTM(audio_dim, hidden, batch_first=True, bidirectional=True)
        # eq 5: U^o (FC + ReLU) and the bias-free projection W^o.
        self.dropout = nn.Dropout(dropout)
        self.u_o = nn.Sequential(nn.Linear(4 * hidden, classifier_hidden), nn.ReLU())
        self.w_o = nn.Linear(classifier_hidden, n_classes, bias=False)

    def _regions(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Check the input shapes and return ``visual`` as ``(B, T, R, C)`` regions."""
        if audio.dim() != 3 or audio.shape[-1] != self.audio_dim:
            raise PipelineError(
                f"audio: expected shape (B, T, {self.audio_dim}), found {tuple(audio.shape)}"
            )
        regions = visual.flatten(2, 3) if visual.dim() == 5 else visual  # (B, T, R, C)
        if regions.dim() != 4 or regions.shape[2:] != (self.n_regions, self.visual_dim):
            raise PipelineError(
                f"visual: expected shape (B, T, H, W, {self.visual_dim}) with "
                f"H*W = {self.n_regions} or (B, T, {self.n_regions}, {self.visual_dim}), "
                f"found {tuple(visual.shape)}"
            )
        if visual.shape[:2] != audio.shape[:2]:
            raise PipelineError(
                f"audio and visual: expected the same (B, T), found {tuple(audio.shape[:2])} "
                f"and {tuple(visual.shape[:2])}"
            )
        return regions

    def _alpha(self, audio: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Attention weights of seed 004 §4.1 eq 1 for checked ``(B, T, R, C)`` regions."""
        visual_part = self.w_v(self.u_v(regions))  # (B, T, R, d): U^v(f^v) W^v
        audio_part = self.w_a(self.u_a(audio))  # (B, T, R): W^a U^a(f^a)
        z = visual_part + audio_part.unsqueeze(-1)  # (B, T, R, d): "+ (...) 1^T"
        return torch.softmax(self.w_f(torch.tanh(z)).squeeze(-1), dim=-1)  # (B, T, R)

    def attention(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        r"""Audio-guided visual attention weights :math:`\alpha_t` (seed 004 §4.1 eq 1).

        Args:
            audio: ``(B, T, audio_dim)`` audio features.
            visual: ``(B, T, H, W, visual_dim)`` maps or ``(B, T, n_regions, visual_dim)``.

        Returns:
            ``(B, T, n_regions)`` weights summing to 1 over the regions.
        """
        return self._alpha(audio, self._regions(audio, visual))

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Raw segment-level class scores :math:`x_t` (seed 004 §4.1 eqs 1-5).

        Args:
            audio: ``(B, T, audio_dim)`` audio features.
            visual: ``(B, T, H, W, visual_dim)`` maps or ``(B, T, n_regions, visual_dim)``.

        Returns:
            ``(B, T, n_classes)`` raw (pre-softmax) scores.
        """
        regions = self._regions(audio, visual)  # (B, T, R, C)
        alpha = self._alpha(audio, regions)  # (B, T, R)
        attended = torch.einsum("btr,btrc->btc", alpha, regions)  # (B, T, C): f^{v,att}
        h_v = _run_lstm(self.lstm_v, attended)  # (B, T, 2h), eq 2
        h_a = _run_lstm(self.lstm_a, audio)  # (B, T, 2h), eq 3
        fused = torch.cat([h_v, h_a], dim=-1)  # (B, T, 4h), eq 4
        return self.w_o(self.u_o(self.dropout(fused)))  # (B, T, n_classes), eq 5

    def video_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Video-level MIL prediction of seed 004 §4.1 eq 6: ``(B, T, C)`` → ``(B, C)``."""
        return video_prediction(scores)

    def wsel_loss(self, scores: torch.Tensor, video_labels: torch.Tensor) -> torch.Tensor:
        """WSEL loss of seed 004 §4.1: :func:`pipeline.training.losses.mil_loss` on eq 6."""
        return mil_loss(scores, video_labels)
