"""bench.error_split: the error shares of a hand-made case, and its missing-file errors."""

import json

import numpy as np
import pytest

from bench import error_split


def test_the_shares_of_a_hand_computed_case():
    # background = 2; 2 videos x 4 segments = 8 segments
    labels = np.array([[0, 0, 2, 2], [1, 1, 1, 2]])
    predictions = np.array([[0, 1, 0, 2], [2, 0, 0, 1]])
    shares = error_split.split_errors(labels, predictions, background=2)
    assert shares["right"] == 2 / 8  # (0, 0) and (0, 3)
    assert shares["wrong class"] == 3 / 8  # (0, 1), (1, 1), (1, 2)
    assert shares["missed"] == 1 / 8  # (1, 0)
    assert shares["false alarm"] == 2 / 8  # (0, 2), (1, 3)
    # video 0: predicted events 0, 1, 0 -> 0, right; video 1: 0, 0, 1 -> 0, wrong
    assert shares["video class right"] == 0.5
    assert sum(shares[f] for f in error_split.FIELDS[:4]) == 1


def test_a_video_without_predicted_events_counts_as_wrong():
    shares = error_split.split_errors(np.array([[0, 0]]), np.array([[2, 2]]), background=2)
    assert (shares["missed"], shares["video class right"]) == (1.0, 0.0)


def test_the_workspace_file_is_read_and_a_missing_one_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"reports/predictions/sel.json: not found"):
        error_split.read_predictions("sel", None)
    (tmp_path / "reports/predictions").mkdir(parents=True)
    kept = {"labels": [[28, 3]], "model": [[3, 3]]}
    (tmp_path / "reports/predictions/sel.json").write_text(json.dumps(kept))
    assert error_split.read_predictions("sel", None) == kept
    with pytest.raises(SystemExit, match="error_split: HEAD:reports/predictions/sel.json"):
        error_split.read_predictions("sel", "HEAD")  # tmp_path is no git repository
