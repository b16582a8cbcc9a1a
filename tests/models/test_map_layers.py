"""Row-block layers of the map models: equal to the composed layers, gradients, dropout."""

import pytest
import torch
import torch.nn.functional as F

from pipeline.models import map_layers
from pipeline.models.map_layers import relu_dropout, relu_mlp, row_blocks


def weights(generator: torch.Generator, dtype=torch.float64):
    u = torch.randn(6, 5, generator=generator, dtype=dtype, requires_grad=True)
    b = torch.randn(6, generator=generator, dtype=dtype, requires_grad=True)
    w = torch.randn(3, 6, generator=generator, dtype=dtype, requires_grad=True)
    return u, b, w


def test_row_blocks_cover_every_row_once(monkeypatch) -> None:
    monkeypatch.setattr(map_layers, "ROW_BLOCK", 4)
    cpu = torch.device("cpu")
    assert row_blocks(10, cpu) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert row_blocks(0, cpu) == []
    assert row_blocks(10, torch.device("meta")) == [slice(0, 10)]


@pytest.mark.parametrize("rows", [1, 7, 8, 21])
def test_relu_mlp_equals_the_composed_layers_in_float64(monkeypatch, rows) -> None:
    monkeypatch.setattr(map_layers, "ROW_BLOCK", 4)  # 1 to 6 blocks, the last one short
    generator = torch.Generator().manual_seed(rows)
    x = torch.randn(3, rows, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    u, b, w = weights(generator)
    out = relu_mlp(x, u, b, w)
    expected = F.linear(torch.relu(F.linear(x, u, b)), w)
    assert out.shape == (3, rows, 3)
    assert torch.allclose(out, expected, rtol=0, atol=1e-12)
    grad = torch.randn(out.shape, generator=generator, dtype=torch.float64)
    got = torch.autograd.grad(out, (x, u, b, w), grad)
    want = torch.autograd.grad(expected, (x, u, b, w), grad)
    for a, e in zip(got, want, strict=True):
        assert torch.allclose(a, e, rtol=0, atol=1e-12)


def test_relu_mlp_gradcheck_and_no_input_gradient_when_not_needed(monkeypatch) -> None:
    monkeypatch.setattr(map_layers, "ROW_BLOCK", 3)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(relu_mlp, (x, *weights(generator)))
    u, b, w = weights(generator)
    relu_mlp(x.detach(), u, b, w).sum().backward()  # data input: only the weights' gradients
    assert u.grad is not None and b.grad is not None and w.grad is not None


def test_relu_mlp_runs_in_the_autocast_precision() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, generator=generator)
    u, b, w = (t.detach().float().requires_grad_() for t in weights(generator))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = relu_mlp(x, u, b, w)
    assert out.dtype == torch.bfloat16
    expected = F.linear(torch.relu(F.linear(x, u, b)), w)
    assert torch.allclose(out.float(), expected, rtol=0.05, atol=0.05)
    out.float().sum().backward()
    assert u.grad.dtype == torch.float32  # the parameters' gradients in their own precision


def test_relu_dropout_keeps_one_minus_p_scaled_and_passes_gradient_there() -> None:
    torch.manual_seed(0)
    x = torch.randn(200_000, dtype=torch.float64, requires_grad=True)
    out = relu_dropout(x, 0.2, training=True)
    positive = x > 0
    kept = out > 0
    assert not (kept & ~positive).any()  # only ReLU-positive elements survive
    assert torch.allclose(out[kept], x[kept] / 0.8, rtol=0, atol=1e-15)
    share = kept.sum().item() / positive.sum().item()
    assert share == pytest.approx(0.8, abs=5 * (0.8 * 0.2 / positive.sum().item()) ** 0.5)
    out.sum().backward()
    assert torch.equal(x.grad, kept.double() / 0.8)


def test_relu_dropout_is_relu_outside_training_or_without_dropout() -> None:
    x = torch.randn(50, dtype=torch.float64)
    assert torch.equal(relu_dropout(x, 0.2, training=False), torch.relu(x))
    assert torch.equal(relu_dropout(x, 0.0, training=True), torch.relu(x))
