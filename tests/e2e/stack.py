"""The observability stack of the chart, run from the rendered chart on loopback ports.

`render()` renders the chart with `helm template` and extracts what the stack needs: the collector
and Jaeger configs from their ConfigMaps, the app's environment and ports from its Deployment (with
the ConfigMaps/Secrets it references resolved as the kubelet would), and the ServiceMonitors and
PrometheusRule. `Stack` then starts the real Jaeger, the real collector, the app and a real
Prometheus with those settings. Only what a pod network provides and a single machine cannot is
rewritten (see `loopback_config` and docs/observability.md):

* every listen endpoint (`0.0.0.0:4317`, ...) becomes `127.0.0.1:<free port>`;
* every address of another Service (`<release>-jaeger:4317`,
  `http://<release>-otel-collector:4318`) becomes `127.0.0.1:<the port that Service's process got>`;
* Prometheus scrapes each process's metrics port with a static job labelled as Kubernetes service
  discovery labels a pod (job = Service name, namespace, pod, service, endpoint, container). The
  ServiceMonitors themselves are proven by the Prometheus Operator in tests/cluster.

Used by tests/e2e (pytest fixtures) and by `make dev` (tests/e2e/dev.py, the command line).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from support.net import free_ports

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "bin"
VENV_BIN = ROOT / ".venv" / "bin"

RELEASE = "task-manager"
NAMESPACE = "tm"
# How often the local Prometheus scrapes each process (the chart's own default is 30 s).
SCRAPE_INTERVAL_S = 10
POD = "task-manager-6c9f7d8b5-e2e01"
COLLECTOR_POD = "task-manager-otel-collector-5b8d6c7f9-e2e01"
CRD_API = ["monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor",
           "monitoring.coreos.com/v1/PrometheusRule"]  # fmt: skip
RENDER_SETS = [
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "otel-collector.serviceMonitor.enabled=true",
]


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        raise RuntimeError(f"{path} missing: run `make tools`")
    return str(path)


# --- the rendered chart --------------------------------------------------------------------------


@dataclass
class Rendered:
    docs: list[dict[str, Any]]

    def find(self, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        return [
            d
            for d in self.docs
            if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
        ]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = self.find(kind, name)
        if len(found) != 1:
            raise LookupError(f"{kind}/{name}: found {len(found)} in the rendered chart")
        return found[0]

    @property
    def app_name(self) -> str:
        """The app's Deployment (the one whose container runs `task-manager`)."""
        for d in self.find("Deployment"):
            if d["metadata"]["labels"].get("app.kubernetes.io/name") == "task-manager":
                return str(d["metadata"]["name"])
        raise LookupError("no task-manager Deployment rendered")

    def config_of(self, name: str) -> dict[str, Any]:
        """The collector-style config.yaml of the ConfigMap `name`."""
        data = self.one("ConfigMap", name)["data"]
        return yaml.safe_load(data["config.yaml"])  # type: ignore[no-any-return]

    def container(self, deployment: str) -> dict[str, Any]:
        spec = self.one("Deployment", deployment)["spec"]["template"]["spec"]
        return spec["containers"][0]  # type: ignore[no-any-return]

    def container_env(self, deployment: str, pod: str) -> dict[str, str]:
        """The environment the kubelet would give the container (envFrom, env, $(VAR) refs)."""
        c = self.container(deployment)
        env: dict[str, str] = {}
        for src in c.get("envFrom", []):
            if "configMapRef" in src:
                env.update(self.one("ConfigMap", src["configMapRef"]["name"]).get("data", {}))
            elif "secretRef" in src:
                env.update(self.secret_data(src["secretRef"]["name"]))
        field_values = {
            "metadata.name": pod,
            "metadata.namespace": NAMESPACE,
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
            "spec.nodeName": "e2e-node",
            "spec.serviceAccountName": deployment,
        }
        for var in c.get("env", []):
            if "value" in var:
                env[var["name"]] = re.sub(
                    r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                    lambda m: env.get(m.group(1), m.group(0)),
                    str(var["value"]),
                )
                continue
            ref = var.get("valueFrom", {})
            if "fieldRef" in ref:
                env[var["name"]] = field_values.get(ref["fieldRef"]["fieldPath"], "")
            elif "configMapKeyRef" in ref:
                k = ref["configMapKeyRef"]
                with contextlib.suppress(LookupError, KeyError):
                    env[var["name"]] = self.one("ConfigMap", k["name"])["data"][k["key"]]
            elif "secretKeyRef" in ref:
                k = ref["secretKeyRef"]
                with contextlib.suppress(LookupError, KeyError):
                    env[var["name"]] = self.secret_data(k["name"])[k["key"]]
        return env

    def secret_data(self, name: str) -> dict[str, str]:
        s = self.one("Secret", name)
        data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
        data.update(s.get("stringData") or {})
        return data

    def container_ports(self, deployment: str) -> dict[str, int]:
        return {p["name"]: int(p["containerPort"]) for p in self.container(deployment)["ports"]}

    def service_port(self, service: str, name: str) -> dict[str, Any]:
        for p in self.one("Service", service)["spec"]["ports"]:
            if p["name"] == name:
                return p  # type: ignore[no-any-return]
        raise LookupError(f"Service/{service} has no port {name}")

    @property
    def rule_groups(self) -> list[dict[str, Any]]:
        rules = self.find("PrometheusRule")
        return [g for r in rules for g in r["spec"]["groups"]]


