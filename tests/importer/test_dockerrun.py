"""docker run / podman run lines -> configuration keys, one flag family at a time."""

from __future__ import annotations

from typing import Any

import pytest

from psquadlet.importer import dockerrun, runflags
from psquadlet.importer.draft import APPROXIMATED, DROPPED, RAW, Draft, ImportInputError


def run(*flags: str, image: str = "nginx", environ: dict[str, str] | None = None) -> Draft:
    return dockerrun.parse(
        ["docker", "run", *flags, image], environ=environ or {}, cwd="/srv/project"
    )


def settings(*flags: str, **kwargs: Any) -> dict[str, Any]:
    return run(*flags, **kwargs).settings


def notes(d: Draft, kind: str) -> list[str]:
    return [n.subject for n in d.notes if n.kind == kind]


# ---- syntax ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ("--publish=8080:80",),
        ("--publish", "8080:80"),
        ("-p", "8080:80"),
        ("-p8080:80",),
        ("-p=8080:80",),
    ],
)
def test_every_spelling_of_a_value_flag(flags: tuple[str, ...]) -> None:
    assert settings(*flags)["ports"] == ["8080:80"]


def test_combined_short_flags_with_a_value_last() -> None:
    d = run("-itdp", "8080:80")
    assert d.settings["tty"] is True
    assert d.settings["ports"] == ["8080:80"]
    assert notes(d, DROPPED) == ["-i", "-d"]


def test_combined_short_flags_with_an_attached_value() -> None:
    d = run("-tp8080:80")
    assert d.settings == {"tty": True, "ports": ["8080:80"], "image": d.settings["image"]}


@pytest.mark.parametrize(("flag", "value"), [("--tty=false", False), ("-t=false", False),
                                             ("--tty=true", True), ("--tty", True)])  # fmt: skip
def test_boolean_flags_take_an_explicit_value(flag: str, value: bool) -> None:
    assert settings(flag)["tty"] is value


def test_repeated_flags_accumulate_in_order() -> None:
    s = settings("-p", "1:1", "--publish", "2:2", "-p3:3", "-e", "A=1", "-e", "B=2", "-e", "A=3")
    assert s["ports"] == ["1:1", "2:2", "3:3"]
    assert s["environment"] == {"A": "3", "B": "2"}


def test_double_dash_ends_the_flags_and_the_command_follows_the_image() -> None:
    d = dockerrun.parse(
        ["docker", "run", "-d", "--", "alpine", "sh", "-c", "echo --rm"], environ={}, cwd="/"
    )
    assert d.settings["image"] == "docker.io/library/alpine:latest"
    assert d.settings["command"] == ["sh", "-c", "echo --rm"]


def test_flags_stop_at_the_image() -> None:
    d = dockerrun.parse(["docker", "run", "alpine", "-p", "80:80"], environ={}, cwd="/")
    assert "ports" not in d.settings
    assert d.settings["command"] == ["-p", "80:80"]


def test_a_value_may_start_with_a_dash() -> None:
    assert settings("--entrypoint", "-x")["entrypoint"] == "-x"


@pytest.mark.parametrize(
    "prefix",
    [
        ["docker", "run"],
        ["docker", "container", "run"],
        ["docker", "create"],
        ["sudo", "docker", "run"],
        ["/usr/bin/docker", "run"],
        ["podman", "run"],
        ["podman", "container", "run"],
    ],
)
def test_command_forms(prefix: list[str]) -> None:
    d = dockerrun.parse([*prefix, "-t", "nginx"], environ={}, cwd="/")
    assert d.settings["tty"] is True


# ---- images and names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "qualified", "name"),
    [
        ("perfsonar/testpoint", "docker.io/perfsonar/testpoint:latest", "testpoint"),
        ("nginx", "docker.io/library/nginx:latest", "nginx"),
        ("nginx:1.25", "docker.io/library/nginx:1.25", "nginx"),
        ("quay.io/prometheus/node-exporter", "quay.io/prometheus/node-exporter:latest",
         "node-exporter"),
        ("localhost:5000/app:2", "localhost:5000/app:2", "app"),
        ("index.docker.io/library/redis:7", "docker.io/library/redis:7", "redis"),
    ],
)  # fmt: skip
def test_images_are_qualified_as_docker_would(image: str, qualified: str, name: str) -> None:
    d = run(image=image)
    assert d.settings["image"] == qualified
    assert d.name == name


