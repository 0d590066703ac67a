"""psquadlet on Python 3.9, the oldest Python it supports (Enterprise Linux 9 runs 3.9).

The machine has only Python 3.11, so these tests install the working tree into a venv of
Debian 11's Python 3.9.2 (tests/support/py39.py: a cached debootstrapped root, commands run
in a private mount namespace on an overlay of it) with its dependencies from PyPI as pip on
3.9 resolves them (click 8.1.x; pystemd 0.14), then run the real CLI under 3.9 and compare
with the golden files and with the same commands under the host's Python.

The watcher's extras (podman-py, and pystemd from its own extra) are installed too: their
adapters (psquadlet.watch.podman_images, .systemd_units) import them at module level, so
"every module imports on 3.9" can only be shown with them present. (An EL9 operator gets
podman-py from `[watch]` and reaches systemd through busctl: tests/operator/test_pip_watch.py.)
That `generate` never needs them is a separate contract, tested on the host.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from psquadlet import __version__
from psquadlet.cli import COMMANDS
from tests.support import require_programs, require_root
from tests.support.py39 import VENV, Py39Error, Py39Session, Result, build_root, stop

pytestmark = pytest.mark.compat

REPO = Path(__file__).resolve().parents[2]
SRC = "/work/src"  # a copy of the working tree inside the 3.9 root
PSQUADLET = f"{VENV}/bin/psquadlet"
EXAMPLES = sorted((REPO / "examples").glob("*.toml"))
GOLDEN = REPO / "tests" / "golden"
FORMATS = ("quadlet", "service")
TARGET = "5.4.2"  # the Podman the golden files are rendered for (tests/golden/test_golden.py)
# The perfSONAR guide's line (reference/perfsonar-docker.rst).
UPSTREAM_LINE = shlex.split(
    "docker run -td --name perfsonar-testpoint --net=host --tmpfs /run --tmpfs /run/lock "
    "--tmpfs /tmp -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns host --cap-add CAP_NET_RAW "
    "perfsonar/testpoint:systemd"
)
# What the test suites below import besides psquadlet's own dependencies.
TEST_TOOLS = ("pytest", "hypothesis", "aiosmtpd")
# The test suites that need no program outside the venv (the others: markers, see pyproject).
INNER_PYTEST = (
    "tests",
    "--ignore=tests/compat",
    "--ignore=tests/e2e",
    "--ignore=tests/test_lint.py",  # ruff and mypy check 3.9 syntax on the host already
    "-m",
    "not oracle and not registry and not e2e and not compat and not pypi",
)
BROKEN = """\
[containers.web]
image = "docker.io/library/nginx:1.27"
netwrok = "host"
cap_add = "CAP_NET_RAW"

[containers.web.service]
restart = "sometimes"
"""


@pytest.fixture(scope="module")
def py39(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Py39Session]:
    """A venv of Python 3.9 with this working tree installed (`.[watch,pystemd,...]` extras).

    Never skipped in CI: a root that cannot be built or an install that fails is a failure
    with the reason.
    """
    require_root()
    require_programs("debootstrap", "unshare", "setpriv", "chroot", "mount")
    try:
        root = build_root()
    except (Py39Error, OSError) as e:
        pytest.fail(f"the Python 3.9 root could not be built: {e}", pytrace=False)
    scratch = tmp_path_factory.mktemp("py39")
    session = Py39Session(root, scratch)
    try:
        session.copy_tree(REPO, SRC)
        # The venv has the newest pip that runs on 3.9 (tests/support/py39.py).
        pip = [f"{VENV}/bin/python", "-m", "pip", "install", "--no-input"]
        session.run(
            [*pip, f"{SRC}[watch,pystemd,compose,notify,metrics]", *TEST_TOOLS], timeout=1200
        ).check()
        yield session
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(scratch)], check=False)


@pytest.fixture(scope="module", autouse=True)
def inner_suites(py39: Py39Session) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The project's own test suites under 3.9, started at once in the background: they run
    while the CLI checks below do (two cores), and test_the_test_suites_pass_on_39 waits."""
    fork = py39.fork(py39.scratch / "inner")
    log = py39.scratch / "inner-pytest.log"
    argv = [f"{VENV}/bin/python", "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider"]
    proc = fork.start([*argv, *INNER_PYTEST], log, cwd=SRC)
    try:
        yield proc, log
    finally:
        stop(proc)


def psq(py39: Py39Session, *args: str, cwd: str = SRC, stdin: str | None = None) -> Result:
    return py39.run([PSQUADLET, *args], cwd=cwd, stdin=stdin, timeout=120)


