"""Weights files: strict loading past a classification head, checksums, clear errors.

Nothing here downloads: the public releases are only named (``PUBLIC_WEIGHTS``).
"""

import hashlib

import pytest
import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.features.seed003 import VIDEO_HEAD_PREFIXES, VideoNet
from pipeline.features.weights import PUBLIC_WEIGHTS, load_weights, weights_file, weights_spec


class _Trunk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))


def _save(path, state) -> str:
    torch.save(state, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_torchvision_style_file_with_its_head_loads_strictly(tmp_path):
    source = VideoNet()
    state = dict(source.state_dict())
    state["fc.weight"], state["fc.bias"] = torch.zeros(400, 512), torch.zeros(400)
    path = tmp_path / "mc3_18.pth"
    _save(path, state)
    target = load_weights(VideoNet(), path, VIDEO_HEAD_PREFIXES)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value)


def test_a_file_of_another_network_names_the_mismatch(tmp_path):
    path = tmp_path / "other.pth"
    _save(path, {"stem.0.weight": torch.zeros(2, 1, 1, 1), "extra.weight": torch.zeros(1)})
    with pytest.raises(PipelineError, match=r"other\.pth: expected the weights of _Trunk"):
        load_weights(_Trunk(), path)


def test_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(_Trunk(), path)  # a whole module needs unpickling of arbitrary classes
    with pytest.raises(PipelineError, match="not a readable weights file"):
        load_weights(_Trunk(), path)


def test_a_dict_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pth"
    _save(path, {"state_dict": {"stem.0.weight": torch.zeros(1)}, "epoch": 3})
    with pytest.raises(PipelineError, match="expected a state dict"):
        load_weights(_Trunk(), path)


def test_weights_file_checks_the_sha256(tmp_path):
    path = tmp_path / "w.pth"
    digest = _save(path, _Trunk().state_dict())
    assert weights_file("mc3_18", {"path": str(path), "sha256": digest}, tmp_path) == path
    assert weights_file("mc3_18", {"path": str(path), "sha256": None}, tmp_path) == path
    with pytest.raises(PipelineError, match=f"expected sha256 {'0' * 64}.*found {digest}"):
        weights_file("mc3_18", {"path": str(path), "sha256": "0" * 64}, tmp_path)


def test_weights_file_errors_name_the_key(tmp_path):
    with pytest.raises(PipelineError, match=r"data\.weights\.vgg19\.path: weights file not found"):
        weights_file("vgg19", {"path": str(tmp_path / "missing.pth"), "sha256": None}, tmp_path)
    with pytest.raises(PipelineError, match="seed003_audio network has no public release"):
        weights_file("seed003_audio", {"path": None, "sha256": None}, tmp_path)
    with pytest.raises(PipelineError, match=r"data\.weights\.mc3_18 must be a mapping"):
        weights_spec({"mc3_18": "file.pth"}, "mc3_18")


def test_public_releases_are_https_with_hash_prefixed_names():
    assert set(PUBLIC_WEIGHTS) == {"vgg19", "vggish"}
    for release in PUBLIC_WEIGHTS.values():
        assert release.url.startswith("https://")
        assert release.filename.endswith(f"-{release.sha256_prefix}.pth")
