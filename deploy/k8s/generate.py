#!/usr/bin/env python3
"""Writes the Kubernetes base (``deploy/k8s/base``) from the table below; ``kubectl kustomize`` does the rest.

    python deploy/k8s/generate.py            # rewrite base/ (the tests fail when base/ is stale)

Adding a service is one line in SERVICES (name, replicas, resources); a service whose package is not on main yet
has ``enabled=False``: its Deployment file is written but left out of base/kustomization.yaml until it lands.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
BASE = HERE / "base"
IMAGE = "comptoir"
HEALTH_PORT = 9100
GATEWAY_PORT = 8000
LABEL = "app.kubernetes.io"


@dataclass(frozen=True)
class Service:
    name: str  # registry name (env prefix and package derive from it)
    replicas: int
    cpu: str = "100m"
    memory: str = "192Mi"
    cpu_limit: str = "1"
    memory_limit: str = "512Mi"
    enabled: bool = True
    # Extra secret keys of this service (e.g. SMTP or FileMaker credentials), read from the comptoir-secrets Secret.
    secret_env: tuple[str, ...] = ()
    blobs: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def package(self) -> str:
        return f"comptoir_{self.name}"

    @property
    def prefix(self) -> str:
        return self.name.upper().replace("-", "_") + "_"

    @property
    def k8s_name(self) -> str:
        return self.name.replace("_", "-")


SERVICES: tuple[Service, ...] = (
    Service("auth", replicas=2),
    Service("tickets", replicas=3, cpu="200m", memory="256Mi", memory_limit="768Mi", blobs=True),
    Service("notifier", replicas=2, secret_env=("SMTP_URL",)),
    Service("reports", replicas=1, memory_limit="768Mi"),
    Service("wiki", replicas=2, blobs=True),
    Service(
        "crm_sync",
        replicas=1,
        secret_env=("CRM_SYNC_FILEMAKER_URL", "CRM_SYNC_FILEMAKER_USER", "CRM_SYNC_FILEMAKER_PASSWORD"),
    ),
    Service("mail_ingest", replicas=2, blobs=True, secret_env=("MAIL_INGEST_MAILBOXES",)),
    Service("webhooks", replicas=2),
)


def _labels(component: str) -> dict:
    return {f"{LABEL}/name": "comptoir", f"{LABEL}/component": component}


def _secret(key: str) -> dict:
    return {"name": key, "valueFrom": {"secretKeyRef": {"name": "comptoir-secrets", "key": key}}}


def _security() -> dict:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _pod_security() -> dict:
    return {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip


def _resources(s: Service) -> dict:
    return {
        "requests": {"cpu": s.cpu, "memory": s.memory},
        "limits": {"cpu": s.cpu_limit, "memory": s.memory_limit},
    }


def _volumes(blobs: bool) -> tuple[list, list]:
    if not blobs:
        return [], []
    return ([{"name": "blobs", "persistentVolumeClaim": {"claimName": "comptoir-blobs"}}],
            [{"name": "blobs", "mountPath": "/data/blobs"}])  # fmt: skip


def service_deployment(s: Service) -> dict:
    env = [
        _secret("AMQP_URI"),
        _secret(f"{s.prefix}DATABASE_URL"),
        {"name": f"{s.prefix}HEALTH_PORT", "value": str(HEALTH_PORT)},
        *(_secret(key) for key in s.secret_env),
    ]
    env_from = [{"configMapRef": {"name": "comptoir-config"}}]
    volumes, mounts = _volumes(s.blobs)
    container = {
        "name": s.k8s_name,
        "image": IMAGE,
        "command": ["python", "-m", s.package],
        "envFrom": env_from,
        "env": env,
        "ports": [{"name": "health", "containerPort": HEALTH_PORT}],
        "resources": _resources(s),
        "securityContext": _security(),
        # Started: migrations applied and the health endpoint answering.
        "startupProbe": {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 5, "failureThreshold": 36},
        # Ready: its database and the broker answer (/healthz runs both checks).
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 10,
                           "timeoutSeconds": 5, "failureThreshold": 3},
        # Alive: the process serves its health port. Not /healthz: a database outage must not restart every pod.
        "livenessProbe": {"tcpSocket": {"port": "health"}, "periodSeconds": 20, "failureThreshold": 3},
        "volumeMounts": mounts,
    }  # fmt: skip
    migrate = {
        "name": "migrate",
        "image": IMAGE,
        # This service's migrations and event queues, before it starts (idempotent; instances serialise on a lock).
        "command": ["comptoir", "migrate", s.name],
        "envFrom": env_from,
        "env": env[:2],
        "resources": _resources(s),
        "securityContext": _security(),
    }
    return _deployment(s.k8s_name, s.replicas, [container], [migrate], volumes, scrape_port=HEALTH_PORT)


def _deployment(name, replicas, containers, init_containers, volumes, scrape_port) -> dict:
    for container in containers:
        if not container.get("volumeMounts"):
            container.pop("volumeMounts", None)
    spec = {
        "serviceAccountName": "comptoir",
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(),
        "terminationGracePeriodSeconds": 30,
        "initContainers": init_containers,
        "containers": containers,
        "volumes": volumes,
    }
    spec = {k: v for k, v in spec.items() if v != []}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": _labels(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": _labels(name),
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(scrape_port),
                                    "prometheus.io/path": "/metrics"},
                },
                "spec": spec,
            },
        },
    }  # fmt: skip


def gateway() -> list[dict]:
    volumes, mounts = _volumes(True)
    container = {
        "name": "gateway",
        "image": IMAGE,
        "command": ["python", "-m", "comptoir_gateway"],
        "envFrom": [{"configMapRef": {"name": "comptoir-config"}}],
        "env": [_secret("AMQP_URI"), _secret("COMPTOIR_SECRET_KEY"),
                {"name": "GATEWAY_HOST", "value": "0.0.0.0"}, {"name": "COMPTOIR_PORT", "value": str(GATEWAY_PORT)},
                {"name": "GATEWAY_SECURE_COOKIES", "value": "true"}],
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": _security(),
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 20, "failureThreshold": 3},
        "volumeMounts": mounts,
    }  # fmt: skip
    deployment = _deployment("gateway", 2, [container], [], volumes, scrape_port=GATEWAY_PORT)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "gateway", "labels": _labels("gateway")},
        "spec": {
            "selector": _labels("gateway"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "comptoir",
            "labels": _labels("gateway"),
            "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "30m"},
        },
        "spec": {
            "tls": [{"hosts": ["comptoir.example.com"], "secretName": "comptoir-tls"}],
            "rules": [{
                "host": "comptoir.example.com",
                "http": {"paths": [{"path": "/", "pathType": "Prefix",
                                    "backend": {"service": {"name": "gateway", "port": {"name": "http"}}}}]},
            }],
        },
    }  # fmt: skip
    return [deployment, service, ingress]


def migrate_job() -> dict:
    """Every store and the whole broker topology, run on install and upgrade before the new pods roll out."""
    env = [_secret("AMQP_URI")] + [_secret(f"{s.prefix}DATABASE_URL") for s in SERVICES if s.enabled]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "comptoir-migrate", "labels": _labels("migrate")},
        "spec": {
            "backoffLimit": 6,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": _labels("migrate")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "serviceAccountName": "comptoir",
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(),
                    "containers": [{
                        "name": "migrate", "image": IMAGE, "command": ["comptoir", "migrate"],
                        "envFrom": [{"configMapRef": {"name": "comptoir-config"}}], "env": env,
                        "resources": {"requests": {"cpu": "100m", "memory": "192Mi"},
                                      "limits": {"cpu": "1", "memory": "512Mi"}},
                        "securityContext": _security(),
                    }],
                },
            },
        },
    }  # fmt: skip


def common() -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "comptoir", "labels": _labels("comptoir")}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "comptoir-config", "labels": _labels("comptoir")},
            "data": {
                "COMPTOIR_PUBLIC_URL": "https://comptoir.example.com",
                "COMPTOIR_MAIL_DOMAIN": "comptoir.example.com",
                "COMPTOIR_LOG_FORMAT": "json",
                "COMPTOIR_LOG_LEVEL": "INFO",
                "COMPTOIR_DATA_DIR": "/data",
                "COMPTOIR_BLOB_DIR": "/data/blobs",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "comptoir-blobs", "labels": _labels("comptoir")},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "50Gi"}}},
        },
    ]  # fmt: skip


HEADER = "# Generated by deploy/k8s/generate.py — edit the table there, then run it.\n"


def dump(documents: list[dict]) -> str:
    return HEADER + "---\n".join(yaml.safe_dump(doc, sort_keys=False, width=120) for doc in documents)


def files() -> dict[str, str]:
    out = {
        "common.yaml": dump(common()),
        "gateway.yaml": dump(gateway()),
        "migrate-job.yaml": dump([migrate_job()]),
    }
    resources = ["common.yaml", "migrate-job.yaml", "gateway.yaml"]
    pending = []
    for s in SERVICES:
        path = f"services/{s.k8s_name}.yaml"
        out[path] = dump([service_deployment(s)])
        (resources if s.enabled else pending).append(path)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": {f"{LABEL}/part-of": "comptoir"}}],
        "resources": resources,
    }
    text = dump([kustomization])
    if pending:
        text += "# Not on main yet (enable in generate.py when the package lands):\n"
        text += "".join(f"#  - {path}\n" for path in pending)
    out["kustomization.yaml"] = text
    return out


def main() -> int:
    for relative, text in files().items():
        path = BASE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files())} files under {BASE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
