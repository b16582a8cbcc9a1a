"""Which of CMRAN's audio paths carries the sound's class: the swap of ``bench.modality_swap``,
one path at a time.

The audio features enter CMRAN (seed 001's compared method, ``pipeline/models/cmran.py``)
by three paths, and by no other:

- **attention**: the audio-guided spatial-channel attention (AGSCA), which pools each
  segment's 7x7 visual map;
- **audio query**: the audio stream, whose cross-modal relation attention (CMRA) queries
  the visual stream;
- **audio memory**: the audio's intra-modal encoding (ITR), which the visual stream's CMRA
  attends over.

The bench takes the test videos whose event spans every segment, each paired with a video
of another class (as ``bench.modality_swap`` does, with the same pairing), and scores each
video with its own audio everywhere except on a chosen set of paths, which get the
partner's audio. Every one of the 8 sets is scored. The empty set is the unmixed video; the
full set is ``bench.modality_swap``'s mixed video, exactly. For each set it prints the share
of the segments that name the sound's class (the partner's) and the look's class (the
video's own).

It then prints, on the unmixed videos, how much of each of CMRAN's three attentions goes to
the audio segments: the visual stream's CMRA (over ``[audio; visual]``), the audio stream's
CMRA (over ``[visual; audio]``) and the audio-video interaction (over ``[audio; visual]``):
the attention weights, averaged over the heads, summed over the audio keys and averaged over
the queries. A weight is not an effect (the values and the residuals differ in size), so
this describes where each attention looks, beside the swaps, which measure the effect. The
same shares of a freshly initialised CMRAN of the checkpoint's hyperparameters (seed 0) are
printed beside them: where training, not the inputs, sends the attention.

Usage, from a workspace root whose model is CMRAN, after ``dvc repro evaluate@sel`` (or
``evaluate@wsel`` with ``--task wsel``; or in an experiment's checkout)::

    python -m bench.cmran_audio_paths [--task sel|wsel] [--seed 0]
"""

import argparse
import itertools
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from bench.modality_swap import OUTCOMES, TASKS, outcome_shares, predict, swap_videos
from pipeline.config import paths
from pipeline.data import store
from pipeline.errors import PipelineError
from pipeline.models import build_model
from pipeline.models.cmran import CMRAN
from pipeline.training.checkpoint import load_checkpoint

AUDIO_PATHS: dict[str, Callable[[CMRAN], nn.Module]] = {
    "attention": lambda model: model.attention,
    "audio query": lambda model: model.streams["audio"]["query_input"],
    "audio memory": lambda model: model.streams["audio"]["itr_input"],
}


