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
from memberscope.one_run import METHODS, OneRunEpsilon, epsilon_one_run

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
        self._sizes = sizes
        self._total = total
        self.plan = plan
        self.sample_rate = sample_rate
        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.expected_batch_size = expected_batch_size
        self.device = parameters[0].device
        self.generator = torch.Generator().manual_seed(seed)
        starts = np.cumsum([0, *sizes])
        self._owner = np.searchsorted(starts, plan.coordinates, side="right") - 1
        self._offset = plan.coordinates - starts[self._owner]
        by_owner = np.argsort(self._owner, kind="stable")
        self._gather_plan = [
            (int(index), torch.as_tensor(self._offset[by_owner][self._owner[by_owner] == index],
                                         device=self.device))
            for index in np.unique(self._owner)]
        self._to_canary_order = torch.as_tensor(np.argsort(by_owner), device=self.device)
        self._included = plan.included.copy()
        self._last: torch.Tensor | None = None  # canary coordinates' values after last step
        self.gradients: list[torch.Tensor] = []  # per step: (m,) y_t, in units of C/B
        self.updates: list[torch.Tensor] = []  # per step: (m,) parameter change

    def draw(self) -> CanaryBatch:
        """Poisson-sample this step's canaries among the included ones, with their gradients
        as sparse COO tensors (one nonzero per canary), for only the parameters that hold a
        sampled canary (the others count as 0)."""
        coin = torch.rand(self.plan.m, generator=self.generator).numpy() < self.sample_rate
        if self._last is None:
            self._last = self._gather([p.detach() for p in self.parameters])
        sampled = np.flatnonzero(coin & self._included)
        k = len(sampled)
        extra: dict[Any, torch.Tensor] = {}
        owners = self._owner[sampled]
        for index in np.unique(owners):
            param = self.parameters[index]
            rows = np.flatnonzero(owners == index)  # ascending: the indices are coalesced
            where = np.unravel_index(self._offset[sampled[rows]], tuple(param.shape))
            indices = torch.from_numpy(np.stack([rows, *where]))
            values = torch.full((len(rows),), self.plan.gradient_norm, dtype=param.dtype)
            extra[param] = torch.sparse_coo_tensor(
                indices, values, (k, *param.shape), is_coalesced=True,
                check_invariants=False).to(param.device)  # valid by construction
        return CanaryBatch(sampled, extra)

    def observe(self) -> None:
        """After ``optimizer.step()``: record ĝ_t·B/C and the update at every canary."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.parameters]
        gradients = self._gather(grads)
        gradients *= self.expected_batch_size / self.max_grad_norm
        after = self._gather([p.detach() for p in self.parameters])
        assert self._last is not None, "observe() without draw()"
        self.gradients.append(gradients.cpu())
        self.updates.append((after - self._last).cpu())
        self._last = after

    def _gather(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """(m,) float32 values of ``tensors`` (shaped like the parameters) at the canaries:
        one index per parameter holding canaries (numpy on CPU, microseconds where torch's
        small operations cost tens), then one permutation back to canary order."""
        if self.device.type == "cpu":
            parts = [tensors[index].detach().numpy().reshape(-1)[offsets.numpy()]
                     for index, offsets in self._gather_plan]
            values = parts[0] if len(parts) == 1 else np.concatenate(parts)
            return torch.from_numpy(values[self._to_canary_order.numpy()].astype(np.float32))
        parts = [tensors[index].reshape(-1).index_select(0, offsets)
                 for index, offsets in self._gather_plan]
        return torch.cat(parts).float()[self._to_canary_order]

    @property
    def steps(self) -> int:
        """Steps observed so far."""
        return len(self.gradients)

    def history(self) -> tuple[np.ndarray, np.ndarray]:
        """(T, m) float32 ĝ_t·B/C and (T, m) updates of the T steps observed so far."""
        if not self.gradients:
            empty = np.zeros((0, self.plan.m), np.float32)
            return empty, empty
        return torch.stack(self.gradients).numpy(), torch.stack(self.updates).numpy()

    def state_dict(self) -> dict[str, Any]:
        """The sampling generator and what was observed, for resuming (tensors only)."""
        gradients, updates = self.history()
        return {"generator": self.generator.get_state(),
                "gradients": torch.from_numpy(gradients), "updates": torch.from_numpy(updates)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.generator.set_state(state["generator"])
        self.gradients = list(state["gradients"])
        self.updates = list(state["updates"])
        self._last = None

    def scores(self, score: str = DEFAULT_SCORE) -> np.ndarray:
        """(m,) canary scores from the steps so far (module docstring)."""
        gradients, _ = self.history()
        return canary_scores(gradients, score, sample_rate=self.sample_rate,
                             noise_multiplier=self.noise_multiplier)


def audit_white_box(canaries: GradientCanaries, *, delta: float, alpha: float = 0.05,
                    score: str = DEFAULT_SCORE) -> dict[str, OneRunEpsilon]:
    """One-run ε lower bounds by method ("steinke", "fdp") from the steps observed so far."""
    scores = canaries.scores(score)
    return {method: epsilon_one_run(scores, canaries.plan.included, delta=delta, alpha=alpha,
                                    method=method) for method in METHODS}


def epsilon_audit(canaries: GradientCanaries | None, *, delta: float, alpha: float = 0.05,
                  method: str = "fdp", black_box_scores: np.ndarray | None = None,
                  black_box_included: np.ndarray | None = None) -> dict[str, Any]:
    """The ``epsilon_audit`` record of a DP result row: the one-run bounds of ``method`` from
    the white-box (gradient) canaries and, when given, the black-box (input) canaries' scores,
    beside what identifies them; both methods' bounds under ``by_method``."""
    sources: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if canaries is not None:
        sources["white_box"] = (canaries.scores(), canaries.plan.included)
    if black_box_scores is not None and black_box_included is not None:
        sources["black_box"] = (black_box_scores, black_box_included)
    by_method: dict[str, dict[str, Any]] = {name: {} for name in METHODS}
    for kind, (scores, included) in sources.items():
        for name in METHODS:
            bound = epsilon_one_run(scores, included, delta=delta, alpha=alpha, method=name)
            by_method[name][kind] = bound.epsilon
            by_method[name][f"{kind}_guesses"] = [bound.n_guesses, bound.n_correct]
    return {"white_box": by_method[method].get("white_box"),
            "black_box": by_method[method].get("black_box"), "method": method,
            "m": len(next(iter(sources.values()))[1]) if sources else 0, "alpha": alpha,
            "delta": delta, "white_box_score": DEFAULT_SCORE,
            "steps": canaries.steps if canaries is not None else None, "by_method": by_method}


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
