"""How long ``import memberscope`` takes in a fresh process, and what it spends the time on.

Run from the repository root: ``.venv/bin/python -m benchmarks.import_time [--repeats 5]
[--module memberscope] [--top 12]``. Starts ``--repeats`` fresh interpreters that each import
the module and report their own wall time (``perf_counter`` around the import, so interpreter
start-up is not counted), prints the median and the range, then one more process under
``python -X importtime`` and its top importers by cumulative time, and the third-party packages
the import left in ``sys.modules``. The target is a median ≤ 0.5 s on an idle machine. Not run
by pytest.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_TIMED_IMPORT = """
import json, sys, time
started = time.perf_counter()
import {module}
elapsed = time.perf_counter() - started
print(json.dumps({{"seconds": elapsed,
                  "packages": sorted({{name.split(".")[0] for name in sys.modules}})}}))
"""


def timed_import(module: str) -> tuple[float, list[str]]:
    """Seconds one fresh interpreter spends on ``import module``, and the top-level packages
    in its ``sys.modules`` afterwards."""
    done = subprocess.run([sys.executable, "-c", _TIMED_IMPORT.format(module=module)],
                          capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    return float(report["seconds"]), list(report["packages"])


def top_importers(module: str, top: int) -> list[tuple[float, float, str]]:
    """(cumulative s, self s, name) of the ``top`` slowest imports under ``-X importtime``."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative) / 1e6, int(own) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", default="memberscope")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)

    seconds = []
    packages: list[str] = []
    for _ in range(args.repeats):
        elapsed, packages = timed_import(args.module)
        seconds.append(elapsed)
    print(f"import {args.module}: median {statistics.median(seconds):.3f} s over "
          f"{args.repeats} fresh processes (min {min(seconds):.3f}, max {max(seconds):.3f})")
    print(f"\ntop {args.top} importers (-X importtime, one process):")
    print(f"{'cumulative s':>12} {'self s':>8}  module")
    for cumulative, own, name in top_importers(args.module, args.top):
        print(f"{cumulative:12.3f} {own:8.3f}  {name}")
    standard = set(sys.stdlib_module_names) | {"__main__", "_distutils_hack"}
    standard |= {args.module.split(".")[0], "cython_runtime"}
    third_party = [name for name in packages if name not in standard and not name.startswith("_")]
    print(f"\nthird-party packages loaded: {', '.join(third_party)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
