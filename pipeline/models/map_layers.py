r"""Layers over every region of the visual maps, computed in row blocks that stay in cache.

The map models (PSP, CMRAN) pass each of the :math:`N = B \cdot T \cdot 49` regions of the
7x7 maps through a wide fully connected layer with ReLU and then a narrow one. Composed
from PyTorch's layers, each step reads and writes an ``(N, hidden)`` tensor in memory (the
pre-activation, the ReLU's output, their gradients); on a CPU these passes cost as much as
the matrix products. :func:`relu_mlp` computes the same function block by block of rows, so
that a block's hidden layer is produced and consumed while it is in cache, and writes its
backward by hand the same way. The values are those of the composition (to float64 rounding:
``tests/models/test_map_layers.py``); only the order of the sums over rows differs.
:func:`relu_dropout` fuses the ReLU and the dropout after CMRAN's visual adapter, with
cheaper random draws.
"""

import torch
from torch.autograd.function import once_differentiable

F32 = torch.float32
ROW_BLOCK = 4096  # rows per block: 8 MiB for a hidden layer of 512 floats (fits the L3 cache)


def row_blocks(n: int, device: torch.device) -> list[slice]:
    """Slices of ``ROW_BLOCK`` rows covering ``range(n)`` on a CPU; one slice elsewhere.

    (A GPU's caches are no larger than a block, and its kernels want the whole matrix.)
    """
    block = ROW_BLOCK if device.type == "cpu" else max(n, 1)
    return [slice(start, min(start + block, n)) for start in range(0, n, block)]


class _ReluMLP(torch.autograd.Function):
    """``relu(x U^T + b) W^T`` over row blocks; the ReLU output is kept for backward.

    The kept ReLU output is a list of blocks, not one ``(N, H)`` tensor: glibc serves
    allocations of up to 32 MiB from memory it keeps, larger ones from fresh pages whose
    first writes fault (about a tenth of a step at batch 64).
    """

    @staticmethod
    def forward(ctx, x, u_weight, u_bias, w_weight):  # noqa: D102 - see relu_mlp
        out = x.new_empty(x.shape[0], w_weight.shape[0])  # (N, O)
        hidden = []
        for rows in row_blocks(x.shape[0], x.device):
            block = torch.addmm(u_bias, x[rows], u_weight.t()).relu_()  # (n, H)
            torch.mm(block, w_weight.t(), out=out[rows])
            hidden.append(block)
        ctx.save_for_backward(x, u_weight, w_weight, *hidden)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        x, u_weight, w_weight, *hidden = ctx.saved_tensors
        grad_out = grad_out.contiguous()  # (N, O)
        need_x = ctx.needs_input_grad[0]
        grad_x = torch.empty_like(x) if need_x else None  # (N, C)
        grad_u = torch.zeros_like(u_weight)  # (H, C)
        grad_b = u_weight.new_zeros(u_weight.shape[0])  # (H,)
        grad_w = torch.zeros_like(w_weight)  # (O, H)
        for rows, block in zip(row_blocks(x.shape[0], x.device), hidden, strict=True):
            grad_w.addmm_(grad_out[rows].t(), block)
            grad_block = torch.ops.aten.threshold_backward(grad_out[rows] @ w_weight, block, 0)
            grad_u.addmm_(grad_block.t(), x[rows])  # grad_block: (n, H), zero where ReLU was
            grad_b += grad_block.sum(dim=0)
            if need_x:
                torch.mm(grad_block, u_weight, out=grad_x[rows])
        return grad_x, grad_u, grad_b, grad_w


def relu_mlp(
    x: torch.Tensor, u_weight: torch.Tensor, u_bias: torch.Tensor, w_weight: torch.Tensor
) -> torch.Tensor:
    r""":math:`\mathrm{ReLU}(x U^T + b) W^T` of ``(..., C)`` rows, in cache-sized row blocks.

    Equal to ``F.linear(F.relu(F.linear(x, U, b)), W)``. Under autocast the four tensors
    are cast to the autocast precision first (as ``F.linear`` would cast them); the blocks
    then run in it.

    Args:
        x: ``(..., C)`` rows.
        u_weight: ``(H, C)`` weight :math:`U` of the wide layer.
        u_bias: ``(H,)`` its bias :math:`b`.
        w_weight: ``(O, H)`` weight :math:`W` of the narrow bias-free layer.

    Returns:
        ``(..., O)``.
    """
    tensors = (x, u_weight, u_bias, w_weight)
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        tensors = tuple(tensor.to(dtype) for tensor in tensors)
        with torch.autocast(device, enabled=False):
            return relu_mlp(*tensors)
    x, u_weight, u_bias, w_weight = tensors
    flat = x.reshape(-1, x.shape[-1]).contiguous()  # (N, C)
    out = _ReluMLP.apply(flat, u_weight, u_bias, w_weight)  # (N, O)
    return out.view(*x.shape[:-1], w_weight.shape[0])


class _ReluDropout(torch.autograd.Function):
    """``dropout(relu(x), p)``, keeping only the output for backward."""

    @staticmethod
    def forward(ctx, x, p):  # noqa: D102 - see relu_dropout
        scale = 1 / (1 - p)
        # Draws in float32 at least (a bf16 draw would round the threshold); each element
        # keeps scale with probability 1 - p, else 0.
        draws = torch.rand(x.shape, device=x.device, dtype=torch.promote_types(x.dtype, F32))
        keep = draws.ge_(p).mul_(scale)
        out = torch.relu(x).mul_(keep)
        ctx.scale = scale
        ctx.save_for_backward(out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        (out,) = ctx.saved_tensors
        # out > 0 exactly where x > 0 and the element was kept (and then out = scale x)
        return torch.ops.aten.threshold_backward(grad_out, out, 0).mul_(ctx.scale), None


def relu_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    r"""``F.dropout(F.relu(x), p, training)``, with cheaper draws on a CPU.

    Each element is kept (and scaled by :math:`1/(1-p)`) when a uniform draw in
    :math:`[0, 1)` is at least :math:`p`: probability :math:`1 - p`, as in ``F.dropout``,
    whose Bernoulli draws cost about three times as much on a CPU (``bernoulli_`` 249 ms,
    ``rand_like`` 85 ms on a ``(32, 10, 49, 512)`` float32 tensor, one thread of the loaded
    2-core machine); the draws themselves (the random stream) differ from ``F.dropout``'s.
    Only the output is kept for backward: the gradient passes where it is positive,
    scaled by :math:`1/(1-p)`.

    Args:
        x: any tensor.
        p: the probability of zeroing an element, in ``[0, 1)``.
        training: apply dropout; otherwise only the ReLU.
    """
    if not training or p == 0:
        return torch.relu(x)
    return _ReluDropout.apply(x, p)
