"""Network weights for feature extraction: a local file named in params, or a public release.

``data.weights.<network>`` is ``{path, sha256}``. With a ``path``, that file is used (and
its sha256 checked when given). Without one, a network that has a public release
(:data:`PUBLIC_WEIGHTS`: torchvision's ImageNet VGG-19, torchvggish's AudioSet VGGish) is
downloaded once over HTTPS into ``<data.download_dir>/weights/`` and checked against the
sha256 prefix in its file name (the ``torch.hub`` convention); the networks of seed 003
have no public release and need a file. Weights are read with
``torch.load(..., weights_only=True)``: a state dict of tensors, never an arbitrary pickle.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.fetch import download_file, sha256_file


@dataclass(frozen=True)
class PublicWeights:
    """A public state-dict release: its HTTPS URL and the sha256 prefix its name carries."""

    url: str
    sha256_prefix: str

    @property
    def filename(self) -> str:
        """The file name at the end of the URL."""
        return self.url.rsplit("/", 1)[-1]


PUBLIC_WEIGHTS = {
    "vgg19": PublicWeights("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d"),
    "vggish": PublicWeights(
        "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth",
        "10086976",
    ),
}


def _key(network: str) -> str:
    return f"data.weights.{network}"


def weights_spec(weights: object, network: str) -> dict:
    """The ``{path, sha256}`` entry of ``network`` in ``data.weights``, checked.

    Args:
        weights: the ``data.weights`` mapping.
        network: the network's name (``vgg19``, ``vggish``, ``mc3_18``, ``seed003_audio``).
    """
    spec = weights.get(network) if isinstance(weights, Mapping) else None
    if not isinstance(spec, Mapping) or set(spec) != {"path", "sha256"}:
        raise PipelineError(
            f"params.yaml: {_key(network)} must be a mapping with keys path and sha256 "
            f"(each may be null), found {spec!r}"
        )
    return dict(spec)


def _public_file(network: str, download_dir: Path) -> Path:
    release = PUBLIC_WEIGHTS[network]
    path = download_dir / "weights" / release.filename
    if not path.is_file():
        download_file(release.url, path)
    digest = sha256_file(path)
    if not digest.startswith(release.sha256_prefix):
        raise PipelineError(
            f"{path}: expected a sha256 starting with {release.sha256_prefix} "
            f"(the release {release.url}), found {digest}; delete the file to download it again"
        )
    return path


def weights_file(network: str, spec: dict, download_dir: str | os.PathLike) -> Path:
    """The checked weights file of ``network``: ``spec['path']`` or the public release.

    Args:
        network: the network's name.
        spec: its ``{path, sha256}`` entry (:func:`weights_spec`).
        download_dir: ``data.download_dir``; public releases land in its ``weights/``.

    Raises:
        PipelineError: a missing file, a sha256 mismatch, or no path for a network without
            a public release.
    """
    if spec["path"] is None:
        if network not in PUBLIC_WEIGHTS:
            raise PipelineError(
                f"params.yaml: {_key(network)}.path must name a weights file: the {network} "
                "network has no public release (seed 003 trains its own)"
            )
        return _public_file(network, Path(download_dir))
    path = Path(spec["path"]).expanduser()
    if not path.is_file():
        raise PipelineError(f"{_key(network)}.path: weights file not found: {path}")
    if spec["sha256"] is not None:
        digest = sha256_file(path)
        if digest != str(spec["sha256"]).lower():
            raise PipelineError(
                f"{path}: expected sha256 {spec['sha256']} ({_key(network)}.sha256), found {digest}"
            )
    return path


def load_weights(module: nn.Module, path: str | os.PathLike, head_prefixes=()) -> nn.Module:
    """Load a state-dict file into ``module`` with ``strict=True``.

    Entries whose names start with one of ``head_prefixes`` (a classification head the
    feature trunk does not have) are set aside first; every other entry must match. The
    loaded tensors replace the module's own (``assign=True``), so ``module`` may be built
    on the ``meta`` device, without initialising weights that are overwritten anyway.

    Args:
        module: the network.
        path: a file holding a plain state dict (``torch.save(model.state_dict(), path)``).
        head_prefixes: name prefixes to leave out (default: none).

    Returns:
        ``module``, loaded.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unpickling failure means a bad file)
        raise PipelineError(f"{path}: not a readable weights file ({err})") from None
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise PipelineError(f"{path}: expected a state dict (names to tensors)")
    state = {k: v for k, v in state.items() if not k.startswith(tuple(head_prefixes))}
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        found = str(err).split("\n\t", 1)[-1].replace("\n\t", " ")[:400]
        raise PipelineError(
            f"{path}: expected the weights of {type(module).__name__}, found {found}"
        ) from None
    return module
