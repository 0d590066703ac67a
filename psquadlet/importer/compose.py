"""Compose files -> container drafts, one per service.

Compose does two things before it looks at a service: it interpolates ``${VAR}`` (from the
environment, then from a ``.env`` file beside the compose file) in every value, and it reads
relative paths against the compose file's folder. Both happen here too, so that the imported
configuration says what ``docker compose up`` would have run. Keys that have no meaning under
systemd, or that psquadlet cannot express, are reported (never fatal), each with the reason.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from psquadlet import imageref
from psquadlet.importer import dockerrun, durations
from psquadlet.importer.draft import (
    APPROXIMATED,
    DROPPED,
    RAW,
    Draft,
    ImportedVolume,
    ImportInputError,
    Note,
)
from psquadlet.tomlwriter import TomlValue

# ---- .env and interpolation -----------------------------------------------------------------

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")
_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def read_dotenv(path: str) -> dict[str, str]:
    """The variables of a ``.env`` file (compose's syntax); missing file: none."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ImportInputError(f"{path}: cannot read: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            raise ImportInputError(f"{path}:{number}: expected NAME=VALUE, not {line.strip()!r}")
        name, value = match.group(1), match.group(2).strip()
        if value.startswith("'"):
            end = value.find("'", 1)
            if end < 0:
                raise ImportInputError(f"{path}:{number}: unbalanced quotes")
            value = value[1:end]
        elif value.startswith('"'):
            out = []
            i = 1
            while True:
                if i >= len(value):
                    raise ImportInputError(f"{path}:{number}: unbalanced quotes")
                if value[i] == '"':
                    break
                if value[i] == "\\" and i + 1 < len(value):
                    out.append(_DQ_ESCAPES.get(value[i + 1], "\\" + value[i + 1]))
                    i += 2
                    continue
                out.append(value[i])
                i += 1
            value = "".join(out)
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[name] = value
    return values


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Interpolator:
    """Compose's ``${VAR}`` / ``${VAR:-default}`` / ``${VAR-default}`` / ``${VAR:?err}`` /
    ``${VAR:+alt}`` / ``$VAR`` / ``$$``; records which variables were unset."""

    variables: Mapping[str, str]
    unset: list[str]

    def __call__(self, text: str, where: str) -> str:
        out: list[str] = []
        i = 0
        n = len(text)
        while i < n:
            char = text[i]
            if char != "$":
                out.append(char)
                i += 1
                continue
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "{":
                depth, j = 1, i + 2
                while j < n and depth:
                    if text[j] == "{":
                        depth += 1
                    elif text[j] == "}":
                        depth -= 1
                    j += 1
                if depth:
                    raise ImportInputError(f"{where}: unclosed ${{ in {text!r}")
                out.append(self._braced(text[i + 2 : j - 1], where))
                i = j
            else:
                match = _NAME.match(text, i + 1)
                if match is None:
                    raise ImportInputError(
                        f"{where}: invalid interpolation in {text!r} (write $$ for a literal $)"
                    )
                out.append(self._lookup(match.group(0)))
                i = match.end()
        return "".join(out)

    def _lookup(self, name: str) -> str:
        if name in self.variables:
            return self.variables[name]
        self.unset.append(name)
        return ""

    def _braced(self, body: str, where: str) -> str:
        match = _NAME.match(body)
        if match is None:
            raise ImportInputError(f"{where}: invalid interpolation ${{{body}}}")
        name, rest = match.group(0), body[match.end() :]
        if not rest:
            return self._lookup(name)
        for operator in (":-", ":?", ":+", "-", "?", "+"):
            if rest.startswith(operator):
                argument = rest[len(operator) :]
                break
        else:
            raise ImportInputError(f"{where}: invalid interpolation ${{{body}}}")
        value = self.variables.get(name)
        empty_counts = operator.startswith(":")
        missing = value is None or (empty_counts and value == "")
        if operator.endswith("-"):
            return self(argument, where) if missing else str(value)
        if operator.endswith("?"):
            if missing:
                raise ImportInputError(
                    f"{where}: required variable {name} is missing: {self(argument, where)}"
                )
            return str(value)
        return "" if missing else self(argument, where)

    def tree(self, node: Any, where: str) -> Any:
        """Interpolate every string value (not the keys) of a parsed YAML tree."""
        if isinstance(node, str):
            return self(node, where)
        if isinstance(node, dict):
            return {k: self.tree(v, f"{where}.{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [self.tree(v, f"{where}[{i}]") for i, v in enumerate(node)]
        return node


# ---- reading the file -----------------------------------------------------------------------


_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


def _yaml12_loader(yaml: Any) -> Any:
    """PyYAML reads YAML 1.1, compose reads YAML 1.2: ``- 22:22`` is the port mapping
    "22:22" to compose and the number 1342 (base 60) to PyYAML; ``on`` is a string to compose
    and true to PyYAML. This loader resolves plain scalars with YAML 1.2's core schema."""

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    Loader.add_implicit_resolver(
        _INT_TAG, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
    )
    Loader.add_implicit_resolver(
        _FLOAT_TAG,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )

    def construct_int(loader: Any, node: Any) -> int:
        text = str(loader.construct_scalar(node))
        return int(text, 0) if text.startswith(("0o", "0x")) else int(text, 10)

    Loader.add_constructor(_INT_TAG, construct_int)
    return Loader


def _load_yaml(path: str) -> Any:
    try:
        import yaml  # noqa: PLC0415 - only --compose needs PyYAML
    except ImportError:  # pragma: no cover - the test venv has PyYAML
        raise ImportInputError(
            "reading compose files needs PyYAML: pip install 'psquadlet[compose]'"
        ) from None
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_yaml12_loader(yaml))  # noqa: S506 - a SafeLoader
    except FileNotFoundError:
        raise ImportInputError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportInputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ImportInputError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise ImportInputError(f"{where}: invalid YAML: {problem}") from None


@dataclass
class ComposeImport:
    """The drafts of the selected services, the named volumes they use, and file-level notes."""

    drafts: list[Draft]
    volumes: list[ImportedVolume]
    notes: list[Note]


_TOP_LEVEL_IGNORED = {"version": "", "name": ""}
_TOP_LEVEL_DROPPED = {
    "networks": "psquadlet does not create networks: create them with podman network create",
    "secrets": "pass secrets with podman secret create and podman_args --secret",
    "configs": "compose configs have no podman equivalent; bind-mount the file instead",
    "include": "included compose files are not read; import them one by one",
}


def load(
    path: str, service: str | None = None, environ: Mapping[str, str] | None = None
) -> ComposeImport:
    """Read a compose file; raises ImportInputError for anything unreadable."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    document = _load_yaml(path)
    environ = os.environ if environ is None else environ
    variables = {**read_dotenv(os.path.join(folder, ".env")), **environ}
    notes: list[Note] = []
    if not isinstance(document, dict):
        raise ImportInputError(f"{path}: not a compose file: the top level must be a mapping")
    services = document.get("services")
    if services is None:
        if (
            document
            and "version" not in document
            and all(
                isinstance(v, dict) and ("image" in v or "build" in v) for v in document.values()
            )
        ):
            # Compose file format 1: the services are the top level.
            services, document = document, {"services": document}
            notes.append(
                Note(
                    APPROXIMATED,
                    "(file format)",
                    "read as compose file format 1: every top-level key a service",
                )
            )
        else:
            raise ImportInputError(f"{path}: not a compose file: it has no 'services'")
    if not isinstance(services, dict) or not services:
        raise ImportInputError(f"{path}: 'services' must be a non-empty mapping")
    for key in document:
        if key == "services" or key in _TOP_LEVEL_IGNORED or str(key).startswith("x-"):
            continue
        if key in _TOP_LEVEL_DROPPED:
            if key == "networks":
                continue  # reported with the service that uses a network
            notes.append(Note(DROPPED, str(key), _TOP_LEVEL_DROPPED[key]))
        elif key != "volumes":
            notes.append(Note(DROPPED, str(key), "unknown top-level compose key"))
    if service is not None and service not in services:
        names = ", ".join(sorted(map(str, services)))
        raise ImportInputError(f"{path}: no service {service!r} (the file has: {names})")
    unset: list[str] = []
    interpolate = Interpolator(variables, unset)
    selected = [service] if service is not None else list(services)
    top_volumes = interpolate.tree(document.get("volumes") or {}, "volumes")
    if not isinstance(top_volumes, dict):
        raise ImportInputError(f"{path}: 'volumes' must be a mapping")
    project = str(document.get("name") or os.path.basename(folder) or "project")
    # Names are interpolated like every value (a separate list: unselected services stay quiet).
    quiet = Interpolator(variables, [])
    table_names = {
        str(name): quiet(_table_name(str(name), body), f"services.{name}.container_name")
        for name, body in services.items()
    }
    volume_names = {
        str(key): quiet(str(spec["name"]), f"volumes.{key}.name")
        if isinstance(spec, dict) and spec.get("name")
        else str(key)
        for key, spec in top_volumes.items()
    }
    drafts = []
    used_volumes: dict[str, str] = {}
    for name in selected:
        body = services[name]
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ImportInputError(f"{path}: services.{name} must be a mapping")
        body = interpolate.tree(body, f"services.{name}")
        converter = _Service(
            str(name),
            folder=folder,
            variables=variables,
            table_names=table_names,
            used_volumes=used_volumes,
            volume_names=volume_names,
        )
        drafts.append(converter.convert(body))
    for name in sorted(set(unset)):
        notes.append(
            Note(
                APPROXIMATED,
                f"${{{name}}}",
                "the variable is not set (nor in .env): compose uses an empty string",
            )
        )
    volumes = []
    for volume, where in used_volumes.items():
        if volume not in top_volumes:
            raise ImportInputError(
                f"{path}: {where} uses the named volume {volume!r}, which the top-level "
                "'volumes' does not declare"
            )
        table = _volume_table(volume, top_volumes[volume], project, notes)
        if table is not None:
            volumes.append(table)
    return ComposeImport(drafts, volumes, notes)


def _table_name(service: str, body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("container_name"), str):
        return str(body["container_name"])
    return service


def _volume_table(name: str, spec: Any, project: str, notes: list[Note]) -> ImportedVolume | None:
    spec = spec or {}
    if not isinstance(spec, dict):
        raise ImportInputError(f"volumes.{name} must be a mapping")
    settings: list[tuple[str, TomlValue]] = []
    for key, value in spec.items():
        if key == "driver":
            settings.append(("driver", str(value)))
        elif key == "driver_opts":
            settings.append(("options", [f"{k}={v}" for k, v in dict(value).items()]))
        elif key == "labels":
            settings.append(("labels", _string_map(value, f"volumes.{name}.labels")))
        elif key in ("external", "name"):
            pass
        else:
            notes.append(Note(DROPPED, f"volumes.{name}.{key}", "unknown volume key"))
    if not spec.get("external") and not spec.get("name"):
        notes.append(
            Note(
                APPROXIMATED,
                f"volumes.{name}",
                f"compose names this volume {project}_{name}; the unit uses {name!r} (copy the "
                "data over, or rename the volume, to keep what compose stored)",
            )
        )
    if not settings:
        return None
    return ImportedVolume(str(spec.get("name") or name), tuple(settings))


def _string_map(value: Any, where: str) -> dict[str, TomlValue]:
    """Compose's two spellings of a map: a mapping, or a list of ``KEY=VALUE``."""
    if isinstance(value, dict):
        return {str(k): _scalar(v) for k, v in value.items()}
    if isinstance(value, list):
        result: dict[str, TomlValue] = {}
        for item in value:
            k, _sep, v = str(item).partition("=")
            result[k] = v
        return result
    raise ImportInputError(f"{where} must be a mapping or a list of KEY=VALUE")


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _string_list(value: Any, where: str) -> list[str]:
    if isinstance(value, (str, int, float)):
        return [str(value)]
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    raise ImportInputError(f"{where} must be a string or a list")


def _words(value: Any, where: str) -> list[str]:
    """command / entrypoint: a list as is, a string split as a shell would."""
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ImportInputError(f"{where}: {exc}") from None
    raise ImportInputError(f"{where} must be a string or a list")


def _seconds(value: Any, where: str) -> tuple[int, bool]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, True
    seconds = durations.go_seconds(str(value), where)
    whole = math.ceil(seconds)
    return whole, whole == seconds


# ---- one service ----------------------------------------------------------------------------

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
_PULL = {"always": "always", "never": "never", "missing": "missing", "if_not_present": "missing"}


class _Service:
    def __init__(
        self,
        name: str,
        *,
        folder: str,
        variables: Mapping[str, str],
        table_names: Mapping[str, str],
        used_volumes: dict[str, str],
        volume_names: Mapping[str, str],
    ) -> None:
        self.service = name
        self.folder = folder
        self.variables = variables
        self.table_names = table_names
        self.used_volumes = used_volumes
        self.volume_names = volume_names
        self.draft = Draft(name=table_names[name])
        self.ctx = dockerrun.RunContext("docker", variables, folder, [])

    def where(self, key: str) -> str:
        return f"services.{self.service}.{key}"

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
            elif key in _RAW_KEYS:
                flag = _RAW_KEYS[key]
                if flag is None:
                    d.note(DROPPED, self.where(key), "Windows containers only")
                    continue
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, bool):
                        if item:
                            d.raw(f"--{flag}")
                    else:
                        d.raw(f"--{flag}={_scalar(item)}")
            elif key in _DROPPED_KEYS:
                d.note(DROPPED, self.where(key), _DROPPED_KEYS[key])
            elif key.startswith("x-"):
                continue
            else:
                d.note(DROPPED, self.where(key), "unknown compose key: not carried over")
        return d

    # -- handlers, one per compose key --

    def image(self, value: Any) -> None:
        try:
            self.draft.set("image", str(imageref.normalize(str(value))))
        except imageref.ImageRefError as exc:
            raise ImportInputError(f"{self.where('image')}: {exc}") from None

    def container_name(self, value: Any) -> None:
        pass  # the table name (see _table_name)

    def network_mode(self, value: Any) -> None:
        mode = str(value)
        if mode.startswith("service:"):
            other = mode.split(":", 1)[1]
            mode = f"container:{self.table_names.get(other, other)}"
            self.draft.note(
                APPROXIMATED,
                self.where("network_mode"),
                f"joins the network of the container {mode.split(':', 1)[1]}",
            )
        self.draft.set("network", mode)

    def networks(self, value: Any) -> None:
        names = list(value) if isinstance(value, (list, dict)) else []
        names = [str(n) for n in names if str(n) != "default"]
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
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                text = str(item.get("target", ""))
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
                self.draft.append("ports", _scalar(item))

    def _source(self, source: str) -> str:
        if source.startswith(("~", ".")) or (not source.startswith("/") and "/" in source):
            source = os.path.normpath(os.path.join(self.folder, os.path.expanduser(source)))
        if source.startswith("/") and not os.path.exists(source):
            self.draft.note(
                APPROXIMATED,
                f"{self.where('volumes')} {source}",
                "the folder does not exist: compose would create it, podman refuses to start: "
                "create it before starting the unit",
            )
        return source

    def volumes(self, value: Any) -> None:
        d = self.draft
        for item in value if isinstance(value, list) else []:
            if isinstance(item, dict):
                self._long_volume(item)
                continue
            parts = str(item).split(":")
            if len(parts) == 1:
                d.raw(f"--volume={parts[0]}")
                d.note(
                    RAW,
                    f"{self.where('volumes')} {item}",
                    "an anonymous volume has no configuration key",
                )
                continue
            source = parts[0]
            if not source.startswith(("/", ".", "~")):
                self.used_volumes.setdefault(source, self.where("volumes"))
                source = self.volume_names.get(source, source)
            else:
                source = self._source(source)
            d.append("volumes", ":".join([source, *parts[1:]]))

    def _long_volume(self, item: dict[str, Any]) -> None:
        d = self.draft
        kind = item.get("type", "volume")
        target = item.get("target")
        if not target:
            raise ImportInputError(f"{self.where('volumes')}: a volume needs a target")
        if kind == "tmpfs":
            sizes: list[str] = []
            tmpfs = item.get("tmpfs") or {}
            if "size" in tmpfs:
                sizes.append(f"size={tmpfs['size']}")
            if "mode" in tmpfs:
                mode = tmpfs["mode"]
                if isinstance(mode, int):
                    mode = f"{mode:o}"
                elif str(mode).lower().startswith("0o"):
                    mode = str(mode)[2:]  # YAML 1.2's octal, which PyYAML reads as text
                sizes.append(f"mode={mode}")
            d.append("tmpfs", f"{target}:{','.join(sizes)}" if sizes else str(target))
            return
        if kind not in ("bind", "volume"):
            d.note(DROPPED, f"{self.where('volumes')} {target}", f"volume type {kind!r}")
            return
        source = str(item.get("source") or "")
        options: list[str] = []
        if item.get("read_only"):
            options.append("ro")
        if kind == "bind":
            if not source:
                raise ImportInputError(f"{self.where('volumes')}: a bind mount needs a source")
            source = self._source(source)
            bind = item.get("bind") or {}
            if bind.get("propagation"):
                options.append(str(bind["propagation"]))
            if bind.get("selinux"):
                options.append(str(bind["selinux"]))
        else:
            volume = item.get("volume") or {}
            if volume.get("nocopy"):
                options.append("nocopy")
            if volume.get("subpath"):
                options.append(f"subpath={volume['subpath']}")
            if not source:
                d.raw(f"--volume={target}")
                d.note(
                    RAW,
                    f"{self.where('volumes')} {target}",
                    "an anonymous volume has no configuration key",
                )
                return
            self.used_volumes.setdefault(source, self.where("volumes"))
            source = self.volume_names.get(source, source)
        text = f"{source}:{target}"
        if options:
            text += ":" + ",".join(options)
        d.append("volumes", text)

    def tmpfs(self, value: Any) -> None:
        self.draft.append("tmpfs", *_string_list(value, self.where("tmpfs")))

    def environment(self, value: Any) -> None:
        d = self.draft
        items: list[tuple[str, str | None]]
        if isinstance(value, dict):
            items = [(str(k), None if v is None else _scalar(v)) for k, v in value.items()]
        else:
            items = []
            for entry in _string_list(value, self.where("environment")):
                name, sep, env_value = entry.partition("=")
                items.append((name, env_value if sep else None))
        for name, maybe_value in items:
            if maybe_value is not None:
                d.put("environment", name, maybe_value)
            elif name in self.variables:
                d.put("environment", name, self.variables[name])
                d.note(
                    APPROXIMATED,
                    f"{self.where('environment')}.{name}",
                    "the value was copied from the environment (or .env) of the import",
                )
            else:
                d.note(
                    DROPPED,
                    f"{self.where('environment')}.{name}",
                    "the variable is not set here, so compose would not set it",
                )

    def env_file(self, value: Any) -> None:
        for entry in value if isinstance(value, list) else [value]:
            required = True
            item = entry
            if isinstance(entry, dict):
                required = bool(entry.get("required", True))
                item = entry.get("path", "")
            path = os.path.normpath(os.path.join(self.folder, os.path.expanduser(str(item))))
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

    def _list(self, name: str, key: str) -> Callable[[Any], None]:
        def apply(value: Any) -> None:
            self.draft.append(name, *_string_list(value, self.where(key)))

        return apply

    def devices(self, value: Any) -> None:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                text = str(item.get("source", ""))
                if item.get("target"):
                    text += f":{item['target']}"
                if item.get("permissions"):
                    text += f":{item['permissions']}"
                self.draft.append("devices", text)
            else:
                self.draft.append("devices", _scalar(item))

    def extra_hosts(self, value: Any) -> None:
        if isinstance(value, dict):
            entries = []
            for host, address in value.items():
                for one in address if isinstance(address, list) else [address]:
                    entries.append(f"{host}={one}")
        else:
            entries = _string_list(value, self.where("extra_hosts"))
        for entry in entries:
            dockerrun._add_host(self.draft, self.ctx, self.where("extra_hosts"), entry)

    def _map(self, name: str, key: str) -> Callable[[Any], None]:
        def apply(value: Any) -> None:
            for k, v in _string_map(value, self.where(key)).items():
                self.draft.put(name, k, str(v))

        return apply

    def user(self, value: Any) -> None:
        dockerrun._user(self.draft, self.ctx, self.where("user"), _scalar(value))

    def _str(self, name: str) -> Callable[[Any], None]:
        def apply(value: Any) -> None:
            self.draft.set(name, _scalar(value))

        return apply

    def _bool(self, name: str) -> Callable[[Any], None]:
        def apply(value: Any) -> None:
            self.draft.set(name, bool(value))

        return apply

    def cgroup(self, value: Any) -> None:
        self.draft.set("cgroupns", _scalar(value))

    def security_opt(self, value: Any) -> None:
        for item in _string_list(value, self.where("security_opt")):
            dockerrun._security_opt(self.draft, self.ctx, self.where("security_opt"), item)

    def ulimits(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise ImportInputError(f"{self.where('ulimits')} must be a mapping")
        for name, limit in value.items():
            if isinstance(limit, dict):
                text = f"{name}={limit.get('soft')}:{limit.get('hard')}"
            else:
                text = f"{name}={limit}"
            self.draft.append("ulimits", text)

    def stop_grace_period(self, value: Any) -> None:
        seconds, exact = _seconds(value, self.where("stop_grace_period"))
        self.draft.set("stop_timeout", seconds)
        if not exact:
            self.draft.note(
                APPROXIMATED, self.where("stop_grace_period"), f"rounded up to {seconds} seconds"
            )

    def restart(self, value: Any) -> None:
        dockerrun._restart(self.draft, self.ctx, self.where("restart"), _scalar(value))

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
            health["cmd"] = " ".join(_scalar(t) for t in test[1:])
        elif isinstance(test, list) and test and test[0] == "CMD":
            health["cmd"] = [_scalar(t) for t in test[1:]]
        elif test is not None:
            raise ImportInputError(f"{self.where('healthcheck.test')}: unsupported form {test!r}")
        for key, target in (
            ("interval", "interval"),
            ("timeout", "timeout"),
            ("start_period", "start_period"),
        ):
            if key in value:
                where = self.where(f"healthcheck.{key}")
                text, exact = durations.from_go(_scalar(value[key]), where)
                health[target] = text
                if not exact:
                    d.note(
                        APPROXIMATED,
                        self.where(f"healthcheck.{key}"),
                        f"rounded up to {text}: the configuration counts whole seconds",
                    )
        if "retries" in value:
            health["retries"] = int(value["retries"])
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
            self.draft.set("log_driver", str(value["driver"]))
        for k, v in (value.get("options") or {}).items():
            self.draft.raw(f"--log-opt={k}={_scalar(v)}")

    def command(self, value: Any) -> None:
        if value is not None:
            self.draft.set("command", list(_words(value, self.where("command"))))

    def entrypoint(self, value: Any) -> None:
        if value is None:
            return
        words = _words(value, self.where("entrypoint"))
        if len(words) == 1:
            self.draft.set("entrypoint", words[0])
        else:
            self.draft.set("entrypoint", json.dumps(words))

    def pull_policy(self, value: Any) -> None:
        policy = _scalar(value)
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
        units = [f"{self.table_names.get(str(n), str(n))}.service" for n in names]
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
        resources = value.get("resources") or {}
        for key in value:
            if key != "resources":
                d.note(DROPPED, self.where(f"deploy.{key}"), "a swarm setting")
        limits = resources.get("limits") or {}
        reservations = resources.get("reservations") or {}
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
                    d.raw(f"--{flag}={_scalar(setting)}")
        for key in resources:
            if key not in ("limits", "reservations"):
                d.note(DROPPED, self.where(f"deploy.resources.{key}"), "not carried over")

    def userns_mode(self, value: Any) -> None:
        self.draft.set("userns", _scalar(value))

    def hostname(self, value: Any) -> None:
        self.draft.set("hostname", _scalar(value))


_HANDLERS: dict[str, Callable[[_Service, Any], None]] = {
    "image": _Service.image,
    "container_name": _Service.container_name,
    "network_mode": _Service.network_mode,
    "networks": _Service.networks,
    "ports": _Service.ports,
    "volumes": _Service.volumes,
    "tmpfs": _Service.tmpfs,
    "environment": _Service.environment,
    "env_file": _Service.env_file,
    "cap_add": lambda s, v: s._list("cap_add", "cap_add")(v),
    "cap_drop": lambda s, v: s._list("cap_drop", "cap_drop")(v),
    "devices": _Service.devices,
    "dns": lambda s, v: s._list("dns", "dns")(v),
    "dns_search": lambda s, v: s._list("dns_search", "dns_search")(v),
    "extra_hosts": _Service.extra_hosts,
    "group_add": lambda s, v: s._list("group_add", "group_add")(v),
    "labels": lambda s, v: s._map("labels", "labels")(v),
    "annotations": lambda s, v: s._map("annotations", "annotations")(v),
    "sysctls": lambda s, v: s._map("sysctls", "sysctls")(v),
    "user": _Service.user,
    "working_dir": lambda s, v: s._str("working_dir")(v),
    "hostname": _Service.hostname,
    "privileged": lambda s, v: s._bool("privileged")(v),
    "read_only": lambda s, v: s._bool("read_only")(v),
    "init": lambda s, v: s._bool("init")(v),
    "tty": lambda s, v: s._bool("tty")(v),
    "cgroup": _Service.cgroup,
    "userns_mode": _Service.userns_mode,
    "security_opt": _Service.security_opt,
    "ulimits": _Service.ulimits,
    "stop_signal": lambda s, v: s._str("stop_signal")(v),
    "stop_grace_period": _Service.stop_grace_period,
    "restart": _Service.restart,
    "healthcheck": _Service.healthcheck,
    "logging": _Service.logging,
    "command": _Service.command,
    "entrypoint": _Service.entrypoint,
    "pull_policy": _Service.pull_policy,
    "depends_on": _Service.depends_on,
    "deploy": _Service.deploy,
}
