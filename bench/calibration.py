"""Calibration of the synthetic data against the AVE paper's own ablation (issue 28).

Generates a synthetic store (:func:`pipeline.data.synthetic.generate_synthetic`, defaults
unless ``--set key=value``) and prints each figure beside its target, and whether it is
met. Three groups of figures:

1. **The plan** (no features): GT-repeat accuracy on the test split
   (:func:`pipeline.evaluation.metrics.gt_repeat`; AVE: 82.2 %, seed 004 Table 1), and the
   annotation statistics of the real AVE release (:data:`pipeline.data.synthetic.
   AVE_CLASS_COUNTS`, ``AVE_PARTIAL_WINDOWS``, ``AVE_FULL_VIDEOS``): the class prior,
   the share of whole-video events, the onsets and lengths of the others, the background
   share of the segments, and the background-only videos' share of the weak setting's
   training set; and the shares of background segments where the video's class is
   audible only or visible only.
2. **Probes that no model owns**: logistic regressions (scikit-learn, on features
   standardised with the training split's statistics) fitted on the training split's
   segments and scored on the test split's, 29 classes (every segment's label), on: the
   audio; the 7x7-averaged visual map; the visual map averaged under the sound source's
   footprint (:func:`source_features`, an oracle attention); audio and averaged visual
   together; the same with the video's mean features appended (what a video-level model
   sees); the same with the oracle-attended visual.
3. **The anchors** (``--epochs`` > 0): the AVE baseline's variants of Tian et al.'s
   ablation (``model.variant`` of :class:`pipeline.models.ave.AVEBaseline`: A, V, V-att,
   A+V, A+V-att), trained on the store (SEL, Adam at lr 1e-3, constant, batch 64 as
   Tian et al.'s code, :data:`EPOCHS` epochs, the checkpoint of the best val accuracy
   among those scored every :data:`VALIDATE_EVERY` epochs) with each of ``--seeds``
   training seeds (default 3: one run moves by several points from seed to seed) and
   scored on its test split; each variant's mean over the seeds against Tian et al.'s
   supervised accuracy (:data:`TIAN_2018`) within :data:`ANCHOR_TOLERANCE`.

The probes' targets are read from the same paper: audio above the averaged visual (A
59.5 > V 55.3); the oracle attention's gain over the average at most the paper's attention gain
plus the tolerance (V-att - V = 3.3; A+V-att - A+V = 1.3); the joint probe above both
single ones; the video-mean probe below GT-repeat (no published AVE method reaches it);
and no probe above the best anchored variant by more than the paper's spread (the range
of its five supervised numbers, 17.4 points). Every threshold is a constant of this
module, and ``tests/test_calibration.py`` checks the committed verdicts with them.

With ``--write`` (the whole bench on the defaults) it writes ``reports/calibration.json``
(the figures, the generator's settings and their fingerprint) and the generated block of
``docs/calibration.md``; ``tests/test_calibration.py`` fails when the committed
fingerprint is not that of the current defaults.

Usage, from the repository root::

    python -m bench.calibration [--epochs 50] [--seeds 3] [--set n_train=300] [--variants a av_att]
    python -m bench.calibration --write
"""

import argparse
import hashlib
import inspect
import itertools
import json
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from pipeline.config.schema import Train, write_readme
from pipeline.data import store
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.data.pooled import pool_visual
from pipeline.data.synthetic import (
    AVE_BACKGROUND_VIDEOS,
    AVE_CLASS_COUNTS,
    AVE_FULL_VIDEOS,
    AVE_PARTIAL_WINDOWS,
    AVE_TRAIN_VIDEOS,
    SyntheticPlan,
    footprint,
    generate_synthetic,
)
from pipeline.evaluation.metrics import gt_repeat, segment_metrics
from pipeline.io import write_json
from pipeline.models import build_model
from pipeline.models.ave import VARIANTS
from pipeline.training.loop import (
    Trainer,
    Validation,
    accuracy_on,
    fit,
    make_optimizer,
    make_scheduler,
    predict,
    set_seed,
)
from pipeline.training.objectives import Supervised

