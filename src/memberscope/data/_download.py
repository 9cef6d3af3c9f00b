"""Download a published file into the cache, verified, resumable and atomic.

A download goes into ``NAME.part`` next to its destination. An interrupted transfer keeps the
``.part`` file and the next attempt asks the server for the rest with an HTTP ``Range`` header.
Only once the whole file matches its published digest(s) is it renamed to ``NAME``, so a file
under its final name has always been verified. A file that fails verification is never deleted
(it may be a user's own copy, or worth a look): it is renamed aside to ``NAME.corrupt``.
A failed first download leaves no empty folder behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from memberscope.errors import ChecksumError, DownloadError, InputError

logger = logging.getLogger(__name__)

CACHE_ENV = "MEMBERSCOPE_DATA"
CHUNK_BYTES = 1 << 20
ATTEMPTS = 3
TIMEOUT_S = 60.0
_HEX = re.compile(r"[0-9a-f]+")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class Resource:
    """A published file: where to get it and the digests that identify it.

    Parameters
    ----------
    filename : str
        Name of the file in the cache folder (no directories).
    urls : tuple of str
        ``http(s)`` addresses tried in order; the next one is tried on a network error.
    sha256 : str
        Lower-case hex SHA-256 of the complete file.
    md5 : str or None
        Lower-case hex MD5 where the authors publish one; checked in addition to SHA-256.
    """

    filename: str
    urls: tuple[str, ...]
    sha256: str
    md5: str | None = None

    def __post_init__(self) -> None:
        if not self.filename or Path(self.filename).name != self.filename:
            raise InputError(f"filename must be a bare file name; got {self.filename!r}")
        if not self.urls:
            raise InputError(f"urls of {self.filename!r} must name at least one address")
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise InputError(f"urls of {self.filename!r} must be http(s); got {url!r}")
        for name, digest, length in (("sha256", self.sha256, 64), ("md5", self.md5, 32)):
            if digest is not None and (len(digest) != length or not _HEX.fullmatch(digest)):
                raise InputError(
                    f"{name} of {self.filename!r} must be {length} lower-case hex digits; "
                    f"got {digest!r}"
                )


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the cache folder: ``cache_dir``, else ``$MEMBERSCOPE_DATA``, else the user cache.

    The user cache is ``$XDG_CACHE_HOME/memberscope``, or ``~/.cache/memberscope``.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from_env = os.environ.get(CACHE_ENV)
    if from_env:
        return Path(from_env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "memberscope"


def fetch(
    resource: Resource, directory: str | os.PathLike[str], *, timeout: float = TIMEOUT_S
) -> Path:
    """Return the path of ``resource`` in ``directory``, downloading and verifying it if needed.

    A file already there is verified again; if it does not match it is renamed aside to
    ``NAME.corrupt`` and the file is downloaded anew.

    Raises
    ------
    DownloadError
        Every address failed (network error or HTTP status); the ``.part`` file is kept so the
        next call resumes.
    ChecksumError
        The downloaded file does not match the published digest; it is renamed aside to
        ``NAME.corrupt``, so nothing unverified is left under its final name.
    """
    folder = Path(directory)
    created = _make_folder(folder)
    try:
        with _locked(folder):
            return _fetch_locked(resource, folder, timeout)
    except BaseException:
        _remove_empty(created)
        raise


def _fetch_locked(resource: Resource, folder: Path, timeout: float) -> Path:
    target = folder / resource.filename
    part = folder / (resource.filename + ".part")
    if target.exists():
        problem = verify(target, resource)
        if problem is None:
            return target
        aside = set_aside(target)
        logger.warning("%s does not match (%s); moved it to %s and downloading the file again",
                       target, problem, aside)
    resumed = part.exists() and part.stat().st_size > 0
    url = _download_into(resource, part, timeout)
    problem = verify(part, resource)
    if problem is not None and resumed:
        # The kept part may come from another version of the file: start over once.
        aside = set_aside(part)
        logger.warning("resumed %s is corrupt (%s); moved it to %s and downloading it whole",
                       part, problem, aside)
        url = _download_into(resource, part, timeout)
        problem = verify(part, resource)
    if problem is not None:
        aside = set_aside(part)
        raise ChecksumError(
            f"{resource.filename} downloaded from {url} is corrupt or not the published file: "
            f"{problem}; it was kept as {aside}")
    os.replace(part, target)
    logger.info("verified and stored %s", target)
    return target


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``PATH.corrupt`` (or ``.corrupt.1``, ``.corrupt.2``, … when taken)."""
    aside = path.with_name(path.name.removesuffix(".part") + ".corrupt")
    number = 0
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name.removesuffix('.part')}.corrupt.{number}")
    os.replace(path, aside)
    return aside


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, innermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed fetch created, innermost first, where they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (a kept .part, a set-aside file) or already gone
            return


