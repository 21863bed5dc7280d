"""A cheaper ``__init__`` for the engine's frozen attrs value classes (events, decisions).

attrs builds a frozen class's ``__init__`` on ``object.__setattr__``, bound anew for every
instance, one call per field: the price of most of an event's construction, which a live feed
pays for every fact it reports. :func:`fast_init` replaces it with one of the same signature
(names, order, defaults, keyword-only fields, annotations) that stores each field through its
slot's own descriptor, which skips the frozen ``__setattr__`` the same way and costs less than
half as much. Nothing else of the class changes: it stays frozen, its ``repr``, equality, hash,
fields and serialised forms are attrs's own.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

__all__ = ["fast_init"]

T = TypeVar("T", bound=type)


def fast_init(cls: T) -> T:
    """Give the frozen, slotted attrs class ``cls`` an equivalent, faster ``__init__``.

    Only for plain fields (no validator, converter, factory, alias or ``init=False``) and no
    ``__attrs_pre_init__``/``__attrs_post_init__`` hook: anything else raises TypeError when the
    class is defined, so a new field kind or hook is never skipped.
    """
    for hook in ("__attrs_pre_init__", "__attrs_post_init__"):
        if hasattr(cls, hook):  # attrs's __init__ calls it; this one would not
            raise TypeError(f"fast_init cannot build {cls.__qualname__}: it has {hook}")
    fields = attrs.fields(cls)
    positional: list[str] = []
    keyword: list[str] = []
    scope: dict[str, Any] = {}
    body: list[str] = []
    for field in fields:
        name = field.name
        slot = cls.__dict__.get(name)
        if (
            field.validator is not None
            or field.converter is not None
            or not field.init
            or field.alias != name
            or isinstance(field.default, attrs.Factory)  # type: ignore[arg-type]
            or slot is None
            or not hasattr(slot, "__set__")
        ):
            raise TypeError(f"fast_init cannot build {cls.__qualname__}.{name}: not a plain slot")
        param = name
        if field.default is not attrs.NOTHING:
            scope[f"_default_{name}"] = field.default
            param = f"{name}=_default_{name}"
        (keyword if field.kw_only else positional).append(param)
        scope[f"_set_{name}"] = slot.__set__
        body.append(f"    _set_{name}(self, {name})\n")
    params = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({params}):\n" + ("".join(body) or "    pass\n")
    exec(compile(source, f"<fast __init__ of {cls.__qualname__}>", "exec"), scope)
    init = scope["__init__"]
    old = vars(cls)["__init__"]
    init.__qualname__ = old.__qualname__
    init.__module__ = old.__module__
    init.__doc__ = f"Set every field of {cls.__name__} (what the __init__ attrs makes does)."
    init.__annotations__ = dict(old.__annotations__)
    cls.__init__ = init  # type: ignore[misc]
    return cls
