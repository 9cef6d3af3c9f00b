"""Experiment configs: every problem at once with its dotted path; resolved round trip."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from memberscope._runtime import choose_threads
from memberscope.errors import ConfigError
from memberscope.experiment.config import load_config, parse_toml, to_toml

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
name = "tiny"
seed = 3
[dataset]
name = "digits"
[training]
epochs = 3
threads = 1
[audit]
attacks = ["threshold"]
member_sample = "balanced"
[[variants]]
label = "mlp"
model = "mlp"
hidden = [32, 16]
[[variants]]
label = "cnn, DP-SGD"
num_conv = 1
optimizer = "sgd"
learning_rate = 0.1
[variants.dp]
target_epsilon = 2.0
accountant = "rdp"
"""

BAD = """
nmae = "x"
[dataset]
name = 3
[training]
epochs = "ten"
batch_size = 0
learning_rate = -1.0
[audit]
attacks = ["threshold", "lira2"]
member_sample = "some"
[[variants]]
label = "a"
optimizer = "adam"
[[variants]]
label = "a"
optimizer = "adamw2"
colour = "red"
[variants.dp]
noise_multiplier = 1.0
target_epsilon = 2.0
delta = 2
accountant = "rdpp"
"""


def test_every_problem_is_reported_at_once_with_its_dotted_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_toml(BAD)
    problems = caught.value.problems
    expected = [
        "nmae: unknown key 'nmae' (did you mean 'name'?)",
        "dataset.name: expected a string; got integer 3",
        "training.epochs: expected an integer; got string 'ten'",
        "training.batch_size: must be >= 1; got 0",
        "training.learning_rate: must be > 0; got -1.0",
        "audit.attacks[1]: unknown attack 'lira2'",
        "audit.member_sample: unknown member_sample 'some'",
        "variants[1].label: 'a' is already the label of variants[0]",
        "variants[1].optimizer: unknown optimizer 'adamw2' (did you mean 'adamw'?)",
        "variants[1].colour: unknown key 'colour'",
        "variants[1].dp.delta: must be in (0, 1); got 2",
        "variants[1].dp.accountant: unknown accountant 'rdpp' (did you mean 'rdp'?)",
        "variants[1].dp: give exactly one of noise_multiplier or target_epsilon",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)
    assert len(problems) == len(expected)
    assert f"{len(expected)} problem(s) in config" in str(caught.value)


def test_missing_required_tables_and_keys_are_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_toml("[training]\nepochs = 2\n")
    assert set(caught.value.problems) == {"dataset: missing (required)",
                                          "variants: missing (required)"}
    with pytest.raises(ConfigError, match=r"variants\[0\]\.label: missing"):
        parse_toml('[dataset]\nname="digits"\n[training]\nepochs=1\n[[variants]]\nmodel="mlp"')


def test_a_misspelt_dataset_joins_the_problem_list_with_a_suggestion() -> None:
    text = GOOD.replace('name = "digits"', 'name = "fashion_mnst"').replace(
        'optimizer = "sgd"', 'optimizer = "sdg"')
    with pytest.raises(ConfigError) as caught:
        parse_toml(text)
    assert caught.value.problems == (
        "dataset.name: unknown dataset 'fashion_mnst' (did you mean 'fashion_mnist'?); "
        "valid: cifar10, fashion_mnist, digits, PATH.npz",
        "variants[1].optimizer: unknown optimizer 'sdg' (did you mean 'sgd'?); "
        "valid: adam, adamw, sgd")
    assert parse_toml(GOOD.replace('"digits"', '"some/data.npz"')).dataset.name == \
        "some/data.npz"


def test_repeated_hidden_layer_sizes_are_layers_not_duplicates() -> None:
    config = parse_toml(GOOD.replace("hidden = [32, 16]", "hidden = [256, 256]"))
    assert config.variants[0].model.hidden == (256, 256)
    assert parse_toml(to_toml(config.to_dict())) == config
    with pytest.raises(ConfigError, match=r"audit\.attacks: has duplicates"):
        parse_toml(GOOD.replace('attacks = ["threshold"]', 'attacks = ["lr", "lr"]'))


