"""White-box gradient canaries: audit a DP training run from that one run (issue 13).

Canary i is a fixed direction in parameter space: one coordinate j_i of the flattened trainable
parameters, drawn at random without replacement (within the largest parameter when it has room
for all m: fewer tensors touched per step). Each canary is included with probability ½
(seeded); an included canary joins every step's batch independently with the training's
sampling rate q, like a real example under Poisson sampling, and then contributes the
per-example gradient G·e_{j_i}, G = ``gradient_norm``, which goes through *the same clipping*
as the real examples' gradients (clipped to C, then summed, then noised). Added after clipping
it could not reveal a clipping bug; with G > C a run whose clipping is broken leaks each
canary's presence at G/C times the claimed signal.

The DP mechanism releases, each step, the noisy averaged gradient ĝ_t; at canary i's coordinate
y_t = ĝ_t[j_i]·B/C ≈ 1[i sampled] + σ·z_t + (real examples' gradients there)/C. Scores (higher =
more likely included), from the per-step history of y:

- ``"sum"``: Σ_t y_t — the plain sum of updates (for DP-SGD without momentum or weight decay
  the update is −lr·ĝ_t, so summing gradients or updates gives the same order);
- ``"likelihood_ratio"``: Σ_t log((1 − q) + q·exp((y_t − ½)/σ²)), the log likelihood ratio of
  "sampled with probability q at each step" against "never", for the idealised y_t;
- ``"centred_likelihood_ratio"`` (default): the same after removing the real gradients' drift
  at each coordinate, estimated by its median over steps shrunk towards 0 (empirical Bayes:
  by the share of the medians' spread across coordinates that their own noise does not
  explain). Where real gradients barely touch the canaries the shrinkage is ~0 and the score
  is the plain likelihood ratio (full centring would add the medians' noise and lose power);
  where they drift, e.g. a run whose noise is far below the claim, it centres fully.

Scores use only the released values, never the inclusion; any of them keeps the one-run bound
valid. ``updates`` records the parameter change at each canary coordinate too, whose sum is the
update-based score (for DP-Adam it is not linear in the gradient).

The hook into training is DP's one way in for extra examples,
:meth:`memberscope.train.dp.engine.PrivateTraining.clip` (``extra_examples``): each step
:meth:`memberscope.train.dp.engine.PrivateTraining.step` calls :meth:`GradientCanaries.draw`
and passes the sampled canaries' gradients, {parameter: (k, *shape)}, as extra examples of the
batch, clipped and summed with the real ones on every route (direct clipping sums them in
``ClippedGradients.clip_and_sum``; Opacus' modes append them to ``p.grad_sample`` and clip
them in ``optimizer.step()``). After the step :meth:`GradientCanaries.observe` reads ĝ_t and
the update at the canary coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from memberscope._seeding import stream_rng
from memberscope.errors import InputError, UnknownNameError
from memberscope.one_run import (
    METHODS,
    OneRunEpsilon,
    epsilon_audit_record,
    epsilon_one_run,
)

SCORES = ("sum", "likelihood_ratio", "centred_likelihood_ratio")
DEFAULT_SCORE = "centred_likelihood_ratio"


@dataclass(frozen=True)
class CanaryPlan:
    """Who the m canaries are: ``coordinates`` (m,) int64 positions in the flattened trainable
    parameters (in ``model.parameters()`` order), ``included`` (m,) bool, drawn from ``seed``;
    ``gradient_norm`` is G, each canary's gradient norm before clipping."""

    coordinates: np.ndarray
    included: np.ndarray
    gradient_norm: float
    seed: int

    def __post_init__(self) -> None:
        if self.coordinates.shape != self.included.shape or self.coordinates.ndim != 1:
            raise InputError(f"coordinates {self.coordinates.shape} and included "
                             f"{self.included.shape} must be (m,) each")
        if len(np.unique(self.coordinates)) != len(self.coordinates):
            raise InputError("canary coordinates must be distinct")
        if not self.gradient_norm > 0:
            raise InputError(f"gradient_norm must be > 0; got {self.gradient_norm}")

    @property
    def m(self) -> int:
        """Number of canaries."""
        return len(self.included)


