# Copyright: psquadlet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The morning report's filters: `psquadlet status --json` of many hosts -> rows -> a table.

fleet_report(collected): collected maps each host to what report.yml registered there
(rc, stdout; msg and unreachable when it failed); returns one row per container (or per host
that gave no status), what needs attention first.
fleet_table(rows): the rows as fixed-width text lines.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

COLUMNS = (
    ("host", "HOST"),
    ("container", "CONTAINER"),
    ("image", "IMAGE"),
    ("digest_short", "DIGEST"),
    ("release", "RELEASE"),
    ("last_result", "LAST RESULT"),
    ("health", "HEALTH"),
    ("blocked_count", "BLOCKED"),
    ("behind", "BEHIND"),
    ("next_check", "NEXT CHECK"),
    ("attention", "ATTENTION"),
)
# What an operator looks at first: lower is more urgent.
NO_STATUS, FAILING, LOOK, AVAILABLE, FINE = 0, 1, 2, 3, 4
FAILED_RESULTS = ("error", "rolled-back", "not-running", "failed")
CELL = 40  # a long cell (a last result's message) is cut in the table, kept whole in JSON


def _short(digest):
    digest = digest or ""
    return digest.split(":", 1)[1][:12] if ":" in digest else digest


def _host_row(host, why):
    row = dict((key, None) for key, dummy in COLUMNS)
    row.update(host=host, rank=NO_STATUS, attention=why, blocked=[])
    return row


def _container_row(host, c):
    watch = c.get("watch") or {}
    unit = c.get("unit_state") or {}
    health = watch.get("health") or ("running" if c.get("running") else unit.get("active"))
    last = c.get("last_result") or ""
    blocked = c.get("blocked") or []
    reasons = []
    rank = FINE
    if not c.get("running") or unit.get("active") not in (None, "active"):
        reasons.append("not running (%s)" % (unit.get("active") or "unknown"))
        rank = min(rank, FAILING)
    if health in ("unhealthy", "failed"):
        reasons.append("health %s" % health)
        rank = min(rank, FAILING)
    if last.split(":", 1)[0].strip() in FAILED_RESULTS:
        reasons.append("last pass: %s" % last.split(":", 1)[0].strip())
        rank = min(rank, FAILING)
    if watch.get("upgrade_in_progress"):
        reasons.append("upgrade in progress")
        rank = min(rank, LOOK)
    if c.get("behind"):
        reasons.append("behind")
        rank = min(rank, LOOK)
    if c.get("pinned"):
        reasons.append("pinned")
        rank = min(rank, LOOK)
    if blocked:
        reasons.append("%d blocked" % len(blocked))
        rank = min(rank, LOOK)
    if watch.get("update_available") or c.get("release_available"):
        reasons.append("update available")
        rank = min(rank, AVAILABLE)
    return {
        "host": host,
        "container": c.get("name"),
        "image": c.get("image") or c.get("configured_image"),
        "digest": c.get("digest") or None,
        "digest_short": _short(c.get("digest")),
        "release": c.get("release"),
        "last_result": last or None,
        "health": health,
        "blocked": [b.get("digest") for b in blocked],
        "blocked_count": len(blocked),
        "behind": c.get("behind"),
        "pinned": c.get("pinned"),
        "next_check": c.get("next_check"),
        "attention": "; ".join(reasons),
        "rank": rank,
    }


def fleet_report(collected):
    rows = []
    for host, registered in collected.items():
        entry = registered or {}
        try:
            doc = json.loads(entry.get("stdout") or "")
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith(
            "psquadlet-status/"
        ):
            if entry.get("unreachable"):
                why = "unreachable"
            elif entry.get("rc") is None and not entry.get("msg"):
                why = "not collected"
            else:
                why = (entry.get("stderr") or entry.get("msg") or "").strip()
                why = "exit %s%s" % (entry.get("rc"), ": " + why[:200] if why else "")
            rows.append(_host_row(host, "no status: %s" % why))
            continue
        if doc.get("error"):
            rows.append(_host_row(host, "status failed: %s" % doc["error"].get("message")))
            continue
        containers = doc.get("containers") or []
        if not containers:
            rows.append(_host_row(host, "no containers configured"))
        rows += [_container_row(host, c) for c in containers]
    return sorted(rows, key=lambda r: (r["rank"], r["host"] or "", r["container"] or ""))


def _cell(value):
    text = "-" if value is None or value == "" else str(value)
    return text if len(text) <= CELL else text[: CELL - 3] + "..."


def fleet_table(rows):
    cells = [[title for dummy, title in COLUMNS]]
    cells += [[_cell(row.get(key)) for key, dummy in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]


class FilterModule(object):
    def filters(self):
        return {"fleet_report": fleet_report, "fleet_table": fleet_table}
