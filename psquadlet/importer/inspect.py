"""An existing container (``podman container inspect``) -> a ``podman run`` argv to import.

Podman records the command line that created a container (``Config.CreateCommand``): when it
is a ``podman run`` / ``podman create`` line it is the most faithful source, and it is used as
is. A container created through the API (docker-compose on Podman's socket, podman-py) has
none; its ``Config``/``HostConfig`` are mapped back onto flags, and each field that has no flag
here is named as lost. The inspect answer is untrusted input: every shape is checked, and a
wrong one is an ``ImportInputError`` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Callable

from psquadlet.importer.draft import ImportInputError
from psquadlet.importer.inputfile import MAX_INPUT_BYTES

Runner = Callable[[Sequence[str]], "tuple[int, str]"]


def inspect_container(name: str, run: Runner) -> dict[str, Any]:
    """``podman container inspect NAME`` as a mapping; raises ImportInputError."""
    if not name or name.startswith("-"):
        raise ImportInputError(f"--container: not a container name: {name!r}")
    code, out = run(["podman", "container", "inspect", "--", name])
    if code != 0:
        detail = out.strip().splitlines()[-1:] if out.strip() else []
        raise ImportInputError(
            f"--container {name}: podman container inspect failed"
            + (f": {detail[0][:200]}" if detail else f" (exit {code})")
        )
    return parse_inspect(out, f"podman container inspect {name}")


def parse_inspect(text: str, where: str) -> dict[str, Any]:
    if len(text) > 16 * MAX_INPUT_BYTES:
        raise ImportInputError(f"{where}: the answer is too large")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ImportInputError(f"{where}: not JSON: {exc}") from None
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
        raise ImportInputError(f"{where}: expected a list of one container")
    return data[0]


def _get(data: Mapping[str, Any], path: str, kind: type, where: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            raise ImportInputError(f"{where}: {path}: not an object")
        value = value.get(part)
        if value is None:
            return kind()
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ImportInputError(f"{where}: {path}: expected {kind.__name__}")
    return value


def _strings(data: Mapping[str, Any], path: str, where: str) -> list[str]:
    values = _get(data, path, list, where)
    if not all(isinstance(v, str) for v in values):
        raise ImportInputError(f"{where}: {path}: expected a list of strings")
    return list(values)


def create_command(data: Mapping[str, Any], where: str) -> list[str] | None:
    """The recorded ``podman run`` / ``podman create`` argv, or None when there is none."""
    argv = _strings(data, "Config.CreateCommand", where)
    words = [w for w in argv[1:] if not w.startswith("-")][:1]
    if argv and argv[0].rsplit("/", 1)[-1] == "podman" and words in (["run"], ["create"]):
        return argv
    return None


def _image(data: Mapping[str, Any], where: str) -> str:
    image = _get(data, "ImageName", str, where) or _get(data, "Config.Image", str, where)
    if not image:
        raise ImportInputError(f"{where}: ImageName: the container names no image")
    return str(image)


def run_line(data: Mapping[str, Any], where: str) -> tuple[list[str], list[tuple[str, str]]]:
    """A ``podman run`` argv for a container without a create command, and what was lost
    (field, reason)."""
    argv = ["podman", "run"]
    lost: list[tuple[str, str]] = []
    name = _get(data, "Name", str, where).lstrip("/")
    if name:
        argv.append(f"--name={name}")
    host = _get(data, "HostConfig", dict, where)
    mode = _get(data, "HostConfig.NetworkMode", str, where)
    if mode and mode not in ("default", "bridge"):
        argv.append(f"--network={mode}")
    for cap in _strings(data, "HostConfig.CapAdd", where):
        argv.append(f"--cap-add={cap}")
    for cap in _strings(data, "HostConfig.CapDrop", where):
        argv.append(f"--cap-drop={cap}")
    if _get(data, "HostConfig.Privileged", bool, where):
        argv.append("--privileged")
    cgroupns = _get(data, "HostConfig.CgroupnsMode", str, where)
    if cgroupns in ("host", "private"):
        argv.append(f"--cgroupns={cgroupns}")
    for bind in _strings(data, "HostConfig.Binds", where):
        argv.append(f"--volume={bind}")
    tmpfs = _get(data, "HostConfig.Tmpfs", dict, where)
    for path, options in sorted(tmpfs.items()):
        argv.append(f"--tmpfs={path}:{options}" if options else f"--tmpfs={path}")
    policy = _get(data, "HostConfig.RestartPolicy.Name", str, where)
    if policy and policy != "no":
        argv.append(f"--restart={policy}")
    config = _get(data, "Config", dict, where)
    for env in _strings(data, "Config.Env", where):
        if not env.startswith(("PATH=", "container=", "HOSTNAME=", "HOME=", "TERM=")):
            argv.append(f"--env={env}")
    labels = _get(data, "Config.Labels", dict, where)
    for key, value in sorted(labels.items()):
        if isinstance(value, str) and not key.startswith(("io.podman.", "com.docker.compose.")):
            argv.append(f"--label={key}={value}")
    if _get(data, "Config.Tty", bool, where):
        argv.append("--tty")
    entrypoint = (
        _strings(data, "Config.Entrypoint", where)
        if isinstance(config.get("Entrypoint"), list)
        else []
    )
    if entrypoint:
        argv.append(f"--entrypoint={json.dumps(entrypoint)}")
    lost.append(
        (
            "Config.Cmd / Config.Env",
            "the image's own command and variables cannot be told from ones given at creation: "
            "the command is kept, check the environment",
        )
    )
    for field in ("Devices", "Ulimits", "Sysctls", "Dns", "ExtraHosts", "PortBindings"):
        if host.get(field):
            lost.append((f"HostConfig.{field}", "not read back from inspect: add it by hand"))
    argv.append(_image(data, where))
    argv.extend(_strings(data, "Config.Cmd", where))
    return argv, lost
