"""`make assets`: fetch every download of the course ahead of class (`python -m helpers.data.prefetch`).

`python -m helpers.data.prefetch [PART ...]` (or `make assets`, `make assets PART=weights`) prints the total
size of the selected parts first, then fetches each file with a progress bar into its cache, so that no
notebook downloads in the middle of a class; a file already cached is only checked. `--list` prints the table
(`helpers.data.assets.ASSETS`).
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from ..config import data_dir
from ..registry import fetch_weights, weights_file
from .assets import PARTS, Asset, fetch_paintings, painting_path, part, table, total_size
from .celeba import CELEBA_FOLDER, celeba_ready
from .datasets import fetch_celeba, fetch_pets
from .download import DownloadError
from .oxford_pets import PETS_FOLDER, pets_ready


def _cached(a: Asset) -> bool:
    if a.part == "weights":
        return a.url is None or weights_file(a.name).is_file()
    if a.part == "pets":
        return pets_ready(data_dir() / PETS_FOLDER)
    if a.part == "celeba":
        return celeba_ready(data_dir() / CELEBA_FOLDER)
    return painting_path(a.name).is_file()


def _fetch_part(name: str, progress: bool) -> Callable[[], object]:
    if name == "pets":
        return lambda: fetch_pets(progress=progress)
    if name == "celeba":
        return lambda: fetch_celeba(progress=progress)
    if name == "paintings":
        def paintings() -> None:
            found = fetch_paintings(progress)
            missing = [a.name for a in part("paintings") if a.name not in found]
            if missing:
                raise DownloadError(f"could not download the paintings {', '.join(missing)}")
        return paintings

    def weights() -> None:
        failed = []
        for a in part("weights"):
            if a.url is not None:
                try:
                    fetch_weights(a.name, progress=progress)
                except DownloadError as exc:
                    failed.append(f"{a.name}: {exc}")
        if failed:
            raise DownloadError("; ".join(failed))
    return weights


def fetch(parts: list[str] | tuple[str, ...] = PARTS, progress: bool = True) -> list[str]:
    """Fetch the named parts (all by default), printing the total size first and one line per part;
    return a list of failures (empty when everything is cached or was downloaded and checked)."""
    assets = [a for p in parts for a in part(p)]
    print(f"make assets: {', '.join(parts)}: {total_size(assets)}.", flush=True)
    unverified = [a.name for a in assets if a.url is not None and not a.verified]
    if unverified:
        print(f"unverified (no published checksum; only checked to be images): {', '.join(unverified)}", flush=True)
    failures = []
    for p in parts:
        rows = part(p)
        if all(_cached(a) for a in rows):
            print(f"cached  {p}", flush=True)
            continue
        try:
            _fetch_part(p, progress)()
            print(f"ok      {p}", flush=True)
        except DownloadError as exc:
            failures.append(f"{p}: {exc}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.assets", description=__doc__.split("\n")[0])
    parser.add_argument("parts", nargs="*", help=f"parts to fetch, among {', '.join(PARTS)} (default: all)")
    parser.add_argument("--list", action="store_true", help="print the table of downloads and exit")
    args = parser.parse_args(argv)
    if args.list:
        print(table())
        return 0
    parts = args.parts or list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose among {', '.join(PARTS)}")
    problems = fetch(parts)
    for p in problems:
        print("FAILED", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
