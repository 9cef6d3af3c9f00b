"""Per-example gradient clipping straight from the backward pass ("direct" grad-sample mode).

For models whose trainable parameters all sit in ``Conv2d`` (ungrouped, zero padding) and
``Linear`` layers, such as the codelab's CNNs and the MLP. Within
:meth:`ClippedGradients.recording`, each such layer runs its forward pass against
*detached* parameters, so autograd computes no batch gradient that DP would throw away, and
a hook on the layer's output tensor keeps what that layer's per-example gradients need. After
the backward pass, :meth:`ClippedGradients.clip_and_sum` sets each parameter's ``grad`` to
the sum over examples of its per-example gradient clipped to a total L2 norm (over all
parameters) of at most C, with Opacus' clipping factor ``min(1, C / (norm + 1e-6))``.
:class:`NoisingOptimizer` (Opacus' ``DPOptimizerFastGradientClipping``) then adds the noise,
averages and steps, and Opacus' accountant counts the step, as with any of its modes.

Compared with Opacus' ``GradSampleModule`` and ``DPOptimizer`` (hooks mode), this drops per
layer and step the full-backward-hook autograd nodes and their Python, the rescaling of every
output gradient by the batch size (the loss here is a sum, so output gradients already are
per-example gradients), the separate bias additions and reductions; and a ``Linear`` layer on
(N, in) inputs never materialises its (N, out, in) per-example gradients: their norms are
``|output grad| * |input|`` and their clipped sum is one matrix product.

The loss back-propagated inside the block must be the *sum* of the examples' losses.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from opacus.optimizers import DPOptimizerFastGradientClipping

from memberscope.train.dp.grad_samplers import conv2d_grad_sample, conv2d_products, weight_layout
from memberscope.train.dp.sparse_examples import SparseExamples

# Opacus' clipping factor min(1, C / (norm + STABILITY)).
STABILITY = 1e-6


def _supported(module: torch.nn.Module) -> bool:
    if type(module) is torch.nn.Linear:
        return True
    return (type(module) is torch.nn.Conv2d and module.groups == 1
            and module.padding_mode == "zeros")


def unsupported_parameters(model: torch.nn.Module) -> list[str]:
    """Names of ``model``'s trainable parameters that direct mode cannot handle (those outside
    ungrouped, zero-padded ``Conv2d`` and ``Linear`` layers); empty when it applies."""
    names = []
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad and not _supported(module):
                names.append(f"{module_name}.{name}" if module_name else name)
    return names


class _Materialized:
    """Per-example gradients held explicitly: {param: (N, *param.shape)} dense tensors."""

    def __init__(self, per_example: dict[Any, torch.Tensor]) -> None:
        self.n = len(next(iter(per_example.values())))
        self.dense = {param: grads.reshape(self.n, -1) for param, grads in per_example.items()}

    def squared_norms(self) -> torch.Tensor:
        parts = [torch.linalg.vector_norm(grads, dim=1).square() for grads in self.dense.values()]
        return parts[0] if len(parts) == 1 else torch.stack(parts).sum(dim=0)

    def clipped_sums(self, factors: torch.Tensor) -> dict[Any, torch.Tensor]:
        return {param: (factors @ grads).view_as(param) for param, grads in self.dense.items()}


class _ExtraExamples:
    """The extra examples of a step (:meth:`ClippedGradients.clip_and_sum`): dense ones as a
    :class:`_Materialized` piece, sparse ones (:class:`SparseExamples`, e.g. white-box
    canaries) added in place into the summed gradients once those exist."""

    def __init__(self, examples: Mapping[Any, torch.Tensor | SparseExamples]) -> None:
        dense = {param: grads for param, grads in examples.items()
                 if not isinstance(grads, SparseExamples)}
        self.dense = _Materialized(dense) if dense else None
        self.sparse = {param: grads for param, grads in examples.items()
                       if isinstance(grads, SparseExamples)}

    def squared_norms(self) -> torch.Tensor:
        parts = [grads.squared_norms() for grads in self.sparse.values()]
        if self.dense is not None:
            parts.append(self.dense.squared_norms())
        return parts[0] if len(parts) == 1 else torch.stack(parts).sum(dim=0)


class _ConvProducts:
    """A ``Conv2d``'s per-example gradients as :func:`conv2d_products` leaves them: one
    (N, K [+ 1], O) tensor for weight and bias, brought to the weight's layout only once
    summed."""

    def __init__(self, layer: torch.nn.Conv2d, products: torch.Tensor) -> None:
        self.layer, self.products = layer, products

    def squared_norms(self) -> torch.Tensor:
        return torch.linalg.vector_norm(self.products.flatten(1), dim=1).square()

    def clipped_sums(self, factors: torch.Tensor) -> dict[Any, torch.Tensor]:
        summed = (factors @ self.products.flatten(1)).view(self.products.shape[1:])
        window_size = self.layer.weight[0].numel()
        sums: dict[Any, torch.Tensor] = {
            self.layer.weight: weight_layout(self.layer, summed[:window_size]).contiguous()}
        if len(summed) > window_size:
            sums[self.layer.bias] = summed[window_size]
        return sums


class _LinearOuterProducts:
    """A ``Linear`` layer on (N, in) inputs: example i's weight gradient is the outer product
    of its (out,) output gradient g_i and (in,) input a_i, whose norm is |g_i| |a_i|."""

    def __init__(self, layer: torch.nn.Linear, inputs: torch.Tensor,
                 output_grads: torch.Tensor) -> None:
        self.layer, self.inputs, self.output_grads = layer, inputs, output_grads

    def squared_norms(self) -> torch.Tensor:
        grad_norms = torch.linalg.vector_norm(self.output_grads, dim=1).square()
        total = torch.zeros_like(grad_norms)
        if self.layer.weight.requires_grad:
            total += grad_norms * torch.linalg.vector_norm(self.inputs, dim=1).square()
        if self.layer.bias is not None and self.layer.bias.requires_grad:
            total += grad_norms
        return total

    def clipped_sums(self, factors: torch.Tensor) -> dict[Any, torch.Tensor]:
        sums: dict[Any, torch.Tensor] = {}
        if self.layer.weight.requires_grad:
            sums[self.layer.weight] = (self.output_grads * factors[:, None]).T @ self.inputs
        if self.layer.bias is not None and self.layer.bias.requires_grad:
            sums[self.layer.bias] = factors @ self.output_grads
        return sums


def _linear_per_example(layer: torch.nn.Linear, inputs: torch.Tensor,
                        output_grads: torch.Tensor) -> _Materialized:
    """Per-example gradients of a ``Linear`` on (N, ..., in) inputs, summed over the middle
    dimensions."""
    n = output_grads.shape[0]
    grads = output_grads.reshape(n, -1, layer.out_features)
    per_example = {}
    if layer.weight.requires_grad:
        per_example[layer.weight] = torch.bmm(grads.transpose(1, 2),
                                              inputs.reshape(n, -1, layer.in_features))
    if layer.bias is not None and layer.bias.requires_grad:
        per_example[layer.bias] = grads.sum(dim=1)
    return _Materialized(per_example)


class ClippedGradients:
    """Per-example clipping of one model's gradients, one batch at a time.

    >>> clipper = ClippedGradients(model)                      # doctest: +SKIP
    >>> with clipper.recording():                              # doctest: +SKIP
    ...     loss = F.cross_entropy(model(x), y, reduction="sum")
    >>> loss.backward()                                        # doctest: +SKIP
    >>> clipper.clip_and_sum(max_grad_norm=1.0)                # doctest: +SKIP
    """

    def __init__(self, model: torch.nn.Module) -> None:
        unsupported = unsupported_parameters(model)
        if unsupported:
            raise ValueError(f"direct clipping cannot handle parameters {unsupported[:3]}")
        self.model = model
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self._pieces: list[Any] = []

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Within the block, forward passes through the model's ``Conv2d`` and ``Linear``
        layers record, at backward time, what :meth:`clip_and_sum` needs; their parameters
        get no ``grad`` from that backward pass. Leaving the block restores the layers."""
        patched = []
        for module in self.model.modules():
            trainable = any(p.requires_grad for p in module.parameters(recurse=False))
            if trainable and "forward" not in vars(module):
                module.forward = functools.partial(
                    self._recorded_forward, module)
                patched.append(module)
        try:
            yield
        finally:
            for module in patched:
                del module.forward

    def clip_and_sum(self, max_grad_norm: float,
                     extra_examples: Mapping[torch.Tensor, torch.Tensor | SparseExamples]
                     | None = None) -> torch.Tensor:
        """Set every trainable parameter's ``grad`` to the sum over the recorded examples of
        its per-example gradient scaled by that example's clipping factor; returns the (N,)
        per-example gradient norms before clipping. Forgets the recorded batch.

        ``extra_examples`` ({parameter: (k, *parameter.shape)} dense tensors or
        :class:`SparseExamples` of k examples, e.g. white-box canary gradients; parameters
        left out count as 0) are k more examples, clipped and summed exactly like the
        recorded ones; the returned norms are then (N + k,), theirs last.
        With extra examples no backward pass need have been recorded (N = 0: a step of
        canaries only, on an empty Poisson batch).
        """
        pieces, self._pieces = self._pieces, []
        if not pieces and not extra_examples:
            raise RuntimeError("no backward pass was recorded since the last clip_and_sum")
        norms = torch.sqrt(sum(piece.squared_norms() for piece in pieces)) if pieces else \
            torch.zeros(0, device=self.parameters[0].device)
        n = len(norms)
        extra = _ExtraExamples(extra_examples) if extra_examples else None
        if extra is not None:
            norms = torch.cat([norms, torch.sqrt(extra.squared_norms())])
        factors = clipping_factors(norms, max_grad_norm)
        sums = [piece.clipped_sums(factors[:n]) for piece in pieces]
        if extra is not None and extra.dense is not None:
            sums.append(extra.dense.clipped_sums(factors[n:]))
        for param in self.parameters:
            param.grad = None
        for piece_sums in sums:
            for param, clipped in piece_sums.items():
                param.grad = clipped if param.grad is None else param.grad + clipped
        for param in self.parameters:
            if param.grad is None:  # a layer that took no part in this forward pass
                param.grad = torch.zeros_like(param)
        if extra is not None:
            # Every grad is a tensor made above for this step alone: add in place.
            for param, grads in extra.sparse.items():
                if not param.grad.is_contiguous():  # e.g. zeros in a channels_last layout
                    param.grad = param.grad.contiguous()
                grads.add_clipped_sum_(param.grad, factors[n:])
        return norms

    def _recorded_forward(self, layer: Any, inputs: torch.Tensor) -> torch.Tensor:
        weight, bias = layer.weight.detach(), _detached(layer.bias)
        if type(layer) is torch.nn.Conv2d:
            output = layer._conv_forward(inputs, weight, bias)
        else:
            output = F.linear(inputs, weight, bias)
        if not torch.is_grad_enabled():
            return output
        if not output.requires_grad:
            # The first layer's input needs no gradient: tie the output to the parameters so
            # that the backward pass still reaches it.
            params = [p for p in layer.parameters(recurse=False) if p.requires_grad]
            output = _TiedToParameters.apply(output, *params)
        saved_inputs = inputs.detach()

        def record(output_grads: torch.Tensor) -> None:
            self._pieces.append(_piece(layer, saved_inputs, output_grads))

        output.register_hook(record)
        return output


