"""deploy/k8s: generated base up to date, ``kubectl kustomize`` renders valid objects covering every service.

kubeconform and helm are not installable from the registries available here (checked: pypi, npm). Every rendered
object is validated instead against the Kubernetes API's own OpenAPI schemas (strict: unknown fields are errors)
with kubernetes-validate, which bundles them, for the oldest and newest Kubernetes versions we support; the checks
after it cover what a schema cannot (cross-references, probes on the health ports, one Deployment per service).
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import re
import shutil
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml
from comptoir_testing.deployment import ANNOUNCED, ON_MAIN, REPO, env_prefix

K8S = REPO / "deploy" / "k8s"
KNOWN_KINDS = {
    ("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"), ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("batch/v1", "Job"),
    ("networking.k8s.io/v1", "Ingress"), ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
}  # fmt: skip
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@functools.cache
def _generator():
    spec = importlib.util.spec_from_file_location("comptoir_k8s_generate", K8S / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render deploy/k8s (kubectl kustomize)"
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / "example")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _by(rendered, kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in rendered if doc["kind"] == kind}


def test_generated_base_is_up_to_date():
    for relative, text in _generator().files().items():
        path = K8S / "base" / relative
        assert path.exists() and path.read_text() == text, (
            f"{path} is stale: run python deploy/k8s/generate.py"
        )


def test_every_service_has_an_entry_and_missing_packages_stay_disabled():
    table = {s.name: s for s in _generator().SERVICES}
    for name in ON_MAIN:
        assert name in table, f"add {name} to SERVICES in deploy/k8s/generate.py"
    for name in ANNOUNCED.keys() - ON_MAIN.keys():
        assert not table[name].enabled, f"{name} is not on main: its Deployment must stay disabled"


# Oldest Kubernetes release still supported upstream when this was written, and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.32.0", "1.37.0")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_objects_validate_against_the_kubernetes_api_schemas(rendered, version):
    problems = []
    for doc in rendered:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert problems == []


def test_schema_validation_catches_a_misspelt_field(rendered):
    deployment = next(doc for doc in rendered if doc["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_objects_are_well_formed(rendered):
    for doc in rendered:
        assert (doc["apiVersion"], doc["kind"]) in KNOWN_KINDS, (doc["apiVersion"], doc["kind"])
        assert DNS_1123.match(doc["metadata"]["name"]), doc["metadata"]["name"]
        assert doc["metadata"].get("namespace", "comptoir") == "comptoir"
        if doc["kind"] in ("Deployment", "StatefulSet"):
            selector = doc["spec"]["selector"]["matchLabels"]
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items()
            for container in doc["spec"]["template"]["spec"]["containers"]:
                assert container["resources"]["requests"] and container["resources"]["limits"]
                assert "readinessProbe" in container and "livenessProbe" in container


def test_a_deployment_per_service_with_probes_on_its_health_port_and_migrations_first(rendered):
    deployments = _by(rendered, "Deployment")
    table = {s.name: s for s in _generator().SERVICES}
    for name, package in (ANNOUNCED | ON_MAIN).items():
        if not table[name].enabled:
            assert name.replace("_", "-") not in deployments
            continue
        deployment = deployments[name.replace("_", "-")]
        assert deployment["spec"]["replicas"] >= 1
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == ["python", "-m", package]
        env = {item["name"]: item for item in container["env"]}
        port = int(env[f"{env_prefix(name)}HEALTH_PORT"]["value"])
        assert {p["name"]: p["containerPort"] for p in container["ports"]}["health"] == port
        assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert container["livenessProbe"]["tcpSocket"] == {"port": "health"}
        assert pod["initContainers"][0]["command"] == ["comptoir", "migrate", name]
        assert env[f"{env_prefix(name)}DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"].endswith(
            "DATABASE_URL"
        )
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == str(
            port
        )
    assert deployments["tickets"]["spec"]["replicas"] == 3  # the overlay's own replica count


def test_secrets_come_from_secrets_and_every_reference_resolves(rendered):
    secrets = _by(rendered, "Secret")
    for doc in rendered:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            for item in container.get("env", []):
                assert "postgresql://" not in item.get("value", "") and "amqp://" not in item.get("value", "")
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets, ref
                    assert ref["key"] in secrets[ref["name"]]["data"], ref
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
    data = secrets[next(n for n in secrets if n.startswith("comptoir-secrets"))]["data"]
    assert base64.b64decode(data["AMQP_URI"]).startswith(b"amqp://")


def test_gateway_behind_an_ingress_and_migration_job(rendered):
    ingress = _by(rendered, "Ingress")["comptoir"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = _by(rendered, "Service")[backend["name"]]
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    gateway = _by(rendered, "Deployment")["gateway"]
    assert service["spec"]["selector"].items() <= gateway["spec"]["template"]["metadata"]["labels"].items()
    job = _by(rendered, "Job")["comptoir-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["comptoir", "migrate"]


def test_rabbitmq_quorum_cluster_and_postgres_roles(rendered):
    configs = _by(rendered, "ConfigMap")
    rabbit = configs[next(n for n in configs if n.startswith("rabbitmq-config"))]["data"]
    assert re.search(r"^default_queue_type = quorum$", rabbit["rabbitmq.conf"], re.M)
    assert "rabbitmq_prometheus" in rabbit["enabled_plugins"]
    assert _by(rendered, "StatefulSet")["rabbitmq"]["spec"]["replicas"] == 3
    docker_init = (REPO / "deploy/docker/postgres-init.sh").read_text()
    assert (K8S / "components/postgres/postgres-init.sh").read_text() == docker_init
    postgres = _by(rendered, "StatefulSet")["postgres"]["spec"]["template"]["spec"]["containers"][0]
    databases = next(e["value"] for e in postgres["env"] if e["name"] == "COMPTOIR_DATABASES").split()
    assert set(ANNOUNCED | ON_MAIN) <= set(databases)
