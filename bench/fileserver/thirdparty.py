"""Real files from this machine that no firm wrote: the hard negatives no generator can fake.

Licence texts, READMEs and the sample documents that Python packages ship in the venv, Debian's
copyright files, and Chinese manpages (manpages-zh) when installed. The selection is bounded and
deterministic: candidates sorted by path, an even stride through them, each under a size cap.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
from pathlib import Path

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


def copy(folder: Path, limit: int) -> tuple[list[tuple[Path, str]], list[str]]:
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
    return out, notes
