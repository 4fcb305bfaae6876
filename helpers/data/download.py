"""Downloads into a cache: progress bar, SHA-256 (or MD5) check, atomic write.

A file is written to `<name>.part` beside its destination and renamed only once it is complete and its
checksum matches, so an interrupted or failed download never leaves a file under the final name (and
the partial file is removed too).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

CHUNK = 1 << 20  # bytes per read


class DownloadError(RuntimeError):
    """A download failed, was cut short, or gave the wrong bytes. The message says what to do."""


def sha256_of(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def md5_of(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """Hex MD5 of a file (some data sets publish only MD5 sums; it detects corruption, not tampering)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _matches(digest: str, sha256: str | None) -> bool:
    # `sha256` may be a full digest or a prefix (torchvision puts 8 hex digits in its file names).
    return sha256 is None or digest.startswith(sha256.lower())


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    progress: bool = True,
    check: Callable[[Path], None] | None = None,
    timeout: float = 30.0,
    md5: str | None = None,
) -> Path:
    """Fetch `url` to `dest` unless a file with the right checksum is already there; return `dest`.

    sha256: the expected hex digest, or a prefix of it; None skips the check.
    md5: the expected hex MD5 digest (or a prefix), for sources that publish only MD5; None skips it.
    check: called on the complete temporary file before the checksums are compared and before it is moved
        into place; it raises (with a helpful message) to reject the file, e.g. an HTML error page saved in
        place of a zip.
    Raises DownloadError naming the URL, the destination and how to place the file by hand.
    """
    dest = Path(dest)
    if dest.is_file():
        if _matches(sha256_of(dest), sha256) and (md5 is None or _matches(md5_of(dest), md5)):
            return dest
        dest.unlink()  # a stale or corrupt copy: fetch it again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    manual = f"Download it yourself from {url} and save it as {dest}."
    digest = hashlib.sha256()
    digest_md5 = hashlib.md5(usedforsecurity=False)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "cnn-interpretability-course"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                received = 0
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    digest_md5.update(block)
                    received += len(block)
                    bar.update(len(block))
            if total is not None and received != total:
                raise DownloadError(f"{url}: got {received} of {total} bytes (connection cut). {manual}")
        if check is not None:  # first: its message (e.g. "an HTML page, not a zip") says more than a checksum
            check(part)
        if not _matches(digest.hexdigest(), sha256):
            raise DownloadError(
                f"{url}: checksum {digest.hexdigest()[:16]}... does not match the expected {sha256}. "
                f"The server sent something else (an error page?). {manual}")
        if not _matches(digest_md5.hexdigest(), md5):
            raise DownloadError(
                f"{url}: MD5 {digest_md5.hexdigest()} does not match the expected {md5}. "
                f"The server sent something else (an error page?). {manual}")
        os.replace(part, dest)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: {exc}. {manual}") from exc
    except BaseException:  # KeyboardInterrupt included: leave nothing half-written
        part.unlink(missing_ok=True)
        raise
    return dest
