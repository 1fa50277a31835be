"""Time every notebook when all its runs are already in the store (target: <= 30 s each).

    .venv/bin/python benchmarks/notebook_cached.py [--preset quick]

Run it after `make reproduce` (same preset), so that no notebook has anything to train. Outputs
go to a temporary folder; the store is only read (the script checks that no run was added).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sparsitylib.notebook import project_root
from sparsitylib.reproduce import execute, notebooks
from sparsitylib.store import RunStore

TARGET_SECONDS = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    args = parser.parse_args()
    root = project_root()
    store = RunStore(root / "runs") if not RunStore().root.is_absolute() else RunStore()
    before = set(store.run_ids())
    print(f"{len(before)} runs in {store.root}")
    with tempfile.TemporaryDirectory() as folder:
        for notebook in notebooks(root / "notebooks"):
            start = time.perf_counter()
            status, error = execute(notebook, Path(folder) / notebook.name,
                                    {"preset": args.preset, "figures_dir": folder}, root / "notebooks")
            seconds = time.perf_counter() - start
            flag = "ok" if seconds <= TARGET_SECONDS else f"over the {TARGET_SECONDS} s target"
            print(f"{notebook.stem:<28} {status:<7} {seconds:6.1f} s  {flag}" + (f"  ({error})" if error else ""))
    added = set(store.run_ids()) - before
    print("no run was trained" if not added else f"WARNING: {len(added)} run(s) were trained, so timings include training")


if __name__ == "__main__":
    main()
