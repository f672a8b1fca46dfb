"""Messages that carry worker results back to the event loop.

Workers never touch widgets: they compute in a thread and ``post_message`` one of these; the
screen (or the app) that owns the state handles it. Each message carries the ``generation`` of the
request it answers where requests can overtake each other (filter-as-you-type, refresh), so a late
answer to an old question is dropped instead of overwriting a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message
from textual.worker import Worker, WorkerState


@dataclass
class IndexOpened(Message):
    """The index is open (``index`` is an ``atdata_core.index.Index``); ``problems`` are non-fatal.

    ``problems`` lists named repositories that could not be opened (e.g. their Redis is down): the
    app opens the rest and reports these in the error modal instead of failing as a whole.
    """

    index: Any
    problems: list[str] = field(default_factory=list)


@dataclass
class IndexOpenFailed(Message):
    """Opening the index failed; the message says why (the error modal has the details)."""

    error: str


@dataclass
class RepositoriesLoaded(Message):
    """Rows for the repositories screen (``workers.index.RepoInfo``), counted in a worker."""

    repos: list[Any]


@dataclass
class PageLoaded(Message):
    """One page of entries (``atdata_core.index.Page``) for the entry list's request ``generation``."""

    generation: int
    page_no: int
    page: Any


@dataclass
class PageFailed(Message):
    """A page could not be fetched; the list shows the reason in place of its rows."""

    generation: int
    page_no: int
    error: str


@dataclass
class SchemasLoaded(Message):
    """Schema names with their versions (``workers.index.SchemaInfo``), newest version first."""

    schemas: list[Any]
    generation: int = 0


@dataclass
class SchemaDetailLoaded(Message):
    """One schema version's fields (``workers.index.SchemaDetail``)."""

    detail: Any


@dataclass
class SchemaDiffLoaded(Message):
    """Field changes between two schema versions (``workers.index.SchemaDiff``)."""

    diff: Any


@dataclass
class EntryLoaded(Message):
    """A fresh copy of one entry (``IndexEntry``), e.g. after refresh on the detail screen."""

    entry: Any


@dataclass
class VerifyDone(Message):
    """Checksums recomputed (``atdata_core.index.VerifyReport``)."""

    report: Any


@dataclass
class NetworkSchemaLoaded(Message):
    """A schema from the AppView with its other versions (``workers.network.NetworkSchema``)."""

    schema: Any


@dataclass
class LensesLoaded(Message):
    """Lenses from and to a schema (``workers.network.LensRow``) and the records left out."""

    lenses: list[Any]
    skipped: list[str] = field(default_factory=list)


@dataclass
class VersionsLoaded(Message):
    """The versions under a dataset's label (``atdata_core.atmosphere.appview.Versions``)."""

    versions: Any


@dataclass
class NetworkDescribed(Message):
    """What the AppView holds (entries, schemas) and where it is, for the search screen's title."""

    entries: int | None
    schemas: int | None
    url: str


@dataclass
class DemoCreated(Message):
    """The demo datasets exist now (``entries`` are ``IndexEntry``)."""

    entries: list[Any]


@dataclass
class JobsChanged(Message):
    """HOOK for the jobs engineer: post this to the app whenever the number of running jobs changes.

    ``app.post_message(JobsChanged(running=n))`` (thread-safe) updates the status bar.
    """

    running: int


@dataclass
class SessionChanged(Message):
    """HOOK for the login screen: post this to the app after login/logout (``handle`` or ``None``)."""

    handle: str | None


class ForwardWorkerErrors:
    """Mixin for screens and widgets that start workers: failed workers go to the app.

    ``Worker.StateChanged`` does not bubble, so without this a failure in a screen's worker would
    never reach the app's single error handler (``AtdataApp.on_worker_state_changed``), which
    shows the error modal. Other screens (preview, promote, …) can use this mixin too.
    """

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            app = self.app  # type: ignore[attr-defined]
            if app is not self:
                app.post_message(Worker.StateChanged(event.worker, event.state))
