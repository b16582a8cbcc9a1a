r"""The Event Decomposition Recomposition Network (EDRNet) of seed 002 (eqs 1-7, Table 4).

Each segment's 7x7 visual map is condensed by a 2D convolution and global average pooling.
Three *decomposition* (DC) branches, audio ``a``, visual ``v`` and the concatenated
audio-visual ``av``, start from their (layer-normalised) features plus the positional
encoding of eq 1 and stack ``layers`` unpadded temporal convolutions (eq 2), which
shorten the sequence by ``kernel - 1`` segments each (10 -> 8 -> 6 -> 4 -> 2 for
``kernel`` 3, ``layers`` 4).
Two *recomposition* (RC) branches, audio and visual, grow it back to 10 segments with
transposed temporal convolutions fed by the decomposition layers of the same receptive
field (eq 3, "dual-phase modality fusion" through the ``av`` branch). A temporal
convolution gates the two RC outputs (eq 4) into a convex combination (eq 5) that one
classifier maps to segment scores (eq 6); WSEL pools them by their mean (eq 7) and fits
them with the cross-entropy (the defaults of :class:`~pipeline.models.base.AVELModel`).

Table 4 ("modal branch isolation") trains subsets of the DC branches (``branches``) and
evaluates the A, V and gated outputs through the same classifier (``output``). The
Land-Shore-Sea loss (eqs 8-10) acts on the features that reach the classifier
(:meth:`EDRNet.feature_loss`, :func:`pipeline.losses.land_shore_sea_loss`).
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import PipelineError
from pipeline.losses import land_shore_sea_loss
from pipeline.models.base import AVELModel, Hyper, register
from pipeline.models.checks import check_int, check_probability

SEGMENTS = 10  # N of seed 002: AVE videos have 10 one-second segments
KERNELS = (2, 5)  # the range of k studied in seed 002 Fig. 7a
BRANCHES = ("a", "v", "av")


def max_layers(kernel: int, segments: int = SEGMENTS) -> int:
    r"""The largest :math:`L` with :math:`T - L (k - 1) \ge 1` (seed 002 §"EDRNet Configurations").

    :math:`L_{max}` is the layer at which the receptive field covers the whole video, where
    the decomposed sequence has :math:`0 < N_{L_{max}} < k` segments:
    :math:`L_{max}^{k=2,3,4,5} = 9, 4, 3, 2` for :math:`T = 10`.

    Args:
        kernel: temporal kernel size :math:`k \ge 2`.
        segments: sequence length :math:`T` (default 10).
    """
    return (segments - 1) // (kernel - 1)


def positional_encoding(length: int, dim: int) -> torch.Tensor:
    r"""The positional encoding :math:`p_t` of seed 002 eq 1.

    .. math::
        p_t^{2k} = \sin(\omega_k t), \quad p_t^{2k+1} = \cos(\omega_k t), \quad
        \omega_k = 10^{-8k / d_b}

    i.e. the encoding of Vaswani et al. (:math:`10^{8k/d_b} = 10000^{2k/d_b}`). The paper
    numbers segments :math:`t = 1 \dots N` (used here) and features :math:`i \in [1,
    d_b]` while writing :math:`i = 2k` for integer :math:`k`; features are numbered from 0
    here, so feature 0 is :math:`\sin(t)` as in Vaswani et al.

    Args:
        length: number of segments :math:`N`.
        dim: feature size :math:`d_b` of the branch.

    Returns:
        ``(length, dim)`` float32 encoding, row ``t - 1`` holding :math:`p_t`.
    """
    t = torch.arange(1, length + 1, dtype=torch.float64).unsqueeze(1)  # (N, 1)
    k = torch.arange(dim, dtype=torch.float64) // 2  # (d_b,): k of feature i
    angle = t * 10.0 ** (-8.0 * k / dim)  # (N, d_b): omega_k t
    odd = torch.arange(dim) % 2 == 1  # (d_b,)
    return torch.where(odd, torch.cos(angle), torch.sin(angle)).float()  # (N, d_b)


class Decomposition(nn.Module):
    r"""One decomposition (DC) branch: ``layers`` temporal convolutions (seed 002 eq 2).

    .. math::
        D_b^{l} = \mathrm{ReLU}(\mathcal{F}(D_b^{l-1}, k; W_b^{l})), \quad D_b^0 = D_b

    Each convolution has kernel :math:`k`, unit stride and no padding, so
    :math:`N_l = N_{l-1} - k + 1`. The first maps :math:`d_b` to :math:`d`, the others
    keep :math:`d` ("a network width :math:`d_l = 768` for all layers"). The paper names
    no activation; ReLU follows every convolution (as in the TCN of Lea et al. that it
    builds on).

    Args:
        in_dim: feature size :math:`d_b` of the branch input.
        hidden: width :math:`d`.
        kernel: kernel size :math:`k`.
        layers: number of layers :math:`L`.
    """

    def __init__(self, in_dim: int, hidden: int, kernel: int, layers: int) -> None:
        super().__init__()
        widths = [in_dim] + [hidden] * layers
        self.convs = nn.ModuleList(nn.Conv1d(widths[i], hidden, kernel) for i in range(layers))

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Map ``(B, N, d_b)`` features to :math:`[D^1, \\dots, D^L]`, each ``(B, d, N_l)``."""
        outputs = []
        x = features.transpose(1, 2)  # (B, d_b, N)
        for conv in self.convs:
            x = F.relu(conv(x))  # (B, d, N_l)
            outputs.append(x)
        return outputs


