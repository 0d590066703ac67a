"""One compose service -> a container draft: one handler per compose key.

Keys with a configuration key map onto it; keys with only a ``podman run`` flag go to
``podman_args`` (``_RAW_KEYS``); keys with no meaning under systemd are dropped with the reason
(``_DROPPED_KEYS``). Every value is read through ``composevalues``, which refuses a shape it
cannot carry over and names the key.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from psquadlet import imageref
from psquadlet.importer import durations, runflags
from psquadlet.importer.composevalues import (
    items,
    mapping,
    scalar,
    seconds,
    string_list,
    string_map,
    words,
)
from psquadlet.importer.composevolumes import ComposeFile, ServiceVolumes
from psquadlet.importer.draft import APPROXIMATED, DROPPED, Draft, ImportInputError

_DROPPED_KEYS = {
    "build": "psquadlet runs images: build and push the image, the unit pulls what image: names",
    "stdin_open": "a service has no terminal input to keep open",
    "profiles": "every imported service is a unit; profiles do not apply",
    "scale": "one unit runs one container",
    "links": "legacy links: put the containers on one network",
    "external_links": "legacy links: put the containers on one network",
    "develop": "compose watch is a development feature",
    "secrets": "create a podman secret and pass --secret in podman_args",
    "configs": "bind-mount the configuration file instead",
    "attach": "a service's output goes to the journal",
    "isolation": "Windows containers only",
    "credential_spec": "Windows containers only",
    "post_start": "no podman run equivalent: use [service] extra ExecStartPost",
    "pre_stop": "no podman run equivalent: use [service] extra ExecStop",
    "blkio_config": "not carried over: use podman_args --blkio-weight and friends",
    "extends": "extends is not followed: merge the base service into this one first",
    "label_file": "not carried over: put the labels in labels",
    "models": "compose models have no podman equivalent",
    "provider": "compose providers have no podman equivalent",
    "use_api_socket": "there is no Docker API socket to share under podman",
}
# key -> podman run flag, for keys that only have a raw podman argument.
_RAW_KEYS = {
    "cgroup_parent": "cgroup-parent",
    "cpu_count": None,
    "cpu_percent": None,
    "cpu_period": "cpu-period",
    "cpu_quota": "cpu-quota",
    "cpu_rt_period": "cpu-rt-period",
    "cpu_rt_runtime": "cpu-rt-runtime",
    "cpu_shares": "cpu-shares",
    "cpus": "cpus",
    "cpuset": "cpuset-cpus",
    "device_cgroup_rules": "device-cgroup-rule",
    "dns_opt": "dns-option",
    "domainname": "domainname",
    "expose": "expose",
    "gpus": "gpus",
    "ipc": "ipc",
    "mac_address": "mac-address",
    "mem_limit": "memory",
    "mem_reservation": "memory-reservation",
    "mem_swappiness": "memory-swappiness",
    "memswap_limit": "memory-swap",
    "oom_kill_disable": "oom-kill-disable",
    "oom_score_adj": "oom-score-adj",
    "pid": "pid",
    "pids_limit": "pids-limit",
    "platform": "platform",
    "runtime": "runtime",
    "shm_size": "shm-size",
    "uts": "uts",
    "volumes_from": "volumes-from",
}
# compose key -> (configuration key, shape): list, map, bool or str.
_DIRECT = {
    "cap_add": ("cap_add", "list"),
    "cap_drop": ("cap_drop", "list"),
    "dns": ("dns", "list"),
    "dns_search": ("dns_search", "list"),
    "group_add": ("group_add", "list"),
    "tmpfs": ("tmpfs", "list"),
    "labels": ("labels", "map"),
    "annotations": ("annotations", "map"),
    "sysctls": ("sysctls", "map"),
    "privileged": ("privileged", "bool"),
    "read_only": ("read_only", "bool"),
    "init": ("init", "bool"),
    "tty": ("tty", "bool"),
    "working_dir": ("working_dir", "str"),
    "hostname": ("hostname", "str"),
    "stop_signal": ("stop_signal", "str"),
    "cgroup": ("cgroupns", "str"),
    "userns_mode": ("userns", "str"),
}
_PULL = {"always": "always", "never": "never", "missing": "missing", "if_not_present": "missing"}


class Service(ServiceVolumes):
    """One service's keys -> its draft; ``convert`` applies each key's handler in order."""

    def __init__(self, name: str, file: ComposeFile) -> None:
        self.service = name
        self.file = file
        self.draft = Draft(name=file.table_names[name])
        self.ctx = runflags.RunContext("docker", file.variables, file.folder, [])

    def convert(self, body: dict[str, Any]) -> Draft:
        d = self.draft
        if "image" not in body:
            raise ImportInputError(
                f"{self.where('image')}: the service has no image (psquadlet runs images; "
                "build and push it, then name it in image:)"
            )
        for raw_key, value in body.items():
            key = str(raw_key)
            handler = _HANDLERS.get(key)
            if handler is not None:
                handler(self, value)
            elif key in _DIRECT:
                self.direct(key, value)
            elif key in _RAW_KEYS:
                flag = _RAW_KEYS[key]
                if flag is None:
                    d.note(DROPPED, self.where(key), "Windows containers only")
                    continue
                for item in items(value):
                    if isinstance(item, bool):
                        if item:
                            d.raw(f"--{flag}")
                    else:
                        d.raw(f"--{flag}={scalar(item, self.where(key))}")
            elif key in _DROPPED_KEYS:
                d.note(DROPPED, self.where(key), _DROPPED_KEYS[key])
            elif key.startswith("x-"):
                continue
            else:
                d.note(DROPPED, self.where(key), "unknown compose key: not carried over")
        return d

    def direct(self, key: str, value: Any) -> None:
        """A key that is a configuration key of the same shape (``_DIRECT``)."""
        name, shape = _DIRECT[key]
        where = self.where(key)
        if shape == "list":
            self.draft.append(name, *string_list(value, where))
        elif shape == "map":
            for k, v in string_map(value, where).items():
                self.draft.put(name, k, str(v))
        elif shape == "bool":
            self.draft.set(name, bool(value))
        else:
            self.draft.set(name, scalar(value, where))

    # -- handlers, one per compose key --

    def image(self, value: Any) -> None:
        try:
            image = scalar(value, self.where("image"))
            self.draft.set("image", str(imageref.normalize(image)))
        except imageref.ImageRefError as exc:
            raise ImportInputError(f"{self.where('image')}: {exc}") from None

    def container_name(self, value: Any) -> None:
        pass  # the table name (see _table_name)

    def network_mode(self, value: Any) -> None:
        mode = scalar(value, self.where("network_mode"))
        if mode.startswith("service:"):
            other = mode.split(":", 1)[1]
            mode = f"container:{self.file.table_names.get(other, other)}"
            self.draft.note(
                APPROXIMATED,
                self.where("network_mode"),
                f"joins the network of the container {mode.split(':', 1)[1]}",
            )
        self.draft.set("network", mode)

    def networks(self, value: Any) -> None:
        names = list(value) if isinstance(value, (list, dict)) else []
        names = [scalar(n, self.where("networks")) for n in names]
        names = [n for n in names if n != "default"]
        if not names:
            return
        self.draft.set("network", names[0])
        for extra in names[1:]:
            self.draft.raw(f"--network={extra}")
        self.draft.note(
            APPROXIMATED,
            self.where("networks"),
            "compose creates PROJECT_NAME networks; the unit joins podman networks named "
            f"{', '.join(names)}, which must exist (podman network create)",
        )

    def ports(self, value: Any) -> None:
        for item in items(value):
            if isinstance(item, dict):
                text = scalar(item.get("target"), self.where("ports.target"))
                if not text:
                    raise ImportInputError(f"{self.where('ports')}: a port needs a target")
                published = item.get("published")
                if published is not None:
                    text = f"{published}:{text}"
                    if item.get("host_ip"):
                        text = f"{item['host_ip']}:{text}"
                if item.get("protocol"):
                    text += f"/{item['protocol']}"
                self.draft.append("ports", text)
            else:
                self.draft.append("ports", scalar(item, self.where("ports")))

    def environment(self, value: Any) -> None:
        where = self.where("environment")
        pairs: list[tuple[str, str | None]]
        if isinstance(value, dict):
            pairs = [
                (str(k), None if v is None else scalar(v, f"{where}.{k}")) for k, v in value.items()
            ]
        else:
            pairs = []
            for entry in string_list(value, where):
                name, sep, env_value = entry.partition("=")
                pairs.append((name, env_value if sep else None))
        for name, maybe_value in pairs:
            runflags.put_env(
                self.draft,
                f"{where}.{name}",
                name,
                maybe_value,
                self.file.variables,
                copied="the value was copied from the environment (or .env) of the import",
                unset="the variable is not set here, so compose would not set it",
            )

    def env_file(self, value: Any) -> None:
        for entry in items(value):
            required = True
            item = entry
            if isinstance(entry, dict):
                required = bool(entry.get("required", True))
                item = entry.get("path", "")
            item = scalar(item, self.where("env_file"))
            path = os.path.normpath(os.path.join(self.file.folder, os.path.expanduser(item)))
            if not os.path.exists(path):
                if not required:
                    self.draft.note(
                        DROPPED, f"{self.where('env_file')} {item}", "optional and missing"
                    )
                    continue
                self.draft.note(
                    APPROXIMATED,
                    f"{self.where('env_file')} {item}",
                    f"{path} does not exist: create it before starting the unit",
                )
            self.draft.append("environment_files", path)

    def devices(self, value: Any) -> None:
        where = self.where("devices")
        for item in items(value):
            if isinstance(item, dict):
                parts = [item.get("source"), item.get("target"), item.get("permissions")]
                text = scalar(parts[0], where)
                for part in parts[1:]:
                    if part:
                        text += f":{scalar(part, where)}"
                self.draft.append("devices", text)
            else:
                self.draft.append("devices", scalar(item, where))

    def extra_hosts(self, value: Any) -> None:
        if isinstance(value, dict):
            entries = []
            for host, address in value.items():
                for one in items(address):
                    entries.append(f"{host}={scalar(one, self.where('extra_hosts'))}")
        else:
            entries = string_list(value, self.where("extra_hosts"))
        for entry in entries:
            runflags.add_host(self.draft, self.ctx, self.where("extra_hosts"), entry)

    def user(self, value: Any) -> None:
        runflags.user(self.draft, self.ctx, self.where("user"), scalar(value, self.where("user")))

    def security_opt(self, value: Any) -> None:
        for item in string_list(value, self.where("security_opt")):
            runflags.security_opt(self.draft, self.ctx, self.where("security_opt"), item)

    def ulimits(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise ImportInputError(f"{self.where('ulimits')} must be a mapping")
        for name, limit in value.items():
            where = self.where(f"ulimits.{name}")
            if isinstance(limit, dict):
                soft, hard = (scalar(limit.get(k), where) for k in ("soft", "hard"))
                text = f"{name}={soft or None}:{hard or None}"
            else:
                text = f"{name}={scalar(limit, where)}"
            self.draft.append("ulimits", text)

    def stop_grace_period(self, value: Any) -> None:
        whole, exact = seconds(value, self.where("stop_grace_period"))
        self.draft.set("stop_timeout", whole)
        if not exact:
            self.draft.note(
                APPROXIMATED, self.where("stop_grace_period"), f"rounded up to {whole} seconds"
            )

    def restart(self, value: Any) -> None:
        runflags.restart(
            self.draft, self.ctx, self.where("restart"), scalar(value, self.where("restart"))
        )

    def healthcheck(self, value: Any) -> None:
        d = self.draft
        if not isinstance(value, dict):
            raise ImportInputError(f"{self.where('healthcheck')} must be a mapping")
        test = value.get("test")
        if value.get("disable") or test in (["NONE"], "NONE"):
            d.raw("--no-healthcheck")
            return
        health = d.section("health")
        if isinstance(test, str):
            health["cmd"] = test
        elif isinstance(test, list) and test and test[0] == "CMD-SHELL":
            health["cmd"] = " ".join(string_list(test[1:], self.where("healthcheck.test")))
        elif isinstance(test, list) and test and test[0] == "CMD":
            health["cmd"] = string_list(test[1:], self.where("healthcheck.test"))
        elif test is not None:
            raise ImportInputError(f"{self.where('healthcheck.test')}: unsupported form {test!r}")
        for key, target in (
            ("interval", "interval"),
            ("timeout", "timeout"),
            ("start_period", "start_period"),
        ):
            if key in value:
                where = self.where(f"healthcheck.{key}")
                text, exact = durations.from_go(scalar(value[key], where), where)
                health[target] = text
                if not exact:
                    d.note(
                        APPROXIMATED,
                        self.where(f"healthcheck.{key}"),
                        f"rounded up to {text}: the configuration counts whole seconds",
                    )
        if "retries" in value:
            retries = value["retries"]
            where = self.where("healthcheck.retries")
            health["retries"] = durations.whole_number(
                retries if isinstance(retries, int) else scalar(retries, where), where
            )
        if "start_interval" in value:
            d.note(
                DROPPED,
                self.where("healthcheck.start_interval"),
                "podman has no check interval for the start period",
            )
        if "cmd" not in health:
            # Only tuning the image's own check: that is raw podman arguments.
            for key in list(health):
                flag = "health-start-period" if key == "start_period" else f"health-{key}"
                d.raw(f"--{flag}={health.pop(key)}")
            d.sections.pop("health", None)

    def logging(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise ImportInputError(f"{self.where('logging')} must be a mapping")
        if value.get("driver"):
            self.draft.set("log_driver", scalar(value["driver"], self.where("logging.driver")))
        options = mapping(value.get("options"), self.where("logging.options"))
        for k, v in options.items():
            self.draft.raw(f"--log-opt={k}={scalar(v, self.where(f'logging.options.{k}'))}")

    def command(self, value: Any) -> None:
        if value is not None:
            self.draft.set("command", words(value, self.where("command")))

    def entrypoint(self, value: Any) -> None:
        if value is None:
            return
        split = words(value, self.where("entrypoint"))
        if len(split) == 1:
            self.draft.set("entrypoint", split[0])
        else:
            self.draft.set("entrypoint", json.dumps(split))

    def pull_policy(self, value: Any) -> None:
        policy = scalar(value, self.where("pull_policy"))
        if policy in _PULL:
            self.draft.set("pull", _PULL[policy])
        else:
            self.draft.note(
                DROPPED,
                self.where("pull_policy"),
                f"{policy!r} has no podman equivalent (the watcher keeps images current)",
            )

    def depends_on(self, value: Any) -> None:
        names = list(value) if isinstance(value, (dict, list)) else []
        names = [scalar(n, self.where("depends_on")) for n in names]
        units = [f"{self.file.table_names.get(n, n)}.service" for n in names]
        unit = self.draft.section("unit")
        unit["requires"] = units
        unit["after"] = ["network-online.target", *units]
        self.draft.note(
            APPROXIMATED,
            self.where("depends_on"),
            "the unit requires and starts after the others' units (systemd also stops it with "
            "them); conditions such as service_healthy are not carried over",
        )

    def deploy(self, value: Any) -> None:
        """Compose applies deploy.resources to plain containers too; the rest is swarm's."""
        d = self.draft
        if not isinstance(value, dict):
            raise ImportInputError(f"{self.where('deploy')} must be a mapping")
        resources = mapping(value.get("resources"), self.where("deploy.resources"))
        for key in value:
            if key != "resources":
                d.note(DROPPED, self.where(f"deploy.{key}"), "a swarm setting")
        limits = mapping(resources.get("limits"), self.where("deploy.resources.limits"))
        reservations = mapping(
            resources.get("reservations"), self.where("deploy.resources.reservations")
        )
        for section, table, flags in (
            ("limits", limits, {"memory": "memory", "cpus": "cpus", "pids": "pids-limit"}),
            ("reservations", reservations, {"memory": "memory-reservation"}),
        ):
            for key, setting in table.items():
                flag = flags.get(key)
                if flag is None:
                    d.note(
                        DROPPED,
                        self.where(f"deploy.resources.{section}.{key}"),
                        "no podman run equivalent",
                    )
                else:
                    where = self.where(f"deploy.resources.{section}.{key}")
                    d.raw(f"--{flag}={scalar(setting, where)}")
        for key in resources:
            if key not in ("limits", "reservations"):
                d.note(DROPPED, self.where(f"deploy.resources.{key}"), "not carried over")


_HANDLERS: dict[str, Callable[[Service, Any], None]] = {
    "image": Service.image,
    "container_name": Service.container_name,
    "network_mode": Service.network_mode,
    "networks": Service.networks,
    "ports": Service.ports,
    "volumes": Service.volumes,
    "environment": Service.environment,
    "env_file": Service.env_file,
    "devices": Service.devices,
    "extra_hosts": Service.extra_hosts,
    "user": Service.user,
    "security_opt": Service.security_opt,
    "ulimits": Service.ulimits,
    "stop_grace_period": Service.stop_grace_period,
    "restart": Service.restart,
    "healthcheck": Service.healthcheck,
    "logging": Service.logging,
    "command": Service.command,
    "entrypoint": Service.entrypoint,
    "pull_policy": Service.pull_policy,
    "depends_on": Service.depends_on,
    "deploy": Service.deploy,
}
