"""Lenses: typed views of one sample type as another, and a registry that finds a path between them.

A lens is a getter ``def f(src: A) -> B`` (its types come from the annotations) with an optional
putter ``def put(view: B, source: A) -> A`` that writes a changed view back. ``Dataset.as_type(B)``
asks the registry for a lens from its sample type to ``B``: a registered one, a composition of
registered ones through intermediate types (the shortest chain), the automatic lens from the
schema-free ``DictSample`` to any ``@packable`` type, or, as a last resort, a structural lens
between packable types whose fields match by name.

Lenses published to an index carry a ``CodeRef`` (repository, commit, path) so people can find the
code; a lens record read from the network is only ever that reference. Nothing here imports or
runs code named by a record: a lens exists only when Python code in this process defines it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import typing
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, Generic, TypeVar

import numpy as np

from .errors import AtdataError, LensError
from .samples import DictSample, FieldSpec, PackableSample, encode_ndarray, is_packable_type

S = TypeVar("S")
V = TypeVar("V")

Getter = Callable[[Any], Any]
Putter = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class CodeRef:
    """Where a lens's code lives, for people to read: never fetched, imported or executed."""

    repository: str
    commit: str
    path: str
    branch: str | None = None
    language: str = "python"

    def to_record(self) -> dict[str, str]:
        """The ``{repository, commit, path, branch?, language?}`` shape of lens records."""
        out = {"repository": self.repository, "commit": self.commit, "path": self.path}
        if self.branch:
            out["branch"] = self.branch
        if self.language:
            out["language"] = self.language
        return out

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> CodeRef:
        """Read a code reference from a record (untrusted: only checked strings are kept)."""
        if not isinstance(data, Mapping):
            raise LensError(f"a lens code reference must be a map, got {type(data).__name__}")
        values: dict[str, str | None] = {}
        for key in ("repository", "commit", "path", "branch", "language"):
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > 2048):
                raise LensError(f"lens code reference field {key!r} must be a short string")
            values[key] = value
        for key in ("repository", "commit", "path"):
            if not values[key]:
                raise LensError(f"lens code reference lacks {key!r}")
        return cls(
            repository=values["repository"] or "",
            commit=values["commit"] or "",
            path=values["path"] or "",
            branch=values["branch"],
            language=values["language"] or "python",
        )


def _keep_key(source: Any, out: Any) -> None:
    """A view keeps its source sample's key (unless a lens set one, or the type cannot hold it)."""
    key = getattr(source, "__key__", None)
    if key is not None and getattr(out, "__key__", None) is None:
        with contextlib.suppress(AttributeError):
            out.__key__ = key


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", None) or repr(t)


