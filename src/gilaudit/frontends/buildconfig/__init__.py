"""The build-configuration front end: packaging and CI settings that decide whether
free-threaded wheels are built and tested at all.

Rules: FT138 (Limited API requested on every interpreter), FT139 (cibuildwheel's free-threaded
configuration), FT143 (CI tests a Python matrix with no free-threaded job). Workflows are read
with PyYAML's safe composer and TOML with tomllib; nothing is run. FT140 (requires-python
excluding free-threaded versions) belongs to the wheel and metadata front end.
"""

from __future__ import annotations

import re

from gilaudit.frontends.buildconfig.ci import (
    FT_MARK,
    WorkflowFacts,
    pyproject_settings,
    read_workflow,
)
from gilaudit.frontends.buildconfig.cibw import CibwConfig
from gilaudit.frontends.buildconfig.limited import check_limited
from gilaudit.frontends.buildconfig.rules import cibw_hits, no_ft_ci_hit, selects_free_threaded
from gilaudit.frontends.buildconfig.yamlread import YamlError, load_yaml
from gilaudit.frontends.buildfiles import BuildFiles
from gilaudit.frontends.buildfiles.reader import Reader, find_line, hash_suppressions
from gilaudit.frontends.contract import FrontEndResult, Hit, TargetView

__all__ = ["RULES", "analyse"]

RULES = frozenset({"FT138", "FT139", "FT143"})
_WORKFLOW = re.compile(r"(?:^|/)\.github/workflows/[^/]+\.ya?ml$")
# Other CI systems and runners: a free-threaded mention there means free-threaded CI exists.
_OTHER_CI = re.compile(r"(?:^|/)(?:\.gitlab-ci\.yml|azure-pipelines\.ya?ml|"
                       r"\.circleci/config\.ya?ml|\.cirrus\.ya?ml|appveyor\.ya?ml|\.travis\.ya?ml|tox\.ini|noxfile\.py|"
                       r"\.github/(?!workflows/)[^\s]*\.ya?ml|\.buildkite/[^/]+\.ya?ml)$")
_COMMENT = re.compile(r"(?:^|(?<=\s))#.*$", re.MULTILINE)
_REUSABLE = re.compile(r"^[\w.-]+/[\w.-]+/\.github/workflows/")


def _owned(path: str) -> bool:
    return bool(_WORKFLOW.search(path) or _OTHER_CI.search(path))


def _workflows(reader: Reader, builds: BuildFiles,
               requires_python: str | None) -> tuple[list[WorkflowFacts], bool]:
    """Facts of every workflow, and whether some job's steps are out of sight (a reusable
    workflow from another repository)."""
    facts: list[WorkflowFacts] = []
    hidden = False
    for path in reader.paths:
        if not _WORKFLOW.search(path):
            continue
        text = reader.text(path)
        if text is None:
            continue
        try:
            root = load_yaml(text)
        except YamlError as exc:
            reader.fail(path, "ci-config", f"not valid YAML: {exc}", exc.line)
            continue
        reader.parsed(path)
        if root is None or root.kind != "map":
            continue
        jobs = root.get("jobs")
        if jobs is not None and jobs.kind == "map":
            for _k, job in jobs.items:
                uses = job.get("uses") if job.kind == "map" else None
                if uses is not None and uses.kind == "scalar" and _REUSABLE.match(uses.value):
                    hidden = True
        facts.append(read_workflow(path, root, text, builds, requires_python))
    return facts, hidden


def _other_ci_mentions_ft(reader: Reader) -> bool:
    for path in reader.paths:
        if _OTHER_CI.search(path) and not _WORKFLOW.search(path):
            text = reader.text(path, count=False) or ""
            if FT_MARK.search(_COMMENT.sub("", text)):
                return True
    return False


def _pyproject_only(reader: Reader, builds: BuildFiles,
                    requires_python: str | None) -> list[tuple[CibwConfig, ...]]:
    """cibuildwheel configured in pyproject.toml but run by no workflow we can see."""
    path = "pyproject.toml"
    if not reader.has(path):
        return []
    data = builds.toml(path) or {}
    tool = data.get("tool", {})
    if not isinstance(tool, dict) or "cibuildwheel" not in tool:
        return []
    text = reader.text(path, count=False) or ""
    line = find_line(text, r"^\[tool\.cibuildwheel")
    settings, platforms = pyproject_settings(builds, path)
    return [(CibwConfig(path=path, line=line, symbol="[tool.cibuildwheel]", version=None,
                        settings=settings, platforms=platforms,
                        requires_python=requires_python),)]


def analyse(view: TargetView) -> FrontEndResult:
    selected = view.config.selected
    if not RULES & selected:
        return FrontEndResult()
    reader = Reader(view)
    # The bindings front end reports malformed build files; this one stays quiet about them.
    builds = BuildFiles(reader=reader, report=False)
    hits: list[Hit] = []
    if "FT138" in selected:
        hits += check_limited(builds)
    workflows, hidden = _workflows(reader, builds, view.build.requires_python)
    runs = [r for wf in workflows for r in wf.runs]
    if not runs:
        runs = _pyproject_only(reader, builds, view.build.requires_python)
    hits += cibw_hits(runs)
    ft_ci = (any(wf.free_threaded for wf in workflows)
             or any(selects_free_threaded(r) for r in runs) or _other_ci_mentions_ft(reader))
    if not ft_ci and not hidden:
        hit = no_ft_ci_hit([m for wf in workflows for m in wf.matrices])
        if hit is not None:
            hits.append(hit)
    suppressions = {}
    for path in sorted({h.path for h in hits} | {wf.path for wf in workflows}):
        text = reader.text(path, count=False)
        if text is not None:
            suppressions[path] = hash_suppressions(text)
    # Build files are the bindings front end's to report on; this one owns the CI files.
    files = {p: s for p, s in reader.status.items() if _owned(p)}
    return FrontEndResult(
        hits=tuple(h for h in hits if h.rule in selected),
        diagnostics=tuple(d for d in reader.diagnostics if d.path is None or _owned(d.path)),
        files=files,
        suppressions=suppressions,
        lines=reader.lines,
    )
