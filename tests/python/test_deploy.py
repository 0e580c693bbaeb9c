"""The deployment files in docs/deploy/ are well-formed and agree with the server's interface.

Kubernetes manifests are checked against the API schemas bundled with ``kubernetes-validate``
(offline), the Dockerfile is parsed with ``dockerfile-parse``, and the compose, Prometheus and
Grafana files with PyYAML / json. The names the files use (flags, paths, ports, metric names and
their labels, per-model config keys) are the server's documented ones, listed here.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "docs" / "deploy"
K8S = DEPLOY / "k8s"
DEMO_MODELS = REPO / "examples" / "server" / "models"

# Kubernetes release whose schemas the manifests must satisfy.
K8S_VERSION = "1.30"

LIVE = "/v2/health/live"
READY = "/v2/health/ready"
HTTP_PORT = 8080
GRPC_PORT = 8081
PROBE = ["/usr/local/bin/ingot-server", "--probe", f"http://127.0.0.1:{HTTP_PORT}{READY}"]

# Every metric the server exports: kind and label names.
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "ingot_requests_total": ("counter", frozenset({"model", "version", "protocol", "status"})),
    "ingot_request_duration_seconds": ("histogram", frozenset({"model", "version"})),
    "ingot_batch_size": ("histogram", frozenset({"model", "version"})),
    "ingot_queue_depth": ("gauge", frozenset({"model", "version"})),
    "ingot_model_load_failures_total": ("counter", frozenset({"model"})),
    "ingot_model_loaded": ("gauge", frozenset({"model", "version"})),
    "ingot_build_info": ("gauge", frozenset({"version"})),
    "ingot_drift_psi": ("gauge", frozenset({"model", "version", "feature"})),
    "ingot_shadow_comparisons_total": ("counter", frozenset({"model", "version"})),
    "ingot_shadow_disagreements_total": ("counter", frozenset({"model", "version"})),
    "ingot_rollbacks_total": ("counter", frozenset({"model", "version"})),
    "ingot_rate_limited_total": ("counter", frozenset()),
    "ingot_reloads_total": ("counter", frozenset({"outcome"})),
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Per-model config.toml: top-level keys and the keys of its tables, with their types.
MODEL_CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "max_batch_size": int,
    "max_queue_delay_us": int,
    "instances": int,
    "max_queue_size": int,
    "warmup_batch_sizes": list,
    "aliases": dict,
    "canary": dict,
}
CANARY_KEYS: dict[str, type | tuple[type, ...]] = {
    "weight": (int, float),
    "mode": str,
    "sticky_header": str,
    "max_error_rate_margin": (int, float),
    "max_p99_margin_ms": (int, float),
    "window_s": int,
    "min_requests": int,
}
POSITIVE_KEYS = {"max_batch_size", "instances", "canary.window_s", "canary.weight"}
API_KEY_SCOPES = {"predict", "admin", "metrics"}


def _manifest_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def _load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _resources(kind: str | None = None) -> list[tuple[Path, dict]]:
    return [
        (path, doc)
        for path in _manifest_files()
        for doc in _load_all(path)
        if kind is None or doc["kind"] == kind
    ]


def _one(kind: str, directory: Path = K8S) -> dict:
    """The single resource of ``kind`` among the manifests directly in ``directory``."""
    found = [doc for path, doc in _resources(kind) if path.parent == directory]
    assert len(found) == 1, f"expected one {kind} in {directory}, found {len(found)}"
    return found[0]


def _pod(deployment: dict | None = None) -> dict:
    return (deployment or _one("Deployment"))["spec"]["template"]["spec"]


def _server_container(pod: dict) -> dict:
    [server] = [c for c in pod["containers"] if c["name"] == "ingot-server"]
    return server


def _flag(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


# --- Kubernetes ----------------------------------------------------------------------------------


def test_the_manifests_are_there() -> None:
    kinds = {doc["kind"] for _, doc in _resources()}
    expected = {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "Secret"}
    assert expected <= kinds
    assert (K8S / "canary" / "canary.yaml").is_file()


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_matches_the_kubernetes_schema(path: Path) -> None:
    docs = _load_all(path)
    assert docs, f"{path} holds no resource"
    errors = []
    for doc in docs:
        # Strict: an unknown (misspelt) field fails too. A kind without a schema raises.
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = ".".join(str(p) for p in e.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {e.message}")
    assert not errors, f"{path.name}: " + "; ".join(errors)


def test_the_probes_use_the_health_endpoints_on_the_http_port() -> None:
    server = _server_container(_pod())
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert ports == {"http": HTTP_PORT, "grpc": GRPC_PORT}

    def target(probe: str) -> tuple[str, int]:
        get = server[probe]["httpGet"]
        port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        return get["path"], port

    assert target("readinessProbe") == (READY, HTTP_PORT)
    assert target("livenessProbe") == (LIVE, HTTP_PORT)
    if "startupProbe" in server:
        assert target("startupProbe")[0] in (LIVE, READY)

    args = server["args"]
    assert _flag(args, "--addr") == f"0.0.0.0:{HTTP_PORT}"
    assert _flag(args, "--grpc-addr") == f"0.0.0.0:{GRPC_PORT}"


def test_the_service_selects_the_pods_and_exposes_their_ports() -> None:
    deployment = _one("Deployment")
    service = _one("Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    container_ports = {
        p["name"]: p["containerPort"] for p in _server_container(_pod(deployment))["ports"]
    }
    exposed = {}
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        exposed[port["name"]] = container_ports[target] if isinstance(target, str) else target
        assert exposed[port["name"]] == port["port"]
    assert exposed == {"http": HTTP_PORT, "grpc": GRPC_PORT}


def test_the_pods_run_unprivileged_with_a_read_only_root() -> None:
    pod = _pod()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context.get("runAsUser", pod["securityContext"]["runAsUser"]) != 0
    server = _server_container(pod)
    assert {"cpu", "memory"} <= server["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= server["resources"]["limits"].keys()


def test_the_api_keys_file_is_mounted_from_the_secret() -> None:
    pod = _pod()
    server = _server_container(pod)
    keys_file = Path(_flag(server["args"], "--api-keys"))
    mounts = {m["mountPath"]: m for m in server["volumeMounts"]}
    mount = mounts[str(keys_file.parent)]
    assert mount.get("readOnly") is True
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret_name = volume["secret"]["secretName"]
    items = {i["path"]: i["key"] for i in volume["secret"].get("items", [])}
    key = items.get(keys_file.name, keys_file.name)

    [secret] = [doc for _, doc in _resources("Secret") if doc["metadata"]["name"] == secret_name]
    lines = secret["stringData"][key].splitlines()
    assert lines
    for line in lines:
        name, scopes, digest = line.split()
        assert name
        assert set(scopes.split(",")) <= API_KEY_SCOPES, line
        assert re.fullmatch(r"[0-9a-f]{64}", digest), line


def test_the_models_volume_is_staged_from_the_config_map() -> None:
    pod = _pod()
    server = _server_container(pod)
    models_dir = _flag(server["args"], "--models")
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert models_dir in mounts
    models_volume = mounts[models_dir]
    [init] = pod["initContainers"]
    init_mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert models_volume in init_mounts
    config_volumes = [n for n in init_mounts if "configMap" in volumes[n]]
    assert [volumes[n]["configMap"]["name"] for n in config_volumes] == [
        _one("ConfigMap")["metadata"]["name"]
    ]
    script = "\n".join(init["args"])
    assert "config.toml" in script
    assert init_mounts[config_volumes[0]] in script


def test_the_autoscaler_scales_the_deployment_on_cpu() -> None:
    deployment = _one("Deployment")
    hpa = _one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # Utilization is relative to the request, which must therefore exist.
    assert "cpu" in _server_container(_pod(deployment))["resources"]["requests"]


def _model_configs() -> list:
    """One ``(where, model, text)`` per ``<model>.toml`` key of the ConfigMaps."""
    return [
        pytest.param(
            f"{path.relative_to(K8S)}:{key}", key, text, id=f"{path.relative_to(K8S)}:{key}"
        )
        for path, doc in _resources("ConfigMap")
        for key, text in doc["data"].items()
    ]


def _check_value(where: str, name: str, value: object, kind: type | tuple[type, ...]) -> None:
    assert isinstance(value, kind) and not isinstance(value, bool), f"{where}: {name} = {value!r}"
    if isinstance(value, (int, float)):
        assert value >= 0, f"{where}: {name} = {value!r}"
    if name in POSITIVE_KEYS:
        assert value > 0, f"{where}: {name} = {value!r}"


@pytest.mark.parametrize(("where", "key", "text"), _model_configs())
def test_the_model_configs_use_the_server_keys(where: str, key: str, text: str) -> None:
    assert key.endswith(".toml"), f"{where}: the key must be <model>.toml"
    model = key.removesuffix(".toml")
    config = tomllib.loads(text)
    for name, value in config.items():
        assert name in MODEL_CONFIG_KEYS, f"{where}: unknown key {name}"
        _check_value(where, name, value, MODEL_CONFIG_KEYS[name])
    aliases = config.get("aliases", {})
    for alias, version in aliases.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{where}: alias {alias} = {version!r}"
    canary = config.get("canary")
    if canary is not None:
        assert {"stable", "canary"} <= aliases.keys(), f"{where}: [canary] needs both aliases"
        assert aliases["stable"] != aliases["canary"]
        for name, value in canary.items():
            assert name in CANARY_KEYS, f"{where}: unknown key canary.{name}"
            _check_value(where, f"canary.{name}", value, CANARY_KEYS[name])
        assert 0 < canary["weight"] <= 1
        assert canary.get("mode", "split") in ("split", "shadow")
    else:
        # The default configuration serves the demo repository: its aliases must exist there.
        for version in aliases.values():
            assert (DEMO_MODELS / model / version / "model.ingot").is_file(), (where, version)


def test_the_canary_example_replaces_the_default_config() -> None:
    default = _one("ConfigMap")
    canary = _one("ConfigMap", K8S / "canary")
    assert canary["metadata"]["name"] == default["metadata"]["name"]
    assert canary["data"].keys() == default["data"].keys()
    text = (K8S / "canary" / "canary.yaml").read_text()
    for route in ("promote", "rollback"):
        assert f"/admin/models/breast-cancer/{route}" in text


# --- Dockerfile ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    assert parser.structure
    return parser


def _stages(parser: DockerfileParser) -> list[list[dict]]:
    stages: list[list[dict]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _json_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list), value
    return parsed


def test_the_dockerfile_builds_in_one_stage_and_runs_in_another(dockerfile) -> None:
    assert dockerfile.parent_images == ["rust:1.95-bookworm", "debian:bookworm-slim"]
    builder, runtime = _stages(dockerfile)
    builder_name = builder[0]["value"].split()[-1]
    assert builder[0]["value"].lower().split()[-2] == "as"
    runs = " ".join(i["value"] for i in builder if i["instruction"] == "RUN")
    assert "cargo build --release --locked -p ingot-server" in runs
    copies = [i["value"] for i in runtime if i["instruction"] == "COPY"]
    assert any(
        c.startswith(f"--from={builder_name} ") and c.endswith(" /usr/local/bin/ingot-server")
        for c in copies
    ), copies
    assert any(c.split()[-2:] == ["examples/server/models", "/models"] for c in copies), copies


def test_the_image_runs_as_a_fixed_non_root_user(dockerfile) -> None:
    _, runtime = _stages(dockerfile)
    users = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, users[-1]


def test_the_image_exposes_the_ports_and_checks_readiness(dockerfile) -> None:
    _, runtime = _stages(dockerfile)
    exposed = {
        int(p.split("/")[0])
        for i in runtime
        if i["instruction"] == "EXPOSE"
        for p in i["value"].split()
    }
    assert {HTTP_PORT, GRPC_PORT} <= exposed
    [health] = [i["value"] for i in runtime if i["instruction"] == "HEALTHCHECK"]
    options, cmd = re.split(r"\s+CMD\s+", health, maxsplit=1)
    assert _json_form(cmd) == PROBE
    assert "--interval=" in options

    entrypoint = [i["value"] for i in runtime if i["instruction"] == "ENTRYPOINT"]
    command = [i["value"] for i in runtime if i["instruction"] == "CMD"]
    argv = _json_form(entrypoint[-1]) + _json_form(command[-1])
    assert argv[0] == "/usr/local/bin/ingot-server"
    assert _flag(argv, "--addr") == f"0.0.0.0:{HTTP_PORT}"
    assert _flag(argv, "--grpc-addr") == f"0.0.0.0:{GRPC_PORT}"
    assert _flag(argv, "--models") == "/models"
    assert _flag(argv, "--log-format") == "json"


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _docker_ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore ``patterns`` exclude ``path``, as Docker reads them: the last
    pattern matching the path or one of its parent directories decides; ``!`` re-includes."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _dockerignore_regex(raw.removeprefix("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            ignored = not negate
    return ignored


def test_the_build_context_holds_the_whole_cargo_workspace(dockerfile) -> None:
    """``cargo build --locked`` reads every workspace member's manifest: each must be copied
    into the builder and not be dropped from the context by .dockerignore."""
    builder, runtime = _stages(dockerfile)
    sources = []
    for instruction in builder + runtime:
        if instruction["instruction"] == "COPY" and "--from=" not in instruction["value"]:
            words = instruction["value"].split()
            sources += [w.rstrip("/") for w in words[:-1] if not w.startswith("--")]
    workspace = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]
    for member in workspace["members"]:
        assert any(member == s or member.startswith(s + "/") for s in sources), member
    assert {"Cargo.toml", "Cargo.lock"} <= set(sources)

    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    for source in sources:
        assert (REPO / source).exists(), source
        assert not _docker_ignored(source, patterns), f"{source} is excluded by .dockerignore"
    for member in workspace["members"]:
        assert not _docker_ignored(f"{member}/Cargo.toml", patterns), member
    for heavy in ("target", ".venv", ".git", "examples/server/target", "fuzz/target"):
        assert _docker_ignored(heavy, patterns), f"{heavy} is sent with the build context"


# --- docker compose, Prometheus, Grafana -------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _published(service: dict) -> dict[int, int]:
    """container port -> host port of a compose service's short-syntax ``ports``."""
    out = {}
    for entry in service.get("ports", []):
        *host, container = str(entry).split(":")
        out[int(container.split("/")[0])] = int(host[-1]) if host else int(container)
    return out


