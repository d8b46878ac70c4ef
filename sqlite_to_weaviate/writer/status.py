"""``status``: how far behind Weaviate is, and whether anything needs a human.

Durable facts come from SQLite (``store.progress``: each lane's depth beyond its
checkpoint, the age of the oldest unapplied live change, owed re-sends, dead letters, the
relay's error streak); live facts from Redis (the relay's published snapshot, workers seen,
queue length, refused jobs). Redis being down is itself a status, not a crash.

The two lanes are reported apart (invariant 11): the *live lag* is what the app's users
feel; the *backfill* is history still to copy, with its rows remaining and an ETA from the
relay's measured bulk rate.

Besides lag and dead letters, two things make the pipeline need a human at once:

* a relay that is **stuck** — failing again and again with nothing applied for more than
  ``max_stuck_s`` seconds (precise rule in :mod:`.stuck`); the problem quotes the error;
* **refused work** — jobs workers refused (a forged or altered job, a foreign function, a
  worker without the right job secret) or acks the relay ignored, within the last
  :data:`SECURITY_ALERT_S` seconds (:mod:`.trust`; counters in ``<namespace>:security``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.store import registry as tool_objects
from sqlite_to_weaviate.store.progress import read_progress
from sqlite_to_weaviate.store.state import BACKFILL_PREFIX, StateKey, items_with_prefix
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.stuck import (
    DEFAULT_MAX_STUCK_S, describe, load_streak, recent_window, streak_json, stuck_for,
)
from sqlite_to_weaviate.writer.trust import ALARMING, read_security

SECURITY_ALERT_S = 900.0


@dataclass
class PipelineStatus:
    phase: str | None = None
    checkpoint: int = 0                       # live lane
    outbox_depth: int = 0                     # live changes not yet applied (the live backlog)
    oldest_unapplied_age_s: float | None = None  # the live lag: age of the oldest of them
    bulk_checkpoint: int = 0
    bulk_backlog: int = 0                     # history/repair keys queued but not yet applied
    backfill_remaining: int | None = None     # rows the backfill has yet to copy (queued or not yet read)
    backfill_eta_s: float | None = None       # at the relay's measured bulk rate
    dead_letters: int = 0
    resends_pending: int = 0  # keys owed a second send after a fault (durable)
    resends_next_due_s: float | None = None
    last_error: dict[str, Any] | None = None
    stuck_seconds: float | None = None
    relay: dict[str, Any] | None = None
    workers: list[str] = field(default_factory=list)
    queued_jobs: int | None = None
    redis_error: str | None = None
    refused: dict[str, int] = field(default_factory=dict)
    last_refusal: dict[str, Any] | None = None
    embeddings: dict[str, dict[str, int]] = field(default_factory=dict)  # embedder id -> counters (informational)
    backfill: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def caught_up(self) -> bool:
        """Nothing captured waits in either lane, nothing is owed a re-send, the relay holds no work."""
        relay_idle = self.relay is None or (not self.relay.get("pending") and not self.relay.get("inflight")
                                            and not self.relay.get("unacked"))
        return self.outbox_depth == 0 and self.bulk_backlog == 0 and self.resends_pending == 0 and relay_idle

    def to_json(self) -> dict[str, Any]:  # noqa: F811 - adds the derived fields
        return asdict(self) | {"caught_up": self.caught_up, "healthy": self.healthy}


def collect_status(settings: Settings, *, max_lag_s: float = 60.0, max_dead_letters: int = 0,
                   max_stuck_s: float = DEFAULT_MAX_STUCK_S) -> PipelineStatus:
    conn = settings.open_db(readonly=True)
    try:
        st = PipelineStatus()
        has_outbox = tool_objects.has_table(conn, "_s2w_outbox")
        has_state = tool_objects.has_table(conn, "_s2w_state")
        if not has_outbox:
            st.problems.append("capture is not installed (run `sqlite-to-weaviate init`)")
            return st
        if has_state:
            from sqlite_to_weaviate.store.phase import get_phase

            phase = get_phase(conn)
            st.phase = f"{int(phase)}: {phase.label}"
        p = read_progress(conn)
        st.checkpoint, st.outbox_depth, st.oldest_unapplied_age_s = p.live.checkpoint, p.live.depth, p.live_lag_s
        st.bulk_checkpoint, st.bulk_backlog = p.bulk.checkpoint, p.bulk.depth
        st.dead_letters, st.resends_pending = p.dead_letters, p.owed
        st.resends_next_due_s = None if p.owed_next_due is None else round(max(0.0, p.owed_next_due - p.at), 1)
        streak = load_streak(conn) if has_state else None
        st.last_error = streak_json(streak)
        st.stuck_seconds = stuck_for(streak, checkpoint=st.checkpoint, pending=st.outbox_depth, now=time.time(),
                                     max_stuck=max_stuck_s, recent=recent_window(settings.backoff_max))
        for key, value in items_with_prefix(conn, BACKFILL_PREFIX):
            st.backfill[key.removeprefix(BACKFILL_PREFIX)] = _maybe_json(value)
    finally:
        conn.close()
    _live_status(settings, st)
    _backfill_estimate(st)
    if st.stuck_seconds is not None and streak is not None:
        st.problems.append(describe(streak, st.stuck_seconds))
    if st.oldest_unapplied_age_s is not None and st.oldest_unapplied_age_s > max_lag_s:
        st.problems.append(f"replication lag {st.oldest_unapplied_age_s:.1f}s exceeds {max_lag_s:.0f}s "
                           f"({st.outbox_depth} changes waiting)")
    if st.dead_letters > max_dead_letters:
        st.problems.append(f"{st.dead_letters} dead letter(s): see `sqlite-to-weaviate dead-letters list`")
    if st.redis_error:
        st.problems.append(f"redis unreachable: {st.redis_error}")
    elif st.relay is None and (st.outbox_depth or st.bulk_backlog or st.resends_pending):
        st.problems.append("no relay is running but changes are waiting")
    refusal = _refusal_problem(st, time.time())
    if refusal:
        st.problems.append(refusal)
    return st


def _backfill_estimate(st: PipelineStatus) -> None:
    """Rows the backfill has yet to copy (not yet read from the table + queued in the bulk lane)
    and when it will be done at the relay's measured bulk rate."""
    unread = 0
    tables = [v for k, v in st.backfill.items() if isinstance(v, dict) and k != StateKey.BACKFILL_PAUSED.value
              .removeprefix(BACKFILL_PREFIX)]
    if not tables:
        return
    for cp in tables:
        if not cp.get("done"):
            total = cp.get("total_estimate") or 0
            unread += max(0, int(total) - int(cp.get("rows_enqueued") or 0))
    st.backfill_remaining = unread + st.bulk_backlog
    rate = None
    if isinstance(st.relay, dict):
        lanes = st.relay.get("lanes") if isinstance(st.relay.get("lanes"), dict) else {}
        bulk = lanes.get("bulk") if isinstance(lanes.get("bulk"), dict) else {}
        rate = bulk.get("rate_per_s") if isinstance(bulk.get("rate_per_s"), (int, float)) else None
    if st.backfill_remaining == 0:
        st.backfill_eta_s = 0.0
    elif rate:
        st.backfill_eta_s = round(st.backfill_remaining / rate, 1)


