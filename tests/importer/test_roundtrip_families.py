"""Round trip per flag family: one short docker run line per family of flags, each imported,
generated and converted by Podman's own Quadlet generator; the ``podman run`` it produces
must carry the same flags (compared by ``tests.importer.flags``, which shares no code with
the importer). The corpus tests cover whole real-world lines; these make a failure point at
the family that broke.
"""

from __future__ import annotations

import shlex

import pytest

from psquadlet import importer
from psquadlet.config import parse_config
from psquadlet.render import render_units
from tests.importer import flags
from tests.support.oracle import run_quadlet

pytestmark = pytest.mark.oracle

FAMILIES = {
    "ports": "-p 8080:80 -p 127.0.0.1:5353:53/udp --publish=9000-9002:9000-9002",
    "volumes": "-v /srv/a:/a:ro -v named:/n -v /srv/b:/b:z,rslave --volume=/srv/c:/c",
    "mounts": "--mount type=bind,source=/srv/m,target=/m,readonly --mount type=tmpfs,target=/t",
    "tmpfs": "--tmpfs /run --tmpfs /tmp:rw,size=64m,mode=1777",
    "environment": "-e A=1 -e 'B=two words' --env C= --env-file /etc/app.env",
    "capabilities": "--cap-add NET_ADMIN --cap-add=CAP_SYS_TIME --cap-drop ALL",
    "devices": "--device /dev/fuse --device=/dev/sda:/dev/xvda:rw",
    "labels and annotations": "-l a=b --label 'c=d e' --annotation k=v",
    "network": "--network mynet --hostname box --dns 9.9.9.9 --dns-search example.org "
    "--add-host db:10.0.0.5 --add-host cache=10.0.0.6",
    "host network": "--net=host",
    "user": "-u 1000:1000 --group-add 10 --group-add audio --userns keep-id",
    "process": "-w /srv --entrypoint /docker-entrypoint.sh -t --init",
    "limits": "--ulimit nofile=1024:2048 --ulimit nproc=512 --sysctl net.core.somaxconn=1024",
    "isolation": "--cgroupns host --read-only --privileged --security-opt no-new-privileges",
    "health": "--health-cmd 'wget -q -O /dev/null http://localhost/' --health-interval 1m "
    "--health-timeout 10s --health-retries 2 --health-start-period 30s",
    "stop": "--stop-signal SIGRTMIN+3 --stop-timeout 45",
    "pull and logs": "--pull always --log-driver journald --log-opt tag=web",
    "raw podman arguments": "-m 256m --cpus 1.5 --pids-limit 200 --shm-size 64m --ipc private "
    "--oom-score-adj 100 -P --expose 8443 --security-opt label=disable --dns-option ndots:2",
    "dropped": "-d -i --rm -a stdout --detach-keys ctrl-x --sig-proxy=false",
}
PODMAN_FAMILIES = {
    "podman only": "--tz Europe/Berlin --env-host --health-cmd true --health-on-failure restart "
    "--sdnotify=healthy --secret token --uidmap 0:100000:65536",
}


def _round_trip(line: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    result = importer.from_command_line([line], environ={}, cwd="/srv")
    config = parse_config(importer.to_toml(result), "/etc/psquadlet/families.toml")
    units = {u.filename: u.text for u in render_units(config)}
    name = result.containers[0].name
    argv = run_quadlet(units).check().service(f"{name}.service").exec_argv()
    got = flags.read(argv)
    wanted = flags.read(shlex.split(line))
    assert got.image == flags.normalized_image(wanted.image)
    assert got.command == wanted.command
    return (
        [p for p in flags.compared(got) if p[0] != "name"],
        [p for p in flags.compared(wanted) if p[0] != "name"],
    )


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_docker_flag_family(family: str) -> None:
    got, wanted = _round_trip(f"docker run --name fam {FAMILIES[family]} busybox sleep 1d")
    assert got == wanted


@pytest.mark.parametrize("family", sorted(PODMAN_FAMILIES))
def test_podman_flag_family(family: str) -> None:
    got, wanted = _round_trip(f"podman run --name fam {PODMAN_FAMILIES[family]} busybox")
    assert got == wanted