def plan_gradient_canaries(parameter_sizes: Sequence[int], m: int, *, seed: int,
                           gradient_norm: float) -> CanaryPlan:
    """Draw m distinct coordinates and a fair coin per canary, from the stream
    ``(seed, "gradient-canaries")`` (:mod:`memberscope._seeding`).

    ``parameter_sizes`` are the trainable parameters' sizes, in order. The coordinates lie in
    the largest parameter when it has at least m entries (a step's canaries then touch one
    tensor: the fewest small operations per step), else anywhere."""
    sizes = [int(size) for size in parameter_sizes]
    total = sum(sizes)
    if not 1 <= m <= total:
        raise InputError(f"canaries m must be in [1, {total}] (the trainable parameters); "
                         f"got {m}")
    home = int(np.argmax(sizes))
    start, count = (sum(sizes[:home]), sizes[home]) if sizes[home] >= m else (0, total)
    rng = stream_rng(seed, "gradient-canaries")
    included = rng.random(m) < 0.5
    coordinates = start + rng.choice(count, size=m, replace=False).astype(np.int64)
    return CanaryPlan(coordinates, included, float(gradient_norm), seed)


@dataclass(frozen=True)
class CanaryBatch:
    """The canaries sampled for one step: ``sampled`` (k,) canary indices, ascending, and
    ``extra_examples``, their gradients as extra examples of that step's batch,
    {parameter: (k, *parameter.shape)} sparse COO (empty when k = 0), each row G at its
    canary's coordinate and 0 elsewhere; what ``PrivateTraining.clip(extra_examples=...)``
    takes."""

    sampled: np.ndarray
    extra_examples: dict[Any, torch.Tensor]

    def __len__(self) -> int:
        return len(self.sampled)


COIN_BLOCK = 32
"""Steps whose canary coins are drawn in one go (their sampled canaries worked out at once)."""


