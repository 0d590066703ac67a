"""plan/apply and atomic writes on real folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from psquadlet import fsutil, plan
from psquadlet.errors import RefusedError
from psquadlet.marker import marker
from psquadlet.render import UnitFile

M = marker("c.toml") + "\n"


def unit(name: str, body: str = "[Container]\nImage=docker.io/a/b:c\n") -> UnitFile:
    return UnitFile(name, M + body)


def compute(
    units: list[UnitFile], out: Path, force: bool = False, source: str = "c.toml"
) -> plan.Plan:
    targets = [plan.Target(out / u.filename, u.text, plan.unit_kind(u.filename)) for u in units]
    return plan.compute_plan(targets, [out], source, force=force)


def kinds(p: plan.Plan) -> dict[str, str]:
    return {a.path.name: a.kind for a in p.actions}


def test_plan_on_a_missing_folder_creates_everything_and_touches_nothing(tmp_path: Path) -> None:
    out = tmp_path / "missing"
    p = compute([unit("a.container"), unit("a.volume")], out, force=False)
    assert kinds(p) == {"a.container": "create", "a.volume": "create"}
    assert not out.exists()
    changed = plan.apply_plan(p)
    assert len(changed) == 2
    assert (out / "a.container").read_text() == M + "[Container]\nImage=docker.io/a/b:c\n"
    assert oct((out / "a.container").stat().st_mode & 0o777) == "0o644"


def test_unchanged_changed_stale_foreign(tmp_path: Path) -> None:
    (tmp_path / "same.container").write_text(unit("same.container").text)
    (tmp_path / "edit.container").write_text(M + "old\n")
    (tmp_path / "stale.volume").write_text(M + "gone\n")
    (tmp_path / "mine.container").write_text("# written by hand\n")
    (tmp_path / "notes.txt").write_text("not a unit, no marker\n")
    units = [unit("same.container"), unit("edit.container"), unit("mine.container")]
    p = compute(units, tmp_path, force=False)
    assert kinds(p) == {
        "same.container": "unchanged",
        "edit.container": "change",
        "mine.container": "refused",
        "stale.volume": "remove",
    }
    with pytest.raises(RefusedError, match=r"mine\.container"):
        plan.apply_plan(p)
    assert (tmp_path / "stale.volume").exists()  # refused as a whole
    assert (tmp_path / "edit.container").read_text() == M + "old\n"

    forced = compute(units, tmp_path, force=True)
    assert kinds(forced)["mine.container"] == "change"
    plan.apply_plan(forced)
    assert not (tmp_path / "stale.volume").exists()
    assert (tmp_path / "notes.txt").exists()
    assert (tmp_path / "mine.container").read_text() == unit("mine.container").text


def test_diff_is_unified(tmp_path: Path) -> None:
    (tmp_path / "a.container").write_text(M + "[Container]\nImage=docker.io/a/b:old\n")
    p = compute([unit("a.container")], tmp_path, force=False)
    diff = p.actions[0].diff()
    assert "-Image=docker.io/a/b:old\n" in diff
    assert "+Image=docker.io/a/b:c\n" in diff
    assert diff.startswith(f"--- a{tmp_path}/a.container\n+++ b{tmp_path}/a.container\n")


def test_directories_and_symlinks_are_never_touched(tmp_path: Path) -> None:
    (tmp_path / "d.container").mkdir()
    target = tmp_path / "elsewhere"
    target.write_text(M)
    (tmp_path / "l.container").symlink_to(target)
    p = compute([unit("d.container"), unit("l.container")], tmp_path, force=True)
    assert kinds(p)["d.container"] == "refused"
    assert kinds(p)["l.container"] == "refused"


def test_atomic_write_leaves_no_temp_files_and_keeps_old_content_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "u.container"
    fsutil.atomic_write(path, "one\n")
    assert fsutil.write_if_changed(path, "one\n") is False
    assert fsutil.write_if_changed(path, "two\n") is True

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        fsutil.atomic_write(path, "three\n")
    assert path.read_text() == "two\n"
    assert [p.name for p in tmp_path.iterdir()] == ["u.container"]
