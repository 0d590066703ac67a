"""Registry cost of a check, psquadlet vs `podman auto-update --dry-run`; the watcher's idle cost.

    scripts/test-deps                      # once, as root
    .venv/bin/python bench/registry_requests.py [--units 3] [--checks 3] [--idle 300]

Same registry, same image, one run. On the booted e2e test bed (Debian 13, systemd 257,
Podman 5.4; host Podman 4.3 cannot run `podman auto-update`, which needs systemd as PID 1),
with a loopback docker-registry:

1. N units (default 3) run one image under Quadlet units psquadlet generated, labelled
   `io.containers.autoupdate=registry` so that auto-update manages the same containers;
2. each tool checks K times (default 3) with nothing new, then once after a new image was
   pushed under the tag; requests and response bytes per check come from the registry's own
   access log (bytes = response bodies sent: the sizes it logged, 0 for a HEAD, which it
   logs with the Content-Length it did not send; headers are not counted);
3. `psquadlet watch` runs under the shipped unit file (Type=notify, WatchdogSec=5min) and
   is left idle for --idle seconds: resident memory from /proc/PID/status (VmRSS) and
   wake-ups per hour from the context switches of all its threads over the window.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.images import StandIns  # noqa: E402
from tests.support.registry import TEST_AGENT, Registry  # noqa: E402
from tests.support.testbed import VENV, TestBed  # noqa: E402

CONFIG = "/etc/psquadlet/psquadlet.toml"
TOOLS = ("psquadlet", "podman-auto-update")
ACCESS = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) (?P<size>\d+|-) '
    r'"[^"]*" "(?P<agent>[^"]*)"'
)


@dataclass(frozen=True)
class Cost:
    requests: Counter[str]
    bytes: int

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def config_text(registry: str, units: int) -> str:
    out = [f'[registries."{registry}"]\ntls_verify = false\n']
    for i in range(units):
        out.append(
            f"[containers.bench{i}]\n"
            f'image = "{registry}/perfsonar/testpoint:latest"\n'
            'network = "host"\n'
            'labels = { "io.containers.autoupdate" = "registry" }\n'
            f"[containers.bench{i}.update]\n"
            'schedule = "03:00"\nrandomized_delay = "1h"\n'
        )
    return "\n".join(out)


def cost_since(reg: Registry, offset: int) -> tuple[Cost, int]:
    """Requests and body bytes the registry logged after byte *offset* of its log."""
    data = reg.log_path.read_bytes()
    c: Counter[str] = Counter()
    size = 0
    for line in data[offset:].decode(errors="replace").splitlines():
        m = ACCESS.search(line)
        if not m or m["agent"] == TEST_AGENT:
            continue
        path = m["path"]
        kind = "manifest" if "/manifests/" in path else "blob" if "/blobs/" in path else path
        c[f"{m['method']} {kind}"] += 1
        # the registry logs a HEAD with its Content-Length, but sends no body
        if m["method"] != "HEAD" and m["size"].isdigit():
            size += int(m["size"])
    return Cost(c, size), len(data)


def check(tb: TestBed, tool: str) -> None:
    if tool == "psquadlet":
        tb.run(["psquadlet", "upgrade", "--dry-run", "-c", CONFIG], check=False)
    else:
        tb.run(["podman", "auto-update", "--dry-run"], check=False)


def measure(tb: TestBed, reg: Registry, tool: str, times: int) -> Cost:
    total: Counter[str] = Counter()
    size = 0
    _, offset = cost_since(reg, 0)
    for _ in range(times):
        check(tb, tool)
        time.sleep(0.2)  # let the registry flush its log line
        cost, offset = cost_since(reg, offset)
        total.update(cost.requests)
        size += cost.bytes
    return Cost(Counter({k: v / times for k, v in total.items()}), size // times)  # type: ignore[misc]


def proc_sample(tb: TestBed, pid: int) -> tuple[int, int]:
    """(VmRSS kB, voluntary context switches of all threads) of a process in the test bed.

    A voluntary switch is the process going to sleep, so each wake-up is one of them;
    involuntary switches (preemption while running) are left out.
    """
    text = tb.sh(
        f"grep VmRSS /proc/{pid}/status; for t in /proc/{pid}/task/*; do "
        "grep ^voluntary_ctxt_switches $t/status; done"
    )
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    switches = sum(
        int(n) for n in re.findall(r"^voluntary_ctxt_switches:\s+(\d+)", text, re.MULTILINE)
    )
    return rss, switches


# The shipped unit under another name: concurrent test beds share cgroup paths on this host
# (systemd-nspawn --keep-unit), so a test bed that kills its psquadlet-watch.service would
# kill ours too.
WATCH = "psquadlet-watch-bench.service"


def idle_watcher(tb: TestBed, window: float) -> tuple[int, float, int]:
    """Run the shipped psquadlet-watch.service; (RSS kB, wake-ups per hour, threads)."""
    unit = (REPO / "units" / "psquadlet-watch.service").read_text()
    tb.write(f"/etc/systemd/system/{WATCH}", unit)
    tb.write(
        f"/etc/systemd/system/{WATCH}.d/bench.conf",
        f"[Service]\nExecStart=\nExecStart={VENV}/bin/psquadlet watch -c {CONFIG}\n",
    )
    tb.systemctl("daemon-reload")
    tb.systemctl("start", WATCH)  # Type=notify: returns after READY=1
    pid = int(tb.systemctl("show", "-p", "MainPID", "--value", WATCH).stdout.strip())
    time.sleep(5)  # settle after start-up
    rss0, sw0 = proc_sample(tb, pid)
    t0 = time.monotonic()
    time.sleep(window)
    try:
        rss1, sw1 = proc_sample(tb, pid)
    except Exception:
        print(tb.systemctl("status", WATCH, check=False).stdout, tb.journal(WATCH), file=sys.stderr)
        raise
    elapsed = time.monotonic() - t0
    threads = int(tb.sh(f"ls /proc/{pid}/task | wc -l").strip())
    status = tb.systemctl("show", "-p", "StatusText", "--value", WATCH).stdout.strip()
    print(f"watcher status: {status}", file=sys.stderr)
    tb.systemctl("stop", WATCH, check=False)
    return max(rss0, rss1), (sw1 - sw0) * 3600 / elapsed, threads


def fmt(c: Counter[str]) -> str:
    return ", ".join(f"{k}: {v:g}" for k, v in sorted(c.items())) or "none"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--units", type=int, default=3, help="units sharing the image")
    ap.add_argument("--checks", type=int, default=3, help="checks per tool, nothing new")
    ap.add_argument("--idle", type=float, default=300.0, help="idle window in seconds")
    args = ap.parse_args()

    with Registry() as reg, TestBed(registries=(reg.host,)) as tb:
        print(f"test bed up; psquadlet {tb.install_psquadlet(REPO)}", file=sys.stderr)
        standins = StandIns(reg)
        standins.push("plain", "1.0", "perfsonar/testpoint:latest")
        tb.write(CONFIG, config_text(reg.host, args.units))
        tb.run(["psquadlet", "generate", "-c", CONFIG])
        tb.systemctl("daemon-reload")
        for i in range(args.units):
            tb.systemctl("start", f"bench{i}.service")
        tb.wait_for(
            lambda: all(
                tb.systemctl("is-active", f"bench{i}.service", check=False).stdout.strip()
                == "active"
                for i in range(args.units)
            ),
            120,
            "bench units active",
        )

        same = {t: measure(tb, reg, t, args.checks) for t in TOOLS}
        standins.push("plain", "2.0", "perfsonar/testpoint:latest")
        changed = {t: measure(tb, reg, t, 1) for t in TOOLS}
        rss, wakeups, threads = idle_watcher(tb, args.idle)

    print(
        f"\nRegistry cost per check: {args.units} units on one image, "
        f"means of {args.checks} checks\n"
    )
    print(f"{'':46}{'psquadlet':>11}{'auto-update':>13}{'ratio':>8}")
    for label, data in (("nothing new", same), ("new image pending", changed)):
        a, b = data["psquadlet"], data["podman-auto-update"]
        print(
            f"{label + ': requests':46}{a.total:>11g}{b.total:>13g}"
            f"{a.total / b.total if b.total else float('nan'):>8.2f}"
        )
        print(
            f"{label + ': response body bytes':46}{a.bytes:>11}{b.bytes:>13}"
            f"{a.bytes / b.bytes if b.bytes else float('nan'):>8.2f}"
        )
        gets_a = a.requests.get("GET manifest", 0)
        gets_b = b.requests.get("GET manifest", 0)
        print(f"{label + ': manifest GETs (Hub: pulls)':46}{gets_a:>11g}{gets_b:>13g}")
        for tool in TOOLS:
            print(f"    {tool}: {fmt(data[tool].requests)}")
    print(
        f"\npsquadlet watch idle for {args.idle:g}s: VmRSS {rss / 1024:.1f} MB "
        f"(target < 40 MB), {wakeups:.0f} wake-ups/hour across {threads} thread(s) "
        "(WatchdogSec=5min: the watchdog alone is 24/hour)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
