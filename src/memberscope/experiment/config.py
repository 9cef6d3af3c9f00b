"""Experiment configs: TOML -> frozen dataclasses, with every problem reported at once.

A config names a dataset, training defaults, the audit, and model variants; each variant may
override the training defaults and add DP. Example (``memberscope run`` takes this)::

    name = "quickstart"
    seed = 0
    [dataset]
    name = "fashion_mnist"          # cifar10 | fashion_mnist | digits | path/to/data.npz
    nonmembers = "test"             # or "train": held-out training images
    [training]
    epochs = 10
    epochs_per_report = 2
    batch_size = 50
    learning_rate = 0.001
    optimizer = "adam"
    [audit]
    attacks = ["threshold", "lr"]
    slices = ["entire", "class"]
    member_sample = "balanced"      # or a number, or "all"
    [audit.split_guard]             # every audit checks the split with the blind attack;
    control = true                  # a control model per variant also checks it
    [[variants]]
    label = "2 layers"
    model = "small_cnn"
    num_conv = 2
    [[variants]]
    label = "3 layers, DP-Adam"
    model = "small_cnn"
    num_conv = 3
    [variants.dp]
    noise_multiplier = 1.1          # or target_epsilon = 3.0
    max_grad_norm = 1.0
    [variants.dp.canaries]          # optional: a one-run audit with m gradient canaries
    m = 1000
    black_box = true                # and m mislabelled-example canaries

Errors name the dotted path of each problem, e.g.
``variants[1].optimizer: unknown optimizer 'adamw2' (did you mean 'adamw'?); valid: …``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from memberscope._validation import FieldRule, described
from memberscope.audit import DEFAULT_ATTACKS, DEFAULT_SLICES
from memberscope.errors import ConfigError, InputError, unknown_name_message
from memberscope.slicing import SLICE_KINDS as SLICE_KINDS_IN_PYTHON
from memberscope.train.dp.settings import (
    CANARY_RULES,
    DP_RULES,
    CanarySettings,
    DPSettings,
    noise_choice_problem,
)
from memberscope.train.models import ACTIVATIONS, MODELS
from memberscope.train.settings import TRAIN_RULES, TrainSettings

CONFIG_SCHEMA_VERSION = 1
# A config names slices by kind; a custom slice needs a mask, which only Python can give.
SLICE_KINDS = tuple(kind for kind in SLICE_KINDS_IN_PYTHON if kind != "custom")
MEMBER_SAMPLE_WORDS = ("all", "balanced")
NONMEMBER_SOURCES = ("test", "train")


# --- the dataclasses ------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetConfig:
    """Which data: ``name`` (a dataset name or an ``.npz`` path); optional seeded subsets of
    at most ``max_train`` members and ``max_test`` non-members (for quick runs); ``pad``
    zero pixels added on every side of each image (2 makes 28×28 images 32×32). For
    ``cifar10`` only: ``path`` of a local copy of the tarball, or a mirror ``url``, with the
    file's ``sha256`` when it is not the official tarball.

    ``nonmembers`` says where non-members come from: "test" (the test split) or "train"
    (training images left out of training, disjoint from the members, so both sides share one
    distribution even where the test split differs slightly from the training split)."""

    name: str
    max_train: int | None = None
    max_test: int | None = None
    cache_dir: str | None = None
    pad: int = 0
    path: str | None = None
    url: str | None = None
    sha256: str | None = None
    nonmembers: str = "test"


@dataclass(frozen=True)
class SplitGuardConfig:
    """The split guard of every audit (the blind attack on the inputs always runs):
    ``control`` trains a control model per variant, by the variant's recipe on as many
    training examples as the members, disjoint from members and non-members, alongside the
    variant (epoch by epoch), and audits it on the same examples."""

    control: bool = False


@dataclass(frozen=True)
class AuditConfig:
    """What the monitor runs: ``member_sample`` is "all", "balanced" (as many members as
    non-members, a fixed seeded sample) or a number of members."""

    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    slices: tuple[str, ...] = DEFAULT_SLICES
    member_sample: int | str = "all"
    batch_size: int = 128
    keep_scores: bool = True
    split_guard: SplitGuardConfig = field(default_factory=SplitGuardConfig)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture: ``small_cnn`` (``num_conv``) or ``mlp`` (``hidden`` sizes)."""

    kind: str = "small_cnn"
    num_conv: int = 3
    activation: str = "relu"
    hidden: tuple[int, ...] = (128,)


