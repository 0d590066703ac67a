#!/usr/bin/python
# Copyright: psquadlet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: psquadlet
short_description: Configure, generate and upgrade psquadlet-managed containers
version_added: 0.1.0
description:
  - Drives the C(psquadlet) command on the managed host through its JSON output
    (C(psquadlet-generate/1), C(psquadlet-upgrade/1)); the units themselves are always
    written by C(psquadlet generate).
  - With O(state=present), writes the configuration file (from O(config) or O(src), or keeps
    the one there), validates it, and generates the units. The task is C(changed) only when
    the configuration file (its text or its mode) or a generated file changed.
  - The configuration may hold credentials, so it is written mode 0600 (0640 when the file it
    replaces was readable by its group only); a file others can read is tightened to 0600.
  - A new configuration is checked under a temporary name and planned as the real file
    (C(generate --as-config)), so check and diff modes show what a real run does, removals
    included.
  - A bad configuration fails the task with psquadlet's own located message
    (V(FILE:LINE) and the key path, then the message) and leaves the file in place untouched.
    When C(generate) refuses after the new file was moved in, the previous one is put back.
  - With O(state=upgraded), runs one C(psquadlet upgrade) pass, optionally to one exact
    O(digest); a rollback fails the task (the report is in the result).
  - With O(state=blocked) or O(state=unblocked), records or forgets a known-bad digest in
    the watcher's state, so that the watcher never moves to it.
requirements:
  - psquadlet on the managed host (the .deb, the .rpm or pip)
author:
  - psquadlet maintainers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: C(generate --dry-run) and C(upgrade --dry-run) (with O(digest) too); nothing is
      written.
  diff_mode:
    support: full
    details: the configuration file's and the generated units' unified diffs.
  platform:
    platforms: posix
options:
  state:
    description:
      - V(present) writes the configuration and generates the units.
      - V(validated) only checks the configuration (nothing is written).
      - V(upgraded) runs one upgrade pass (all containers, or O(name)).
      - V(blocked) and V(unblocked) mark O(digest) known-bad for container O(name), or forget it.
    type: str
    choices: [present, validated, upgraded, blocked, unblocked]
    default: present
  path:
    description: The configuration file on the managed host.
    type: path
    default: /etc/psquadlet/psquadlet.toml
  config:
    description:
      - The configuration as a dictionary, written to O(path) as TOML (see psquadlet's
        docs/configuration.md for the keys). Mutually exclusive with O(src).
      - Neither O(config) nor O(src) keeps the file at O(path), or psquadlet's built-in
        default when there is none.
    type: dict
  src:
    description: A configuration file on the managed host, copied to O(path).
    type: path
  format:
    description: Unit format (C(generate --format)).
    type: str
    choices: [auto, quadlet, service]
    default: auto
  output_dir:
    description:
      - Write the units into this folder instead of Quadlet's or systemd's
        (C(generate -o)); nothing is reloaded then.
    type: path
  reload:
    description: Run C(systemctl daemon-reload) after changed units (C(generate --reload)).
    type: bool
    default: true
  force:
    description: C(generate --force) (overwrite files psquadlet did not write).
    type: bool
    default: false
  name:
    description:
      - The container (table name) for O(state=upgraded), O(state=blocked) and
        O(state=unblocked). Required with O(digest).
    type: str
  digest:
    description:
      - V(upgraded) moves O(name) to exactly this image (C(sha256:...)), never to what the
        tag points to now. Required for V(blocked) and V(unblocked).
    type: str
  reason:
    description: Why the digest is blocked (shown by C(psquadlet status)).
    type: str
    default: blocked by ansible
  executable:
    description: The psquadlet program (a name looked up in PATH, or a path).
    type: str
    default: psquadlet
"""

EXAMPLES = r"""
- name: The testpoint, with its Lookup Service registration
  psquadlet.psquadlet.psquadlet:
    config:
      containers:
        perfsonar-testpoint:
          preset: perfsonar-testpoint
          perfsonar:
            lookup_service:
              site_name: Example campus
  register: generated

