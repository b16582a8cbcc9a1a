"""Seed 004 Table 6 in ablations.yaml, its metrics, the paper preset, and its rendering."""

from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from pipeline.avvp.metrics import METRICS, paired_difference
from pipeline.config.presets import preset_params
from pipeline.experiments import tables
from pipeline.experiments.ablations import Metric, Result, load_ablations, plan

ROOT = Path(__file__).resolve().parents[2]
PAPER = {  # seed 004 Table 6, in the order of its columns
    "han": [60.1, 51.3, 52.9, 48.9, 48.9, 43.0, 54.0, 47.7, 55.4, 48.0],
    "han+lr": [59.7, 52.2, 57.9, 54.0, 52.6, 46.9, 56.7, 51.1, 56.6, 49.2],
}


def test_ablation_metrics_include_every_avvp_metric():
    assert set(METRICS) <= set(get_args(Metric))
    assert {"avvp_han", "avvp_han_lr"} <= set(get_args(Result))


def test_table_6_holds_the_papers_numbers_and_runs_the_avvp_chain():
    table = load_ablations(ROOT / "ablations.yaml").table("tlr-t6")
    assert table.metrics == list(METRICS)
    for row in table.rows:
        assert [float(row.paper.o_ave[m]) for m in table.metrics] == PAPER[row.name]
    cells = plan([table], [0, 1, 2])
    assert {c.experiment.targets for c in cells.values()} == {
        ("avvp_evaluate@han", "avvp_evaluate@han_lr")
    }  # both rows share one experiment per seed


def test_han_preset_holds_the_papers_settings():
    avvp = preset_params(ROOT / "presets" / "han-paper.yaml", ROOT / "params.yaml")["avvp"]
    assert avvp["model"] == {
        "name": "han",
        "hidden": 512,
        "heads": 1,
        "feedforward": 512,
        "dropout": 0.1,
        "layers": 1,
        "share_layers": True,
    }
    train = avvp["train"]
    assert (train["epochs"], train["batch_size"], train["lr"]) == (40, 16, 0.0003)
    assert (train["step_size"], train["gamma"]) == (10, 0.1)
    assert (train["audio_smoothing"], train["visual_smoothing"]) == (0.0, 0.1)
    assert avvp["source"] == "local" and avvp["refine"]["auxiliary"] is False


class FakeRuns:
    """Per-video scores of two rows over three seeds, as the experiments would save them."""

    def __init__(self, scores: dict[str, list[dict]]) -> None:
        self.scores = scores

    def predictions(self, cell):
        seed = cell.experiment.seed
        return {"names": ["a", "b", "c", "d"], "model": self.scores[cell.result][seed]}


def _scores(level: float, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {m: list(np.clip(level + 0.05 * rng.normal(size=4), 0, 1)) for m in METRICS}


def test_table_numbers_and_markdown_of_an_avvp_table():
    table = load_ablations(ROOT / "ablations.yaml").table("tlr-t6")
    seeds = [0, 1, 2]
    runs = FakeRuns(
        {
            "avvp_han": [_scores(0.5, s) for s in seeds],
            "avvp_han_lr": [_scores(0.6, 10 + s) for s in seeds],
        }
    )
    numbers = tables.table_numbers(table, seeds, plan([table], seeds), runs, "o_ave")
    han, lr = numbers["han"]["summary"], numbers["han+lr"]["summary"]
    expected = np.mean([np.mean(_scores(0.6, 10 + s)["av_event"]) for s in seeds])
    assert lr["av_event"]["mean"] == pytest.approx(expected)
    assert numbers["han"]["diff"] is None
    diff = numbers["han+lr"]["diff"]["type_segment"]
    assert diff["diff"] == pytest.approx(lr["type_segment"]["mean"] - han["type_segment"]["mean"])
    assert diff["ci_low"] < diff["diff"] < diff["ci_high"]
    text = tables.render_markdown(table, seeds, {"o_ave": numbers}, "synthetic", avvp=True)
    assert "real LLP" in text and "LLP test videos" in text and "Type@AV Seg." in text
    assert "paper 56.7" in text


def test_paired_difference_of_identical_rows_is_zero():
    runs = [{m: np.array(v) for m, v in _scores(0.5, s).items()} for s in range(3)]
    diff = paired_difference(runs, runs, resamples=50)
    assert all(d["diff"] == 0 and d["ci_low"] == d["ci_high"] == 0 for d in diff.values())