def test_cifar10_takes_a_local_path_or_a_mirror_with_its_checksum() -> None:
    digest = "AB" * 32
    mirror = GOOD.replace('name = "digits"', 'name = "cifar10"\nurl = "https://mirror.example/'
                          f'c.tgz"\nsha256 = "{digest}"')
    config = parse_toml(mirror)
    assert (config.dataset.url, config.dataset.sha256) == ("https://mirror.example/c.tgz",
                                                           digest.lower())
    assert parse_toml(to_toml(config.to_dict())) == config
    assert config.fingerprint() != parse_toml(GOOD.replace('"digits"', '"cifar10"')).fingerprint()
    local = parse_toml(GOOD.replace('name = "digits"', 'name = "cifar10"\npath = "c.tgz"'))
    assert local.dataset.path == "c.tgz"
    official = parse_toml(GOOD.replace('"digits"', '"cifar10"'))
    assert local.fingerprint() == official.fingerprint()  # the same file, found elsewhere
    cases = {
        'name = "digits"\nurl = "https://m/c.tgz"':
            ["dataset.url: only the cifar10 dataset takes it; name is 'digits'"],
        'name = "cifar10"\nurl = "ftp://m/c.tgz"\nsha256 = "12"': [
            "dataset.url: must be an http:// or https:// address; got 'ftp://m/c.tgz'",
            "dataset.sha256: must be 64 hex digits (a SHA-256); got '12'"],
        'name = "cifar10"\nurl = "https://m/c.tgz"\npath = "c.tgz"':
            ["dataset: give path (a local tarball) or url (a mirror), not both"],
        f'name = "cifar10"\nsha256 = "{digest}"':
            ["dataset.sha256: it checks the file of path or url; give one of them"],
    }
    for table, problems in cases.items():
        with pytest.raises(ConfigError) as caught:
            parse_toml(GOOD.replace('name = "digits"', table))
        assert list(caught.value.problems) == problems, table


def test_invalid_toml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_toml("name = ")


def test_resolved_config_round_trips_and_fingerprint_ignores_threads() -> None:
    config = parse_toml(GOOD)
    again = parse_toml(to_toml(config.to_dict()))
    assert again == config
    assert again.fingerprint() == config.fingerprint()
    other_threads = parse_toml(GOOD.replace("threads = 1", "threads = 2"))
    assert other_threads.fingerprint() == config.fingerprint()
    other_seed = parse_toml(GOOD.replace("seed = 3", "seed = 4"))
    assert other_seed.fingerprint() != config.fingerprint()
    dp = config.variants[1].training
    assert (dp.optimizer, dp.learning_rate, dp.dp.target_epsilon, dp.dp.accountant) == (  # type: ignore[union-attr]
        "sgd", 0.1, 2.0, "rdp")
    assert config.variants[0].training.learning_rate == 0.001
    assert config.variants[0].model.hidden == (32, 16)


def test_written_config_reads_like_the_hand_written_one() -> None:
    text = to_toml(parse_toml(GOOD).to_dict())
    # one table per section, one [[variants]] block per variant, DP as its sub-table
    assert text.count("[[variants]]") == 2 and "[variants.dp]" in text
    assert 'name = "tiny"' in text and "delta = 1e-05" in text and "keep_scores = true" in text
    assert text.index("[dataset]") < text.index("[training]") < text.index("[[variants]]")


@pytest.mark.parametrize("name", ["quickstart.toml", "codelab_cifar10.toml"])
def test_shipped_examples_parse_and_exist_once(name: str) -> None:
    config = load_config(ROOT / "examples" / name)
    assert [v.label for v in config.variants] == ["2 layers", "3 layers", "3 layers, DP-Adam"]
    assert config.variants[2].training.dp is not None
    packaged = resources.files("memberscope").joinpath("experiment", "examples", name)
    # The repository's examples/ holds links to the packaged configs, not copies.
    assert (ROOT / "examples" / name).is_symlink()
    assert (ROOT / "examples" / name).resolve() == Path(str(packaged)).resolve()


def test_codelab_example_has_the_codelab_settings() -> None:
    config = load_config(ROOT / "examples" / "codelab_cifar10.toml")
    settings = config.variants[0].training
    assert (config.dataset.name, settings.epochs, config.epochs_per_report,
            settings.batch_size, settings.learning_rate) == ("cifar10", 50, 2, 50, 0.001)
    assert config.audit.attacks == ("threshold", "lr")
    assert config.audit.slices == ("entire", "class")
    assert [v.model.num_conv for v in config.variants] == [2, 3, 3]


def test_threads_follow_load_and_explicit_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMBERSCOPE_THREADS", raising=False)
    monkeypatch.setattr("memberscope._runtime.available_cores", lambda: 4)
    assert choose_threads(load=0.0) == 4
    assert choose_threads(load=2.2) == 2
    assert choose_threads(load=9.0) == 1
    assert choose_threads(3, load=9.0) == 3
    monkeypatch.setenv("MEMBERSCOPE_THREADS", "2")
    assert choose_threads(load=0.0) == 2