- name: Start the testpoint (a .service unit must also be enabled)
  ansible.builtin.systemd_service:
    name: perfsonar-testpoint.service
    state: started
    enabled: "{{ generated.format == 'service' }}"

- name: Move to exactly the image the canary passed
  psquadlet.psquadlet.psquadlet:
    state: upgraded
    name: perfsonar-testpoint
    digest: "{{ canary_digest }}"

- name: Never take this image
  psquadlet.psquadlet.psquadlet:
    state: blocked
    name: perfsonar-testpoint
    digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    reason: rolled back on the canary
"""

RETURN = r"""
generate:
  description: The C(psquadlet generate --json) object (schema C(psquadlet-generate/1)).
  returned: state is present or validated
  type: dict
format:
  description: The unit format written, V(quadlet) or V(service).
  returned: state is present or validated
  type: str
units_changed:
  description: Generated files that changed (created, changed or removed).
  returned: state is present or validated
  type: list
  elements: str
config_changed:
  description: Whether the configuration file changed.
  returned: state is present or validated
  type: bool
upgrade:
  description: The C(psquadlet upgrade --json) object (schema C(psquadlet-upgrade/1)).
  returned: state is upgraded
  type: dict
containers:
  description: The upgrade report's containers (name, result, old_digest, new_digest, message).
  returned: state is upgraded
  type: list
  elements: dict
rolled_back:
  description: Containers that were rolled back in this pass.
  returned: state is upgraded
  type: list
  elements: dict
problems:
  description: Located configuration problems (file, line, key_path, message, hint).
  returned: failure on a bad configuration
  type: list
  elements: dict
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible_collections.psquadlet.psquadlet.plugins.module_utils.toml_text import (
    TomlValueError,
    dumps,
)

CHANGED_ACTIONS = ("create", "change", "remove")


def run_json(module, argv, schema):
    """Run psquadlet, parse its one JSON object; fail with its own message on an error."""
    rc, out, err = module.run_command(argv, environ_update={"LANG": "C.UTF-8"})
    try:
        report = json.loads(out)
    except ValueError:
        module.fail_json(
            msg="%s did not print JSON (exit %d): %s" % (argv[0], rc, err.strip()),
            rc=rc,
            stdout=out,
            stderr=err,
        )
    if not isinstance(report, dict) or not str(report.get("schema", "")).startswith(schema + "/"):
        module.fail_json(
            msg="unexpected output of %s: no %s schema" % (" ".join(argv), schema),
            rc=rc,
            stdout=out,
            stderr=err,
        )
    return rc, report, err


def fail_report(module, report, rename=None, suffix="", **extra):
    error = report.get("error") or {}
    message = to_text(error.get("message") or "psquadlet failed") + suffix
    problems = error.get("problems") or []
    if rename:  # a candidate file checked under a temporary name: say the real one
        old, new = rename
        message = message.replace(old, new)
        for problem in problems:
            if problem.get("file") == old:
                problem["file"] = new
    module.fail_json(msg=message, problems=problems, **extra)


def generate(module, exe, path, use_path, extra):
    argv = [exe, "generate", "--json", "--format", module.params["format"]]
    if use_path:
        argv += ["-c", path]
    if module.params["output_dir"]:
        argv += ["-o", module.params["output_dir"]]
    if module.params["force"]:
        argv.append("--force")
    return run_json(module, argv + extra, "psquadlet-generate")


def candidate_text(module):
    params = module.params
    if params["config"] is not None:
        try:
            return dumps(params["config"])
        except TomlValueError as e:
            module.fail_json(msg="config: %s" % to_native(e))
    if params["src"] is not None:
        try:
            with open(params["src"], "rb") as f:
                return to_text(f.read(), errors="surrogate_or_strict")
        except (IOError, OSError, UnicodeError) as e:
            module.fail_json(msg="cannot read src %s: %s" % (params["src"], to_native(e)))
    return None