@dataclass(frozen=True)
class VariantConfig:
    """One model variant: its ``label`` (unique), architecture and training settings."""

    label: str
    model: ModelConfig
    training: TrainSettings


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment; build it with :func:`load_config` or :func:`parse_config`."""

    name: str
    seed: int
    dataset: DatasetConfig
    epochs_per_report: int
    audit: AuditConfig
    variants: tuple[VariantConfig, ...]
    threads: int | None = None
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain TOML-able data (every default filled in)."""
        return resolved_document(self)

    def fingerprint(self) -> str:
        """SHA-256 of everything that decides the results: not the thread count, nor where
        the data file comes from (its ``sha256``, when given, identifies it)."""
        document = self.to_dict()
        document["training"].pop("threads", None)
        for where in ("path", "url"):
            document["dataset"].pop(where, None)
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


# --- field checks ---------------------------------------------------------------------------
#
# A table is checked field by field; the rules and defaults of the settings that have their own
# dataclass (training, DP, canaries) are that dataclass's: ``TRAIN_RULES``, ``DP_RULES`` and
# ``CANARY_RULES`` and the dataclass fields' defaults, never restated here.

Check = Callable[[Any], "tuple[Any, str | None]"]
_MISSING = object()


@dataclass(frozen=True)
class _Field:
    check: Check
    default: Any = _MISSING


def _default(owner: type, name: str) -> Any:
    """The default of dataclass ``owner``'s field ``name`` (``_MISSING`` if it has none)."""
    spec = {f.name: f for f in fields(owner)}[name]
    if spec.default is not MISSING:
        return spec.default
    if spec.default_factory is not MISSING:
        return spec.default_factory()
    return _MISSING


def _ruled(owner: type, rules: Mapping[str, FieldRule], *, override: bool = False,
           keys: tuple[str, ...] | None = None) -> dict[str, _Field]:
    """Fields checked by ``owner``'s rules, with its defaults (``None`` where ``override``:
    the value then comes from elsewhere, e.g. a variant's training value from [training])."""
    return {key: _Field(rules[key].check, None if override else _default(owner, key))
            for key in (keys or tuple(rules))}


def _int(minimum: int | None = None) -> Check:
    return FieldRule(int, at_least=minimum).check


def _str(kind: str | None = None, choices: tuple[str, ...] = ()) -> Check:
    return FieldRule(str, names=choices, name_kind=kind or "value").check


_bool = FieldRule(bool).check


def _list(item: Check, *, allow_empty: bool = False, unique: bool = True) -> Check:
    def check(value: Any) -> tuple[Any, str | None]:
        if not isinstance(value, list):
            return value, f"expected an array; {described(value)}"
        if not value and not allow_empty:
            return value, "must not be empty"
        items = []
        for index, element in enumerate(value):
            converted, problem = item(element)
            if problem:
                return value, f"[{index}]: {problem}"
            items.append(converted)
        if unique and len(set(items)) != len(items):
            return value, f"has duplicates: {value}"
        return tuple(items), None
    return check


def _attack_name(value: Any) -> tuple[Any, str | None]:
    from memberscope.attacks import list_attacks

    names = tuple(a.name for a in list_attacks())
    return _str("attack", names)(value)


def _dataset_name(value: Any) -> tuple[Any, str | None]:
    """A built-in dataset name or an ``.npz`` path; a misspelt name gets a did-you-mean."""
    from memberscope.data import DATASET_NAMES

    checked, problem = _str()(value)
    if problem or checked in DATASET_NAMES or checked.endswith(".npz") or Path(checked).is_file():
        return checked, problem
    return value, unknown_name_message("dataset", checked, (*DATASET_NAMES, "PATH.npz"))


def _url(value: Any) -> tuple[Any, str | None]:
    checked, problem = _str()(value)
    if problem is None and not checked.startswith(("http://", "https://")):
        problem = f"must be an http:// or https:// address; got {checked!r}"
    return checked, problem


