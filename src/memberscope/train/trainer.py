"""A plain PyTorch training loop with optional DP (Opacus), made for CPU speed and resumability.

Choices, each measured on the 2-core build machine (see ``benchmarks/``):

* Batches are taken by index from in-memory tensors, not through a ``DataLoader`` (whose
  per-batch collation cost ~10%).
* Images stay in the datasets' NHWC order: ``permute(0, 3, 1, 2)`` of an NHWC array *is* an
  NCHW tensor in ``torch.channels_last`` memory format, with no copy, and the model is moved
  to channels_last too, which oneDNN's CPU convolutions run faster.
* DP uses Opacus' optimizers and accountants directly, with our own Poisson sampling, so the
  same index-based loop serves both; the accountant is stepped per step. For models made of
  Conv2d and Linear layers (the default "auto" grad-sample mode picks it), per-example
  gradients are clipped and summed by ``direct_clipping`` and Opacus adds the noise: 1.24-1.45×
  the non-DP epoch here, against 1.68-2.30× with Opacus' ``GradSampleModule`` (hooks mode).
  Everything DP changes in the loop comes from :func:`memberscope.train.dp.engine.make_private`.
* Nothing here changes process-wide state (torch's thread count, the allocator): that is
  :func:`memberscope._runtime.tune_process`, called at the edges (the CLI, the runner).
* Everything random (initial batch order, Poisson sampling, DP noise) comes from generators
  owned by the trainer, whose states are part of :meth:`Trainer.state_dict`, so a resumed run
  continues exactly where a checkpoint left it.
* Each example's training loss is recorded at every epoch (:attr:`Trainer.loss_trace`, the
  input of :func:`memberscope.risk.trace_risk`) from the logits the training steps computed
  anyway: each step keeps a reference to them, and one batched cross-entropy at the end of the
  epoch turns them into losses; no extra forward pass, and the training arithmetic is
  unchanged. The trace is not in
  :meth:`Trainer.state_dict` (it grows with the epochs); whoever checkpoints keeps it beside
  the checkpoint and hands it back with :meth:`Trainer.restore_loss_trace`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope._seeding import stream_seed
from memberscope.errors import InputError, require
from memberscope.train.settings import TrainSettings

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

STATE_SCHEMA_VERSION = 1
INFERENCE_BATCH_SIZE = 128  # fastest CPU inference batch measured with channels_last (fits L2)


@dataclass(frozen=True)
class EpochStats:
    """What one epoch of training did: ``epoch`` (1-based), mean ``loss`` and ``accuracy`` on
    the training batches, ``seconds`` of wall time and ``examples`` processed."""

    epoch: int
    loss: float
    accuracy: float
    seconds: float
    examples: int

    @property
    def images_per_second(self) -> float:
        """Training throughput."""
        return self.examples / self.seconds if self.seconds > 0 else float("nan")


def default_device() -> str:
    """"cuda" when a GPU is visible, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def as_model_input(x: np.ndarray | torch.Tensor, device: str = "cpu", *,
                   channels_last: bool = True) -> torch.Tensor:
    """The tensor a model takes: (N, H, W, C) images become an NCHW view in channels_last
    memory format (no copy on CPU; ``channels_last=False`` copies to contiguous NCHW);
    (N, D) features stay as they are.

    Raises InputError for other ranks or non-float data.
    """
    import torch

    tensor = torch.as_tensor(x)
    if not tensor.is_floating_point():
        raise InputError(f"inputs must be floating point; got dtype {tensor.dtype}")
    if tensor.ndim == 4:
        tensor = tensor.permute(0, 3, 1, 2)
    elif tensor.ndim != 2:
        raise InputError("inputs must be (N, H, W, C) images or (N, D) features; got shape "
                         f"{tuple(tensor.shape)}")
    tensor = tensor.to(device=device, dtype=torch.float32)
    if tensor.ndim == 4:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        tensor = tensor.contiguous(memory_format=layout)
    return tensor


