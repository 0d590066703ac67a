"""The configuration loader: what it accepts, and exactly how it reports what it refuses."""

from __future__ import annotations

import pytest

from psquadlet import config, model
from psquadlet.errors import ConfigError, ConfigErrors

HEAD = '[containers.tp]\nimage = "docker.io/perfsonar/testpoint:systemd"\n'


def errors_of(text: str) -> list[ConfigError]:
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        config.parse_config(text, "test.toml")
    return list(info.value.errors)


def one_error(text: str) -> ConfigError:
    errors = errors_of(text)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


# --------------------------------------------------------------------------- valid input


def test_builtin_default_is_the_systemd_testpoint_with_persisted_psconfig() -> None:
    cfg = config.default_config()
    assert cfg.source == model.BUILTIN_SOURCE
    (spec,) = cfg.containers
    assert spec.name == "perfsonar-testpoint"
    assert spec.image == "ghcr.io/perfsonar/testpoint:systemd"
    assert spec.network == "host"
    assert spec.tmpfs == ("/run", "/run/lock", "/tmp")
    assert model.VolumeMount("/sys/fs/cgroup", "/sys/fs/cgroup", ("rw",)) in spec.volumes
    assert model.VolumeMount("perfsonar-testpoint-psconfig", "/etc/perfsonar/psconfig") in (
        spec.volumes
    )
    assert spec.cgroupns == "host"
    assert spec.cap_add == ("CAP_NET_RAW",)
    assert spec.tty is True
    assert spec.environment == (("TZ", "UTC"),)
    assert spec.service.restart == "on-failure"
    assert spec.pull == ""  # restarts must not pull by themselves
    assert spec.update.health_cmd == ("pscheduler", "troubleshoot", "--quick")
    assert "perfsonar-testpoint-psconfig" in [v.name for v in cfg.volumes]


def test_supervisord_variant() -> None:
    cfg = config.parse_config(
        '[containers.perfsonar-testpoint]\npreset = "perfsonar-testpoint"\n'
        'variant = "supervisord"\n',
        "x.toml",
    )
    (spec,) = cfg.containers
    assert spec.image == "ghcr.io/perfsonar/testpoint:latest"
    assert spec.tmpfs == ()
    assert spec.cgroupns == ""
    assert spec.tty is False
    assert spec.cap_add == ("CAP_NET_RAW",)
    assert spec.named_volumes[0] == "perfsonar-testpoint-psconfig"
    assert all(v.source.startswith("perfsonar-testpoint-") for v in spec.volumes)


def test_operator_keys_win_and_lists_replace_the_presets() -> None:
    cfg = config.parse_config(
        '[containers.tp]\npreset = "perfsonar-testpoint"\n'
        'image = "docker.io/perfsonar/testpoint:v5.2.0-systemd"\n'
        'cap_add = ["CAP_NET_ADMIN"]\nenvironment = { TZ = "Europe/Paris" }\n'
        "[containers.tp.service]\nrestart_sec = 30\n",
        "x.toml",
    )
    (spec,) = cfg.containers
    assert spec.image == "docker.io/perfsonar/testpoint:v5.2.0-systemd"
    assert spec.cap_add == ("CAP_NET_ADMIN",)
    assert spec.environment == (("TZ", "Europe/Paris"),)
    # Sub-tables merge key by key: the preset's restart policy stays.
    assert spec.service.restart == "on-failure"
    assert spec.service.restart_sec == 30
    # The preset's volume is named after the container, not shared between containers.
    assert "tp-psconfig" in spec.named_volumes
    assert not any(v.startswith("perfsonar-testpoint") for v in spec.named_volumes)


def test_durations_and_defaults() -> None:
    cfg = config.parse_config(
        HEAD + '[containers.tp.service]\ntimeout_start = "1h30m"\ntimeout_stop = 45\n'
        '[containers.tp.update]\ninterval = "6h"\nmin_age = "2d"\n',
        "x.toml",
    )
    (spec,) = cfg.containers
    assert spec.service.timeout_start == 5400
    assert spec.service.timeout_stop == 45
    assert spec.update.interval == 6 * 3600
    assert spec.update.schedule is None
    assert spec.update.min_age == 2 * 86400
    assert spec.install.targets(user=False) == ("multi-user.target",)
    assert spec.install.targets(user=True) == ("default.target",)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("1h30m", 5400), ("2d", 172800), ("15", 15), ("0s", 0)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert config.parse_duration(text) == seconds


