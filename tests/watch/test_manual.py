"""Issue 14: block / unblock a digest, adopt one exact digest (core through fakes, CLI for real)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_core import run, target
from watchfakes import NAME, NEW, NEWER, OLD, world

from psquadlet.errors import UsageError
from psquadlet.watch import core, manual
from psquadlet.watch.interfaces import RegistryError
from psquadlet.watch.state import BAD_LIMIT, SOURCE_OPERATOR, BadDigest, with_bad

PT = "perfsonar-testpoint"


def test_a_blocked_digest_is_never_adopted_until_unblocked() -> None:
    w = world()
    manual.block(w.store, PT, NEW, "breaks owamp", w.clock.t)
    bad = w.store.state.get(PT).is_bad(NEW)
    assert bad == BadDigest(NEW, w.clock.t, "breaks owamp", SOURCE_OPERATOR)
    (o,) = run(w).outcomes
    assert o.action == core.KNOWN_BAD
    assert "breaks owamp" in o.message
    assert w.images.calls == []
    assert manual.unblock(w.store, PT, NEW)
    assert not manual.unblock(w.store, PT, NEW)
    assert run(w).outcomes[0].action == core.UPGRADED


def test_operator_blocks_outlive_many_rollbacks() -> None:
    bad = with_bad((), BadDigest(NEW, 1.0, "op", SOURCE_OPERATOR))
    for i in range(BAD_LIMIT + 5):
        bad = with_bad(bad, BadDigest(f"sha256:{i:064x}", 2.0 + i, "rollback"))
    assert bad[0].digest == NEW
    assert len(bad) == BAD_LIMIT + 1


@pytest.mark.parametrize("digest", ["sha256:abc", "latest", "sha256:../../x", ""])
def test_block_refuses_what_is_not_a_digest(digest: str) -> None:
    w = world()
    with pytest.raises(UsageError, match="not a digest"):
        manual.block(w.store, PT, digest, "", 0.0)
    with pytest.raises(UsageError, match="not a digest"):
        manual.adopt(target(), digest, w.deps, (target(),))


def test_adopt_pulls_exactly_the_digest_given() -> None:
    w = world()  # the tag points at NEW; the operator wants NEWER
    w.images.remote[f"{NAME}@{NEWER}"] = "newer"
    report = manual.adopt(target(), NEWER, w.deps, (target(),))
    (o,) = report.outcomes
    assert o.action == core.UPGRADED, w.log.text()
    assert w.images.calls[0] == ("pull", f"{NAME}@{NEWER}")
    assert w.registry.heads == []  # no check: the digest is given
    assert w.store.state.get(PT).running_digest == NEWER


def test_adopt_refuses_a_blocked_digest() -> None:
    w = world()
    manual.block(w.store, PT, NEW, "bad", 0.0)
    (o,) = manual.adopt(target(), NEW, w.deps, (target(),)).outcomes
    assert o.action == core.KNOWN_BAD
    assert o.result == "blocked"
    assert "unblock" in o.message
    assert w.images.calls == []


def test_adopt_goes_through_the_health_gate_and_rolls_back() -> None:
    w = world()
    w.images.health_exit = [1] * 1000
    t = target(health_cmd=("false",), health_timeout=30)
    (o,) = manual.adopt(t, NEW, w.deps, (t,)).outcomes
    assert o.action == core.ROLLED_BACK
    assert w.images.containers["pt"].image_id == "old0"


def test_adopt_of_the_running_digest_is_up_to_date() -> None:
    w = world()
    (o,) = manual.adopt(target(), OLD, w.deps, (target(),)).outcomes
    assert o.action == core.UP_TO_DATE
    assert w.images.calls == []


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "p.toml"
    cfg.write_text('[containers.pt]\nimage = "docker.io/perfsonar/testpoint:systemd"\n')
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "psquadlet",
            *args,
            "-c",
            str(cfg),
            "--state-dir",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_block_and_unblock_commands(tmp_path: Path) -> None:
    res = _cli(tmp_path, "block", "pt", NEW, "--reason", "breaks owamp")
    assert res.returncode == 0, res.stderr
    entry = json.loads((tmp_path / "s" / "state.json").read_text())["containers"]["pt"]
    (bad,) = entry["bad_digests"]
    assert (bad["digest"], bad["reason"], bad["source"]) == (NEW, "breaks owamp", "operator")
    assert bad["time"] > 0
    res = _cli(tmp_path, "unblock", "pt", NEW)
    assert res.returncode == 0, res.stderr
    assert "unblocked" in res.stdout
    entry = json.loads((tmp_path / "s" / "state.json").read_text())["containers"]["pt"]
    assert entry["bad_digests"] == []


def test_block_of_an_unknown_container_or_a_bad_digest_is_a_usage_error(tmp_path: Path) -> None:
    res = _cli(tmp_path, "block", "nope", NEW)
    assert res.returncode == 2
    assert "no container or unit 'nope'" in res.stderr
    res = _cli(tmp_path, "block", "pt", "sha256:xyz")
    assert res.returncode == 2
    assert "not a digest" in res.stderr
    assert "Traceback" not in res.stderr


def test_upgrade_digest_needs_one_name(tmp_path: Path) -> None:
    res = _cli(tmp_path, "upgrade", "--digest", NEW, "--json")
    assert res.returncode == 2
    assert "--digest needs the NAME of one container" in res.stderr
    assert json.loads(res.stdout)["ok"] is False


def test_adopt_dry_run_says_what_it_would_do_and_touches_nothing() -> None:
    """Issue 20: `upgrade NAME --digest D --dry-run`, what `upgrade.yml --check` runs."""
    w = world()
    t = target()
    w.registry.digests[str(t.image.with_digest(NEWER))] = NEWER
    saved = w.store.state
    report = manual.adopt(t, NEWER, w.deps, (t,), dry_run=True)
    (o,) = report.outcomes
    assert report.dry_run
    assert (o.action, o.result) == (core.WOULD_UPGRADE, "update-available"), o.message
    assert o.remote_digest == NEWER
    assert w.images.calls == []
    assert w.store.state is saved  # nothing saved, nothing locked
    # The checks a real run makes: blocked, already there, the registry serves it.
    manual.block(w.store, PT, NEWER, "bad", 0.0)
    assert manual.adopt(t, NEWER, w.deps, (t,), dry_run=True).outcomes[0].action == (core.KNOWN_BAD)
    assert manual.adopt(t, OLD, w.deps, (t,), dry_run=True).outcomes[0].action == core.UP_TO_DATE
    w.registry.fail[str(t.image.with_digest(NEW))] = RegistryError("404 manifest unknown")
    (missing,) = manual.adopt(t, NEW, w.deps, (t,), dry_run=True).outcomes
    assert missing.action == core.ERROR, missing.message
    assert "does not serve" in missing.message
    assert w.images.calls == []


HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, b"%d\\n" % os.getpid(), 0)
print("held", flush=True)
sys.stdin.read()  # held until the test closes our stdin
"""


