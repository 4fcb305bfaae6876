"""`python -m helpers.assets` (or `make assets`): download everything the `full` profile needs before a
lab, so that no notebook downloads in the middle of a class. Each item is checked and cached; a
second run only verifies.
"""
from __future__ import annotations

import sys

from .download import DownloadError
from .models import MODELS, fetch_weights


def fetch_all() -> list[str]:
    """Download every asset; return a list of failures (empty when all are cached)."""
    failures = []
    for name in MODELS:
        try:
            path = fetch_weights(name)
            print(f"ok  {name:10s} {path}")
        except DownloadError as exc:
            failures.append(f"{name}: {exc}")
    return failures


if __name__ == "__main__":
    problems = fetch_all()
    for p in problems:
        print("FAILED", p, file=sys.stderr)
    sys.exit(1 if problems else 0)
