"""deploy/k8s: every overlay renders with kustomize and validates offline (Kubernetes 1.30 and
1.32 schemas, strict), and the manifests agree with the code they run (CLI options, settings,
ports, metric names)."""

from __future__ import annotations

import importlib.util
import inspect
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from semlink.config import Settings
from semlink.obs import ServiceMetrics
from services.cli import serve_cmd

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
KUBECTL = shutil.which("kubectl")
SCHEMA_VERSIONS = ("1.30", "1.32")
# Overlays shipped in the repository, plus cpu with the TLS component (built in the test).
OVERLAYS = ("cpu", "gpu", "cpu-tls")
PORTS = {"encoder": (50051, 9101), "decoder": (50052, 9102), "link": (50053, 9103)}

pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl (with kustomize) is not installed: cannot render deploy/k8s"
)


def _load_tool(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/k8s with generated secrets and a cpu+TLS overlay."""
    root = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, root, ignore=shutil.ignore_patterns("token", "*.crt", "*.key"))
    _load_tool("k8s_secrets").write_secrets(root / "base" / "secrets")
    tls = root / "overlays" / "cpu-tls"
    tls.mkdir()
    (tls / "kustomization.yaml").write_text(
        "resources: [../cpu]\ncomponents: [../../components/tls]\n"
    )
    return root


def render(directory: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(tree: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: render(tree / "overlays" / name) for name in OVERLAYS}


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_secrets_are_not_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/k8s"], cwd=REPO, capture_output=True, text=True
    ).stdout.split()
    assert not [p for p in tracked if re.search(r"(token|\.crt|\.key)$", p)]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schema(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, version: str
) -> None:
    import kubernetes_validate

    objects = rendered[overlay]
    kinds = {o["kind"] for o in objects}
    assert {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    } <= kinds
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay}: {obj['kind']}/{obj['metadata']['name']}: {exc.message}")


def serve_options() -> set[str]:
    return {"--" + name.replace("_", "-") for name in inspect.signature(serve_cmd).parameters}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_run_real_serve_commands_with_probes_ports_and_settings(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    objects = rendered[overlay]
    deployments = by_kind(objects, "Deployment")
    services = by_kind(objects, "Service")
    (config_map,) = by_kind(objects, "ConfigMap").values()
    secrets = by_kind(objects, "Secret")
    settings_fields = {f"SEMLINK_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in config_map["data"] if k.startswith("SEMLINK_")} <= settings_fields
    assert set(deployments) == set(PORTS)
    for name, deployment in deployments.items():
        grpc_port, metrics_port = PORTS[name]
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        args = container["args"]
        assert container["command"] == ["semlink"] and args[:2] == ["serve", name]
        flags = dict(a.split("=", 1) for a in args[2:])
        assert set(flags) <= serve_options(), f"{name}: unknown serve options"
        assert flags["--port"] == str(grpc_port) and flags["--metrics-port"] == str(metrics_port)
        assert flags["--host"] == "0.0.0.0"
        env = {e["name"]: e for e in container["env"]}
        for var in re.findall(r"\$\((\w+)\)", " ".join(args)):
            assert var in config_map["data"] or var in env, f"{name}: $({var}) is undefined"
        assert env[flags["--token-env"]]["valueFrom"]["secretKeyRef"]["name"] in secrets
        assert container["envFrom"][0]["configMapRef"]["name"] == config_map["metadata"]["name"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": grpc_port, "metrics": metrics_port}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            spec = container[probe]
            if "tls" in overlay:
                command = spec["exec"]["command"]
                assert command[:3] == ["python", "-m", "semlink.serving.probe"]
                assert command[3] == f"127.0.0.1:{grpc_port}"
            else:
                assert spec["grpc"]["port"] == grpc_port
        if "tls" in overlay:
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
            assert volumes["tls"]["secret"]["secretName"] in secrets
            assert flags["--tls-cert"].startswith(mounts["tls"] + "/")
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(metrics_port)
        grace = float(config_map["data"][flags["--grace"].strip("$()")])
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["spec"]["terminationGracePeriodSeconds"] > grace + pre_stop
        assert container["resources"]["requests"] and container["resources"]["limits"]
        gpus = container["resources"]["limits"].get("nvidia.com/gpu")
        assert gpus == ("1" if overlay == "gpu" and name == "decoder" else None)
        # A headless Service selecting exactly these pods, by port name.
        service = services[name]
        assert service["spec"]["clusterIP"] == "None"
        selector = service["spec"]["selector"]
        assert selector.items() <= pod["metadata"]["labels"].items()
        assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
        assert deployment["spec"]["selector"]["matchLabels"] == selector
    if overlay == "gpu":
        assert deployments["decoder"]["spec"]["template"]["spec"]["containers"][0]["image"] == (
            "semlink-decoder:cuda"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_decoder_autoscales_on_queue_depth_and_disruptions_are_bounded(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    objects = rendered[overlay]
    deployments = by_kind(objects, "Deployment")
    (config_map,) = by_kind(objects, "ConfigMap").values()
    (hpa,) = by_kind(objects, "HorizontalPodAutoscaler").values()
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "decoder")
    assert "replicas" not in deployments["decoder"]["spec"], "the HPA owns the replica count"
    assert hpa["spec"]["minReplicas"] >= 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "semlink_queue_depth"
    assert metric["pods"]["metric"]["selector"]["matchLabels"] == {"service": "decoder"}
    gauge = ServiceMetrics("decoder").queue_depth
    assert gauge._name == "semlink_queue_depth" and gauge._labelnames == ("service",)
    capacity = int(config_map["data"]["DECODER_WORKERS"]) + int(
        config_map["data"]["DECODER_MAX_WAITING"]
    )
    assert 0 < float(metric["pods"]["target"]["averageValue"]) < capacity
    adapter = yaml.safe_load((K8S / "prometheus-adapter.yaml").read_text())
    names = [rule["name"]["as"] for rule in adapter["rules"]["custom"]]
    assert names == ["semlink_queue_depth"]
    pdbs = by_kind(objects, "PodDisruptionBudget")
    assert set(pdbs) == set(PORTS)
    for name, pdb in pdbs.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdb["spec"]["maxUnavailable"] == 1


def test_probe_speaks_tls_with_the_generated_ca(tree: Path) -> None:
    """The exec probes of the TLS component work against a TLS server and its generated cert."""
    from semlink.link import LinkProfile
    from semlink.serving.probe import main as probe_main
    from services.link import server as link_server

    from .servers import ServiceThread, config

    secrets = tree / "base" / "secrets"
    svc = ServiceThread(
        "link",
        config(
            metrics_port=None,
            tls_cert=secrets / "tls.crt",
            tls_key=secrets / "tls.key",
            host="127.0.0.1",
        ),
        link_server.servicers_for(LinkProfile("t", 1e6, 0.0), realtime=False),
        link_server.load,
    ).start()
    try:
        address = svc.address
        for _ in range(100):
            if probe_main([address, f"--tls-ca={secrets / 'ca.crt'}"]) == 0:
                break
        else:
            pytest.fail("TLS probe never saw SERVING")
        assert probe_main([address]) == 1  # plaintext against TLS fails
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def ray_objects(tree: Path) -> list[dict[str, Any]]:
    _load_tool("k8s_secrets").write_secrets(tree / "ray" / "secrets")
    return render(tree / "ray")


def test_rayservice_overlay_validates_and_its_serve_config_builds(
    ray_objects: list[dict[str, Any]],
) -> None:
    import kubernetes_validate
    from ray.serve.schema import ServeDeploySchema

    from services.rayserve.app import build_app

    (rayservice,) = by_kind(ray_objects, "RayService").values()
    assert rayservice["apiVersion"] == "ray.io/v1"
    for obj in ray_objects:
        if obj["kind"] != "RayService":
            kubernetes_validate.validate(obj, SCHEMA_VERSIONS[-1], strict=True)
    # serveConfigV2 is Ray's own Serve config schema, and the same apps as the config file.
    serve_config = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(serve_config)
    standalone = yaml.safe_load((REPO / "deploy" / "ray" / "serve-config.yaml").read_text())
    ServeDeploySchema.model_validate(standalone)
    assert serve_config["applications"] == standalone["applications"]
    ports = set()
    for app in serve_config["applications"]:
        assert app["import_path"] == "services.rayserve.app:build_app"
        build_app(app["args"])  # the arguments build a real application
        ports |= {app["args"]["server"]["port"], app["args"]["server"]["metrics_port"]}
    # The pod templates are valid Pods; generated names are rewritten into them.
    (config_map,) = by_kind(ray_objects, "ConfigMap").values()
    (secret,) = by_kind(ray_objects, "Secret").values()
    cluster = rayservice["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]["template"]
    templates = [head] + [group["template"] for group in cluster["workerGroupSpecs"]]
    for template in templates:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"}, **template}
        kubernetes_validate.validate(pod, SCHEMA_VERSIONS[-1], strict=True)
        (container,) = template["spec"]["containers"]
        assert container["envFrom"][0]["configMapRef"]["name"] == config_map["metadata"]["name"]
        token = {e["name"]: e for e in container["env"]}["AUTH_TOKEN"]
        assert token["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert any(
        "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]
        for g in cluster["workerGroupSpecs"]
    )
    # The gateways (pinned to the head by the semlink_gateway resource) are reachable.
    assert "semlink_gateway" in cluster["headGroupSpec"]["rayStartParams"]["resources"]
    gateway = by_kind(ray_objects, "Service")["semlink-ray-gateway"]
    labels = {**head["metadata"]["labels"], "ray.io/node-type": "head"}
    assert gateway["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in gateway["spec"]["ports"]} == ports
    head_ports = {p["containerPort"] for p in head["spec"]["containers"][0]["ports"]}
    assert ports <= head_ports