def test_empty_strings_mean_unset() -> None:
    cfg = config.parse_config(HEAD + 'hostname = ""\nstop_signal = ""\npull = ""\n', "x.toml")
    (spec,) = cfg.containers
    assert (spec.hostname, spec.stop_signal, spec.pull) == ("", "", "")


def test_equal_inputs_give_equal_models() -> None:
    a = config.parse_config(HEAD + 'labels = { b = "2", a = "1" }\n', "x.toml")
    b = config.parse_config(HEAD + 'labels = { a = "1", b = "2" }\n', "x.toml")
    assert a == b
    assert hash(a) == hash(b)


def test_init_files_parse_to_the_preset() -> None:
    from psquadlet import presets

    for variant in ("systemd", "supervisord"):
        from_init = config.parse_config(presets.init_text(variant), "x.toml")
        from_preset = config.parse_config(
            '[containers.perfsonar-testpoint]\npreset = "perfsonar-testpoint"\n'
            f'variant = "{variant}"\n',
            "x.toml",
        )
        assert from_init.containers == from_preset.containers
        assert from_init.volumes == from_preset.volumes


def test_init_files_show_working_alert_and_metrics_examples() -> None:
    """Issue 21 item 5: `init` tells an operator that alerts and metrics exist, commented out,
    and each example parses to a configured sink once uncommented."""
    from psquadlet import presets

    for variant in ("systemd", "supervisord"):
        text = presets.init_text(variant)
        plain = config.parse_config(text, "x.toml")
        assert plain.notifications is None or not plain.notifications.channels
        assert plain.metrics is None
        assert "# [notifications]" in text
        assert "# [metrics]" in text
        uncommented = "\n".join(
            line[2:] if line.startswith("# [") or (line[2:3].isalpha() and "=" in line) else line
            for line in presets.sink_examples().splitlines()
            if not line.startswith("#   ")
        )
        example = text.replace(presets.sink_examples(), uncommented + "\n")
        cfg = config.parse_config(example, "x.toml")
        assert cfg.notifications is not None
        assert [c.name for c in cfg.notifications.channels] == ["ops-mail"]
        assert cfg.notifications.urls_file == "/etc/psquadlet/notification-urls.toml"
        assert cfg.metrics is not None
        assert cfg.metrics.textfile_dir == "/var/lib/prometheus/node-exporter"


# --------------------------------------------------------------------------- errors


def test_toml_syntax_error_carries_line_and_column() -> None:
    error = one_error('[containers.tp]\nimage = "docker.io/a/b"\nports = [\n"1:2"\nbad\n')
    assert error.file == "test.toml"
    assert error.line is not None
    assert error.line >= 4
    assert "TOML syntax error" in error.message
    assert "column" in error.message
    assert str(error).startswith(f"test.toml:{error.line}: TOML syntax error")


def test_unknown_key_with_did_you_mean() -> None:
    error = one_error(HEAD + 'netwrok = "host"\n')
    assert (error.line, error.key_path) == (3, "containers.tp.netwrok")
    assert error.message == "unknown key 'netwrok'"
    assert error.hint == "did you mean 'network'?"
    assert str(error) == (
        "test.toml:3: containers.tp.netwrok: unknown key 'netwrok' (did you mean 'network'?)"
    )


def test_unknown_key_in_a_subtable_and_at_the_top() -> None:
    errors = errors_of(HEAD + '[containers.tp.servce]\nrestart = "always"\n[wacth]\n')
    paths = {(e.key_path, e.hint) for e in errors}
    assert ("containers.tp.servce", "did you mean 'service'?") in paths
    assert ("wacth", "did you mean 'watch'?") in paths


def test_every_error_of_a_file_is_reported_at_once() -> None:
    errors = errors_of(HEAD + 'tty = "yes"\nports = ["99999:80"]\nimage2 = 1\n')
    assert [e.line for e in errors] == sorted(e.line for e in errors if e.line is not None)
    assert {e.key_path for e in errors} == {
        "containers.tp.tty",
        "containers.tp.ports[0]",
        "containers.tp.image2",
    }


