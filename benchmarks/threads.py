"""How many CPU threads a single training process should use: 1, one per core, and torch's
default where it differs, on an idle machine and with another process keeping one core busy,
side by side.

    .venv/bin/python benchmarks/threads.py [--preset smoke] [--rounds 3]

Each measurement trains one run of ``--preset`` (Adam + L2) from scratch in a fresh process
(``python -m sparsitylib run --threads N --force``) into a temporary store and reads the training
time the record gives; the settings are interleaved round by round and the median is printed,
with each setting's ratio to 1 thread. The busy neighbour is a process doing matrix products on
one thread, as another training worker would. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

NEIGHBOUR = """
import torch
torch.set_num_threads(1)
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a / 512)
"""


def train_once(preset: str, threads: int, store: str) -> float:
    """Seconds of training of one run in a fresh process with ``threads`` threads."""
    command = [sys.executable, "-m", "sparsitylib", "run", "--preset", preset, "--force", "--quiet",
               "--runs", store, "optimizer=adam", "decay_mode=l2"]
    command[4:4] = ["--threads", str(threads)]
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
    return float(json.loads(result.stdout)["duration_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    cores = os.cpu_count() or 1
    default = torch.get_num_threads()  # what a process without --threads would use (the CLI's default is 1)
    settings = {"1": 1, f"one per core ({cores})": cores}
    if default != cores:
        settings[f"torch default ({default})"] = default
    print(f"{args.preset} preset, Adam+L2, one run per measurement, median of {args.rounds} rounds; "
          f"{cores} cores (torch's default: {default} threads); torch {torch.__version__}")
    for neighbour in (False, True):
        busy = subprocess.Popen([sys.executable, "-c", NEIGHBOUR]) if neighbour else None
        time.sleep(2 if busy else 0)
        try:
            times = {name: [] for name in settings}
            with tempfile.TemporaryDirectory() as store:
                for _ in range(args.rounds):
                    for name, threads in settings.items():
                        times[name].append(train_once(args.preset, threads, store))
        finally:
            if busy:
                busy.kill()
        one = statistics.median(times["1"])
        print(f"\n{'with one core busy' if neighbour else 'idle machine'}:")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  threads {name:<22} {median:6.1f} s   x{median / one:4.2f} of 1 thread   "
                  f"(runs: {', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