def render(values: str = "values-dev.yaml", sets: tuple[str, ...] = ()) -> Rendered:
    cmd = [tool("helm"), "template", RELEASE, str(ROOT), "--namespace", NAMESPACE, "-f",
           str(ROOT / values)]  # fmt: skip
    for api in CRD_API:
        cmd += ["--api-versions", api]
    for s in (*RENDER_SETS, *sets):
        cmd += ["--set", s]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return Rendered([d for d in yaml.safe_load_all(out) if d])


# --- rewriting addresses to loopback ----------------------------------------------------------

HOSTPORT = re.compile(r"^(?P<scheme>[a-z]+://)?(?P<host>[^:/]+):(?P<port>\d+)(?P<rest>/.*)?$")


@dataclass
class PortMap:
    """Where each (Service, port) of the cluster lives on this machine."""

    ports: dict[tuple[str, int], int] = field(default_factory=dict)

    def listen(self, service: str, port: int) -> int:
        if (service, port) not in self.ports:
            # A port chosen earlier is not bound until its server starts: the kernel may offer
            # it again (a run gave Jaeger's query API and its OTLP receiver the same one).
            taken = set(self.ports.values())
            local = free_ports(1)[0]
            while local in taken:
                local = free_ports(1)[0]
            self.ports[(service, port)] = local
        return self.ports[(service, port)]

    def dial(self, address: str) -> str:
        """`svc:port` or `scheme://svc.ns.svc:port/path` -> the same on 127.0.0.1."""
        m = HOSTPORT.match(address)
        if not m:
            raise ValueError(f"cannot rewrite address {address!r}")
        service = m["host"].split(".")[0]
        local = self.ports.get((service, int(m["port"])))
        if local is None:
            raise LookupError(f"{address}: Service {service} port {m['port']} is not running")
        return f"{m['scheme'] or ''}127.0.0.1:{local}{m['rest'] or ''}"


def loopback_config(config: dict[str, Any], service: str, ports: PortMap) -> dict[str, Any]:
    """A collector-style config (the collector's and Jaeger's) with every listen endpoint moved to
    127.0.0.1:<free port> (recorded in `ports` under this Service's name and the original port)
    and every exporter endpoint pointing at the local process of the Service it names."""

    def listen(value: str) -> str:
        m = HOSTPORT.match(value)
        if not m:
            return value
        return f"127.0.0.1:{ports.listen(service, int(m['port']))}"

    def walk(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "endpoint" and isinstance(v, str):
                    out[k] = ports.dial(v) if path[:1] == ("exporters",) else listen(v)
                elif k == "prometheus" and isinstance(v, dict) and "port" in v:
                    out[k] = {
                        **v,
                        "host": "127.0.0.1",
                        "port": ports.listen(service, int(v["port"])),
                    }
                else:
                    out[k] = walk(v, (*path, str(k)))
            return out
        if isinstance(node, list):
            return [walk(v, path) for v in node]
        return node

    return walk(config, ())  # type: ignore[no-any-return]


# --- processes --------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)

    def tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])