class Lens(Generic[S, V]):
    """A view of ``source``-typed samples as ``view``-typed ones, and back when it has a putter.

    Calling a lens applies its getter. Failures inside user code become ``LensError`` naming the
    lens; the view keeps the source sample's ``__key__``.
    """

    def __init__(
        self,
        getter: Callable[[S], V],
        source: type[S],
        view: type[V],
        *,
        name: str | None = None,
        putter: Callable[[V, S], S] | None = None,
        code_ref: CodeRef | None = None,
        putter_code_ref: CodeRef | None = None,
        kind: str = "user",
    ) -> None:
        self.source = source
        self.view = view
        self.name = name or getattr(getter, "__name__", "lens")
        self.code_ref = code_ref
        self.putter_code_ref = putter_code_ref
        #: ``user`` (registered), ``identity``, ``auto`` (DictSample), ``structural``, ``composed``.
        self.kind = kind
        self._getter = getter
        self._putter = putter

    def __reduce__(self) -> Any:
        # Datasets carry their lenses into DataLoader workers, so lenses must pickle. Built-in
        # lenses are closures: rebuild them from their types. A decorated lens replaced its
        # function in the module, so it is found again by that name.
        if self.kind in ("identity", "auto", "structural"):
            return (_builtin_lens, (self.kind, self.source, self.view))
        module = getattr(self._getter, "__module__", None)
        qualname = getattr(self._getter, "__qualname__", "")
        if self.kind == "user" and module and "<locals>" not in qualname:
            found: Any = sys.modules.get(module)
            for part in qualname.split("."):
                found = getattr(found, part, None)
            if found is self:
                return (_lens_by_name, (module, qualname))
        return super().__reduce__()

    def __repr__(self) -> str:
        arrow = "⇄" if self._putter is not None else "→"
        return f"<Lens {self.name}: {_type_name(self.source)} {arrow} {_type_name(self.view)}>"

    @property
    def has_putter(self) -> bool:
        return self._putter is not None

    def putter(self, fn: Callable[[V, S], S]) -> Callable[[V, S], S]:
        """Decorator: set ``fn(view, source) -> source`` as this lens's putter (returns ``fn``)."""
        try:
            hints = _hints(fn, sys._getframe(1))
        except NameError:  # annotations naming classes we cannot see: skip the check
            hints = {}
        params = _parameter_names(fn)
        if len(params) != 2:
            raise TypeError(
                f"putter {getattr(fn, '__name__', fn)!r} must take (view, source), "
                f"got {len(params)} parameters"
            )
        for param, want in zip(params, (self.view, self.source), strict=True):
            got = hints.get(param)
            if got is not None and got is not want:
                raise TypeError(
                    f"putter {fn.__name__}: parameter {param!r} is annotated {_type_name(got)}, "
                    f"but lens {self.name} maps {_type_name(self.source)} → "
                    f"{_type_name(self.view)}"
                )
        self._putter = fn
        return fn

    def get(self, source: S) -> V:
        """Apply the getter."""
        try:
            out = self._getter(source)
        except AtdataError:
            raise
        except Exception as exc:
            raise LensError(
                f"lens {self.name} ({_type_name(self.source)} → {_type_name(self.view)}) "
                f"failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(out, self.view):
            raise LensError(
                f"lens {self.name} returned {type(out).__name__}, not {_type_name(self.view)}"
            )
        _keep_key(source, out)
        return out

    __call__ = get

    def put(self, view: V, source: S) -> S:
        """Write ``view`` back into (a copy of) ``source``; ``LensError`` without a putter."""
        if self._putter is None:
            raise LensError(
                f"lens {self.name} ({_type_name(self.source)} → {_type_name(self.view)}) has no "
                "putter: decorate one with @<lens>.putter"
            )
        try:
            out = self._putter(view, source)
        except AtdataError:
            raise
        except Exception as exc:
            raise LensError(
                f"putter of lens {self.name} failed: {type(exc).__name__}: {exc}"
            ) from exc
        _keep_key(source, out)
        return out


class ComposedLens(Lens[Any, Any]):
    """A chain of lenses applied in order; it has a putter when every step has one."""

    def __init__(self, steps: list[Lens[Any, Any]]) -> None:
        if not steps:
            raise ValueError("a composed lens needs at least one step")
        self.steps = list(steps)
        super().__init__(
            self._get_all,
            steps[0].source,
            steps[-1].view,
            name=" → ".join(str(step.name) for step in steps),
            putter=self._put_all if all(s.has_putter for s in steps) else None,
            kind="composed",
        )

    def _get_all(self, source: Any) -> Any:
        value = source
        for step in self.steps:
            value = step.get(value)
        return value

    def _put_all(self, view: Any, source: Any) -> Any:
        sources = [source]
        for step in self.steps[:-1]:
            sources.append(step.get(sources[-1]))
        value = view
        for step, original in zip(reversed(self.steps), reversed(sources), strict=True):
            value = step.put(value, original)
        return value


# --- declaring lenses ------------------------------------------------------------------------------


def _parameter_names(fn: Callable[..., Any]) -> list[str]:
    code = getattr(fn, "__code__", None)
    if code is None:
        import inspect

        return list(inspect.signature(fn).parameters)
    return list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])


