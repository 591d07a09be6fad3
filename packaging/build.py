"""`make dist`: the wheelhouse for offline installs and the two Debian packages.

    python packaging/build.py [--out dist] [--revision 1] [--reuse-wheelhouse] [--no-other-platforms]

dist/wheelhouse/linux_x86_64/   every wheel MiWei and its collector need on this platform (pip wheel)
dist/wheelhouse/<platform>/     the same pins for aarch64 Linux and Windows amd64 where wheels exist
                                (pip download --only-binary), with MISSING.txt naming those that do not
dist/miwei-agent_<v>_amd64.deb  dist/miwei-server_<v>_amd64.deb   (dpkg-deb --build --root-owner-group)

A .deb carries the wheels it needs under /opt/<package>/wheels; its postinst builds the venv
beside them with Debian's python3 and `pip --no-index`, so installing never touches a package
index. The wheels are built for the Python running this script, so the packages depend on that
Python's minor version. Needs pip and the package index (or its mirror) while building, and
dpkg-deb; nothing else.
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_DIR = ROOT / "packaging" / "debian"
SOURCES = ("agent", "rules", "server", "setup.cfg", "setup.py", "pyproject.toml", "README.md")
THIS_PLATFORM = "linux_x86_64"
# pip's --platform (pip 23) takes exactly the tags given: every manylinux up to Debian 12's glibc 2.36
OTHER_PLATFORMS = {
    "linux_aarch64": ("manylinux2014_aarch64", *(f"manylinux_2_{glibc}_aarch64" for glibc in range(17, 37))),
    "win_amd64": ("win_amd64",),
}
# pip evaluates environment markers (sys_platform == "win32") on the machine that downloads, not
# the target, so what only Windows needs is named here: loguru's and tqdm's colours and file
# times, and pywin32 for the service (agent/service/windows.py).
PLATFORM_ONLY = {"win_amd64": ("colorama", "win32-setctime", "pywin32")}


@dataclass(frozen=True)
class Wheel:
    name: str  # as in the file name: underscores, e.g. google_re2
    version: str
    pure: bool  # py3-none-any: the same file serves every platform
    path: Path


@dataclass(frozen=True)
class Package:
    """One .deb: which requirement its venv installs and which commands it links into /usr/bin."""

    name: str  # miwei-agent
    requirement: str  # miwei or miwei[server]
    commands: tuple[str, ...]
    description: str


PACKAGES = (
    Package("miwei-agent", "miwei", ("miwei-agent",), "MiWei endpoint agent (trade-secret leak monitoring)"),
    Package("miwei-server", "miwei[server]", ("miwei-server",), "MiWei collector: API, console, alerts"),
)


def run(argv: list[str], **kwargs) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, **kwargs)


def pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


def project_version() -> str:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    return config["metadata"]["version"]


def parse_wheel(path: Path) -> Wheel:
    # name-version(-build)?-python-abi-platform.whl
    parts = path.name[: -len(".whl")].split("-")
    return Wheel(parts[0], parts[1], parts[-2:] == ["none", "any"], path)


def build_project_wheel(into: Path, pure: bool = False) -> Path:
    """The project's wheel, built from a copy of the sources so that nothing is written in the tree.
    With the C extension agent.content._winnow for this platform (setup.py; skipped where it does not
    compile), or pure (py3-none-any, MIWEI_PURE_WHEEL=1) for the platforms no compiler here targets:
    there the numpy path runs (the same fingerprints)."""
    with tempfile.TemporaryDirectory(prefix="miwei-src-") as tmp:
        for name in SOURCES:
            source = ROOT / name
            if source.is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd")  # built in place by -e
                shutil.copytree(source, Path(tmp) / name, ignore=ignore)
            else:
                shutil.copy2(source, Path(tmp) / name)
        env = {**os.environ, "MIWEI_PURE_WHEEL": "1"} if pure else None
        run(pip("wheel", "--no-deps", "--quiet", "-w", str(into), tmp), env=env)
    return next(into.glob(f"miwei-{project_version()}-*.whl"))


def build_wheelhouse(out: Path) -> list[Wheel]:
    """Every wheel of `miwei[server]` for this platform: downloaded, or built where only a source exists."""
    here = out / THIS_PLATFORM
    here.mkdir(parents=True, exist_ok=True)
    project = build_project_wheel(here)
    run(pip("wheel", "--quiet", "--find-links", str(here), "-w", str(here), f"{project}[server]"))
    return sorted((parse_wheel(p) for p in here.glob("*.whl")), key=lambda w: w.name.lower())


def download_for(platform: str, wheels: list[Wheel], out: Path, python_version: str) -> list[str]:
    """The same pins for another platform: pure wheels are copied, the others downloaded as
    binaries only. Returns the requirements that have no wheel there."""
    target = out / platform
    target.mkdir(parents=True, exist_ok=True)
    tags = [arg for tag in OTHER_PLATFORMS[platform] for arg in ("--platform", tag)]
    binary = [*tags, "--python-version", python_version, "--implementation", "cp", "--only-binary=:all:"]
    missing = []
    for wheel in wheels:
        if wheel.pure:
            shutil.copy2(wheel.path, target / wheel.path.name)
    if not any(w.pure for w in wheels if w.name == "miwei"):  # ours carries this platform's _winnow
        build_project_wheel(target, pure=True)
    wanted = [f"{w.name}=={w.version}" for w in wheels if not w.pure and w.name != "miwei"]
    wanted += list(PLATFORM_ONLY.get(platform, ()))
    for requirement in wanted:  # one at a time: a single missing wheel fails a whole pip call
        done = subprocess.run(
            pip("download", "--quiet", "--no-deps", *binary, "-d", str(target), requirement),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            missing.append(requirement)
    (target / "MISSING.txt").write_text(
        f"# No {platform} wheel for CPython {python_version} on the package index; build these there.\n"
        + "".join(f"{m}\n" for m in missing),
        encoding="utf-8",
    )
    return missing


def requirement_wheels(package: Package, wheelhouse: Path, into: Path) -> None:
    """The subset of the wheelhouse one package needs, resolved offline (proof that it suffices)."""
    offline = ("--isolated", "download", "--quiet", "--no-index", "--find-links", str(wheelhouse))
    run(pip(*offline, "-d", str(into), package.requirement), env={**os.environ, "PIP_CONFIG_FILE": os.devnull})


def render(template: Path, values: dict[str, str]) -> str:
    text = template.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("@" + key + "@", value)
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise SystemExit(f"{template}: no value for {', '.join(sorted(set(leftover)))}")
    return text


def build_deb(package: Package, version: str, wheelhouse: Path, out: Path) -> Path:
    """Lay out the package's tree in a temp folder and let dpkg-deb build it."""
    source = DEBIAN_DIR / package.name
    major, minor = sys.version_info[:2]
    values = {
        "VERSION": version,
        "PYTHON_MIN": f"{major}.{minor}",
        "PYTHON_NEXT": f"{major}.{minor + 1}",
        "DESCRIPTION": package.description,
        "REQUIREMENT": package.requirement,
    }
    with tempfile.TemporaryDirectory(prefix=f"{package.name}-") as tmp:
        root = Path(tmp) / "root"
        control = root / "DEBIAN"
        control.mkdir(parents=True)
        opt = root / "opt" / package.name
        requirement_wheels(package, wheelhouse, opt / "wheels")
        (opt / "requirement.txt").write_text(f"{package.requirement}=={project_version()}\n", encoding="utf-8")
        shutil.copy2(DEBIAN_DIR / "make-venv", opt / "make-venv")
        bin_dir = root / "usr" / "bin"
        bin_dir.mkdir(parents=True)
        for command in package.commands:  # dangling until postinst has built the venv
            (bin_dir / command).symlink_to(f"/opt/{package.name}/venv/bin/{command}")
        for extra in sorted((source / "root").rglob("*")) if (source / "root").exists() else []:
            target = root / extra.relative_to(source / "root")
            if extra.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(extra, target)
        size_kib = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 1024
        values["SIZE_KIB"] = str(size_kib)
        (control / "control").write_text(render(source / "control.in", values), encoding="utf-8")
        for script in ("postinst", "prerm", "postrm", "conffiles"):
            if (source / script).exists():
                shutil.copy2(source / script, control / script)
                (control / script).chmod(0o755 if script != "conffiles" else 0o644)
        for path in root.rglob("*"):  # dpkg keeps the modes it is given: no group or world writes
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & ~0o022)
        deb = out / f"{package.name}_{version}_amd64.deb"
        # gzip, not xz: the payload is wheels (zip files already); xz saved nothing and took 30-60 s here
        run(["dpkg-deb", "--build", "--root-owner-group", "-Zgzip", str(root), str(deb)])
    return deb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--revision", default="1", help="the Debian revision: bump it to build an upgrade")
    parser.add_argument(
        "--reuse-wheelhouse", action="store_true", help="build only the .debs from an existing wheelhouse"
    )
    parser.add_argument("--no-other-platforms", action="store_true", help="skip the aarch64 and Windows wheelhouses")
    args = parser.parse_args(argv)
    if not shutil.which("dpkg-deb"):
        raise SystemExit("dpkg-deb not found: install dpkg (Debian or Ubuntu builds the packages)")
    out: Path = args.out.resolve()
    wheelhouse = out / "wheelhouse"
    started = time.monotonic()
    if args.reuse_wheelhouse:
        wheels = [parse_wheel(p) for p in (wheelhouse / THIS_PLATFORM).glob("*.whl")]
        if not wheels:
            raise SystemExit(f"no wheelhouse in {wheelhouse / THIS_PLATFORM}: run without --reuse-wheelhouse")
    else:
        shutil.rmtree(wheelhouse, ignore_errors=True)
        wheels = build_wheelhouse(wheelhouse)
        python_version = f"{sys.version_info[0]}{sys.version_info[1]}"
        for platform in () if args.no_other_platforms else OTHER_PLATFORMS:
            missing = download_for(platform, wheels, wheelhouse, python_version)
            print(f"{platform}: {len(missing)} without a wheel: {', '.join(missing) or 'none'}", flush=True)
    version = f"{project_version()}-{args.revision}"
    for package in PACKAGES:
        deb = build_deb(package, version, wheelhouse / THIS_PLATFORM, out)
        print(f"built {deb} ({deb.stat().st_size // 1024} KiB)", flush=True)
    print(f"dist done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
