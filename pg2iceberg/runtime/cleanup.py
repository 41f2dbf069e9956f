"""Cleanup: drop the slot, the publication (only if ours) and the coordinator schema.

Safety contract:
- :func:`plan_cleanup` changes nothing; it reports what exists and what would go
  (:mod:`pg2iceberg.runtime.cleanup_plan`).
- :func:`cleanup` recomputes the plan and re-checks every guard when executing: the
  confirmation must equal the slot name (else exit 2, nothing changed); another live
  pg2iceberg process refuses it (exit 2) unless ``force``, which terminates the server
  backend that holds the slot. A pipeline hosted by this process is stopped first and must
  release the slot within :data:`RELEASE_TIMEOUT_S`, else nothing is dropped.
- Order: slot, publication, registered stream files, coordinator schema last, so an
  interrupted cleanup still knows (from the schema) what is left to do; each step is
  idempotent and a second cleanup reports nothing to do. Iceberg tables are never touched.
- Nothing recreates what was dropped: this process's pipeline has finished before the drop,
  and only a pipeline start creates slot and schema.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING

import psycopg

from pg2iceberg.errors import TerminalError
from pg2iceberg.runtime import commands as c
from pg2iceberg.runtime.cleanup_plan import CleanupFacts, SlotFacts, WorkerFacts, build_plan
from pg2iceberg.runtime.status_probe import HEARTBEAT_TTL_S
from pg2iceberg.source.connection import connect
from pg2iceberg.sqlident import quote_ident

if TYPE_CHECKING:
    from pg2iceberg.runtime.supervisor import Supervisor

log = logging.getLogger("pg2iceberg")
RELEASE_TIMEOUT_S = 60.0  # this process's pipeline must stop and release the slot in this time
TERMINATE_TIMEOUT_S = 15.0  # with force: the other holder's backend must be gone in this time
EXIT_REFUSED = 2


def _own_pipeline_running(sup: "Supervisor") -> bool:
    return sup.pipeline is not None and not sup.finished.is_set()


def _own_backend_pids(sup: "Supervisor") -> frozenset[int]:
    repl = getattr(sup.pipeline, "replication", None) if _own_pipeline_running(sup) else None
    conn = getattr(repl, "conn", None)
    if conn is None or conn.closed:
        return frozenset()
    return frozenset({conn.info.backend_pid})


def _pid_gone(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _slot_facts(src: psycopg.Connection, name: str, recorded: bool) -> SlotFacts | None:
    row = src.execute(
        "SELECT s.active_pid, pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint, s.wal_status, "
        "concat_ws(' ', nullif(a.application_name, ''), 'from ' || coalesce(host(a.client_addr), 'local socket')) "
        "FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid "
        "WHERE s.slot_name = %s", (name,)).fetchone()
    if row is None:
        return None
    return SlotFacts(active_pid=row[0], retained_wal_bytes=None if row[1] is None else int(row[1]),
                     wal_status=row[2], holder=row[3] if row[0] is not None else "", recorded=recorded)


def _schema_facts(state: psycopg.Connection, schema: str) -> tuple[bool, tuple[str, ...]]:
    exists = state.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None
    tables = tuple(r[0] for r in state.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname", (schema,)))
    return exists, tables


def _gather(sup: "Supervisor") -> tuple[CleanupFacts, list[str]]:
    """The facts, and the registered stream file paths."""
    cfg = sup.config
    schema = cfg.state.coordinator_schema
    s = quote_ident(schema)
    with connect(cfg.state.postgres.dsn, application_name="pg2iceberg-cleanup") as state:
        schema_exists, tables = _schema_facts(state, schema)
        created, recorded, paths, staged_bytes, workers = False, False, [], 0, []
        if "meta" in tables:
            created = state.execute(f"SELECT value FROM {s}.meta WHERE key = 'publication_created'"
                                    ).fetchone() == (cfg.source.publication_name,)
        if "checkpoint" in tables:
            recorded = state.execute(f"SELECT 1 FROM {s}.checkpoint WHERE slot_name = %s",
                                     (cfg.source.slot_name,)).fetchone() is not None
        if "log" in tables:
            for path, nbytes in state.execute(f"SELECT path, bytes FROM {s}.log ORDER BY seq"):
                paths.append(path)
                staged_bytes += int(nbytes)
        if "consumers" in tables:
            host = socket.gethostname()
            for wid, whost, pid, age in state.execute(
                    f"SELECT worker_id, coalesce(host, ''), pid, extract(epoch FROM now() - heartbeat_at) "
                    f"FROM {s}.consumers ORDER BY worker_id"):
                same_host = whost == host
                workers.append(WorkerFacts(
                    worker_id=wid, host=whost, pid=pid, heartbeat_age_s=float(age),
                    ours=same_host and pid == os.getpid(), gone=same_host and _pid_gone(pid)))
    with connect(cfg.source.postgres.dsn, application_name="pg2iceberg-cleanup") as src:
        slot = _slot_facts(src, cfg.source.slot_name, recorded)
        publication = src.execute("SELECT 1 FROM pg_publication WHERE pubname = %s",
                                  (cfg.source.publication_name,)).fetchone() is not None
    facts = CleanupFacts(
        slot_name=cfg.source.slot_name, slot=slot, own_backend_pids=_own_backend_pids(sup),
        own_pipeline_running=_own_pipeline_running(sup), publication_name=cfg.source.publication_name,
        publication_exists=publication, publication_created=created, schema=schema,
        schema_exists=schema_exists, schema_tables=tables, staged_files=len(paths),
        staged_bytes=staged_bytes, stream_location=cfg.stream.location, workers=tuple(workers),
        heartbeat_ttl_s=HEARTBEAT_TTL_S)
    return facts, paths


def plan_cleanup(sup: "Supervisor", command: c.PlanCleanup) -> c.CommandOutcome:
    """What a cleanup would drop; changes nothing."""
    facts, _ = _gather(sup)
    plan = build_plan(facts)
    if plan["nothing_to_do"]:
        summary = "cleanup: nothing to do (no slot, no publication of ours, no coordinator schema)"
    elif plan["blockers"]:
        summary = f"cleanup plan: refused while other pg2iceberg processes run: {'; '.join(plan['blockers'])}"
    else:
        summary = f"cleanup plan: {len(plan['items'])} items; {plan['consequence']}"
    return c.CommandOutcome(ok=True, summary=summary, details=plan)


def _refused(summary: str, plan: dict) -> c.CommandOutcome:
    return c.CommandOutcome(ok=False, summary=summary, details=plan, exit_code=EXIT_REFUSED)


def cleanup(sup: "Supervisor", command: c.Cleanup) -> c.CommandOutcome:
    """Re-check the plan's guards, stop this process's pipeline, then drop."""
    facts, _ = _gather(sup)
    plan = build_plan(facts)
    if plan["nothing_to_do"]:
        return c.CommandOutcome(ok=True, summary="cleanup: nothing to do; nothing was changed", details=plan)
    if command.confirm != facts.slot_name:
        return _refused(f"cleanup refused: the confirmation {command.confirm!r} is not the slot name "
                        f"{facts.slot_name!r}; nothing was changed", plan)
    if plan["blockers"] and not command.force:
        return _refused("cleanup refused while other pg2iceberg processes run: "
                        f"{'; '.join(plan['blockers'])}. Stop them, or pass --force to drop anyway; "
                        "nothing was changed", plan)
    if facts.own_pipeline_running:
        _stop_own_pipeline(sup)
        facts, _ = _gather(sup)
        plan = build_plan(facts)
        if plan["blockers"] and not command.force:
            return _refused(f"cleanup refused: {'; '.join(plan['blockers'])}; pass --force to drop anyway; "
                            "only this process's pipeline was stopped", plan)
    dropped = _drop(sup, facts, force=command.force)
    summary = "cleanup done: " + "; ".join(dropped) + ". Iceberg tables are untouched; " + plan["consequence"]
    return c.CommandOutcome(ok=True, summary=summary, details={**plan, "dropped": dropped})


def _stop_own_pipeline(sup: "Supervisor") -> None:
    sup.stop(reason="stopped for cleanup")
    sup.events.emit("cleanup_waiting", reason="stopping this process's pipeline before dropping")
    if not sup.finished.wait(RELEASE_TIMEOUT_S):
        raise TerminalError(f"the pipeline did not stop within {RELEASE_TIMEOUT_S:.0f}s, so the slot is "
                            "still held; nothing was dropped. Try the cleanup again once it has stopped")


def _wait_slot_released(src: psycopg.Connection, slot: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        row = src.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        if row is None or row[0] is None:
            return
        if time.monotonic() >= deadline:
            raise TerminalError(f"replication slot {slot} is still held by server pid {row[0]} after "
                                f"{timeout_s:.0f}s; nothing was dropped")
        time.sleep(0.2)


def _drop(sup: "Supervisor", facts: CleanupFacts, *, force: bool) -> list[str]:
    """Drop everything the facts say exists, in the safe order; returns what was dropped."""
    from pg2iceberg.runtime.pipeline import stream_store

    cfg = sup.config
    dropped: list[str] = []
    with connect(cfg.source.postgres.dsn, application_name="pg2iceberg-cleanup") as src:
        if facts.slot is not None:
            pid = src.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s",
                              (facts.slot_name,)).fetchone()
            if force and pid is not None and pid[0] is not None:
                log.warning("cleanup --force: terminating server pid %s, which holds slot %s", pid[0], facts.slot_name)
                src.execute("SELECT pg_terminate_backend(%s)", (pid[0],))
            _wait_slot_released(src, facts.slot_name, TERMINATE_TIMEOUT_S)
            row = src.execute("SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots "
                              "WHERE slot_name = %s", (facts.slot_name,)).fetchone()
            if row and row[0]:
                dropped.append(f"replication slot {facts.slot_name}")
                sup.events.emit("slot_dropped", slot=facts.slot_name)
        if facts.publication_exists and facts.publication_created:
            src.execute(f"DROP PUBLICATION IF EXISTS {quote_ident(facts.publication_name)}")
            dropped.append(f"publication {facts.publication_name}")
            sup.events.emit("publication_dropped", publication=facts.publication_name)
    _, paths = _gather(sup)
    if paths:
        store = stream_store(cfg)
        for path in paths:
            store.delete(path)
        dropped.append(f"{len(paths)} stream files")
    if facts.schema_exists:
        with connect(cfg.state.postgres.dsn, application_name="pg2iceberg-cleanup") as state:
            state.execute("SET lock_timeout = '30s'")
            state.execute(f"DROP SCHEMA IF EXISTS {quote_ident(facts.schema)} CASCADE")
        dropped.append(f"coordinator schema {facts.schema}")
        sup.events.emit("coordinator_dropped", schema=facts.schema)
    return dropped