BG = store.BACKGROUND
# Tian et al., "Audio-Visual Event Localization in Unconstrained Videos", ECCV 2018:
# supervised accuracy of the ablation, as cited by issue 28 (see docs/calibration.md).
TIAN_2018 = {"a": 0.595, "v": 0.553, "v_att": 0.586, "av": 0.714, "av_att": 0.727}
VARIANT_NAMES = {"a": "A", "v": "V", "v_att": "V-att", "av": "A+V", "av_att": "A+V-att"}
PAPER_SPREAD = max(TIAN_2018.values()) - min(TIAN_2018.values())  # 17.4 points
# The targets (fractions), the bench's and the tests' alike.
ANCHOR_TOLERANCE = 0.02  # each variant within this of Tian et al.
GT_REPEAT = (0.822 - 0.02, 0.822 + 0.02)  # AVE test split: 82.2 % (seed 004 Table 1)
BACKGROUND_SHARE = (0.20, 0.45)  # audible-only and visible-only shares of the background
STATISTIC_TOLERANCE = 0.02  # class prior (total variation), full share, background share
WINDOW_TOLERANCE = 0.05  # partial events: starting the video, ending it, short
NOISY_TOLERANCE = 0.01  # background-only videos' share of the weak training set
# The anchors' training budget. The official code (supervised_main.py of AVE-ECCV18) trains
# 300 epochs of 52 batches; 25 epochs of the store's 9 left V and A+V still rising, and the
# three-seed mean test accuracy of every variant moves by at most 0.7 points from epoch 50
# to 60 (docs/calibration.md, "Round 3").
EPOCHS = 50
# The official code scores its checkpoint when ``epoch % 5 == 0`` (0-indexed): after the
# 1st, 6th, 11th, ... epoch. (It scores them on the test split; the bench on val.)
VALIDATE_EVERY = 5
ARTIFACT = Path("reports") / "calibration.json"
DOC = Path("docs") / "calibration.md"
DOC_MARKERS = (
    "<!-- calibration: generated by `python -m bench.calibration --write` -->",
    "<!-- end of calibration -->",
)
PROBES = (
    "audio",
    "visual 7x7 mean",
    "visual at the source",
    "A+V mean",
    "A+V mean + video mean",
    "A+V mean + source",
)


@dataclass
class Figure:
    """One measured figure, its target in words, and whether it is met."""

    name: str
    value: float
    target: str
    met: bool


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


# ---------------------------------------------------------------------------------------
# 1. The plan against the real annotations.


