"""The test kit serves any registered model: pooled or map, graph or not."""

import pytest

from pipeline.models import MODELS
from tests.models.chain import run_chain


@pytest.mark.parametrize(
    ("name", "hyperparameters"),
    [
        ("dpnet", {"hidden": 8, "blocks": 1}),  # pooled features, a graph layer (Link)
        ("ave", {"hidden": 8, "attention_dim": 4, "classifier_hidden": 8}),  # 7x7 maps
    ],
)
def test_run_chain_takes_pooled_and_map_models(
    tiny_store, tmp_path, monkeypatch, name, hyperparameters
):
    assert MODELS[name].needs_maps == (name == "ave")
    run_chain(tiny_store, tmp_path, monkeypatch, name, **hyperparameters)
