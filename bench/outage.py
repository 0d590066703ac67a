#!/usr/bin/env python3
"""Outage benchmark: psquadlet's upgrade vs `podman auto-update`, same unit, same new image.

Runs on the e2e test bed (a booted Debian 13 with systemd 257 and Podman 5.4 in
systemd-nspawn, a loopback registry, the systemd-PID-1 stand-in for perfsonar/testpoint).
For each tool and round:

  1. version N of the stand-in is running under the unit psquadlet generated (with the
     `io.containers.autoupdate=registry` label, so `podman auto-update` manages it too);
  2. version N+1 is pushed under the same tag;
  3. the tool runs once; meanwhile the health command is polled inside the container.

Printed per tool (median over rounds): the outage (from the old container's `died` event,
per `podman events`, to the first successful health command in the new container), the
whole upgrade (the tool's run time, and from its start to healthy), and the registry
requests it made (from the registry's access log). Also the requests of one check when
nothing changed. Measured, not asserted: this is not a test.

    .venv/bin/python bench/outage.py [--rounds 3] [--kind systemd|plain]

Needs root and what scripts/test-deps installs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.images import StandIns  # noqa: E402
from tests.support.registry import Registry, RegistryRequest  # noqa: E402
from tests.support.testbed import TestBed  # noqa: E402

UNIT = "perfsonar-testpoint"
SERVICE = f"{UNIT}.service"
CONFIG = "/etc/psquadlet/psquadlet.toml"
HEALTH = ["/usr/local/bin/healthcheck"]
TOOLS = ("psquadlet", "podman-auto-update")


@dataclass
class Round:
    tool: str
    run_s: float = 0.0  # the tool's own run time
    to_healthy_s: float = 0.0  # tool start -> new container healthy
    outage_s: float = 0.0  # old container died -> new container healthy
    stop_outage_s: float = 0.0  # systemd begins stopping the unit -> new container healthy
    requests: Counter[str] = field(default_factory=Counter)
    note: str = ""


def config_text(registry: str, tag: str) -> str:
    variant = "systemd" if tag == "systemd" else "supervisord"
    return f"""\
[registries."{registry}"]
tls_verify = false

[containers.{UNIT}]
preset = "perfsonar-testpoint"
variant = "{variant}"
image = "{registry}/perfsonar/testpoint:{tag}"
labels = {{ "io.containers.autoupdate" = "registry" }}

[containers.{UNIT}.update]
health_cmd = {json.dumps(HEALTH)}
health_timeout = "60s"
"""


def summarize(reqs: list[RegistryRequest]) -> Counter[str]:
    c: Counter[str] = Counter()
    for r in reqs:
        if r.is_manifest:
            c[f"{r.method} manifest"] += 1
        elif r.is_blob:
            c[f"{r.method} blob"] += 1
        else:
            c[f"{r.method} {r.path.split('?')[0]}"] += 1
    c["total"] = len(reqs)
    return c


class Poller(threading.Thread):
    """Runs the health command in a loop; records (start, end, ok) of each try."""

    def __init__(self, tb: TestBed) -> None:
        super().__init__(daemon=True)
        self.tb = tb
        self.samples: list[tuple[float, float, bool]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.time()
            ok = self.tb.podman("exec", UNIT, *HEALTH, check=False).returncode == 0
            self.samples.append((t0, time.time(), ok))


def container_events(tb: TestBed, since: float) -> list[tuple[float, str]]:
    """(time, status) of the unit's container events since `since`, in order."""
    res = tb.podman(
        "events",
        "--stream=false",
        "--since",
        str(int(since) - 1),
        "--filter",
        "type=container",
        "--format",
        "{{.TimeNano}}\t{{.Status}}\t{{.Name}}",
    )
    out = []
    for line in res.stdout.splitlines():
        ns, status, name = [*line.split("\t"), "", ""][:3]
        if name == UNIT and int(ns) / 1e9 >= since:
            out.append((int(ns) / 1e9, status))
    return sorted(out)


def stopping_times(tb: TestBed, since: float) -> list[float]:
    """When systemd began stopping the unit (its "Stopping ..." journal line).

    podman emits no event when a stop is requested, only `died` when the container is gone;
    for an image that ignores its stop signal the service is already on its way out before.
    """
    res = tb.run(
        [
            "journalctl",
            "-u",
            SERVICE,
            "--since",
            f"@{int(since) - 1}",
            "-o",
            "json",
            "--output-fields=MESSAGE,__REALTIME_TIMESTAMP",
        ],
        check=False,
    )
    out = []
    for line in res.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        t = int(entry.get("__REALTIME_TIMESTAMP", 0)) / 1e6
        if str(entry.get("MESSAGE", "")).startswith("Stopping") and t >= since:
            out.append(t)
    return sorted(out)


def wait_healthy(tb: TestBed, timeout: float = 120.0) -> None:
    tb.wait_for(
        lambda: tb.podman("exec", UNIT, *HEALTH, check=False).returncode == 0,
        timeout,
        "the testpoint healthy",
    )