class _SampledBlock:
    """The sampled canaries of a run of steps, from their ``coins`` (steps, m): ``canaries``
    (total,), step s's being ``canaries[bounds[s]:bounds[s + 1]]``; per home, the sparse
    indices (1 + ndim, total) of their gradients (row in the step's batch, then position) and
    where each step's start. ``step`` counts the steps handed out."""

    def __init__(self, coins: np.ndarray, canaries: np.ndarray, bounds: np.ndarray,
                 indices: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.coins, self.canaries, self.bounds, self.indices = coins, canaries, bounds, indices
        self.step = 0

    def exhausted(self) -> bool:
        return self.step == len(self.bounds) - 1

    def next_step(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """The next step's sampled canaries (k,), ascending, and each home's indices."""
        step, self.step = self.step, self.step + 1
        sampled = self.canaries[self.bounds[step]:self.bounds[step + 1]]
        return sampled, [home_indices[:, starts[step]:starts[step + 1]]
                         for home_indices, starts in self.indices]


@dataclass(frozen=True)
class _Home:
    """A parameter holding canaries: its ``index`` among the trainable parameters, the
    ``canaries`` (h,) it holds (ascending), their flat ``offsets`` (h,) in it (also as a tensor
    on the parameters' device), ``positions`` (ndim, m), each canary's index in the
    parameter's shape (columns of the canaries held elsewhere are unused), and
    ``gradient_values`` (h,), G in the parameter's dtype."""

    index: int
    canaries: np.ndarray
    offsets: np.ndarray
    device_offsets: torch.Tensor
    positions: np.ndarray
    gradient_values: torch.Tensor


class GradientCanaries:
    """The canaries of one DP training run: sampling, their gradients, what the run releases.

    Parameters
    ----------
    parameters : list of torch.nn.Parameter
        The trainable parameters, in the order the plan's coordinates flatten them.
    plan : CanaryPlan
    sample_rate : float
        q, each included canary's probability of joining a step.
    noise_multiplier, max_grad_norm : float
        σ and C of the run (scores use σ; C turns ĝ into units of one clipped canary).
    expected_batch_size : int
        B, the divisor of the summed noisy gradient.
    seed : int
        Seeds the canaries' own Poisson sampling, apart from the real examples' generator
        (the trainer passes its seed's stream "canary-sampling").

    Notes
    -----
    The coins of ``COIN_BLOCK`` steps are drawn at once and the steps' sparse gradients
    worked out together (a checkpoint keeps the coins not used yet), so that what one step
    adds to training is a few operations on its k sampled canaries and the m coordinates it
    reads back, not a fixed cost of many small ones: on the digits CNN, whose steps are
    small, that fixed cost had made a DP epoch 1.25-1.31× as long
    (``benchmarks/one_run_canaries.py``).
    """

    def __init__(self, parameters: list[torch.nn.Parameter], plan: CanaryPlan, *,
                 sample_rate: float, noise_multiplier: float, max_grad_norm: float,
                 expected_batch_size: int, seed: int) -> None:
        sizes = [p.numel() for p in parameters]
        total = int(sum(sizes))
        if plan.coordinates.max(initial=-1) >= total:
            raise InputError(f"canary coordinates go up to {int(plan.coordinates.max())} but "
                             f"the model has {total} trainable parameters")
        self.parameters = parameters
        self.plan = plan
        self.sample_rate = sample_rate
        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.expected_batch_size = expected_batch_size
        self.device = parameters[0].device
        self.generator = torch.Generator().manual_seed(seed)
        starts = np.cumsum([0, *sizes])
        owner = np.searchsorted(starts, plan.coordinates, side="right") - 1
        offset = plan.coordinates - starts[owner]
        # Worked out once, so that what a step does beyond its k sampled canaries is a few
        # operations, not a fixed cost of many small ones: each parameter holding canaries
        # (a "home": usually one, see plan_gradient_canaries), the canaries it holds, their
        # flat offsets in it and their positions in its shape.
        self._owner = owner
        self._homes = []
        for index in np.unique(owner):
            held = np.flatnonzero(owner == index)
            positions = np.zeros((parameters[index].dim(), plan.m), dtype=np.int64)
            positions[:, held] = np.unravel_index(offset[held], tuple(parameters[index].shape))
            self._homes.append(_Home(
                int(index), held, offset[held],
                torch.as_tensor(offset[held], device=self.device), positions,
                torch.full((len(held),), plan.gradient_norm, dtype=parameters[index].dtype)))
        self._included = plan.included.copy()
        self._block: _SampledBlock | None = None  # the coming steps' sampled canaries
        self._restored_coins: np.ndarray | None = None  # coins left in a checkpoint
        self._last: np.ndarray | None = None  # canary coordinates' values after last step
        self._gradients = np.zeros((0, plan.m), np.float32)  # (capacity, m) y_t, units C/B
        self._updates = np.zeros((0, plan.m), np.float32)  # (capacity, m) parameter changes
        self._steps = 0

    def draw(self) -> CanaryBatch:
        """Poisson-sample this step's canaries among the included ones, with their gradients
        as sparse COO tensors (one nonzero per canary), for only the parameters that hold a
        sampled canary (the others count as 0)."""
        if self._block is None or self._block.exhausted():
            self._block = self._next_block()
        if self._last is None:
            self._last = self._gather(self.parameters)
        sampled, indices = self._block.next_step()
        k = len(sampled)
        extra: dict[Any, torch.Tensor] = {}
        for home, home_indices in zip(self._homes, indices, strict=True):
            if not home_indices.shape[1]:
                continue
            param = self.parameters[home.index]
            # A view of the fixed values: the clipping only reads them.
            values = home.gradient_values[:home_indices.shape[1]]
            gradients = torch.sparse_coo_tensor(torch.from_numpy(home_indices), values,
                                                (k, *param.shape), is_coalesced=True,
                                                check_invariants=False)
            extra[param] = gradients if self.device.type == "cpu" else gradients.to(self.device)
        return CanaryBatch(sampled, extra)

    def _next_block(self) -> _SampledBlock:
        """The sampled canaries of the next ``COIN_BLOCK`` steps (or of the coins left from a
        checkpoint), each canary's coins drawn at once from :attr:`generator`."""
        coins, self._restored_coins = self._restored_coins, None
        if coins is None or not len(coins):
            uniforms = torch.rand((COIN_BLOCK, self.plan.m), generator=self.generator)
            coins = uniforms.numpy() < self.sample_rate
        steps, canaries = np.nonzero(coins & self._included)
        bounds = np.searchsorted(steps, np.arange(len(coins) + 1))
        rows = np.arange(len(steps)) - bounds[steps]  # each canary's row in its step's batch
        indices = []
        for home in self._homes:
            mine = np.flatnonzero(self._owner[canaries] == home.index)
            indices.append((np.vstack([rows[mine], home.positions[:, canaries[mine]]]),
                            np.searchsorted(mine, bounds)))
        return _SampledBlock(coins, canaries, bounds, indices)

    def _coins_left(self) -> np.ndarray:
        """(s, m) bool: the coins drawn for the coming s steps and not used yet."""
        if self._block is not None:
            return self._block.coins[self._block.step:].copy()
        if self._restored_coins is not None:
            return self._restored_coins.copy()
        return np.zeros((0, self.plan.m), dtype=bool)

    def observe(self) -> None:
        """After ``optimizer.step()``: record ĝ_t·B/C and the update at every canary."""
        assert self._last is not None, "observe() without draw()"
        if self._steps == len(self._gradients):
            self._gradients, self._updates = (
                np.concatenate([kept, np.zeros((max(COIN_BLOCK, self._steps), self.plan.m),
                                               np.float32)])
                for kept in (self._gradients, self._updates))
        gradients = self._gather([p.grad for p in self.parameters])
        gradients *= self.expected_batch_size / self.max_grad_norm
        after = self._gather(self.parameters)
        self._gradients[self._steps] = gradients
        np.subtract(after, self._last, out=self._updates[self._steps])
        self._last = after
        self._steps += 1

    def _gather(self, tensors: Sequence[torch.Tensor | None]) -> np.ndarray:
        """(m,) float32 values at the canaries of ``tensors`` (shaped like the parameters;
        None counts as zeros): one indexing per home, in numpy on CPU (microseconds where
        torch's small operations cost tens); only the homes are touched."""
        values = None
        for home in self._homes:
            tensor = tensors[home.index]
            if tensor is None:
                at_canaries = np.zeros(len(home.canaries), dtype=np.float32)
            elif self.device.type == "cpu":
                at_canaries = tensor.detach().reshape(-1).numpy()[home.offsets]
            else:
                at_canaries = tensor.detach().reshape(-1)[home.device_offsets].cpu().numpy()
            if len(self._homes) == 1:  # it holds every canary, in canary order
                return at_canaries.astype(np.float32, copy=False)
            if values is None:
                values = np.zeros(self.plan.m, dtype=np.float32)
            values[home.canaries] = at_canaries
        assert values is not None  # every canary has a home
        return values

    @property
    def steps(self) -> int:
        """Steps observed so far."""
        return self._steps

    def history(self) -> tuple[np.ndarray, np.ndarray]:
        """(T, m) float32 ĝ_t·B/C and (T, m) updates of the T steps observed so far."""
        return self._gradients[:self._steps].copy(), self._updates[:self._steps].copy()

    def state_dict(self) -> dict[str, Any]:
        """The sampling generator, the coins drawn for the coming steps and what was
        observed, for resuming (tensors only)."""
        gradients, updates = self.history()
        return {"generator": self.generator.get_state(),
                "coins": torch.from_numpy(self._coins_left()),
                "gradients": torch.from_numpy(gradients), "updates": torch.from_numpy(updates)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (a state without coins, from before
        coins were drawn ahead, continues from its generator)."""
        self.generator.set_state(state["generator"])
        coins = state.get("coins")
        self._restored_coins = None if coins is None else coins.numpy().astype(bool)
        self._block = None
        self._gradients = np.asarray(state["gradients"], dtype=np.float32).copy()
        self._updates = np.asarray(state["updates"], dtype=np.float32).copy()
        self._steps = len(self._gradients)
        self._last = None

    def scores(self, score: str = DEFAULT_SCORE) -> np.ndarray:
        """(m,) canary scores from the steps so far (module docstring)."""
        gradients, _ = self.history()
        return canary_scores(gradients, score, sample_rate=self.sample_rate,
                             noise_multiplier=self.noise_multiplier)


def audit_white_box(canaries: GradientCanaries, *, delta: float, alpha: float = 0.05,
                    score: str = DEFAULT_SCORE) -> dict[str, OneRunEpsilon]:
    """One-run ε lower bounds by binary-guess method (:data:`memberscope.one_run.METHODS`)
    from the steps observed so far."""
    scores = canaries.scores(score)
    return {method: epsilon_one_run(scores, canaries.plan.included, delta=delta, alpha=alpha,
                                    method=method) for method in METHODS}


def epsilon_audit(canaries: GradientCanaries | None, *, delta: float, alpha: float = 0.05,
                  black_box_scores: np.ndarray | None = None,
                  black_box_included: np.ndarray | None = None) -> dict[str, Any]:
    """The ``epsilon_audit`` record of a DP result row
    (:func:`memberscope.one_run.epsilon_audit_record`) from the white-box (gradient) canaries
    and, when given, the black-box (input) canaries' scores, with the white-box score's name
    and the steps observed."""
    sources: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if canaries is not None:
        sources["white_box"] = (canaries.scores(), canaries.plan.included)
    if black_box_scores is not None and black_box_included is not None:
        sources["black_box"] = (black_box_scores, black_box_included)
    return {**epsilon_audit_record(sources, delta=delta, alpha=alpha),
            "white_box_score": DEFAULT_SCORE,
            "steps": canaries.steps if canaries is not None else None}


def canary_scores(observations: np.ndarray, score: str, *, sample_rate: float,
                  noise_multiplier: float) -> np.ndarray:
    """(m,) scores from (T, m) per-step observations y_t in units of one clipped canary."""
    if score not in SCORES:
        raise UnknownNameError("score", score, SCORES)
    y = np.asarray(observations, dtype=np.float64)
    if score == "sum":
        return y.sum(axis=0)
    if score == "centred_likelihood_ratio" and len(y) > 1:
        y = y - shrunk_drift(y)
    variance = max(noise_multiplier, 1e-12) ** 2
    q = sample_rate
    # log((1 − q) + q·exp(s)) computed stably as logaddexp(log(1 − q), log q + s)
    return np.logaddexp(np.log1p(-q), np.log(q) + (y - 0.5) / variance).sum(axis=0)


def shrunk_drift(observations: np.ndarray) -> np.ndarray:
    """(m,) drift estimate of each coordinate of (T, m) observations: its median over steps
    times λ = τ² / (τ² + v), v the median's sampling variance (π/2 · MAD-scale² / T, averaged
    over coordinates) and τ² the variance of the medians across coordinates beyond v."""
    steps = len(observations)
    medians = np.median(observations, axis=0)
    scale = 1.4826 * np.median(np.abs(observations - medians), axis=0)
    noise = float(np.mean(np.pi / 2 * scale**2 / steps))
    spread = max(0.0, float(np.var(medians)) - noise)
    return medians * (spread / (spread + noise) if spread + noise > 0 else 0.0)


def ideal_observations(m: int, included: np.ndarray, *, sample_rate: float,
                       noise_multiplier: float, steps: int, seed: int) -> np.ndarray:
    """(steps, m) y_t of idealised canaries — coordinates no real gradient touches — with the
    same q, σ and steps: 1[sampled] + σ·z."""
    rng = np.random.default_rng(seed)
    sampled = (rng.random((steps, m)) < sample_rate) & np.asarray(included, bool)
    return sampled + noise_multiplier * rng.standard_normal((steps, m))
