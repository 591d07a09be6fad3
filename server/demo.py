"""`make run`: a demo collector and agent on SQLite, set up under one folder (var/ by default).

Writes a config with a random enrolment secret, a demo classified folder and a demo egress
folder (standing in for a USB stick), creates the first admin and an API token, then runs
`miwei-server run` and `miwei-agent run` as processes until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import subprocess
import sys
import time

import requests

from agent.limits import limits_to_raise

# The drawings' bodies are random bytes, the same on every machine, as a real drawing's are: an
# edited copy is traced by its bytes' chunks (agent/content/chunks.py), which a repeated pattern has too few of.
DEMO_FILES = {
    "drawings/pump-impeller.dwg": b"AC1032 demo drawing: pump impeller, rev C\n" + random.Random(1).randbytes(65_536),
    "drawings/housing-assembly.dwg": b"AC1032 demo drawing: housing assembly, rev A\n" + random.Random(2).randbytes(65_536),
    "process/coating-formula.txt": "商业秘密 核心商密\n涂层配方 v7: 树脂 62%, 固化剂 18%, 填料 20%\n".encode(),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.demo")
    parser.add_argument("--dir", default="var", help="folder for the demo's config, data and files")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    root = os.path.abspath(args.dir)
    config_path = os.path.join(root, "config.yaml")
    if not os.path.exists(config_path):
        _write_demo(root, config_path, args.port)
        print(f"wrote a demo config: {config_path}")
    bin_dir = os.path.dirname(sys.executable)
    server = _cli(bin_dir, "miwei-server")
    agent = _cli(bin_dir, "miwei-agent")
    admin_password = _first_admin(server, config_path, root)
    api_token = _api_token(server, config_path, root)
    # own sessions: Ctrl-C reaches only this process, which stops the agent before the server
    procs = [subprocess.Popen(server + ["run", "-c", config_path], start_new_session=True)]
    url = f"http://127.0.0.1:{args.port}"
    if not _wait_healthy(url, procs[0]):
        _stop(procs)
        return 1
    notice = limits_notice(limits_to_raise())
    if notice:
        print(notice, flush=True)
    procs.append(subprocess.Popen(agent + ["run", "-c", config_path], start_new_session=True))
    _banner(url, root, admin_password, api_token)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a process exited; stopping the demo", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(procs)


def limits_notice(low: dict[str, tuple[int, int]]) -> str:
    """Said before the agent starts: it raises host-wide inotify limits (agent/limits.py), which
    outlive the demo until reboot; how to put them back."""
    if not low:
        return ""
    raised = "\n".join(f"  fs.inotify.{name}: {current} -> {wanted}" for name, (current, wanted) in low.items())
    undo = " ".join(f"fs.inotify.{name}={current}" for name, (current, _) in low.items())
    return (
        "The demo agent now raises these host-wide inotify limits (so bulk copies lose no events);\n"
        f"they stay raised after the demo, until reboot:\n{raised}\n"
        f"To undo: sudo sysctl -w {undo}"
    )


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _cli(bin_dir: str, name: str) -> list[str]:
    path = os.path.join(bin_dir, name)
    return [path] if os.path.exists(path) else [sys.executable, "-m", name.replace("miwei-", "") + ".cli"]


def _write_demo(root: str, config_path: str, port: int) -> None:
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o700)  # it holds the database, the admin's password and a token: the owner's alone
    classified = os.path.join(root, "demo", "classified")
    usb = os.path.join(root, "demo", "usb")
    for rel, data in DEMO_FILES.items():
        path = os.path.join(classified, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    os.makedirs(usb, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    text = f"""# Demo config written by `make run`. See config.example.yaml for every key.
agent:
  server_url: http://127.0.0.1:{port}
  enroll_secret: {secret}
  state_dir: ./agent
  classified:
    - path: ./demo/classified/drawings
      level: core
      name: Product drawings
      owner: R&D
    - path: ./demo/classified/process
      level: important
      name: Process formulas
      owner: Production
  egress:
    removable: true
    mount_roots: [/media, /run/media]
    folders: [./demo/usb]
server:
  listen: 127.0.0.1:{port}
  database: sqlite:///./miwei.db
  enroll_secret: {secret}
"""
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _private_file(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")


def _first_admin(server: list[str], config_path: str, root: str) -> str | None:
    """Create user 'admin' once; its password is kept in a 0600 file for the demo."""
    path = os.path.join(root, "admin-password.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    password = secrets.token_urlsafe(12)
    done = subprocess.run(
        server + ["create-user", "admin", "--role", "admin", "--password-stdin", "-c", config_path],
        input=password + "\n", text=True, capture_output=True,
    )
    if done.returncode != 0:
        print(done.stderr.strip(), file=sys.stderr)
        return None
    _private_file(path, password)
    return password


def _api_token(server: list[str], config_path: str, root: str) -> str | None:
    path = os.path.join(root, "api-token.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    done = subprocess.run(server + ["create-token", "demo", "-c", config_path], text=True, capture_output=True)
    if done.returncode != 0:
        print(done.stderr.strip(), file=sys.stderr)
        return None
    token = done.stdout.strip()
    _private_file(path, token)
    return token


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(url + "/api/v1/health", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    print("the collector did not become healthy", file=sys.stderr)
    return False


def _banner(url: str, root: str, password: str | None, token: str | None) -> None:
    rel = os.path.relpath(root)
    print(
        f"""
MiWei demo is running. Ctrl-C stops it.
  web console:    {url}/console/
  first admin:    admin / {password or '(see the error above)'}   (kept in {rel}/admin-password.txt)
  API:            {url}/api/v1   (schema: {url}/openapi.json)
  API token:      {rel}/api-token.txt
Try it: copy a classified drawing onto the demo "USB stick", under another name:
  cp {rel}/demo/classified/drawings/pump-impeller.dwg {rel}/demo/usb/holiday.jpg
or an edited one, a byte put in front:
  (printf x; cat {rel}/demo/classified/drawings/housing-assembly.dwg) > {rel}/demo/usb/notes.bin
  curl -s -H "Authorization: Bearer $(cat {rel}/api-token.txt)" {url}/api/v1/alerts
""",
        flush=True,
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    """Agent first, so its last events (agent.stopped) still reach the collector."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