def _hold_lock(tmp_path: Path) -> subprocess.Popen[str]:
    """Another real process (a pass, as far as the lock knows) holding the state lock."""
    (tmp_path / "s").mkdir(exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "s" / "lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def _cli_popen(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    cfg = tmp_path / "p.toml"
    cfg.write_text('[containers.pt]\nimage = "docker.io/perfsonar/testpoint:systemd"\n')
    argv = [sys.executable, "-m", "psquadlet", *args, "-c", str(cfg)]
    argv += ["--state-dir", str(tmp_path / "s")]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(
    "args",
    [("block", "pt", NEW), ("unblock", "pt", NEW), ("pin", "pt"), ("unpin", "pt")],
)
def test_hand_commands_wait_for_a_pass_that_holds_the_lock(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Issue 20 §3: a fleet-wide block must not fail on a host that is mid-pass."""
    holder = _hold_lock(tmp_path)
    try:
        cmd = _cli_popen(tmp_path, *args, "--wait", "600")
        # It cannot finish while the lock is held: it is still waiting once its Python is up
        # (the lock file's holder line is still the other process's).
        with pytest.raises(subprocess.TimeoutExpired):
            cmd.wait(timeout=3)
        assert not (tmp_path / "s" / "state.json").exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    _, err = cmd.communicate(timeout=120)
    assert cmd.returncode == 0, err
    assert "Traceback" not in err
    if args[0] in ("block", "pin"):
        entry = json.loads((tmp_path / "s" / "state.json").read_text())["containers"]["pt"]
        assert entry["bad_digests"] if args[0] == "block" else entry["pinned"], entry


def test_hand_commands_give_up_after_wait_with_a_clear_error(tmp_path: Path) -> None:
    holder = _hold_lock(tmp_path)
    try:
        cmd = _cli_popen(tmp_path, "block", "pt", NEW, "--wait", "1")
        _, err = cmd.communicate(timeout=120)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    assert cmd.returncode != 0
    assert "Traceback" not in err
    assert "gave up after 1s (--wait)" in err, err
    assert f"(pid {holder.pid})" in err, err
    assert not (tmp_path / "s" / "state.json").exists()


def test_waiting_lock_is_bounded_without_sleeping_for_real() -> None:
    """The bound is the monotonic clock's, polled: a fake clock shows every retry."""
    w = world()
    locked = manual.LockedError("another psquadlet pass holds /s/lock (pid 7)")

    class Busy:
        def lock(self) -> object:
            raise locked

    clock = [0.0]
    naps: list[float] = []

    def sleep(s: float) -> None:
        naps.append(s)
        clock[0] += s

    busy = manual.waiting_lock(Busy(), 2.0, lambda: clock[0], sleep)  # type: ignore[arg-type]
    with pytest.raises(manual.LockedError, match=r"gave up after 2s \(--wait\): .*pid 7"), busy:
        raise AssertionError("entered without the lock")
    assert sum(naps) == pytest.approx(2.0)
    with manual.waiting_lock(w.store, 0.0):
        pass  # a free lock is taken at once, even with --wait 0