def _sha256(value: Any) -> tuple[Any, str | None]:
    checked, problem = _str()(value)
    if problem is None:
        checked = checked.strip().lower()
        if len(checked) != 64 or any(c not in "0123456789abcdef" for c in checked):
            problem = f"must be 64 hex digits (a SHA-256); got {value!r}"
    return checked, problem


def _check_dataset_source(dataset: Mapping[str, Any], problems: list[str]) -> None:
    """``path``/``url``/``sha256`` belong to cifar10; a file comes from one place."""
    given = [key for key in ("path", "url", "sha256") if dataset.get(key) is not None]
    if given and dataset.get("name") not in (None, "cifar10"):
        problems.extend(f"dataset.{key}: only the cifar10 dataset takes it; name is "
                        f"{dataset['name']!r}" for key in given)
    elif "path" in given and "url" in given:
        problems.append("dataset: give path (a local tarball) or url (a mirror), not both")
    elif given == ["sha256"]:
        problems.append("dataset.sha256: it checks the file of path or url; give one of them")


def _member_sample(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str):
        return _str("member_sample", MEMBER_SAMPLE_WORDS)(value)
    converted, problem = _int(1)(value)
    if problem:
        return value, f"expected \"all\", \"balanced\" or a positive integer; {described(value)}"
    return converted, None


def _threads(value: Any) -> tuple[Any, str | None]:
    if value == "auto":
        return None, None
    converted, problem = _int(1)(value)
    if problem:
        return value, f"expected \"auto\" or a positive integer; {described(value)}"
    return converted, None


DATASET_FIELDS = {
    "name": _Field(_dataset_name),
    "max_train": _Field(_int(1), _default(DatasetConfig, "max_train")),
    "max_test": _Field(_int(1), _default(DatasetConfig, "max_test")),
    "cache_dir": _Field(_str(), _default(DatasetConfig, "cache_dir")),
    "pad": _Field(_int(0), _default(DatasetConfig, "pad")),
    "path": _Field(_str(), _default(DatasetConfig, "path")),
    "url": _Field(_url, _default(DatasetConfig, "url")),
    "sha256": _Field(_sha256, _default(DatasetConfig, "sha256")),
    "nonmembers": _Field(_str("nonmembers", NONMEMBER_SOURCES),
                         _default(DatasetConfig, "nonmembers")),
}
_TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "optimizer", "momentum",
                  "weight_decay")
TRAINING_FIELDS = {
    **_ruled(TrainSettings, TRAIN_RULES, keys=_TRAINING_KEYS),
    "epochs_per_report": _Field(_int(1), 2),
    "threads": _Field(_threads, None),
}
AUDIT_FIELDS = {
    "attacks": _Field(_list(_attack_name), _default(AuditConfig, "attacks")),
    "slices": _Field(_list(_str("slice kind", SLICE_KINDS)), _default(AuditConfig, "slices")),
    "member_sample": _Field(_member_sample, _default(AuditConfig, "member_sample")),
    "batch_size": _Field(_int(1), _default(AuditConfig, "batch_size")),
    "keep_scores": _Field(_bool, _default(AuditConfig, "keep_scores")),
    "split_guard": _Field(lambda v: (v, None), None),  # a table, checked on its own
}
SPLIT_GUARD_FIELDS = {
    "control": _Field(_bool, _default(SplitGuardConfig, "control")),
}
VARIANT_FIELDS = {
    "label": _Field(_str()),
    "model": _Field(_str("model", MODELS), _default(ModelConfig, "kind")),
    "num_conv": _Field(_int(1), _default(ModelConfig, "num_conv")),
    "activation": _Field(_str("activation", ACTIVATIONS), _default(ModelConfig, "activation")),
    # Layer sizes may repeat: [256, 256] is two hidden layers of 256.
    "hidden": _Field(_list(_int(1), allow_empty=True, unique=False),
                     _default(ModelConfig, "hidden")),
    # training overrides; None = the [training] value
    **_ruled(TrainSettings, TRAIN_RULES, override=True, keys=_TRAINING_KEYS[1:]),
    "dp": _Field(lambda v: (v, None), None),  # a table, checked on its own
}
DP_FIELDS = {
    **_ruled(DPSettings, DP_RULES),
    "canaries": _Field(lambda v: (v, None), None),  # a table, checked on its own
}
CANARY_FIELDS = _ruled(CanarySettings, CANARY_RULES)
TOP_FIELDS = {
    "schema_version": _Field(_int(1), CONFIG_SCHEMA_VERSION),
    "name": _Field(_str(), "experiment"),
    "seed": _Field(_int(0), 0),
    "dataset": _Field(lambda v: (v, None)),
    "training": _Field(lambda v: (v, None)),
    "audit": _Field(lambda v: (v, None), None),
    "variants": _Field(lambda v: (v, None)),
}


