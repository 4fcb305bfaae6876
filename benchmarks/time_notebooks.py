"""Time whole notebooks in a profile: each code cell's seconds and the total, as a student's "Restart and
run all" would take them. Run it on an otherwise idle machine (a shared CPU overstates times several fold).

    .venv/bin/python benchmarks/time_notebooks.py --profile offline notebooks/0*.ipynb
    .venv/bin/python benchmarks/time_notebooks.py --profile full --random-weights notebooks/05_style_transfer.ipynb

--profile sets COURSE_PROFILE for the notebook. --random-weights sets COURSE_WEIGHTS=random: every model gets
random weights at the profile's sizes, so that the `full` profile can be timed on a machine without its
downloads (speed does not depend on the weights; the fooling loop of 04 runs all its steps then, since a
random network is never fooled, so that figure is an upper bound; a check cell that asserts what a trained
network does fails then, which is reported and passed over). Downloads that a notebook attempts in
`full` fail fast offline and take the notebook's fall-back path, as they would for a user without a network.
--in-process runs the cells in this Python process instead of a Jupyter kernel (for machines without
Jupyter; the times are the same up to the kernel's start-up). --json FILE also writes the results.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import nbformat


def _first_line(source: str) -> str:
    lines = [ln for ln in source.strip().splitlines() if ln.strip()]
    return lines[0][:60] if lines else ""


def _cells(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def time_in_kernel(path: Path) -> list[tuple[str, float]]:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    out = []
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            t = time.perf_counter()
            try:
                client.execute_cell(cell, i)
            except Exception as exc:  # nbclient's CellExecutionError
                if not (os.environ.get("COURSE_WEIGHTS") == "random" and "AssertionError" in str(exc)):
                    raise
                print("          (a check of trained behaviour failed: random weights)")
            out.append((_first_line(cell.source), time.perf_counter() - t))
            print(f"{out[-1][1]:8.1f} s  {out[-1][0]}", flush=True)
    return out


def time_in_process(path: Path) -> list[tuple[str, float]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cwd = os.getcwd()
    os.chdir(path.parent)
    namespace: dict = {"__name__": "__main__"}
    out = []
    try:
        for i, source in enumerate(_cells(path)):
            t = time.perf_counter()
            try:
                exec(compile(source, f"{path.name}[{i}]", "exec"), namespace)
            except AssertionError:
                if os.environ.get("COURSE_WEIGHTS") != "random":
                    raise
                print("          (a check of trained behaviour failed: random weights)")
            plt.close("all")
            out.append((_first_line(source), time.perf_counter() - t))
            print(f"{out[-1][1]:8.1f} s  {out[-1][0]}", flush=True)
    finally:
        os.chdir(cwd)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--profile", choices=("full", "offline", "smoke"), required=True)
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ["COURSE_PROFILE"] = args.profile
    if args.random_weights:
        os.environ["COURSE_WEIGHTS"] = "random"
    if args.in_process and len(args.notebooks) > 1:
        parser.error("--in-process times one notebook per process (a notebook's globals must not leak into the next)")
    results = {}
    for path in args.notebooks:
        start = time.perf_counter()
        cells = (time_in_process if args.in_process else time_in_kernel)(path.resolve())
        total = time.perf_counter() - start
        results[path.stem] = {"total_s": round(total, 1), "cells": [[name, round(s, 2)] for name, s in cells]}
        print(f"{path.name}: {total:.0f} s in total (profile {args.profile}"
              f"{', random weights' if args.random_weights else ''}, load average {os.getloadavg()[0]:.1f} at the "
              "end)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
