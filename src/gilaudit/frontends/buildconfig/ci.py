"""What GitHub Actions workflows say about free-threading: the Python version matrices, the
cibuildwheel runs (with the settings in force for each), and whether any free-threaded
interpreter or build is mentioned anywhere.

Only values are read, never comments: a commented-out ``3.14t`` job does not count. Matrix
references in cibuildwheel's environment (``CIBW_BUILD: cp${{ matrix.py }}-*``) are expanded
with the matrix's values; any other expression makes that run's selection unknown.
"""

from __future__ import annotations

import itertools
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from gilaudit.frontends.buildconfig.cibw import PLATFORMS, CibwConfig, Setting, parse_version
from gilaudit.frontends.buildconfig.yamlread import YNode
from gilaudit.frontends.buildfiles import BuildFiles
from gilaudit.frontends.buildfiles.reader import find_line, join

__all__ = ["ENV_KEYS", "Matrix", "WorkflowFacts", "pyproject_settings", "read_workflow"]

# CIBW_* variables and the option each one sets.
ENV_KEYS = {
    "CIBW_BUILD": "build", "CIBW_SKIP": "skip", "CIBW_ENABLE": "enable",
    "CIBW_FREE_THREADED_SUPPORT": "free-threaded-support",
    "CIBW_PROJECT_REQUIRES_PYTHON": "requires-python", "CIBW_PLATFORM": "platform",
}
_TOML_KEYS = {
    "build": "build", "skip": "skip", "enable": "enable",
    "free-threaded-support": "free-threaded-support", "project-requires-python":
    "requires-python",
}
# Mentions of a free-threaded interpreter, wheel or run mode in a workflow value.
FT_MARK = re.compile(
    r"(?<![\w.])3\.\d{2}t\b|\bcp3\d{2}t\b|\bpython3\.\d{2}t\b|(?<![\w.])3\d{2}t\b|"
    r"\bPYTHON_GIL\b|-X\s*gil=0|free[-_ ]?thread|\bnogil\b|\bPy_GIL_DISABLED\b",
    re.IGNORECASE)
_VERSION_LIKE = re.compile(r"^(?:cp|pp|pypy-?|python)?3\.?\d{1,2}(?:\.\d+)?"
                           r"(?:t|-dev|t-dev|-?rc\d*|-?beta\.?\d*|-?alpha\.?\d*)?$", re.I)
_MATRIX_REF = re.compile(r"\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}")
_ANY_EXPR = re.compile(r"\$\{\{.*?\}\}")
_RUN_CIBW = re.compile(r"(?:^|[\s;&|(])(?:python3?\s+-m\s+|pipx\s+run\s+(?:--spec\s+\S+\s+)?|"
                       r"uvx\s+|uv\s+tool\s+run\s+)?cibuildwheel(?:==[\w.]+)?(?=\s|$|;)")
_INSTALL = re.compile(r"\b(?:pip3?|uv\s+pip|pipx|python3?\s+-m\s+pip)\s+install\b")
_PIN = re.compile(r"cibuildwheel(?:\[[^\]]*\])?\s*==\s*v?(\d+(?:\.\d+){0,2})")
_SHA_COMMENT = re.compile(r"#\s*v?(\d+\.\d+(?:\.\d+)?)")


@dataclass(frozen=True, kw_only=True, slots=True)
class Matrix:
    path: str
    line: int
    key: str
    values: tuple[str, ...]


@dataclass
class WorkflowFacts:
    path: str
    runs: list[tuple[CibwConfig, ...]] = field(default_factory=list)  # one tuple per run
    matrices: list[Matrix] = field(default_factory=list)
    free_threaded: bool = False


def _values(node: YNode | None) -> list[str]:
    if node is None:
        return []
    return [n.value for n in node.values() if n.kind == "scalar"]


