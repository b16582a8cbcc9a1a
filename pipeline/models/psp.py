r"""Positive Sample Propagation (PSP) of Zhou et al., CVPR 2021.

"Positive Sample Propagation along the Audio-Visual Event Line" (Zhou, Zheng, Wang, Guo and
Wang, CVPR 2021; official code jasongief/PSP_CVPR_2021, read, not copied). The network
encodes each modality like the AVE baseline (audio-guided visual attention over the 7x7
map, then one Bi-LSTM per modality), lets every segment of one modality gather the features
of the *positive* segments of the other modality (the PSP module: affinities, pruning of
weak pairs, L1 renormalisation, propagation in both directions), fuses the two streams and
classifies each segment. In the fully supervised setting the audio-visual pair similarity
(AVPS) loss pulls the cosine similarity of each segment's audio and visual features
towards the segment labels; in the weakly supervised setting a temporal weighting branch
weighs the segments before their scores are averaged into the video prediction.

The paper is not in this repository: section numbers (§) follow its structure as we recall
it, unverified, and the only equation numbers cited are those its official code cites (the
AVPS loss, "Eq.(8, 9)"). The code's behaviour is stated wherever it differs from the text.
"""

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import PipelineError
from pipeline.losses import video_label_totals
from pipeline.models.base import AVELModel, Hyper, register
from pipeline.models.checks import check_int, check_map_inputs, check_probability
from pipeline.models.map_layers import relu_mlp

# The official code adds this to every L1 normalisation's denominator (rows pruned to zero).
EPS = 1e-8