@pytest.mark.parametrize(
    ("snippet", "path", "message"),
    [
        ('tty = "yes"', "containers.tp.tty", "expected true or false, got a string"),
        ('cap_add = "CAP_NET_RAW"', "containers.tp.cap_add", "expected an array of strings"),
        ("cap_add = [1]", "containers.tp.cap_add[0]", "expected a string, got an integer"),
        ("stop_timeout = true", "containers.tp.stop_timeout", "expected an integer, got a boolean"),
        ("stop_timeout = -1", "containers.tp.stop_timeout", "must be between 0 and 3600"),
        ('environment = ["A=1"]', "containers.tp.environment", "expected a table of strings"),
        ("environment = { A = 1 }", "containers.tp.environment.A", "expected a string"),
        ('environment = { "A B" = "1" }', 'containers.tp.environment."A B"', "invalid environment"),
        ('ports = ["80:80/icmp"]', "containers.tp.ports[0]", "invalid port mapping"),
        ('ports = ["70000:80"]', "containers.tp.ports[0]", "ports are 1-65535"),
        ('ports = ["300.1.1.1:80:80"]', "containers.tp.ports[0]", "bad IP"),
        ('volumes = ["data"]', "containers.tp.volumes[0]", "invalid volume"),
        (
            'volumes = ["./psconfig:/etc/perfsonar/psconfig"]',
            "containers.tp.volumes[0]",
            "relative host path",
        ),
        ('volumes = ["/a:b"]', "containers.tp.volumes[0]", "is not absolute"),
        ('volumes = ["/a:/b:rw,bogus"]', "containers.tp.volumes[0]", "unknown option 'bogus'"),
        ('tmpfs = ["run"]', "containers.tp.tmpfs[0]", "not an absolute path"),
        ('devices = ["dev/fuse"]', "containers.tp.devices[0]", "invalid device"),
        ('ulimits = ["nofiles=10"]', "containers.tp.ulimits[0]", "unknown ulimit 'nofiles'"),
        ('dns = ["8.8.8"]', "containers.tp.dns[0]", "invalid IP address"),
        ('add_hosts = ["host"]', "containers.tp.add_hosts[0]", "invalid host entry"),
        ('hostname = "bad_host name"', "containers.tp.hostname", "invalid hostname"),
        ('cgroupns = "hots"', "containers.tp.cgroupns", "expected one of host, private"),
        ('pull = "allways"', "containers.tp.pull", "invalid value 'allways'"),
        ('notify = "yes"', "containers.tp.notify", 'expected true, false, "healthy"'),
        ('stop_signal = "TERM NOW"', "containers.tp.stop_signal", "invalid signal"),
        ('mounts = ["/a:/b"]', "containers.tp.mounts[0]", "invalid mount"),
        ('network = "my net"', "containers.tp.network", "must be one word"),
        ('container_name = "-x"', "containers.tp.container_name", "invalid name"),
        ('description = "two\\nlines"', "containers.tp.description", "contains a newline"),
        ('description = "nul\\u0000"', "containers.tp.description", "NUL"),
        ('command = ["a\\rb"]', "containers.tp.command[0]", "carriage return"),
        (
            'preset = "perfsonar-testpiont"',
            "containers.tp.preset",
            "unknown preset 'perfsonar-testpiont'",
        ),
        ('variant = "systemd"', "containers.tp.variant", "'variant' needs 'preset'"),
        ('group = "wheel"', "containers.tp.group", "'group' needs 'user'"),
    ],
)
def test_bad_values_name_the_key(snippet: str, path: str, message: str) -> None:
    error = one_error(HEAD + snippet + "\n")
    assert error.key_path == path
    assert message in error.message, str(error)
    assert error.line == 3
    assert error.file == "test.toml"