def predict_logits(model: torch.nn.Module, x: torch.Tensor, index: np.ndarray | None = None,
                   *, batch_size: int = INFERENCE_BATCH_SIZE) -> np.ndarray:
    """Logits (len(index) or N, C) float32 of ``model`` on ``x[index]``, in eval mode under
    ``torch.inference_mode()`` and in large batches; ``x`` as made by :func:`as_model_input`.

    On CPU with T > 1 torch threads, T batches run at once, each on one thread: these small
    models' operators scale poorly across threads (2 threads on one batch gave 1.4-1.7× one
    thread here), while whole batches in parallel scale almost fully (8-21% faster than one
    batch on 2 threads; the logits were bitwise equal in that check).
    """
    import torch

    n = len(x) if index is None else len(index)
    if n == 0:
        raise InputError("cannot predict on 0 examples")
    was_training = model.training
    model.eval()

    def batch_logits(start: int) -> torch.Tensor:
        if index is None:
            batch = x[start:start + batch_size]
        else:
            rows = torch.as_tensor(index[start:start + batch_size], device=x.device)
            batch = x.index_select(0, rows)
        with torch.inference_mode():
            return model(batch).float().cpu()

    starts = range(0, n, batch_size)
    threads = torch.get_num_threads()
    try:
        if x.device.type != "cpu" or threads == 1 or len(starts) == 1:
            parts = [batch_logits(start) for start in starts]
        else:
            from concurrent.futures import ThreadPoolExecutor

            torch.set_num_threads(1)
            try:
                with ThreadPoolExecutor(max_workers=threads) as pool:
                    parts = list(pool.map(batch_logits, starts))
            finally:
                torch.set_num_threads(threads)
    finally:
        model.train(was_training)
    return torch.cat(parts).numpy()


def _make_optimizer(settings: TrainSettings, parameters: Any) -> torch.optim.Optimizer:
    import torch

    if settings.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=settings.learning_rate,
                               momentum=settings.momentum, weight_decay=settings.weight_decay)
    cls = torch.optim.Adam if settings.optimizer == "adam" else torch.optim.AdamW
    return cls(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)


