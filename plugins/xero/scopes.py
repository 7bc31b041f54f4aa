"""OAuth2 scopes: which scope each entity needs, and the set a connection requests.

Xero has two scope families. Apps created since March 2026 can only use *granular* scopes
(``accounting.invoices.read``); older apps use *broad* ones (``accounting.transactions.read``) until
2027. The entity registry records both; this module turns a connection's choice (``granular``,
``broad`` or an explicit list) into the scopes to request and names the scope an entity is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from xero.entities import ENTITIES, Entity

#: Needed to receive a refresh token on the authorization-code grant.
OFFLINE_ACCESS = "offline_access"

ScopeFamily = Literal["granular", "broad"]
FAMILIES: tuple[ScopeFamily, ...] = ("granular", "broad")


def entity_scopes(entity: Entity) -> tuple[str, str]:
    """Return the ``(granular, broad)`` read scopes of ``entity``."""
    return entity.granular_scope, entity.broad_scope


def scope_for(entity: Entity, family: ScopeFamily) -> str:
    """Return the read scope ``entity`` needs in ``family``."""
    granular, broad = entity_scopes(entity)
    return granular if family == "granular" else broad


def requested_scopes(
    scopes: ScopeFamily | Sequence[str],
    entities: Iterable[Entity] | None = None,
    *,
    offline_access: bool = True,
) -> list[str]:
    """Return the scopes to request, in a stable order without duplicates.

    :param scopes: a family name, or an explicit list used as given.
    :param entities: the entities to read; all known entities by default.
    :param offline_access: add ``offline_access`` (authorization-code grant, to get a refresh token).
    """
    if isinstance(scopes, str):
        if scopes not in FAMILIES:
            raise ValueError(f"unknown scope family {scopes!r}; use one of {', '.join(FAMILIES)} or a list")
        chosen = [scope_for(e, scopes) for e in (ENTITIES.values() if entities is None else entities)]
    else:
        chosen = [s for s in scopes if s != OFFLINE_ACCESS]
    head = [OFFLINE_ACCESS] if offline_access else []
    return list(dict.fromkeys([*head, *chosen]))


def missing_scope_hint(entity: Entity | None, scopes: ScopeFamily | Sequence[str]) -> str:
    """Return a sentence naming the scope ``entity`` needs, for an authorisation error."""
    if entity is None:
        return "check the scopes granted to the app"
    granular, broad = entity_scopes(entity)
    if scopes == "granular" or scopes == "broad":
        need = scope_for(entity, scopes)
        return f"{entity.path} needs scope {need!r} ({scopes} scopes)"
    return f"{entity.path} needs scope {granular!r} (granular) or {broad!r} (broad)"