def _hints(fn: Callable[..., Any], frame: FrameType | None) -> dict[str, Any]:
    """Resolved annotations; string annotations may name classes local to the defining frame."""
    try:
        return typing.get_type_hints(fn)
    except NameError:
        if frame is None:
            raise
        return typing.get_type_hints(fn, localns=dict(frame.f_locals))


def _endpoints(fn: Callable[..., Any], frame: FrameType | None) -> tuple[type, type]:
    name = getattr(fn, "__name__", repr(fn))
    params = _parameter_names(fn)
    if len(params) != 1:
        raise TypeError(f"lens getter {name!r} must take exactly one parameter (the source)")
    try:
        hints = _hints(fn, frame)
    except NameError as exc:
        raise TypeError(f"lens getter {name!r}: cannot resolve its annotations ({exc})") from None
    source = hints.get(params[0])
    view = hints.get("return")
    if source is None or view is None:
        raise TypeError(f"lens getter {name!r} needs annotations: def {name}(src: Source) -> View")
    for role, t in (("source", source), ("view", view)):
        if not is_packable_type(t):
            raise TypeError(
                f"lens getter {name!r}: its {role} type {_type_name(t)} is not a @packable "
                "class or DictSample"
            )
    return source, view


def lens(
    fn: Callable[[Any], Any] | None = None,
    /,
    *,
    name: str | None = None,
    code_ref: CodeRef | None = None,
    registry: LensRegistry | None = None,
) -> Any:
    """Decorator: turn ``def f(src: A) -> B`` into a ``Lens`` and register it.

    Use as ``@lens`` or ``@lens(name=..., code_ref=..., registry=...)``; add a putter with
    ``@f.putter``. Registers in the default registry unless ``registry`` is given.
    """
    frame = sys._getframe(1)

    def wrap(fn: Callable[[Any], Any]) -> Lens[Any, Any]:
        source, view = _endpoints(fn, frame)
        made: Lens[Any, Any] = Lens(fn, source, view, name=name, code_ref=code_ref)
        (registry if registry is not None else default_registry).register(made)
        return made

    return wrap if fn is None else wrap(fn)


# --- automatic lenses ------------------------------------------------------------------------------


def _fields(t: Any) -> list[FieldSpec]:
    return list(t.fields()) if isinstance(t, type) and issubclass(t, PackableSample) else []


def _dict_to_packable(view: type[PackableSample]) -> Lens[Any, Any]:
    specs = _fields(view)
    bytes_fields = [
        s.name for s in specs if s.type.kind == "primitive" and s.type.primitive == "bytes"
    ]

    def get(src: DictSample) -> Any:
        data = src.to_dict()
        # DictSample decodes any bin that parses as an NDArray; a bytes field gets its bytes back
        for name in bytes_fields:
            value = data.get(name)
            if isinstance(value, np.ndarray):
                data[name] = encode_ndarray(value)
        return view.from_data(data)

    def put(v: Any, source: DictSample) -> DictSample:
        return DictSample({**source.to_dict(), **{s.name: getattr(v, s.name) for s in specs}})

    return Lens(get, DictSample, view, name=f"DictSample→{view.__name__}", putter=put, kind="auto")


def _packable_to_dict(source: type[PackableSample]) -> Lens[Any, Any]:
    specs = _fields(source)

    def get(src: Any) -> DictSample:
        return DictSample({s.name: getattr(src, s.name) for s in specs})

    def put(v: DictSample, original: Any) -> Any:
        data = {s.name: getattr(original, s.name) for s in specs}
        data.update({k: value for k, value in v.items() if k in data})
        return source.from_data(data)

    return Lens(
        get, source, DictSample, name=f"{source.__name__}→DictSample", putter=put, kind="auto"
    )


