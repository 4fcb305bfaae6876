"""Putting the case study's data sets on disk: `prepare_pets` / `prepare_celeba` for the current profile.

In `full` the official files are downloaded (progress bar, MD5 checks, atomic extraction); when a host
refuses (Google Drive's "quota exceeded" page, a broken zip), DataUnavailable explains how to install the
data by hand. In `offline` and `smoke` the look-alikes of `helpers.data.lookalike` are written in the same
formats, as many images as the profile's subsets need, so the same parsing code runs. Numbers measured on
the look-alikes describe the look-alikes only.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from .assets import CELEBA_DRIVE_IDS, CELEBA_URL, part
from .celeba import CELEBA_FOLDER, celeba_ready, read_celeba_partition
from ..config import data_dir, get_profile
from .download import DownloadError, download
from .lookalike import has_face_twins, has_pet_twins, lookalike_sizes, make_fake_celeba, make_fake_pets
from .oxford_pets import PETS_FOLDER, pets_ready, read_pet_list

PETS_PAGE = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
CELEBA_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
# What to download, from the course's table of downloads (`helpers.assets.ASSETS`): (archive, URL, MD5) for
# Pets; file name -> (Google Drive id, MD5) for CelebA, fetched from `CELEBA_URL` with the id filled in.
PETS_ARCHIVES = tuple((a.name, a.url, a.md5) for a in part("pets"))
CELEBA_FILES = {a.name: (CELEBA_DRIVE_IDS[a.name], a.md5) for a in part("celeba")}


class DataUnavailable(DownloadError):
    """A data set is missing and could not be downloaded; the message says how to get it by hand."""


def _extract_tar(archive: Path, dest: Path) -> None:
    # Unpack into a temporary folder beside `dest`, then move each top-level entry into place, so an
    # interrupted extraction never leaves a half-filled images/ or annotations/ folder.
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        with tarfile.open(archive) as tar:
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, **kwargs)
        for entry in tmp.iterdir():
            target = dest / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pets_manual_steps(base: Path) -> str:
    """What to do by hand when Oxford-IIIT Pet cannot be downloaded."""
    return (f"To install Oxford-IIIT Pet by hand: download images.tar.gz and annotations.tar.gz from {PETS_PAGE} "
            f"(the 'Downloads' section) and extract both into {base}, so that {base}/images/*.jpg, "
            f"{base}/annotations/list.txt, trainval.txt, test.txt and {base}/annotations/trimaps/*.png exist. "
            "Then run the cell again.")


def fetch_pets(root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """The real Oxford-IIIT Pet folder `<root>/oxford-iiit-pet` (root: `data_dir()`), downloaded (about
    800 MB, MD5-checked) and extracted when missing. Raises DataUnavailable with manual steps."""
    base = Path(root or data_dir()) / PETS_FOLDER
    if pets_ready(base):
        return base
    base.mkdir(parents=True, exist_ok=True)
    for name, url, md5 in PETS_ARCHIVES:
        archive = base / name
        try:
            download(url, archive, md5=md5, progress=progress)
        except DownloadError as exc:
            raise DataUnavailable(f"Oxford-IIIT Pet could not be downloaded: {exc}\n{pets_manual_steps(base)}") from exc
        _extract_tar(archive, base)
        archive.unlink()  # the extracted folders are the cache
    if not pets_ready(base):
        raise DataUnavailable(f"the archives did not contain the expected files.\n{pets_manual_steps(base)}")
    return base


def celeba_manual_steps(base: Path) -> str:
    """What to do by hand when CelebA cannot be downloaded (Google Drive often refuses)."""
    files = ", ".join(CELEBA_FILES)
    return (f"To install CelebA by hand: open {CELEBA_PAGE}, follow its Google Drive link ('Align&Cropped "
            f"Images' and 'Anno', 'Eval'), and download {files}. Put them in {base} (create the folder), so "
            f"that {base}/img_align_celeba.zip (or the folder {base}/img_align_celeba/ with 202599 JPEGs) and "
            f"{base}/list_attr_celeba.txt, list_landmarks_align_celeba.txt, list_eval_partition.txt exist. "
            "Google Drive limits how often a file is downloaded per day ('quota exceeded'): try again later, "
            "or from a browser signed in to Google. Then run the cell again.")


def _html_or_bad_zip(path: Path, base: Path, want_zip: bool) -> None:
    # The `check` of `download`: Drive answers a refused download with an HTML page (200 OK).
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise DataUnavailable(
            f"Google Drive sent an HTML page instead of {path.name.removesuffix('.part')} (its download quota is "
            f"probably exceeded, or it asks for a confirmation). The bad file was deleted.\n"
            f"{celeba_manual_steps(base)}")
    if want_zip and not zipfile.is_zipfile(path):
        raise DataUnavailable(f"{path.name.removesuffix('.part')} is not a valid zip file; it was deleted.\n"
                              f"{celeba_manual_steps(base)}")


def _extract_zip(archive: Path, base: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=base))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in tqdm(zf.infolist(), desc="unzip img_align_celeba", disable=not progress):
                zf.extract(member, tmp)
        os.replace(tmp / "img_align_celeba", base / "img_align_celeba")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_celeba(root: str | os.PathLike | None = None, progress: bool = True,
                 url_template: str = CELEBA_URL) -> Path:
    """The real CelebA folder `<root>/celeba` (root: `data_dir()`), downloaded from Google Drive (1.4 GB
    zip and three lists, MD5-checked) and unzipped when missing. An HTML page in place of a file (Drive's
    "quota exceeded") or a broken zip is deleted, and DataUnavailable explains the manual steps."""
    base = Path(root or data_dir()) / CELEBA_FOLDER
    if celeba_ready(base):
        return base
    base.mkdir(parents=True, exist_ok=True)
    for name, (file_id, md5) in CELEBA_FILES.items():
        dest = base / name
        if name == "img_align_celeba.zip" and (base / "img_align_celeba").is_dir():
            continue
        want_zip = name.endswith(".zip")
        if dest.is_file():  # placed by hand, or left from an earlier attempt: validate before trusting it
            try:
                _html_or_bad_zip(dest, base, want_zip)
            except DataUnavailable:
                dest.unlink()
                raise
            continue
        try:
            download(url_template.format(id=file_id), dest, md5=md5, progress=progress,
                     check=lambda p, z=want_zip: _html_or_bad_zip(p, base, z))
        except DataUnavailable:
            raise
        except DownloadError as exc:
            raise DataUnavailable(f"CelebA could not be downloaded: {exc}\n{celeba_manual_steps(base)}") from exc
    if not (base / "img_align_celeba").is_dir():
        _extract_zip(base / "img_align_celeba.zip", base, progress)
        (base / "img_align_celeba.zip").unlink()
    return base


def _lookalike_folder(root: str | os.PathLike | None) -> Path:
    return Path(root) if root is not None else data_dir() / get_profile().name


def _profile_lookalike_sizes() -> tuple[int, int]:
    cfg = get_profile().settings
    return lookalike_sizes(cfg.case.train_images, cfg.case.val_images, cfg.case.test_images)


def _prepare(fetch: Callable, folder: str, ready: Callable[[Path], bool], count: Callable[[Path], int],
             twins: Callable[[Path], bool], make: Callable[[Path, int], Path], which: int,
             root: str | os.PathLike | None, progress: bool) -> Path:
    # The real data in `full`; else the look-alike of the profile's size (`which`: 0 Pets, 1 CelebA),
    # written again when the one on disk has another size or no twins (one an older course version wrote).
    if get_profile().full:
        return fetch(root, progress)
    n = _profile_lookalike_sizes()[which]
    base = _lookalike_folder(root) / folder
    if ready(base):
        if count(base) == n and twins(base):
            return base
        shutil.rmtree(base)
    return make(base.parent, n)


def prepare_pets(root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """The Oxford-IIIT Pet folder for the current profile: the real one in `full` (`fetch_pets`); in
    `offline` and `smoke` the look-alike written by `make_fake_pets` under `<data_dir>/<profile>` (or
    `root`), with as many images as the profile's subsets need (`lookalike_sizes`). A look-alike of
    another size, or without twins, is written again."""
    return _prepare(fetch_pets, PETS_FOLDER, pets_ready, lambda base: len(read_pet_list(base)), has_pet_twins,
                    make_fake_pets, 0, root, progress)


def prepare_celeba(root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """The CelebA folder for the current profile: the real one in `full` (`fetch_celeba`); in `offline`
    and `smoke` the look-alike written by `make_fake_celeba` under `<data_dir>/<profile>` (or `root`), with
    as many faces as the profile's subsets need (`lookalike_sizes`). A look-alike of another size is
    written again."""
    return _prepare(fetch_celeba, CELEBA_FOLDER, celeba_ready, lambda base: len(read_celeba_partition(base)),
                    has_face_twins, make_fake_celeba, 1, root, progress)