def host(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """The same command under the host's Python (3.11) and this tree."""
    return subprocess.run(
        [sys.executable, "-m", "psquadlet", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stderr, f"{result.argv} crashed:\n{result.stderr}"


def test_the_venv_is_python_39_with_what_pip_gives_39(py39: Py39Session) -> None:
    script = (
        "import sys, json; from importlib import metadata; import psquadlet; "
        "print(json.dumps({'python': list(sys.version_info[:2]), 'file': psquadlet.__file__, "
        "'versions': {d: metadata.version(d) for d in "
        "('psquadlet', 'click', 'tomli', 'podman', 'pystemd', 'PyYAML')}}))"
    )
    out = json.loads(py39.run([f"{VENV}/bin/python", "-c", script]).check().stdout)
    assert out["python"] == [3, 9]
    # The installed copy, not the source folder.
    assert out["file"].startswith(f"{VENV}/lib/python3.9/site-packages/psquadlet/"), out
    assert out["versions"]["psquadlet"] == __version__
    click_version = tuple(int(p) for p in out["versions"]["click"].split(".")[:2])
    assert click_version < (8, 2), f"3.9 users get click 8.1.x, the venv has {out['versions']}"


def test_every_module_imports_on_39(py39: Py39Session) -> None:
    script = """
import importlib, json, pkgutil, traceback
import psquadlet
failed = {}
def onerror(name):
    failed[name] = traceback.format_exc()
names = ["psquadlet"] + [
    m.name for m in pkgutil.walk_packages(psquadlet.__path__, "psquadlet.", onerror=onerror)
]
for name in names:
    if name == "psquadlet.__main__":
        continue  # runs the CLI on import; the console script covers it
    try:
        importlib.import_module(name)
    except BaseException:
        failed[name] = traceback.format_exc()
print(json.dumps({"names": sorted(names), "failed": failed}))
"""
    out = json.loads(py39.run([f"{VENV}/bin/python", "-c", script]).check().stdout)
    assert not out["failed"], "modules that do not import on Python 3.9:\n" + "\n".join(
        f"--- {name}\n{tb}" for name, tb in sorted(out["failed"].items())
    )
    expected = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in (REPO / "psquadlet").rglob("*.py")
    )
    assert out["names"] == expected  # every module of the tree was found and imported


def test_version(py39: Py39Session) -> None:
    result = psq(py39, "--version").check()
    assert __version__ in result.stdout
    assert result.stdout == host("--version").stdout


def test_every_command_answers_help(py39: Py39Session) -> None:
    """Loads each command's module (the watcher's too) through click 8.1 on 3.9."""
    loop = 'for c in "$@"; do "$0" "$c" --help >/dev/null || echo "FAILED: $c"; done'
    result = py39.run(["sh", "-c", loop, PSQUADLET, *sorted(COMMANDS)], cwd=SRC).check()
    assert "FAILED" not in result.stdout, f"{result.stdout}\n{result.stderr[-4000:]}"
    assert result.stderr == "", result.stderr


def _generate_args(example: Path, fmt: str, outdir: str) -> list[str]:
    user = "--user" if example.stem.startswith("user") else "--system"
    return [
        "generate",
        "-c",
        f"examples/{example.name}",
        "--format",
        fmt,
        "--podman-version",
        TARGET,
        user,
        "-o",
        outdir,
    ]


def _split_dry_run(stdout: str) -> dict[str, str]:
    """`generate --dry-run` prints `# ==> PATH <==` and then the file's text, for each file."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines(keepends=True):
        if line.startswith("# ==> ") and line.rstrip("\n").endswith(" <=="):
            current = files.setdefault(line[len("# ==> ") : -len(" <==\n")], [])
        else:
            assert current is not None, f"text before the first file header: {line!r}"
            current.append(line)
    return {path: "".join(lines) for path, lines in files.items()}


def _golden(example: Path, fmt: str) -> dict[str, str]:
    folder = GOLDEN / example.stem / fmt
    assert folder.is_dir(), f"no golden files in {folder}"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}


def _versionless(text: str) -> str:
    return text.replace(f"psquadlet {__version__} from", "psquadlet VERSION from", 1)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_generate_matches_golden_files_on_39(py39: Py39Session, example: Path, fmt: str) -> None:
    golden = _golden(example, fmt)
    outdir = f"/work/out/{example.stem}-{fmt}"

    # --dry-run: what is printed, byte for byte.
    args = _generate_args(example, fmt, outdir)
    dry = psq(py39, *args, "--dry-run").check()
    printed = _split_dry_run(dry.stdout)
    # The watcher's own units name the interpreter that ran generate (ExecStart=): the 3.9 one.
    own = {p: text for p, text in printed.items() if Path(p).name.startswith("psquadlet-")}
    services = {p: text for p, text in own.items() if p.endswith(".service")}
    assert services, own
    assert all(f"ExecStart={VENV}/bin/python" in text for text in services.values()), own
    units = {
        Path(path).name: _versionless(text)
        for path, text in printed.items()
        if Path(path).parent == Path(outdir) and path not in own
    }
    assert sorted(units) == sorted(golden)
    for name, text in units.items():
        assert text == golden[name], f"{example.stem}/{fmt}/{name} differs from golden on 3.9"
    # Everything else printed (perfSONAR's host files) as under the host's Python.
    on_host = _split_dry_run(host(*args, "--dry-run").stdout)
    assert {p: x for p, x in printed.items() if p not in own} == {
        p: x for p, x in on_host.items() if not Path(p).name.startswith("psquadlet-")
    }

    # And written for real (atomic writes on 3.9).
    psq(py39, *args).check()
    written = {
        p.name: p.read_text(encoding="utf-8")
        for p in py39.path(outdir).iterdir()
        # generate's own manifest and lock, and the watcher's units (checked above)
        if not p.name.startswith((".psquadlet", "psquadlet-"))
    }
    assert {n: _versionless(t) for n, t in written.items()} == golden


def test_validate_reports_every_problem_on_39(py39: Py39Session, tmp_path: Path) -> None:
    py39.write("/work/broken.toml", BROKEN)
    result = psq(py39, "validate", "-c", "broken.toml", cwd="/work")
    no_traceback(result)
    assert result.returncode == 2, result
    assert "broken.toml:3: containers.web.netwrok: unknown key 'netwrok'" in result.stderr
    assert "(did you mean 'network'?)" in result.stderr
    (tmp_path / "broken.toml").write_text(BROKEN)
    reference = host("validate", "-c", "broken.toml", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        reference.returncode,
        reference.stdout,
        reference.stderr,
    )

    # tomli (3.9) instead of tomllib (3.11): the syntax error is still located.
    py39.write("/work/syntax.toml", "[containers.web\nimage = 1\n")
    syntax = psq(py39, "validate", "-c", "syntax.toml", cwd="/work")
    no_traceback(syntax)
    assert syntax.returncode == 2
    assert syntax.stderr.startswith("psquadlet: error: syntax.toml:1: TOML syntax error"), syntax

    ok = psq(py39, "validate", "-c", "examples/maximal.toml").check()
    assert ok.stdout == host("validate", "-c", "examples/maximal.toml").stdout
    assert ok.stdout.startswith("OK: ")


def test_import_of_the_upstream_docker_run_line_on_39(py39: Py39Session) -> None:
    result = psq(py39, "import", "--", *UPSTREAM_LINE).check()
    reference = host("import", "--", *UPSTREAM_LINE)
    assert (result.stdout, result.stderr) == (reference.stdout, reference.stderr)
    assert 'preset = "perfsonar-testpoint"' in result.stdout
    # What import prints is a configuration that 3.9 reads back.
    py39.write("/work/imported.toml", result.stdout)
    assert psq(py39, "validate", "-c", "/work/imported.toml").check().stdout.startswith("OK: 1")


def test_doctor_json_on_39(py39: Py39Session) -> None:
    result = psq(py39, "doctor", "--json", "-c", "examples/default.toml")
    no_traceback(result)
    assert result.returncode in (0, 1, 2), result
    report = json.loads(result.stdout)
    assert report["schema"] == "psquadlet-doctor/1"
    assert report["exit_code"] == result.returncode
    assert report["psquadlet_version"] == __version__
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["config"]["status"] == "pass", checks["config"]
    # No podman in the 3.9 root: reported, not a crash.
    assert checks["podman"]["status"] in ("fail", "warn", "skip"), checks["podman"]
    reference = json.loads(host("doctor", "--json", "-c", "examples/default.toml").stdout)
    assert [c["id"] for c in report["checks"]] == [c["id"] for c in reference["checks"]]


def test_the_test_suites_pass_on_39(inner_suites: tuple[subprocess.Popen[bytes], Path]) -> None:
    """The unit, golden, importer, operator and watch suites under Python 3.9 and click 8.1:
    the library's code paths the CLI checks above do not reach (watch core, daemon, registry,
    doctor, status, import) run on 3.9 too.

    Inside, CI is unset: a test that needs a program the 3.9 root lacks (podman, journalctl)
    skips there; it runs on the host, where CI turns a missing program into a failure.
    """
    proc, log = inner_suites
    try:
        returncode = proc.wait(timeout=900)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the test suites under Python 3.9 did not finish in 15 min; log {log}")
    output = log.read_text(errors="replace")
    summary = output.strip().splitlines()[-1:] or ["(no output)"]
    assert returncode == 0, f"the test suites fail on Python 3.9 ({summary[0]}):\n{output[-8000:]}"
    assert " passed" in summary[0], summary
