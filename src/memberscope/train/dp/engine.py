"""Make a model and its optimizer private: DP's one entry point for the trainer.

:func:`make_private` picks the per-example gradient route, finds the noise multiplier, wraps
the optimizer in Opacus' noising optimizer, attaches Opacus' accountant and, when the settings
ask for them, white-box canaries (:mod:`.canaries`). It returns a :class:`PrivateTraining`,
which tells the training loop the four things DP changes in it:

1. the loss reduction (``loss_reduction``: "sum" in direct mode, else "mean"),
2. where the forward pass runs (:meth:`PrivateTraining.forward_context`),
3. the step after ``loss.backward()`` (:meth:`PrivateTraining.step`):
   :meth:`PrivateTraining.clip`, where direct mode clips and sums (in the other modes Opacus
   clips inside ``optimizer.step()``), then ``optimizer.step()``. Extra per-example gradients
   enter in ``clip``, before clipping, on every route: that is where the white-box canaries
   sampled for the step join the batch, and after the step they observe what it released,
4. a noise-only step for an empty Poisson batch (:meth:`PrivateTraining.noise_only_step`).

Where per-example gradients are clipped and summed, on each route:

* ``"direct"`` (ours, :mod:`.direct_clipping`): ``ClippedGradients.clip_and_sum`` computes every
  example's total norm from the recorded layer pieces, the factors min(1, C / (norm + 1e-6)),
  and writes the clipped sums into ``p.grad``; ``NoisingOptimizer`` then only adds noise.
* ``"hooks"``, ``"ew"``, ``"functorch"`` (Opacus): the backward pass leaves per-example
  gradients in ``p.grad_sample`` (N, *p.shape); ``DPOptimizer.step`` clips and sums them.

torch and opacus are imported at the top: this module is loaded only for DP training.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.grad_sample.utils import wrap_model
from opacus.optimizers import DPOptimizer
from opacus.validators import ModuleValidator

from memberscope.errors import InputError
from memberscope.train.dp.canaries import GradientCanaries, plan_gradient_canaries
from memberscope.train.dp.direct_clipping import (
    ClippedGradients,
    NoisingOptimizer,
    unsupported_parameters,
)
from memberscope.train.dp.grad_samplers import conv_weights_detached, use_layout_safe_samplers
from memberscope.train.dp.settings import DPSettings
from memberscope.train.dp.sparse_examples import SparseExamples


def grad_sample_route(dp: DPSettings, model: torch.nn.Module) -> str:
    """The per-example gradient route DP training takes: "auto" is "direct" where every
    trainable parameter sits in a layer direct clipping supports, else "hooks"; other modes
    are taken as given. Raises InputError for "direct" on a model it cannot handle."""
    mode = dp.grad_sample_mode
    if mode not in ("auto", "direct"):
        return mode
    unsupported = unsupported_parameters(model)
    if not unsupported:
        return "direct"
    if mode == "direct":
        raise InputError("grad_sample_mode 'direct' supports only parameters of Conv2d "
                         f"(ungrouped, zero padding) and Linear layers; got {unsupported[:3]}; "
                         "use 'auto' or 'hooks'")
    return "hooks"


def channels_last_allowed(route: str) -> bool:
    """Whether a route computes correct per-example gradients on channels_last activations:
    Opacus' "ew" mode unfolds convolutions with NCHW strides and is wrong on them; direct,
    hooks (with our layout-safe conv sampler) and functorch are layout-safe."""
    return route != "ew"


def noise_multiplier_for(dp: DPSettings, *, sample_rate: float, steps: int) -> float:
    """σ: ``dp.noise_multiplier``, or the σ whose ε after ``steps`` steps at ``sample_rate``
    is ``dp.target_epsilon`` at ``dp.delta`` under ``dp.accountant``."""
    if dp.noise_multiplier is not None:
        return float(dp.noise_multiplier)
    assert dp.target_epsilon is not None
    with warnings.catch_warnings():
        # RDP's search over orders warns at its edge; the bound stays valid.
        warnings.filterwarnings("ignore", message="Optimal order is the")
        return float(get_noise_multiplier(
            target_epsilon=dp.target_epsilon, target_delta=dp.delta, sample_rate=sample_rate,
            steps=steps, accountant=dp.accountant))


@dataclass
class PrivateTraining:
    """A model and optimizer made private by :func:`make_private`.

    Attributes
    ----------
    model : torch.nn.Module
        The user's model (never wrapped): predict and checkpoint with it.
    module : torch.nn.Module
        What the training forward pass calls: ``model`` itself in direct mode, else Opacus'
        ``GradSampleModule`` around it.
    optimizer : Opacus ``DPOptimizer`` (or our :class:`NoisingOptimizer`)
    accountant : Opacus accountant, stepped by the optimizer at every step
    route : "direct" | "hooks" | "ew" | "functorch"
    noise_multiplier : float
    clipper : ClippedGradients or None
        Direct mode's per-example clipping; None in Opacus' modes.
    canaries : GradientCanaries or None
        The white-box canaries auditing the run (``settings.canaries``), else None.
    """

    settings: DPSettings
    model: torch.nn.Module
    module: torch.nn.Module
    optimizer: Any
    accountant: Any
    route: str
    noise_multiplier: float
    clipper: ClippedGradients | None
    canaries: GradientCanaries | None = None

    @property
    def loss_reduction(self) -> str:
        """"sum" in direct mode (each example's own loss gradient reaches every layer output),
        "mean" in Opacus' modes."""
        return "sum" if self.clipper is not None else "mean"

    def forward_context(self) -> contextlib.AbstractContextManager[None]:
        """Where a training forward pass of :attr:`module` runs: in direct mode it records
        what per-example clipping needs; in hooks mode it skips the batch weight gradients of
        convolutions that DP discards; otherwise it does nothing."""
        if self.clipper is not None:
            return self.clipper.recording()
        if self.route == "hooks":
            return conv_weights_detached(self.model)
        return contextlib.nullcontext()

    def clip(self, extra_examples: Mapping[torch.Tensor, torch.Tensor | SparseExamples] | None
             = None) -> None:
        """Call between ``loss.backward()`` and ``optimizer.step()``: direct mode clips each
        example's gradient and sums them into ``p.grad`` here; Opacus' modes clip inside
        ``optimizer.step()`` from ``p.grad_sample``.

        ``extra_examples`` ({parameter of :attr:`model`: (k, *shape)} dense tensors or
        :class:`~memberscope.train.dp.sparse_examples.SparseExamples` of k examples;
        parameters left out count as 0) adds k per-example gradients, such as white-box
        canaries, that are clipped and summed exactly like the batch's own, on every route:
        direct mode passes them to ``ClippedGradients.clip_and_sum``; Opacus' modes append
        them (made dense) to ``p.grad_sample``.
        """
        if self.clipper is not None:
            self.clipper.clip_and_sum(self.settings.max_grad_norm, extra_examples)
            return
        if not extra_examples:
            return
        k = len(next(iter(extra_examples.values())))
        for param in self.model.parameters():
            if param.requires_grad:
                extra = extra_examples.get(param)
                if extra is None:
                    extra = param.new_zeros((k, *param.shape))
                elif isinstance(extra, SparseExamples):
                    extra = extra.to_dense()
                grad_sample = param.grad_sample  # type: ignore[attr-defined]
                param.grad_sample = torch.cat(  # type: ignore[attr-defined]
                    [grad_sample, extra.to(grad_sample.dtype)])

    def step(self) -> None:
        """Call after ``loss.backward()``, in place of ``optimizer.step()``: clip (with this
        step's canaries, if any, as extra examples), step, and let the canaries observe."""
        extra = self.canaries.draw().extra_examples if self.canaries is not None else None
        self.clip(extra)
        self.optimizer.step()
        if self.canaries is not None:
            self.canaries.observe()

    def noise_only_step(self) -> None:
        """A step on an empty Poisson batch: zero gradients plus noise, as the accountant
        assumes every step has (plus the canaries sampled for it, if any)."""
        extra = self.canaries.draw().extra_examples if self.canaries is not None else None
        self.optimizer.zero_grad(set_to_none=True)
        for param in self.model.parameters():
            if not param.requires_grad:
                continue
            if self.clipper is not None:
                param.grad = torch.zeros_like(param)
            else:
                param.grad_sample = torch.zeros(  # type: ignore[attr-defined]
                    (1, *param.shape), device=param.device)
        if extra:
            self.clip(extra)
        self.optimizer.step()
        if self.canaries is not None:
            self.canaries.observe()

    def epsilon(self) -> float:
        """ε spent so far at ``settings.delta`` (0 before the first step)."""
        if not self.accountant.history:
            return 0.0
        return float(self.accountant.get_epsilon(delta=self.settings.delta))


def make_private(model: torch.nn.Module, optimizer: torch.optim.Optimizer, dp: DPSettings, *,
                 sample_rate: float, expected_batch_size: int, steps: int,
                 generator: torch.Generator | None = None,
                 canary_seed: int = 0) -> PrivateTraining:
    """Make ``model`` and its ``optimizer`` private.

    Parameters
    ----------
    model : torch.nn.Module
        Already on its device and in its memory format; must pass Opacus' validator.
    optimizer : torch.optim.Optimizer
        Over ``model.parameters()``; becomes DP-Adam, DP-SGD, … .
    dp : DPSettings
    sample_rate : float
        Probability that an example joins a step (batch_size / N), for the accountant.
    expected_batch_size : int
        Divides the noisy sum of clipped gradients.
    steps : int
        Steps of the whole training, to find σ from ``dp.target_epsilon``.
    generator : torch.Generator, optional
        Draws the noise (on the model's device).
    canary_seed : int
        Seeds the white-box canaries' Poisson sampling when ``dp.canaries`` asks for them
        (who they are and which are included come from ``dp.canaries.seed``).

    Returns
    -------
    PrivateTraining
    """
    problems = ModuleValidator.validate(model, strict=False)
    if problems:
        raise InputError(f"model cannot be trained with DP: {problems[0]}")
    route = grad_sample_route(dp, model)
    noise_multiplier = noise_multiplier_for(dp, sample_rate=sample_rate, steps=steps)
    module: Any = model
    clipper = None
    optimizer_class: Any = DPOptimizer
    if route == "direct":
        # We clip and sum into p.grad; Opacus only adds the noise, averages and steps.
        clipper = ClippedGradients(model)
        optimizer_class = NoisingOptimizer
    else:
        module = wrap_model(model, route, batch_first=True, loss_reduction="mean")
    if route == "hooks":
        use_layout_safe_samplers(module)
    dp_optimizer = optimizer_class(optimizer, noise_multiplier=noise_multiplier,
                                   max_grad_norm=dp.max_grad_norm,
                                   expected_batch_size=expected_batch_size,
                                   loss_reduction="mean", generator=generator)
    accountant = create_accountant(dp.accountant)
    dp_optimizer.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=sample_rate))
    canaries = None
    if dp.canaries is not None and dp.canaries.white_box:
        canaries = _gradient_canaries(model, dp, sample_rate=sample_rate,
                                      noise_multiplier=noise_multiplier,
                                      expected_batch_size=expected_batch_size, seed=canary_seed)
    return PrivateTraining(settings=dp, model=model, module=module, optimizer=dp_optimizer,
                           accountant=accountant, route=route,
                           noise_multiplier=noise_multiplier, clipper=clipper,
                           canaries=canaries)


def _gradient_canaries(model: torch.nn.Module, dp: DPSettings, *, sample_rate: float,
                       noise_multiplier: float, expected_batch_size: int,
                       seed: int) -> GradientCanaries:
    assert dp.canaries is not None
    parameters = [p for p in model.parameters() if p.requires_grad]
    plan = plan_gradient_canaries(
        [p.numel() for p in parameters], dp.canaries.m, seed=dp.canaries.seed,
        gradient_norm=dp.canaries.gradient_scale * dp.max_grad_norm)
    return GradientCanaries(parameters, plan, sample_rate=sample_rate,
                            noise_multiplier=noise_multiplier, max_grad_norm=dp.max_grad_norm,
                            expected_batch_size=expected_batch_size, seed=seed)