def verify(path: Path, resource: Resource) -> str | None:
    """Return ``None`` if ``path`` matches the resource's digests, else what differs."""
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False) if resource.md5 else None
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            sha256.update(chunk)
            if md5 is not None:
                md5.update(chunk)
    if sha256.hexdigest() != resource.sha256:
        return f"SHA-256 is {sha256.hexdigest()}, expected {resource.sha256}"
    if md5 is not None and md5.hexdigest() != resource.md5:
        return f"MD5 is {md5.hexdigest()}, expected {resource.md5}"
    return None


def _download_into(resource: Resource, part: Path, timeout: float) -> str:
    """Complete ``part`` from the resource's addresses, resuming what is there; return the URL."""
    failures: list[str] = []
    for url in resource.urls:
        reasons: list[str] = []
        for _ in range(ATTEMPTS):
            try:
                _transfer(url, part, timeout)
                return url
            except (OSError, http.client.HTTPException, _IncompleteError) as exc:
                reasons.append(_describe(exc))
                logger.warning("download of %s failed (%s)", url, reasons[-1])
                if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:
                    break  # a client error such as 404 will not change on retry
        tries = f" ({len(reasons)} attempts)" if len(reasons) > 1 else ""
        failures.append(f"{url}: {reasons[-1]}{tries}")  # each address once
    have = part.stat().st_size if part.exists() else 0
    kept = f"; {have} bytes kept in {part} for resuming" if have else ""
    raise DownloadError(f"could not download {resource.filename} from {'; '.join(failures)}"
                        f"{kept}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    return str(getattr(exc, "reason", None) or exc)


class _IncompleteError(Exception):
    """The server closed the connection before sending the announced bytes."""


def _transfer(url: str, part: Path, timeout: float) -> None:
    """Append the rest of ``url`` to ``part``; restart it if the server ignores the range."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "memberscope"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    logger.info("downloading %s into %s (from byte %d)", url, part, offset)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # The range starts at or past the end: the part is complete or stale. Verification
            # decides; a stale part fails it and is deleted.
            return
        raise
    with response:
        start = _resume_offset(response.status, response.headers.get("Content-Range"), offset)
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        with part.open("r+b" if start else "wb") as sink:
            sink.seek(start)
            sink.truncate()
            while chunk := response.read(CHUNK_BYTES):
                sink.write(chunk)
                received += len(chunk)
            sink.flush()
            os.fsync(sink.fileno())
    if expected is not None and received < expected:
        raise _IncompleteError(f"connection closed after {received} of {expected} bytes")


def _resume_offset(status: int, content_range: str | None, offset: int) -> int:
    """Where the response body goes in the part file: ``offset`` for a 206, else 0."""
    if status != 206:
        return 0
    match = _CONTENT_RANGE.fullmatch((content_range or "").strip())
    if match is None or int(match.group(1)) != offset:
        raise _IncompleteError(f"server answered range {offset}- with {content_range!r}")
    return offset


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Lock ``folder`` so parallel workers do not write the same ``.part`` file.

    The lock is taken on the folder itself, so no lock file is left behind in the cache.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: verification still catches a mixed-up file
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
