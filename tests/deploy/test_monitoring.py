"""Prometheus scrape configs, alert rules and the Grafana dashboard, checked against the metrics really exposed.

promtool is not installable here (no registry package): the rules' structure and PromQL brackets are checked, and
every comptoir_* metric they use must appear on the /metrics of the running processes, with the labels used.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from comptoir_testing.deployment import ON_MAIN, REPO
from prometheus_client.parser import text_string_to_metric_families

PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "comptoir-dashboard.json"
# From RabbitMQ's prometheus plugin, /metrics/detailed?family=queue_coarse_metrics (per-queue counts).
RABBITMQ_METRICS = {"rabbitmq_detailed_queue_messages_ready", "rabbitmq_detailed_queue_messages"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created")}  # fmt: skip
SELECTOR = re.compile(r"\b((?:comptoir|rabbitmq)_[a-z0-9_]+)\s*(\{[^}]*\})?")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def _rules() -> list[dict]:
    return [
        rule
        for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _balanced(expr: str) -> bool:
    stack, pairs = [], {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


@pytest.fixture(scope="module")
def exposed(system) -> dict[str, set[str]]:
    """Every sample name the running processes expose, with the label names seen on it (from the collectors)."""
    from prometheus_client import REGISTRY

    names: dict[str, set[str]] = {}
    for key in list(system.processes):
        for family in text_string_to_metric_families(system.metrics(key)):
            for suffix in SUFFIXES.get(family.type, ("",)):
                names.setdefault(family.name + suffix, set())
    # Label names: from the same collectors, imported here (the processes create children lazily).
    import importlib

    import comptoir_gateway.main  # noqa: F401
    from comptoir_dev.registry import SERVICES

    for info in SERVICES:
        info.load_service_class()  # imports the service's modules, and so its metrics
    importlib.import_module("comptoir_common.metrics")

    for collector in list(REGISTRY._collector_to_names):
        labels = set(getattr(collector, "_labelnames", ()))
        for name in REGISTRY._collector_to_names[collector]:
            if name in names:
                names[name] |= labels | {"le", "job", "instance"}
    for name in names:
        names[name] |= {"job", "instance"}
    return names


def _check_expr(expr: str, exposed: dict[str, set[str]]) -> None:
    assert _balanced(expr), expr
    used = SELECTOR.findall(expr)
    assert used or "up{" in expr, expr
    for metric, matchers in used:
        if metric.startswith("rabbitmq_"):
            assert metric in RABBITMQ_METRICS, metric
            continue
        assert metric in exposed, f"{metric} is not exposed by any running process ({expr})"
        for label in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", matchers):
            assert label in exposed[metric], f"{metric} has no label {label!r}"


def test_alert_rules_are_well_formed_and_use_real_metrics(exposed):
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for topic in ("ServiceDown", "QueueDepthGrowing", "DeadLetters", "SmtpFailures", "FileMakerSyncFailing",
                  "DeadlineBreaches", "MailboxUnreadable"):  # fmt: skip
        assert f"Comptoir{topic}" in names
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])
        _check_expr(rule["expr"], exposed)


def test_dashboard_panels_use_real_metrics(exposed):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "Comptoir"
    exprs = _dashboard_exprs()
    assert len(exprs) >= 10
    for expr in exprs:
        _check_expr(expr.replace("$job", "comptoir-.*"), exposed)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_scrape_configs_cover_every_service():
    for file in ("prometheus.yml", "prometheus-single-server.yml", "prometheus-kubernetes.yml"):
        config = yaml.safe_load((PROMETHEUS / file).read_text())
        assert config["rule_files"] == ["alerts.yml"]
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert "rabbitmq" in jobs and jobs["rabbitmq"]["metrics_path"] == "/metrics/detailed"
        if file == "prometheus-kubernetes.yml":
            relabels = jobs["comptoir"]["relabel_configs"]
            assert any(
                r.get("replacement") == "comptoir-$1" and r.get("target_label") == "job" for r in relabels
            )
            continue
        for name in [*ON_MAIN, "gateway"]:
            assert f"comptoir-{name}" in jobs, f"{file}: no job for {name}"
    compose = {
        job["job_name"]: job
        for job in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    }
    for name in ON_MAIN:
        assert compose[f"comptoir-{name}"]["dns_sd_configs"][0] == {
            "names": [name],
            "type": "A",
            "port": 9100,
        }


def test_promql_bracket_check_catches_mistakes():
    assert _balanced('sum by (job) (rate(x{a="(("}[5m]))')
    assert not _balanced("sum(rate(x[5m])")
    assert not _balanced("sum(rate(x[5m)])")
