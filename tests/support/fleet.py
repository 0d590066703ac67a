"""A fleet of booted test hosts driven by Ansible over a real connection (nsenter).

Each host is a `TestBed` (Debian 13 or Debian 12 root, booted with systemd-nspawn, its own
systemd and Podman); Ansible reaches it with the `community.docker.nsenter` connection from
the PyPI `ansible` package (its one option, `ansible_nsenter_pid`, is the host's PID 1).
The collection under test is built with `ansible-galaxy collection build` and installed into
a scratch collections folder, as an operator would install it.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.testbed import CACHE, TestBed

REPO = Path(__file__).resolve().parents[2]
COLLECTION_SRC = REPO / "packaging" / "ansible"
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)",
    re.M,
)


def ansible_bin(name: str) -> str:
    """An Ansible program: from $PSQUADLET_ANSIBLE_BIN, else beside this Python (the venv)."""
    folder = os.environ.get("PSQUADLET_ANSIBLE_BIN") or str(Path(sys.executable).parent)
    return str(Path(folder) / name)


def install_collection(dest: Path) -> Path:
    """Build the collection and install the tarball under `dest`; returns the collections path."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [ansible_bin("ansible-galaxy"), "collection", "build", "--force", str(COLLECTION_SRC)],
        cwd=dest,
        check=True,
        capture_output=True,
        text=True,
    )
    (tarball,) = dest.glob("psquadlet-psquadlet-*.tar.gz")
    paths = dest / "collections"
    subprocess.run(
        [
            ansible_bin("ansible-galaxy"),
            "collection",
            "install",
            "--force",
            "-p",
            str(paths),
            str(tarball),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return paths


@dataclass
class PlayResult:
    rc: int
    output: str
    recap: dict[str, dict[str, int]]

    def changed(self, host: str) -> int:
        return self.recap[host]["changed"]


class Fleet:
    """Booted hosts (name -> TestBed) and the inventory that reaches them."""

    def __init__(self, hosts: dict[str, Callable[[], TestBed]], workdir: Path) -> None:
        self._makers = hosts
        self.workdir = workdir
        self.hosts: dict[str, TestBed] = {}
        self.collections: Path | None = None

    def boot(self) -> float:
        """Boot every host at once (the roots are cached); returns the seconds it took."""
        started = time.monotonic()
        beds = {name: make() for name, make in self._makers.items()}
        self.hosts = beds
        # Cold, the roots are debootstrapped side by side (each under its own lock; hosts of
        # one root wait for the first); warm, the boots overlap.
        with concurrent.futures.ThreadPoolExecutor(len(beds)) as pool:
            for f in [pool.submit(tb.boot) for tb in beds.values()]:
                f.result()
        return time.monotonic() - started

    def close(self) -> None:
        for tb in self.hosts.values():
            tb.close()

    def inventory(
        self,
        order: Sequence[str] | None = None,
        groups: dict[str, Sequence[str]] | None = None,
    ) -> Path:
        """[testpoints] in *order* (default: as booted), then more *groups* of those hosts."""
        lines = ["[testpoints]"]
        for name in order or list(self.hosts):
            lines.append(f"{name} ansible_nsenter_pid={self.hosts[name].pid}")
        for group, members in (groups or {}).items():
            lines += ["", f"[{group}]", *members]
        lines += [
            "",
            "[testpoints:vars]",
            "ansible_connection=community.docker.nsenter",
            "ansible_python_interpreter=/usr/bin/python3",
        ]
        path = self.workdir / "inventory.ini"
        path.write_text("\n".join(lines) + "\n")
        return path

    def play(
        self,
        playbook: str | Path,
        extra_vars: dict[str, Any] | None = None,
        *,
        check: bool = False,
        diff: bool = False,
        timeout: float = 900,
        order: Sequence[str] | None = None,
        groups: dict[str, Sequence[str]] | None = None,
        env: dict[str, str] | None = None,
    ) -> PlayResult:
        if self.collections is None:
            self.collections = install_collection(self.workdir / "galaxy")
        inventory = self.inventory(order, groups)
        argv = [ansible_bin("ansible-playbook"), "-i", str(inventory), str(playbook)]
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible-tmp"),
            "ANSIBLE_HOME": str(self.workdir / "ansible-home"),
            **(env or {}),
        }
        res = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        out = res.stdout + res.stderr
        recap = {
            m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
            for m in RECAP.finditer(res.stdout)
        }
        return PlayResult(res.returncode, out, recap)

    def status(self, name: str, container: str) -> dict[str, Any]:
        out = self.hosts[name].run(["psquadlet", "status", "--json", container], check=False)
        return json.loads(out.stdout)["containers"][0]  # type: ignore[no-any-return]


CALLBACKS = Path(__file__).parent / "ansible_callbacks"


class AfterTask:
    """Something the test does at one point of a playbook run, before the run goes on.

    The callback plugin ``after_task`` (tests/support/ansible_callbacks) blocks the play once
    task *task* succeeded on host *host*: it writes ``request`` and waits for ``done``. The
    linear strategy handles a task's results (and runs the callbacks) before it starts the
    next task or wave, so *action* runs exactly there: e.g. the tag moves after the canary
    passed and before the next wave starts.
    """

    def __init__(self, workdir: Path, host: str, task: str, action: Callable[[], None]) -> None:
        self.folder = workdir
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in ("request", "done"):
            (self.folder / name).unlink(missing_ok=True)
        self.host, self.task, self.action = host, task, action
        self.ran = False

    def env(self) -> dict[str, str]:
        return {
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_CALLBACKS_ENABLED": "after_task",
            "PSQ_AFTER_HOST": self.host,
            "PSQ_AFTER_TASK": self.task,
            "PSQ_AFTER_DIR": str(self.folder),
        }

    def play(self, fleet: Fleet, playbook: str | Path, **kwargs: Any) -> PlayResult:
        """Run the playbook; do the action when the callback asks (at most once)."""
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            run = pool.submit(fleet.play, playbook, env=self.env(), **kwargs)
            while not run.done():
                if not self.ran and (self.folder / "request").exists():
                    try:
                        self.action()
                    finally:
                        self.ran = True
                        (self.folder / "done").write_text("done\n")
                time.sleep(0.2)
            return run.result()


def digests(fleet: Fleet, container: str, names: Sequence[str] | None = None) -> dict[str, str]:
    """The digest each host's container runs now."""
    out = {}
    for name in names or list(fleet.hosts):
        res = fleet.hosts[name].podman(
            "inspect", container, "--format", "{{.ImageDigest}}", check=False
        )
        out[name] = res.stdout.strip()
    return out


# ansible-test --venv bootstraps pip in its venv with a get-pip script it downloads from a
# host that cannot be reached here. This stand-in, saved where ansible-test caches that
# script, bootstraps pip from Python's own ensurepip and then installs the pip version asked
# for from the package index, as the downloaded script would.
GET_PIP_STAND_IN = """\
# Written by psquadlet's tests/support/fleet.py: pip from ensurepip, then from the index.
import ensurepip, os, subprocess, sys
ensurepip.bootstrap(upgrade=True)
os.environ.pop("PIP_CONFIG_FILE", None)  # ensurepip points it at /dev/null
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "-q", *args]))
"""


def ansible_test_pip_version() -> str:
    """The pip version ansible-test bootstraps its venvs with."""
    code = (
        "from ansible_test._internal.python_requirements import get_venv_packages as g\n"
        "class P: version = '3'\n"
        "print(g(P())['pip'])"
    )
    python = Path(ansible_bin("python"))
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


SANITY_DIR = CACHE / "ansible-sanity"


def sanity(workdir: Path, python: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """`ansible-test sanity --venv` on a copy of the collection under ansible_collections/."""
    cache = Path.home() / ".ansible/test/cache"
    get_pip = cache / f"get_pip_{ansible_test_pip_version().replace('.', '_')}.py"
    if not get_pip.exists():
        cache.mkdir(parents=True, exist_ok=True)
        get_pip.write_text(GET_PIP_STAND_IN)
    tree = workdir / "ansible_collections/psquadlet/psquadlet"
    # A fresh copy, but tests/output keeps ansible-test's venv (its linters): minutes saved.
    output = tree / "tests/output"
    kept = tree.parent / ".output-kept"
    if output.is_dir():
        shutil.rmtree(kept, ignore_errors=True)
        output.rename(kept)
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(COLLECTION_SRC, tree)
    if kept.is_dir():
        output.parent.mkdir(parents=True, exist_ok=True)
        kept.rename(output)
    return subprocess.run(
        [ansible_bin("ansible-test"), "sanity", "--venv", "--python", python],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