def test_name_flag_names_the_table() -> None:
    d = run("--name", "web")
    assert d.name == "web"
    assert "container_name" not in d.settings


# ---- flag families --------------------------------------------------------------------------


def test_volumes_bind_named_relative_and_anonymous() -> None:
    d = run("-v", "/srv/www:/www:ro", "-v", "data:/data", "-v", "./conf:/conf", "-v", "/cache")
    assert d.settings["volumes"] == [
        "/srv/www:/www:ro",
        "data:/data",
        "/srv/project/conf:/conf",
    ]
    assert d.settings["podman_args"] == ["--volume=/cache"]
    assert notes(d, APPROXIMATED) == ["-v ./conf:/conf"]
    assert notes(d, RAW) == ["-v /cache"]


def test_relative_mount_sources_are_made_absolute() -> None:
    d = run("--mount", "type=bind,src=./conf,target=/conf,readonly")
    assert d.settings["mounts"] == ["type=bind,src=/srv/project/conf,target=/conf,readonly"]
    assert notes(d, APPROXIMATED) == ["--mount type=bind,src=./conf,target=/conf,readonly"]


def test_mounts_tmpfs_devices() -> None:
    s = settings(
        "--mount", "type=bind,source=/a,target=/b", "--tmpfs", "/run:size=64m",
        "--device", "/dev/fuse", "--device=/dev/sda:/dev/xvda:rwm",
    )  # fmt: skip
    assert s["mounts"] == ["type=bind,source=/a,target=/b"]
    assert s["tmpfs"] == ["/run:size=64m"]
    assert s["devices"] == ["/dev/fuse", "/dev/sda:/dev/xvda:rwm"]


def test_environment_from_the_line_the_environment_and_files() -> None:
    d = run(
        "-e", "A=1", "-e", "B=", "-e", "FROM_ENV", "-e", "UNSET", "--env-file", "app.env",
        environ={"FROM_ENV": "x"},
    )  # fmt: skip
    assert d.settings["environment"] == {"A": "1", "B": "", "FROM_ENV": "x"}
    assert d.settings["environment_files"] == ["/srv/project/app.env"]
    assert notes(d, APPROXIMATED) == ["-e FROM_ENV"]
    assert notes(d, DROPPED) == ["-e UNSET"]


def test_capabilities_labels_annotations_sysctls() -> None:
    s = settings(
        "--cap-add", "NET_ADMIN", "--cap-add=CAP_NET_RAW", "--cap-drop", "ALL",
        "-l", "a=b", "--label", "flag", "--annotation", "k=v", "--sysctl", "net.x=1",
    )  # fmt: skip
    assert s["cap_add"] == ["NET_ADMIN", "CAP_NET_RAW"]
    assert s["cap_drop"] == ["ALL"]
    assert s["labels"] == {"a": "b", "flag": ""}
    assert s["annotations"] == {"k": "v"}
    assert s["sysctls"] == {"net.x": "1"}


def test_network_and_name_resolution() -> None:
    d = run(
        "--net=host", "--network", "second", "-h", "box", "--dns", "1.1.1.1",
        "--dns-search", "example.org", "--add-host", "a:1.2.3.4", "--add-host", "b=5.6.7.8",
        "--dns-option", "ndots:2",
    )  # fmt: skip
    assert d.settings["network"] == "host"
    assert d.settings["hostname"] == "box"
    assert d.settings["dns"] == ["1.1.1.1"]
    assert d.settings["dns_search"] == ["example.org"]
    assert d.settings["add_hosts"] == ["a:1.2.3.4", "b:5.6.7.8"]
    assert d.settings["podman_args"] == ["--network=second", "--dns-option=ndots:2"]