def window_statistics(windows: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Annotation statistics of event windows ``(n, 2)`` and classes ``(n,)``.

    Returns the class shares (``class k``), the share of whole-video events (``full``),
    of background segments (``background``) and, among the other events, those that
    start the video (``starts at 0``), end it (``ends at 10``) or last at most 4 segments
    (``at most 4 segments``).
    """
    lengths = windows[:, 1] - windows[:, 0]  # (n,)
    partial = lengths < store.T
    shares = np.bincount(classes, minlength=store.N_CLASSES - 1) / classes.size
    stats = {f"class {k}": float(share) for k, share in enumerate(shares)}
    stats.update(
        {
            "full": float(np.mean(~partial)),
            "background": float(1 - lengths.sum() / (store.T * lengths.size)),
            "starts at 0": float(np.mean(windows[partial, 0] == 0)),
            "ends at 10": float(np.mean(windows[partial, 1] == store.T)),
            "at most 4 segments": float(np.mean(lengths[partial] <= 4)),
        }
    )
    return stats


def ave_statistics() -> dict[str, float]:
    """:func:`window_statistics` of the real AVE annotations (the constants of
    :mod:`pipeline.data.synthetic`; the one empty event left out)."""
    counts = {(0, store.T): AVE_FULL_VIDEOS, **AVE_PARTIAL_WINDOWS}
    windows = np.repeat(np.array(list(counts)), list(counts.values()), axis=0)
    classes = np.repeat(np.arange(store.N_CLASSES - 1), AVE_CLASS_COUNTS)
    stats = window_statistics(windows, np.zeros(len(windows), dtype=int))
    prior = np.bincount(classes) / classes.size
    stats.update({f"class {k}": float(share) for k, share in enumerate(prior)})
    return stats


def plan_windows(plan: SyntheticPlan) -> tuple[np.ndarray, np.ndarray]:
    """Event windows ``(n, 2)`` and classes ``(n,)`` of the plan's event videos."""
    windows = []
    for video in plan.videos:
        event = np.flatnonzero(video.labels() != BG)
        windows.append((event[0], event[-1] + 1))
    return np.array(windows), np.array([video.cls for video in plan.videos])


def background_shares(plan: SyntheticPlan, rows: np.ndarray) -> dict[str, float]:
    """Shares of the background segments of ``rows`` by what the video's class does there.

    ``audible only``: its class is heard, not seen; ``visible only``: seen, not heard;
    ``neither``: neither (another class, or nothing but ambience).
    """
    counts = {"audible only": 0, "visible only": 0, "neither": 0}
    for row in rows:
        video = plan.videos[row]
        background = video.labels() == BG
        heard = video.audible[background] == video.cls
        seen = video.visible[background] == video.cls
        counts["audible only"] += int((heard & ~seen).sum())
        counts["visible only"] += int((seen & ~heard).sum())
        counts["neither"] += int((~heard & ~seen).sum())
    total = max(1, sum(counts.values()))
    return {kind: count / total for kind, count in counts.items()}


def plan_figures(root: Path, plan: SyntheticPlan) -> list[Figure]:
    """GT-repeat, the annotation statistics and the background shares of the plan."""
    labels = store.segment_labels(root)[store.split_order(root, "test")]
    gt = segment_metrics(labels, gt_repeat(labels))["accuracy"]
    low, high = GT_REPEAT
    figures = [
        Figure(
            "GT-repeat accuracy (test)",
            gt,
            f"{_pct(low)}-{_pct(high)} (AVE 82.2)",
            low <= gt <= high,
        )
    ]
    real, ours = ave_statistics(), window_statistics(*plan_windows(plan))
    prior = 0.5 * sum(
        abs(ours[f"class {k}"] - real[f"class {k}"]) for k in range(store.N_CLASSES - 1)
    )
    figures.append(
        Figure(
            "class prior: total variation from AVE's",
            prior,
            f"<= {_pct(STATISTIC_TOLERANCE)}",
            prior <= STATISTIC_TOLERANCE,
        )
    )
    for name, key, tolerance in (
        ("whole-video events", "full", STATISTIC_TOLERANCE),
        ("background segments", "background", STATISTIC_TOLERANCE),
        ("partial events starting the video", "starts at 0", WINDOW_TOLERANCE),
        ("partial events ending the video", "ends at 10", WINDOW_TOLERANCE),
        ("partial events of at most 4 segments", "at most 4 segments", WINDOW_TOLERANCE),
    ):
        gap = abs(ours[key] - real[key])
        target = f"AVE {_pct(real[key])} ± {_pct(tolerance)}"
        figures.append(Figure(f"share of {name}", ours[key], target, gap <= tolerance))
    noisy = len(plan.background) / (len(plan.orders["train"]) + len(plan.background))
    real_noisy = AVE_BACKGROUND_VIDEOS / (AVE_TRAIN_VIDEOS + AVE_BACKGROUND_VIDEOS)
    figures.append(
        Figure(
            "background-only videos in the weak training set",
            noisy,
            f"AVE {_pct(real_noisy)} ± {_pct(NOISY_TOLERANCE)}",
            abs(noisy - real_noisy) <= NOISY_TOLERANCE,
        )
    )
    shares = background_shares(plan, store.split_order(root, "test"))
    low, high = BACKGROUND_SHARE
    for kind in ("audible only", "visible only"):
        share = shares[kind]
        figures.append(
            Figure(f"background {kind}", share, f"{_pct(low)}-{_pct(high)}", low <= share <= high)
        )
    return figures


# ---------------------------------------------------------------------------------------
# 2. Probes.


def source_features(root: Path, plan: SyntheticPlan, source_sigma: float) -> np.ndarray:
    """``(n, T, C)`` visual map averaged under the sound source's footprint (oracle attention).

    The weights of segment ``t`` are the source's Gaussian footprint at its cell, of width
    ``source_sigma`` (:func:`pipeline.data.synthetic.footprint`), normalised to sum
    1: the attention that knows where the source is and how far it spreads. For a narrow
    source it is the feature at the source's cell.

    Args:
        root: the store.
        plan: the plan that generated it (source paths).
        source_sigma: the generator's ``source_sigma``.
    """
    with h5py.File(root / store.VISUAL, "r") as h5:
        maps = h5[store.FEATURE_KEY]
        size = maps.shape[2]
        out = np.empty((maps.shape[0], store.T, maps.shape[-1]), dtype=np.float32)  # (n, T, C)
        for row, video in enumerate(plan.videos):
            weights = np.stack([footprint(cell, size, source_sigma) for cell in video.path])
            weights /= weights.sum(axis=(1, 2), keepdims=True)  # (T, H, W)
            out[row] = np.einsum("thw,thwc->tc", weights, maps[row])  # (T, C)
    return out


def probe_accuracy(
    features: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray
) -> float:
    """Test accuracy of a logistic regression on standardised per-segment features.

    Args:
        features: ``(n, T, D)`` features of every store row.
        labels: ``(n, T)`` segment classes.
        train: store rows to fit on.
        test: store rows to score.
    """
    x_train, y_train = features[train].reshape(-1, features.shape[-1]), labels[train].ravel()
    x_test, y_test = features[test].reshape(-1, features.shape[-1]), labels[test].ravel()
    scaler = StandardScaler().fit(x_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = LogisticRegression(max_iter=300).fit(scaler.transform(x_train), y_train)
    return float(probe.score(scaler.transform(x_test), y_test))


def modality_features(
    root: Path, plan: SyntheticPlan, source_sigma: float
) -> dict[str, np.ndarray]:
    """The ``(n, T, D)`` features of the three single-modality probes of :data:`PROBES`:
    the audio, the 7x7-averaged map and the map under the source's footprint."""
    return {
        "audio": np.asarray(store.read_array(root / store.AUDIO), dtype=np.float32),  # (n, T, A)
        "visual 7x7 mean": pool_visual(root / store.VISUAL),  # (n, T, C)
        "visual at the source": source_features(root, plan, source_sigma),  # (n, T, C)
    }


def probe_features(root: Path, plan: SyntheticPlan, source_sigma: float) -> dict[str, np.ndarray]:
    """The ``(n, T, D)`` features of each probe of :data:`PROBES`."""
    single = modality_features(root, plan, source_sigma)
    audio, mean, source = single.values()
    joint = np.concatenate([audio, mean], axis=-1)  # (n, T, A + C)
    video = np.broadcast_to(joint.mean(axis=1, keepdims=True), joint.shape)  # (n, T, A + C)
    return {
        **single,
        "A+V mean": joint,
        "A+V mean + video mean": np.concatenate([joint, video], axis=-1),
        "A+V mean + source": np.concatenate([joint, source], axis=-1),
    }


def probes(root: Path, plan: SyntheticPlan, source_sigma: float) -> dict[str, float]:
    """Test accuracy of each probe of :data:`PROBES` on every segment's label."""
    labels = store.segment_labels(root)
    train, test = store.split_order(root, "train"), store.split_order(root, "test")
    features = probe_features(root, plan, source_sigma)
    return {name: probe_accuracy(features[name], labels, train, test) for name in PROBES}


def probe_figures(probe: dict[str, float], anchors: dict[str, float], gt: float) -> list[Figure]:
    """The probes against the targets read from Tian et al. (module docstring).

    Args:
        probe: accuracy of each probe of :data:`PROBES`.
        anchors: accuracy of the anchored variants (measured, or else the paper's).
        gt: GT-repeat accuracy of the test split.
    """
    attention = {
        "visual": TIAN_2018["v_att"] - TIAN_2018["v"] + ANCHOR_TOLERANCE,
        "joint": TIAN_2018["av_att"] - TIAN_2018["av"] + ANCHOR_TOLERANCE,
    }
    ceiling = max(anchors.values()) + PAPER_SPREAD
    audio, mean = probe["audio"], probe["visual 7x7 mean"]
    cell_gain = probe["visual at the source"] - mean
    joint_gain = probe["A+V mean + source"] - probe["A+V mean"]
    verdicts = {
        "audio": (
            f">= visual 7x7 mean (A {_pct(TIAN_2018['a'])} > V {_pct(TIAN_2018['v'])})",
            audio >= mean,
        ),
        "visual 7x7 mean": ("(the reference of the gains)", True),
        "visual at the source": (
            f"gain over 7x7 mean in [0, {_pct(attention['visual'])}] (V-att - V + tolerance)",
            0 <= cell_gain <= attention["visual"],
        ),
        "A+V mean": ("above audio and visual alone", probe["A+V mean"] > max(audio, mean)),
        "A+V mean + video mean": (
            f"< GT-repeat ({_pct(gt)})",
            probe["A+V mean + video mean"] < gt,
        ),
        "A+V mean + source": (
            f"gain over A+V mean in [0, {_pct(attention['joint'])}] (A+V-att - A+V + tolerance)",
            0 <= joint_gain <= attention["joint"],
        ),
    }
    figures = []
    for name in PROBES:
        target, met = verdicts[name]
        value = probe[name]
        figures.append(
            Figure(
                f"probe {name}",
                value,
                f"{target}; <= {_pct(ceiling)} (best anchor + spread)",
                met and value <= ceiling,
            )
        )
    return figures


# ---------------------------------------------------------------------------------------
# 3. The anchors: Tian et al.'s ablation of the AVE baseline.


def every_nth_epoch(validation: Validation, period: int) -> Validation:
    """``validation`` scored after epochs 1, ``1 + period``, ``1 + 2 period``, ... only.

    The other epochs score -1, below any accuracy, so they never replace the checkpoint:
    the official code's cadence (:data:`VALIDATE_EVERY`).

    Args:
        validation: the checkpoint choice to thin out.
        period: epochs between two scored epochs (1: every epoch).
    """
    epochs = itertools.count()

    def score(model: torch.nn.Module) -> dict[str, float]:
        if next(epochs) % period:
            return {validation.metric: -1.0}
        return validation.score(model)

    return Validation(validation.metric, score, validation.later_on_tie)


def train_variants(
    root: Path,
    epochs: int,
    seed: int = 0,
    variants: tuple[str, ...] = tuple(VARIANTS),
    hidden: int = 128,
    validate_every: int = VALIDATE_EVERY,
) -> dict[str, dict]:
    """Test-split metrics of the AVE baseline's ``variants`` trained on the store.

    SEL with Adam at lr 1e-3, constant, batch 64 (Tian et al.'s code), the checkpoint of
    the best val accuracy among the epochs scored (:func:`every_nth_epoch`).

    Args:
        root: the store.
        epochs: training epochs (the bench's: :data:`EPOCHS`).
        seed: seed of initialisation and shuffling (default: 0).
        variants: which of :data:`pipeline.models.ave.VARIANTS` (default: all).
        hidden: the LSTMs' size ``h`` (default: 128, Tian et al.'s).
        validate_every: epochs between two scored checkpoints (default
            :data:`VALIDATE_EVERY`).
    """
    sets = {split: AVEDataset(root, split) for split in store.SPLITS}
    item = sets["train"][0]
    dims = {
        "audio_dim": item["audio"].shape[-1],
        "visual_dim": item["visual"].shape[-1],
        "n_regions": item["visual"].shape[1] * item["visual"].shape[2],
    }
    device = torch.device("cpu")
    config = Train.model_construct(  # the keys make_optimizer and make_scheduler read
        optimizer="adam", lr=1e-3, weight_decay=0.0, scheduler="constant", epochs=epochs
    )
    results = {}
    for variant in variants:
        set_seed(seed)
        model = build_model("ave", hidden=hidden, variant=variant, **dims)
        optimizer = make_optimizer(config, model.parameters())
        scheduler = make_scheduler(config, optimizer)
        start = time.perf_counter()
        trainer = Trainer(model, Supervised(), optimizer, scheduler, device)
        result = fit(
            trainer,
            make_loader(sets["train"], 64, shuffle=True, seed=seed),
            every_nth_epoch(accuracy_on(make_loader(sets["val"], 128), device), validate_every),
            epochs,
            name=variant,
        )
        model.load_state_dict(result.best_state)
        scores = predict(model, make_loader(sets["test"], 128), device)
        metrics = segment_metrics(sets["test"].labels, scores.argmax(axis=-1))
        metrics["seconds"] = time.perf_counter() - start
        metrics["best_epoch"] = result.best_epoch
        print(
            f"ave {variant}: test accuracy {_pct(metrics['accuracy'])} (Tian et al. "
            f"{_pct(TIAN_2018[variant])}), best epoch {result.best_epoch}, "
            f"{metrics['seconds']:.0f} s",
            flush=True,
        )
        results[variant] = metrics
    return results


def mean_over_seeds(runs: list[dict[str, dict]]) -> dict[str, dict]:
    """Each variant's test accuracy averaged over training seeds, and each seed's.

    Args:
        runs: :func:`train_variants`' result for each seed, in seed order.

    Returns:
        variant -> ``{"accuracy": mean, "seeds": [accuracy of each seed]}``.
    """
    means = {}
    for variant in runs[0]:
        seeds = [float(run[variant]["accuracy"]) for run in runs]
        means[variant] = {"accuracy": float(np.mean(seeds)), "seeds": seeds}
    return means


def anchor_figures(trained: dict[str, dict], gt: float) -> list[Figure]:
    """Each trained variant against Tian et al. within :data:`ANCHOR_TOLERANCE`."""
    figures = []
    for variant, metrics in trained.items():
        value, paper = metrics["accuracy"], TIAN_2018[variant]
        met = abs(value - paper) <= ANCHOR_TOLERANCE and value < gt
        target = f"Tian et al. {_pct(paper)} ± {_pct(ANCHOR_TOLERANCE)}, < GT-repeat"
        figures.append(Figure(f"AVE {VARIANT_NAMES[variant]}", value, target, met))
    return figures


def calibration_figures(
    root: Path,
    plan: SyntheticPlan,
    trained: dict[str, dict] | None,
    source_sigma: float | None = None,
) -> list[Figure]:
    """Every figure of the bench beside its target (see the module docstring).

    Args:
        source_sigma: the generator's ``source_sigma`` (the probes' oracle attention);
            None: no probes.
    """
    figures = plan_figures(root, plan)
    gt = figures[0].value
    anchors = {v: m["accuracy"] for v, m in (trained or {}).items()} or TIAN_2018
    if source_sigma is not None:
        figures += probe_figures(probes(root, plan, source_sigma), anchors, gt)
    if trained:
        figures += anchor_figures(trained, gt)
    return figures


# ---------------------------------------------------------------------------------------
# Output.


def format_figures(figures: list[Figure]) -> str:
    """A markdown table: figure, value (%), target, met."""
    lines = ["| figure | value (%) | target (%) | met |", "|---|---:|---|---|"]
    for f in figures:
        lines.append(f"| {f.name} | {_pct(f.value)} | {f.target} | {'yes' if f.met else 'NO'} |")
    return "\n".join(lines)


def verdict_line(figures: list[Figure]) -> str:
    """One line: which targets are met and which are missed."""
    missed = [f.name for f in figures if not f.met]
    met = len(figures) - len(missed)
    return f"Targets met: {met} of {len(figures)}; missed: " + ("; ".join(missed) or "none") + "."


def generator_settings(overrides: dict | None = None) -> dict:
    """The keyword arguments :func:`generate_synthetic` runs with: its defaults, then
    ``overrides``."""
    parameters = inspect.signature(generate_synthetic).parameters
    defaults = {k: p.default for k, p in parameters.items() if p.default is not p.empty}
    return {**defaults, **(overrides or {})}


def settings_fingerprint(settings: dict) -> str:
    """sha256 of the generator's settings (sorted JSON): which data a calibration holds for."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def artifact_markdown(artifact: dict) -> str:
    """The calibration table of ``docs/calibration.md`` and its verdict, from the artifact."""
    figures = [Figure(**f) for f in artifact["figures"]]
    bench, seeds = artifact["bench"], artifact["anchor_seeds"]
    names = [name for name in VARIANT_NAMES.values() if name in seeds]  # the JSON sorts keys
    each = "; ".join(f"{name} " + ", ".join(map(_pct, seeds[name])) for name in names)
    lines = [
        f"Made by `python -m bench.calibration --write` (AVE variants {bench['epochs']} "
        f"epochs each, checkpoint scored every {bench['validate_every']} epochs, "
        f"{bench['seeds']} training seeds, {bench['threads']} torch thread(s), "
        f"{bench['seconds']:.0f} s on {bench['machine']}) on the generator settings of "
        f"fingerprint `{artifact['fingerprint'][:12]}` (`{ARTIFACT}`):",
        "",
        format_figures(figures),
        "",
        f"Each AVE variant's value is its mean test accuracy over training seeds "
        f"0 to {bench['seeds'] - 1} (one store); each seed's: {each}.",
        "",
        verdict_line(figures),
    ]
    return "\n".join(lines) + "\n"


def write_artifact(
    figures: list[Figure], trained: dict[str, dict], settings: dict, bench: dict, doc: Path = DOC
) -> None:
    """``reports/calibration.json`` and the generated block of ``docs/calibration.md``.

    Args:
        trained: :func:`mean_over_seeds` of the AVE variants (each seed's accuracy is kept).
    """
    artifact = {
        "fingerprint": settings_fingerprint(settings),
        "generator": settings,
        "bench": bench,
        "figures": [
            {"name": f.name, "value": float(f.value), "target": f.target, "met": bool(f.met)}
            for f in figures
        ],
        "anchor_seeds": {VARIANT_NAMES[v]: m["seeds"] for v, m in trained.items()},
    }
    write_json(ARTIFACT, artifact)
    write_readme(doc, artifact_markdown(artifact), DOC_MARKERS)


def parse_set(items: list[str]) -> dict[str, float | int]:
    """``key=value`` overrides of :func:`generate_synthetic` (ints stay ints)."""
    overrides = {}
    for item in items:
        key, _, value = item.partition("=")
        overrides[key] = int(value) if value.lstrip("-").isdigit() else float(value)
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="0: no training")
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--seeds", type=int, default=3, help="training seeds 0..N-1 of each variant (mean)"
    )
    parser.add_argument("--no-probes", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)"
    )
    parser.add_argument("--machine", default="a 2-core CPU shared with other work (loaded)")
    parser.add_argument("--set", nargs="*", default=[], help="generate_synthetic key=value")
    parser.add_argument("--write", action="store_true", help=f"write {ARTIFACT} and {DOC}")
    args = parser.parse_args()
    whole = args.epochs > 0 and not args.no_probes and args.variants == list(VARIANTS)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.write and (args.set or not whole):
        parser.error("--write needs the whole bench (probes and every variant) on the defaults")
    overrides = parse_set(args.set)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ave"
        start = time.perf_counter()
        plan = generate_synthetic(root, **overrides)
        print(f"store generated in {time.perf_counter() - start:.0f} s, overrides {overrides}")
        trained = None
        if args.epochs > 0:
            variants = tuple(args.variants)
            runs = [train_variants(root, args.epochs, seed, variants) for seed in range(args.seeds)]
            trained = mean_over_seeds(runs)
        settings = generator_settings(overrides)
        sigma = None if args.no_probes else settings["source_sigma"]
        figures = calibration_figures(root, plan, trained, sigma)
        print(format_figures(figures))
        print(verdict_line(figures))
        if args.write:
            bench = {
                "epochs": args.epochs,
                "validate_every": VALIDATE_EVERY,
                "seeds": args.seeds,
                "threads": args.threads,
                "machine": args.machine,
                "seconds": time.perf_counter() - start,
            }
            write_artifact(figures, trained, settings, bench)
            print(f"wrote {ARTIFACT} and {DOC}")


if __name__ == "__main__":
    main()
