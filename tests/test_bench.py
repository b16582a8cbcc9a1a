"""The benches compute what they claim: DPNet FLOPs, visual-file reads, the scale bench."""

import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from bench import scale
from bench.data_once import run_traced, visual_reads
from bench.dpnet_throughput import (
    AUDIO_DIM,
    VISUAL_DIM,
    counted_step_flops,
    dpnet_step_flops,
    make_batch,
)
from bench.map_models_throughput import create_store, loader_run
from pipeline.data import store
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.models import build_model


@pytest.mark.parametrize(("hidden", "blocks", "kernel"), [(32, 1, 3), (48, 3, 2), (16, 4, 5)])
def test_analytic_step_flops_equal_the_operator_count(hidden, blocks, kernel):
    torch.manual_seed(0)
    size = {"hidden": hidden, "blocks": blocks, "kernel": kernel}
    model = build_model("dpnet", audio_dim=AUDIO_DIM, visual_dim=VISUAL_DIM, **size)
    counted = counted_step_flops(model, make_batch(4))
    assert dpnet_step_flops(4, hidden, blocks, kernel) == pytest.approx(counted, rel=2e-3)


STRACE_LOG = """\
100 execve("/venv/bin/dvc", ["dvc", "repro"], 0x7ffd /* 30 vars */) = 0
100 clone3({flags=CLONE_VM, ...}, 88) = 101
101 pread64(7</w/data/ave/visual_feature.h5>, ""..., 1048576, 0) = 1048576
100 clone(child_stack=NULL, flags=SIGCHLD) = 200
200 execve("/bin/sh", ["/bin/sh", "-c", "python -m stages.pool"], 0x1 /* 31 vars */) = 0
200 clone(child_stack=NULL, flags=SIGCHLD) = 201
201 execve("/venv/bin/python", ["python", "-m", "stages.pool"], 0x2 /* 31 vars */) = 0
201 pread64(3</w/data/ave/visual_feature_noisy.h5>, ""..., 4096, 0 <unfinished ...>
101 read(8</w/data/ave/audio_feature.h5>, ""..., 65536) = 65536
201 <... pread64 resumed>) = 4096
201 read(4</w/data/ave/visual_feature.h5>, ""..., 65536) = 100
300 execve("/venv/bin/python", ["python", "-m", "stages.evaluate", "sel"], 0x3) = 0
300 read(3</w/data/pooled/visual_feature.npy>, ""..., 65536) = 65536
"""


def test_visual_reads_are_counted_per_process_from_an_strace_log(tmp_path):
    (tmp_path / "log").write_text(STRACE_LOG)
    # dvc's hashing thread counts for dvc, the pool stage's resumed read for the stage
    assert visual_reads(tmp_path / "log") == {"dvc": 1048576, "pool": 4096 + 100}


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_traced_stage_process_is_named_and_its_visual_reads_counted(tmp_path, monkeypatch):
    # the real strace output: a stage's argv must be readable, or its reads go to "other"
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "__init__.py").write_text("")
    reader = "open('visual_feature.h5', 'rb').read()\nopen('audio_feature.h5', 'rb').read()\n"
    (tmp_path / "stages" / "reader.py").write_text(reader)
    (tmp_path / "visual_feature.h5").write_bytes(b"v" * 5000)
    (tmp_path / "audio_feature.h5").write_bytes(b"a" * 3000)
    monkeypatch.chdir(tmp_path)
    run_traced([sys.executable, "-m", "stages.reader"], tmp_path / "log")
    assert visual_reads(tmp_path / "log") == {"reader": 5000}


def test_scale_bench_runs_every_stage_of_the_pipeline():
    # a stage missing from the chain fails the stages after it (the bench once lacked pool);
    # the bench measures the AVEL task at AVE size, so the AVVP task's avvp_* stages are not in
    # it, nor model_code, whose fingerprint only DVC reads (no stage opens data/model_code.json)
    stages = yaml.safe_load((Path(scale.REPO) / "dvc.yaml").read_text())["stages"]
    avel = [name for name in stages if not name.startswith("avvp_") and name != "model_code"]
    chain = {stage for stage, _ in scale.CHAIN}
    assert chain == {name.removesuffix("_sel").removesuffix("_wsel") for name in avel}


def test_scale_bench_rewrites_features_as_float64(tmp_path):
    path = tmp_path / "visual_feature.h5"
    data = np.arange(2 * 10 * 3, dtype=np.float32).reshape(2, 10, 3)
    store.write_array(path, store.FEATURE_KEY, data)
    scale.to_float64(path)
    with h5py.File(path) as h5:
        assert h5[store.FEATURE_KEY].dtype == np.float64
        assert h5[store.FEATURE_KEY].chunks is None  # contiguous, like the official file
        assert np.array_equal(h5[store.FEATURE_KEY][()], data)


def test_scale_bench_counts_flops_and_operators():
    counts = {}
    with scale.counting(counts):
        torch.ones(4, 3) @ torch.ones(3, 5)
    assert counts == {"flop": 2 * 4 * 3 * 5, "ops": 3}  # two ones, one product


def test_scale_bench_projects_a_full_epoch_from_bounded_ones():
    epochs = [
        {"train_s": 9.0, "steps": 2, "full_steps": 10, "val_s": 1.0, "val_full_s": 4.0},
        {"train_s": 4.0, "steps": 2, "full_steps": 10, "val_s": 1.0, "val_full_s": 4.0},
    ]
    figures = scale.epoch_figures(epochs)  # the second epoch: 2 s per step
    assert figures["s_per_epoch"] == 2.0 * 10 + 4.0
    assert figures["loops_s"] == 9.0 + 1.0 + 4.0 + 1.0
    passes = [{"s": 2.0, "done": 10, "total": 40}, {"s": 1.0, "done": 5, "total": 5}]
    assert scale.pass_figures(passes) == {"passes_s": 3.0, "passes_full_s": 9.0}


def test_scale_bench_gpu_time_is_compute_or_launches_whichever_is_slower():
    assert scale.gpu_seconds({"flop": 4e12, "ops": 10}, tflops=2.0, launch_s=1e-3) == 2.0
    assert scale.gpu_seconds({"flop": 1e9, "ops": 3000}, tflops=2.0, launch_s=1e-3) == 3.0


def test_scale_bench_bounds_only_the_steps_of_an_epoch():
    loader = make_loader(list(range(10)), 2, shuffle=True)
    bounded = scale._Bounded(loader, 3)
    assert len(bounded) == 5 and len(list(bounded)) == 3
    assert bounded.generator is loader.generator


SMALL_MAP_MODELS = {
    "psp": {"hidden": 4, "embed_hidden": 4, "attention_hidden": 4},
    "cmran": {"hidden": 8, "heads": 2, "av_heads": 2, "feedforward": 8, "attention_hidden": 4},
}


@pytest.mark.parametrize("name", sorted(SMALL_MAP_MODELS))
def test_map_models_bench_times_steps_from_a_store_of_official_shapes(tmp_path, name):
    create_store(tmp_path, videos=3)
    dataset = AVEDataset(tmp_path, "train")
    assert len(dataset) == 3 and dataset[0]["visual"].shape == (store.T, 7, 7, 512)
    torch.manual_seed(0)
    model = build_model(name, **SMALL_MAP_MODELS[name])
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seconds, wait, videos = loader_run(model, optimizer, dataset, 2, steps=3, warmup=0, workers=0)
    assert 0 < wait < seconds  # the third step starts a second pass over the 3 videos
    assert videos == 2 + 1 + 2  # the pass's short last batch counts its one video
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
