"""One table from an error's kind to its HTTP status (issue 19 item 3): no error class anywhere names a status of
its own, each takes its kind's from `errors.STATUS`, and an error crosses the fleet as the same kind and code."""

from __future__ import annotations

import importlib
import pkgutil

import errors
from core.install import TOP_LEVEL
from errors import STATUS, AppError, NoAnswer, NotFound, RateLimited, portable, revived

NEVER_IMPORTED = {"f2b.engine"}  # runs in fail2ban's own interpreter


def every_error_class() -> set[type[AppError]]:
    for top in TOP_LEVEL:
        module = importlib.import_module(top)
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{top}."):
            if info.name not in NEVER_IMPORTED:
                importlib.import_module(info.name)
    found: set[type[AppError]] = set()
    todo = [AppError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_no_error_class_names_a_status_of_its_own() -> None:
    classes = every_error_class()
    assert len(classes) > 30  # the walk saw the tree's errors (f2b, store, f2bconfig, fleet, ...)
    own = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if c is not AppError and "status" in vars(c))
    assert own == [], "give these a kind from errors.py instead of a status"


def test_every_error_class_has_the_status_of_its_kind() -> None:
    kinds = {c for c in STATUS if c.__module__ == "errors"}
    assert kinds == {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, AppError)}
    from f2b.client import Fail2BanCommandError, JailNotFound
    from store.faults import StorageFull

    assert JailNotFound("x").status == 404 and StorageFull("x").status == 507
    assert Fail2BanCommandError("x").status == 502


def test_an_error_crosses_the_fleet_as_the_same_kind_and_code() -> None:
    from fleet.rpc import HostUnreachable

    again = revived(portable(HostUnreachable("late")), host="h2")
    assert isinstance(again, NoAnswer) and (again.status, again.code, again.message) == (504, "host_unreachable",
                                                                                          "late")
    assert again.details == {"host": "h2"}
    assert isinstance(revived(portable(NotFound("gone", code="jail_not_found"))), NotFound)
    limited = revived(portable(RateLimited("slow down", 5)))
    assert isinstance(limited, RateLimited) and limited.status == 429
