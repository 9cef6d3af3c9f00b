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
and passes the sampled canaries' gradients, {parameter: k examples as
:class:`~memberscope.train.dp.sparse_examples.SparseExamples`}, as extra examples of the
batch, clipped and summed with the real ones on every route (direct clipping sums them in
``ClippedGradients.clip_and_sum``; Opacus' modes append them, made dense, to
``p.grad_sample`` and clip them in ``optimizer.step()``). After the step
:meth:`GradientCanaries.observe` reads ĝ_t and the parameters at the canary coordinates.
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
from memberscope.train.dp.sparse_examples import SparseExamples

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
    {parameter: :class:`SparseExamples` of k examples} (empty when k = 0), each example G at
    its canary's coordinate and 0 elsewhere; what ``PrivateTraining.clip(extra_examples=...)``
    takes."""

    sampled: np.ndarray
    extra_examples: dict[Any, SparseExamples]

    def __len__(self) -> int:
        return len(self.sampled)


COIN_BLOCK = 32
"""Steps whose canary coins are drawn in one go (their sampled canaries worked out at once),
and steps whose readings are kept on the parameters' device before joining the history."""


@dataclass(frozen=True)
class _Home:
    """A parameter holding canaries: its ``index`` among the trainable parameters, the
    ``canaries`` (h,) it holds (ascending), their flat ``offsets`` (h,) in it, as int64 numpy
    and as a tensor on the parameters' device, ``gradient_values`` (h,), G in the parameter's
    dtype on its device, and ``columns``, the slice of a reading (:class:`_Readings`) its
    canaries fill."""

    index: int
    canaries: np.ndarray
    offsets: np.ndarray
    device_offsets: torch.Tensor
    gradient_values: torch.Tensor
    columns: slice


class _SampledBlock:
    """The sampled canaries of a run of steps, from their ``coins`` (steps, m): ``canaries``
    (total,), step s's being ``canaries[bounds[s]:bounds[s + 1]]``; per home, the rows in
    their step's batch (None where one home holds every canary: row i is the step's canary
    i) and flat offsets in the parameter of the canaries it holds (tensors on the
    parameters' device) and where each step's start. ``step`` counts the steps handed out."""

    def __init__(self, coins: np.ndarray, canaries: np.ndarray, bounds: np.ndarray,
                 homes: list[tuple[torch.Tensor | None, torch.Tensor, list[int]]]) -> None:
        self.coins, self.canaries, self.bounds, self.homes = coins, canaries, bounds, homes
        self.step = 0

    def exhausted(self) -> bool:
        return self.step == len(self.bounds) - 1

    def next_step(self) -> tuple[np.ndarray, list[tuple[torch.Tensor | None, torch.Tensor]]]:
        """The next step's sampled canaries (k,), ascending, and each home's (rows,
        offsets) of them (:class:`SparseExamples`' fields): views, no new tensor."""
        step, self.step = self.step, self.step + 1
        sampled = self.canaries[self.bounds[step]:self.bounds[step + 1]]
        return sampled, [(None if rows is None else rows[starts[step]:starts[step + 1]],
                          offsets[starts[step]:starts[step + 1]])
                         for rows, offsets, starts in self.homes]


