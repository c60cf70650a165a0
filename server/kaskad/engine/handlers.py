"""Handlers of the core node kinds but send (:mod:`kaskad.engine.send`).

A handler gets the batch context, the flow plan, the node and the runs standing
on it, and for each run calls ``ctx.move`` (leave by a port), ``ctx.wait`` (park
until a time), ``ctx.finish`` or ``ctx.retry``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from sqlalchemy import bindparam, select, update

from kaskad.engine.batch import BatchContext, Run
from kaskad.engine.conditions import RunView, contact_value, evaluate
from kaskad.engine.plan import FlowPlan
from kaskad.flow import model
from kaskad.mechanics import AwardContext
from kaskad.store.models import Contact

WAIT_MARK = "wait"  # context key: the wait node a run has arrived at, and since when


def handle_wait(ctx: BatchContext, plan: FlowPlan, node: model.WaitNode, runs: list[Run]) -> None:
    from kaskad.engine import timing

    for run in runs:
        mark = run.context.get(WAIT_MARK)
        if mark and mark.get("node") == node.id:
            # Woken: by the event it waited for (the dispatcher set wake_port), or by its time.
            port = run.context.pop("wake_port", None) or ("on_timeout" if node.until_event is not None else "next")
            run.context.pop(WAIT_MARK, None)
            ctx.move(run, port, node.on_timeout if port == "on_timeout" else node.next)
            continue
        contact = ctx.contacts[run.contact_id]
        tz = timing.zone(contact.get("timezone"), _default_tz(ctx))
        wake = ctx.now
        detail = None
        if node.until_event is not None:
            wake = timing.after(ctx.now, node.until_event.timeout)
            detail = f"for event {node.until_event.event!r} until {wake.isoformat()}"
        else:
            if node.for_ is not None:
                wake = timing.after_local(wake, node.for_, tz)
            if node.until_date is not None:
                d = node.until_date
                target = timing.date_target(wake, tz, contact_value(contact, d.attribute), d.offset, d.at, d.yearly)
                if target is None:
                    ctx.move(run, "next", node.next, f"no usable date in {d.attribute!r}")
                    continue
                wake = max(wake, target)
            if node.until_time is not None:
                wake = timing.next_window(wake, tz, node.until_time)
        if ctx.dry_run:
            ctx.move(run, "next", node.next, f"would wait ({detail or 'until ' + wake.isoformat()})")
            continue
        if wake <= ctx.now and node.until_event is None:
            ctx.move(run, "next", node.next)
            continue
        run.context[WAIT_MARK] = {"node": node.id, "since": ctx.now.isoformat()}
        ctx.wait(run, wake, detail)


def _default_tz(ctx: BatchContext) -> str:
    """``default_timezone`` of the delivery settings (KASKAD_DELIVERY), for contacts without a timezone.

    Loaded here if no send has loaded them yet: otherwise a worker's first waits
    would read UTC and its later ones the configured zone.
    """
    if ctx.runtime is None:
        return "UTC"
    settings = ctx.runtime.extras.get("delivery_settings")
    if settings is None:
        from kaskad.delivery.policy import DeliverySettings

        settings = ctx.runtime.extras["delivery_settings"] = DeliverySettings.from_env()
    return getattr(settings, "default_timezone", None) or "UTC"


def handle_branch(ctx: BatchContext, plan: FlowPlan, node: model.BranchNode, runs: list[Run]) -> None:
    undecided = list(runs)
    for i, case in enumerate(node.cases):
        if not undecided:
            return
        views = [RunView(run_id=r.id, contact_id=r.contact_id, entered_at=r.entered_at, flow_id=r.flow_id,
                         contact=ctx.contacts[r.contact_id]) for r in undecided]
        verdicts = evaluate(ctx.session, ctx.runtime, case.when, views, ctx.now)
        rest = []
        for run, ok in zip(undecided, verdicts):
            if ok:
                ctx.move(run, f"case:{case.name or i}", case.next)
            else:
                rest.append(run)
        undecided = rest
    for run in undecided:
        ctx.move(run, "else", node.else_)


def split_bucket(flow_key: str, node_id: str, contact_id: int) -> float:
    """A number in [0, 1) fixed per contact, flow and node: the same contact always takes the same path."""
    digest = hashlib.sha256(f"{flow_key}\x1f{node_id}\x1f{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_path(paths: list[model.SplitPath], bucket: float) -> model.SplitPath:
    total = sum(p.weight for p in paths) or 1
    edge = 0.0
    for p in paths:
        edge += p.weight / total
        if bucket < edge:
            return p
    return paths[-1]


def handle_split(ctx: BatchContext, plan: FlowPlan, node: model.SplitNode, runs: list[Run]) -> None:
    for run in runs:
        path = choose_path(node.paths, split_bucket(plan.key, node.id, run.contact_id))
        run.context["split"] = {"node": node.id, "path": path.name, "holdout": path.holdout}
        if path.holdout:
            # The control group: receives nothing from here on, kept (status holdout) for uplift.
            ctx._step(run, node.id, f"path:{path.name}", "passed", "holdout")
            ctx.counts.append((run.version_id, node.id, f"path:{path.name}", 1))
            ctx.finish(run, "holdout", "control group", record=False)
        else:
            ctx.move(run, f"path:{path.name}", path.next)


def handle_award(ctx: BatchContext, plan: FlowPlan, node: model.AwardNode, runs: list[Run]) -> None:
    mechanic = ctx.runtime.registry.mechanics.get(node.mechanic)
    if mechanic is None:
        for run in runs:
            ctx.finish(run, "failed", f"mechanic {node.mechanic!r} is not installed")
        return
    try:
        config = msgspec.convert(node.config, mechanic.config_type) if mechanic.config_type else node.config
    except msgspec.ValidationError as exc:
        for run in runs:
            ctx.finish(run, "failed", f"award config for {node.mechanic!r}: {exc}")
        return
    def award(run: Run) -> Any:
        return mechanic.award(ctx.session, AwardContext(
            contact_id=run.contact_id, idempotency_key=f"run:{run.id}:{node.id}", flow_key=plan.key, node_id=node.id),
            config)

    # Optimistic: the whole group under one savepoint. Only if some award raises is
    # the group redone run by run, each under its own savepoint, so the failing
    # ones are retried later and the others go on.
    results: dict[int, Any] = {}
    try:
        with ctx.session.begin_nested():
            for run in runs:
                results[run.id] = award(run)
    except Exception:
        results = {}
        for run in runs:
            try:
                with ctx.session.begin_nested():
                    results[run.id] = award(run)
            except Exception as exc:  # a failing plugin fails its own step, retried with backoff
                ctx.retry(run, f"award {node.mechanic!r} failed: {type(exc).__name__}: {exc}")
    for run in runs:
        if run.id in results:
            run.context.setdefault("awards", {})[node.id] = _plain(results[run.id])
            ctx.move(run, "next", node.next, "would award" if ctx.dry_run else None)


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value, builtin_types=(), str_keys=True) if value is not None else {}


def _lock_fresh(ctx: BatchContext, contact_ids: set[int]) -> None:
    """Re-read the contacts' attributes and tags under a row lock (PostgreSQL) just before
    changing them: the batch loaded them earlier without a lock, and writing that copy
    back would undo an API update committed in between (the API locks the same rows)."""
    q = select(Contact.id, Contact.attributes, Contact.tags).where(Contact.id.in_(contact_ids)).order_by(Contact.id)
    if ctx.session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    for cid, attrs, tags in ctx.session.execute(q):
        ctx.contacts[cid]["attributes"], ctx.contacts[cid]["tags"] = attrs or {}, tags or []


def handle_update(ctx: BatchContext, plan: FlowPlan, node: model.UpdateNode, runs: list[Run]) -> None:
    params = {}
    if not ctx.dry_run:
        _lock_fresh(ctx, {run.contact_id for run in runs})
    for run in runs:
        contact = ctx.contacts[run.contact_id]
        attrs = dict(contact.get("attributes") or {})
        attrs.update(node.set)
        for k in node.unset:
            attrs.pop(k, None)
        tags = [t for t in contact.get("tags") or [] if t not in node.remove_tags]
        tags += [t for t in node.add_tags if t not in tags]
        contact["attributes"], contact["tags"] = attrs, tags
        params[run.contact_id] = {"cid": run.contact_id, "a": attrs, "t": tags, "u": ctx.now}
    if params and not ctx.dry_run:
        ctx.session.execute(
            update(Contact.__table__).where(Contact.__table__.c.id == bindparam("cid"))
            .values(attributes=bindparam("a"), tags=bindparam("t"), updated_at=bindparam("u")),
            list(params.values()),
        )
    for run in runs:
        ctx.move(run, "next", node.next)


def handle_exit(ctx: BatchContext, plan: FlowPlan, node: model.ExitNode, runs: list[Run]) -> None:
    for run in runs:
        ctx._step(run, node.id, None, "exited")
        ctx.finish(run, "exited", record=False)


def handle_plugin(ctx: BatchContext, plan: FlowPlan, node: model.PluginNode, runs: list[Run]) -> None:
    kind = ctx.runtime.registry.node_kinds.get(node.kind) if hasattr(ctx.runtime.registry, "node_kinds") else None
    if kind is None or kind.handle is None:
        for run in runs:
            ctx.finish(run, "failed", f"node kind {node.kind!r} is not installed")
        return
    config = msgspec.convert(node.config, kind.config_type) if kind.config_type else node.config
    ports = kind.handle(ctx.session, runs, config)
    for run, port in zip(runs, ports):
        ctx.move(run, port, node.next if port == "next" else node.ports.get(port))


HANDLERS = {
    "wait": handle_wait,
    "branch": handle_branch,
    "split": handle_split,
    "award": handle_award,
    "update": handle_update,
    "exit": handle_exit,
}