def clipping_factors(norms: torch.Tensor, max_grad_norm: float) -> torch.Tensor:
    """Opacus' per-example clipping factors min(1, C / (norm + 1e-6)) of (N,) norms."""
    return (max_grad_norm / (norms + STABILITY)).clamp(max=1.0)


def _piece(layer: torch.nn.Module, inputs: torch.Tensor, output_grads: torch.Tensor) -> Any:
    """What one layer's backward pass contributes to the clipping of one batch."""
    if type(layer) is torch.nn.Conv2d:
        if layer.weight.requires_grad:
            return _ConvProducts(layer, conv2d_products(layer, inputs, output_grads))
        return _Materialized(conv2d_grad_sample(layer, [inputs], output_grads))
    assert isinstance(layer, torch.nn.Linear)
    if inputs.ndim == 2:
        return _LinearOuterProducts(layer, inputs.to(output_grads.dtype), output_grads)
    return _linear_per_example(layer, inputs.to(output_grads.dtype), output_grads)


def _detached(param: torch.Tensor | None) -> torch.Tensor | None:
    return None if param is None else param.detach()


class _TiedToParameters(torch.autograd.Function):
    """Identity on its first argument whose result requires grad when the parameters do; the
    parameters get no ``grad`` from it."""

    @staticmethod
    def forward(ctx: Any, output: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        ctx.num_params = len(params)
        return output.view_as(output)

    @staticmethod
    def backward(ctx: Any, output_grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return (output_grad, *([None] * ctx.num_params))


class NoisingOptimizer(DPOptimizerFastGradientClipping):
    """Opacus' optimizer for already clipped gradients (noise, averaging, accounting hook,
    step), taking the clipped sums that :meth:`ClippedGradients.clip_and_sum` leaves in
    ``p.grad`` as they are: Opacus deep-copies every parameter's gradient each step (0.7 ms
    of a 20 ms step here), which these fresh tensors do not need."""

    def accumulate(self) -> None:
        for param in self.params:
            if param.summed_grad is None:
                param.summed_grad = param.grad
            else:
                param.summed_grad = param.summed_grad + param.grad
