"""DP training settings as frozen, validated dataclasses (no torch needed to build them).

Each field's rule (kind, bounds, valid names) is stated once, in ``CANARY_RULES`` and
``DP_RULES``; the dataclasses check themselves with them and the experiment config checks its
``[variants.dp]`` tables with the same rules and the dataclasses' defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from memberscope._validation import FieldRule, field_problems, raise_field_problems
from memberscope.one_run import MIN_CANARIES

ACCOUNTANTS = ("prv", "rdp")
GRAD_SAMPLE_MODES = ("auto", "direct", "hooks", "ew", "functorch")
# "direct" where the model allows it, else "hooks" with our layout-safe conv sampler: the
# fastest routes here (benchmarks/train_throughput.py).
DEFAULT_GRAD_SAMPLE_MODE = "auto"

CANARY_RULES = {
    "m": FieldRule(int, at_least=MIN_CANARIES),
    "seed": FieldRule(int, at_least=0),
    "white_box": FieldRule(bool),
    "gradient_scale": FieldRule(float, above=0),
    "black_box": FieldRule(bool),
}
DP_RULES = {
    "noise_multiplier": FieldRule(float, at_least=0, optional=True),
    "target_epsilon": FieldRule(float, above=0, optional=True),
    "max_grad_norm": FieldRule(float, above=0),
    "delta": FieldRule(float, above=0, below=1),
    "accountant": FieldRule(str, names=ACCOUNTANTS, name_kind="accountant"),
    "poisson_sampling": FieldRule(bool),
    "grad_sample_mode": FieldRule(str, names=GRAD_SAMPLE_MODES, name_kind="grad_sample_mode"),
}


def noise_choice_problem(noise_multiplier: float | None,
                         target_epsilon: float | None) -> str | None:
    """The rule across DP's fields: exactly one of σ and a target ε is given."""
    if (noise_multiplier is None) == (target_epsilon is None):
        return ("give exactly one of noise_multiplier or target_epsilon; got "
                f"noise_multiplier={noise_multiplier}, target_epsilon={target_epsilon}")
    return None


@dataclass(frozen=True)
class CanarySettings:
    """Canaries for a one-run audit of DP training (issue 13; ``train/dp/canaries.py``).

    Parameters
    ----------
    m : int
        Number of canaries (>= ``one_run.MIN_CANARIES``, 10); each is included with
        probability ½, drawn from ``seed``.
    seed : int
        Seeds which canaries are included and where they sit.
    white_box : bool
        Gradient canaries: each a coordinate of the parameters, entering the clipping like an
        example whenever it is Poisson-sampled.
    gradient_scale : float
        A gradient canary's norm before clipping, in units of ``max_grad_norm`` (> 1 so that a
        run whose clipping is broken leaks it).
    black_box : bool
        Also m input-space canaries (``train/dp/input_canaries.py``): mislabelled training
        examples, the included ones appended to the training set (so the training set, and
        with ``target_epsilon`` the noise, changes slightly), scored by the model's outputs.
        Used by ``run_experiment``; the trainer itself takes the data it is given.
    """

    m: int = 1000
    seed: int = 0
    white_box: bool = True
    gradient_scale: float = 10.0
    black_box: bool = False

    def __post_init__(self) -> None:
        raise_field_problems(self, field_problems(self, CANARY_RULES))


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
    canaries : CanarySettings, optional
        Audit the run with canaries (``train/dp/canaries.py``).
    """

    noise_multiplier: float | None = None
    target_epsilon: float | None = None
    max_grad_norm: float = 1.0
    delta: float = 1e-5
    accountant: str = "prv"
    poisson_sampling: bool = True
    grad_sample_mode: str = DEFAULT_GRAD_SAMPLE_MODE
    canaries: CanarySettings | None = None

    def __post_init__(self) -> None:
        problems = field_problems(self, DP_RULES)
        noise_problem = noise_choice_problem(self.noise_multiplier, self.target_epsilon)
        if noise_problem:
            problems.append(("", noise_problem))
        raise_field_problems(self, problems)