class Recomposition(nn.Module):
    r"""One recomposition (RC) branch :math:`b' \in \{A, V\}` (seed 002 eq 3).

    .. math::
        R_{b'}^{l} = \mathrm{ReLU}(\mathcal{F}^T(R_{in}, k; W_{b'}^{l})), \quad
        R_{in} = \begin{cases} D_{b'}^L + D_{AV}^L, & l = 1 \\
        R_{b'}^{l-1} + D_{b'}^{L-l+1} + D_{AV}^{L-l+1}, & l > 1 \end{cases}

    Transposed convolutions of kernel :math:`k`, unit stride and no padding grow the
    sequence by :math:`k - 1`, so :math:`R_{b'}^{l-1}` has the length, hence the receptive
    field, of decomposition layer :math:`L - l + 1` ("where :math:`RF(l_{rec}) =
    RF(l_{dec})`"), and :math:`R_{b'}^L` has :math:`N` segments. Without the ``av`` DC
    branch (Table 4) the :math:`D_{AV}` terms are left out. ReLU follows every layer, as
    in :class:`Decomposition`.

    Args:
        hidden: width :math:`d`.
        kernel: kernel size :math:`k`.
        layers: number of layers :math:`L`.
    """

    def __init__(self, hidden: int, kernel: int, layers: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.ConvTranspose1d(hidden, hidden, kernel) for _ in range(layers)
        )

    def forward(self, own: list[torch.Tensor], fused: list[torch.Tensor] | None) -> torch.Tensor:
        """:math:`R_{b'}^L` ``(B, N, d)`` from the DC outputs ``[D^1..D^L]`` ``(B, d, N_l)``."""
        x = None
        for level, conv in zip(reversed(range(len(own))), self.convs, strict=True):
            residual = own[level] if fused is None else own[level] + fused[level]  # (B, d, N_l)
            x = residual if x is None else x + residual  # (B, d, N_l): R_in
            x = F.relu(conv(x))  # (B, d, N_l + k - 1)
        return x.transpose(1, 2)  # (B, N, d)


