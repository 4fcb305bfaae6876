"""Execute one notebook and write what a reader sees, for writing and checking its "what to look for":

    .venv/bin/python tools/run_notebook.py notebooks/02_grad_cam.ipynb build/run02 [--profile offline]

writes OUT/executed.ipynb, OUT/outputs.txt (every cell's source head and its printed output, numbered as
in the notebook) and OUT/fig_CELL_K.png (every figure). The profile defaults to `offline`; claims run
strict (COURSE_CLAIMS=strict) unless --no-strict, and the run stops at the first failing cell (its error
is in outputs.txt). Run with OMP_NUM_THREADS=1 to match CI's `make claims`.
"""
from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

import nbformat


def execute(notebook: Path, executed: Path, profile: str = "offline", strict: bool = True,
            timeout: int = 1800) -> tuple[nbformat.NotebookNode, Exception | None, float]:
    """Run `notebook` top to bottom in a fresh kernel in `profile` (claims strict or printed), stopping at the
    first failing cell, and write the executed copy to `executed`. Returns (notebook, error or None, seconds)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ["COURSE_PROFILE"] = profile
    os.environ["COURSE_CLAIMS"] = "strict" if strict else "print"
    # figures inline, as in Jupyter (a caller's MPLBACKEND=Agg would leave the executed copy without figures)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.resolve().parent)}})
    t0, failed = time.perf_counter(), None
    try:
        client.execute()
    except CellExecutionError as exc:
        failed = exc
    executed.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, executed)
    return nb, failed, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--profile", default="offline", choices=("full", "offline", "smoke"))
    ap.add_argument("--no-strict", action="store_true", help="print differing claims instead of raising")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    nb, failed, seconds = execute(args.notebook, args.out / "executed.ipynb", args.profile, not args.no_strict)
    lines = []
    for i, cell in enumerate(nb.cells):
        head = cell.source.strip().splitlines()[0][:100] if cell.source.strip() else ""
        lines.append(f"===== cell {i} ({cell.cell_type}): {head}")
        if cell.cell_type != "code":
            continue
        k = 0
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                lines.append(out.text.rstrip())
            elif out.output_type == "error":
                lines.append(f"ERROR {out.ename}: {out.evalue}")
            else:
                data = out.get("data", {})
                if "image/png" in data:
                    name = f"fig_{i:02d}_{k}.png"
                    (args.out / name).write_bytes(base64.b64decode(data["image/png"]))
                    lines.append(f"[figure {name}]")
                    k += 1
                elif "text/plain" in data:
                    lines.append(data["text/plain"].rstrip())
    lines.append(f"===== {'FAILED' if failed else 'done'} in {seconds:.0f} s")
    (args.out / "outputs.txt").write_text("\n".join(lines) + "\n")
    print(f"{args.notebook}: {'FAILED' if failed else 'done'} in {seconds:.0f} s -> {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
