r"""Cross-Modal Relation-Aware Network (CMRAN) of Xu et al., ACM MM 2020.

"Cross-Modal Relation-Aware Networks for Audio-Visual Event Localization" (Xu, Zeng, Wu,
Yang, Zheng and Huang, ACM MM 2020; official code FloretCat/CMRAN, read, not copied). An
audio-guided spatial-channel attention (AGSCA) pools each segment's visual map; a
relation-aware module, per modality, encodes the segments with self-attention (the
internal temporal relation, ITR) and then lets them attend over both modalities' segments
(the cross-modal relation attention, CMRA); an audio-video interaction module fuses the two
streams; SEL scores each segment's event relevance beside one event class per video, and
WSEL weighs the video's class scores by each segment's relevance before max pooling.

The paper is not in this repository: its module names (AGSCA, ITR, CMRA) are used, section
numbers (§) follow its structure as we recall it, unverified, and no equation numbers are
cited; the official code's behaviour is stated where the text is silent or differs.

Against the official code (FloretCat/CMRAN, one batch of its ``supv_main.train_epoch`` and
``weakly_main.train_epoch``, dropout 0; ``tests/golden/test_cmran.py`` on
``tests/golden/fixtures/cmran_*.npz``): the event relevance and the class logits are equal
to float64 rounding (3e-15), and the official SEL loss and WSEL pooling applied to them
give its losses and gradients. The documented choices are asserted as what they are: the
background row of the class head (its cross-entropy exceeds the official 28-class one by
:math:`\log(1 + e^{\ell_{bg} - \mathrm{LSE}(\ell_{1..28})})`), the background target of a
video without events (official: class 0), and WSEL's log-space pooling (on the fixture's
batch its video probabilities differ from the official ones by up to 0.11, same argmax).
"""

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import PipelineError
from pipeline.models.base import AVELModel, Hyper, register
from pipeline.models.checks import check_int, check_map_inputs, check_probability
from pipeline.training.losses import mil_loss, video_prediction


