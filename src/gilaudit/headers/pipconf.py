"""The package index pip is configured to use, read from its environment variable and
configuration files as pip reads them (without running pip)."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

__all__ = ["DEFAULT_INDEX", "configured_index"]

DEFAULT_INDEX = "https://pypi.org/simple/"


def _config_files(env: dict[str, str]) -> list[Path]:
    """pip's configuration files, lowest priority first (global, user, then PIP_CONFIG_FILE)."""
    xdg_dirs = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    files = [Path(d) / "pip" / "pip.conf" for d in reversed(xdg_dirs) if d]
    files.append(Path("/etc/pip.conf"))
    home = Path(env.get("HOME", str(Path.home())))
    files.append(home / ".pip" / "pip.conf")
    files.append(Path(env.get("XDG_CONFIG_HOME", str(home / ".config"))) / "pip" / "pip.conf")
    if env.get("VIRTUAL_ENV"):
        files.append(Path(env["VIRTUAL_ENV"]) / "pip.conf")
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return files


def configured_index(env: dict[str, str] | None = None) -> str:
    """``PIP_INDEX_URL``, else the last ``index-url`` of the `[download]` or `[global]`
    section of pip's configuration files, else PyPI."""
    env = dict(os.environ) if env is None else env
    if env.get("PIP_INDEX_URL"):
        return env["PIP_INDEX_URL"].split()[0]
    found = DEFAULT_INDEX
    for path in _config_files(env):
        cfg = configparser.ConfigParser(interpolation=None)
        try:
            cfg.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in ("global", "download"):
            if cfg.has_option(section, "index-url"):
                found = cfg.get(section, "index-url").split()[0]
    return found
