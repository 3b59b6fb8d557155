"""Metrics shared by services that work against an outside system on a timer (FileMaker sync, mailbox reading).

The alert rules in ``deploy/prometheus/alerts.yml`` watch these: a source failing several passes in a row, or not
succeeding for too long, pages the operators (docs/operations.md says what to do).
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge

EXTERNAL_PASSES = Counter(
    "comptoir_external_passes_total",
    "Passes over an outside system (FileMaker sync, mailbox read) by outcome",
    ["source", "target", "outcome"],
)
EXTERNAL_LAST_SUCCESS = Gauge(
    "comptoir_external_last_success_timestamp_seconds",
    "Unix time of the last successful pass over an outside system",
    ["source", "target"],
)


def record_pass(source: str, target: str, ok: bool) -> None:
    """Count one pass over ``source`` (``filemaker``, ``mailbox``) for ``target`` (a layout, a mailbox name)."""
    EXTERNAL_PASSES.labels(source, target, "ok" if ok else "failed").inc()
    if ok:
        EXTERNAL_LAST_SUCCESS.labels(source, target).set(time.time())