def _compatible(want: FieldSpec, have: FieldSpec) -> bool:
    a, b = want.type, have.type
    if a.kind == "any" or b.kind == "any":
        return True
    if a.kind != b.kind:
        return False
    if a.kind == "primitive":
        return a.primitive == b.primitive or (a.primitive == "float" and b.primitive == "int")
    if a.kind == "array" and a.items is not None and b.items is not None:
        return a.items.kind == b.items.kind or "any" in (a.items.kind, b.items.kind)
    return True


def structural_mismatch(source: type, view: type) -> str | None:
    """Why no structural lens joins two packable types (``None`` when one does).

    Structural means: every field of ``view`` without a default exists in ``source`` under the
    same name with a compatible type (int widens to float), and they share at least one field.
    """
    if not (_fields(source) and _fields(view)):
        return "structural lenses join two @packable types"
    have = {s.name: s for s in _fields(source)}
    missing, clashing, common = [], [], 0
    for spec in _fields(view):
        other = have.get(spec.name)
        if other is None:
            if not (spec.optional or spec.has_default):
                missing.append(spec.name)
            continue
        common += 1
        if not _compatible(spec, other):
            clashing.append(f"{spec.name} ({other.describe()} vs {spec.describe()})")
    problems = []
    if missing:
        problems.append(f"{_type_name(source)} lacks {', '.join(missing)}")
    if clashing:
        problems.append(f"types differ for {', '.join(clashing)}")
    if not common and not problems:
        problems.append("they share no field")
    return "; ".join(problems) or None


def _structural(source: type[PackableSample], view: type[PackableSample]) -> Lens[Any, Any]:
    view_names = {s.name for s in _fields(view)}
    common = [s.name for s in _fields(source) if s.name in view_names]
    source_names = [s.name for s in _fields(source)]

    def get(src: Any) -> Any:
        return view.from_data({name: getattr(src, name) for name in common})

    def put(v: Any, original: Any) -> Any:
        data = {name: getattr(original, name) for name in source_names}
        data.update({name: getattr(v, name) for name in common})
        return source.from_data(data)

    return Lens(
        get,
        source,
        view,
        name=f"{source.__name__}≈{view.__name__}",
        putter=put,
        kind="structural",
    )


def _identity(t: type) -> Lens[Any, Any]:
    return Lens(lambda s: s, t, t, name="identity", putter=lambda v, s: v, kind="identity")


def _builtin_lens(kind: str, source: type, view: type) -> Lens[Any, Any]:
    if kind == "identity":
        return _identity(source)
    if kind == "structural":
        return _structural(source, view)  # type: ignore[arg-type]
    if source is DictSample:
        return _dict_to_packable(view)  # type: ignore[arg-type]
    return _packable_to_dict(source)  # type: ignore[arg-type]


def _lens_by_name(module: str, qualname: str) -> Lens[Any, Any]:
    import importlib

    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found  # type: ignore[no-any-return]


# --- the registry ----------------------------------------------------------------------------------