def read_text(path):
    try:
        with open(path, "rb") as f:
            return to_text(f.read(), errors="surrogate_or_strict")
    except (IOError, OSError, UnicodeError):
        return None


def present(module, exe):
    params = module.params
    path = params["path"]
    validate_only = params["state"] == "validated"
    text = candidate_text(module)
    before = read_text(path)
    diffs = []
    if text is None or text == before:
        tightened = text is not None and tighten(module, path, validate_only)
        extra = ["--dry-run"] if module.check_mode or validate_only else []
        if module._diff:
            extra.append("--diff")
        if params["reload"] and not params["output_dir"] and "--dry-run" not in extra:
            extra.append("--reload")
        rc, report, err = generate(module, exe, path, before is not None, extra)
        if not report.get("ok"):
            fail_report(module, report)
        if report.get("diff"):
            diffs.append({"prepared": report["diff"]})
        return finish(module, report, tightened, changed_units(report), diffs, validate_only)

    # A new configuration: checked under a temporary name beside the real file, planned as
    # the real file (--as-config), so that the units it no longer has show as removed.
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        if module.check_mode or validate_only:
            folder = None
        else:
            os.makedirs(folder, 0o755)
    mode = config_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=".psquadlet-ansible-", suffix=".toml", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
        extra = ["--dry-run", "--diff", "--as-config", path]
        rc, report, err = generate(module, exe, tmp, True, extra)
        if not report.get("ok"):
            fail_report(module, report, rename=(tmp, path))
        units = changed_units(report)
        diffs.append(
            {
                "before": before or "",
                "after": text,
                "before_header": path if before is not None else "/dev/null",
                "after_header": path,
            }
        )
        if module.check_mode or validate_only:
            if report.get("diff"):
                diffs.append({"prepared": report["diff"]})
            return finish(module, report, True, units, diffs, validate_only)
        replace(tmp, path, mode)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    extra = ["--diff"] + (["--reload"] if params["reload"] and not params["output_dir"] else [])
    rc, report, err = generate(module, exe, path, True, extra)
    if not report.get("ok"):
        restore(path, before, mode)
        fail_report(module, report, suffix="; the previous configuration was put back")
    if report.get("diff"):
        diffs.append({"prepared": report["diff"]})
    return finish(module, report, True, changed_units(report), diffs, validate_only)


def tighten(module, path, validate_only):
    """An unchanged configuration readable by others (an older release wrote 0644): 0600."""
    try:
        loose = os.stat(path).st_mode & 0o037
    except OSError:
        return False
    if not loose:
        return False
    if not (module.check_mode or validate_only):
        os.chmod(path, config_mode(path))
    return True


def changed_units(report):
    return [f["path"] for f in report.get("files", []) if f.get("action") in CHANGED_ACTIONS]


def config_mode(path):
    """0640 when the file there is readable by its group and not by others (a group of
    readers the operator chose), else 0600: the configuration may hold credentials."""
    try:
        mode = os.stat(path).st_mode
        return 0o640 if mode & 0o040 and not mode & 0o004 else 0o600
    except OSError:
        return 0o600


def restore(path, before, mode):
    """Put back the configuration that was there before (or none) after generate refused."""
    if before is None:
        os.unlink(path)
        return
    fd, tmp = tempfile.mkstemp(prefix=".psquadlet-ansible-", dir=os.path.dirname(path) or ".")
    with os.fdopen(fd, "wb") as f:
        f.write(to_bytes(before, errors="surrogate_or_strict"))
    replace(tmp, path, mode)


def replace(tmp, path, mode):
    """Rename *tmp* (made beside *path*: its folder's SELinux label) over *path*, with *mode*
    and the owner of the file it replaces. Not atomic_move: that gives a new file the umask's
    mode (0644) and a replaced one the old mode, both readable by all for a moment."""
    os.chmod(tmp, mode)
    try:
        st = os.stat(path)
        os.chown(tmp, st.st_uid, st.st_gid)
    except OSError:
        pass
    os.rename(tmp, path)


