"""The calibration bench: its committed artifact, its cheap targets, and a small run.

The bench's figures on the default store are in ``reports/calibration.json`` (and the
README's table generated from it), stamped with the fingerprint of the generator's
settings: the first tests fail when the defaults change without the artifact being made
again, or when the artifact's verdicts are not those of the bench's current thresholds.
The default plan (GT-repeat, background shares) is checked exactly, with the bench's
thresholds, at its full size but with 2-dimensional features (the plan does not depend on
them); the probes need the full-size maps, so a store of 200 training and 100 test videos
checks what holds at both sizes; a tiny store runs the bench end to end, training included.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.calibration import (
    ARTIFACT,
    AV_GAIN,
    BACKGROUND_SHARE,
    CHANCE_FACTOR,
    GT_REPEAT,
    MODALITY_GAP,
    PROBE_GAP,
    README_MARKERS,
    SOURCE_GAIN,
    VARIANTS,
    OneModality,
    artifact_markdown,
    background_shares,
    calibration_figures,
    format_figures,
    generator_settings,
    probe_accuracy,
    probes,
    settings_fingerprint,
    source_cell_features,
    train_variants,
)
from pipeline.config.schema import readme_block
from pipeline.data import store
from pipeline.data.synthetic import generate_synthetic
from pipeline.evaluation.metrics import gt_repeat, segment_metrics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def artifact() -> dict:
    return json.loads((ROOT / ARTIFACT).read_text())


def _values(artifact: dict) -> dict[str, float]:
    return {figure["name"]: figure["value"] for figure in artifact["figures"]}


def test_the_committed_calibration_is_of_the_current_generator_defaults(artifact):
    settings = generator_settings()
    assert artifact["generator"] == json.loads(json.dumps(settings))
    assert artifact["fingerprint"] == settings_fingerprint(settings), (
        "the generator's defaults changed: run `python -m bench.calibration --write`"
    )
    # and the default profile generates exactly that data
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["synthetic"]
    assert {key: settings[key] for key in params} == params


def test_the_docs_table_is_generated_from_the_artifact(artifact):
    readme = (ROOT / "docs" / "data.md").read_text()
    assert readme_block(readme, README_MARKERS) == artifact_markdown(artifact)
    missed = [f["name"] for f in artifact["figures"] if not f["met"]]
    line = readme_block(readme, README_MARKERS).splitlines()[-1]
    assert line.startswith(f"Targets missed ({len(missed)} of ")
    assert all(name in line for name in missed)


def test_the_artifacts_verdicts_are_the_bench_thresholds(artifact):
    value, met = _values(artifact), {f["name"]: f["met"] for f in artifact["figures"]}
    for what in ("every segment's label", "event class of foreground"):
        audio, mean = value[f"probe {what}: audio"], value[f"probe {what}: visual 7x7 average"]
        cell = value[f"probe {what}: visual source cell"]
        assert met[f"probe {what}: audio"] == (abs(audio - mean) <= PROBE_GAP)
        assert met[f"probe {what}: visual source cell"] == (cell >= mean + SOURCE_GAIN)
    audio, visual = value["model audio only"], value["model visual only"]
    both = value["model audio-visual"]
    assert met["model audio only"] == (abs(audio - visual) <= MODALITY_GAP)
    assert met["model visual only"] == (visual <= both - AV_GAIN)
    assert met["model audio-visual"] == (
        audio <= both - AV_GAIN and both < value["GT-repeat accuracy (test)"]
    )


@pytest.fixture(scope="module")
def default_plan(tmp_path_factory) -> tuple[Path, object]:
    """The default generator's plan and labels, with 2-dimensional features (cheap)."""
    root = tmp_path_factory.mktemp("default_plan") / "ave"
    return root, generate_synthetic(root, audio_dim=2, visual_dim=2)


