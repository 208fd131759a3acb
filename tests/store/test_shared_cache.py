"""`store.base.SharedCache`, the cache API the identity stores use, is satisfied by diskcache itself (issue 19 item
6). mypy checks bangui's own two implementations (Announcing, RedisCache); diskcache ships no type information,
so its signatures are checked here: every member of the protocol exists and accepts the protocol's calls."""

from __future__ import annotations

import inspect

import diskcache

from store.base import SharedCache
from store.redis_backend import RedisCache


def members() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(getattr(SharedCache, name)) for name in dir(SharedCache)
            if not name.startswith("_") and callable(getattr(SharedCache, name))}


def accepts(implementation: inspect.Signature, protocol: inspect.Signature) -> bool:
    """Can `implementation` be called with every argument of `protocol`, positionally and by name alike?"""
    params = [p for p in protocol.parameters.values() if p.name != "self"]
    positional = ["x"] * len(params)
    named = {p.name: "x" for p in params}
    try:
        implementation.bind("self", *positional)
        implementation.bind("self", **named)
    except TypeError:
        return False
    return True


def test_the_protocol_names_what_the_stores_use() -> None:
    assert set(members()) == {"get", "set", "add", "delete", "evict", "iterkeys", "transact", "expire", "close"}


def test_diskcache_satisfies_the_protocol() -> None:
    for name, signature in members().items():
        assert accepts(inspect.signature(getattr(diskcache.Cache, name)), signature), name


def test_redis_backend_satisfies_the_protocol() -> None:
    for name, signature in members().items():
        assert accepts(inspect.signature(getattr(RedisCache, name)), signature), name


def test_the_check_refuses_a_narrower_signature() -> None:
    def get(self: object, key: str) -> None: ...

    assert not accepts(inspect.signature(get), members()["get"])
