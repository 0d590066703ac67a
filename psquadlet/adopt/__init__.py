"""``psquadlet adopt``: take over a testpoint that runs without psquadlet, safely.

``prepare`` finds what runs (an installed unit ``NAME.service`` whose ``ExecStart=`` runs a
container, or a container ``NAME`` without a unit, or a compose service) and imports it
(``psquadlet.importer``) into a configuration whose table is ``NAME``, so the new unit keeps
the name and every ``Requires=NAME.service`` still resolves. ``plan`` is the generate plan of
that configuration as if the old unit were already aside (``--dry-run`` prints it). ``run``
switches over (``switch``); ``undo`` puts the old one back from the record (``record``).
Data stays where it is: bind mounts are carried over as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from psquadlet import generate, importer, plan
from psquadlet.adopt import record, switch, volumes
from psquadlet.adopt.hostops import HostOps, SystemHost
from psquadlet.adopt.record import AdoptError
from psquadlet.errors import UsageError
from psquadlet.importer import ImportResult

__all__ = ["AdoptError", "Prepared", "plan_for", "prepare", "run", "undo"]

DEFAULT_NAME = "perfsonar-testpoint"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_STATE_DIR = Path("/var/lib/psquadlet")


@dataclass(frozen=True)
class Prepared:
    adoption: switch.Adoption
    result: ImportResult


def _check_free(a: switch.Adoption, state_dir: Path) -> None:
    if a.config_path.exists():
        raise UsageError(
            f"{a.config_path} exists: adopt writes a new configuration. Add the table that "
            f"'psquadlet import' prints for it by hand, or give another file with -c"
        )
    found = record.load(state_dir, a.name)
    if found is not None:
        state = "done" if found.finished else "not finished"
        raise UsageError(
            f"{a.name} was adopted before ({state}; {record.folder(state_dir, a.name)}): "
            f"'psquadlet adopt --undo {a.name}' first"
        )


def prepare(
    name: str | None,
    config_path: Path,
    *,
    unit_file: Path | None = None,
    compose_file: Path | None = None,
    service: str | None = None,
    ops: HostOps | None = None,
    unit_dir: Path = SYSTEM_UNIT_DIR,
    state_dir: Path = DEFAULT_STATE_DIR,
    into_volumes: bool = False,
) -> Prepared:
    """What ``adopt NAME`` would take over and write; raises UsageError/ImportInputError."""
    ops = ops or SystemHost()
    if unit_file is not None:
        stem = unit_file.name.removesuffix(".service")
        if name is not None and name != stem:
            raise UsageError(f"--unit {unit_file}: the unit is {stem}, not {name}")
        if unit_file.parent != unit_dir:
            raise UsageError(
                f"--unit {unit_file}: adopt takes over units in {unit_dir} only (a package's "
                "unit belongs to its package)"
            )
        name = stem
    given = name
    name = name or DEFAULT_NAME
    unit_path = unit_file or unit_dir / f"{name}.service"
    if unit_file is not None or (compose_file is None and unit_path.is_file()):
        dropins = unit_path.with_name(unit_path.name + ".d")
        if dropins.exists():
            raise UsageError(
                f"{dropins} exists: its drop-ins would apply to the new unit too; move them "
                "aside (or fold them into the unit) first"
            )
        result = importer.from_unit(str(unit_path), name)
        shape, container = "unit", ""
    elif compose_file is not None:
        result = importer.from_compose(str(compose_file), service, given if service else None)
        if len(result.containers) != 1:
            raise UsageError(f"{compose_file}: give --service: adopt takes over one service")
        shape = "container"
        container = str(result.containers[0].get("container_name") or result.containers[0].name)
        name = result.containers[0].name
    else:
        if ops.container_running(name) is None:
            raise UsageError(
                f"nothing to adopt: no {unit_path} and no container {name!r} "
                "(give --unit FILE or --compose FILE)"
            )
        result = importer.from_container(name, name)
        shape, container = "container", name
    copy = None
    if into_volumes:
        result, copy = volumes.into_volumes(result, name)
    text = importer.to_toml(result)
    importer.validate(text)
    a = switch.Adoption(
        name,
        shape,
        config_path,
        text,
        unit_path=unit_path if shape == "unit" else None,
        container=container,
        copy=copy,
    )
    _check_free(a, state_dir)
    return Prepared(a, result)


def plan_for(a: switch.Adoption, outdir: Path | None = None) -> generate.GeneratePlan:
    """The generate plan of the new configuration, the old unit counted as moved aside."""
    replacing = (a.unit_path,) if a.unit_path is not None else ()
    options = generate.Options(
        config_path=a.config_path,
        config_text=a.config_text,
        outdir=outdir,
        user=False,
        replacing=replacing,
    )
    return generate.plan_generate(options)


def run(
    prepared: Prepared,
    *,
    ops: HostOps | None = None,
    state_dir: Path = DEFAULT_STATE_DIR,
    outdir: Path | None = None,
    gate: switch.Gate | None = None,
) -> record.Record:
    """Switch over (see ``switch``); raises AdoptError with the old one back."""
    a = prepared.adoption
    generate_plan = plan_for(a, outdir)
    generate_plan.plan.check()

    def generating() -> tuple[list[str], Callable[[], None]]:
        fresh = generate.plan_generate(
            generate.Options(config_path=a.config_path, outdir=outdir, user=False)
        )
        created = [str(x.path) for x in fresh.plan.actions if x.kind == plan.CREATE]
        created += [str(p) for p in fresh.plan.manifests if not p.exists()]
        return created, lambda: _apply(fresh)

    if gate is None:
        from psquadlet.adopt.gate import health_gate  # noqa: PLC0415 - podman-py, pystemd

        def gate() -> str:
            return health_gate(a.config_path, a.name)

    return switch.switch_over(a, ops or SystemHost(), state_dir, generating, gate)


def _apply(generate_plan: generate.GeneratePlan) -> None:
    generate.apply(generate_plan)


def undo(
    name: str | None, *, ops: HostOps | None = None, state_dir: Path = DEFAULT_STATE_DIR
) -> str:
    """Put the old unit back from the record; the line to print."""
    name = name or DEFAULT_NAME
    rec = record.load(state_dir, name)
    if rec is None:
        raise UsageError(f"no adoption of {name} is recorded in {state_dir / 'adopted'}")
    problems = switch.restore(rec, ops or SystemHost(), state_dir)
    if problems:
        raise AdoptError(f"undo of {name} did not finish: {'; '.join(problems)}")
    what = rec.unit_path or f"container {rec.container}"
    return f"{name}: {what} is back" + (" and started" if rec.was_active else "")
