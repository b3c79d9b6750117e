"""The deploy/ folder: deploy/local-cluster.sh brings up a real Ray cluster (head + two
worker nodes, token auth) and an MLflow server (basic auth) that a sweep, and a detached
sweep as a Ray Job, run on; `down` leaves nothing behind. The container and Kubernetes
manifests are checked for the keys and the secure defaults they must have."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SCRIPT = DEPLOY / "local-cluster.sh"
GRID = """\
name: {name}
seed: 2
dataset: {{name: moons, n_samples: 200, noise: 0.2}}
grid:
  lambda: [0, 0.1]
  initializer: [he, xavier]
fixed:
  architecture: [8, 4]
  epochs: 15
ensemble: {{method: none}}
"""


@dataclass
class LocalCluster:
    state: Path
    env: dict[str, str]  # what `source STATE/env` exports
    run_env: dict[str, str]  # a clean environment for the script and its clients

    def client_env(self) -> dict[str, str]:
        return {**self.run_env, **self.env}

    def port(self, name: str) -> int:
        return int((self.state / f"{name}_port").read_text())

    def script(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(SCRIPT), *args], env=self.run_env, capture_output=True, text=True, timeout=timeout
        )


def _clean_env() -> dict[str, str]:
    # This process may hold another cluster's Ray token mode (ray.init sets RAY_AUTH_MODE).
    return {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = re.findall(r"^export (\w+)=(.*)$", path.read_text(), flags=re.M)
    return dict(pairs)


def _logs(state: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted((state / "logs").glob("*.log")))


@pytest.fixture(scope="module")
def local_cluster():
    # Ray's Unix sockets live under the state folder's Ray temp dir: keep the path short.
    state = Path(tempfile.mkdtemp(prefix="swc"))
    run_env = {**_clean_env(), "SWEEPER_CLUSTER_DIR": str(state), "PYTHON": sys.executable, "START_TIMEOUT": "180"}
    cluster = LocalCluster(state, {}, run_env)
    try:
        up = cluster.script("up", "2", timeout=600)
        assert up.returncode == 0, f"up failed:\n{up.stdout}\n{up.stderr}\n{_logs(state)}"
        cluster.env = _read_env_file(state / "env")
        yield cluster
    finally:
        cluster.script("down", timeout=300)
        shutil.rmtree(state, ignore_errors=True)


def _http(url: str, auth: tuple[str, str] | None = None, token: str | None = None, host: str | None = None) -> int:
    request = urllib.request.Request(url)
    if host:
        request.add_header("Host", host)
    if auth:
        request.add_header("Authorization", "Basic " + b64encode(":".join(auth).encode()).decode())
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def _trials(cluster: LocalCluster, experiment: str):
    env = cluster.env
    os.environ.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=env["MLFLOW_TRACKING_PASSWORD"])
    try:
        client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
        exp = client.get_experiment_by_name(experiment)
        assert exp is not None, f"no experiment {experiment}"
        runs = client.search_runs([exp.experiment_id], "tags.`sweeper.kind` = 'trial'", max_results=100)
        artifacts = {r.info.run_id: [a.path for a in client.list_artifacts(r.info.run_id)] for r in runs}
        return runs, artifacts
    finally:
        os.environ.pop("MLFLOW_TRACKING_USERNAME", None)
        os.environ.pop("MLFLOW_TRACKING_PASSWORD", None)


def test_local_cluster_is_locked_down(local_cluster):
    state, env = local_cluster.state, local_cluster.env
    for secret in ("ray_token", "mlflow_password", "env"):
        assert stat.S_IMODE((state / secret).stat().st_mode) == 0o600, secret
    dashboard = f"http://127.0.0.1:{local_cluster.port('dashboard')}/api/jobs/"
    assert _http(dashboard) == 401
    assert _http(dashboard, token="0" * 64) == 403
    assert _http(dashboard, token=(state / "ray_token").read_text().strip()) == 200
    experiments = f"{env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert _http(experiments) == 401
    assert _http(experiments, auth=("admin", "wrong")) == 401
    assert _http(experiments, auth=("admin", env["MLFLOW_TRACKING_PASSWORD"])) == 200
    # A page of another name that resolves to 127.0.0.1 (DNS rebinding) is refused.
    assert _http(experiments, auth=("admin", env["MLFLOW_TRACKING_PASSWORD"]), host="attacker.example") == 403
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, v4 and v4-mapped
    for name in ("dashboard", "mlflow"):
        addresses = _listening(local_cluster.port(name))
        assert addresses and set(addresses) <= loopback, f"{name} listens on {addresses}"


def test_sweep_runs_on_the_worker_nodes_of_the_local_cluster(local_cluster, tmp_path):
    grid = tmp_path / "grid.yaml"
    # Eight trials long enough (~0.3 s each) that one node cannot take them all while the
    # other sits idle: with four 10 ms trials, Ray may queue the second on the first node.
    text = GRID.format(name="local-cluster").replace("lambda: [0, 0.1]", "lambda: [0, 0.01, 0.1, 1.0]")
    grid.write_text(text.replace("epochs: 15", "epochs: 400"))
    env = local_cluster.env
    done = subprocess.run(
        [sys.executable, "-m", "sweeper.cli", "submit", str(grid), "--quiet",
         "--address", env["RAY_ADDRESS"], "--tracking-uri", env["MLFLOW_TRACKING_URI"]],
        env=local_cluster.client_env(), capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    runs, artifacts = _trials(local_cluster, "local-cluster")
    assert len(runs) == 8
    assert {r.data.tags["sweeper.status"] for r in runs} == {"finished"}
    assert all("weights.npz" in paths for paths in artifacts.values())
    nodes = {r.data.tags["sweeper.node"].rsplit(":", 1)[-1] for r in runs}
    assert len(nodes) == 2, f"the two worker nodes (the head has no CPU) should share the trials: {nodes}"


def _jobs(cluster: LocalCluster, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=cluster.client_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_detached_sweep_runs_as_a_ray_job(local_cluster, tmp_path):
    grid = tmp_path / "detached.yaml"
    grid.write_text(GRID.format(name="detached"))
    submitted = _jobs(
        local_cluster,
        "from sweeper.jobs import detach; import os; "
        f"detach({str(grid)!r}, os.environ['RAY_API_SERVER_ADDRESS'], os.environ['MLFLOW_TRACKING_URI'])",
    )
    job_id = re.search(r"Submitted (\S+) to", submitted).group(1)
    assert f"sweeper logs {job_id}" in submitted
    assert job_id.startswith("sweeper-detached-")
    status = ""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        rows = json.loads(_jobs(local_cluster, "import json, os; from sweeper.jobs import list_jobs; "
                                               "print(json.dumps(list_jobs(os.environ['RAY_ADDRESS'])))"))
        status = {r["id"]: r["status"] for r in rows}.get(job_id, "")
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            break
        time.sleep(3)
    logs = _jobs(local_cluster, f"from sweeper.jobs import logs; logs([{job_id!r}])")
    assert status == "SUCCEEDED", logs[-3000:]
    assert "Leaderboard" in logs
    listing = _jobs(local_cluster, "from sweeper.jobs import status; status([])")
    assert job_id in listing and "SUCCEEDED" in listing
    runs, artifacts = _trials(local_cluster, "detached")
    assert len(runs) == 4 and all("weights.npz" in paths for paths in artifacts.values())


def test_down_leaves_nothing_running_or_listening(local_cluster):
    # Runs last in this module: it stops the module's cluster (the fixture's own `down`
    # after it is then a no-op).
    state = local_cluster.state
    pids = [int(p.read_text()) for p in (state / "pids").iterdir()]
    ports = [local_cluster.port(name) for name in ("gcs", "dashboard", "mlflow")]
    assert len(pids) == 4
    down = local_cluster.script("down")
    assert down.returncode == 0, down.stdout + down.stderr
    groups = subprocess.run(["ps", "-eo", "pgid="], capture_output=True, text=True).stdout.split()
    assert not set(pids) & {int(g) for g in groups}, "a process of the cluster is still running"
    for port in ports:
        assert not _listening(port), f"port {port} still listening"
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
    again = local_cluster.script("down")
    assert again.returncode == 0 and "not running" in again.stderr


def test_detached_sweeps_need_a_cluster_address_and_a_tracking_server(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from sweeper.jobs import status, submit_detached

    for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(status, [])
    assert result.exit_code == 2 and "--address http://HEAD:8265" in result.output
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID.format(name="nowhere"))
    for uri in (None, "sqlite:///mlflow.db", "file:./mlruns"):
        with pytest.raises(click.UsageError, match="tracking"):
            submit_detached(grid, "http://127.0.0.1:1", uri)
    with pytest.raises(click.ClickException, match="cannot reach the Ray Jobs API"):
        submit_detached(grid, f"http://127.0.0.1:{_closed_port()}", "http://mlflow:5000")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again once the with block ends


# -- static checks of the manifests ------------------------------------------------------


def _secret_like(key: str) -> bool:
    return bool(re.search(r"PASSWORD|SECRET|TOKEN", key, flags=re.I))


def _literal_secrets(env: dict) -> list[str]:
    """Keys whose value is a literal rather than a ${VAR} taken from the (uncommitted) .env."""
    return [k for k, v in env.items() if _secret_like(k) and not re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", str(v))]


def test_compose_file_has_every_service_bound_to_loopback_without_literal_secrets():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"head", "worker", "mlflow", "postgres"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 2
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
        env = service.get("environment", {})
        assert not _literal_secrets(env), f"{name} has literal secrets"
    assert services["head"]["environment"]["RAY_AUTH_MODE"] == "token"
    assert services["worker"]["environment"]["RAY_AUTH_MODE"] == "token"
    assert "postgresql" in services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    user_part = services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].split("//")[1].split("@")[0]
    assert ":" not in user_part, "a password in the database URI"
    assert "ports" not in services["postgres"]
    example = (DEPLOY / ".env.example").read_text()
    assert all(not value for value in re.findall(r"^\w*(?:PASSWORD|SECRET|TOKEN)\w*=(.*)$", example, flags=re.M))
    ignored = (DEPLOY / ".gitignore").read_text().split()
    assert ".env" in ignored and ".local-cluster/" in ignored


def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kuberay" / name).read_text()) if d]


def _containers(pod_spec: dict) -> list[dict]:
    return pod_spec["template"]["spec"]["containers"]


def _env_has_no_literal_secret(containers: list[dict]) -> None:
    for c in containers:
        for var in c.get("env", []):
            if _secret_like(var["name"]):
                assert "valueFrom" in var and "value" not in var, f"{c['name']}: {var['name']} is a literal"


def test_raycluster_has_token_auth_and_both_groups():
    (cluster,) = _docs("raycluster.yaml")
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["kind"] == "RayCluster"
    spec = cluster["spec"]
    assert spec["authOptions"]["mode"] == "token" and spec["authOptions"]["secretName"]
    head, workers = spec["headGroupSpec"], spec["workerGroupSpecs"]
    assert head["serviceType"] == "ClusterIP"
    assert workers and all(w["replicas"] >= 1 for w in workers)
    for group in [head, *workers]:
        _env_has_no_literal_secret(_containers(group))


def test_rayjob_runs_sweeper_submit_on_a_grid_from_a_configmap():
    docs = {d["kind"]: d for d in _docs("rayjob-sweep.yaml")}
    job, config = docs["RayJob"], docs["ConfigMap"]
    assert "sweeper submit" in job["spec"]["entrypoint"]
    grid_file = job["spec"]["entrypoint"].split()[2]
    name = Path(grid_file).name
    assert name in config["data"] and yaml.safe_load(config["data"][name])["grid"]
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["authOptions"]["mode"] == "token"
    head = cluster["headGroupSpec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in head["containers"][0]["volumeMounts"]}
    volume = mounts[str(Path(grid_file).parent)]
    assert {v["name"]: v for v in head["volumes"]}[volume]["configMap"]["name"] == config["metadata"]["name"]
    _env_has_no_literal_secret(_containers(cluster["headGroupSpec"]))


def test_mlflow_manifest_is_a_clusterip_service_with_secrets_from_kubernetes():
    docs = {d["kind"]: d for d in _docs("mlflow.yaml")}
    assert docs["Service"]["spec"].get("type", "ClusterIP") == "ClusterIP"
    (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {v["name"]: v for v in container["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"].startswith("postgresql")
    assert "*" != env["MLFLOW_ALLOWED_HOSTS"]["value"]
    for name in ("PGPASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert "secretKeyRef" in env[name]["valueFrom"]
    _env_has_no_literal_secret([container])


def test_no_manifest_opens_a_load_balancer_or_node_port():
    for path in [DEPLOY / "compose.yaml", *sorted((DEPLOY / "kuberay").glob("*.yaml"))]:
        text = path.read_text()
        assert "LoadBalancer" not in text and "NodePort" not in text, path.name


@pytest.mark.parametrize("script", sorted(p.name for p in DEPLOY.glob("*.sh")))
def test_scripts_parse_and_are_executable(script):
    path = DEPLOY / script
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert os.access(path, os.X_OK)


def test_dockerfile_builds_one_image_for_every_role():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\w+)", text, flags=re.M | re.I)
    assert [name for _, name in stages] == ["build", "runtime"]
    assert all("python" in image and "slim" in image for image, _ in stages)
    assert re.search(r'^ENTRYPOINT \["tini", "--", "/opt/sweeper/entrypoint.sh"\]', text, flags=re.M)
    assert re.search(r"^USER (?!root)\w+", text, flags=re.M)
    assert "psycopg" in text and "mlflow[auth]" in text
    ignore = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines() if line[:1] not in ("", "#")]
    assert ignore[0] == "*" and "!sweeper/" in ignore  # an allow-list: no .env, no local stores
    assert not [line for line in ignore if line.startswith("!") and (".env" in line or ".local-cluster" in line)]
    entrypoint = (DEPLOY / "entrypoint.sh").read_text()
    for role, script in (("head", "head.sh"), ("worker", "worker.sh"), ("mlflow", "tracking-server.sh")):
        assert re.search(rf"^\s*{role}\).*{re.escape(script)}", entrypoint, flags=re.M), role


def test_no_secret_is_committed_in_deploy():
    pattern = re.compile(r"(PASSWORD|SECRET_KEY|AUTH_TOKEN)\s*[:=]\s*['\"]?([A-Za-z0-9+/_-]{12,})", re.I)
    for path in DEPLOY.rglob("*"):
        if path.is_file() and ".local-cluster" not in path.parts:
            for match in pattern.finditer(path.read_text(errors="replace")):
                assert match.group(2).startswith(("set", "$")), f"{path.name}: {match.group(0)}"