class Trainer:
    """Trains ``model`` on (x, y) held in memory, one epoch per :meth:`train_epoch` call.

    Parameters
    ----------
    model : torch.nn.Module
        Maps the tensors of :func:`as_model_input` to logits. Seed torch before building it
        for reproducible initial weights.
    x : (N, H, W, C) or (N, D) float32
    y : (N,) int labels
    settings : TrainSettings
        Optimizer, batch size, epochs, seed and optional DP.
    device : str, optional
        Defaults to CUDA when present, else CPU.
    progress : bool
        Show a rich progress bar on the terminal for each epoch.
    description : str
        Label of the progress bar.
    record_losses : bool
        Record each example's training loss at every epoch (:attr:`loss_trace`).

    Examples
    --------
    >>> model = small_cnn((28, 28, 1), 10, num_conv=2)            # doctest: +SKIP
    >>> trainer = Trainer(model, x, y, TrainSettings(epochs=3))  # doctest: +SKIP
    >>> history = trainer.fit()                                  # doctest: +SKIP
    """

    def __init__(self, model: torch.nn.Module, x: np.ndarray, y: np.ndarray,
                 settings: TrainSettings, *, device: str | None = None, progress: bool = False,
                 description: str = "", record_losses: bool = True) -> None:
        require("torch", "torch", "training")
        import torch

        self.settings = settings
        self.device = device or default_device()
        route = None
        if settings.dp is not None:
            require("opacus", "torch", "DP training")
            from memberscope.train.dp.engine import channels_last_allowed, grad_sample_route

            route = grad_sample_route(settings.dp, model)
        self.grad_sample_mode = route
        self.channels_last = route is None or channels_last_allowed(route)
        self.x = as_model_input(x, self.device, channels_last=self.channels_last)
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(self.x):
            raise InputError(f"y must be (N,) labels for the {len(self.x)} inputs; got shape "
                             f"{labels.shape}")
        self.y = torch.as_tensor(labels, dtype=torch.int64, device=self.device)
        self.n = len(self.y)
        if self.n < 1:
            raise InputError("cannot train on 0 examples")
        self.model = model.to(self.device)
        if self.x.ndim == 4 and self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model.train()
        self.progress = progress
        self.description = description
        self.epoch = 0
        self.record_losses = record_losses
        self._loss_columns: list[np.ndarray] = []  # one (n,) float32 per epoch trained
        # Two streams of the settings' seed (memberscope._seeding): batches and DP noise.
        self.sampling_generator = torch.Generator().manual_seed(
            stream_seed(settings.seed, "batches"))
        self.noise_generator = torch.Generator(device=self.device).manual_seed(
            stream_seed(settings.seed, "dp-noise"))
        optimizer = _make_optimizer(settings, self.model.parameters())
        self.private: Any = None  # a PrivateTraining under DP
        self.module: torch.nn.Module = self.model
        self.optimizer: Any = optimizer
        if settings.dp is not None:
            from memberscope.train.dp.engine import make_private

            self.private = make_private(
                self.model, optimizer, settings.dp, sample_rate=self.sample_rate,
                expected_batch_size=settings.batch_size,
                steps=self.steps_per_epoch * settings.epochs, generator=self.noise_generator,
                canary_seed=stream_seed(settings.seed, "canary-sampling"))
            self.module, self.optimizer = self.private.module, self.private.optimizer
        self.loss_reduction = "mean" if self.private is None else self.private.loss_reduction
        self.loss_fn = torch.nn.CrossEntropyLoss(reduction=self.loss_reduction)

    # --- DP ---------------------------------------------------------------------------------

    @property
    def sample_rate(self) -> float:
        """Probability that an example joins a step's batch (batch_size / N)."""
        return min(1.0, self.settings.batch_size / self.n)

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch."""
        return max(1, -(-self.n // self.settings.batch_size)) if not self._poisson else \
            max(1, round(1 / self.sample_rate))

    @property
    def _poisson(self) -> bool:
        return self.settings.dp is not None and self.settings.dp.poisson_sampling

    def epsilon(self) -> float | None:
        """ε spent so far at the DP settings' δ (None without DP, 0 before the first step)."""
        return None if self.private is None else self.private.epsilon()

    @property
    def accountant(self) -> Any:
        """Opacus' accountant under DP, else None."""
        return None if self.private is None else self.private.accountant

    @property
    def noise_multiplier(self) -> float | None:
        """σ under DP, else None."""
        return None if self.private is None else self.private.noise_multiplier

    @property
    def canaries(self) -> Any:
        """The white-box canaries (a ``GradientCanaries``) when the DP settings ask for them,
        else None."""
        return None if self.private is None else self.private.canaries

    # --- training ---------------------------------------------------------------------------

    def _batches(self) -> Iterator[torch.Tensor]:
        import torch

        if self._poisson:
            for _ in range(self.steps_per_epoch):
                chosen = torch.rand(self.n, generator=self.sampling_generator) < self.sample_rate
                yield chosen.nonzero().squeeze(1)
        else:
            order = torch.randperm(self.n, generator=self.sampling_generator)
            yield from order.split(self.settings.batch_size)

    def train_epoch(self) -> EpochStats:
        """Train one epoch; returns its loss, accuracy and timing."""
        started = time.perf_counter()
        self.module.train()
        losses = _EpochLosses(self.n) if self.record_losses else None
        with warnings.catch_warnings():
            # Opacus' hooks fire this harmless warning when the inputs need no gradient.
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            loss_sum, correct, seen = self._run_steps(losses)
        self._loss_columns.append(losses.column() if losses is not None else
                                  np.full(self.n, np.nan, dtype=np.float32))
        self.epoch += 1
        return EpochStats(epoch=self.epoch, loss=float(loss_sum) / max(seen, 1),
                          accuracy=float(correct) / max(seen, 1),
                          seconds=time.perf_counter() - started, examples=seen)

    def _run_steps(self, losses: _EpochLosses | None) -> tuple[torch.Tensor, torch.Tensor, int]:
        import torch

        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = 0
        with _progress_bar(self.progress, self.description, self.epoch + 1,
                           self.settings.epochs, self.steps_per_epoch) as advance:
            for index in self._batches():
                if len(index) == 0:
                    self.private.noise_only_step()
                    advance()
                    continue
                index = index.to(self.device)
                # Advanced indexing keeps channels_last; index_select gives plain NCHW strides
                # (for one channel, x[index] may pick channels_last ones, which DP cannot use).
                inputs = self.x[index] if self.channels_last else self.x.index_select(0, index)
                targets = self.y[index]
                self.optimizer.zero_grad(set_to_none=True)
                with self.forward_context():
                    logits = self.module(inputs)
                loss = self.loss_fn(logits, targets)
                loss.backward()
                if self.private is not None:
                    self.private.step()
                else:
                    self.optimizer.step()
                with torch.no_grad():
                    batch_loss = loss.detach().double()
                    loss_sum += batch_loss if self.loss_reduction == "sum" else \
                        batch_loss * len(index)
                    correct += (logits.argmax(1) == targets).sum()
                    if losses is not None:
                        losses.add(index, logits, targets)
                seen += len(index)
                advance()
        return loss_sum, correct, seen

    def forward_context(self) -> contextlib.AbstractContextManager[None]:
        """Where a training forward pass of :attr:`module` runs (see
        :meth:`memberscope.train.dp.engine.PrivateTraining.forward_context`)."""
        if self.private is None:
            return contextlib.nullcontext()
        return self.private.forward_context()

    def fit(self) -> list[EpochStats]:
        """Train until ``settings.epochs`` epochs are done; returns the stats of each new epoch."""
        return [self.train_epoch() for _ in range(self.epoch, self.settings.epochs)]

    @property
    def loss_trace(self) -> np.ndarray:
        """(n, epoch) float32: each training example's loss in each epoch trained so far, as
        the training step computed it (training mode, the weights before that batch's step),
        averaged over the epoch's steps that drew it; NaN where it joined none (Poisson
        sampling) or where nothing was recorded (``record_losses=False``, or epochs a
        restored trace lacked). Row i is training example i (``x[i]``)."""
        if not self._loss_columns:
            return np.full((self.n, self.epoch), np.nan, dtype=np.float32)
        return np.stack(self._loss_columns, axis=1)

    def restore_loss_trace(self, trace: np.ndarray | None) -> None:
        """Restore the losses of the epochs a checkpoint holds, after :meth:`load_state_dict`
        (which leaves them NaN).

        ``trace`` (n, k) is what :attr:`loss_trace` gave (e.g. read back from the run
        directory): its first ``epoch`` columns are kept (columns written after the
        checkpoint are dropped; training redoes those epochs identically) and missing ones
        become NaN. None restores an all-NaN trace.
        """
        columns = np.full((self.n, self.epoch), np.nan, dtype=np.float32)
        if trace is not None:
            trace = np.asarray(trace)
            if trace.ndim != 2 or trace.shape[0] != self.n:
                raise InputError(f"loss trace must be ({self.n}, epochs) for the {self.n} "
                                 f"training examples; got shape {trace.shape}")
            kept = min(trace.shape[1], self.epoch)
            columns[:, :kept] = trace[:, :kept]
        self._loss_columns = list(columns.T.copy())

    def predict(self, x: torch.Tensor, index: np.ndarray | None = None,
                batch_size: int = INFERENCE_BATCH_SIZE) -> np.ndarray:
        """Logits of the (underlying, non-DP-wrapped) model; see :func:`predict_logits`."""
        return predict_logits(self.model, x, index, batch_size=batch_size)

    # --- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimizer, generator states, accountant
        history (and the canaries' history) — only tensors and plain containers, so
        ``torch.load(weights_only=True)`` reads it back. A snapshot: its tensors are copies,
        never the live weights or optimizer buffers (on CPU ``.cpu()`` alone would share
        them, and further training would change the saved state)."""
        import torch

        optimizer = getattr(self.optimizer, "original_optimizer", self.optimizer)
        state: dict[str, Any] = {
            "schema_version": STATE_SCHEMA_VERSION,
            "epoch": self.epoch,
            "model": {k: v.detach().to("cpu", copy=True)
                      for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(optimizer.state_dict()),
            "rng": {"torch": torch.get_rng_state(),
                    "sampling": self.sampling_generator.get_state(),
                    "noise": self.noise_generator.get_state()},
        }
        if self.accountant is not None:
            state["accountant"] = {
                "mechanism": self.accountant.mechanism(),
                "history": [[float(s), float(q), int(n)] for s, q, n in self.accountant.history],
                "noise_multiplier": self.noise_multiplier,
            }
        if self.canaries is not None:
            state["canaries"] = self.canaries.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the same model and settings)."""
        import torch

        if state.get("schema_version") != STATE_SCHEMA_VERSION:
            raise InputError(f"trainer state has schema_version {state.get('schema_version')}; "
                             f"this version reads {STATE_SCHEMA_VERSION}")
        if ("accountant" in state) != (self.accountant is not None):
            raise InputError("trainer state and settings disagree on DP (one has an accountant, "
                             "the other not)")
        self.model.load_state_dict(state["model"])
        optimizer = getattr(self.optimizer, "original_optimizer", self.optimizer)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        self.sampling_generator.set_state(state["rng"]["sampling"])
        self.noise_generator.set_state(state["rng"]["noise"])
        if self.accountant is not None:
            saved = state["accountant"]
            self.accountant.history = [(float(s), float(q), int(n)) for s, q, n in saved["history"]]
            if saved["noise_multiplier"] != self.noise_multiplier:
                raise InputError(f"checkpoint was trained with noise multiplier "
                                 f"{saved['noise_multiplier']}; settings give "
                                 f"{self.noise_multiplier}")
        if self.canaries is not None:
            if "canaries" not in state:
                raise InputError("trainer state has no canaries; the settings ask for them")
            self.canaries.load_state_dict(state["canaries"])
        self.epoch = int(state["epoch"])
        self.restore_loss_trace(None)  # the checkpoint's epochs, unrecorded until restored


class _EpochLosses:
    """Each example's training loss in one epoch: mean over the steps that drew it.

    A step only keeps references to its (detached) logits, targets and rows: the losses are
    computed once, at the end of the epoch, in one batched operation. Per-step arithmetic on a
    (batch, classes) tensor, in torch or numpy, cost 1.4-1.9% of an epoch on 2 threads
    (benchmarks/trace_recording.py): such tiny operations wait on the threads the training
    kernels leave busy. The losses are in float64: in float32 the log-sum-exp rounds
    1 + p_rest to float32's spacing above 1, so a loss below ~6e-8 becomes 0 and smaller ones
    steps of 1.2e-7, erasing the differences between fitted examples that log-scale risk
    methods read. Rows repeat only across steps (a Poisson batch never holds an example
    twice); the sums are indexed adds, sequential (so deterministic) on CPU.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, index: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Keep one step's rows, logits and targets (references, no copy)."""
        self.steps.append((index, logits.detach(), targets))

    def column(self) -> np.ndarray:
        """(n,) float32 mean loss per example; NaN for examples no step drew."""
        import torch

        if not self.steps:
            return np.full(self.n, np.nan, dtype=np.float32)
        rows, logits, targets = (torch.cat(parts) for parts in zip(*self.steps, strict=True))
        losses = torch.nn.functional.cross_entropy(logits.double(), targets, reduction="none")
        sums = torch.zeros(self.n, dtype=torch.float64, device=losses.device)
        counts = torch.zeros_like(sums)
        sums.index_add_(0, rows, losses)
        counts.index_add_(0, rows, torch.ones_like(losses))
        return (sums / counts).float().cpu().numpy()  # 0 / 0 = NaN: never drawn


class _progress_bar:  # noqa: N801 - used as a context manager like a function
    """A rich progress bar for one epoch, or nothing when disabled or rich is missing."""

    def __init__(self, enabled: bool, description: str, epoch: int, epochs: int,
                 steps: int) -> None:
        self.enabled = enabled
        self.label = f"{description} epoch {epoch}/{epochs}".strip()
        self.steps = steps
        self.progress: Any = None

    def __enter__(self) -> Any:
        if self.enabled:
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )
            except ImportError:
                self.enabled = False
        if not self.enabled:
            return lambda: None
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
        self.progress.start()
        task = self.progress.add_task(self.label, total=self.steps)
        every = max(1, self.steps // 100)
        counter = [0]

        def advance() -> None:
            counter[0] += 1
            if counter[0] % every == 0 or counter[0] == self.steps:
                self.progress.update(task, completed=counter[0])

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def parameter_count(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
