"""bench.cmran_audio_paths: the three audio paths are CMRAN's only ones, each one counts."""

import pytest
import torch

from bench.cmran_audio_paths import (
    AUDIO_PATHS,
    attention_modules,
    attention_on_audio,
    audio_on_paths,
    memory_share,
    path_sets,
)
from pipeline.errors import PipelineError
from pipeline.models.cmran import CMRAN
from tests.models.test_cmran import SMALL


@pytest.fixture
def model() -> CMRAN:
    torch.manual_seed(0)
    return CMRAN(**SMALL).eval()


@pytest.fixture
def videos() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    audio = torch.randn(3, 10, 6, generator=generator)  # (B, T, d_a)
    other = torch.randn(3, 10, 6, generator=generator)  # (B, T, d_a)
    visual = torch.rand(3, 10, 2, 2, 8, generator=generator)  # (B, T, 2, 2, d_v)
    return audio, other, visual


@torch.no_grad()
def test_the_three_paths_together_are_the_model_given_the_other_audio(model, videos):
    audio, other, visual = videos
    with audio_on_paths(model, other, list(AUDIO_PATHS)):
        swapped = model(audio, visual)  # (B, T, C)
    torch.testing.assert_close(swapped, model(other, visual), rtol=0, atol=0)


@torch.no_grad()
def test_no_path_is_the_unmixed_model_and_the_hooks_go_after_the_block(model, videos):
    audio, other, visual = videos
    own = model(audio, visual)  # (B, T, C)
    with audio_on_paths(model, other, ()):
        torch.testing.assert_close(model(audio, visual), own, rtol=0, atol=0)
    with audio_on_paths(model, other, ["attention"]):
        model(audio, visual)
    torch.testing.assert_close(model(audio, visual), own, rtol=0, atol=0)


@torch.no_grad()
@pytest.mark.parametrize("name", list(AUDIO_PATHS))
def test_each_path_alone_changes_the_scores(model, videos, name):
    audio, other, visual = videos
    with audio_on_paths(model, other, [name]):
        swapped = model(audio, visual)  # (B, T, C)
    assert not torch.allclose(swapped, model(audio, visual))
    assert not torch.allclose(swapped, model(other, visual))


def test_path_sets_are_every_subset_once():
    sets = path_sets()
    assert len(sets) == 2 ** len(AUDIO_PATHS) == len(set(sets))
    assert sets[0] == () and sets[-1] == tuple(AUDIO_PATHS)


def test_bad_uses_are_refused(model, videos):
    audio, other, visual = videos
    not_cmran = audio_on_paths(torch.nn.Linear(2, 2), other, ["attention"])
    with pytest.raises(PipelineError, match="expected a CMRAN model, found Linear"), not_cmran:
        pass
    unknown = audio_on_paths(model, other, ["sound"])
    with pytest.raises(PipelineError, match=r"unknown audio path \['sound'\]"), unknown:
        pass
    shape = r"expected audio of shape \(2, 10, 6\).*found \(3, 10, 6\)"
    wrong_batch = audio_on_paths(model, other[:2], ["audio query"])
    with pytest.raises(PipelineError, match=shape), wrong_batch, torch.no_grad():
        model(audio, visual)


def test_memory_share_of_a_hand_computed_attention():
    # one head, identity projections: the logit of query q on key k is q . k / sqrt(2)
    attention = torch.nn.MultiheadAttention(2, 1, bias=False, batch_first=True)
    with torch.no_grad():
        attention.in_proj_weight.copy_(torch.cat([torch.eye(2)] * 3))
    query = torch.tensor([[[1.0, 0.0]] * 3])  # (1, 3, 2)
    keys = torch.tensor([[[2.0, 0.0]] * 3 + [[0.0, 5.0]] * 3])  # (1, 6, 2)
    x = 2 / 2**0.5  # each memory key's logit; the others' are 0
    expected = torch.full((1, 3), 1 / (1 + torch.exp(torch.tensor(-x)).item()))
    torch.testing.assert_close(memory_share(attention, query, keys), expected)


@torch.no_grad()
def test_attention_on_audio_is_half_where_every_logit_is_equal(model, videos):
    audio, _, visual = videos
    own = model(audio, visual)  # (B, T, C)
    for module, _ in attention_modules(model).values():
        torch.nn.init.zeros_(module.in_proj_weight[: 2 * module.embed_dim])  # q, k: 0
        torch.nn.init.zeros_(module.in_proj_bias)
    shares = attention_on_audio(model, audio, visual)
    assert list(shares) == [
        "visual stream CMRA 0", "audio stream CMRA 0", "audio-video interaction"
    ]  # fmt: skip
    for share in shares.values():
        assert share == pytest.approx(0.5, abs=1e-6)
    assert not torch.allclose(model(audio, visual), own)  # the zeroed weights are used


@torch.no_grad()
def test_measuring_attention_leaves_the_outputs_and_removes_its_hooks(model, videos):
    audio, _, visual = videos
    own = model(audio, visual)  # (B, T, C)
    shares = attention_on_audio(model, audio, visual)
    assert all(0 < share < 1 for share in shares.values())
    torch.testing.assert_close(model(audio, visual), own, rtol=0, atol=0)
    assert all(not m._forward_hooks for m, _ in attention_modules(model).values())