def test_the_compose_file_runs_the_server_prometheus_and_grafana(compose) -> None:
    services = compose["services"]
    assert {"server", "prometheus", "grafana"} <= services.keys()
    server = services["server"]
    build = server["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert {HTTP_PORT, GRPC_PORT} <= _published(server).keys()
    assert server["healthcheck"]["test"] == ["CMD", *PROBE]
    assert _flag(server["command"], "--addr") == f"0.0.0.0:{HTTP_PORT}"
    assert 9090 in _published(services["prometheus"])
    assert 3000 in _published(services["grafana"])
    for name, service in services.items():
        assert "healthcheck" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def _bind_mounts(compose: dict, service: str) -> dict[str, Path]:
    """container path -> host path of a service's bind mounts (named volumes are skipped)."""
    out = {}
    for volume in compose["services"][service].get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith((".", "/")):
            out[target] = (DEPLOY / source).resolve()
        else:
            assert source in (compose.get("volumes") or {}), f"undeclared volume {source}"
    return out


@pytest.mark.parametrize("service", ["server", "prometheus", "grafana"])
def test_the_compose_mounts_refer_to_files_that_exist(compose, service: str) -> None:
    mounts = _bind_mounts(compose, service)
    assert mounts, f"{service} mounts nothing"
    for target, source in mounts.items():
        assert source.exists(), f"{service}: {source} (mounted at {target}) does not exist"


def test_prometheus_scrapes_the_server_metrics(compose) -> None:
    mounts = _bind_mounts(compose, "prometheus")
    assert mounts["/etc/prometheus/prometheus.yml"] == DEPLOY / "prometheus.yml"
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "ingot-server"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets == [f"server:{HTTP_PORT}"]
    assert "server" in compose["services"]
    # How to authenticate the scrape once API keys are on is documented in the file.
    assert "credentials_file" in (DEPLOY / "prometheus.yml").read_text()


def test_grafana_provisions_the_datasource_and_the_dashboard(compose) -> None:
    mounts = _bind_mounts(compose, "grafana")
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources_dir = mounts["/etc/grafana/provisioning/datasources"]
    dashboards_dir = mounts["/etc/grafana/provisioning/dashboards"]
    assert datasources_dir == provisioning / "datasources"
    assert dashboards_dir == provisioning / "dashboards"

    [datasource] = [
        d
        for f in sorted(datasources_dir.glob("*.yml"))
        for d in yaml.safe_load(f.read_text())["datasources"]
    ]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert 9090 in _published(compose["services"]["prometheus"])

    [provider] = [
        p
        for f in sorted(dashboards_dir.glob("*.yml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    dashboard_mounts = [
        t for t, s in mounts.items() if s == DEPLOY / "grafana" / "ingot-dashboard.json"
    ]
    assert [str(Path(t).parent) for t in dashboard_mounts] == [provider["options"]["path"]]


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "ingot-dashboard.json").read_text())


def _queries(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable["type"] == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def _metric(name: str) -> str | None:
    """The exported metric a series name belongs to (histograms have three series)."""
    if name in METRICS:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if name.endswith(suffix) and METRICS.get(base, ("",))[0] == "histogram":
            return base
    return None


def test_the_dashboard_queries_only_exported_metrics_and_labels(dashboard) -> None:
    exprs = _queries(dashboard)
    assert exprs
    for expr in exprs:
        names = set(re.findall(r"\bingot_[a-z0-9_]+", expr))
        assert names, f"query uses no ingot metric: {expr}"
        unknown = {n for n in names if _metric(n) is None}
        assert not unknown, f"unknown metrics {unknown} in {expr}"
        labels = set().union(*(METRICS[_metric(n)][1] for n in names))
        if any(n.endswith("_bucket") for n in names):
            labels |= {"le"}
        used = set()
        for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            used |= {label.strip() for label in group.split(",") if label.strip()}
        for matchers in re.findall(r"\{([^}]*)\}", expr):
            used |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
        used |= set(re.findall(r"label_values\(\s*\w+\s*,\s*(\w+)\s*\)", expr))
        assert used <= labels, f"labels {used - labels} do not exist in {expr}"


def test_the_dashboard_shows_every_area(dashboard) -> None:
    used = {_metric(n) for expr in _queries(dashboard) for n in re.findall(r"\bingot_\w+", expr)}
    assert set(METRICS) <= used, f"not on the dashboard: {set(METRICS) - used}"
    exprs = "\n".join(_queries(dashboard))
    for quantile in ("0.5", "0.99"):
        assert f"histogram_quantile({quantile}, " in exprs
    assert "ingot_request_duration_seconds_bucket" in exprs


def test_the_dashboard_panels_are_well_formed(dashboard) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            for variable in re.findall(r"\$(?!__)(\w+)", target["expr"]):
                assert variable in variables, f"{panel['title']}: ${variable} is not defined"
        uid = panel["datasource"]["uid"]
        assert uid.strip("${}") in variables or uid == "prometheus", panel["title"]