def setup(tb: TestBed, standins: StandIns, kind: str, tag: str, version: str) -> None:
    tb.systemctl("stop", SERVICE, check=False)
    tb.podman("rm", "-af", "-t", "0", check=False)
    tb.podman("rmi", "-af", check=False)
    standins.push(kind, version, f"perfsonar/testpoint:{tag}")
    tb.write(CONFIG, config_text(standins.registry.host, tag))
    tb.run(["psquadlet", "generate", "-c", CONFIG])
    tb.systemctl("daemon-reload")
    tb.systemctl("start", SERVICE)
    wait_healthy(tb)
    tb.sh("rm -rf /var/lib/psquadlet")


def run_tool(tb: TestBed, tool: str) -> tuple[float, str]:
    t0 = time.monotonic()
    if tool == "psquadlet":
        res = tb.run(["psquadlet", "upgrade", "--unit", UNIT, "--json", "-c", CONFIG], check=False)
        try:
            [o] = json.loads(res.stdout)["containers"]
            note = o["action"]
        except (ValueError, KeyError):
            note = f"exit {res.returncode}: {res.stderr[-300:]}"
    else:
        res = tb.run(["podman", "auto-update", "--format", "{{.Updated}}"], check=False)
        note = res.stdout.strip() or f"exit {res.returncode}: {res.stderr[-300:]}"
    return time.monotonic() - t0, note


def one_round(
    tb: TestBed, standins: StandIns, reg: Registry, tool: str, *, kind: str, tag: str, n: int
) -> Round:
    setup(tb, standins, kind, tag, f"{n}.0")
    standins.push(kind, f"{n}.1", f"perfsonar/testpoint:{tag}")
    mark = reg.mark()
    poller = Poller(tb)
    since = time.time()
    poller.start()
    r = Round(tool)
    try:
        r.run_s, r.note = run_tool(tb, tool)
        wait_healthy(tb)
        time.sleep(0.3)
    finally:
        poller.stop.set()
        poller.join()
    r.requests = summarize(reg.requests(since=mark))
    evs = container_events(tb, since)
    died = [t for t, status in evs if status == "died"]
    if not died:
        r.note += " (old container never died: not upgraded?)"
        return r
    first_died = died[0]
    first_stop = min([*stopping_times(tb, since), first_died])
    healthy_after = [end for start, end, ok in poller.samples if ok and start > first_died]
    if healthy_after:
        r.outage_s = healthy_after[0] - first_died
        r.stop_outage_s = healthy_after[0] - first_stop
        r.to_healthy_s = healthy_after[0] - since
    return r


def idle_check(tb: TestBed, reg: Registry, tool: str) -> Counter[str]:
    """Registry requests of one check when the running image is current."""
    mark = reg.mark()
    if tool == "psquadlet":
        tb.run(["psquadlet", "upgrade", "--unit", UNIT, "--dry-run", "-c", CONFIG], check=False)
    else:
        tb.run(["podman", "auto-update", "--dry-run"], check=False)
    return summarize(reg.requests(since=mark))


def fmt_counter(c: Counter[str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items()) if k != "total") or "none"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--kind",
        choices=("systemd", "plain", "stubborn"),
        default="systemd",
        help="stand-in: systemd PID 1 (default), a plain process, or one "
        "that ignores SIGTERM (stop waits out the timeout)",
    )
    args = ap.parse_args()
    tag = "systemd" if args.kind == "systemd" else "latest"

    with Registry() as reg, TestBed(registries=(reg.host,)) as tb:
        print(f"test bed up; psquadlet {tb.install_psquadlet(REPO)}", file=sys.stderr)
        standins = StandIns(reg)
        results: dict[str, list[Round]] = {t: [] for t in TOOLS}
        n = 1
        for i in range(args.rounds):
            for tool in TOOLS:
                r = one_round(tb, standins, reg, tool, kind=args.kind, tag=tag, n=n)
                n += 1
                results[tool].append(r)
                print(
                    f"round {i + 1} {tool:19} outage {r.outage_s:6.2f}s "
                    f"(from stopping {r.stop_outage_s:6.2f}s)  run {r.run_s:6.2f}s  "
                    f"to healthy {r.to_healthy_s:6.2f}s  requests {r.requests['total']:3}  "
                    f"[{r.note}]",
                    file=sys.stderr,
                )
        idle = {t: idle_check(tb, reg, t) for t in TOOLS}

    def med(tool: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in results[tool])

    print(f"\nOutage benchmark ({args.kind} stand-in, {args.rounds} rounds, medians)\n")
    print(f"{'':36}{'psquadlet':>12}{'auto-update':>14}{'ratio':>8}")
    for label, attr in (
        ("outage (died -> healthy) [s]", "outage_s"),
        ("outage (unit stopping -> healthy) [s]", "stop_outage_s"),
        ("tool run time [s]", "run_s"),
        ("start -> healthy [s]", "to_healthy_s"),
    ):
        a, b = med("psquadlet", attr), med("podman-auto-update", attr)
        ratio = f"{a / b:.2f}" if b else "-"
        print(f"{label:36}{a:12.2f}{b:14.2f}{ratio:>8}")
    for tool in TOOLS:
        last = results[tool][-1].requests
        print(f"registry requests, upgrade, {tool}: {last['total']} ({fmt_counter(last)})")
    for tool in TOOLS:
        print(
            f"registry requests, check with nothing new, {tool}: {idle[tool]['total']} "
            f"({fmt_counter(idle[tool])})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
