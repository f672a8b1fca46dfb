"""Promotion: plan (read-only) and publish local entries to the logged-in account.

``plan_entries`` asks the core for one ``PromotionPlan`` per entry (the plan screen shows them);
``promote_job`` builds the job function that executes one confirmed plan, reporting bytes
uploaded and records created through the job context and stopping at the next step when the job
is cancelled. A retry plans again from the entry's saved promotion state, so it resumes: blobs
already referenced and records already written (deterministic keys) are not created twice. The
CLI's ``promote`` command uses the same functions. Nothing here imports Textual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atdata_core.atmosphere import AtmosphereBackend, PromotionPlan, PromotionProgress
    from atdata_core.index import Index, IndexEntry


@dataclass
class PlannedEntry:
    """One entry's plan, or why it cannot be promoted (then it is left out)."""

    entry: IndexEntry
    plan: PromotionPlan | None = None
    error: str | None = None


def fresh_entry(index: Index, entry: IndexEntry) -> IndexEntry:
    """The entry as stored now (its metadata holds the promotion state a retry resumes from)."""
    from atdata_core.errors import NotFoundError

    repo_name = entry.repo or "local"
    repo = index.repos.get(repo_name)
    current = repo.provider.get_entry(entry.cid) if repo is not None else None
    if current is None:
        raise NotFoundError(f"dataset {entry.name!r} ({entry.cid}) is no longer in the index")
    current.repo = repo_name
    return current


def plan_entry(index: Index, backend: AtmosphereBackend, entry: IndexEntry) -> PromotionPlan:
    """What promoting ``entry`` would do (reads the PDS, writes nothing)."""
    return backend.plan_promotion(index, fresh_entry(index, entry))


def plan_entries(
    index: Index,
    backend: AtmosphereBackend,
    entries: list[IndexEntry],
    *,
    cancel: Callable[[], bool] | None = None,
    on_plan: Callable[[int, PlannedEntry], None] | None = None,
) -> list[PlannedEntry]:
    """A plan per entry, in order; an entry that cannot be planned carries its error instead."""
    from atdata_core.errors import AtdataError, NotLoggedInError

    out: list[PlannedEntry] = []
    for i, entry in enumerate(entries):
        if cancel is not None and cancel():
            break
        try:
            item = PlannedEntry(entry, plan_entry(index, backend, entry))
        except NotLoggedInError:
            raise  # the whole promotion needs a login, not just this entry
        except AtdataError as exc:
            item = PlannedEntry(entry, error=str(exc))
        out.append(item)
        if on_plan is not None:
            on_plan(i, item)
    return out


def progress_unit(plan: PromotionPlan) -> tuple[str, int]:
    """What the progress bar counts: bytes to upload, or (nothing to upload) records to write."""
    if plan.upload_bytes > 0:
        return "bytes", plan.upload_bytes
    return "records", max(1, len(plan.records_to_write))


def promote_job(
    index: Index, backend: AtmosphereBackend, entry: IndexEntry, plan: PromotionPlan | None
) -> Callable[[Any], str]:
    """The job function publishing one entry; returns the ``at://`` URI of its entry record.

    The first run executes the plan the user confirmed; a retry plans again first (the saved
    state and the records already on the PDS make it resume without duplicates).
    """
    confirmed = [plan]

    def run(ctx: Any) -> str:
        current = confirmed[0] if ctx.job.attempts <= 1 else None
        confirmed[0] = None
        if current is not None:
            ctx.log(f"publishing as @{current.handle}/{current.name} on {current.pds}")
        if current is None:
            ctx.report(detail="planning again (resume)", force=True)
            current = plan_entry(index, backend, entry)
            ctx.log(
                f"resumed: {len(current.records_to_write)} record(s) and "
                f"{len(current.blobs_to_upload)} blob(s) still to publish"
            )
        ctx.check()
        unit, total = progress_unit(current)
        records_total = len(current.records_to_write)
        ctx.report(0, total, unit=unit, detail="starting", force=True)

        def progress(p: PromotionProgress) -> None:
            done = p.bytes_done if unit == "bytes" else p.records_created
            ctx.report(
                done,
                total,
                unit=unit,
                bytes=p.bytes_done,
                detail=f"{p.message} · records {p.records_created}/{records_total}",
                force=p.step != "upload",
            )
            if p.step != "upload":
                ctx.log(p.message)

        uri = backend.execute_plan(current, progress=progress, cancel=ctx.cancelled)
        ctx.set_result_text(uri)
        return uri

    return run


def promote_title(entry: IndexEntry, plan: PromotionPlan | None) -> str:
    """Short, for the jobs table (the target ``@handle/name`` is in the job's details)."""
    del plan
    return f"promote {entry.name}"
