"""Reading runs: clear errors on bad committed files, flattening and differing params."""

import json
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.site.runs import Files, Run, differing_params, flatten, read_curves, read_result


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
