"""Real files that no firm wrote: the hard negatives no generator can fake.

Licence texts, READMEs and docs that Python packages ship in the venv, Debian's copyright files,
Chinese manpages (manpages-zh) when installed, and the test documents (PDF, docx, pptx, xlsx)
shipped in the source distributions of document libraries, fetched once with pip into a cache.
The selection is bounded and deterministic: candidates sorted by path, an even stride through
them, each under a size cap.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from loguru import logger

MAX_BYTES = 256 * 1024
DOC_SUFFIXES = (
    ".pdf",
    ".docx",
    ".xlsx",
    ".pptx",
    ".odt",
    ".ods",
    ".csv",
    ".txt",
    ".md",
    ".rst",
    ".json",
    ".xml",
    ".html",
)
# Pinned, so the same files are chosen on every machine; each sdist ships its test documents.
SDISTS = ("pypdf==5.1.0", "python-docx==1.1.2", "python-pptx==1.0.2")
SDIST_SUFFIXES = (".pdf", ".docx", ".pptx", ".xlsx", ".doc", ".xls", ".ppt", ".odt", ".csv")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "miwei-bench" / "sdists"
PIP_TIMEOUT_S = 300.0
NAMES = ("LICENSE", "LICENCE", "COPYING", "README", "NOTICE", "AUTHORS", "METADATA")


def _stride(paths: list[Path], limit: int) -> list[Path]:
    paths = sorted(paths)
    if len(paths) <= limit:
        return paths
    step = len(paths) / limit
    return [paths[int(i * step)] for i in range(limit)]


def _small(path: Path) -> bool:
    try:
        return path.is_file() and not path.is_symlink() and 0 < path.stat().st_size <= MAX_BYTES
    except OSError:
        return False


def candidates(limit: int) -> dict[str, list[Path]]:
    """Source kind -> chosen files."""
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    packaged = [
        p
        for p in site.rglob("*")
        if _small(p)
        and (p.name.upper().startswith(NAMES) or p.suffix.lower() in DOC_SUFFIXES)
        and "__pycache__" not in p.parts
        and "miwei" not in p.name
    ]
    copyright_files = [p for p in Path("/usr/share/doc").glob("*/copyright") if _small(p)]
    manpages = (
        [p for p in Path("/usr/share/man/zh_CN").rglob("*.gz") if _small(p)]
        if Path("/usr/share/man/zh_CN").is_dir()
        else []
    )
    return {
        "python packages": _stride(packaged, limit // 2),
        "debian copyright": _stride(copyright_files, limit // 4),
        "manpages-zh": _stride(manpages, limit // 4),
    }


def sdist_archives(cache: Path = CACHE) -> tuple[list[Path], str]:
    """The pinned sdists, downloaded once into cache; (archives, a note when some could not be had)."""
    cache.mkdir(parents=True, exist_ok=True)
    want = [spec.split("==")[0].replace("-", "_").lower() + "-" + spec.split("==")[1] for spec in SDISTS]
    have = lambda: sorted(p for p in cache.glob("*.tar.gz") if any(p.name.lower().startswith(w) for w in want))  # noqa: E731
    if len(have()) < len(SDISTS):
        try:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "-d",
                    str(cache),
                    *SDISTS,
                ],
                capture_output=True,
                timeout=PIP_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("sdist download failed error={}", type(exc).__name__)
    found = have()
    note = (
        ""
        if len(found) == len(SDISTS)
        else (
            f"only {len(found)} of the {len(SDISTS)} sdists ({', '.join(SDISTS)}) could be downloaded: fewer third-party documents"
        )
    )
    return found, note


def _sdist_members(archives: list[Path], limit: int) -> list[tuple[str, bytes]]:
    """(archive!/member, bytes) of the test documents, an even stride through them (each archive
    read twice in order: once to list, once to extract, never seeking back in the gzip stream)."""
    listed = []
    for archive in archives:
        with tarfile.open(archive) as tar:
            listed += [
                (archive, m.name)
                for m in tar
                if m.isfile() and 0 < m.size <= MAX_BYTES and m.name.lower().endswith(SDIST_SUFFIXES)
            ]
    chosen = set(listed if len(listed) <= limit else [listed[int(i * len(listed) / limit)] for i in range(limit)])
    out = []
    for archive in archives:
        with tarfile.open(archive) as tar:
            for m in tar:
                f = tar.extractfile(m) if (archive, m.name) in chosen else None
                if f is not None:
                    out.append((f"{archive.name}!/{m.name}", f.read()))
    return out


def copy(folder: Path, limit: int, sdists: bool = True) -> tuple[list[tuple[Path, str]], list[str]]:
    """Copy the selection into folder: (path, source kind) for each, and notes on what was missing.
    Manpages are unpacked (an employee would mail the page, not the .gz)."""
    chosen = candidates(limit)
    notes = []
    if not chosen["manpages-zh"]:
        notes.append(
            "manpages-zh is not installed (apt-get install manpages-zh): no Chinese manpages among the third-party files"
        )
    out = []
    for kind, paths in chosen.items():
        target = folder / kind.replace(" ", "-")
        target.mkdir(parents=True, exist_ok=True)
        for n, src in enumerate(paths):
            name = f"{n:03d}-" + "_".join(src.parts[-3:]).replace(os.sep, "_")
            dest = target / name
            if kind == "manpages-zh":
                dest = dest.with_suffix("")
                dest.write_bytes(gzip.decompress(src.read_bytes())[:MAX_BYTES])
            else:
                shutil.copyfile(src, dest)
            out.append((dest, kind))
    if sdists:
        archives, note = sdist_archives()
        notes += [note] if note else []
        target = folder / "sdist-test-data"
        target.mkdir(parents=True, exist_ok=True)
        for n, (name, data) in enumerate(_sdist_members(archives, limit // 3)):
            dest = target / (f"{n:03d}-" + "_".join(Path(name.split("!/")[1]).parts[-2:]))
            dest.write_bytes(data)
            out.append((dest, "sdist test data"))
    return out, notes