def test_importing_config_runner_and_train_does_not_import_torch() -> None:
    code = ("import sys, memberscope, memberscope.train, memberscope.experiment.config, "
            "memberscope.experiment.runner, memberscope.train.trainer, memberscope.monitor.torch, "
            "memberscope.cli.run; "
            "print(sorted(m for m in ('torch', 'opacus', 'matplotlib', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_dataset_pad_adds_zero_borders_and_refuses_non_images(tmp_path) -> None:
    import numpy as np

    from memberscope.errors import InputError
    from memberscope.experiment.runner import load_run_dataset

    rng = np.random.default_rng(0)
    images = tmp_path / "images.npz"
    np.savez(images, x_train=rng.random((6, 4, 5, 1), dtype=np.float32), y_train=np.arange(6) % 2,
             x_test=rng.random((4, 4, 5, 1), dtype=np.float32), y_test=np.arange(4) % 2)
    base = ('schema_version = 1\nname = "p"\n[dataset]\nname = "{path}"\n{extra}'
            '[training]\nepochs = 1\n[[variants]]\nlabel = "a"\n')
    config = parse_toml(base.format(path=images, extra="pad = 2\n"))
    assert config.dataset.pad == 2
    plain = load_run_dataset(parse_toml(base.format(path=images, extra="")))
    padded = load_run_dataset(config)
    assert padded.input_shape == (8, 9, 1) and padded.x_train.shape == (6, 8, 9, 1)
    np.testing.assert_array_equal(padded.x_train[:, 2:-2, 2:-2], plain.x_train)
    assert padded.x_test[:, :2].sum() == 0 and padded.x_test[:, :, -2:].sum() == 0
    with pytest.raises(ConfigError, match=r"dataset\.pad"):
        parse_toml(base.format(path=images, extra="pad = -1\n"))
    tabular = tmp_path / "tabular.npz"
    np.savez(tabular, x_train=rng.random((6, 3)), y_train=np.arange(6) % 2,
             x_test=rng.random((4, 3)), y_test=np.arange(4) % 2)
    with pytest.raises(InputError, match=r"dataset\.pad: only images"):
        load_run_dataset(parse_toml(base.format(path=tabular, extra="pad = 1\n")))


def test_nonmembers_from_train_are_held_out_training_examples(tmp_path) -> None:
    import numpy as np

    from memberscope.errors import InputError
    from memberscope.experiment.runner import load_run_dataset

    n = 40
    rows = np.arange(n, dtype=np.float32)  # each image holds its own training index
    data = tmp_path / "data.npz"
    np.savez(data, x_train=np.broadcast_to(rows[:, None], (n, 3)).copy(), y_train=np.arange(n) % 2,
             x_test=np.full((5, 3), -1.0, dtype=np.float32), y_test=np.arange(5) % 2)
    base = ('schema_version = 1\nname = "h"\n[dataset]\nname = "{path}"\n{extra}'
            '[training]\nepochs = 1\n[[variants]]\nlabel = "a"\n')

    def load(extra: str) -> tuple:
        split = load_run_dataset(parse_toml(base.format(path=data, extra=extra)))
        return split.x_train[:, 0].astype(int), split.x_test[:, 0].astype(int), split

    members, nonmembers, split = load('nonmembers = "train"\nmax_train = 12\nmax_test = 9\n')
    assert len(members) == 12 and len(nonmembers) == 9
    assert not set(members) & set(nonmembers) and min(nonmembers) >= 0  # none from the test split
    np.testing.assert_array_equal(split.y_test, nonmembers % 2)  # labels follow their images
    assert sorted(members) != list(range(12))  # a seeded random draw, not the first N
    again, _, _ = load('nonmembers = "train"\nmax_train = 12\nmax_test = 9\n')
    np.testing.assert_array_equal(again, members)
    members, nonmembers, _ = load('nonmembers = "train"\n')
    assert sorted([*members, *nonmembers]) == list(range(n)) and len(members) == n // 2
    _, nonmembers, _ = load("")
    assert set(nonmembers) == {-1}
    with pytest.raises(InputError, match=r"max_train \+ dataset\.max_test must fit in the 40"):
        load('nonmembers = "train"\nmax_train = 30\nmax_test = 11\n')
    with pytest.raises(ConfigError, match=r"dataset\.nonmembers: .*'holdout'"):
        parse_toml(base.format(path=data, extra='nonmembers = "holdout"\n'))


def test_busy_cpus_sees_a_busy_process() -> None:
    from memberscope._runtime import busy_cpus

    if busy_cpus(0.1) is None:
        pytest.skip("no /proc/stat")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy_cpus(0.2)  # let it start
        busy = busy_cpus(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and busy >= 0.7  # one spinning process keeps one CPU busy


def test_dp_canaries_table_round_trips_with_defaults() -> None:
    from memberscope.train.settings import CanarySettings

    config = parse_toml(GOOD + "[variants.dp.canaries]\nm = 500\n")
    dp = config.variants[1].training.dp
    assert dp is not None and dp.canaries == CanarySettings(m=500)
    assert parse_toml(to_toml(config.to_dict())) == config
    assert parse_toml(GOOD).variants[1].training.dp.canaries is None  # type: ignore[union-attr]
    assert config.fingerprint() != parse_toml(GOOD).fingerprint()


def test_bad_canaries_table_names_each_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_toml(GOOD + "[variants.dp.canaries]\nm = 5\nwhite_box = 1\nsede = 2\n")
    problems = caught.value.problems
    for text in ("variants[1].dp.canaries.m: must be >= 10; got 5",
                 "variants[1].dp.canaries.white_box: expected",
                 "variants[1].dp.canaries.sede: unknown key 'sede' (did you mean 'seed'?)"):
        assert any(p.startswith(text) for p in problems), (text, problems)


# --- one statement of each settings rule: the dataclasses' --------------------------------

MINIMAL = """
[dataset]
name = "digits"
[training]
epochs = 2
[[variants]]
label = "dp"
[variants.dp]
noise_multiplier = 1.0
[variants.dp.canaries]
"""


def test_defaults_of_the_config_are_the_dataclasses_defaults() -> None:
    from memberscope.audit import DEFAULT_ATTACKS, DEFAULT_SLICES
    from memberscope.train.settings import CanarySettings, DPSettings, TrainSettings

    config = parse_toml(MINIMAL)
    training = config.variants[0].training
    assert training.dp == DPSettings(noise_multiplier=1.0, canaries=CanarySettings())
    assert training == TrainSettings(epochs=2, dp=training.dp)
    assert (config.audit.attacks, config.audit.slices) == (DEFAULT_ATTACKS, DEFAULT_SLICES)


@pytest.mark.parametrize(("table", "key", "value", "problem"), [
    ("training", "momentum", 1.5, "must be in [0, 1); got 1.5"),
    ("training", "batch_size", 0, "must be >= 1; got 0"),
    ("training", "optimizer", "adamm", "unknown optimizer 'adamm' (did you mean 'adam'?)"),
    ("dp", "max_grad_norm", 0, "must be > 0; got 0"),
    ("dp", "delta", 1.0, "must be in (0, 1); got 1.0"),
    ("dp", "target_epsilon", -0.5, "must be > 0; got -0.5"),
    ("dp", "grad_sample_mode", "hook", "unknown grad_sample_mode 'hook'"),
    ("canaries", "m", 9, "must be >= 10; got 9"),
    ("canaries", "gradient_scale", -1.0, "must be > 0; got -1.0"),
])
def test_config_and_dataclass_refuse_a_value_with_the_same_words(table: str, key: str,
                                                                 value: object,
                                                                 problem: str) -> None:
    from memberscope.errors import InputError
    from memberscope.train.settings import CanarySettings, DPSettings, TrainSettings

    where, dotted, owner, arguments = {
        "training": ("[training]", "training", TrainSettings, {"epochs": 2}),
        "dp": ("[variants.dp]", "variants[0].dp", DPSettings, {"noise_multiplier": 1.0}),
        "canaries": ("[variants.dp.canaries]", "variants[0].dp.canaries", CanarySettings, {}),
    }[table]
    toml_value = f'"{value}"' if isinstance(value, str) else repr(value)
    with pytest.raises(ConfigError) as caught:
        parse_toml(MINIMAL.replace(where, f"{where}\n{key} = {toml_value}"))
    assert any(p.startswith(f"{dotted}.{key}: {problem}") for p in caught.value.problems), \
        caught.value.problems
    with pytest.raises(InputError) as refused:
        owner(**{**arguments, key: value})
    assert f"{owner.__name__}.{key}: {problem}" in str(refused.value)


def test_a_settings_dataclass_names_every_problem_at_once() -> None:
    from memberscope.errors import InputError
    from memberscope.train.settings import DPSettings

    with pytest.raises(InputError) as caught:
        DPSettings(noise_multiplier=-1.0, target_epsilon=3.0, max_grad_norm=0.0, delta=2.0,
                   accountant="rdpp")
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        "DPSettings.noise_multiplier", "DPSettings.max_grad_norm", "DPSettings.delta",
        "DPSettings.accountant", "DPSettings"]
    assert lines[-1].startswith("DPSettings: give exactly one of noise_multiplier or "
                                "target_epsilon; got noise_multiplier=-1.0")