@contextmanager
def audio_on_paths(model: CMRAN, audio: torch.Tensor, names: Iterable[str]):
    """Within the block, the modules of the :data:`AUDIO_PATHS` ``names`` take ``audio``
    ``(B, T, d_a)`` as their audio input, whatever audio the model is called with.

    Raises:
        PipelineError: ``model`` is not a CMRAN, a name is not a path, or (on the call)
            the model's audio input has another shape than ``audio``.
    """
    if not isinstance(model, CMRAN):
        found = type(model).__name__
        raise PipelineError(f"cmran_audio_paths: expected a CMRAN model, found {found}")
    unknown = sorted(set(names) - set(AUDIO_PATHS))
    if unknown:
        raise PipelineError(
            f"cmran_audio_paths: unknown audio path {unknown}; expected one of {list(AUDIO_PATHS)}"
        )

    def substitute(_module: nn.Module, args: tuple) -> tuple:
        if args[0].shape != audio.shape:
            raise PipelineError(
                f"cmran_audio_paths: expected audio of shape {tuple(audio.shape)} on the "
                f"swapped paths, found {tuple(args[0].shape)}"
            )
        return (audio, *args[1:])

    hooks = [AUDIO_PATHS[name](model).register_forward_pre_hook(substitute) for name in names]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def memory_share(attention: nn.MultiheadAttention, query: torch.Tensor, keys: torch.Tensor):
    """``(B, T)``: the attention weight (mean of the heads) that each of the ``(B, T, d)``
    queries puts on the first half of the ``(B, 2T, d)`` keys (the memory, in CMRAN)."""
    weights = attention(query, keys, keys, need_weights=True, average_attn_weights=True)[1]
    return weights[..., : keys.shape[1] // 2].sum(dim=-1)  # (B, T)


def attention_modules(model: CMRAN) -> dict[str, tuple[nn.MultiheadAttention, bool]]:
    """CMRAN's attentions by name, each with whether its memory (the first half of its
    keys) is the audio."""
    modules = {}
    for stream, audio_first in (("visual", True), ("audio", False)):
        for i, layer in enumerate(model.streams[stream]["cmra"]):
            modules[f"{stream} stream CMRA {i}"] = (layer.attention, audio_first)
    modules["audio-video interaction"] = (model.interaction.attention, True)
    return modules


@torch.no_grad()
def attention_on_audio(model: CMRAN, audio: torch.Tensor, visual: torch.Tensor):
    """Each of :func:`attention_modules`' share of attention on the audio keys, averaged over
    the ``(B, T)`` queries of the videos ``(audio, visual)``; the model's outputs are left as
    they are."""
    shares, hooks, busy = {}, [], set()

    def measure(name: str, audio_first: bool):
        def hook(module, args, _kwargs, _output):
            if module in busy:  # the hook's own call of the module
                return
            busy.add(module)
            try:
                first = memory_share(module, *args[:2]).mean().item()
            finally:
                busy.discard(module)
            shares[name] = first if audio_first else 1 - first

        return hook

    modules = attention_modules(model)
    for name, (module, audio_first) in modules.items():
        hook = measure(name, audio_first)
        hooks.append(module.register_forward_hook(hook, with_kwargs=True))
    try:
        model(audio, visual)
    finally:
        for hook in hooks:
            hook.remove()
    return {name: shares[name] for name in modules}


def path_sets() -> list[tuple[str, ...]]:
    """Every subset of :data:`AUDIO_PATHS`, from the empty set to the full one."""
    names = list(AUDIO_PATHS)
    return [s for k in range(len(names) + 1) for s in itertools.combinations(names, k)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=TASKS, default="sel", help="whose checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairing")
    args = parser.parse_args(argv)
    model, meta = load_checkpoint(paths.checkpoint(args.task), torch.device("cpu"))  # eval mode
    items, classes, partners = swap_videos(model, args.seed)
    audio, visual = items["audio"], items["visual"]  # (n, T, d_a), (n, T, ...)
    swapped = audio[partners]  # (n, T, d_a)
    print(f"{len(classes)} test videos with a whole-video event; partner's audio on:")
    print("| paths | " + " | ".join(OUTCOMES) + " |")
    print("|---|" + "---:|" * len(OUTCOMES))
    for names in path_sets():
        with audio_on_paths(model, swapped, names):
            predictions = predict(model, audio, visual, batch=len(audio))  # (n, T)
        shares = outcome_shares(predictions, classes, classes[partners], store.BACKGROUND)
        cells = " | ".join(f"{100 * v:.1f}" for v in shares.values())
        print(f"| {' + '.join(names) or 'none'} | {cells} |")
    torch.manual_seed(0)
    fresh = build_model(meta["name"], **meta["kwargs"]).eval()
    trained_shares = attention_on_audio(model, audio, visual)
    fresh_shares = attention_on_audio(fresh, audio, visual)
    print("\nattention on the audio segments, unmixed videos (trained; freshly initialised):")
    for name, share in trained_shares.items():
        print(f"  {name}: {100 * share:.1f} %; {100 * fresh_shares[name]:.1f} %")


if __name__ == "__main__":
    main()
