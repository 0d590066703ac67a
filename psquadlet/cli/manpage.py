"""A man page written from the click commands' own help and the configuration schema's rows, so
that it cannot drift from either (docs/configuration.md's tables come from the same rows)."""

from __future__ import annotations

import datetime as dt
import inspect
import os
import re

import click

from psquadlet import __version__, schema


def _escape(text: str) -> str:
    """roff text: backslashes and hyphens escaped, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _paragraphs(help_text: str) -> list[str]:
    """Help split the way click shows it: '\\b' blocks keep their lines, others are refilled."""
    out = []
    for raw in inspect.cleandoc(help_text).split("\n\n"):
        block = raw.strip("\n")
        if not block.strip():
            continue
        if block.lstrip().startswith("\b"):
            body = block.lstrip()[1:].strip("\n")
            out.append(".nf\n" + _escape(body) + "\n.fi")
        else:
            out.append(_escape(" ".join(line.strip() for line in block.splitlines())))
    return out


def _options(command: click.Command, ctx: click.Context) -> list[str]:
    lines = []
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option):
            continue  # arguments are in the usage line
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        lines += [".TP", f"\\fB{_escape(names)}\\fR", _escape(help_text or "")]
    return lines


def _markdown(cell: str) -> str:
    """One Markdown table cell as roff: code spans and strong text bold, the rest escaped."""
    out = []
    for part in re.split(r"(`[^`]*`|\*\*[^*]*\*\*)", cell.replace("\\|", "|")):
        if len(part) >= 2 and part[0] == part[-1] == "`":
            out.append(f"\\fB{_escape(part[1:-1])}\\fR")
        elif len(part) >= 4 and part.startswith("**") and part.endswith("**"):
            out.append(f"\\fB{_escape(part[2:-2])}\\fR")
        else:
            out.append(_escape(part))
    return "".join(out)


def configuration() -> list[str]:
    """The CONFIGURATION section: the schema's reference rows, cell for cell."""
    out = [
        ".SH CONFIGURATION",
        ".PP",
        _escape(
            "The keys of these tables of /etc/psquadlet/psquadlet.toml, written from the same "
            "rows as the tables of the project's docs/configuration.md, which describes the "
            "other tables too (update, service, install, volumes, watch, registries; "
            "notifications and metrics: docs/operations.md). All keys are optional unless "
            "marked required. (N.N) is the Podman version that added the Quadlet key or the "
            "podman run flag; an older target refuses it unless the entry says what is "
            "written below that version."
        ),
    ]
    _key, *labels = schema.REFERENCE_HEADER
    for name, rows in schema.DOC_TABLES.items():
        out.append(f".SS {_escape(schema.DOC_TITLES[name])}")
        for row in rows.values():
            key, *cells = schema.reference_cells(row)
            facts = [
                f"{_markdown(label)}: {_markdown(cell)}"
                for label, cell in zip(labels[:-1], cells[:-1])
                if cell.strip() not in ("", "-")
            ]
            out += [".TP", f"{_markdown(key)} ({_escape(row.type)})"]
            if cells[-1]:
                out += [_markdown(cells[-1]), ".br"]
            out.append("; ".join(facts) if facts else "\\(em")
    return out


def _date() -> str:
    # Reproducible builds set SOURCE_DATE_EPOCH; the page must not change with the build day.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc)
        if epoch
        else dt.datetime.now(dt.timezone.utc)
    )
    return when.strftime("%Y-%m-%d")


def render(group: click.Group, name: str) -> str:
    # The group's context settings (e.g. -h as well as --help) reach every subcommand.
    root = click.Context(group, info_name=name, **group.context_settings)
    out = [
        f'.TH {name.upper()} 1 "{_date()}" "{name} {__version__}" "User Commands"',
        ".SH NAME",
        f"{name} \\- {_escape(group.get_short_help_str(limit=200))}",
        ".SH SYNOPSIS",
        f"\\fB{name}\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
    ]
    for paragraph in _paragraphs(group.help or ""):
        out += [".PP", paragraph]
    out += [".SH OPTIONS", *_options(group, root), ".SH COMMANDS"]
    for cmd_name in group.list_commands(root):
        command = group.get_command(root, cmd_name)
        if command is None:
            continue
        ctx = click.Context(command, info_name=cmd_name, parent=root)
        usage = " ".join(command.collect_usage_pieces(ctx))
        out += [
            f".SS {_escape(cmd_name)}",
            f"\\fB{name} {_escape(cmd_name)}\\fR {_escape(usage)}",
        ]
        for paragraph in _paragraphs(command.help or ""):
            out += [".PP", paragraph]
        options = _options(command, ctx)
        if options:
            out += [".PP", "Options:", ".RS", *options, ".RE"]
    out += configuration()
    out += [
        ".SH FILES",
        ".TP",
        "\\fI/etc/psquadlet/psquadlet.toml\\fR",
        "The configuration (without it, the built\\-in perfSONAR testpoint is used).",
        ".SH SEE ALSO",
        "\\fBpodman\\-systemd.unit\\fR(5), \\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1)",
    ]
    return "\n".join(out) + "\n"