def wait_http(proc: Proc, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{proc.name}: {url} not ready after {timeout}s:\n{proc.tail()}")


@dataclass
class Traffic:
    """The requests the e2e test made: (method, path, status) and the created task's id."""

    calls: list[tuple[str, str, int]] = field(default_factory=list)
    task_id: str = ""


class Stack:
    """Jaeger, the collector, the app and Prometheus, configured from the rendered chart."""

    def __init__(self, rendered: Rendered, workdir: Path, api_port: int | None = None) -> None:
        self.r = rendered
        self.dir = workdir
        self.ports = PortMap()
        self.procs: list[Proc] = []
        self.token = secrets.token_urlsafe(24)
        self.app = rendered.app_name
        self.collector = f"{RELEASE}-otel-collector"
        self.jaeger = f"{RELEASE}-jaeger"
        self.api_port = api_port

    # process helpers
    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.dir / f"{name}.log"
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            popen = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.dir,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    # components
    def start_jaeger(self) -> None:
        config = loopback_config(self.r.config_of(self.jaeger), self.jaeger, self.ports)
        query = config.setdefault("extensions", {}).setdefault("jaeger_query", {})
        # The chart leaves the query ports at Jaeger's defaults (16686 HTTP, 16685 gRPC).
        for proto, port in (("http", 16686), ("grpc", 16685)):
            query.setdefault(proto, {})["endpoint"] = (
                f"127.0.0.1:{self.ports.listen(self.jaeger, port)}"
            )
        self.ensure_telemetry_reader(config, self.jaeger)
        path = self.dir / "jaeger.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        proc = self.spawn("jaeger", [tool("jaeger"), "--config", str(path)])
        wait_http(proc, f"{self.jaeger_url}/api/services")

    def ensure_telemetry_reader(self, config: dict[str, Any], service: str) -> None:
        """Without an explicit reader a collector binds metrics to :8888; keep it on loopback."""
        metrics = (
            config.setdefault("service", {}).setdefault("telemetry", {}).setdefault("metrics", {})
        )
        if not metrics.get("readers") and metrics.get("level") != "none":
            port = self.ports.listen(service, 8888)
            metrics["readers"] = [
                {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": port}}}}
            ]

    def start_collector(self) -> None:
        config = loopback_config(self.r.config_of(self.collector), self.collector, self.ports)
        path = self.dir / "otelcol.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        proc = self.spawn("otelcol", [tool("otelcol"), "--config", str(path)])
        health = self.ports.listen(self.collector, 13133)
        wait_http(proc, f"http://127.0.0.1:{health}/")

    @property
    def app_env(self) -> dict[str, str]:
        """The rendered pod's OTEL_* variables (Service addresses moved to loopback) plus the
        settings a pod gets from its volumes and Secrets, pointed at local files."""
        pod_env = self.r.container_env(self.app, POD)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TASK_MANAGER_"))}
        for key, value in pod_env.items():
            if key.startswith("OTEL_"):
                env[key] = self.ports.dial(value) if key.endswith("_ENDPOINT") else value
        ports = self.r.container_ports(self.app)
        env.update(
            TASK_MANAGER_HOST="127.0.0.1",
            TASK_MANAGER_PORT=str(self.ports.listen(self.app, ports["http"])),
            TASK_MANAGER_METRICS_PORT=str(self.ports.listen(self.app, ports["metrics"])),
            TASK_MANAGER_DATABASE_URL=f"sqlite:///{self.dir / 'tasks.db'}",
            TASK_MANAGER_AUTH_TOKENS=f"e2e:{self.token}",
            TASK_MANAGER_LOG_LEVEL=pod_env.get("TASK_MANAGER_LOG_LEVEL", "INFO"),
            TASK_MANAGER_DRAIN_SECONDS="1",
        )
        return env

    @property
    def service_name(self) -> str:
        """The service name the app reports in its traces (OTEL_SERVICE_NAME, else the
        service.name of OTEL_RESOURCE_ATTRIBUTES), as the rendered pod sets it."""
        env = self.r.container_env(self.app, POD)
        if name := env.get("OTEL_SERVICE_NAME"):
            return name
        attrs = dict(
            kv.split("=", 1) for kv in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",") if kv
        )
        return attrs["service.name"]

    def start_app(self) -> None:
        if self.api_port:
            self.ports.ports[(self.app, self.r.container_ports(self.app)["http"])] = self.api_port
        proc = self.spawn("app", [str(VENV_BIN / "task-manager"), "serve"], env=self.app_env)
        wait_http(proc, f"{self.api_url}/readyz")

    def scrape_job(self, service: str, pod: str) -> dict[str, Any]:
        """A static scrape job for the metrics port of `service`'s one pod, labelled as the
        Prometheus Operator's Kubernetes service discovery labels it."""
        port = self.r.service_port(service, "metrics")
        target = port.get("targetPort", port["port"])
        if isinstance(target, str):
            target = self.r.container_ports(service)[target]
        container = self.r.one("Deployment", service)["spec"]["template"]["spec"]["containers"][0]
        labels = {"namespace": NAMESPACE, "pod": pod, "service": service, "endpoint": "metrics"}
        return {
            "job_name": service,
            "scrape_interval": f"{SCRAPE_INTERVAL_S}s",
            "static_configs": [
                {
                    "targets": [f"127.0.0.1:{self.ports.ports[(service, int(target))]}"],
                    "labels": {**labels, "container": container["name"]},
                }
            ],
        }

    def start_prometheus(self) -> None:
        (self.dir / "rules.yaml").write_text(
            yaml.safe_dump({"groups": self.r.rule_groups}, sort_keys=False)
        )
        config = {
            "global": {"evaluation_interval": "5s"},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [
                self.scrape_job(self.app, POD),
                self.scrape_job(self.collector, COLLECTOR_POD),
            ],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        port = self.ports.listen("prometheus", 9090)
        proc = self.spawn(
            "prometheus",
            [
                tool("prometheus"),
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
        )
        wait_http(proc, f"{self.prometheus_url}/-/ready")

    def start(self) -> None:
        self.start_jaeger()
        self.start_collector()
        self.start_app()
        self.start_prometheus()

    # addresses
    @property
    def api_url(self) -> str:
        port = self.r.container_ports(self.app)["http"]
        return f"http://127.0.0.1:{self.ports.ports[(self.app, port)]}"

    @property
    def jaeger_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ports[(self.jaeger, 16686)]}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ports[('prometheus', 9090)]}"

    def scrape_interval_seconds(self, service: str) -> float:
        return float(SCRAPE_INTERVAL_S)


@contextlib.contextmanager
def running_stack(values: str = "values-dev.yaml", api_port: int | None = None) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="task-manager-stack-") as tmp:
        stack = Stack(render(values), Path(tmp), api_port=api_port)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
