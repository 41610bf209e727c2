"""The pre-release check as CI runs it: the pre-commit hooks and the GitHub Actions composite
action, executed for real (the action's script under bash with the runner's variables)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gilaudit.cli import main

REPO = Path(__file__).parent.parent
EXAMPLE = REPO / "examples" / "spamcache"


def _hooks() -> list[dict[str, object]]:
    data = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(data, list)
    return data


def test_pre_commit_hooks_are_well_formed() -> None:
    for hook in _hooks():
        for key in ("id", "name", "entry", "language"):
            assert hook.get(key), f"{hook.get('id')}: no {key}"
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        re.compile(str(hook["files"]))
        assert re.search(str(hook["files"]), "src/spam.c")
        assert re.search(str(hook["files"]), "setup.py")
        assert not re.search(str(hook["files"]), "README.md")


@pytest.mark.parametrize("hook_id", ["gilaudit", "gilaudit-baseline"])
def test_pre_commit_hooks_run(hook_id: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    monkeypatch.chdir(project)
    hook = next(h for h in _hooks() if h["id"] == hook_id)
    argv = shlex.split(str(hook["entry"])) + list(hook.get("args", []))  # type: ignore[arg-type]
    assert argv[0] == "gilaudit"
    if hook_id == "gilaudit":
        assert main([*argv[1:], "--no-cache"]) == 1  # the example has errors
    else:
        assert main(["baseline", ".", "-o", "gilaudit-baseline.json"]) == 0
        assert main([*argv[1:], "--no-cache"]) == 0  # nothing new since the baseline
        spam = project / "src" / "spam.c"
        spam.write_text(spam.read_text() + "\nstatic PyObject *late;\nstatic PyObject *\n"
                        "get_late(PyObject *m, PyObject *a)\n{\n    if (late == NULL) {\n"
                        "        late = PyDict_New();\n    }\n    return Py_NewRef(late);\n}\n")
        assert main([*argv[1:], "--no-cache"]) == 1  # a new lazy-init race
    capsys.readouterr()


def _action() -> dict[str, object]:
    data = yaml.safe_load((REPO / "action.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_the_action_uses_only_inputs_it_declares() -> None:
    action = _action()
    text = (REPO / "action.yml").read_text()
    declared = set(action["inputs"])  # type: ignore[arg-type]
    used = set(re.findall(r"inputs\.([a-z-]+)", text))
    assert used <= declared, used - declared
    runs = action["runs"]
    assert isinstance(runs, dict) and runs["using"] == "composite"


def test_the_actions_script_scans_writes_sarif_and_the_job_summary(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash: the action's script is a bash script")
    runs = _action()["runs"]
    assert isinstance(runs, dict)
    step = next(s for s in runs["steps"] if s.get("id") == "scan")
    script = step["run"]
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    out, summary = tmp_path / "github_output", tmp_path / "step_summary"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "GILAUDIT_PATH": str(project), "GILAUDIT_FAIL_ON": "error", "GILAUDIT_BASELINE": "",
        "GILAUDIT_STRESS": "false", "GILAUDIT_STRESS_PYTHON": "",
        "GILAUDIT_SARIF": str(tmp_path / "gilaudit.sarif"),
        "RUNNER_TEMP": str(tmp_path), "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    if shutil.which("gilaudit", path=env["PATH"]) is None:
        pytest.skip("the gilaudit command is not installed beside this interpreter")
    proc = subprocess.run([bash, "-c", script], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr  # the step records the status, a later one fails
    assert "exit-code=1" in out.read_text()
    sarif = json.loads((tmp_path / "gilaudit.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    assert "spamcache" in summary.read_text()
    data = json.loads((tmp_path / "gilaudit.json").read_text())
    assert data["modules"][0]["verdict"] == "not declared"
