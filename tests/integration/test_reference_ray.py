"""Reference training on a real local Ray cluster, reached through its address.

One head node (2 CPUs, 127.0.0.1) serves the module. It runs under ``ray start --block`` in its
own process group, which teardown ends by its id — ``ray stop`` would also stop other people's
Ray processes on a shared machine.

The cluster and this process use a Ray state of their own, not the user's: a throwaway HOME
(Ray reads ``~/.ray/auth_token`` there), the authentication mode stated explicitly
(``RAY_AUTH_MODE``), no inherited ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
``RAY_ADDRESS``, and a temp dir of its own. A token left in the real ``~/.ray`` by an earlier
``memberscope reference train --executor ray`` made ``ray start`` require a token that this
process did not send. The mode is "disabled", not "token": this process imported Ray before
the fixture runs, and Ray fixes its client's authentication settings at import, so a token
mode switched on here would not reach the client (the head, on 127.0.0.1 for one module, then
asks nothing of it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

from ray import cloudpickle  # noqa: E402  (Ray serialises tasks with its own vendored copy)
from tests.helpers import ray_trainers  # noqa: E402

import memberscope  # noqa: E402
from memberscope.reference.executors import RayExecutor  # noqa: E402
from memberscope.reference.recipe import TrainingRecipe  # noqa: E402
from memberscope.reference.training import balanced_splits, model_seed, train_models  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def own_ray_state(tmp_path_factory):
    """Point Ray, in this process and in the cluster it starts, at a state of its own."""
    home = tmp_path_factory.mktemp("ray-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("RAY_AUTH_MODE", "disabled")
        for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
            patch.delenv(name, raising=False)
        yield home


@pytest.fixture(scope="module")
def ray_address(own_ray_state):
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="msray")
    src = str(Path(memberscope.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [src, *filter(None, [os.environ.get("PYTHONPATH")])])}
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--port={port}",
         "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false",
         f"--temp-dir={temp_dir}", "--block", "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    cloudpickle.register_pickle_by_value(ray_trainers)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ray.init(address=address, log_to_driver=False)
                break
            except Exception:
                if time.monotonic() > deadline or head.poll() is not None:
                    raise
                time.sleep(2)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cloudpickle.unregister_pickle_by_value(ray_trainers)
        _end_group(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _end_group(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to the head's own process group (it leads a new session)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            time.sleep(1)  # let children of the group exit as well
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # leftovers (workers) of the same group
        os.killpg(process.pid, signal.SIGKILL)


def _population(n: int = 50):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 3)), rng.integers(0, 4, n)


def test_ray_executor_gives_the_local_results(ray_address, tmp_path) -> None:
    x, y = _population()
    recipe = TrainingRecipe(queries=("identity", "hflip"))
    splits = balanced_splits(4, len(y))
    local, local_prob = train_models(recipe, x, y, splits, trainer=ray_trainers.quick_trainer)
    remote, remote_prob = train_models(recipe, x, y, splits, trainer=ray_trainers.quick_trainer,
                                       executor="ray", ray_address=ray_address,
                                       cache_dir=tmp_path)
    np.testing.assert_array_equal(remote, local)
    np.testing.assert_array_equal(remote_prob, local_prob)
    assert len(list(tmp_path.glob("*.npz"))) == 4


def test_a_killed_worker_is_retried_and_nothing_is_lost(ray_address, tmp_path) -> None:
    x, y = _population()
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    victim = model_seed(0, 1)
    recipe = TrainingRecipe(architecture_args={"marker_dir": str(marker_dir),
                                               "victim_seed": victim})
    killed: list[int] = []

    def kill_the_victim() -> None:
        marker = marker_dir / f"{victim}.pid"
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # the pid is written; the task is sleeping
        pid = int(marker.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_the_victim, daemon=True)
    killer.start()
    splits = balanced_splits(4, len(y))
    signal_, _ = train_models(recipe, x, y, splits, trainer=ray_trainers.crash_once_trainer,
                              executor=RayExecutor(ray_address, max_retries=2),
                              cache_dir=tmp_path / "cache")
    killer.join(5)
    assert killed, "the victim task never started"
    expected, _ = train_models(recipe, x, y, splits, trainer=ray_trainers.crash_once_trainer)
    np.testing.assert_array_equal(signal_, expected)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 4
