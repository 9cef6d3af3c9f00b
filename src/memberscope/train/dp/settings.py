"""DP training settings as a frozen, validated dataclass (no torch needed to build it)."""

from __future__ import annotations

from dataclasses import dataclass

from memberscope.errors import InputError, UnknownNameError

ACCOUNTANTS = ("prv", "rdp")
GRAD_SAMPLE_MODES = ("auto", "direct", "hooks", "ew", "functorch")
# "direct" where the model allows it, else "hooks" with our layout-safe conv sampler: the
# fastest routes here (benchmarks/train_throughput.py).
DEFAULT_GRAD_SAMPLE_MODE = "auto"


@dataclass(frozen=True)
class DPSettings:
    """Differentially private training through Opacus (DP-SGD / DP-Adam).

    Give exactly one of ``noise_multiplier`` (σ) or ``target_epsilon`` (σ is then found so
    that ε after all epochs is ``target_epsilon`` at ``delta``).

    Parameters
    ----------
    max_grad_norm : float
        Per-example gradient clipping norm C.
    delta : float
        δ of (ε, δ)-DP, used to report ε; usually below 1 / n_train.
    accountant : "prv" | "rdp"
    poisson_sampling : bool
        Each example joins each batch independently with probability batch_size / n (what the
        accountant assumes); False takes shuffled fixed-size batches (ε then is optimistic).
    grad_sample_mode : "auto" | "direct" | "hooks" | "ew" | "functorch"
        How per-example gradients are computed: "direct" records them from each Conv2d and
        Linear layer's output gradient (memberscope's own, for models made only of those);
        the others are Opacus' modes; "auto" picks "direct" where it applies, else "hooks".
        Clipping, noise and accounting are Opacus' in every mode.
    """

    noise_multiplier: float | None = None
    target_epsilon: float | None = None
    max_grad_norm: float = 1.0
    delta: float = 1e-5
    accountant: str = "prv"
    poisson_sampling: bool = True
    grad_sample_mode: str = DEFAULT_GRAD_SAMPLE_MODE

    def __post_init__(self) -> None:
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise InputError("DP needs exactly one of noise_multiplier or target_epsilon; got "
                             f"noise_multiplier={self.noise_multiplier}, "
                             f"target_epsilon={self.target_epsilon}")
        if self.noise_multiplier is not None and self.noise_multiplier < 0:
            raise InputError(f"noise_multiplier must be >= 0; got {self.noise_multiplier}")
        if self.target_epsilon is not None and self.target_epsilon <= 0:
            raise InputError(f"target_epsilon must be > 0; got {self.target_epsilon}")
        if self.max_grad_norm <= 0:
            raise InputError(f"max_grad_norm must be > 0; got {self.max_grad_norm}")
        if not 0 < self.delta < 1:
            raise InputError(f"delta must be in (0, 1); got {self.delta}")
        if self.accountant not in ACCOUNTANTS:
            raise UnknownNameError("accountant", self.accountant, ACCOUNTANTS)
        if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
            raise UnknownNameError("grad_sample_mode", self.grad_sample_mode, GRAD_SAMPLE_MODES)
