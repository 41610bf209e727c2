"""Stand-in parse functions for the worker-pool tests (imported by spawned workers)."""

from __future__ import annotations

import os
import time

from gilaudit.frontends.c.facts import FileFacts
from gilaudit.frontends.c.job import ParseJob, empty_facts


def crash_on_bad(job: ParseJob) -> FileFacts:
    if "bad" in job.rel:
        os.abort()  # what a libclang segfault looks like from the parent
    return empty_facts(job.rel, [], lines=7)


def hang_on_bad(job: ParseJob) -> FileFacts:
    if "bad" in job.rel:
        time.sleep(60)
    return empty_facts(job.rel, [], lines=7)
