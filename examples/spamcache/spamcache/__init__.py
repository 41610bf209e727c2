"""spamcache: a small LRU cache and configuration helpers written in C."""

from ._spam import (
    LRU,
    checksum,
    config_summary,
    configure,
    counters,
    dump_config,
    get_option,
    parse_spec,
)

__all__ = [
    "LRU",
    "checksum",
    "config_summary",
    "configure",
    "counters",
    "dump_config",
    "get_option",
    "parse_spec",
]