@pytest.mark.parametrize(
    ("flags", "user", "group"),
    [(("-u1000",), "1000", None), (("--user=app:staff",), "app", "staff"),
     (("-u", "0:0"), "0", "0")],
)  # fmt: skip
def test_user_and_group(flags: tuple[str, ...], user: str, group: str | None) -> None:
    s = settings(*flags)
    assert s["user"] == user
    assert s.get("group") == group


def test_process_settings() -> None:
    s = settings(
        "-w", "/app", "--entrypoint", "/init", "--init", "--read-only", "--privileged",
        "--stop-signal", "SIGRTMIN+3", "--stop-timeout", "20", "--pull", "always",
        "--ulimit", "nofile=1024:2048", "--group-add", "audio", "--userns", "keep-id",
        "--cgroupns", "host", "--log-driver", "journald",
        "--security-opt", "no-new-privileges",
    )  # fmt: skip
    assert s["working_dir"] == "/app"
    assert s["entrypoint"] == "/init"
    assert (s["init"], s["read_only"], s["privileged"]) == (True, True, True)
    assert s["stop_signal"] == "SIGRTMIN+3"
    assert s["stop_timeout"] == 20
    assert s["pull"] == "always"
    assert s["ulimits"] == ["nofile=1024:2048"]
    assert s["group_add"] == ["audio"]
    assert s["userns"] == "keep-id"
    assert s["cgroupns"] == "host"
    assert s["log_driver"] == "journald"
    assert s["no_new_privileges"] is True


@pytest.mark.parametrize(
    ("option", "expected"),
    [("no-new-privileges:true", True), ("no-new-privileges=false", False),
     ("no-new-privileges", True)],
)  # fmt: skip
def test_no_new_privileges_spellings(option: str, expected: bool) -> None:
    assert settings("--security-opt", option)["no_new_privileges"] is expected


def test_other_security_options_are_raw() -> None:
    assert settings("--security-opt", "label=disable")["podman_args"] == [
        "--security-opt=label=disable"
    ]


def test_flags_without_a_key_go_to_podman_args_in_long_form() -> None:
    d = run("-m", "512m", "--cpus=1.5", "-P", "--shm-size", "1g", "--ipc=host", "--no-healthcheck")
    assert d.settings["podman_args"] == [
        "--memory=512m", "--cpus=1.5", "--publish-all", "--shm-size=1g", "--ipc=host",
        "--no-healthcheck",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "flags",
    [("-d",), ("--rm",), ("-i",), ("--detach-keys", "ctrl-a"), ("--sig-proxy=false",),
     ("-a", "stdout"), ("--cidfile", "/tmp/id"), ("--link", "db"), ("--isolation", "hyperv")],
)  # fmt: skip
def test_flags_without_meaning_under_systemd_are_dropped_with_a_reason(
    flags: tuple[str, ...],
) -> None:
    d = run(*flags)
    assert set(d.settings) == {"image"}
    [note] = d.notes
    assert note.kind == DROPPED
    assert note.subject.startswith(flags[0])
    assert note.reason


# ---- restart --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "restart"),
    [("no", "no"), ("always", "always"), ("unless-stopped", "always"),
     ("on-failure", "on-failure"), ("on-failure:0", "on-failure")],
)  # fmt: skip
def test_restart_policies(policy: str, restart: str) -> None:
    d = run("--restart", policy)
    assert d.sections["service"] == {"restart": restart}
    assert ("unit" in d.sections) is False
    assert bool(notes(d, APPROXIMATED)) == (policy == "unless-stopped")


def test_on_failure_with_a_count_limits_starts() -> None:
    d = run("--restart=on-failure:5")
    assert d.sections["service"] == {"restart": "on-failure"}
    assert d.sections["unit"] == {"extra": {"StartLimitBurst": "6", "StartLimitIntervalSec": "1h"}}
    assert notes(d, APPROXIMATED) == ["--restart on-failure:5"]


# ---- health ---------------------------------------------------------------------------------