def _split(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(w for v in value if isinstance(v, str) for w in v.split())
    if isinstance(value, bool):
        return ("true",) if value else ("false",)
    return ()


def _table_settings(table: dict[str, Any], text: str, header: str,
                    path: str) -> dict[str, Setting]:
    out: dict[str, Setting] = {}
    for key, option in _TOML_KEYS.items():
        if key not in table:
            continue
        value = table[key]
        line = find_line(text, rf"^\s*{re.escape(key)}\s*=", after=header)
        shown = f"{key} = {json.dumps(value)}" if isinstance(value, (list, str, bool)) \
            else f"{key} = {value!r}"
        out[option] = Setting(key=option, values=_split(value), text=shown, path=path, line=line)
    return out


def pyproject_settings(builds: BuildFiles,
                       path: str) -> tuple[dict[str, Setting], dict[str, dict[str, Setting]]]:
    """``[tool.cibuildwheel]`` options of one TOML file with their lines, and those of its
    ``[tool.cibuildwheel.<platform>]`` tables (which override them on that platform)."""
    data = builds.toml(path) or {}
    tool = data.get("tool", {})
    table = tool.get("cibuildwheel", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        return {}, {}
    text = builds.reader.text(path, count=False) or ""
    settings = _table_settings(table, text, r"^\[tool\.cibuildwheel\]", path)
    platforms: dict[str, dict[str, Setting]] = {}
    for platform in PLATFORMS:
        sub = table.get(platform)
        if isinstance(sub, dict):
            found = _table_settings(sub, text, rf"^\[tool\.cibuildwheel\.{platform}\]", path)
            if found:
                platforms[platform] = found
    return settings, platforms


def _matrix_values(job: YNode) -> tuple[dict[str, list[str]], dict[str, int], bool]:
    """key -> scalar values (from the key's list and from include entries), key -> line, and
    whether the matrix is fully visible (not built by an expression)."""
    strategy = job.get("strategy")
    matrix = strategy.get("matrix") if strategy is not None and strategy.kind == "map" else None
    values: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    if matrix is None:
        return values, lines, True
    if matrix.kind != "map":
        return values, lines, False
    for k, v in matrix.items:
        if k.value == "exclude":
            continue
        if k.value == "include":
            for entry in v.children if v.kind == "seq" else ():
                if entry.kind != "map":
                    continue
                for ek, ev in entry.items:
                    if ev.kind == "scalar":
                        values.setdefault(ek.value, []).append(ev.value)
                        lines.setdefault(ek.value, ek.line)
            continue
        if v.kind == "scalar" and _ANY_EXPR.search(v.value):
            return values, lines, False
        values.setdefault(k.value, []).extend(_values(v))
        lines.setdefault(k.value, k.line)
    return values, lines, True


def _env(node: YNode | None) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    if node is not None and node.kind == "map":
        for k, v in node.items:
            if v.kind == "scalar":
                out[k.value] = (v.value, k.line)
    return out


def _readable(value: str) -> str:
    """An expression-free rendering for messages: `cp${{ matrix.py }}-*` -> `cp<matrix.py>-*`."""
    return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", r"<\1>", value)


def _substitute(value: str, subst: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        return subst[m.group(1)]

    return _MATRIX_REF.sub(repl, value)


def _expand(value: str, matrix: dict[str, list[str]]) -> list[str] | None:
    """Every value ``${{ matrix.x }}`` references can take; None when another expression (or
    an unknown matrix key) is involved."""
    keys = sorted(set(_MATRIX_REF.findall(value)))
    if "${{" in _MATRIX_REF.sub("", value):
        return None
    if not keys:
        return [value]
    if any(k not in matrix or not matrix[k] for k in keys):
        return None
    out: list[str] = []
    for combo in itertools.islice(itertools.product(*(matrix[k] for k in keys)), 256):
        out.append(_substitute(value, dict(zip(keys, combo, strict=True))))
    return out


def _run_version(job_runs: list[str]) -> tuple[int, int, int] | None:
    for text in job_runs:
        m = _PIN.search(text)
        if m:
            return parse_version(m.group(1))
    return None


def _invocations(steps: list[YNode], raw_lines: list[str]) -> list[tuple[YNode, str, Any]]:
    """(step, symbol, version) for each step that runs cibuildwheel."""
    runs_text = [run.value for s in steps if s.kind == "map"
                 for run in (s.get("run"),) if run is not None and run.kind == "scalar"]
    out: list[tuple[YNode, str, Any]] = []
    for step in steps:
        if step.kind != "map":
            continue
        uses = step.get("uses")
        if uses is not None and uses.kind == "scalar" and uses.value.startswith(
                "pypa/cibuildwheel@"):
            ref = uses.value.split("@", 1)[1]
            version = parse_version(ref)
            if version is None and 0 < uses.line <= len(raw_lines):
                m = _SHA_COMMENT.search(raw_lines[uses.line - 1])
                version = parse_version(m.group(1)) if m else None
            out.append((step, uses.value, version))
            continue
        run = step.get("run")
        if run is not None and run.kind == "scalar":
            for line in run.value.splitlines():
                if _RUN_CIBW.search(line) and not _INSTALL.search(line):
                    out.append((step, "cibuildwheel", _run_version(runs_text)))
                    break
    return out


def read_workflow(path: str, root: YNode, raw: str, builds: BuildFiles,
                  requires_python: str | None) -> WorkflowFacts:
    facts = WorkflowFacts(path=path)
    facts.free_threaded = any(FT_MARK.search(n.value) for n in root.scalars())
    jobs = root.get("jobs")
    if jobs is None or jobs.kind != "map":
        return facts
    raw_lines = raw.splitlines()
    wf_env = _env(root.get("env"))
    for _job_key, job in jobs.items:
        if job.kind != "map":
            continue
        matrix, key_lines, visible = _matrix_values(job)
        steps_node = job.get("steps")
        steps = list(steps_node.children) if steps_node is not None and \
            steps_node.kind == "seq" else []
        setup_refs: set[str] = set()
        for step in steps:
            uses = step.get("uses") if step.kind == "map" else None
            with_ = step.get("with") if step.kind == "map" else None
            if uses is not None and re.match(r"(actions/setup-python|astral-sh/setup-uv|"
                                             r"conda-incubator/setup-miniconda|"
                                             r"mamba-org/setup-micromamba)@", uses.value):
                pv = with_.get("python-version") if with_ is not None else None
                if pv is not None and pv.kind == "scalar":
                    setup_refs |= set(_MATRIX_REF.findall(pv.value))
        for key, vals in matrix.items():
            pythonish = "py" in key.lower() or key in setup_refs
            if pythonish and vals and any(_VERSION_LIKE.match(v.strip()) for v in vals):
                facts.matrices.append(Matrix(path=path, line=key_lines.get(key, job.line),
                                             key=key, values=tuple(vals)))
        job_env = _env(job.get("env"))
        for step, symbol, version in _invocations(steps, raw_lines):
            facts.runs.append(_configs(path, step, symbol, version, builds,
                                       {**wf_env, **job_env}, matrix if visible else {},
                                       requires_python))
    return facts


def _configs(path: str, step: YNode, symbol: str, version: Any, builds: BuildFiles,
             outer_env: dict[str, tuple[str, int]], matrix: dict[str, list[str]],
             requires_python: str | None) -> tuple[CibwConfig, ...]:
    with_ = step.get("with")
    package_dir = ""
    config_file = ""
    only: tuple[str, int] | None = None
    if with_ is not None and with_.kind == "map":
        pd = with_.get("package-dir")
        package_dir = pd.value.strip().strip("./") if pd is not None and pd.kind == "scalar" \
            else ""
        cf = with_.get("config-file")
        config_file = cf.value.strip() if cf is not None and cf.kind == "scalar" else ""
        on = with_.get("only")
        if on is not None and on.kind == "scalar":
            key = with_.key_node("only")
            only = (on.value, key.line if key is not None else on.line)
    toml_path = posixpath.normpath(config_file.replace("{package}", package_dir or ".")) \
        if config_file else join(package_dir, "pyproject.toml")
    base, platforms = pyproject_settings(builds, toml_path) if builds.reader.has(toml_path) \
        else ({}, {})
    env = {**outer_env, **_env(step.get("env"))}
    run = step.get("run")
    unknown = bool(run is not None and run.kind == "scalar" and (
        ("GITHUB_ENV" in run.value and "CIBW_" in run.value) or "--only" in run.value
        or re.search(r"\bCIBW_\w+=", run.value)))
    # Each env value expands over the matrix; the configurations are their product.
    options: list[list[Setting]] = []
    for var, (value, line) in sorted(env.items()):
        option = ENV_KEYS.get(var)
        if option is None:
            continue
        expanded = _expand(value, matrix)
        shown = f"{var}: {_readable(value)}"
        if expanded is None:
            options.append([Setting(key=option, values=(), text=shown, path=path,
                                    line=line, unknown=True)])
        else:
            options.append([Setting(key=option, values=tuple(v.split()),
                                    text=shown, path=path, line=line)
                            for v in dict.fromkeys(expanded)])
    if run is not None and run.kind == "scalar":
        m = re.search(r"--platform[=\s]+([\w-]+)", run.value)
        if m:
            options.append([Setting(key="platform", values=(m.group(1),),
                                    text=f"--platform {m.group(1)}", path=path, line=run.line)])
    if only is not None:
        expanded = _expand(only[0], matrix)
        shown = f"only: {_readable(only[0])}"
        if expanded is None:
            options.append([Setting(key="only", values=(), text=shown, path=path, line=only[1],
                                    unknown=True)])
        else:
            options.append([Setting(key="only", values=tuple(v.split()), text=shown, path=path,
                                    line=only[1]) for v in dict.fromkeys(expanded)])
    configs: list[CibwConfig] = []
    for combo in itertools.islice(itertools.product(*options), 256):
        env_settings = {s.key: s for s in combo}
        configs.append(CibwConfig(
            path=path, line=step.line, symbol=symbol, version=version, settings=base,
            platforms=platforms, env=env_settings, requires_python=requires_python,
            unknown=unknown or any(s.unknown for s in env_settings.values())))
    return tuple(configs)