class TemporalGate(nn.Module):
    r"""Gated convex combination of the RC outputs (seed 002 eqs 4-5).

    .. math::
        G = \sigma(\mathcal{F}_G([R_A^L, R_V^L], k; W_G)), \quad
        R_{AV}^G = G \odot R_A^L + (1 - G) \odot R_V^L

    :math:`G` has :math:`N` rows (eq 4), so unlike the DC/RC layers this convolution is
    zero-padded to keep the length: ``k // 2`` segments before and ``(k - 1) // 2`` after
    (centred for odd :math:`k`; the paper does not say).

    Args:
        hidden: width :math:`d` of each RC output (and of :math:`G`, :math:`d'_L = d`).
        kernel: kernel size :math:`k`.
    """

    def __init__(self, hidden: int, kernel: int) -> None:
        super().__init__()
        self.padding = (kernel // 2, (kernel - 1) // 2)  # (before, after) along time
        self.conv = nn.Conv1d(2 * hidden, hidden, kernel)  # W_G

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Fuse ``(B, N, d)`` :math:`R_A^L` and :math:`R_V^L` into ``(B, N, d)``."""
        both = torch.cat([audio, visual], dim=-1).transpose(1, 2)  # (B, 2d, N)
        gate = torch.sigmoid(self.conv(F.pad(both, self.padding))).transpose(1, 2)  # (B, N, d)
        return gate * audio + (1 - gate) * visual  # (B, N, d), eq 5


def he_init(module: nn.Module) -> None:
    r"""He (Kaiming normal) initialisation of every convolution, zero biases.

    The paper names no initialisation. With PyTorch's default (uniform in :math:`\pm
    1/\sqrt{fan_{in}}`) a signal's scale drops by about 2 per ReLU layer, so after the
    :math:`2L` DC/RC layers the classifier sees features that hardly vary between videos.
    :math:`\mathcal{N}(0, 2 / fan_{in})` keeps the scale (as
    :func:`pipeline.models.dpnet_layers.he_init` does for DPNet). The classifier keeps PyTorch's
    default, which starts it near uniform scores (He-initialised, its initial loss is
    about twice :math:`\log C`).

    Args:
        module: a module visited by ``nn.Module.apply``.
    """
    if isinstance(module, nn.Conv1d | nn.ConvTranspose1d | nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        nn.init.zeros_(module.bias)


def _check_structure(kernel: int, layers: int) -> None:
    """Raise :class:`PipelineError` unless ``kernel`` and ``layers`` fit 10 segments."""
    low, high = KERNELS
    if isinstance(kernel, bool) or not isinstance(kernel, int) or not low <= kernel <= high:
        raise PipelineError(
            f"EDRNet model.kernel: expected an integer in [{low}, {high}], found {kernel!r}"
        )
    top = max_layers(kernel)
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= top:
        raise PipelineError(
            f"EDRNet model.layers: expected an integer in [1, {top}] for model.kernel = "
            f"{kernel} (the largest L with {SEGMENTS} - L * (kernel - 1) >= 1), "
            f"found {layers!r}"
        )


def _branches_problem(branches: Sequence[str]) -> str | None:
    """What is wrong with a ``branches`` list of valid names, or ``None``."""
    if len(set(branches)) != len(branches) or not {"a", "v"} & set(branches):
        return "expected distinct branches including 'a' or 'v'"
    return None


def _check_branches(branches: Sequence[str]) -> tuple[str, ...]:
    """``branches`` in canonical order; :class:`PipelineError` unless a valid subset."""
    names = list(branches) if isinstance(branches, list | tuple) else []
    valid = (
        names
        and all(isinstance(name, str) and name in BRANCHES for name in names)
        and len(set(names)) == len(names)
        and ("a" in names or "v" in names)
    )
    if not valid:
        raise PipelineError(
            f"EDRNet model.branches: expected distinct names from {list(BRANCHES)} "
            f"including 'a' or 'v', found {branches!r}"
        )
    return tuple(name for name in BRANCHES if name in names)


def _check_weight(name: str, value: float) -> None:
    """Raise :class:`PipelineError` unless ``value`` is a finite number ``>= 0``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise PipelineError(f"EDRNet model.{name}: expected a number >= 0, found {value!r}")


@register("edrnet")
class EDRNet(AVELModel):
    r"""Event Decomposition Recomposition Network (seed 002 eqs 1-7, Table 4).

    For audio :math:`f_t^A` and visual maps :math:`f_t^V` (seed 002 §"Event Decomposition
    Phase"):

    .. math::
        \hat{f}_t^V &= \mathrm{GAP}(\mathrm{ReLU}(\mathrm{Conv2D}(f_t^V))), \quad
        D_A = \{\mathrm{LN}(f_t^A) + p_t\}, \; D_V = \{\mathrm{LN}(\hat{f}_t^V) + p_t\}, \;
        D_{AV} = \{[\mathrm{LN}(f_t^A), \mathrm{LN}(\hat{f}_t^V)] + p_t\}

        D_b^L &= \text{eq 2 (:class:`Decomposition`)}, \quad
        R_{b'}^L = \text{eq 3 (:class:`Recomposition`)}, \quad
        R_{AV}^G = \text{eqs 4-5 (:class:`TemporalGate`)}

        x_t &= W_{seg} R_{AV,t}^G + b_{seg} \quad \text{(eq 6 without its softmax)}

    with the positional encoding :math:`p_t` of eq 1 (:func:`positional_encoding`) sized to
    each branch. The 2D convolution keeps the :math:`d_v` channels (:math:`\hat{f}_t^V \in
    \mathcal{R}^{d_v}`); its kernel and activation are not given: ``visual_kernel``
    (default 3: spatial context, the 7x7 grid kept for the CAMs of Fig. 8) with zero
    padding, and ReLU (without a nonlinearity, convolution and GAP would reduce to a linear
    map of the pooled features). The 3x3 convolution costs 9 times the FLOPs of a 1x1 one
    and dominates a training step on a CPU (about 3 s of a batch of 48 at ``hidden`` 128),
    so the quick profile uses 1.

    Deviation: each modality is layer-normalised (LN, one per modality, learnable gain and
    bias) before the encoding is added. The paper adds :math:`p_t` to the raw features,
    but :math:`p_t` has amplitude 1 (std 0.71) while VGGish features have std 0.26 (real
    AVE) or 0.16 (synthetic): the encoding, the same in every video, swamps them. On the
    synthetic data (240 training videos, ``hidden`` 128, Adam at 1e-3, SEL) the model
    without LN was at 19.9% val accuracy after 10 epochs (majority class: 18.6%), with LN
    at 63.2%.

    Modal branch isolation (Table 4): ``branches`` selects the DC branches. An RC branch
    exists for each of ``a``, ``v`` that is selected (``av`` only feeds them), the gate
    only when both are. :attr:`outputs` lists what :meth:`forward` can return: ``"a"``,
    ``"v"`` (:math:`R_A^L` or :math:`R_V^L` in place of :math:`R_{AV}^G` in eq 6, through
    the same classifier) and ``"gated"``. Table 4 evaluates exactly these: A or V for
    single-RC configurations, A, V and gated for both.

    The loss weights are kept here because they are this model's hyperparameters. The
    paper's SEL objective :math:`\lambda_1 \mathcal{L}_{seg} + \lambda_2 \mathcal{L}_{lss}`
    with :math:`\mathcal{L}_{lss} = \mathcal{L}_{land} + \mathcal{L}_{sea} +
    \mathcal{L}_{shore}` takes ``seg_weight`` :math:`= \lambda_1` (read by the SEL
    objectives of :mod:`pipeline.training.objectives`) and ``lss_weight`` :math:`= \lambda_2`
    (:meth:`feature_loss`); only their ratio matters beside the learning rate. The paper's
    values are in its supplementary material, which we do not have; the defaults
    are guesses. The distances are not normalised, so the terms grow with the feature
    scale and can be lowered by shrinking all features: with :math:`\lambda_2` = 1 (or
    0.1) the features collapsed on the synthetic data (setting above, majority class after
    10 epochs); with 0.01 the model reached 64.6% (61.0% without the loss). Margin
    :math:`\alpha = 1`.

    Args:
        audio_dim: audio feature size :math:`d_a` (default 128, VGGish).
        visual_dim: visual channels :math:`d_v` (default 512, VGG-19 pool5).
        n_classes: classes :math:`C` including background, the last (default 29).
        hidden: width :math:`d` of every DC/RC layer (default 768, the paper's).
        kernel: temporal kernel size :math:`k \in [2, 5]` (default 3, the paper's).
        layers: DC (and RC) layers :math:`L \in [1, L_{max}]`, :func:`max_layers`
            (default 4, the paper's :math:`L_{max}^{k=3}`).
        branches: active DC branches, distinct names from ``"a"``, ``"v"``, ``"av"``
            with ``"a"`` or ``"v"`` (default all three).
        dropout: dropout probability on the classifier input; the paper names none, and
            the default 0.0 disables it.
        visual_kernel: size of the visual 2D convolution, odd, at most the 7x7 map
            (default 3).
        seg_weight: :math:`\lambda_1`, the weight of the segment cross-entropy
            :math:`\mathcal{L}_{seg}` (default 1.0).
        lss_weight: :math:`\lambda_2`, the weight of :math:`\mathcal{L}_{lss}`
            (default 0.01, a guess; 0 disables the loss).
        lss_margin: triplet margin :math:`\alpha` of eq 10 (default 1.0, a guess).
    """

    hyperparameters = (
        Hyper("hidden", int, "width d of every DC/RC layer", ge=1),
        Hyper("kernel", int, "temporal kernel k (seed 002 eqs 2-4)", "segments", ge=2, le=5),
        Hyper("dropout", float, "dropout on the classifier input", ge=0, lt=1),
        Hyper("layers", int, "DC (and RC) layers L, at most L_max of k (eq 2)", ge=1),
        Hyper(
            "branches",
            list,
            "decomposition branches kept (seed 002 Table 4)",
            choices=BRANCHES,
            rule=_branches_problem,
        ),
        Hyper("visual_kernel", int, "size of the visual 2D convolution", choices=(1, 3, 5, 7)),
        Hyper("seg_weight", float, "lambda_1 of the segment loss (seed 002)", ge=0),
        Hyper("lss_weight", float, "lambda_2 of the Land-Shore-Sea loss (0: off)", ge=0),
        Hyper("lss_margin", float, "triplet margin alpha (seed 002 eq 10)", ge=0),
    )
    needs_maps = True

    def __init__(
        self,
        audio_dim: int = 128,
        visual_dim: int = 512,
        n_classes: int = 29,
        hidden: int = 768,
        kernel: int = 3,
        layers: int = 4,
        branches: Sequence[str] = BRANCHES,
        dropout: float = 0.0,
        visual_kernel: int = 3,
        seg_weight: float = 1.0,
        lss_weight: float = 0.01,
        lss_margin: float = 1.0,
    ) -> None:
        super().__init__()
        for name, value in {"audio_dim": audio_dim, "visual_dim": visual_dim}.items():
            check_int("EDRNet", name, value)
        check_int("EDRNet", "n_classes", n_classes, minimum=2)
        check_int("EDRNet", "model.hidden", hidden)
        _check_structure(kernel, layers)
        self.branches = _check_branches(branches)
        check_probability("EDRNet", "model.dropout", dropout)
        if visual_kernel not in (1, 3, 5, 7):
            raise PipelineError(
                f"EDRNet model.visual_kernel: expected 1, 3, 5 or 7, found {visual_kernel!r}"
            )
        _check_weight("seg_weight", seg_weight)
        _check_weight("lss_weight", lss_weight)
        _check_weight("lss_margin", lss_margin)
        self.audio_dim, self.visual_dim, self.n_classes = audio_dim, visual_dim, n_classes
        self.min_segments = layers * (kernel - 1) + 1
        self.seg_weight, self.lss_weight, self.lss_margin = seg_weight, lss_weight, lss_margin
        uses_audio = "a" in self.branches or "av" in self.branches
        uses_visual = "v" in self.branches or "av" in self.branches
        self.audio_norm = nn.LayerNorm(audio_dim) if uses_audio else None
        self.visual_conv = (
            nn.Conv2d(visual_dim, visual_dim, visual_kernel, padding=visual_kernel // 2)
            if uses_visual
            else None
        )
        self.visual_norm = nn.LayerNorm(visual_dim) if uses_visual else None
        in_dims = {"a": audio_dim, "v": visual_dim, "av": audio_dim + visual_dim}
        self.decompose = nn.ModuleDict(
            {b: Decomposition(in_dims[b], hidden, kernel, layers) for b in self.branches}
        )
        self.recompose = nn.ModuleDict(
            {b: Recomposition(hidden, kernel, layers) for b in self.branches if b != "av"}
        )
        self.gate = TemporalGate(hidden, kernel) if len(self.recompose) == 2 else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, n_classes)  # W_seg, b_seg
        self.apply(he_init)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The outputs :meth:`forward` can return; the last is the default."""
        return (*self.recompose, "gated") if self.gate is not None else tuple(self.recompose)

    def _check_inputs(self, audio: torch.Tensor, visual: torch.Tensor) -> None:
        """Raise :class:`PipelineError` unless the inputs have the expected shapes."""
        if audio.dim() != 3 or audio.shape[-1] != self.audio_dim:
            raise PipelineError(
                f"audio: expected shape (B, T, {self.audio_dim}), found {tuple(audio.shape)}"
            )
        if visual.dim() != 5 or visual.shape[-1] != self.visual_dim:
            raise PipelineError(
                f"visual: expected maps of shape (B, T, H, W, {self.visual_dim}), "
                f"found {tuple(visual.shape)}"
            )
        if visual.shape[:2] != audio.shape[:2]:
            raise PipelineError(
                f"audio and visual: expected the same (B, T), found {tuple(audio.shape[:2])} "
                f"and {tuple(visual.shape[:2])}"
            )
        if audio.shape[1] < self.min_segments:
            raise PipelineError(
                f"audio and visual: expected T >= {self.min_segments} segments for "
                f"model.layers and model.kernel, found {audio.shape[1]}"
            )

    def _branch_inputs(
        self, audio: torch.Tensor, visual: torch.Tensor, names: tuple[str, ...]
    ) -> dict[str, torch.Tensor]:
        """:math:`D_b` of the active DC branches among ``names``, each ``(B, N, d_b)``."""
        active = [name for name in self.branches if name in names]
        features = {}
        if "a" in active or "av" in active:
            features["a"] = self.audio_norm(audio)  # (B, N, d_a)
        if "v" in active or "av" in active:
            features["v"] = self._pooled(visual)  # (B, N, d_v)
        if "av" in active:
            features["av"] = torch.cat([features["a"], features["v"]], dim=-1)  # (B, N, d_a + d_v)
        length = audio.shape[1]
        return {
            name: features[name] + positional_encoding(length, features[name].shape[-1]).to(audio)
            for name in active
        }  # each (B, N, d_b)

    def _pooled(self, visual: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathrm{LN}(\hat{f}_t^V)`: 2D convolution, ReLU, GAP and LN of the maps."""
        b, t, h, w, c = visual.shape
        maps = visual.reshape(b * t, h, w, c).permute(0, 3, 1, 2)  # (B*N, d_v, H, W)
        pooled = F.relu(self.visual_conv(maps)).mean(dim=(2, 3))  # (B*N, d_v)
        return self.visual_norm(pooled.reshape(b, t, c))  # (B, N, d_v)

    def features(self, audio: torch.Tensor, visual: torch.Tensor, output: str) -> torch.Tensor:
        """The ``(B, N, d)`` features that eq 6 classifies for ``output`` (see :meth:`forward`)."""
        wanted = ("a", "v") if output == "gated" else (output,)
        inputs = self._branch_inputs(audio, visual, (*wanted, "av"))
        decomposed = {name: self.decompose[name](x) for name, x in inputs.items()}
        fused = decomposed.get("av")
        recomposed = {b: self.recompose[b](decomposed[b], fused) for b in wanted}  # (B, N, d)
        if output == "gated":
            return self.gate(recomposed["a"], recomposed["v"])  # (B, N, d): R_AV^G
        return recomposed[output]  # (B, N, d): R_A^L or R_V^L

    def forward(
        self,
        audio: torch.Tensor,
        visual: torch.Tensor,
        output: str | None = None,
        return_features: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Raw segment scores (seed 002 eq 6 before the softmax) of one output.

        Args:
            audio: ``(B, T, audio_dim)`` audio features.
            visual: ``(B, T, H, W, visual_dim)`` visual maps.
            output: one of :attr:`outputs`: ``"gated"`` (:math:`R_{AV}^G`), ``"a"`` or
                ``"v"`` (:math:`R_A^L` or :math:`R_V^L` through the same classifier, as in
                Table 4); ``None`` (default) is the model's own output, ``"gated"`` when
                both RC branches exist, else the single RC branch.
            return_features: also return the classified features, on which the
                Land-Shore-Sea loss acts (default ``False``).

        Returns:
            ``(B, T, n_classes)`` scores, or ``(scores, features (B, T, hidden))``.
        """
        output = self.outputs[-1] if output is None else output
        if output not in self.outputs:
            raise PipelineError(
                f"EDRNet output: expected one of {', '.join(self.outputs)} for branches "
                f"{list(self.branches)}, found {output!r}"
            )
        self._check_inputs(audio, visual)
        features = self.features(audio, visual, output)  # (B, T, d)
        scores = self.classifier(self.dropout(features))  # (B, T, n_classes)
        return (scores, features) if return_features else scores

    def feature_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        r"""The weighted Land-Shore-Sea loss of seed 002 eqs 8-10 (SEL only).

        .. math::
            \lambda_2 \mathcal{L}_{lss} = \texttt{lss\_weight} \, (\mathcal{L}_{land} +
            \mathcal{L}_{sea} + \mathcal{L}_{shore})

        from :func:`pipeline.losses.land_shore_sea_loss` with margin ``lss_margin`` and
        the last class as background. The paper trains with it for SEL only (Table 3: N/A
        for WSEL, where segment labels are unknown).

        Args:
            features: ``(B, T, d)`` features from ``forward(..., return_features=True)``.
            labels: ``(B, T)`` long segment classes.

        Returns:
            The scalar loss, to add to the segment cross-entropy.
        """
        terms = land_shore_sea_loss(features, labels, self.lss_margin, self.n_classes - 1)
        return self.lss_weight * (terms["land"] + terms["sea"] + terms["shore"])