def test_gt_repeat_and_background_shares_of_the_default_plan_meet_the_bench_targets(
    default_plan, artifact
):
    root, plan = default_plan
    test = store.split_order(root, "test")
    labels = store.segment_labels(root)[test]
    assert labels.shape == (402, store.T)
    accuracy = segment_metrics(labels, gt_repeat(labels))["accuracy"]
    assert GT_REPEAT[0] <= accuracy <= GT_REPEAT[1]
    shares = background_shares(plan, test)
    assert sum(shares.values()) == pytest.approx(1.0)
    for kind in ("audible only", "visible only"):
        assert BACKGROUND_SHARE[0] <= shares[kind] <= BACKGROUND_SHARE[1], (kind, shares)
    # the same numbers as the committed full-size bench: the plan ignores feature sizes
    value = _values(artifact)
    assert value["GT-repeat accuracy (test)"] == pytest.approx(accuracy)
    assert value["background audible only"] == pytest.approx(shares["audible only"])


SMALL = {"n_train": 200, "n_val": 20, "n_test": 100, "n_background": 0, "seed": 1}


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> tuple[Path, object]:
    """Default generator at the official feature sizes, fewer videos (about 5 s)."""
    root = tmp_path_factory.mktemp("calibration") / "ave"
    return root, generate_synthetic(root, **SMALL)


@pytest.fixture(scope="module")
def small_probes(small_store) -> dict:
    return probes(*small_store)


def test_averaged_visual_keeps_the_class_and_attention_to_the_source_gains(small_probes):
    # before the calibration: audio 69 %, visual 19 % on every segment's label. The probe
    # gaps themselves (PROBE_GAP, SOURCE_GAIN) are judged on the full-size artifact above;
    # 200 training videos move them by several points
    for task in ("label", "event"):
        average = small_probes[("visual (7x7 average)", task)]
        cell = small_probes[("visual (source cell)", task)]
        audio = small_probes[("audio", task)]
        chance = 1 / (store.N_CLASSES if task == "label" else store.N_CLASSES - 1)
        assert average >= CHANCE_FACTOR * chance, (task, average)
        assert cell > average > audio, (task, audio, average, cell)


def test_background_shares_by_hand():
    from pipeline.data.synthetic import SyntheticVideo

    video = SyntheticVideo((4, 8), 2)  # foreground 4..7
    video.audible[0] = 2  # audible only
    video.visible[1] = video.visible[2] = 2  # visible only
    video.audible[8] = 5  # another class: neither
    shares = background_shares(type("Plan", (), {"videos": [video]})(), np.array([0]))
    assert shares == {"audible only": 1 / 6, "visible only": 2 / 6, "neither": 3 / 6}


def test_source_cell_features_read_the_path_cell(small_store):
    root, plan = small_store
    cells = source_cell_features(root, plan)  # (n, T, C)
    row, t = 7, 3
    r, c = plan.videos[row].path[t]
    maps = store.read_array(root / store.VISUAL)
    np.testing.assert_array_equal(cells[row, t], maps[row, t, r, c])


def test_probe_of_a_perfect_feature_is_perfect():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 29, size=(40, store.T))
    features = np.eye(29)[labels] + 0.01 * rng.normal(size=(40, store.T, 29))
    rows = np.arange(40)
    assert probe_accuracy(features, labels, rows[:30], rows[30:], events=False) == 1.0


def test_one_modality_zeroes_the_dropped_input():
    import torch

    seen = {}

    def model(audio, visual):
        seen["audio"], seen["visual"] = audio, visual
        return audio

    audio, visual = torch.ones(1, 2, 3), torch.ones(1, 2, 4)
    OneModality(model, "audio")(audio, visual)
    assert seen["audio"].abs().sum() == 0 and seen["visual"].sum() == 8
    OneModality(model, "visual")(audio, visual)
    assert seen["visual"].abs().sum() == 0 and seen["audio"].sum() == 6


@pytest.mark.parametrize("model", ["dpnet", "edrnet"])
def test_bench_runs_end_to_end_on_a_tiny_store(model, tiny_store_kwargs, tmp_path):
    plan = generate_synthetic(tmp_path / "ave", **tiny_store_kwargs)
    trained = train_variants(tmp_path / "ave", model, epochs=1, hidden=8)
    assert set(trained) == set(VARIANTS)
    for metrics in trained.values():
        assert 0 <= metrics["accuracy"] <= 1
    figures = calibration_figures(tmp_path / "ave", plan, trained)
    names = [figure.name for figure in figures]
    assert "GT-repeat accuracy (test)" in names
    assert "model audio-visual" in names
    table = format_figures(figures)
    assert table.count("\n") == len(figures) + 1
