"""What the golden fixtures and the tests that read them share: weights, mapping, files.

The official models' weights are not stored in the fixtures (CMRAN and HAN have millions
of them): each fixture names the official state-dict entries and their shapes, and the
weights are drawn from them by :func:`seeded_weights` with NumPy's legacy
``RandomState``, whose stream NumPy keeps fixed (NEP 19). The fixture stores the sha256
of the drawn weights, so a drawing that changed would fail loudly (``weights_sha256``),
not compare other weights.

The mapping from the official state-dict names to ours is written once, here
(:data:`MAPPINGS`): ``tools/official/make_fixtures.py`` and ``tests/golden/`` both use it.
"""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: Fixture name -> the official repository it comes from (GitHub owner/name).
REPOS = {
    "ave": "YapengTian/AVE-ECCV18",
    "psp_full": "jasongief/PSP_CVPR_2021",
    "psp_weak": "jasongief/PSP_CVPR_2021",
    "cmran_sel": "FloretCat/CMRAN",
    "cmran_wsel": "FloretCat/CMRAN",
    "han": "YapengTian/AVVP-ECCV20",
    "avvp_metrics": "YapengTian/AVVP-ECCV20",
}


def seeded_weights(spec: list[tuple[str, tuple[int, ...]]], seed: int) -> dict[str, np.ndarray]:
    """Float64 weights for the official state-dict entries ``spec``, in its order.

    A matrix (or higher) takes U(-1/sqrt(fan_in), 1/sqrt(fan_in)) like PyTorch's default
    ``nn.Linear``; a layer norm's scale 1 + U(-0.1, 0.1); every other vector U(-0.1, 0.1).

    Args:
        spec: ``(name, shape)`` of each entry.
        seed: the ``RandomState`` seed.
    """
    draw = np.random.RandomState(seed)
    weights = {}
    for name, shape in spec:
        if len(shape) >= 2:
            bound = 1 / np.sqrt(int(np.prod(shape[1:])))
            weights[name] = draw.uniform(-bound, bound, size=shape)
        elif "norm" in name and name.endswith("weight"):
            weights[name] = 1 + draw.uniform(-0.1, 0.1, size=shape)
        else:
            weights[name] = draw.uniform(-0.1, 0.1, size=shape)
    return weights


def probes(spec: list[tuple[str, tuple[int, ...]]], seed: int) -> dict[str, np.ndarray]:
    """Fixed random directions, U(-1, 1), one per entry: a gradient stored as one number."""
    draw = np.random.RandomState(seed + 1)
    return {name: draw.uniform(-1, 1, size=shape) for name, shape in spec}


def digest(weights: dict[str, np.ndarray]) -> str:
    """sha256 of the weights' names and float64 bytes, in order."""
    h = hashlib.sha256()
    for name, value in weights.items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(value, dtype=np.float64).tobytes())
    return h.hexdigest()


def codes(draw: np.random.RandomState, shape: tuple[int, ...], sparse: bool) -> np.ndarray:
    """Inputs on a coarse grid (exact in float32 and float64, and compressible).

    ``sparse``: non-negative quarters in [0, 2), two thirds of them 0 (like post-ReLU
    maps); otherwise sixteenths in [-1, 1).
    """
    if sparse:
        values = draw.randint(1, 8, size=shape) / 4
        return (values * (draw.uniform(size=shape) < 1 / 3)).astype(np.float32)
    return (draw.randint(-16, 16, size=shape) / 16).astype(np.float32)


