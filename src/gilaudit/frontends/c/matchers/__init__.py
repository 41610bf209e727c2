"""The matchers: pure functions from one file's facts (and the project index) to hits.

``REGISTRY`` maps each matcher to the rule ids it can report; the engine runs a matcher only
when one of its rules is selected, and a meta-test checks every catalogue rule is covered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from gilaudit.frontends.c.context import ProjectIndex
from gilaudit.frontends.c.facts import FileFacts
from gilaudit.frontends.c.matchers import (
    borrowed,
    internals,
    locking,
    module_declaration,
    removed_api,
    state,
)
from gilaudit.frontends.contract import Hit

__all__ = ["REGISTRY", "Matcher"]

Matcher = Callable[[FileFacts, ProjectIndex, frozenset[str]], Iterator[Hit]]

REGISTRY: tuple[tuple[Matcher, frozenset[str]], ...] = (
    (module_declaration.match_mod_gil_slots, frozenset({"FT001", "FT004", "FT005", "FT006"})),
    (module_declaration.match_module_create, frozenset({"FT002", "FT009"})),
    (module_declaration.match_setgil_guard, frozenset({"FT003", "FT005"})),
    (borrowed.match_borrowed_container,
     frozenset({"FT010", "FT011", "FT012", "FT013", "FT019"})),
    (borrowed.match_weakref, frozenset({"FT016", "FT019"})),
    (borrowed.match_borrowed_globals, frozenset({"FT017", "FT023", "FT024"})),
    (borrowed.match_cell_get, frozenset({"FT018"})),
    (borrowed.match_dict_next, frozenset({"FT014"})),
    (borrowed.match_sequence_fast, frozenset({"FT020"})),
    (borrowed.match_set_item_macro, frozenset({"FT022"})),
    (internals.match_member_tokens, frozenset({"FT030", "FT031", "FT036"})),
    (internals.match_object_state, frozenset({"FT033", "FT034", "FT074"})),
    (state.match_static_writes, frozenset({"FT040"})),
    (state.match_lazy_init, frozenset({"FT041", "FT042"})),
    (state.match_libc, frozenset({"FT046"})),
    (locking.match_cs_scope, frozenset({"FT060"})),
    (locking.match_cs_nesting, frozenset({"FT061", "FT063"})),
    (locking.match_allow_threads, frozenset({"FT071", "FT083"})),
    (locking.match_detached_fields, frozenset({"FT048"})),
    (locking.match_legacy_lock, frozenset({"FT066"})),
    (removed_api.match_removed_api, frozenset({"FT145"})),
)