class _Readings:
    """What the last steps released at the canaries, kept where the parameters are: (s, m)
    ĝ_t and (s + 1, m) parameter values (row 0: before the first of the s steps), each
    canary's column given by its home's ``columns``. A step costs one ``index_select`` per
    home and tensor, with no copy to the host; :meth:`take` turns the readings into history
    rows at once."""

    def __init__(self, homes: list[_Home], m: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        self.homes = homes
        self.gradients = torch.zeros((COIN_BLOCK, m), dtype=dtype, device=device)
        self.values = torch.zeros((COIN_BLOCK + 1, m), dtype=dtype, device=device)
        self.steps = 0
        self.started = False  # whether values[0] holds the values before the next step
        order = np.concatenate([home.canaries for home in homes])
        # Columns in canary order (None: one home holding every canary, already in order).
        self.order = None if np.array_equal(order, np.arange(m)) else order

    def full(self) -> bool:
        return self.steps == COIN_BLOCK

    def start(self, parameters: list[torch.nn.Parameter]) -> None:
        """Read the parameters before the next step."""
        self._read(parameters, self.values[0])
        self.started = True

    def add(self, gradients: list[torch.Tensor | None],
            parameters: list[torch.nn.Parameter]) -> None:
        """Read ĝ and the parameters after a step (a None gradient counts as zeros)."""
        self._read(gradients, self.gradients[self.steps])
        self._read(parameters, self.values[self.steps + 1])
        self.steps += 1

    def _read(self, tensors: Sequence[torch.Tensor | None], row: torch.Tensor) -> None:
        for home in self.homes:
            tensor = tensors[home.index]
            target = row[home.columns]
            if tensor is None:
                target.zero_()
            else:
                torch.index_select(tensor.detach().reshape(-1), 0, home.device_offsets,
                                   out=target)

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """(s, m) float32 ĝ_t and (s, m) parameter changes of the s steps read since the last
        call, in canary order; the parameters after the last of them start the next."""
        s = self.steps
        gradients = self.gradients[:s].to("cpu", torch.float32).numpy()
        values = self.values[:s + 1].to("cpu", torch.float32).numpy()
        updates = np.subtract(values[1:], values[:-1])
        if self.order is not None:
            gradients, updates = (_in_canary_order(part, self.order)
                                  for part in (gradients, updates))
        self.values[0] = self.values[s]
        self.steps = 0
        return gradients.copy() if self.order is None else gradients, updates


def _in_canary_order(readings: np.ndarray, order: np.ndarray) -> np.ndarray:
    """(s, m) readings whose column i is canary ``order[i]``, put in canary order."""
    ordered = np.empty_like(readings)
    ordered[:, order] = readings
    return ordered


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
    What a step adds to training is a few operations on its k sampled canaries and on the m
    coordinates it reads back, none of them worked out anew each step: the coins of
    ``COIN_BLOCK`` steps are drawn at once and those steps' canaries turned into the rows and
    offsets of their gradients together (a checkpoint keeps the coins not used yet); the
    gradients reach the clipping as :class:`SparseExamples`, views of those; each step's
    readings are copied on the parameters' device into preallocated rows that join the
    history once per block (``benchmarks/one_run_canaries.py`` measures the cost).
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
        self._owner = owner
        self._offsets = plan.coordinates - starts[owner]  # in the canary's parameter
        # Each parameter holding canaries (a "home": usually one, see
        # plan_gradient_canaries), worked out once.
        self._homes = []
        column = 0
        for index in np.unique(owner):
            held = np.flatnonzero(owner == index)
            self._homes.append(_Home(
                int(index), held, self._offsets[held],
                torch.as_tensor(self._offsets[held], device=self.device),
                torch.full((len(held),), plan.gradient_norm, dtype=parameters[index].dtype,
                           device=self.device),
                slice(column, column + len(held))))
            column += len(held)
        self._included = plan.included.copy()
        self._block: _SampledBlock | None = None  # the coming steps' sampled canaries
        self._restored_coins: np.ndarray | None = None  # coins left in a checkpoint
        self._readings = _Readings(self._homes, plan.m, parameters[self._homes[0].index].dtype,
                                   self.device)
        # The history: (steps, m) y_t (units C/B) and parameter changes, one pair per block.
        self._history: list[tuple[np.ndarray, np.ndarray]] = []
        self._recorded = 0  # steps in the history; more wait in the readings

    def draw(self) -> CanaryBatch:
        """Poisson-sample this step's canaries among the included ones, with their gradients
        (one nonzero per canary) for only the parameters that hold a sampled canary (the
        others count as 0)."""
        if self._block is None or self._block.exhausted():
            self._block = self._next_block()
        if not self._readings.started:
            self._readings.start(self.parameters)
        sampled, per_home = self._block.next_step()
        k = len(sampled)
        extra: dict[Any, SparseExamples] = {}
        for home, (rows, offsets) in zip(self._homes, per_home, strict=True):
            if not len(offsets):
                continue
            param = self.parameters[home.index]
            # A view of the fixed values: the clipping only reads them.
            extra[param] = SparseExamples(k, rows, offsets, home.gradient_values[:len(offsets)],
                                          tuple(param.shape))
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
        if len(self._homes) == 1:  # the step's canaries are its extra examples, in order
            return _SampledBlock(coins, canaries, bounds, [(
                None, torch.as_tensor(self._offsets[canaries], device=self.device),
                bounds.tolist())])
        rows = np.arange(len(steps)) - bounds[steps]  # each canary's row in its step's batch
        homes: list[tuple[torch.Tensor | None, torch.Tensor, list[int]]] = []
        for home in self._homes:
            mine = np.flatnonzero(self._owner[canaries] == home.index)
            homes.append((torch.as_tensor(rows[mine], device=self.device),
                          torch.as_tensor(self._offsets[canaries[mine]], device=self.device),
                          np.searchsorted(mine, bounds).tolist()))
        return _SampledBlock(coins, canaries, bounds, homes)

    def _coins_left(self) -> np.ndarray:
        """(s, m) bool: the coins drawn for the coming s steps and not used yet."""
        if self._block is not None:
            return self._block.coins[self._block.step:].copy()
        if self._restored_coins is not None:
            return self._restored_coins.copy()
        return np.zeros((0, self.plan.m), dtype=bool)

    def observe(self) -> None:
        """After ``optimizer.step()``: read ĝ_t and the parameters at every canary."""
        assert self._readings.started, "observe() without draw()"
        self._readings.add([p.grad for p in self.parameters], self.parameters)
        if self._readings.full():
            self._record()

    def _record(self) -> None:
        """Move the readings into the history: ĝ_t·B/C and the updates."""
        gradients, updates = self._readings.take()
        gradients *= self.expected_batch_size / self.max_grad_norm
        self._history.append((gradients, updates))
        self._recorded += len(gradients)

    @property
    def steps(self) -> int:
        """Steps observed so far."""
        return self._recorded + self._readings.steps

    def history(self) -> tuple[np.ndarray, np.ndarray]:
        """(T, m) float32 ĝ_t·B/C and (T, m) updates of the T steps observed so far."""
        if self._readings.steps:
            self._record()
        if len(self._history) != 1:  # one piece from now on, until more steps join
            empty = np.zeros((0, self.plan.m), np.float32)
            self._history = [(np.concatenate([empty, *(g for g, _ in self._history)]),
                              np.concatenate([empty, *(u for _, u in self._history)]))]
        gradients, updates = self._history[0]
        return gradients.copy(), updates.copy()

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
        gradients = np.asarray(state["gradients"], dtype=np.float32).copy()
        self._history = [(gradients, np.asarray(state["updates"], dtype=np.float32).copy())]
        self._recorded = len(gradients)
        self._readings.steps = 0
        self._readings.started = False

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
                  white_box_scores: np.ndarray | None = None,
                  black_box_scores: np.ndarray | None = None,
                  black_box_included: np.ndarray | None = None) -> dict[str, Any]:
    """The ``epsilon_audit`` record of a DP result row
    (:func:`memberscope.one_run.epsilon_audit_record`) from the white-box (gradient) canaries
    and, when given, the black-box (input) canaries' scores, with the white-box score's name
    and the steps observed. ``white_box_scores``: ``canaries.scores()`` where the caller
    already has them (scoring reads the whole (T, m) history)."""
    sources: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if canaries is not None:
        scores = canaries.scores() if white_box_scores is None else white_box_scores
        sources["white_box"] = (scores, canaries.plan.included)
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