# ---------------------------------------------------------------- official -> ours
def _rename(pairs: dict[str, str]) -> Callable[[dict], dict]:
    """A mapping that renames official prefixes to ours (every entry of ours is covered)."""

    def mapping(official: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ours = {}
        for name, value in official.items():
            for old, new in pairs.items():
                if name == old or name.startswith(old + "."):
                    ours[new + name[len(old) :]] = value
                    break
        return ours

    return mapping


def ave_mapping(official: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """AVE-ECCV18 ``att_Net`` -> :class:`~pipeline.models.ave.AVEBaseline`.

    Official ``L1`` reads ``[h^a; h^v]``, ours ``[h^v; h^a]``: its columns are swapped.
    Official ``L2``'s bias has no counterpart (ours: bias-free W^o); it is dropped here and
    the tests assert the relation that includes it.
    """
    ours = _rename(
        {
            "affine_video": "u_v.0",
            "affine_audio": "u_a.0",
            "affine_v": "w_v",
            "affine_g": "w_a",
            "affine_h": "w_f",
            "lstm_video": "lstm_v",
            "lstm_audio": "lstm_a",
            "L1": "u_o.0",
        }
    )(official)
    half = official["L1.weight"].shape[1] // 2
    l1 = official["L1.weight"]  # (64, 4h): [audio | video]
    ours["u_o.0.weight"] = np.concatenate([l1[:, half:], l1[:, :half]], axis=1)
    ours["w_o.weight"] = official["L2.weight"]
    return ours


_PSP_COMMON = {
    "attention.affine_video": "attention.u_v.0",
    "attention.affine_audio": "attention.u_a.0",
    "attention.affine_v": "attention.w_v",
    "attention.affine_g": "attention.w_g",
    "attention.affine_h": "attention.w_h",
    "lstm_a_v.lstm_audio": "lstm_a",
    "lstm_a_v.lstm_video": "lstm_v",
    "psp.v_L1": "psp.v_1",
    "psp.v_L2": "psp.v_2",
    "psp.a_L1": "psp.a_1",
    "psp.a_L2": "psp.a_2",
    "psp.layer_norm": "psp.norm",
    "L1": "classifier.0",
    "L2": "classifier.2",
}


def psp_full_mapping(official: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PSP_CVPR_2021 ``fully_model.psp_net`` -> :class:`~pipeline.models.psp.PSP` (full).

    Ours has the weak network's temporal weighting ``W3`` in both networks; the full
    official one has none (nor does its SEL loss use one): it is set to zero here.
    """
    ours = _rename(
        _PSP_COMMON
        | {
            "fa": "audio_encoder",
            "fv": "visual_encoder",
            "psp.v_fc": "psp.v_3",
            "psp.a_fc": "psp.a_3",
        }
    )(official)
    ours["weighting.weight"] = np.zeros((1, official["L2.weight"].shape[0]))
    return ours


def psp_weak_mapping(official: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PSP_CVPR_2021 ``weakly_model.psp_net`` -> :class:`~pipeline.models.psp.PSP` (weak)."""
    return _rename(_PSP_COMMON | {"linear_v": "visual_encoder", "W3": "weighting"})(official)


def _cmran_pairs(layers: int) -> dict[str, str]:
    pairs = {
        "v_fc": "visual_adapter.0",
        "spatial_channel_att.affine_video_1": "attention.visual_1",
        "spatial_channel_att.affine_audio_1": "attention.audio_1",
        "spatial_channel_att.affine_bottleneck": "attention.squeeze",
        "spatial_channel_att.affine_v_c_att": "attention.excite",
        "spatial_channel_att.affine_video_2": "attention.visual_2",
        "spatial_channel_att.affine_audio_2": "attention.audio_2",
        "spatial_channel_att.affine_v_s_att": "attention.spatial",
        "AVInter.video_multihead": "interaction.attention",
        "AVInter.norm1": "interaction.norm",
        "localize_module.classifier": "relevance",
        "localize_module.event_classifier": "classes",
    }
    for official, ours in (("video", "visual"), ("audio", "audio")):
        pairs[f"{official}_encoder.affine_matrix"] = f"streams.{ours}.itr_input"
        pairs[f"{official}_encoder.encoder.layers"] = f"streams.{ours}.itr.layers"
        pairs[f"{official}_decoder.affine_matrix"] = f"streams.{ours}.query_input"
        for i in range(layers):
            old, new = f"{official}_decoder.decoder.layers.{i}", f"streams.{ours}.cmra.{i}"
            pairs[f"{old}.multihead_attn"] = f"{new}.attention"
            pairs[f"{old}.norm1"] = f"{new}.norm"
            pairs[f"{old}.linear1"] = f"{new}.feedforward.net.0"
            pairs[f"{old}.linear2"] = f"{new}.feedforward.net.3"
            pairs[f"{old}.norm2"] = f"{new}.feedforward.norm"
    return pairs


def cmran_mapping(official: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """FloretCat/CMRAN ``supv_main_model`` or ``weak_main_model`` -> :class:`CMRAN`.

    The official SEL class head has 28 rows (no background), ours 29: the background row
    (the last) has no counterpart and is set to zero (weight and bias) here.
    """
    ours = _rename(_cmran_pairs(layers=1))(official)
    for key in ("classes.weight", "classes.bias"):
        if ours[key].shape[0] == 28:
            ours[key] = np.concatenate([ours[key], np.zeros_like(ours[key][:1])])
    return ours


def han_mapping(official: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """AVVP-ECCV20 ``MMIL_Net`` -> :class:`~pipeline.models.han.HAN` (one shared layer).

    The official ``hat_encoder`` runs its one layer for both query modalities; ours shares
    it (``share_layers``), so ``visual_layers`` are the same arrays as ``audio_layers``.
    """
    layer = "hat_encoder.layers.0"
    ours = _rename(
        {
            "fc_a": "audio_proj",
            "fc_v": "frame_proj",
            "fc_st": "snippet_proj",
            "fc_fusion": "fusion",
            f"{layer}.self_attn": "audio_layers.0.self_attention",
            f"{layer}.cm_attn": "audio_layers.0.cross_attention",
            f"{layer}.linear1": "audio_layers.0.feedforward.0",
            f"{layer}.linear2": "audio_layers.0.feedforward.3",
            f"{layer}.norm1": "audio_layers.0.norm1",
            f"{layer}.norm2": "audio_layers.0.norm2",
            "fc_prob": "classifier",
            "fc_frame_att": "time_attention",
            "fc_av_att": "modality_attention",
        }
    )(official)
    shared = {k.replace("audio_", "visual_", 1): v for k, v in ours.items() if "_layers." in k}
    return ours | shared


MAPPINGS: dict[str, Callable[[dict], dict]] = {
    "ave": ave_mapping,
    "psp_full": psp_full_mapping,
    "psp_weak": psp_weak_mapping,
    "cmran_sel": cmran_mapping,
    "cmran_wsel": cmran_mapping,
    "han": han_mapping,
}


# ---------------------------------------------------------------- fixture files
def save(name: str, arrays: dict[str, np.ndarray], meta: dict, out: Path = FIXTURES) -> Path:
    """Write ``<out>/<name>.npz`` (compressed) with ``meta`` as JSON under ``meta``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.npz"
    tmp = out / f".{name}.tmp.npz"
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    tmp.replace(path)
    return path


def load(name: str, folder: Path = FIXTURES) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a fixture (no pickles)."""
    with np.load(folder / f"{name}.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def weights_of(meta: dict) -> dict[str, np.ndarray]:
    """The official weights of a fixture, drawn again and checked against its sha256."""
    spec = [(name, tuple(shape)) for name, shape in meta["weights"]]
    weights = seeded_weights(spec, meta["seed"])
    found = digest(weights)
    if found != meta["weights_sha256"]:
        raise AssertionError(
            f"weights drawn for seed {meta['seed']}: expected sha256 "
            f"{meta['weights_sha256']}, found {found} (did NumPy's RandomState change?)"
        )
    return weights


def load_ours(model: torch.nn.Module, name: str, meta: dict) -> torch.nn.Module:
    """``model`` (float64, eval mode) with the fixture's official weights mapped to ours."""
    state = {k: torch.from_numpy(v) for k, v in MAPPINGS[name](weights_of(meta)).items()}
    model = model.double().eval()
    model.load_state_dict(state, strict=True)
    return model


# ---------------------------------------------------------------- comparisons
def close(found, expected, atol: float = 1e-9, rtol: float = 0.0, what: str = "") -> None:
    """Assert ``found`` (tensor or array) equals the official ``expected`` within tolerance."""
    found, expected = (
        x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        for x in (found, expected)
    )
    assert found.shape == expected.shape, f"{what}: shape {found.shape} != {expected.shape}"
    np.testing.assert_allclose(found, expected, atol=atol, rtol=rtol, err_msg=what)


def check_probes(
    model: torch.nn.Module, name: str, meta: dict, arrays: dict, atol: float, rtol: float = 0.0
) -> int:
    """Each official weight gradient, projected, against ours after the same mapping.

    The fixture holds :math:`\\langle g, p \\rangle` for each official gradient :math:`g`
    and fixed direction :math:`p` (:func:`probes`); ours is :math:`\\langle g', M(p) \\rangle`
    with :math:`M` the weight mapping (:data:`MAPPINGS`), which holds for a mapping that
    renames or permutes. Returns the number of weights compared.
    """
    spec = [(key, tuple(shape)) for key, shape in meta["weights"]]
    directions = probes(spec, meta["seed"])
    zeros = {key: np.zeros(shape) for key, shape in spec}
    untouched = {id(zero) for zero in zeros.values()}
    grads = {k: p.grad.numpy() for k, p in model.named_parameters() if p.grad is not None}
    for official, expected in zip(arrays["grad/names"], arrays["grad/dots"], strict=True):
        one = {key: directions[key] if key == official else zeros[key] for key, _ in spec}
        mapped = MAPPINGS[name](one)
        found = sum(
            float((grads[key] * value).sum())
            for key, value in mapped.items()
            if key in grads and id(value) not in untouched
        )
        np.testing.assert_allclose(found, expected, atol=atol, rtol=rtol, err_msg=official)
    return len(arrays["grad/names"])
