"""bench.link_probe: linking a video with an exact copy changes nothing, another partner does."""

import numpy as np
import pytest
import torch

from bench.link_probe import alone_scores, linked_scores, probe
from pipeline.errors import PipelineError
from pipeline.models import build_model


@pytest.fixture
def tiny_dpnet():
    torch.manual_seed(0)
    return build_model("dpnet", audio_dim=6, visual_dim=8, hidden=8, blocks=2).eval()


def _videos(n: int, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "audio": torch.randn(n, 10, 6, generator=generator),
        "visual": torch.randn(n, 10, 8, generator=generator),
    }


def test_a_copy_as_partner_gives_the_scores_of_the_video_alone(tiny_dpnet):
    # every relation then averages two identical neighbours (eqs 17-21 add no other edge)
    videos = _videos(3, seed=1)
    alone = alone_scores(tiny_dpnet, videos)  # (3, 10, 29), each video its own graph
    linked = linked_scores(tiny_dpnet, videos, videos)  # the linked layout (PairedBatch)
    torch.testing.assert_close(linked, alone, rtol=1e-4, atol=1e-5)


def test_another_partner_changes_the_scores(tiny_dpnet):
    videos, others = _videos(3, seed=1), _videos(3, seed=2)
    alone = alone_scores(tiny_dpnet, videos)
    assert (linked_scores(tiny_dpnet, videos, others) - alone).abs().max() > 1e-3


def test_a_model_without_a_graph_layer_is_refused():
    model = build_model("tcn", audio_dim=6, visual_dim=8, hidden=8, blocks=1).eval()
    videos = _videos(2, seed=1)
    with pytest.raises(PipelineError, match="no graph layer"):
        linked_scores(model, videos, videos)


class _Videos:
    """A dataset of in-memory videos with the ``__getitems__`` the probe reads."""

    def __init__(self, videos: dict) -> None:
        self.videos = videos

    def __len__(self) -> int:
        return len(self.videos["audio"])

    def __getitems__(self, index: list[int]) -> dict:
        return {key: value[index] for key, value in self.videos.items()}


def test_probe_pairs_video_k_with_its_replicas_k_times_per_video_plus_r(tiny_dpnet):
    videos = _videos(5, seed=1)
    # replica r of video k: video k itself for r = 0, another video for r = 1
    copies = {key: value.repeat_interleave(2, dim=0).clone() for key, value in videos.items()}
    others = _videos(10, seed=3)
    for key in copies:
        copies[key][1::2] = others[key][1::2]
    runs = probe(tiny_dpnet, _Videos(videos), _Videos(copies), per_video=2, batch=2)
    assert list(runs) == ["alone", "linked, replica 0", "linked, replica 1"]
    assert all(run.shape == (5, 10) for run in runs.values())
    np.testing.assert_array_equal(runs["linked, replica 0"], runs["alone"])
    expected = linked_scores(tiny_dpnet, videos, {k: v[1::2] for k, v in copies.items()})
    np.testing.assert_array_equal(runs["linked, replica 1"], expected.argmax(-1).numpy())
