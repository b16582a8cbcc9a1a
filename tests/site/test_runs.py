"""Reading runs: clear errors on bad committed files, flattening and differing params."""

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.site.runs import (
    Files,
    Result,
    Run,
    degenerate,
    differing_params,
    flatten,
    lock_params,
    read_curves,
    read_result,
    read_run,
)


def test_flatten_and_differing_params():
    assert flatten({"a": {"b": 1, "c": {"d": [1]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1], "e": {}}
    runs = [Run("w", None, {"x": 1, "y": 2}, {}), Run("e", "c", {"x": 1, "y": 3, "z": 0}, {})]
    assert differing_params(runs) == ["y", "z"]


def _task(root: Path, predictions) -> None:
    (root / "reports" / "predictions").mkdir(parents=True)
    (root / "reports" / "predictions" / "sel.json").write_text(predictions)


def test_a_bad_predictions_file_names_the_file_and_what_was_expected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _task(tmp_path, "{not json")
    with pytest.raises(PipelineError, match=r"reports/predictions/sel.json: expected JSON"):
        read_result(Files(None), "sel")
    (tmp_path / "reports" / "predictions" / "sel.json").write_text(json.dumps({"labels": []}))
    with pytest.raises(PipelineError, match=r"sel.json: expected the keys labels and model"):
        read_result(Files(None), "sel")
    saved = {"labels": [[1, 2]], "model": [[1, 2, 3]]}
    (tmp_path / "reports" / "predictions" / "sel.json").write_text(json.dumps(saved))
    with pytest.raises(PipelineError, match=r"found \(1, 2\) and \(1, 3\)"):
        read_result(Files(None), "sel")
    assert read_result(Files(None), "wsel") is None  # not evaluated: no result, no error


def test_a_training_log_with_another_header_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "metrics" / "train_log" / "sel" / "plots" / "metrics"
    log.mkdir(parents=True)
    (log / "lr.tsv").write_text("step\tlr\n1\t0.5\n2\t0.25\n")
    assert read_curves(Files(None), "sel") == {"lr": [(1, 0.5), (2, 0.25)]}
    (log / "train_loss.tsv").write_text("epoch\tloss\n1\t2.0\n")
    with pytest.raises(PipelineError, match=r"train_loss.tsv: expected the header 'step\\tt"):
        read_curves(Files(None), "sel")


LOCK = """schema: '2.0'
stages:
  train_sel:
    params:
      params.yaml:
        model:
          name: segru
          hidden: 8
        train.epochs: 2
"""


def test_the_workspace_shows_dvc_locks_params_and_says_where_params_yaml_differs(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("model: {name: dpnet, hidden: 8}\ntrain: {epochs: 30}\n")
    (tmp_path / "dvc.lock").write_text(LOCK)
    assert lock_params(LOCK) == {"model.name": "segru", "model.hidden": 8, "train.epochs": 2}
    run = read_run("workspace", None)
    assert run.params["model.name"] == "segru" and run.params["train.epochs"] == 2
    assert run.note.startswith("params.yaml differs from dvc.lock")
    assert 'model.name (dvc.lock: "segru", params.yaml: "dpnet")' in run.note
    assert "train.epochs (dvc.lock: 2, params.yaml: 30)" in run.note
    assert "model.hidden" not in run.note
    (tmp_path / "params.yaml").write_text("model: {name: segru, hidden: 8}\ntrain: {epochs: 2}\n")
    assert read_run("workspace", None).note == ""


def _degenerate(model, labels) -> str | None:
    return degenerate(Result({"labels": np.array(labels), "model": np.array(model)}, {}))


def test_degenerate_runs_are_flagged():
    labels = [[3, 3, 28, 28], [5, 5, 5, 28]]
    assert _degenerate([[28] * 4] * 2, labels) == "predicts background on every test segment"
    assert _degenerate([[3] * 4] * 2, labels) == "predicts class 3 on every test segment"
    # the most frequent class (28 and 5: 3 of 8 segments each) scores 37.5 everywhere
    below = _degenerate([[3, 5, 5, 5], [28, 3, 3, 3]], labels)
    assert below.startswith("accuracy 12.5 is below 37.5")
    assert _degenerate([[3, 3, 28, 5], [5, 5, 5, 3]], labels) is None