def test_health_check_with_a_command() -> None:
    d = run(
        "--health-cmd", "curl -f http://localhost/", "--health-interval", "1m30s",
        "--health-timeout=500ms", "--health-retries", "5", "--health-start-period", "2s",
        "--health-start-interval", "1s",
    )  # fmt: skip
    assert d.sections["health"] == {
        "cmd": "curl -f http://localhost/",
        "interval": "1m30s",
        "timeout": "1s",
        "retries": 5,
        "start_period": "2s",
    }
    assert notes(d, APPROXIMATED) == ["--health-timeout 500ms"]
    assert notes(d, DROPPED) == ["--health-start-interval 1s"]


def test_health_tuning_without_a_command_tunes_the_image_check() -> None:
    d = run("--health-interval", "10s", "--health-retries", "2")
    assert "health" not in d.sections
    assert d.settings["podman_args"] == ["--health-interval=10s", "--health-retries=2"]


# ---- podman lines ---------------------------------------------------------------------------


def test_podman_only_flags_and_global_options() -> None:
    d = dockerrun.parse(
        ["podman", "--runtime", "runc", "--log-level=debug", "run", "--tz=UTC", "--env-host",
         "--sdnotify=healthy", "--replace", "--health-cmd", "true", "--health-on-failure",
         "kill", "--secret", "token", "nginx"],
        environ={}, cwd="/",
    )  # fmt: skip
    assert d.settings["global_args"] == ["--runtime=runc", "--log-level=debug"]
    assert d.settings["timezone"] == "UTC"
    assert d.settings["environment_host"] is True
    assert d.settings["notify"] == "healthy"
    assert d.sections["health"] == {"cmd": "true", "on_failure": "kill"}
    assert d.settings["podman_args"] == ["--secret=token"]
    assert notes(d, DROPPED) == ["--replace"]


def test_docker_client_options_are_dropped() -> None:
    d = dockerrun.parse(["docker", "-H", "tcp://x:2375", "run", "nginx"], environ={}, cwd="/")
    assert notes(d, DROPPED) == ["-H tcp://x:2375"]


def test_podman_only_flags_are_unknown_to_docker() -> None:
    with pytest.raises(ImportInputError, match="unknown flag for docker run: --tz"):
        run("--tz=UTC")


# ---- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["docker", "run", "--publsh", "80:80", "nginx"], "did you mean '--publish'"),
        (["docker", "run", "-Z", "nginx"], "unknown flag for docker run: -Z"),
        (["docker", "run", "nginx:"], "invalid image reference"),
        (["docker", "run", "--name"], "flag needs a value: --name"),
        (["docker", "run", "-p"], "flag needs a value: -p"),
        (["docker", "run", "-d"], "needs an image"),
        (["docker", "run"], "needs an image"),
        (["docker", "pull", "nginx"], "expected 'docker run'"),
        (["docker"], "no subcommand"),
        (["kubectl", "run", "nginx"], "expected a docker run or podman run"),
        ([], "no command line"),
        (["docker", "run", "--restart", "sometimes", "x"], "unknown restart policy"),
        (["docker", "run", "--restart", "always:3", "x"], "only on-failure"),
        (["docker", "run", "--restart", "always\n", "x"], "unknown restart policy"),
        (["docker", "run", "--sysctl", "novalue", "x"], "KEY=VALUE"),
        (["docker", "run", "--stop-timeout", "soon", "x"], "whole number"),
        (["docker", "run", "--tty=maybe", "x"], "invalid boolean"),
        (["docker", "run", "--health-cmd", "x", "--health-interval", "often", "y"],
         "invalid duration"),
        (["docker", "--bogus", "run", "x"], "unknown global docker option"),
    ],
)  # fmt: skip
def test_malformed_lines(argv: list[str], message: str) -> None:
    with pytest.raises(ImportInputError, match=message.replace("(", r"\(")) as caught:
        dockerrun.parse(argv, environ={}, cwd="/")
    assert caught.value.exit_code == 2


def test_the_table_has_no_duplicate_names() -> None:
    longs = [f.long for f in runflags.DOCKER_FLAGS + runflags.PODMAN_FLAGS]
    shorts = [f.short for f in runflags.DOCKER_FLAGS if f.short]
    assert len(longs) == len(set(longs))
    assert len(shorts) == len(set(shorts))
