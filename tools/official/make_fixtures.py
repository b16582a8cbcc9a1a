"""Golden fixtures: the official code's outputs on fixed weights and inputs.

The tests in ``tests/golden/`` compare our ports of the AVE baseline, PSP, CMRAN, HAN and
the AVVP metrics with what the authors' own code computes. This script makes their
fixtures (``tests/golden/fixtures/*.npz``). It fetches nothing: give it checkouts of the
official repositories, which you fetch yourself::

    git clone https://github.com/YapengTian/AVE-ECCV18
    git clone https://github.com/jasongief/PSP_CVPR_2021
    git clone https://github.com/FloretCat/CMRAN
    git clone https://github.com/YapengTian/AVVP-ECCV20
    python tools/official/make_fixtures.py --ave AVE-ECCV18 --psp PSP_CVPR_2021 \\
        --cmran CMRAN --avvp AVVP-ECCV20

Each fixture names its repository and commit (``git rev-parse HEAD`` of the checkout, or
``--commit ave=<sha>`` for a checkout without ``.git``). The official code is imported from
the checkout and run on the CPU in float64, unchanged: where it needs what this machine
lacks (CUDA, ``tqdm``, ``tensorboardX``, ``ruamel``, ``pandas``, ``torchvision``), this
script stands in for it at run time (``.cuda()`` returns the tensor, the missing modules are
empty stubs); dropout is set to 0 so that training-mode code is deterministic. Nothing of
the official code is copied into this repository: only its outputs are stored.

What a fixture holds (``tests/golden/common.py``): the official state-dict entries and
shapes with the seed their weights are drawn from and the sha256 of those weights (the
weights themselves would take tens of MB), the inputs (batch 2, on a coarse grid so that
they are exact in float32 and compress), every output, loss and target the official code
computes, and, where cheap, the gradient with respect to the audio and each weight's
gradient projected on a fixed random direction.

Run from the repository root, with the project's environment; it takes about a minute.
"""

import argparse
import contextlib
import importlib
import importlib.util
import subprocess
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.golden import common  # noqa: E402

SEED = 31
BATCH = 2
STUBS = ("tqdm", "tensorboardX", "ruamel", "ruamel.yaml", "pandas", "torchvision")


# ---------------------------------------------------------------- running old code
@contextlib.contextmanager
def official_code(root: Path) -> Iterator[None]:
    """Import from ``root`` on the CPU in float64; undo every change on exit."""
    saved_modules, saved_path = dict(sys.modules), list(sys.path)
    saved = (torch.Tensor.cuda, nn.Module.cuda, torch.Tensor.to, torch.get_default_dtype())
    original_to = torch.Tensor.to

    def to(self, *args, **kwargs):  # "x.to('cuda')" stays on the CPU
        args = tuple(a for a in args if not (isinstance(a, str) and a.startswith("cuda")))
        if str(kwargs.get("device", "")).startswith("cuda"):
            kwargs.pop("device")
        return original_to(self, *args, **kwargs) if args or kwargs else self

    for name in STUBS:
        sys.modules.setdefault(name, _stub(name))
    sys.path.insert(0, str(root))
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.to = to
    torch.set_default_dtype(torch.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        torch.Tensor.cuda, nn.Module.cuda, torch.Tensor.to = saved[:3]
        torch.set_default_dtype(saved[3])
        sys.path[:] = saved_path
        for name in set(sys.modules) - set(saved_modules):
            del sys.modules[name]


def _stub(name: str) -> types.ModuleType:
    """An empty module: every attribute is a :class:`_Nothing` (``tqdm`` passes through)."""
    module = types.ModuleType(name)
    module.tqdm = lambda x, *a, **k: x
    module.__getattr__ = lambda attribute: _Nothing
    return module


class _Nothing:
    """Accepts any call (logger, writer): the official loops log through it."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def no_dropout(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if isinstance(module, nn.MultiheadAttention):
            module.dropout = 0.0
    return model


def with_weights(model: nn.Module, seed: int = SEED) -> tuple[nn.Module, dict]:
    """``model`` in float64 with :func:`common.seeded_weights`; the fixture's weight meta."""
    spec = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    weights = common.seeded_weights(spec, seed)
    model = no_dropout(model.double())
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    meta = {"seed": seed, "weights": spec, "weights_sha256": common.digest(weights)}
    return model, meta


def gradient_probes(grads: dict[str, torch.Tensor], meta: dict) -> dict[str, np.ndarray]:
    """Each weight gradient projected on :func:`common.probes` (official names)."""
    directions = common.probes([tuple(w) for w in meta["weights"]], meta["seed"])
    names = sorted(grads)
    dots = [float((grads[k].detach().numpy() * directions[k]).sum()) for k in names]
    return {"grad/names": np.array(names), "grad/dots": np.array(dots)}


def grads_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad for k, p in model.named_parameters() if p.grad is not None}