def _refusal_problem(st: PipelineStatus, now: float) -> str | None:
    """Refused work in the last SECURITY_ALERT_S seconds: an attack, or a worker without the secret."""
    counts = dict(st.refused)
    relay_stats = st.relay.get("stats") if isinstance(st.relay, dict) else None
    if isinstance(relay_stats, dict) and isinstance(relay_stats.get("forged_acks"), int):
        counts["forged_ack"] = max(counts.get("forged_ack", 0), relay_stats["forged_acks"])
    alarming = {k: v for k, v in counts.items() if k in ALARMING and v}
    last = st.last_refusal if isinstance(st.last_refusal, dict) else {}
    try:
        age = now - float(last.get("at"))
    except (TypeError, ValueError):
        return None
    if not alarming or age > SECURITY_ALERT_S:
        return None
    summary = ", ".join(f"{k}={v}" for k, v in sorted(alarming.items()))
    return (f"refused work through Redis ({summary}); last {max(age, 0):.0f}s ago: {str(last.get('reason'))[:200]} "
            "— forged or altered jobs, or a worker without the pipeline's job secret "
            "(docs/operations.md, Redis is a trust boundary)")


def _live_status(settings: Settings, st: PipelineStatus) -> None:
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    keys = RedisKeys(settings.namespace)
    try:
        client = settings.connect_redis()
        raw = client.get(keys.relay_status)
        st.relay = _relay_snapshot(raw)
        queues = [Queue(name, connection=client, serializer=JSONSerializer) for name in keys.queues()]
        st.queued_jobs = sum(q.count for q in queues)
        st.workers = sorted({w.name for q in queues for w in Worker.all(queue=q)})
        st.refused, st.last_refusal = read_security(client, keys)
        from sqlite_to_weaviate.embed.counters import read_counters

        st.embeddings = read_counters(client, settings.namespace)
        client.close()
    except Exception as exc:  # noqa: BLE001 - an unreachable Redis is reported, not raised
        st.redis_error = f"{type(exc).__name__}: {exc}"


def _relay_snapshot(raw: bytes | None) -> dict[str, Any] | None:
    """The relay's published snapshot, if it has the shape the relay writes (Redis is untrusted)."""
    try:
        data = json.loads(raw) if raw else None
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("inflight"), dict) \
            or not isinstance(data.get("pending"), int) or "pid" not in data or "host" not in data:
        return None
    return data


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value