def run_lstm(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """The output sequence of ``lstm`` on ``x`` ``(B, T, D)``, in float32 under CPU autocast.

    oneDNN's CPU LSTM has no bf16/fp16 kernel on processors without those instructions;
    on a GPU the LSTM runs in the autocast precision like every other layer.
    """
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return lstm(x.float())[0]
    return lstm(x)[0]


class AudioGuidedAttention(nn.Module):
    r"""Audio-guided visual attention of Tian et al. (2018), as PSP uses it (§3.1).

    .. math::
        z_t = \tanh\big(U_v(f^v_t) W_v + (U_a(f^a_t) W_g) \mathbf{1}^T\big) W_h, \quad
        \alpha_t = \mathrm{softmax}(z_t), \quad
        \tilde{v}_t = \textstyle\sum_k \alpha_t(k) f^v_t(k)

    :math:`U_v, U_a` are fully connected layers with ReLU (width ``hidden``, official code
    512); :math:`W_v, W_g, W_h` are bias-free.

    Args:
        audio_dim: audio size (after PSP's audio encoder).
        visual_dim: channels of the map.
        n_regions: regions of the map (49 for 7x7).
        hidden: width of :math:`U_v, U_a` (official code: 512).
        attention_dim: columns of :math:`z` before :math:`W_h` (official code: 49).
    """

    def __init__(
        self, audio_dim: int, visual_dim: int, n_regions: int, hidden: int, attention_dim: int
    ) -> None:
        super().__init__()
        self.u_v = nn.Sequential(nn.Linear(visual_dim, hidden), nn.ReLU())
        self.u_a = nn.Sequential(nn.Linear(audio_dim, hidden), nn.ReLU())
        self.w_v = nn.Linear(hidden, attention_dim, bias=False)
        self.w_g = nn.Linear(hidden, n_regions, bias=False)
        self.w_h = nn.Linear(attention_dim, 1, bias=False)

    def weights(self, audio: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """``(B, T, R)`` attention weights, summing to 1 over the regions.

        :math:`U_v` and :math:`W_v` run over the regions in cache-sized row blocks
        (:func:`~pipeline.models.map_layers.relu_mlp`).
        """
        u_v = self.u_v[0]
        z = relu_mlp(regions, u_v.weight, u_v.bias, self.w_v.weight)  # (B, T, R, d)
        z = z + self.w_g(self.u_a(audio)).unsqueeze(-1)  # (B, T, R, d)
        return torch.softmax(self.w_h(torch.tanh(z)).squeeze(-1), dim=-1)  # (B, T, R)

    def forward(self, audio: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Attended visual features ``(B, T, C)`` of ``(B, T, R, C)`` regions."""
        weights = self.weights(audio, regions).unsqueeze(-2)  # (B, T, 1, R)
        return (weights @ regions).squeeze(-2)  # (B, T, C)


def propagation_matrices(
    beta: torch.Tensor, threshold: float, renormalise: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Pruned, L1-normalised propagation matrices of both directions (PSP §3.2).

    From the non-negative affinities :math:`\beta^{va}` (rows: visual segments, columns:
    audio segments) and their transpose :math:`\beta^{av} = (\beta^{va})^T`, each row is
    L1-normalised, pairs at or below the threshold :math:`\tau` are pruned, and what is
    left is L1-normalised again:

    .. math::
        \hat\beta^{va}_{ij} = \frac{\beta^{va}_{ij}}{\sum_k \beta^{va}_{ik}}, \quad
        \gamma^{va}_{ij} = \frac{\hat\beta^{va}_{ij} \, \mathbb{1}[\hat\beta^{va}_{ij} > \tau]}
        {\sum_k \hat\beta^{va}_{ik} \, \mathbb{1}[\hat\beta^{va}_{ik} > \tau]},

    and the same for :math:`\gamma^{av}` from :math:`\beta^{av}`. A row with nothing left
    stays zero (its segment receives nothing): the official code adds :math:`10^{-8}` to
    each denominator. The weakly supervised official code skips the second normalisation
    (``renormalise=False``).

    Args:
        beta: ``(B, T, T)`` non-negative affinities :math:`\beta^{va}`.
        threshold: the pruning threshold :math:`\tau`.
        renormalise: L1-normalise the rows again after pruning (default: ``True``).

    Returns:
        ``(gamma_va, gamma_av)``, each ``(B, T, T)``.
    """

    def one_direction(matrix: torch.Tensor) -> torch.Tensor:
        matrix = matrix / (matrix.sum(dim=-1, keepdim=True) + EPS)  # (B, T, T)
        pruned = matrix * (matrix > threshold)  # (B, T, T)
        return pruned / (pruned.sum(dim=-1, keepdim=True) + EPS) if renormalise else pruned

    return one_direction(beta), one_direction(beta.transpose(1, 2))


class PositiveSamplePropagation(nn.Module):
    r"""The PSP module (Zhou et al. 2021, §3.2): propagation between positive pairs.

    For the Bi-LSTM features :math:`v, a \in \mathbb{R}^{T \times d}`:

    .. math::
        v_1, v_2 &= \phi(v W^v_1), \phi(v W^v_2), \quad a_1, a_2 = \phi(a W^a_1), \phi(a W^a_2)

        \beta^{va} &= \mathrm{ReLU}\big(v_2 a_1^T / \sqrt{d}\big), \quad
        \beta^{av} = (\beta^{va})^T

        \gamma^{va}, \gamma^{av} &= \text{prune and normalise }
        \beta^{va}, \beta^{av} \text{ (:func:`propagation_matrices`)}

        v^{psp} &= \mathrm{LN}\big(\phi((v + \gamma^{va} a_2) W^v_3)\big), \quad
        a^{psp} = \mathrm{LN}\big(\phi((a + \gamma^{av} v_1) W^a_3)\big)

    with :math:`\phi` = ReLU then dropout, bias-free :math:`W`, and one layer norm shared by
    both streams (as in the official code). :math:`W_3` is the official fully supervised
    code's FC after the residual. The official weakly supervised code (``weak``) has no
    :math:`W_3` (:math:`v^{psp} = \mathrm{LN}(v + \gamma^{va} a_2)`) and does not
    renormalise after pruning.

    Args:
        dim: feature size :math:`d` of both streams (2x the LSTM hidden size).
        threshold: the pruning threshold :math:`\tau`.
        dropout: dropout probability inside :math:`\phi` (official code: 0.1).
        weak: the official weakly supervised variant (default: ``False``).
    """

    def __init__(self, dim: int, threshold: float, dropout: float, weak: bool = False) -> None:
        super().__init__()
        self.threshold, self.weak = threshold, weak
        self.v_1, self.v_2 = (nn.Linear(dim, dim, bias=False) for _ in range(2))
        self.a_1, self.a_2 = (nn.Linear(dim, dim, bias=False) for _ in range(2))
        self.v_3 = nn.Identity() if weak else nn.Linear(dim, dim, bias=False)
        self.a_3 = nn.Identity() if weak else nn.Linear(dim, dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(torch.relu(x))

    def affinity(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        r""":math:`\beta^{va}` ``(B, T, T)`` (rows: visual segments, columns: audio)."""
        v_2, a_1 = self.phi(self.v_2(visual)), self.phi(self.a_1(audio))  # (B, T, d) each
        return torch.relu(v_2 @ a_1.transpose(1, 2) / v_2.shape[-1] ** 0.5)  # (B, T, T)

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v_psp, a_psp)``, each ``(B, T, d)``, of the ``(B, T, d)`` streams."""
        beta = self.affinity(audio, visual)  # (B, T, T)
        gamma_va, gamma_av = propagation_matrices(beta, self.threshold, not self.weak)
        v_1, a_2 = self.phi(self.v_1(visual)), self.phi(self.a_2(audio))  # (B, T, d) each
        v_res, a_res = visual + gamma_va @ a_2, audio + gamma_av @ v_1  # (B, T, d) each
        if not self.weak:
            v_res, a_res = self.phi(self.v_3(v_res)), self.phi(self.a_3(a_res))
        return self.norm(v_res), self.norm(a_res)


def avps_target(labels: torch.Tensor, background: int) -> torch.Tensor:
    r"""The AVPS target of PSP (eqs 8-9): positive segments share a mass of 1 equally.

    A segment is positive when its audio-visual pair shows the video's event:
    :math:`y_t = 1 / |P|` for :math:`t \in P`, 0 elsewhere. Following the official code,
    :math:`P` is the segments of the video's lowest-numbered event class (AVE videos have
    one), and a video without events takes its background segments (all of them: the target
    is uniform) rather than an all-zero target that the L1-normalised similarity could not
    match.

    Args:
        labels: ``(B, T)`` long segment classes.
        background: the background class index.

    Returns:
        ``(B, T)`` float target, each row summing to 1.
    """
    is_event = labels != background  # (B, T)
    event = torch.where(is_event, labels, labels.new_full((), 1 << 30)).amin(dim=1)  # (B,)
    event = torch.where(is_event.any(dim=1), event, background)  # (B,)
    positive = (labels == event[:, None]).to(torch.get_default_dtype())  # (B, T)
    return positive / positive.sum(dim=1, keepdim=True)


def avps_loss(visual: torch.Tensor, audio: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""The audio-visual pair similarity loss of PSP (eqs 8-9).

    .. math::
        s_t = \cos(v^{psp}_t, a^{psp}_t), \quad
        \hat{s}_t = \frac{\mathrm{ReLU}(s_t)}{\sum_k \mathrm{ReLU}(s_k)}, \quad
        \mathcal{L}_{avps} = \frac{1}{BT} \sum_{b,t} (\hat{s}_t - y_t)^2

    (mean squared error over segments and videos, as ``nn.MSELoss`` in the official code).

    Args:
        visual: ``(B, T, d)`` :math:`v^{psp}`.
        audio: ``(B, T, d)`` :math:`a^{psp}`.
        target: ``(B, T)`` :func:`avps_target`.

    Returns:
        The scalar loss.
    """
    similarity = torch.relu(F.cosine_similarity(visual, audio, dim=-1, eps=EPS))  # (B, T)
    normalised = similarity / (similarity.sum(dim=1, keepdim=True) + EPS)  # (B, T)
    return F.mse_loss(normalised, target.to(normalised.dtype))


@register("psp")
class PSP(AVELModel):
    r"""PSP network for SEL and WSEL (Zhou et al., CVPR 2021).

    Encoders (§3.1, official fully supervised code): the audio :math:`f^a_t` through two
    bias-free FCs (``audio_dim -> embed_hidden -> hidden``, no activation between them),
    audio-guided attention (:class:`AudioGuidedAttention`) on the map, the attended
    visual vector through two bias-free FCs (``visual_dim -> embed_hidden -> hidden``), then
    a Bi-LSTM per modality (``hidden`` per direction). :class:`PositiveSamplePropagation`
    gives :math:`v^{psp}, a^{psp}`; their mean :math:`o_t = (v^{psp}_t + a^{psp}_t)/2` is
    classified by a bias-free FC + ReLU + bias-free FC into raw scores :math:`x_t`.

    SEL loss (the fully supervised objective):
    :math:`\mathcal{L}_{CE} + \lambda \mathcal{L}_{avps}` with :math:`\lambda` =
    ``avps_weight`` (official code: 100), the second term being :meth:`feature_loss`.

    WSEL (§3.4, official weakly supervised code): the temporal weighting branch
    :math:`w_t = \sigma(\mathrm{ReLU}(x_t W_w))` weighs each segment's scores, their mean over
    time goes through a softmax (:meth:`video_probabilities`) and is fitted to the video
    label by binary cross-entropy (:meth:`wsel_loss`). Since :math:`w_t > 0`, the weighting
    never changes a segment's predicted class.

    The official code has one network per setting: ``psp_network: full`` (default) is the
    fully supervised one above; ``weak`` is the weakly supervised one, without the audio
    encoder (the attention and the audio LSTM take the audio as it is), one FC with bias
    ``visual_dim -> hidden`` after the attention instead of the visual encoder, and the PSP
    module without :math:`W_3` or renormalisation after pruning (its threshold is 0.095,
    ``psp_threshold``). Both train in every setting here; the weighting branch exists in
    both and is used only by the WSEL losses.

    Args:
        audio_dim: audio feature size (default 128, VGGish).
        visual_dim: visual channels (default 512, VGG-19 pool5).
        n_regions: regions of the map (default 49, 7x7).
        n_classes: classes including background (default 29).
        hidden: LSTM hidden size per direction; PSP works at twice it (default 128).
        embed_hidden: inner width of the audio and visual encoders (default 256).
        attention_hidden: width of :math:`U_v, U_a` in the attention (default 512).
        attention_dim: columns of the attention's :math:`z` (default 49).
        classifier_hidden: width of the classifier's first FC (default 64).
        psp_threshold: pruning threshold :math:`\tau` (default 0.099, official SEL code).
        avps_weight: :math:`\lambda` of the AVPS loss (default 100, official SEL code).
        dropout: dropout in the PSP module (default 0.1).
        psp_network: ``full`` (the official fully supervised network) or ``weak`` (the
            official weakly supervised one) (default ``full``).
    """

    hyperparameters = (
        Hyper("hidden", int, "LSTM hidden size per direction; PSP works at 2x it (§3.1)", ge=1),
        Hyper("embed_hidden", int, "inner width of the audio and visual encoders", ge=1),
        Hyper("attention_hidden", int, "width of U_v, U_a of the audio-guided attention", ge=1),
        Hyper("attention_dim", int, "columns of z in the audio-guided attention", ge=1),
        Hyper("classifier_hidden", int, "width of the classifier's first FC", ge=1),
        Hyper("psp_threshold", float, "pruning threshold tau of the PSP module (§3.2)", ge=0, lt=1),
        Hyper("avps_weight", float, "lambda of the AVPS loss in SEL (official code: LAMBDA)", ge=0),
        Hyper("dropout", float, "dropout inside the PSP module", ge=0, lt=1),
        Hyper(
            "psp_network",
            str,
            "the official full(y supervised) or weak(ly supervised) network",
            choices=("full", "weak"),
        ),
    )
    needs_maps = True

    def __init__(
        self,
        audio_dim: int = 128,
        visual_dim: int = 512,
        n_regions: int = 49,
        n_classes: int = 29,
        hidden: int = 128,
        embed_hidden: int = 256,
        attention_hidden: int = 512,
        attention_dim: int = 49,
        classifier_hidden: int = 64,
        psp_threshold: float = 0.099,
        avps_weight: float = 100.0,
        dropout: float = 0.1,
        psp_network: str = "full",
    ) -> None:
        super().__init__()
        if psp_network not in ("full", "weak"):
            raise PipelineError(
                f"PSP psp_network: expected 'full' or 'weak', found {psp_network!r}"
            )
        weak = psp_network == "weak"
        sizes = {
            "audio_dim": audio_dim,
            "visual_dim": visual_dim,
            "n_regions": n_regions,
            "n_classes": n_classes,
            "hidden": hidden,
            "embed_hidden": embed_hidden,
            "attention_hidden": attention_hidden,
            "attention_dim": attention_dim,
            "classifier_hidden": classifier_hidden,
        }
        for name, value in sizes.items():
            check_int("PSP", name, value)
        check_probability("PSP", "psp_threshold", psp_threshold)
        check_probability("PSP", "dropout", dropout)
        if (
            isinstance(avps_weight, bool)
            or not isinstance(avps_weight, int | float)
            or avps_weight < 0
        ):
            raise PipelineError(f"PSP avps_weight: expected a number >= 0, found {avps_weight!r}")
        self.dims = (audio_dim, n_regions, visual_dim)
        self.background = n_classes - 1
        self.avps_weight = float(avps_weight)
        if weak:  # official weakly_model.py: raw audio, one FC with bias after the attention
            self.audio_encoder = nn.Identity()
            self.visual_encoder = nn.Linear(visual_dim, hidden)
        else:  # official fully_model.py: fa and fv, two bias-free FCs each
            self.audio_encoder = nn.Sequential(
                nn.Linear(audio_dim, embed_hidden, bias=False),
                nn.Linear(embed_hidden, hidden, bias=False),
            )
            self.visual_encoder = nn.Sequential(
                nn.Linear(visual_dim, embed_hidden, bias=False),
                nn.Linear(embed_hidden, hidden, bias=False),
            )
        encoded_audio = audio_dim if weak else hidden
        self.attention = AudioGuidedAttention(
            encoded_audio, visual_dim, n_regions, attention_hidden, attention_dim
        )
        self.lstm_a = nn.LSTM(encoded_audio, hidden, batch_first=True, bidirectional=True)
        self.lstm_v = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)
        self.psp = PositiveSamplePropagation(2 * hidden, psp_threshold, dropout, weak)
        self.classifier = nn.Sequential(
            nn.Linear(2 * hidden, classifier_hidden, bias=False),
            nn.ReLU(),
            nn.Linear(classifier_hidden, n_classes, bias=False),
        )
        self.weighting = nn.Linear(n_classes, 1, bias=False)  # W_w of the WSEL branch

    def streams(
        self, audio: torch.Tensor, visual: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The Bi-LSTM streams ``(a, v)``, each ``(B, T, 2 hidden)``, before PSP."""
        regions = check_map_inputs("PSP", audio, visual, self.dims)  # (B, T, R, C)
        audio = self.audio_encoder(audio)  # (B, T, h), or (B, T, audio_dim) in weak
        visual = self.visual_encoder(self.attention(audio, regions))  # (B, T, h)
        return run_lstm(self.lstm_a, audio), run_lstm(self.lstm_v, visual)  # (B, T, 2h) each

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Raw segment scores ``(B, T, n_classes)``.

        Args:
            audio: ``(B, T, audio_dim)`` audio features.
            visual: ``(B, T, H, W, visual_dim)`` maps or ``(B, T, n_regions, visual_dim)``.
            return_features: also return ``(B, T, 4 hidden)``: :math:`[v^{psp}; a^{psp}]`,
                for :meth:`feature_loss`.
        """
        v_psp, a_psp = self.psp(*self.streams(audio, visual))  # (B, T, 2h) each
        scores = self.classifier((v_psp + a_psp) / 2)  # (B, T, n_classes)
        return (scores, torch.cat([v_psp, a_psp], dim=-1)) if return_features else scores

    def feature_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        r""":math:`\lambda \mathcal{L}_{avps}` (eqs 8-9) of ``(B, T, 2d)`` features ``[v; a]``."""
        target = avps_target(labels, self.background)  # (B, T)
        visual, audio = features.chunk(2, dim=-1)  # (B, T, d) each
        return self.avps_weight * avps_loss(visual, audio, target)

    def segment_weights(self, scores: torch.Tensor) -> torch.Tensor:
        r"""The temporal weights :math:`w_t = \sigma(\mathrm{ReLU}(x_t W_w))`, ``(B, T, 1)``."""
        return torch.sigmoid(torch.relu(self.weighting(scores)))

    def video_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        r"""WSEL video prediction :math:`\mathrm{softmax}(\frac{1}{T}\sum_t w_t x_t)`: ``(B, C)``.

        The official weakly supervised code's average pooling of the weighted scores.
        """
        return torch.softmax((self.segment_weights(scores) * scores).mean(dim=1), dim=-1)

    def wsel_loss(self, scores: torch.Tensor, video_labels: torch.Tensor) -> torch.Tensor:
        r"""Binary cross-entropy of :meth:`video_probabilities` and the L1-normalised labels.

        The official code fits the softmax video prediction with ``nn.BCELoss`` to labels
        normalised to sum 1 (its ``prob_label.h5``); here the labels are seed 004's
        presence labels (§3), normalised to sum 1 (one class: one-hot).

        Args:
            scores: ``(B, T, C)`` raw segment scores.
            video_labels: ``(B, C)`` presence labels in {0, 1}, at least one 1 per video.
        """
        totals = video_label_totals(scores, video_labels, "PSP")  # (B, 1)
        # Upcast only: float64 stays float64; half precisions go to float32 (1 - EPS is 1
        # in bf16 and EPS 0 in fp16, so the clamp would leave log(0)).
        dtype = torch.promote_types(scores.dtype, torch.float32)
        probabilities = self.video_probabilities(scores).to(dtype).clamp(EPS, 1 - EPS)  # (B, C)
        target = (video_labels / totals).to(dtype)  # (B, C)
        # By hand: F.binary_cross_entropy refuses to run under CUDA autocast.
        log_likelihood = target * probabilities.log() + (1 - target) * (-probabilities).log1p()
        return -log_likelihood.mean()