def inputs(draw: np.random.RandomState, maps: bool = True) -> dict[str, np.ndarray]:
    arrays = {"audio": common.codes(draw, (BATCH, 10, 128), sparse=False)}
    if maps:
        arrays["visual"] = common.codes(draw, (BATCH, 10, 7, 7, 512), sparse=True)
    return arrays


def t(array: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=grad)


def n(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy().astype(np.float64)


def import_file(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def capture(module: nn.Module, store: dict, key: str, inputs: bool = False) -> None:
    """Keep ``module``'s output (or first input) under ``store[key]`` at each call."""
    if inputs:
        module.register_forward_pre_hook(lambda m, a: store.__setitem__(key, a[0]))
    else:
        module.register_forward_hook(lambda m, a, out: store.__setitem__(key, out))


# Segment labels of the batch: an event of class 3 over 4 segments, one of class 17 over 8.
SEGMENTS = np.array([[28, 28, 3, 3, 3, 3, 28, 28, 28, 28], [17] * 8 + [28, 28]])


def one_hot(labels: np.ndarray, classes: int = 29) -> np.ndarray:
    return np.eye(classes)[labels]


# ---------------------------------------------------------------- AVE-ECCV18
def make_ave(root: Path) -> tuple[dict, dict]:
    """``att_Net`` (supervised, ``models.py``) and its weak twin (``models_weakly.py``).

    The width of U^v, U^a (official ``hidden_size``, 512 in ``supervised_main.py``) is
    set to the LSTM's 128: ours has one ``hidden`` for both (the constructor allows it).
    """
    with official_code(root):
        sel = import_file(root / "models.py", "ave_models")
        weak = import_file(root / "models_weakly.py", "ave_models_weakly")
        net, meta = with_weights(sel.att_Net(128, 128, 128, 29).eval())
        draw = np.random.RandomState(SEED)
        arrays = inputs(draw)
        seen = {}
        capture(net.lstm_video, seen, "attended", inputs=True)
        capture(net.lstm_video, seen, "lstm_v")
        capture(net.lstm_audio, seen, "lstm_a")
        labels = one_hot(SEGMENTS)
        probs = net(t(arrays["audio"]), t(arrays["visual"]))
        loss = nn.MultiLabelSoftMarginLoss()(probs, t(labels))  # supervised_main.py
        weak_net = weak.att_Net(128, 128, 128, 29).double().eval()
        weak_net.load_state_dict(net.state_dict())
        video_labels = (labels.sum(axis=1) > 0).astype(np.float64)
        weak_probs, weak_scores = weak_net(t(arrays["audio"]), t(arrays["visual"]))
        weak_loss = nn.MultiLabelSoftMarginLoss()(weak_probs, t(video_labels))
    arrays |= {
        "labels": SEGMENTS,
        "video_labels": video_labels,
        "attended": n(seen["attended"]),
        "lstm_a": n(seen["lstm_a"][0]),
        "lstm_v": n(seen["lstm_v"][0]),
        "probs": n(probs),
        "loss": n(loss),
        "weak_probs": n(weak_probs),
        "weak_scores": n(weak_scores),
        "weak_loss": n(weak_loss),
    }
    return arrays, meta | {"constructor": "models.att_Net(128, 128, 128, 29)"}


# ---------------------------------------------------------------- PSP_CVPR_2021
def make_psp_full(root: Path) -> tuple[dict, dict]:
    """``fully_model.psp_net`` with the SEL loss of ``fully_supervised_main.py``."""
    with official_code(root):
        model = import_file(root / "fully_model.py", "psp_fully_model")
        measure = import_file(root / "measure.py", "psp_measure")
        loader = import_file(root / "dataloader.py", "psp_dataloader")
        net, meta = with_weights(model.psp_net(128, 512, 128, 29).eval())
        arrays = inputs(np.random.RandomState(SEED + 1))
        seen = {}
        capture(net.psp, seen, "psp")
        # The official data loader's targets (get_segment_wise_relation), on our labels
        # and on four more videos: no event, an event over all 10 segments, two classes.
        target_labels = np.concatenate(
            [SEGMENTS, [[28] * 10, [5] * 10, [2, 2, 28, 9, 9, 9, 28, 28, 28, 28]]]
        )
        dataset = loader.AVE_Fully_Dataset.__new__(loader.AVE_Fully_Dataset)
        dataset.segment_label_batch = np.zeros((len(target_labels), 10), np.float32)
        dataset.segment_avps_gt_batch = np.zeros((len(target_labels), 10), np.float32)
        dataset.get_segment_wise_relation(one_hot(target_labels))
        segment, avps_gt = dataset.segment_label_batch, dataset.segment_avps_gt_batch
        audio = t(arrays["audio"], grad=True)
        fusion, scores, similarity = net(audio, t(arrays["visual"]), 0.099)
        loss_cls = nn.CrossEntropyLoss()(
            scores.permute(0, 2, 1), torch.from_numpy(segment[:BATCH]).long()
        )
        loss_avps = measure.AVPSLoss(similarity, torch.from_numpy(avps_gt[:BATCH]).double())
        (loss_cls + 100 * loss_avps).backward()
    arrays |= {
        "labels": SEGMENTS,
        "target_labels": target_labels,
        "segment_labels": segment.astype(np.int64),
        "avps_target": avps_gt,
        "fusion": n(fusion),
        "v_psp": n(seen["psp"][1]),
        "a_psp": n(seen["psp"][2]),
        "scores": n(scores),
        "similarity": n(similarity),
        "loss_cls": n(loss_cls),
        "loss_avps": n(loss_avps),
        "grad/audio": n(audio.grad),
    } | gradient_probes(grads_of(net), meta)
    return arrays, meta | {"constructor": "fully_model.psp_net(128, 512, 128, 29)", "tau": 0.099}


def make_psp_weak(root: Path) -> tuple[dict, dict]:
    """``weakly_model.psp_net`` with the WSEL loss of ``weakly_supervised_main.py``."""
    with official_code(root):
        model = import_file(root / "weakly_model.py", "psp_weakly_model")
        net, meta = with_weights(model.psp_net(128, 512, 128, 29).eval())
        arrays = inputs(np.random.RandomState(SEED + 2))
        seen = {}
        capture(net.L2, seen, "raw_scores")
        video_labels = np.zeros((BATCH, 29))
        video_labels[0, [3, 28]] = 1
        video_labels[1, 17] = 1
        prob_labels = video_labels / video_labels.sum(axis=1, keepdims=True)  # prob_label.h5
        audio = t(arrays["audio"], grad=True)
        video_probs, weighted = net(audio, t(arrays["visual"]), 0.095)
        loss = nn.BCELoss()(video_probs, t(prob_labels))
        loss.backward()
    arrays |= {
        "video_labels": video_labels,
        "raw_scores": n(seen["raw_scores"]),
        "weighted_scores": n(weighted),
        "video_probs": n(video_probs),
        "loss": n(loss),
        "grad/audio": n(audio.grad),
    } | gradient_probes(grads_of(net), meta)
    return arrays, meta | {"constructor": "weakly_model.psp_net(128, 512, 128, 29)", "tau": 0.095}


# ---------------------------------------------------------------- CMRAN
class _Recorded(nn.Module):
    """A loss that keeps what the official training loop passed it and returned."""

    def __init__(self, loss: nn.Module, calls: list) -> None:
        super().__init__()
        self.loss, self.calls = loss, calls

    def forward(self, input, target):
        out = self.loss(input, target)
        self.calls.append((input, target, out))
        return out


class _Optimizer:
    """Keeps the first batch's gradients at ``step()``; changes no weight."""

    def __init__(self, model: nn.Module, audio: torch.Tensor) -> None:
        self.model, self.audio, self.grads = model, audio, None

    def step(self) -> None:
        if self.grads is None:
            self.grads = {
                k: p.grad.clone() for k, p in self.model.named_parameters() if p.grad is not None
            } | {"audio": self.audio.grad.clone()}

    def zero_grad(self) -> None:
        pass


def _cmran_epoch(script: str, losses: tuple, labels: list, seed: int) -> tuple:
    """``train_epoch`` of the official ``script`` over one batch per entry of ``labels``.

    Returns the inputs (with the first batch's audio gradient), the weight meta, the first
    batch's gradient probes, each loss's calls ``(input, target, output)`` and the model's
    outputs.
    """
    main = importlib.import_module(script)
    main.args = types.SimpleNamespace(clip_gradient=None, print_freq=1)
    main.logger, main.writer = _Nothing(), _Nothing()
    net, meta = with_weights(main.main_model())
    arrays = inputs(np.random.RandomState(seed))
    audio = t(arrays["audio"], grad=True)
    batches = [(t(arrays["visual"]), audio, torch.from_numpy(y)) for y in labels]
    optimizer = _Optimizer(net, audio)
    calls = ([], [])
    recorded = [_Recorded(loss, c) for loss, c in zip(losses, calls, strict=True)]
    outputs = []
    net.register_forward_hook(lambda m, a, out: outputs.append(out))
    main.train_epoch(net, batches, *recorded, optimizer, epoch=0)
    arrays["grad/audio"] = n(optimizer.grads.pop("audio"))
    return arrays, meta, gradient_probes(optimizer.grads, meta), calls, outputs


def make_cmran_sel(root: Path) -> tuple[dict, dict]:
    """``supv_main_model`` through ``supv_main.train_epoch`` (dropout 0).

    A second batch (same inputs) holds a video without events and one with two classes,
    for the official event-class targets of such videos.
    """
    more = np.array([[28] * 10, [4, 4, 28, 28, 9, 9, 9, 28, 28, 28]])
    with official_code(root):
        losses = (nn.BCEWithLogitsLoss(), nn.CrossEntropyLoss())
        labels = [one_hot(SEGMENTS), one_hot(more)]
        arrays, meta, grads, calls, _ = _cmran_epoch("supv_main", losses, labels, SEED + 3)
        (relevance, bce_target, bce), (_, more_bce_target, _) = calls[0]
        (class_logits, event_target, ce), (_, more_event_target, _) = calls[1]
    arrays |= {
        "labels": SEGMENTS,
        "relevance": n(relevance),
        "relevance_target": n(bce_target),
        "class_logits": n(class_logits),
        "event_target": event_target.numpy(),
        "loss_relevance": n(bce),
        "loss_event": n(ce),
        "more_labels": more,
        "more_relevance_target": n(more_bce_target),
        "more_event_target": more_event_target.numpy(),
    } | grads
    return arrays, meta | {"constructor": "model.main_model.supv_main_model()"}


def make_cmran_wsel(root: Path) -> tuple[dict, dict]:
    """``weak_main_model`` through ``weakly_main.train_epoch`` (dropout 0)."""
    video_labels = np.zeros((BATCH, 29))
    video_labels[0, [3, 28]] = 1
    video_labels[1, 17] = 1
    with official_code(root):
        losses = (nn.BCEWithLogitsLoss(), nn.MultiLabelSoftMarginLoss())
        arrays, meta, grads, calls, outputs = _cmran_epoch(
            "weakly_main", losses, [video_labels], SEED + 4
        )
        relevance, raw_logits, video_probs = outputs[0]
        ((_, _, loss),) = calls[1]
    arrays |= {
        "video_labels": video_labels,
        "relevance": n(relevance),
        "class_logits": n(raw_logits),
        "video_probs": n(video_probs),
        "loss": n(loss),
    } | grads
    return arrays, meta | {"constructor": "model.main_model.weak_main_model()"}


# ---------------------------------------------------------------- AVVP-ECCV20
class _BCE(nn.Module):
    """``nn.BCELoss`` keeping its calls; the target in the input's dtype.

    ``main_avvp.train`` makes its labels float32 (``.type(torch.FloatTensor)``); the
    model runs in float64 here, which ``nn.BCELoss`` refuses to mix.
    """

    def __init__(self, calls: list) -> None:
        super().__init__()
        self.calls = calls

    def forward(self, input, target):
        out = nn.functional.binary_cross_entropy(input, target.to(input.dtype))
        self.calls.append((input, target, out))
        return out


class _Loader(list):
    """Batches with the ``dataset`` a ``DataLoader`` has (the official loop logs its size)."""

    @property
    def dataset(self) -> list:
        return self


def make_han(root: Path) -> tuple[dict, dict]:
    """``MMIL_Net`` through one batch of ``main_avvp.train`` (dropout 0).

    Inputs: audio (B, 10, 128), 8 ResNet frames per segment (B, 80, 2048) and a 3D
    snippet feature (B, 10, 512), as the official LLP features.
    """
    with official_code(root):
        main = importlib.import_module("main_avvp")
        net, meta = with_weights(main.MMIL_Net())
        draw = np.random.RandomState(SEED + 5)
        arrays = {
            "audio": common.codes(draw, (BATCH, 10, 128), sparse=False),
            "frames": common.codes(draw, (BATCH, 80, 2048), sparse=True),
            "snippets": common.codes(draw, (BATCH, 10, 512), sparse=True),
        }
        labels = np.zeros((BATCH, 25))
        labels[0, [0, 7]] = 1
        labels[1, 12] = 1
        audio = t(arrays["audio"], grad=True)
        sample = {
            "audio": audio,
            "video_s": t(arrays["frames"]),
            "video_st": t(arrays["snippets"]),
            "label": torch.from_numpy(labels),
        }
        outputs, calls = [], []
        net.register_forward_hook(lambda m, a, out: outputs.append([x.clone() for x in out]))
        optimizer = _Optimizer(net, audio)
        args = types.SimpleNamespace(log_interval=1)
        loader = _Loader([sample])
        main.train(args, net, loader, optimizer, _BCE(calls), epoch=1)
    video, audio_probs, visual_probs, frame_probs = outputs[0]
    arrays |= {
        "labels": labels,
        "video_probs": n(video),
        "audio_probs": n(audio_probs),
        "visual_probs": n(visual_probs),
        "frame_probs": n(frame_probs),
        "audio_target": n(calls[0][1]),
        "visual_target": n(calls[1][1]),
        "loss_terms": np.array([float(c[2]) for c in calls]),
        "grad/audio": n(optimizer.grads.pop("audio")),
    } | gradient_probes(optimizer.grads, meta)
    return arrays, meta | {"constructor": "nets.net_audiovisual.MMIL_Net()"}


def _metric_cases(draw: np.random.RandomState) -> np.ndarray:
    """``(n, 2, 2, 25, 10)`` prediction and truth (audio, visual) per video.

    20 edge cases (empty, full, equal, shifted, IoU exactly 0.5, split events) then 40
    random videos with a few runs per class.
    """
    cases = []

    def case(pa, pv, ga, gv):
        cases.append(np.stack([np.stack([pa, pv]), np.stack([ga, gv])]))

    zero, full = np.zeros((25, 10), np.int64), np.ones((25, 10), np.int64)
    row = np.zeros((25, 10), np.int64)
    row[3, 2:6] = 1
    half = np.zeros((25, 10), np.int64)
    half[3, 2:4] = 1  # IoU 0.5 with row
    shifted = np.roll(row, 1, axis=1)
    split = row.copy()
    split[3, 4] = 0
    other = np.zeros((25, 10), np.int64)
    other[7, :] = 1
    for pa, pv, ga, gv in [
        (zero, zero, zero, zero),
        (full, full, full, full),
        (zero, zero, row, row),
        (row, row, zero, zero),
        (full, zero, row, other),
        (row, row, row, row),
        (half, row, row, half),
        (shifted, row, row, shifted),
        (split, row, row, split),
        (other, row, row, other),
        (row + other, other, row, other),
        (zero, other, row, zero),
        (half, half, row, row),
        (split, split, half, half),
        (full, full, zero, zero),
        (row, zero, zero, row),
        (shifted, split, half, other),
        (other, other, other, other),
        (row, other, split, shifted),
        (np.roll(half, 5, axis=1), half, half, row),
    ]:
        case(pa, pv, ga, gv)
    for _ in range(40):
        tracks = []
        for _ in range(4):
            grid = np.zeros((25, 10), np.int64)
            for c in draw.choice(25, size=draw.randint(0, 4), replace=False):
                for _ in range(draw.randint(1, 3)):
                    start = draw.randint(0, 10)
                    grid[c, start : start + draw.randint(1, 6)] = 1
            tracks.append(grid)
        case(*tracks)
    return np.array(cases, dtype=np.int64)


def make_avvp_metrics(root: Path) -> tuple[dict, dict]:
    """``utils.eval_metrics.segment_level`` and ``event_level`` on edge and random cases."""
    with official_code(root):
        metrics = import_file(root / "utils" / "eval_metrics.py", "avvp_eval_metrics")
        cases = _metric_cases(np.random.RandomState(SEED + 6))
        scores = []
        for (pa, pv), (ga, gv) in cases:
            so_av, gt_av = pa * pv, ga * gv
            segment = metrics.segment_level(pa, pv, so_av, ga, gv, gt_av)
            event = metrics.event_level(pa, pv, so_av, ga, gv, gt_av)
            scores.append([*segment, *event])
    arrays = {"pred": cases[:, 0].astype(np.int8), "gt": cases[:, 1].astype(np.int8)}
    arrays["scores"] = np.array(scores, dtype=np.float64)  # (n, 8): f_a, f_v, f, f_av x 2
    return arrays, {"functions": "utils.eval_metrics.segment_level, event_level"}


# ---------------------------------------------------------------- main
MAKERS = {
    "ave": ("ave", make_ave),
    "psp_full": ("psp", make_psp_full),
    "psp_weak": ("psp", make_psp_weak),
    "cmran_sel": ("cmran", make_cmran_sel),
    "cmran_wsel": ("cmran", make_cmran_wsel),
    "han": ("avvp", make_han),
    "avvp_metrics": ("avvp", make_avvp_metrics),
}


def commit_of(root: Path, given: dict[str, str], key: str) -> str:
    if key in given:
        return given[key]
    found = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if found.returncode != 0:
        raise SystemExit(
            f"{root}: expected a git checkout (to name its commit) or --commit {key}=<sha>, "
            f"found: {found.stderr.strip()}"
        )
    return found.stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for key, repo in (("ave", "ave"), ("psp", "psp_full"), ("cmran", "cmran_sel"), ("avvp", "han")):
        parser.add_argument(f"--{key}", type=Path, help=f"checkout of {common.REPOS[repo]}")
    parser.add_argument("--out", type=Path, default=common.FIXTURES, help="fixture folder")
    parser.add_argument(
        "--commit",
        action="append",
        default=[],
        metavar="KEY=SHA",
        help="the commit of a checkout without .git (KEY: ave, psp, cmran, avvp)",
    )
    args = parser.parse_args(argv)
    given = dict(item.split("=", 1) for item in args.commit)
    torch.manual_seed(SEED)
    made = 0
    for name, (key, make) in MAKERS.items():
        root = getattr(args, key)
        if root is None:
            continue
        if not root.is_dir():
            raise SystemExit(f"--{key}: expected a checkout folder, found {root}")
        commit = commit_of(root, given, key)
        arrays, meta = make(root.resolve())
        meta |= {"repo": common.REPOS[name], "commit": commit, "torch": torch.__version__}
        path = common.save(name, arrays, meta, args.out)
        print(f"{path}: {path.stat().st_size / 1e3:.0f} kB ({common.REPOS[name]} @ {commit[:12]})")
        made += 1
    if not made:
        raise SystemExit("give at least one checkout: --ave, --psp, --cmran or --avvp")


if __name__ == "__main__":
    main()
