"""CPU-side logic of the map models' benches: official_speed's rounds, the bf16 check."""

import pytest
import torch
from torch import nn

from bench import official_speed
from bench.map_models_throughput import count_flops, precision_drift
from pipeline.models.map_layers import relu_mlp
from pipeline.models.psp import PSP


class Constant(nn.Module):
    """Scores that do not depend on the precision: class 1 everywhere."""

    def forward(self, audio, visual):
        scores = torch.zeros(*audio.shape[:2], 3)
        scores[..., 1] = 1.0
        return scores


def batch(b: int = 2) -> dict:
    return {"audio": torch.rand(b, 10, 6), "visual": torch.rand(b, 10, 2, 2, 8)}


def test_precision_drift_is_zero_for_precision_free_scores_and_restores_training() -> None:
    model = Constant().train()
    assert precision_drift(model, batch()) == (0.0, 1.0)
    assert model.training


def test_precision_drift_of_psp_in_bf16_is_small_and_a_share() -> None:
    torch.manual_seed(0)
    small = {"audio_dim": 6, "visual_dim": 8, "n_regions": 4, "n_classes": 5, "hidden": 4}
    difference, same = precision_drift(PSP(**small), batch())
    assert 0 < difference < 0.1  # bf16 keeps 8 bits of mantissa
    assert 0 <= same <= 1


def test_alternate_times_every_step_in_turn_after_one_warm_up() -> None:
    calls = []
    steps = {"ours": lambda: calls.append("ours"), "official": lambda: calls.append("official")}
    seconds = official_speed.alternate(steps, rounds=3, per_round=2)
    assert calls == ["ours", "official"] + (["ours"] * 2 + ["official"] * 2) * 3
    assert [len(v) for v in seconds.values()] == [3, 3]
    assert all(len(pair) == 2 and min(pair) >= 0 for v in seconds.values() for pair in v)


def test_report_gives_median_rates_and_the_median_of_the_rounds_ratios() -> None:
    # (wall, CPU) seconds: wall ratios 2, 1.5, 4; CPU ratios 1, 3, 2
    ours = [(1.0, 1.0), (2.0, 1.0), (1.0, 2.0)]
    official = [(2.0, 1.0), (3.0, 3.0), (4.0, 4.0)]
    line = official_speed.report("psp", 64, {"ours": ours, "official": official}).split()
    assert line == ["psp", "64", "64.0", "21.3", "2.00", "2.00"]
    assert official_speed.report("psp", 64, {"ours": [(2.0, 1.0)]}).split() == ["psp", "64", "32.0"]


def test_cpu_shims_make_cuda_calls_no_ops_and_restore_them() -> None:
    tensor, module = torch.zeros(1), nn.Linear(1, 1)
    saved = torch.Tensor.cuda, nn.Module.cuda
    with official_speed.cpu_shims():
        assert tensor.cuda() is tensor and module.cuda() is module
    assert (torch.Tensor.cuda, nn.Module.cuda) == saved


def test_a_checkout_without_the_official_file_is_refused(tmp_path) -> None:
    with pytest.raises(SystemExit, match="expected the official checkout with fully_model.py"):
        official_speed.import_official(tmp_path, "fully_model", "fully_model.py")


def test_count_flops_counts_relu_mlps_in_place_backward_products() -> None:
    # forward: x (6, 4) -> U (5, 4) -> W (3, 5); backward: dW, dh; dU by addmm_ (no dx)
    x = torch.rand(6, 4)
    u_weight, u_bias = torch.rand(5, 4, requires_grad=True), torch.rand(5, requires_grad=True)
    w_weight = torch.rand(3, 5, requires_grad=True)
    flops = count_flops(lambda: relu_mlp(x, u_weight, u_bias, w_weight).sum().backward())
    forward = 2 * 6 * 4 * 5 + 2 * 6 * 5 * 3
    backward = 2 * 3 * 6 * 5 + 2 * 6 * 3 * 5 + 2 * 5 * 6 * 4
    assert flops == forward + backward


def test_the_gemm_step_does_every_row_of_its_product_once() -> None:
    assert count_flops(official_speed.gemm_step(torch.float32)) == official_speed.GEMM_FLOPS


def test_floor_line_gives_the_medians_of_the_rounds_floors_and_ratios() -> None:
    # GEMM rounds of 1, 2, 4 s: rates F, F/2, F/4; ours 2F FLOPs: floors 2, 4, 8 s
    flops = {"ours": 2 * official_speed.GEMM_FLOPS, "official": 2 * official_speed.GEMM_FLOPS}
    seconds = {"gemm": [(1.0, 1.0), (2.0, 2.0), (4.0, 4.0)]}
    seconds["official"] = [(6.0, 6.0), (6.0, 6.0), (4.0, 4.0)]  # ratios 3, 1.5, 0.5
    rate = official_speed.GEMM_FLOPS / 2 / 1e9
    line = official_speed.floor_line(flops, seconds)
    assert line.endswith(f"products at {rate:.0f} GFLOP/s: floor 4000 ms, official/floor 1.50")
    assert "official/floor" not in official_speed.floor_line({"ours": 1}, {"gemm": [(1, 1)]})


def test_under_runs_a_step_under_the_precisions_autocast() -> None:
    seen = []
    step = lambda: seen.append(torch.is_autocast_enabled("cpu"))  # noqa: E731
    official_speed.under("bf16", step)()
    official_speed.under("fp32", step)()
    assert seen == [True, False]
