"""The crash matrix of test_crash_matrix.py on real programs, where it matters most: the
configured tag of a real image in real Podman, moved by an upgrade from the loopback
registry. The pass runs in a forked process that SIGKILLs itself after step N, for every N;
recovery then runs on fresh adapters, as a restarted watcher would."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from realbed import PodmanRunUnits, container_info, podman, real_deps, target, unique
from test_crash_matrix import STEPS, Stepping

from psquadlet.watch import core
from psquadlet.watch.state import FileStateStore
from tests.support import images
from tests.support.registry import Registry

pytestmark = pytest.mark.registry
HEALTH = ("/usr/local/bin/healthcheck",)


def image_id(ref: str) -> str:
    return podman("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def killed_pass(podman_url: str, state_dir: Path, units: PodmanRunUnits, t: Any, n: int) -> int:
    """A pass in a forked process, SIGKILLed after step *n* (0: never); its step count."""
    count = state_dir.parent / f"{state_dir.name}.steps"
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            deps, _ = real_deps(podman_url, str(state_dir), units)
            steps = 0

            def step(_: str) -> None:
                nonlocal steps
                steps += 1
                if steps == n:
                    os.kill(os.getpid(), signal.SIGKILL)

            deps.images = Stepping(deps.images, STEPS["images"], step)
            deps.units = Stepping(deps.units, STEPS["units"], step)
            deps.store = Stepping(deps.store, STEPS["store"], step)
            core.run_pass([t], deps)
            count.write_text(str(steps))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if n:
        assert os.WIFSIGNALED(status), status
        return 0
    assert os.WIFEXITED(status), status
    assert os.WEXITSTATUS(status) == 0, status
    return int(count.read_text())


def test_kill_9_at_every_step_never_leaves_the_tag_on_an_untested_real_image(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    repo = unique("perfsonar/testpoint")
    ref = f"{registry.host}/{repo}:systemd"
    images.push(plain_images["1.0"], ref)
    podman("pull", "--tls-verify=false", ref)
    old_id = image_id(ref)
    images.push(plain_images["2.0"], ref)  # the registry now has the new one
    c = unique("psq-w")
    unit = f"{c}.service"
    t = target(c, c, ref, health_cmd=HEALTH, health_timeout=60)

    def fresh() -> None:  # the host as it was before the upgrade: old image, old container
        podman("tag", old_id, ref)
        units.add(unit, c, ref)

    fresh()
    total = killed_pass(podman_url, tmp_path / "whole", units, t, 0)
    new_id = container_info(c)["Image"]
    assert new_id != old_id
    for n in range(1, total + 1):
        fresh()
        state_dir = tmp_path / f"k{n}"
        killed_pass(podman_url, state_dir, units, t, n)
        deps, log = real_deps(podman_url, str(state_dir), units)
        core.recover_now([t], deps)
        why = f"killed after step {n} of {total}: {log.text()}"
        cs = FileStateStore(str(state_dir)).load().get(c)
        assert cs.phase == "", why
        running = container_info(c)
        assert running["State"]["Running"], why
        # what the unit starts from (the tag) is what runs: a restart or a boot changes nothing
        assert image_id(ref) == running["Image"], why
        assert running["Image"] in (old_id, new_id), why
        assert cs.running_image_id == running["Image"], why
        if running["Image"] == new_id:
            assert cs.history[-1].action == core.UPGRADED, why
            assert "health gate passed" in cs.history[-1].reason, why
