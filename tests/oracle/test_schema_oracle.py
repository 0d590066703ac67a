"""The schema's new keys against the real Quadlet generator (Podman 5.4.2 by default).

``memory`` on a Quadlet older than 5.5 travels as ``PodmanArgs=--memory=``: the real 5.4.2
generator must accept the unit and hand podman exactly that flag. ``secrets`` become
``Secret=`` and reach podman as ``--secret``. A mount with ``"`` makes Quadlet drop the whole
unit, which is why config refuses it.
"""

from __future__ import annotations

import pytest

from psquadlet import config, render
from tests.support.oracle import quadlet_version, run_quadlet

pytestmark = pytest.mark.oracle

HEAD = '[containers.tp]\nimage = "docker.io/library/busybox:1"\n'


def argv_of(body: str) -> list[str]:
    version = quadlet_version()
    cfg = config.parse_config(HEAD + body, "t.toml")
    (unit,) = render.render_units(cfg, "quadlet", version)
    result = run_quadlet({unit.filename: unit.text}).check()
    return result.service("tp.service").exec_argv()


def test_memory_reaches_podman_through_the_installed_quadlet() -> None:
    argv = argv_of('memory = "512m"\n')
    assert "--memory=512m" in argv


def test_secrets_reach_podman() -> None:
    argv = argv_of('secrets = ["db-pass,type=env,target=DB_PASSWORD"]\n')
    assert argv[argv.index("--secret") + 1] == "db-pass,type=env,target=DB_PASSWORD"


def test_a_quoted_mount_is_what_quadlet_cannot_read() -> None:
    """Why check_mount refuses '"': the real generator drops the whole unit."""
    # What psquadlet's word quoting would write for source=/a"b (unitfile.render_value).
    mount = 'Mount="type=bind,source=/a\\"b,destination=/c"'
    text = f"[Container]\nImage=docker.io/library/busybox:1\n{mount}\n"
    result = run_quadlet({"q.container": text})
    assert "q.container" in result.errors