def _check_table(data: Any, path: str, fields: Mapping[str, _Field],
                 problems: list[str]) -> dict[str, Any]:
    """Check one table against ``fields``: unknown keys, missing keys, types and values."""
    if not isinstance(data, Mapping):
        problems.append(f"{path}: expected a table; {described(data)}")
        return {}
    prefix = f"{path}." if path else ""
    out: dict[str, Any] = {}
    for key in data:
        if key not in fields:
            problems.append(f"{prefix}{key}: " + unknown_name_message("key", key, list(fields)))
    for key, spec in fields.items():
        if key not in data:
            if spec.default is _MISSING:
                problems.append(f"{prefix}{key}: missing (required)")
            else:
                out[key] = spec.default
            continue
        value, problem = spec.check(data[key])
        if problem:
            separator = "" if problem.startswith("[") else ": "
            problems.append(f"{prefix}{key}{separator}{problem}")
        else:
            out[key] = value
    return out


# --- parsing --------------------------------------------------------------------------------


def _load_toml(text: str, where: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        from memberscope.errors import require

        tomllib = require("tomli", "torch", "reading TOML on Python 3.10")
    try:
        return dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: not valid TOML: {exc}"]) from None


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and check a TOML config file; raises :class:`ConfigError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"config file {path} could not be read: {exc}") from exc
    return parse_config(_load_toml(text, str(path)))


def parse_toml(text: str) -> ExperimentConfig:
    """Check a config given as TOML text."""
    return parse_config(_load_toml(text, "config"))


def parse_config(document: Mapping[str, Any]) -> ExperimentConfig:
    """Check a config given as a parsed TOML document; every problem at once."""
    problems: list[str] = []
    top = _check_table(document, "", TOP_FIELDS, problems)
    if top.get("schema_version", CONFIG_SCHEMA_VERSION) != CONFIG_SCHEMA_VERSION:
        problems.append(f"schema_version: this version reads {CONFIG_SCHEMA_VERSION}; "
                        f"got {top['schema_version']}")
    dataset = _check_table(top.get("dataset", {}), "dataset", DATASET_FIELDS, problems) \
        if "dataset" in top else {}
    _check_dataset_source(dataset, problems)
    training = _check_table(top.get("training", {}), "training", TRAINING_FIELDS, problems) \
        if "training" in top else {}
    audit = _check_table(top.get("audit") or {}, "audit", AUDIT_FIELDS, problems)
    guard = audit.get("split_guard")
    audit["split_guard"] = SplitGuardConfig(**_check_table(
        guard if guard is not None else {}, "audit.split_guard", SPLIT_GUARD_FIELDS, problems))
    variants = _check_variants(top.get("variants"), training, problems) \
        if "variants" in top else ()
    if problems:
        raise ConfigError(problems)
    seed = top["seed"]
    return ExperimentConfig(
        name=top["name"], seed=seed,
        dataset=DatasetConfig(**dataset),
        epochs_per_report=training["epochs_per_report"],
        audit=AuditConfig(**audit),
        variants=tuple(_build_variant(v, training, seed) for v in variants),
        threads=training["threads"],
        source=dict(document),
    )


def _check_variants(data: Any, training: Mapping[str, Any],
                    problems: list[str]) -> tuple[dict[str, Any], ...]:
    if not isinstance(data, list) or not data:
        problems.append("variants: expected at least one [[variants]] table; "
                        f"{described(data) if not isinstance(data, list) else 'got none'}")
        return ()
    checked = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data):
        path = f"variants[{index}]"
        variant = _check_table(item, path, VARIANT_FIELDS, problems)
        label = variant.get("label")
        if isinstance(label, str):
            if label in seen:
                problems.append(f"{path}.label: '{label}' is already the label of "
                                f"variants[{seen[label]}]; labels must be unique")
            seen.setdefault(label, index)
        if variant.get("dp") is not None:
            dp = _check_table(variant["dp"], f"{path}.dp", DP_FIELDS, problems)
            noise_problem = noise_choice_problem(dp.get("noise_multiplier"),
                                                 dp.get("target_epsilon"))
            if dp and noise_problem:
                problems.append(f"{path}.dp: {noise_problem}")
            if dp.get("canaries") is not None:
                dp["canaries"] = _check_table(dp["canaries"], f"{path}.dp.canaries",
                                              CANARY_FIELDS, problems)
            variant["dp"] = dp
        if variant.get("model") == "mlp" and "num_conv" in (item or {}):
            problems.append(f"{path}.num_conv: only small_cnn has conv layers; model is mlp")
        if variant.get("model") == "small_cnn" and isinstance(item, Mapping) and "hidden" in item:
            problems.append(f"{path}.hidden: only mlp has hidden sizes; model is small_cnn")
        checked.append(variant)
    return tuple(checked)


def _build_variant(variant: Mapping[str, Any], training: Mapping[str, Any],
                   seed: int) -> VariantConfig:
    def pick(key: str) -> Any:
        return training[key] if variant.get(key) is None else variant[key]

    dp = None
    if variant.get("dp"):
        canaries = variant["dp"].get("canaries")
        dp = DPSettings(**{**variant["dp"],
                           "canaries": CanarySettings(**canaries) if canaries else None})
    settings = TrainSettings(
        epochs=training["epochs"], batch_size=pick("batch_size"),
        learning_rate=pick("learning_rate"), optimizer=pick("optimizer"),
        momentum=pick("momentum"), weight_decay=pick("weight_decay"), seed=seed, dp=dp)
    model = ModelConfig(kind=variant["model"], num_conv=variant["num_conv"],
                        activation=variant["activation"], hidden=tuple(variant["hidden"]))
    return VariantConfig(label=variant["label"], model=model, training=settings)


# --- the resolved document ------------------------------------------------------------------


def resolved_document(config: ExperimentConfig) -> dict[str, Any]:
    """Every setting with defaults filled in, in the TOML layout :func:`parse_config` reads."""
    first = config.variants[0].training
    training: dict[str, Any] = {
        "epochs": first.epochs, "epochs_per_report": config.epochs_per_report,
        "batch_size": first.batch_size, "learning_rate": first.learning_rate,
        "optimizer": first.optimizer, "momentum": first.momentum,
        "weight_decay": first.weight_decay,
        "threads": "auto" if config.threads is None else config.threads,
    }
    variants = []
    for variant in config.variants:
        item: dict[str, Any] = {"label": variant.label, "model": variant.model.kind,
                                "activation": variant.model.activation}
        if variant.model.kind == "small_cnn":
            item["num_conv"] = variant.model.num_conv
        else:
            item["hidden"] = list(variant.model.hidden)
        settings = variant.training
        for key in ("optimizer", "learning_rate", "batch_size", "momentum", "weight_decay"):
            item[key] = getattr(settings, key)
        if settings.dp is not None:
            item["dp"] = {k: v for k, v in asdict(settings.dp).items() if v is not None}
        variants.append(item)
    dataset = {k: v for k, v in asdict(config.dataset).items() if v is not None}
    audit = asdict(config.audit)
    audit["attacks"], audit["slices"] = list(audit["attacks"]), list(audit["slices"])
    if config.audit.split_guard == SplitGuardConfig():
        # Left out at its defaults, so configs (and run fingerprints) from before it existed
        # resolve as they did.
        del audit["split_guard"]
    return {"schema_version": CONFIG_SCHEMA_VERSION, "name": config.name, "seed": config.seed,
            "dataset": dataset, "training": training, "audit": audit, "variants": variants}


def to_toml(document: Mapping[str, Any]) -> str:
    """A config document (scalars, arrays, tables, arrays of tables) as TOML text: the run
    directory's ``config.toml``, which :func:`load_config` reads back to an equal config."""
    from memberscope.errors import require

    tomli_w: Any = require("tomli_w", "torch", "writing a run's config.toml")
    return str(tomli_w.dumps(document))