@pytest.mark.parametrize(
    ("snippet", "path", "message"),
    [
        (
            '[containers.tp.service]\nrestart = "sometimes"',
            "containers.tp.service.restart",
            "expected one of",
        ),
        (
            '[containers.tp.service]\nrestart_sec = "10 seconds"',
            "containers.tp.service.restart_sec",
            "invalid duration",
        ),
        (
            '[containers.tp.unit]\nafter = ["network online"]',
            "containers.tp.unit.after[0]",
            "invalid unit name",
        ),
        (
            '[containers.tp.unit]\nextra = { lowercase = "x" }',
            "containers.tp.unit.extra.lowercase",
            "not a unit-file key name",
        ),
        (
            '[containers.tp.update]\nschedule = "25:00"',
            "containers.tp.update.schedule",
            "invalid time",
        ),
        (
            '[containers.tp.update]\npolicy = "sometimes"',
            "containers.tp.update.policy",
            "expected one of auto, notify, off",
        ),
        (
            '[containers.tp.health]\ninterval = "1x"\ncmd = "true"',
            "containers.tp.health.interval",
            "invalid duration",
        ),
        ("[containers.tp.health]\ncmd = []", "containers.tp.health.cmd", "at least one word"),
    ],
)
def test_bad_subtable_values(snippet: str, path: str, message: str) -> None:
    error = one_error(HEAD + snippet + "\n")
    assert error.key_path == path
    assert message in error.message, str(error)
    assert error.line == 4


def test_short_image_name_is_refused_with_the_qualified_suggestion() -> None:
    error = one_error('[containers.tp]\nimage = "perfsonar/testpoint"\n')
    assert (error.line, error.key_path) == (2, "containers.tp.image")
    assert "short image name 'perfsonar/testpoint'" in error.message
    assert error.hint == "use 'docker.io/perfsonar/testpoint:latest'"


def test_missing_image() -> None:
    error = one_error('[containers.tp]\nnetwork = "host"\n')
    assert error.key_path == "containers.tp"
    assert "missing key 'image'" in error.message


def test_bad_variant_suggests() -> None:
    error = one_error('[containers.tp]\npreset = "perfsonar-testpoint"\nvariant = "supervisor"\n')
    assert error.key_path == "containers.tp.variant"
    assert error.hint == "did you mean 'supervisord'?"


def test_duplicate_container_names() -> None:
    error = one_error(
        HEAD + 'container_name = "same"\n'
        '[containers.other]\nimage = "docker.io/a/b:c"\ncontainer_name = "same"\n'
    )
    assert "also used by" in error.message


def test_schedule_and_interval_together() -> None:
    error = one_error(HEAD + '[containers.tp.update]\nschedule = "03:00"\ninterval = "6h"\n')
    assert "either 'schedule' or 'interval'" in error.message


def test_bad_names_of_tables() -> None:
    errors = errors_of(
        '[containers."bad name"]\nimage = "docker.io/a/b"\n'
        '[volumes."x/y"]\n[registries."bad host!"]\n'
    )
    assert {e.key_path for e in errors} == {
        'containers."bad name"',
        'volumes."x/y"',
        'registries."bad host!"',
    }


def test_watch_and_registries() -> None:
    cfg = config.parse_config(
        '[watch]\nstate_dir = "/srv/state"\nparallel = 2\n'
        '[registries."127.0.0.1:5000"]\ntls_verify = false\n',
        "x.toml",
    )
    assert cfg.watch == model.WatchSettings(state_dir="/srv/state", parallel=2)
    assert cfg.registry("127.0.0.1:5000").tls_verify is False
    assert cfg.registry("docker.io").tls_verify is True
    assert cfg.containers == ()


def test_health_without_cmd() -> None:
    error = one_error(HEAD + "[containers.tp.health]\nretries = 1\n")
    assert (error.line, error.key_path) == (3, "containers.tp.health")
    assert "missing key 'cmd'" in error.message


def test_ports_with_host_network_are_refused() -> None:
    error = one_error('[containers.tp]\npreset = "perfsonar-testpoint"\nports = ["8080:80"]\n')
    assert (error.line, error.key_path) == (3, "containers.tp.ports")
    assert "network = 'host'" in error.message


@pytest.mark.parametrize(
    ("snippet", "hint"),
    [
        ('[containers.tp.service]\nextra = { Restart = "always" }', "set service.restart instead"),
        ('[containers.tp.unit]\nextra = { After = "x.target" }', "set unit.after instead"),
        (
            '[containers.tp.install]\nextra = { WantedBy = "x.target" }',
            "set install.wanted_by instead",
        ),
    ],
)
def test_extra_keys_psquadlet_writes_point_to_the_setting(snippet: str, hint: str) -> None:
    error = one_error(HEAD + snippet + "\n")
    assert "is written by psquadlet" in error.message
    assert error.hint == hint
    assert error.line == 4