class SpatialChannelAttention(nn.Module):
    r"""Audio-guided spatial-channel attention (AGSCA, Xu et al. §3.2).

    For segment :math:`t` with visual regions :math:`v_k \in \mathbb{R}^{d_v}` and audio
    :math:`a`, channel attention then spatial attention:

    .. math::
        m &= \frac{1}{K} \sum_k \delta(U^a_1 a) \odot \delta(U^v_1 v_k), \quad
        c = \sigma\big(U_c\, \delta(U_b m)\big), \quad v^c_k = v_k \odot (c + 1)

        s_k &= \mathrm{softmax}_k\Big(\tanh\big(u_s^T
        [\delta(U^v_2 v^c_k) \odot \delta(U^a_2 a)]\big)\Big), \quad
        \tilde{v} = \sum_k s_k v^c_k

    :math:`\delta` = ReLU; every :math:`U` has a bias (official code). The ``+ 1`` keeps
    the original channels (a residual on the channel attention, official code).

    Args:
        audio_dim: audio size :math:`d_a`.
        visual_dim: channels :math:`d_v`.
        hidden: width of :math:`U^a_1, U^v_1` (official code: 512).
        bottleneck: width of :math:`U_b` and of :math:`U^a_2, U^v_2` (official code: 256).
    """

    def __init__(self, audio_dim: int, visual_dim: int, hidden: int, bottleneck: int) -> None:
        super().__init__()
        self.audio_1 = nn.Linear(audio_dim, hidden)
        self.visual_1 = nn.Linear(visual_dim, hidden)
        self.squeeze = nn.Linear(hidden, bottleneck)
        self.excite = nn.Linear(bottleneck, visual_dim)
        self.audio_2 = nn.Linear(audio_dim, bottleneck)
        self.visual_2 = nn.Linear(visual_dim, bottleneck)
        self.spatial = nn.Linear(bottleneck, 1)

    def channel_weights(self, audio: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Channel attention :math:`c` ``(B, T, 1, d_v)`` in (0, 1)."""
        joint = torch.relu(self.audio_1(audio)).unsqueeze(2) * torch.relu(self.visual_1(regions))
        squeezed = torch.relu(self.squeeze(joint.mean(dim=2)))  # (B, T, bottleneck)
        return torch.sigmoid(self.excite(squeezed)).unsqueeze(2)  # (B, T, 1, d_v)

    def spatial_weights(self, audio: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Spatial attention :math:`s` ``(B, T, K)`` over channel-attended regions."""
        joint = torch.relu(self.visual_2(regions)) * torch.relu(self.audio_2(audio)).unsqueeze(2)
        return torch.softmax(torch.tanh(self.spatial(joint)).squeeze(-1), dim=-1)  # (B, T, K)

    def forward(self, audio: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Attended visual features ``(B, T, d_v)`` of ``(B, T, K, d_v)`` regions."""
        attended = regions * (self.channel_weights(audio, regions) + 1)  # (B, T, K, d_v)
        weights = self.spatial_weights(audio, attended)  # (B, T, K)
        return torch.einsum("btk,btkd->btd", weights, attended)


class FeedForward(nn.Module):
    """Transformer feed-forward sublayer with residual and post-norm: ``LN(x + FFN(x))``."""

    def __init__(self, dim: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, feedforward),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(feedforward, dim),
            nn.Dropout(dropout),
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.net(x))


class CrossModalRelationAttention(nn.Module):
    r"""One cross-modal relation attention layer (CMRA, Xu et al. §3.3).

    The query segments :math:`q \in \mathbb{R}^{T \times d}` of one modality attend over
    the segments of *both* modalities, :math:`[m; q] \in \mathbb{R}^{2T \times d}` (the
    other modality's :math:`m`, then the query's own), so that one attention captures the
    cross-modal and the intra-modal relations:

    .. math::
        \mathrm{CMRA}(q, m) = \mathrm{LN}\big(q' + \mathrm{FFN}(q')\big), \quad
        q' = \mathrm{LN}\big(q + \mathrm{MHA}(q, [m; q], [m; q])\big)

    with the multi-head attention of Vaswani et al.: each head's output for segment
    :math:`t` is :math:`\sum_j \mathrm{softmax}_j(q_t W^Q (k_j W^K)^T / \sqrt{d_h})
    \, k_j W^V`.

    Args:
        dim: feature size :math:`d`.
        heads: attention heads (official code: 4).
        feedforward: FFN width (official code: 2048).
        dropout: dropout in attention and FFN (official code: 0.1).
    """

    def __init__(self, dim: int, heads: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        self.feedforward = FeedForward(dim, feedforward, dropout)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)`` query segments attending over ``[memory; query]`` ``(B, 2T, d)``."""
        both = torch.cat([memory, query], dim=1)  # (B, 2T, d)
        attended = self.attention(query, both, both, need_weights=False)[0]  # (B, T, d)
        return self.feedforward(self.norm(query + self.dropout(attended)))


class AudioVideoInteraction(nn.Module):
    r"""Audio-video interaction (Xu et al. §3.4).

    .. math::
        g = v \odot a, \quad o = \mathrm{LN}\big(g + \mathrm{MHA}(g, [a; v], [a; v])\big)

    Args:
        dim: feature size.
        heads: attention heads (official code: 4 in SEL, 2 in WSEL).
        dropout: dropout on the attention output and inside it (official code: 0.1).
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """The fused ``(B, T, d)`` of ``(B, T, d)`` streams."""
        joint = visual * audio  # (B, T, d)
        both = torch.cat([audio, visual], dim=1)  # (B, 2T, d)
        attended = self.attention(joint, both, both, need_weights=False)[0]  # (B, T, d)
        return self.norm(joint + self.dropout(attended))


def segment_scores(relevance: torch.Tensor, class_logits: torch.Tensor, background: int):
    r"""Segment scores whose argmax is CMRAN's decision rule.

    CMRAN predicts, for segment :math:`t`, the video's top class :math:`\arg\max_c k_c` when
    its event relevance :math:`\sigma(e_t) > 0.5`, background otherwise (official
    ``compute_accuracy_supervised``). As raw scores:

    .. math::
        x_{t,c} = \log \sigma(e_t) + \ell_c - \max_{c'} \ell_{c'}, \quad
        x_{t,bg} = \max\big(\log \sigma(-e_t),\; \log \sigma(e_t) + \ell_{bg}
        - \max_{c'} \ell_{c'}\big), \quad \ell = \log\mathrm{softmax}(k)

    The top class scores :math:`\log \sigma(e_t)`, every other class less, and background
    :math:`\log(1 - \sigma(e_t))` (or more when the class head itself prefers background,
    as the official weak head can): the argmax is the rule above.

    Args:
        relevance: ``(B, T)`` event-relevance logits :math:`e_t`.
        class_logits: ``(B, C)`` class logits :math:`k`.
        background: the background class index.

    Returns:
        ``(B, T, C)`` scores.
    """
    log_probabilities = class_logits.log_softmax(dim=-1)  # (B, C)
    shifted = log_probabilities - log_probabilities.amax(dim=-1, keepdim=True)  # (B, C)
    scores = F.logsigmoid(relevance).unsqueeze(-1) + shifted.unsqueeze(1)  # (B, T, C)
    no_event = F.logsigmoid(-relevance)  # (B, T)
    background_score = torch.maximum(scores[..., background], no_event)  # (B, T)
    return torch.cat(
        [scores[..., :background], background_score.unsqueeze(-1), scores[..., background + 1 :]],
        dim=-1,
    )


def video_event_class(labels: torch.Tensor, background: int) -> torch.Tensor:
    """Each video's event class for the SEL class head: ``(B,)`` long.

    The highest event class among the segments (the official code's max over the
    segments' foreground argmax; AVE videos have one event class); background for a
    video without events (the official code has no such video in SEL training).
    """
    events = torch.where(labels == background, labels.new_full((), -1), labels)  # (B, T)
    highest = events.amax(dim=1)  # (B,)
    return torch.where(highest < 0, background, highest)


@register("cmran")
class CMRAN(AVELModel):
    r"""CMRAN for SEL and WSEL (Xu et al., ACM MM 2020).

    Visual maps pass an FC with ReLU and dropout (the official code's optional adapter,
    ``visual_dim -> visual_dim``, dropout 0.2), then :class:`SpatialChannelAttention`.
    Each modality is projected to ``hidden`` twice: once for its internal temporal relation
    module (ITR: ``encoder_layers`` standard post-norm Transformer encoder layers) and once
    as the query of its CMRA (``decoder_layers`` :class:`CrossModalRelationAttention`
    layers), whose memory is the *other* modality's ITR output. :class:`AudioVideoInteraction`
    fuses the two CMRA outputs into :math:`o_t`.

    Heads (§3.5): an event-relevance logit :math:`e_t = w_e^T o_t + b_e` per segment and
    class logits :math:`k = W_k \max_t o_t + b_k` per video (over all ``n_classes``: the
    official SEL head has 28, without background, which AVE's SEL training videos never
    need; its WSEL head has 29).

    - SEL loss (official ``supv_main.py``): binary cross-entropy of :math:`e_t` with "the
      segment holds an event", averaged over segments, plus the cross-entropy of :math:`k`
      with the video's event class (:meth:`feature_loss`; ``seg_weight`` is 0, so the
      trainer's segment cross-entropy is not added).
    - WSEL (official weak localisation module): the official code max-pools
      :math:`\sigma(e_t) k` over time, applies a softmax and the multi-label soft margin
      loss. Here the segment scores :func:`segment_scores` carry :math:`\log\sigma(e_t)`
      plus the class log-probabilities, and the video prediction is seed 004's MIL pooling
      of them (softmax of the max over time, eq 6) with the same soft margin loss: the
      relevance enters additively in log space rather than as a factor on the logits, so
      that one output gives both the video prediction and CMRAN's segment decision rule.
      ``wsel_pooling: official`` trains on the official pooling instead. Measured
      (``tools/official/cmran_wsel_pooling.py --seeds 0 1 2 --epochs 30``: a synthetic
      store of 320 training and 402 test videos with 7x7x64 maps, CMRAN at width 64,
      about 110 s per run on the loaded 2-core machine, 1 thread), official minus log:
      accuracy -0.008 [-0.046, +0.037], weighted F1 -0.003 [-0.045, +0.046], non-AVE F1
      -0.027 [-0.131, +0.071], AVE F1 +0.002 [-0.040, +0.049] (95 % CIs, paired over
      videos and seeds): no difference this comparison can detect, so the default stays
      ``log``. Untested at the paper's width and on the real AVE data.

    Args:
        audio_dim: audio size (default 128, VGGish).
        visual_dim: visual channels (default 512).
        n_regions: regions of the map (default 49).
        n_classes: classes including background (default 29; background is the last).
        hidden: model width :math:`d` (default 256).
        heads: heads of the ITR and CMRA attentions (default 4).
        av_heads: heads of the audio-video interaction (default 4; official WSEL code 2).
        encoder_layers: ITR layers (default 2).
        decoder_layers: CMRA layers (default 1).
        feedforward: FFN width of ITR and CMRA (default 2048).
        attention_hidden: AGSCA's channel width (default 512).
        bottleneck: AGSCA's bottleneck and spatial width (default 256).
        dropout: dropout inside attention and FFNs (default 0.1).
        input_dropout: dropout after the visual adapter FC (default 0.2).
        wsel_pooling: ``log`` (default, above) or ``official``: in training mode, without
            ``return_features``, :meth:`forward` returns the official fused logits
            :math:`\sigma(e_t) k` (``(B, T, C)``), so that the WSEL losses
            (:meth:`video_probabilities`, :meth:`wsel_loss`) are the official code's
            :math:`\mathrm{softmax}(\max_t \sigma(e_t) k)` and its soft margin loss; in
            evaluation mode it returns :func:`segment_scores` as ``log`` does (those
            logits cannot give the segment decision rule). SEL is the same in both.
    """

    hyperparameters = (
        Hyper("hidden", int, "model width d of ITR, CMRA and the interaction", ge=1),
        Hyper("heads", int, "heads of the ITR and CMRA attentions (divides hidden)", ge=1),
        Hyper("av_heads", int, "heads of the audio-video interaction (divides hidden)", ge=1),
        Hyper("encoder_layers", int, "internal temporal relation (ITR) layers", ge=1),
        Hyper("decoder_layers", int, "cross-modal relation attention (CMRA) layers", ge=1),
        Hyper("feedforward", int, "feed-forward width of the ITR and CMRA layers", ge=1),
        Hyper("attention_hidden", int, "channel width of the spatial-channel attention", ge=1),
        Hyper("bottleneck", int, "channel bottleneck and spatial width of AGSCA", ge=1),
        Hyper("dropout", float, "dropout inside the attentions and feed-forwards", ge=0, lt=1),
        Hyper("input_dropout", float, "dropout after the visual input FC", ge=0, lt=1),
        Hyper(
            "wsel_pooling",
            str,
            "WSEL video pooling: log (relevance in log space) or official (max_t sigma(e_t) k)",
            choices=("log", "official"),
        ),
    )
    needs_maps = True
    seg_weight = 0.0  # the SEL loss is CMRAN's own (feature_loss), not the cross-entropy

    def __init__(
        self,
        audio_dim: int = 128,
        visual_dim: int = 512,
        n_regions: int = 49,
        n_classes: int = 29,
        hidden: int = 256,
        heads: int = 4,
        av_heads: int = 4,
        encoder_layers: int = 2,
        decoder_layers: int = 1,
        feedforward: int = 2048,
        attention_hidden: int = 512,
        bottleneck: int = 256,
        dropout: float = 0.1,
        input_dropout: float = 0.2,
        wsel_pooling: str = "log",
    ) -> None:
        super().__init__()
        sizes = {
            "audio_dim": audio_dim,
            "visual_dim": visual_dim,
            "n_regions": n_regions,
            "n_classes": n_classes,
            "hidden": hidden,
            "heads": heads,
            "av_heads": av_heads,
            "encoder_layers": encoder_layers,
            "decoder_layers": decoder_layers,
            "feedforward": feedforward,
            "attention_hidden": attention_hidden,
            "bottleneck": bottleneck,
        }
        for name, value in sizes.items():
            check_int("CMRAN", name, value)
        for name in ("heads", "av_heads"):
            if hidden % sizes[name]:
                raise PipelineError(
                    f"CMRAN {name}: expected a divisor of hidden = {hidden}, found {sizes[name]}"
                )
        check_probability("CMRAN", "dropout", dropout)
        check_probability("CMRAN", "input_dropout", input_dropout)
        if wsel_pooling not in ("log", "official"):
            raise PipelineError(
                f"CMRAN wsel_pooling: expected 'log' or 'official', found {wsel_pooling!r}"
            )
        self.wsel_pooling = wsel_pooling
        self.dims = (audio_dim, n_regions, visual_dim)
        self.background = n_classes - 1
        self.visual_adapter = nn.Sequential(
            nn.Linear(visual_dim, visual_dim), nn.ReLU(), nn.Dropout(input_dropout)
        )
        self.attention = SpatialChannelAttention(
            audio_dim, visual_dim, attention_hidden, bottleneck
        )
        self.streams = nn.ModuleDict()
        for name, size in (("audio", audio_dim), ("visual", visual_dim)):
            self.streams[name] = nn.ModuleDict(
                {
                    "itr_input": nn.Linear(size, hidden),
                    "itr": nn.TransformerEncoder(
                        nn.TransformerEncoderLayer(
                            hidden, heads, feedforward, dropout, batch_first=True
                        ),
                        encoder_layers,
                        enable_nested_tensor=False,
                    ),
                    "query_input": nn.Linear(size, hidden),
                    "cmra": nn.ModuleList(
                        CrossModalRelationAttention(hidden, heads, feedforward, dropout)
                        for _ in range(decoder_layers)
                    ),
                }
            )
        self.interaction = AudioVideoInteraction(hidden, av_heads, dropout)
        self.relevance = nn.Linear(hidden, 1)
        self.classes = nn.Linear(hidden, n_classes)

    def relation_aware(self, query: str, memory: str, inputs: dict) -> torch.Tensor:
        """The CMRA output ``(B, T, d)`` of modality ``query`` over ``memory``'s ITR output."""
        source = self.streams[memory]
        encoded = source["itr"](source["itr_input"](inputs[memory]))  # (B, T, d): ITR
        target = self.streams[query]
        output = target["query_input"](inputs[query])  # (B, T, d)
        for layer in target["cmra"]:
            output = layer(output, encoded)
        return output

    def heads(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Event relevance ``(B, T)`` and class logits ``(B, C)``."""
        regions = check_map_inputs("CMRAN", audio, visual, self.dims)  # (B, T, K, d_v)
        attended = self.attention(audio, self.visual_adapter(regions))  # (B, T, d_v)
        inputs = {"audio": audio, "visual": attended}
        audio_out = self.relation_aware("audio", "visual", inputs)  # (B, T, d)
        visual_out = self.relation_aware("visual", "audio", inputs)  # (B, T, d)
        fused = self.interaction(visual_out, audio_out)  # (B, T, d)
        relevance = self.relevance(fused).squeeze(-1)  # (B, T)
        return relevance, self.classes(fused.amax(dim=1))  # (B, T), (B, C)

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Raw segment scores ``(B, T, n_classes)`` (:func:`segment_scores`).

        Args:
            audio: ``(B, T, audio_dim)`` audio features.
            visual: ``(B, T, H, W, visual_dim)`` maps or ``(B, T, n_regions, visual_dim)``.
            return_features: also return ``(B, T, 1 + n_classes)`` for
                :meth:`feature_loss`: the relevance logit :math:`e_t`, then the video's
                class logits :math:`k` (the same at every segment).
        """
        relevance, class_logits = self.heads(audio, visual)  # (B, T), (B, C)
        if self.wsel_pooling == "official" and self.training and not return_features:
            # The official fused logits sigma(e_t) k: the WSEL losses pool them as it does.
            return torch.sigmoid(relevance).unsqueeze(-1) * class_logits.unsqueeze(1)
        scores = segment_scores(relevance, class_logits, self.background)  # (B, T, C)
        if not return_features:
            return scores
        repeated = class_logits.unsqueeze(1).expand(-1, relevance.shape[1], -1)  # (B, T, C)
        return scores, torch.cat([relevance.unsqueeze(-1), repeated], dim=-1)

    def feature_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        r"""CMRAN's SEL loss: :math:`\mathrm{BCE}(e_t, [y_t \ne bg]) + \mathrm{CE}(k, c_{video})`.

        Args:
            features: ``(B, T, 1 + C)`` from ``forward(..., return_features=True)``.
            labels: ``(B, T)`` long segment classes.
        """
        relevance, class_logits = features[..., 0], features[:, 0, 1:]  # (B, T), (B, C)
        is_event = (labels != self.background).to(relevance.dtype)  # (B, T)
        event = video_event_class(labels, self.background)  # (B,)
        return F.binary_cross_entropy_with_logits(relevance, is_event) + F.cross_entropy(
            class_logits, event
        )

    @staticmethod
    def video_probabilities(scores: torch.Tensor) -> torch.Tensor:
        r"""WSEL video prediction :math:`\mathrm{softmax}(\max_t x_t)`, ``(B, T, C) -> (B, C)``."""
        return video_prediction(scores)

    @staticmethod
    def wsel_loss(scores: torch.Tensor, video_labels: torch.Tensor) -> torch.Tensor:
        r"""Multi-label soft margin loss of :meth:`video_probabilities` (official weak code).

        Args:
            scores: ``(B, T, C)`` segment scores.
            video_labels: ``(B, C)`` presence labels in {0, 1}.
        """
        if video_labels.shape != (scores.shape[0], scores.shape[2]):
            raise PipelineError(
                f"CMRAN video_labels: expected shape {(scores.shape[0], scores.shape[2])}, "
                f"found {tuple(video_labels.shape)}"
            )
        return mil_loss(scores, video_labels)
