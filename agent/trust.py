"""What the agent trusts before it writes a byte: its state folder, its config, and (installed as a
service) the code it runs.

The agent runs as root. A state folder that another user created first, or may change, lets that
user plant a link where the agent writes its token (and receive it), or swap the folder under the
agent; so the state folder must be owned by the agent's user and writable by it alone, every folder
above it must be changeable only by root or the agent's user (a sticky folder such as /tmp is fine:
nobody can rename what they do not own in it), and a link on the way must belong to one of them.
The folders the agent creates are made 0700. An `enroll_secret` written in the config is refused
when group or others can read the config. Installed as a service (`miwei-agent run --service`,
which install-service writes into the unit), the config, the interpreter's environment (the venv)
and the agent's package must also be owned by root and writable by nobody else: whoever can change
them runs code as root. All of this is POSIX; on Windows the rights are ACLs (docs/deploy.md).
"""

from __future__ import annotations

import os
import stat
import sys

FOLDER_MODE = 0o700
OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
OTHERS_READ = stat.S_IRGRP | stat.S_IROTH


class UntrustedPath(Exception):
    """A file or folder the agent will not use; the message says which, why and what to do."""


def _trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def prepare_state_dir(state_dir: str) -> list[str]:
    """Create the state folder (and missing folders above it) 0700, then check it and every folder
    above it; returns the folders it created. Raises UntrustedPath."""
    if os.name != "posix":
        os.makedirs(state_dir, exist_ok=True)
        return []
    path = os.path.abspath(state_dir)
    _check_links(path)
    created = []
    for folder in _prefixes(path):
        try:
            os.mkdir(folder, FOLDER_MODE)
            created.append(folder)
        except FileExistsError:
            pass
    _check_links(path)  # again: a link put on the way while the folders were made
    real = os.path.realpath(path)
    for folder in _prefixes(os.path.dirname(real)):
        _check_parent(folder, state_dir)
    _check_state_folder(real, state_dir)
    return created


def _prefixes(path: str) -> list[str]:
    """/a/b/c -> [/, /a, /a/b, /a/b/c]"""
    parts, out = path.split(os.sep), []
    for i in range(1, len(parts) + 1):
        out.append(os.sep.join(parts[:i]) or os.sep)
    return list(dict.fromkeys(out))


def _check_links(path: str) -> None:
    for folder in _prefixes(path):
        try:
            st = os.lstat(folder)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode) and not _trusted_owner(st.st_uid):
            raise UntrustedPath(
                f"state_dir {path}: {folder} is a link owned by uid {st.st_uid}, not root or the agent's user;"
                " a link another user made decides where the agent writes its token (remove it, or set another state_dir)"
            )


def _check_parent(folder: str, state_dir: str) -> None:
    st = os.stat(folder)
    if not _trusted_owner(st.st_uid):
        raise UntrustedPath(
            f"state_dir {state_dir}: {folder} is owned by uid {st.st_uid}, not root or the agent's user, who could"
            f" swap the state folder under it (chown root {folder}, or set another state_dir)"
        )
    if st.st_mode & OTHERS_WRITE and not st.st_mode & stat.S_ISVTX:
        raise UntrustedPath(
            f"state_dir {state_dir}: {folder} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}), who"
            f" could swap the state folder under it (chmod go-w {folder}, or set another state_dir)"
        )


def _check_state_folder(real: str, state_dir: str) -> None:
    st = os.stat(real)
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedPath(f"state_dir {state_dir}: not a folder")
    if st.st_uid != os.geteuid():
        raise UntrustedPath(
            f"state_dir {state_dir} is owned by uid {st.st_uid}, not the agent's user (uid {os.geteuid()}): another"
            f" user made it first and could plant links to receive the agent's token (remove it, or chown it)"
        )
    if st.st_mode & OTHERS_WRITE:
        raise UntrustedPath(
            f"state_dir {state_dir} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}), who could plant"
            f" links to receive the agent's token (chmod 700 {state_dir})"
        )
    if stat.S_IMODE(st.st_mode) != FOLDER_MODE:
        os.chmod(real, FOLDER_MODE)  # ours and unchanged by others: readable is mended, not refused


def check_config(config_path: str | None, secret_inline: bool, service: bool) -> None:
    """Raises UntrustedPath for an inline secret others can read, and (service) for a config,
    venv or package that is not root's alone."""
    if os.name != "posix" or not config_path:
        return
    st = os.stat(config_path)
    if secret_inline and st.st_mode & OTHERS_READ:
        raise UntrustedPath(
            f"{config_path} holds agent.enroll_secret and group or others can read it (mode"
            f" {stat.S_IMODE(st.st_mode):04o}): chmod 600 {config_path}, or move the secret to enroll_secret_file"
        )
    if service:
        for path, what in service_paths(config_path):
            _check_root_owned(path, what)


def service_paths(config_path: str) -> list[tuple[str, str]]:
    """What a root service trusts to run: its config and folder, the venv, the agent package."""
    import agent

    package = os.path.dirname(os.path.abspath(agent.__file__))
    return [
        (os.path.abspath(config_path), "config"),
        (os.path.dirname(os.path.abspath(config_path)), "config folder"),
        (sys.prefix, "venv"),
        (os.path.dirname(os.path.abspath(sys.executable)), "interpreter folder"),
        (package, "agent package"),
        (os.path.dirname(package), "package folder"),
    ]


def _check_root_owned(path: str, what: str) -> None:
    st = os.stat(path)
    if st.st_uid != 0:
        raise UntrustedPath(
            f"{what} {path} is owned by uid {st.st_uid}, not root: whoever owns it runs code or steers the"
            f" agent as root (chown -R root {path})"
        )
    if st.st_mode & OTHERS_WRITE and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
        raise UntrustedPath(
            f"{what} {path} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}): chmod go-w {path}"
        )