class LensRegistry:
    """Lenses keyed by ``(source, view)`` types, with path finding between any two types.

    ``find`` prefers, in order: the identity; the shortest chain of registered lenses (the
    automatic ``DictSample`` ⇄ packable lenses count as edges, so ``DictSample`` reaches any
    packable type in one hop unless a lens is registered for that pair); a structural lens.
    Results are cached until the next registration.
    """

    def __init__(self) -> None:
        self._lenses: dict[tuple[type, type], Lens[Any, Any]] = {}
        self._cache: dict[tuple[type, type], Lens[Any, Any]] = {}
        self._lock = threading.RLock()

    def register(self, lens: Lens[Any, Any]) -> Lens[Any, Any]:
        """Add (or replace) the lens for its ``(source, view)`` pair."""
        with self._lock:
            self._lenses[(lens.source, lens.view)] = lens
            self._cache.clear()
        return lens

    def unregister(self, source: type, view: type) -> None:
        with self._lock:
            self._lenses.pop((source, view), None)
            self._cache.clear()

    def get(self, source: type, view: type) -> Lens[Any, Any] | None:
        """The lens registered for exactly this pair, if any."""
        return self._lenses.get((source, view))

    def lenses_from(self, source: type) -> list[Lens[Any, Any]]:
        return [lens for (s, _v), lens in self._lenses.items() if s is source]

    def __iter__(self) -> Iterator[Lens[Any, Any]]:
        return iter(list(self._lenses.values()))

    def __len__(self) -> int:
        return len(self._lenses)

    def __contains__(self, pair: object) -> bool:
        return pair in self._lenses

    def find(self, source: type, view: type) -> Lens[Any, Any]:
        """A lens from ``source`` to ``view``, composing through intermediate types if needed."""
        for role, t in (("source", source), ("view", view)):
            if not is_packable_type(t):
                raise LensError(
                    f"cannot view samples as {_type_name(t)}: the {role} type must be a "
                    "@packable class or DictSample"
                )
        with self._lock:
            cached = self._cache.get((source, view))
            if cached is not None:
                return cached
            found = self._search(source, view)
            self._cache[(source, view)] = found
            return found

    def _edges(self, t: type, target: type) -> list[Lens[Any, Any]]:
        """Registered lenses from ``t``, plus the automatic one to ``target`` if it applies.

        A ``DictSample`` is viewed directly as any packable type (one hop, so it beats any chain:
        a schema-free map is read as the type asked for, not through other types).
        """
        out = [lens for (s, _v), lens in self._lenses.items() if s is t]
        if any(lens.view is target for lens in out):
            return out
        if t is DictSample and target is not DictSample:
            out.append(_dict_to_packable(target))  # type: ignore[arg-type]
        elif t is not DictSample and (
            target is DictSample or any(s is DictSample for s, _v in self._lenses)
        ):
            out.append(_packable_to_dict(t))  # type: ignore[arg-type]  # on to lenses from dicts
        return out

    def _search(self, source: type, view: type) -> Lens[Any, Any]:
        if source is view:
            return _identity(source)
        previous: dict[type, Lens[Any, Any] | None] = {source: None}
        queue = deque([source])
        while queue:
            t = queue.popleft()
            if t is view:
                break
            for edge in self._edges(t, view):
                if edge.view not in previous:
                    previous[edge.view] = edge
                    queue.append(edge.view)
        if view in previous:
            steps: list[Lens[Any, Any]] = []
            t = view
            while (back := previous[t]) is not None:
                steps.append(back)
                t = back.source
            steps.reverse()
            return steps[0] if len(steps) == 1 else ComposedLens(steps)
        why = structural_mismatch(source, view)
        if why is None:
            return _structural(source, view)  # type: ignore[arg-type]
        known = ", ".join(
            f"{lens.name} (→ {_type_name(lens.view)})" for lens in self.lenses_from(source)
        )
        raise LensError(
            f"no lens from {_type_name(source)} to {_type_name(view)}: define one with "
            f"@lens on `def f(src: {_type_name(source)}) -> {_type_name(view)}`"
            + (f"; lenses from {_type_name(source)}: {known}" if known else "")
            + f" (no structural match: {why})"
        )


#: The registry ``@lens`` and ``Dataset.as_type`` use unless told otherwise.
default_registry = LensRegistry()


def find_lens(source: type, view: type, registry: LensRegistry | None = None) -> Lens[Any, Any]:
    """The lens from ``source`` to ``view`` in ``registry`` (the default one if not given)."""
    return (registry if registry is not None else default_registry).find(source, view)


__all__ = [
    "CodeRef",
    "ComposedLens",
    "Lens",
    "LensRegistry",
    "default_registry",
    "find_lens",
    "lens",
    "structural_mismatch",
]