def finish(module, report, config_changed, units, diffs, validate_only):
    result = {
        "changed": (config_changed or bool(units)) and not validate_only,
        "config_changed": config_changed,
        "units_changed": units,
        "format": report.get("format"),
        "generate": report,
    }
    if module._diff and diffs and not validate_only:
        result["diff"] = diffs
    module.exit_json(**result)


def upgraded(module, exe):
    params = module.params
    argv = [exe, "upgrade", "--json"]
    if os.path.exists(params["path"]):
        argv += ["-c", params["path"]]
    if params["digest"]:
        argv += [params["name"], "--digest", params["digest"]]
    elif params["name"]:
        argv += ["--unit", params["name"]]
    if module.check_mode:
        argv.append("--dry-run")
    rc, report, err = run_json(module, argv, "psquadlet-upgrade")
    containers = report.get("containers") or []
    rolled = [c for c in containers if c.get("result") == "rolled-back"]
    result = {
        "changed": bool(report.get("changed")),
        "upgrade": report,
        "containers": containers,
        "rolled_back": rolled,
    }
    if "error" in report:
        fail_report(module, report, **result)
    if rolled or not report.get("ok"):
        lines = [
            "%s: %s" % (c.get("name"), c.get("message"))
            for c in containers
            if c.get("result") in ("rolled-back", "failed", "blocked")
        ]
        module.fail_json(msg="; ".join(lines) or "psquadlet upgrade failed", rc=rc, **result)
    module.exit_json(**result)


def blocked_digests(module, exe, path, name):
    """The digests `status --json` shows as known-bad for container `name`."""
    argv = [exe, "status", "--json", name]
    if os.path.exists(path):
        argv[2:2] = ["-c", path]
    rc, report, err = run_json(module, argv, "psquadlet-status")
    if "error" in report:
        fail_report(module, report)
    for c in report.get("containers") or []:
        if c.get("name") == name:
            return dict((b.get("digest"), b) for b in c.get("blocked") or [])
    return {}


def block(module, exe):
    params = module.params
    name, digest, path = params["name"], params["digest"], params["path"]
    known = blocked_digests(module, exe, path, name)
    want = params["state"] == "blocked"
    if want == (digest in known):
        module.exit_json(changed=False, blocked=sorted(known))
    if module.check_mode:
        module.exit_json(changed=True)
    argv = [exe, "block" if want else "unblock"]
    if os.path.exists(path):
        argv += ["-c", path]
    argv += [name, digest]
    if want:
        argv += ["--reason", params["reason"]]
    rc, out, err = module.run_command(argv, environ_update={"LANG": "C.UTF-8"})
    if rc != 0:
        module.fail_json(msg=err.strip().replace("psquadlet: error: ", "") or out, rc=rc)
    module.exit_json(changed=True, msg=out.strip())


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(
                type="str",
                default="present",
                choices=["present", "validated", "upgraded", "blocked", "unblocked"],
            ),
            path=dict(type="path", default="/etc/psquadlet/psquadlet.toml"),
            config=dict(type="dict"),
            src=dict(type="path"),
            format=dict(type="str", default="auto", choices=["auto", "quadlet", "service"]),
            output_dir=dict(type="path"),
            reload=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
            name=dict(type="str"),
            digest=dict(type="str"),
            reason=dict(type="str", default="blocked by ansible"),
            executable=dict(type="str", default="psquadlet"),
        ),
        mutually_exclusive=[("config", "src")],
        required_if=[
            ("state", "blocked", ("name", "digest")),
            ("state", "unblocked", ("name", "digest")),
        ],
        required_by={"digest": "name"},
        supports_check_mode=True,
    )
    exe = module.params["executable"]
    if os.sep not in exe:
        exe = module.get_bin_path(exe, required=True, opt_dirs=["/usr/local/bin"])
    state = module.params["state"]
    if state in ("present", "validated"):
        present(module, exe)
    elif state == "upgraded":
        upgraded(module, exe)
    else:
        block(module, exe)


if __name__ == "__main__":
    main()
