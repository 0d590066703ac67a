"""doctor: real sockets held by a process of the test's own, fake cgroup trees, PATH games."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from psquadlet import host
from psquadlet.config import parse_config
from psquadlet.doctor import (
    FAIL,
    PASS,
    SKIP,
    WARN,
    Check,
    Context,
    Host,
    Report,
    checks,
    clock,
    context_for,
)
from psquadlet.doctor import context as context_mod
from psquadlet.doctor import diagnose as diagnose_module
from psquadlet.doctor import sockets as proc_sockets
from psquadlet.perfsonar.checks import check_perfsonar_files
from tests.support import require_programs

# The preset: the systemd variant on host networking, named perfsonar-testpoint.
TESTPOINT = '[containers.perfsonar-testpoint]\npreset = "perfsonar-testpoint"\n'
SUPERVISORD = TESTPOINT + 'variant = "supervisord"\n'
NGINX = '[containers.web]\nimage = "docker.io/library/nginx:latest"\nnetwork = "host"\n'


def ctx(config: str = TESTPOINT, host: Host | None = None) -> Context:
    return context_for(parse_config(config, "t.toml"), host or Host())


HOG_NAME = "psq-porthog"

# A process of our own that binds the given sockets, renames itself so doctor can name it,
# says "ready" and sleeps until killed.
HOG = textwrap.dedent(
    f"""
    import ctypes, socket, sys, time
    ctypes.CDLL(None).prctl(15, b"{HOG_NAME}", 0, 0, 0)
    held = []
    for spec in sys.argv[1:]:
        proto, family, addr, port = spec.split(",")
        fam = socket.AF_INET6 if family == "6" else socket.AF_INET
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(fam, kind)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, int(port)))
        if proto == "tcp":
            s.listen()
        held.append(s)
    print("ready", flush=True)
    time.sleep(300)
    """
)


def _free(proto: str, family: int, address: str, candidates: range) -> int:
    fam = socket.AF_INET6 if family == 6 else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    for port in candidates:
        probe = socket.socket(fam, kind)
        try:
            if fam == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind((address, port))
        except OSError:
            continue
        finally:
            probe.close()
        return port
    raise AssertionError(f"no free {proto}/{family} port in {candidates}")


@pytest.fixture
def hog() -> Iterator[tuple[subprocess.Popen[str], list[tuple[str, str, str, int]]]]:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    specs = [
        ("tcp", "4", "0.0.0.0", _free("tcp", 4, "0.0.0.0", range(5890, 5901))),
        ("tcp", "6", "::", _free("tcp", 6, "::", range(5900, 5889, -1))),
        ("udp", "4", "0.0.0.0", _free("udp", 4, "0.0.0.0", range(9960, 8760, -1))),
        ("udp", "6", "::1", _free("udp", 6, "::1", range(19960, 18760, -1))),
        ("tcp", "4", "127.0.0.1", _free("tcp", 4, "127.0.0.1", range(11284, 11285))),
    ]
    args = [f"{p},{f},{a},{n}" for p, f, a, n in specs]
    proc = subprocess.Popen([sys.executable, "-c", HOG, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc, specs
    finally:
        proc.kill()
        proc.wait()


def test_ports_in_use_are_named_with_pid_and_process(
    hog: tuple[subprocess.Popen[str], list[tuple[str, str, str, int]]],
) -> None:
    proc, specs = hog
    check = checks.check_ports(ctx(host=Host(path="")))
    assert check.status == FAIL
    for proto, family, address, port in specs:
        matching = [
            item
            for item in check.items
            if item["proto"] == proto
            and item["port"] == port
            and item["family"] == f"ipv{family}"
            and item["address"] == address
        ]
        assert matching, f"{proto}/{family} {address}:{port} not reported: {check.items}"
        assert {"pid": proc.pid, "comm": HOG_NAME} in matching[0]["processes"]  # type: ignore[operator]
    assert any(HOG_NAME in line and str(proc.pid) in line for line in check.details)


def test_sockets_of_the_testpoint_itself_are_not_conflicts(
    hog: tuple[subprocess.Popen[str], list[tuple[str, str, str, int]]],
) -> None:
    proc, specs = hog
    sockets = proc_sockets.read_sockets(Path("/proc"))
    owners = proc_sockets.socket_owners(Path("/proc"), (s.inode for s in sockets))
    with_hog = proc_sockets.find_port_conflicts(sockets, owners)
    without = proc_sockets.find_port_conflicts(sockets, owners, exclude_pids={proc.pid})
    ports = {(s[0], s[3]) for s in specs}
    assert ports <= {(c["proto"], c["port"]) for c in with_hog}
    assert not ports & {(c["proto"], c["port"]) for c in without}


def test_parse_socket_tables() -> None:
    tcp = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
        "       0 111 1 0000000000000000 100 0 0 10 0\n"
        "   1: 020200C0:B9E2 507100CB:0050 01 00000000:00000000 00:00000000 00000000     0 "
        "       0 222 1 0000000000000000 100 0 0 10 0\n"
    )
    listeners = proc_sockets.parse_socket_table(tcp, "tcp", 4)
    assert listeners == [proc_sockets.Socket("tcp", 4, "127.0.0.1", 8080, 111)]
    udp6 = (
        "  sl  local_address                         remote_address                        st "
        "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
        "  5: 00000000000000000000000001000000:1388 00000000000000000000000000000000:0000 07 "
        "00000000:00000000 00:00000000 00000000     0        0 333 2 0000000000000000 0\n"
    )
    assert proc_sockets.parse_socket_table(udp6, "udp", 6) == [
        proc_sockets.Socket("udp", 6, "::1", 5000, 333)
    ]


def test_loopback_only_ports_clash_only_on_loopback_or_wildcard() -> None:
    sockets = [
        proc_sockets.Socket("tcp", 4, "192.0.2.10", 5432, 1),
        proc_sockets.Socket("tcp", 4, "127.0.0.1", 9100, 2),
        proc_sockets.Socket("tcp", 6, "::", 11284, 3),
        proc_sockets.Socket("tcp", 4, "192.0.2.10", 443, 4),
        proc_sockets.Socket("udp", 4, "0.0.0.0", 5432, 5),
        proc_sockets.Socket("tcp", 4, "0.0.0.0", 22, 6),
    ]
    found = proc_sockets.find_port_conflicts(sockets, {})
    assert [(c["proto"], c["port"]) for c in found] == [("tcp", 443), ("tcp", 9100), ("tcp", 11284)]


def test_ports_skipped_without_a_host_network_testpoint() -> None:
    assert checks.check_ports(ctx(NGINX, Host(path=""))).status == SKIP


def _cgroup_v1(root: Path) -> Path:
    for controller in ("cpu", "memory", "pids", "systemd"):
        (root / controller).mkdir(parents=True)
        (root / controller / "cgroup.procs").write_text("1\n")
    return root


def test_cgroup_v1_fails_for_the_systemd_variant_with_advice(tmp_path: Path) -> None:
    check = checks.check_cgroup(ctx(host=Host(cgroup_root=_cgroup_v1(tmp_path))))
    assert check.status == FAIL
    assert "v1" in check.summary
    assert 'variant = "supervisord"' in check.advice
    assert "systemd.unified_cgroup_hierarchy=1" in check.advice


def test_cgroup_hybrid_fails_and_v2_passes(tmp_path: Path) -> None:
    hybrid = _cgroup_v1(tmp_path / "hybrid")
    (hybrid / "unified").mkdir()
    (hybrid / "unified" / "cgroup.controllers").write_text("cpu memory\n")
    check = checks.check_cgroup(ctx(host=Host(cgroup_root=hybrid)))
    assert (check.status, check.items[0]["layout"]) == (FAIL, "hybrid")
    unified = tmp_path / "v2"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("cpu memory pids\n")
    assert checks.check_cgroup(ctx(host=Host(cgroup_root=unified))).status == PASS


def test_cgroup_v1_is_fine_for_the_supervisord_variant(tmp_path: Path) -> None:
    check = checks.check_cgroup(ctx(SUPERVISORD, Host(cgroup_root=_cgroup_v1(tmp_path))))
    assert check.status == PASS


def test_missing_podman_gives_install_and_service_advice(tmp_path: Path) -> None:
    empty = ctx(host=Host(path=str(tmp_path)))  # an empty folder: no podman on this PATH
    check = checks.check_podman(empty)
    assert check.status == FAIL
    assert "apt-get install podman" in check.advice
    assert "--format service" in check.advice
    assert checks.check_arch(empty).status == SKIP


@pytest.mark.registry
def test_podman_older_than_4_4_advises_service_format() -> None:
    require_programs("podman")
    check = checks.check_podman(ctx())
    version = host.podman_version_in(
        subprocess.run(["podman", "--version"], capture_output=True, text=True, check=True).stdout
    )
    assert version is not None
    if version[:2] < (4, 4):
        assert check.status == WARN
        assert "psquadlet generate --format service" in check.advice
    else:
        assert check.status == PASS


def test_podman_with_quadlet_passes(tmp_path: Path) -> None:
    # A stand-in reporting a version the host's real podman cannot be made to report.
    fake = tmp_path / "podman"
    fake.write_text("#!/bin/sh\necho 'podman version 5.4.2'\n")
    fake.chmod(0o755)
    check = checks.check_podman(ctx(host=Host(path=str(tmp_path))))
    assert check.status == PASS
    assert check.items[0]["version"] == "5.4.2"


def _runner(answers: dict[str, tuple[int, str]]) -> host.Runner:
    def run(argv: object) -> tuple[int, str]:
        assert isinstance(argv, list)
        return answers.get(Path(argv[0]).name, (127, ""))

    return run


@pytest.fixture
def all_found(tmp_path: Path) -> str:
    for name in ("timedatectl", "chronyc", "ntpq"):
        (tmp_path / name).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / name).chmod(0o755)
    return str(tmp_path)


def test_time_sync_sources(all_found: str) -> None:
    def host(answers: dict[str, tuple[int, str]], kernel: bool | None = None) -> Context:
        probes = Host(path=all_found, run=_runner(answers), clock_synchronized=lambda: kernel)
        return ctx(host=probes)

    assert checks.check_time_sync(host({"timedatectl": (0, "yes\n")})).status == PASS
    chrony_ok = "Reference ID : 1\nLeap status     : Normal\n"
    chrony_bad = "Leap status     : Not synchronised\n"
    assert checks.check_time_sync(host({"chronyc": (0, chrony_ok)})).status == PASS
    bad = checks.check_time_sync(host({"timedatectl": (0, "no\n"), "chronyc": (0, chrony_bad)}))
    assert bad.status == WARN
    assert "owping" in bad.advice
    assert "chronyc: Leap status     : Not synchronised" in bad.details
    ntp = "     remote   refid\n*192.0.2.1  .GPS.\n"
    assert checks.check_time_sync(host({"ntpq": (0, ntp)})).status == PASS
    assert checks.check_time_sync(host({}, kernel=True)).status == PASS
    unknown = checks.check_time_sync(host({}, kernel=None))
    assert (unknown.status, unknown.summary) == (
        WARN,
        "cannot tell whether the clock is synchronised",
    )


def test_kernel_clock_probe_answers() -> None:
    assert clock.kernel_clock_synchronized() in (True, False)


def test_short_names_in_config_and_installed_units(tmp_path: Path) -> None:
    (tmp_path / "old.container").write_text("[Container]\nImage=perfsonar/testpoint\n")
    (tmp_path / "ok.container").write_text("[Container]\nImage=quay.io/x/y:1\n")
    probes = Host(quadlet_dirs=(tmp_path,))
    check = checks.check_short_names(context_for(parse_config("", "t"), probes, [("c", "nginx")]))
    assert check.status == FAIL
    suggestions = {item["image"]: item["suggestion"] for item in check.items}
    assert suggestions == {
        "nginx": "docker.io/library/nginx:latest",
        "perfsonar/testpoint": "docker.io/perfsonar/testpoint:latest",
    }
    fine = context_for(parse_config("", "t"), Host(quadlet_dirs=()), [("x", "quay.io/a/b")])
    assert checks.check_short_names(fine).status == PASS


def test_report_exit_codes_and_json_shape() -> None:
    ok = Check("a", PASS, "fine")
    warn = Check("b", WARN, "hmm", "do x")
    fail = Check("c", FAIL, "bad", "do y", ("line",), ({"k": 1},))
    skip = Check("d", SKIP, "n/a")
    assert Report((ok, skip)).exit_code == 0
    assert Report((ok, warn, skip)).exit_code == 1
    assert Report((ok, warn, fail)).exit_code == 2
    data = json.loads(Report((ok, fail)).dumps())
    assert data["schema"] == "psquadlet-doctor/1"
    assert data["ok"] is False
    assert json.loads(Report((ok, warn)).dumps())["ok"] is True
    assert data["status"] == "fail"
    assert data["exit_code"] == 2
    assert data["checks"][1] == {
        "id": "c",
        "status": "fail",
        "summary": "bad",
        "advice": "do y",
        "details": ["line"],
        "items": [{"k": 1}],
    }


def test_doctor_does_not_bind_anything() -> None:
    # The port check must only read tables: the socket count of this process stays the same.
    before = len(os.listdir("/proc/self/fd"))
    checks.check_ports(ctx(host=Host(path="")))
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("", PASS),  # the preset grants it
        ("cap_add = []\n", FAIL),
        ('cap_add = ["NET_ADMIN"]\nprivileged = true\n', PASS),
        ('cap_add = ["net_raw"]\ncap_drop = ["ALL"]\n', PASS),
    ],
)
def test_testpoint_without_cap_net_raw_fails(extra: str, status: str) -> None:
    check = checks.check_capabilities(ctx(f"{TESTPOINT}{extra}"))
    assert check.status == status, check
    if status == FAIL:
        assert 'add "CAP_NET_RAW" to cap_add' in check.advice


def test_capabilities_skipped_without_a_testpoint() -> None:
    assert checks.check_capabilities(ctx(NGINX)).status == SKIP


def test_perfsonar_files_must_exist_before_the_testpoint_starts(tmp_path: Path) -> None:
    rendered = "/etc/psquadlet/perfsonar/tp/lsregistrationdaemon.conf"
    limits = "/etc/limits.json"
    mounts = [
        ("tp", rendered, "/etc/perfsonar/lsregistrationdaemon.conf"),
        ("tp", limits, "/etc/pscheduler/limits.conf"),
    ]
    check = check_perfsonar_files(mounts, root=tmp_path)
    assert check.status == FAIL
    assert (
        f"tp: {rendered} (/etc/perfsonar/lsregistrationdaemon.conf): missing: run "
        in (check.details[0])
    )
    (tmp_path / "etc/psquadlet/perfsonar/tp").mkdir(parents=True)
    (tmp_path / rendered.lstrip("/")).write_text("site_name x\n")
    (tmp_path / limits.lstrip("/")).write_text("{not json")
    check = check_perfsonar_files(mounts, root=tmp_path)
    assert check.status == FAIL
    assert check.items[0]["problem"] == ""
    assert "not JSON" in str(check.items[1]["problem"])
    (tmp_path / limits.lstrip("/")).write_text('{"schema": 3}')
    assert check_perfsonar_files(mounts, root=tmp_path).status == PASS
    assert check_perfsonar_files([], root=tmp_path).status == SKIP


def test_a_systemd_release_tag_is_the_systemd_variant(tmp_path: Path) -> None:
    # v5.2.0-systemd was read as supervisord here (and as systemd by import): one detector now.
    pinned = '[containers.tp]\nimage = "docker.io/perfsonar/testpoint:v5.2.0-systemd"\n'
    check = checks.check_cgroup(ctx(pinned, Host(cgroup_root=_cgroup_v1(tmp_path))))
    assert check.status == FAIL
    assert check.items[0]["containers"] == ["tp"]


# --------------------------------------------------------------------------- unreadable files


def test_unit_files_that_cannot_be_read_are_named_not_a_traceback(
    tmp_path: Path, alarm: None
) -> None:
    (tmp_path / "good.container").write_text("[Container]\nImage=quay.io/x/y:1\n")
    (tmp_path / "latin.container").write_bytes(b"[Container]\nImage=quay.io/caf\xe9:1\n")
    (tmp_path / "zero.container").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.container")
    check = checks.check_short_names(ctx(host=Host(quadlet_dirs=(tmp_path,))))
    assert check.status == WARN
    assert sorted(check.details) == [
        f"{tmp_path}/fifo.container: not read: not a regular file",
        f"{tmp_path}/latin.container: not read: not UTF-8 text (byte 29)",
        f"{tmp_path}/zero.container: not read: not a regular file",
    ]
    # A short name in a readable unit still fails the check, and the unreadable are listed.
    (tmp_path / "short.container").write_text("[Container]\nImage=nginx\n")
    check = checks.check_short_names(ctx(host=Host(quadlet_dirs=(tmp_path,))))
    assert check.status == FAIL
    assert len(check.details) == 4


def test_a_limits_file_that_is_a_fifo_or_dev_zero_is_a_problem(tmp_path: Path, alarm: None) -> None:
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    (tmp_path / "latin.json").write_bytes(b'{"caf\xe9": 1}')
    target = "/etc/pscheduler/limits.conf"
    mounts = [("tp", f"/{name}", target) for name in ("fifo.json", "zero.json", "latin.json")]
    check = check_perfsonar_files(mounts, root=tmp_path)
    assert check.status == FAIL
    assert [item["problem"] for item in check.items] == [
        "not a regular file",
        "not a regular file",
        "not UTF-8 text (byte 5)",
    ]


# --------------------------------------------------------------------------- SELinux


def _selinux(folder: Path, mode: str | None, boolean: str | None) -> Host:
    """A PATH with stand-ins for getenforce and getsebool (SELinux cannot be switched on here)."""
    folder.mkdir(exist_ok=True)
    for name, out in (
        ("getenforce", mode),
        ("getsebool", None if boolean is None else f"container_manage_cgroup --> {boolean}"),
    ):
        if out is not None:
            (folder / name).write_text(f"#!/bin/sh\necho '{out}'\n")
            (folder / name).chmod(0o755)
    return Host(path=str(folder))


@pytest.mark.parametrize(
    ("mode", "boolean", "status"),
    [
        ("Enforcing", "off", FAIL),
        ("Enforcing", "on", PASS),
        ("Permissive", "off", WARN),
        ("Disabled", None, SKIP),
        (None, None, SKIP),  # no SELinux tools: not an SELinux host
    ],
)
def test_selinux_needs_container_manage_cgroup_for_systemd(
    tmp_path: Path, mode: str | None, boolean: str | None, status: str
) -> None:
    check = checks.check_selinux(ctx(host=_selinux(tmp_path / "bin", mode, boolean)))
    assert check.status == status, check
    if status in (FAIL, WARN):
        assert check.advice == "setsebool -P container_manage_cgroup on"
    if status == FAIL:
        assert "perfsonar-testpoint" in check.summary


def test_selinux_is_not_asked_for_containers_without_systemd(tmp_path: Path) -> None:
    enforcing_off = _selinux(tmp_path / "bin", "Enforcing", "off")
    assert checks.check_selinux(ctx(SUPERVISORD, enforcing_off)).status == SKIP
    assert checks.check_selinux(ctx(NGINX, enforcing_off)).status == SKIP
    init = NGINX + 'command = ["/sbin/init"]\n'
    assert checks.check_selinux(ctx(init, enforcing_off)).status == FAIL
    entry = NGINX + 'entrypoint = "/usr/lib/systemd/systemd"\n'
    assert checks.check_selinux(ctx(entry, enforcing_off)).status == FAIL


def test_selinux_reads_the_images_own_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = _selinux(tmp_path / "bin", "Enforcing", "off")
    podman = tmp_path / "bin" / "podman"  # a stand-in: the image's Entrypoint and Cmd
    podman.write_text('#!/bin/sh\nprintf \'%s\\t%s\\n\' "$PSQ_ENTRY" "$PSQ_CMD"\n')
    podman.chmod(0o755)

    def status(entry: str, cmd: str, config: str = NGINX) -> str:
        monkeypatch.setenv("PSQ_ENTRY", entry)
        monkeypatch.setenv("PSQ_CMD", cmd)
        return checks.check_selinux(ctx(config, host)).status

    assert status("null", '["/sbin/init"]') == FAIL
    assert status('["/usr/lib/systemd/systemd"]', '["--log-level=info"]') == FAIL
    assert status("null", '["nginx", "-g", "daemon off;"]') == SKIP
    # The configured command replaces the image's.
    assert status("null", '["/sbin/init"]', NGINX + 'command = ["nginx"]\n') == SKIP


def test_selinux_check_runs_in_the_report(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(TESTPOINT)
    report = diagnose_module.diagnose(
        tmp_path / "c.toml", _selinux(tmp_path / "bin", "Enforcing", "off")
    )
    (selinux,) = [c for c in report.checks if c.id == "selinux"]
    assert selinux.status == FAIL
    assert report.exit_code == 2


def test_extensions_add_their_checks_to_the_registry(tmp_path: Path) -> None:
    def extension(context: Context) -> Check:
        return Check("extension", PASS, f"{len(context.targets)} container(s)")

    (tmp_path / "c.toml").write_text(TESTPOINT + NGINX)
    report = diagnose_module.diagnose(
        tmp_path / "c.toml", Host(path=""), extension_checks=(extension,)
    )
    assert [c.id for c in report.checks][-1] == "extension"
    assert report.checks[-1].summary == "2 container(s)"
    assert [c.id for c in report.checks][1:-1] == [
        f.__name__[6:].replace("_", "-") for f in checks.CHECKS
    ]


# --------------------------------------------------------------------------- heal's checks


def test_name_resolution_names_the_registry_that_does_not_resolve() -> None:
    asked: list[str] = []

    def resolve(name: str) -> str:
        asked.append(name)
        return "" if name == "ghcr.io" else "[Errno -2] Name or service not known"

    assert checks.check_name_resolution(ctx(host=Host(resolve=resolve))).status == PASS
    mirror = TESTPOINT + 'registry = "mirror.invalid:5000"\n'
    check = checks.check_name_resolution(ctx(mirror, Host(resolve=resolve)))
    assert check.status == WARN
    assert check.summary == "cannot resolve mirror.invalid:5000"
    assert asked[-1] == "mirror.invalid"  # the port is not part of the name
    assert "resolv.conf" in check.advice


def test_disk_space_warns_below_a_gibibyte_or_five_percent(tmp_path: Path) -> None:
    def free(amount: int, total: int) -> Host:
        return Host(disk_free=lambda _p: (amount, total), storage=(str(tmp_path),))

    assert checks.check_disk_space(ctx(host=free(50 << 30, 100 << 30))).status == PASS
    low = checks.check_disk_space(ctx(host=free(512 << 20, 100 << 30)))
    assert low.status == WARN
    assert "low disk space" in low.summary
    assert checks.check_disk_space(ctx(host=free(4 << 30, 100 << 30))).status == WARN  # 4 %
    assert checks.check_disk_space(ctx(host=Host(disk_free=lambda _p: None))).status == SKIP
    # The real probe reads the nearest existing folder of a path that does not exist yet.
    assert context_mod.disk_free(str(tmp_path / "not" / "yet")) is not None
    assert context_mod.resolve_name("localhost") == ""


def test_doctor_names_the_watchers_systemd_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from psquadlet import deps
    from psquadlet.doctor.watcher import check_watcher

    monkeypatch.delenv(deps.SYSTEMD_ADAPTER_ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    # Only looked up on PATH, never run: an executable of that name is all the check needs
    # (the Python 3.9 root these tests also run in has no systemd).
    (tmp_path / "busctl").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "busctl").chmod(0o755)
    with_busctl = Host(path=str(tmp_path))
    check = check_watcher(ctx(host=with_busctl))
    assert (check.status, check.items) == ("pass", ({"adapter": "pystemd", "missing": None},))
    assert "through pystemd" in check.summary
    monkeypatch.setitem(sys.modules, "pystemd", None)
    check = check_watcher(ctx(host=with_busctl))
    assert check.status == "pass"
    assert "through busctl (systemd's D-Bus API, no Python module needed)" in check.summary
    check = check_watcher(ctx(host=Host(path="/nonexistent")))  # no busctl on that PATH
    assert (check.status, check.items[0]["missing"]) == ("warn", "busctl")
    monkeypatch.setitem(sys.modules, "podman", None)
    check = check_watcher(ctx(host=with_busctl))
    assert check.status == "warn"
    assert "install the package python3-podman" in check.advice
    monkeypatch.delitem(sys.modules, "podman")
    monkeypatch.setenv(deps.SYSTEMD_ADAPTER_ENV, "bogus")
    assert check_watcher(ctx(host=with_busctl)).status == "fail"
