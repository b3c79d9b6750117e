#!/usr/bin/env bash
# A whole sweeper cluster on one machine, for trying things out and for tests:
# a Ray head, N Ray worker nodes (separate `ray start` processes, so each counts as a
# node) and an MLflow tracking server (sqlite store, local artifact store, basic auth).
#
#   deploy/local-cluster.sh up [N]     start (N worker nodes, default 2); idempotent
#   deploy/local-cluster.sh status     what runs, and where
#   deploy/local-cluster.sh down       stop everything this script started
#   deploy/local-cluster.sh purge      down, then delete the state (runs, secrets)
#
# Then: source deploy/.local-cluster/env && sweeper submit examples/quickstart.yaml
#
# Secure by default: Ray token authentication on (RAY_AUTH_MODE=token, a fresh 256-bit
# token in a 0600 file), the Ray dashboard / Jobs API and MLflow bound to 127.0.0.1,
# MLflow behind basic auth with a generated admin password and a Host allow-list, served
# by tracking-server.sh.
# Ray's own gRPC ports (GCS, raylets, object manager) listen on every interface: Ray has
# no switch for that; the token guards them, and a firewall should too.
#
# Settings (environment):
#   SWEEPER_CLUSTER_DIR  state folder (default: deploy/.local-cluster beside this script)
#   WORKER_CPUS          CPUs each worker node offers (default 1)
#   HEAD_CPUS            CPUs the head offers to trials (default 0: the head only coordinates)
#   OBJECT_STORE_BYTES   object store per node (default 200000000)
#   PYTHON               the Python with sweeper, ray and mlflow[auth] installed (default python3)
#   START_TIMEOUT        seconds to wait for each service (default 120)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${SWEEPER_CLUSTER_DIR:-$HERE/.local-cluster}"
PYTHON="${PYTHON:-python3}"
WORKER_CPUS="${WORKER_CPUS:-1}"
HEAD_CPUS="${HEAD_CPUS:-0}"
OBJECT_STORE_BYTES="${OBJECT_STORE_BYTES:-200000000}"
START_TIMEOUT="${START_TIMEOUT:-120}"

die() { echo "local-cluster: error: $*" >&2; exit 1; }
say() { echo "local-cluster: $*" >&2; }

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

secret() {  # 256 random bits, hex
  if command -v openssl >/dev/null 2>&1; then openssl rand -hex 32
  else "$PYTHON" -c 'import secrets; print(secrets.token_hex(32))'; fi
}

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

pid_of() { [[ -f "$STATE/pids/$1" ]] && cat "$STATE/pids/$1" || true; }

group_alive() { [[ -n "${1:-}" ]] && ps -eo pgid= | awk -v g="$1" '$1 == g {found = 1} END {exit !found}'; }

# A service runs in its own session (setsid), so its pid is also its process group and
# `down` can end exactly what this script started, nothing else.
launch() {  # name, command...
  local name="$1"; shift
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name"
}

fail_start() {  # name, reason
  say "$1 did not start: $2"
  [[ -f "$STATE/logs/$1.log" ]] && tail -n 30 "$STATE/logs/$1.log" >&2
  say "stopping what was started"
  stop_all
  exit 1
}

wait_for() {  # name, test command...
  local name="$1"; shift
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    alive "$(pid_of "$name")" || fail_start "$name" "the process exited"
    ((SECONDS < deadline)) || fail_start "$name" "not ready after ${START_TIMEOUT}s"
    sleep 0.5
  done
}

check_tools() {
  command -v setsid >/dev/null || die "setsid (util-linux) is needed"
  "$PYTHON" -c 'import ray, mlflow, flask_wtf, sweeper' 2>/dev/null \
    || die "$PYTHON needs ray, mlflow[auth] and sweeper: pip install -e '.[deploy]' (or: pip install -e . 'mlflow[auth]')"
}

ensure_secrets() {
  mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/artifacts"
  chmod 700 "$STATE"
  umask 077
  [[ -s "$STATE/ray_token" ]] || secret >"$STATE/ray_token"
  [[ -s "$STATE/mlflow_password" ]] || secret >"$STATE/mlflow_password"
  [[ -s "$STATE/flask_secret" ]] || secret >"$STATE/flask_secret"
}

ray_env() {
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$STATE/ray_token"
  unset RAY_AUTH_TOKEN RAY_ADDRESS RAY_API_SERVER_ADDRESS
  # Trials log from the driver, but a detached sweep's driver runs on the head.
  MLFLOW_TRACKING_PASSWORD="$(cat "$STATE/mlflow_password")"
  export MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD
}

start_mlflow() {  # served as tracking-server.sh serves it, on this folder's stores
  local port; port="$(free_port)"
  echo "$port" >"$STATE/mlflow_port"
  PYTHON="$PYTHON" \
  MLFLOW_BACKEND_STORE_URI="sqlite:///$STATE/mlflow.db" \
  MLFLOW_ARTIFACTS_DESTINATION="$STATE/artifacts" \
  MLFLOW_HOST=127.0.0.1 MLFLOW_PORT="$port" MLFLOW_WORKERS=1 MLFLOW_THREADS=4 \
  MLFLOW_ALLOWED_HOSTS="127.0.0.1:$port,localhost:$port" \
  MLFLOW_AUTH_DATABASE_URI="sqlite:///$STATE/basic_auth.db" \
  MLFLOW_AUTH_ADMIN_USERNAME=admin \
  MLFLOW_AUTH_ADMIN_PASSWORD="$(cat "$STATE/mlflow_password")" \
  MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$STATE/flask_secret")" \
  MLFLOW_DEFAULT_PERMISSION=NO_PERMISSIONS MLFLOW_AUTH_CACHE_TTL=60 \
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    launch mlflow "$HERE/tracking-server.sh"
}

start_head() {
  local gcs dash client agent
  gcs="$(free_port)"; dash="$(free_port)"; client="$(free_port)"; agent="$(free_port)"
  # Unix socket paths must stay under ~107 characters: keep Ray's temp dir short.
  mktemp -d "${TMPDIR:-/tmp}/sweeper-ray.XXXXXX" >"$STATE/ray_tmp"
  echo "$gcs" >"$STATE/gcs_port"; echo "$dash" >"$STATE/dashboard_port"
  launch head "$PYTHON" -m ray.scripts.scripts start --head --block --disable-usage-stats \
    --port "$gcs" --node-name head \
    --include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port "$dash" \
    --ray-client-server-port "$client" --dashboard-agent-listen-port "$agent" \
    --num-cpus "$HEAD_CPUS" --object-store-memory "$OBJECT_STORE_BYTES" \
    --temp-dir "$(cat "$STATE/ray_tmp")"
  wait_for head test -s "$(cat "$STATE/ray_tmp")/ray_current_cluster"
  wait_for head ray_api "/api/version"
}

start_worker() {  # index
  local i="$1" agent; agent="$(free_port)"
  launch "worker-$i" "$PYTHON" -m ray.scripts.scripts start --block --disable-usage-stats \
    --address "$(gcs_address)" --node-name "worker-$i" \
    --num-cpus "$WORKER_CPUS" --resources "{\"worker-$i\": 1}" \
    --dashboard-agent-listen-port "$agent" --object-store-memory "$OBJECT_STORE_BYTES"
}

gcs_address() { cat "$(cat "$STATE/ray_tmp")/ray_current_cluster"; }

wait_node() {  # index: worker-i registered; one retry (Ray gives a raylet 30 s to register)
  local i="$1" tries=0 deadline=$((SECONDS + START_TIMEOUT))
  until [[ "$(count_nodes)" -ge $((i + 1)) ]]; do
    if ! alive "$(pid_of "worker-$i")"; then
      ((tries++ < 1)) || fail_start "worker-$i" "the process exited"
      say "worker-$i exited during startup (a busy machine?); starting it again"
      cp "$STATE/logs/worker-$i.log" "$STATE/logs/worker-$i.failed.log"
      start_worker "$i"
    fi
    ((SECONDS < deadline)) || fail_start "worker-$i" "not registered after ${START_TIMEOUT}s"
    sleep 1
  done
}

ray_api() {  # path: GET from the dashboard with the token
  curl -sf -H "Authorization: Bearer $(cat "$STATE/ray_token")" "http://127.0.0.1:$(cat "$STATE/dashboard_port")$1"
}

count_nodes() {  # alive nodes, from the dashboard
  ray_api "/nodes?view=summary" | "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin)["data"]["summary"]; print(sum(n["raylet"]["state"] == "ALIVE" for n in d))' \
    2>/dev/null || echo 0
}

write_env() {
  local port; port="$(cat "$STATE/mlflow_port")"
  umask 077
  cat >"$STATE/env" <<EOF
# sweeper local cluster: source this file (it holds secrets; keep it private)
export RAY_ADDRESS=$(gcs_address)
export RAY_API_SERVER_ADDRESS=http://127.0.0.1:$(cat "$STATE/dashboard_port")
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH=$STATE/ray_token
export MLFLOW_TRACKING_URI=http://127.0.0.1:$port
export MLFLOW_TRACKING_USERNAME=admin
export MLFLOW_TRACKING_PASSWORD=$(cat "$STATE/mlflow_password")
EOF
}

running() { alive "$(pid_of head)" || alive "$(pid_of mlflow)"; }

up() {
  local n="${1:-2}"
  [[ "$n" =~ ^[0-9]+$ ]] || die "N must be a number of worker nodes, got '$n'"
  check_tools
  if running; then
    local have=0 p
    for p in "$STATE"/pids/worker-*; do [[ -e "$p" ]] && have=$((have + 1)); done
    [[ "$have" == "$n" ]] || die "already up with $have worker nodes; run '$0 down' first to change it to $n"
    say "already up"; status; return 0
  fi
  stop_all  # leftovers of a crashed run
  ensure_secrets
  ray_env
  say "starting MLflow, the Ray head and $n worker node(s) under $STATE"
  start_mlflow
  start_head
  # One node at a time: several raylets registering at once can pass Ray's 30 s limit.
  for ((i = 1; i <= n; i++)); do start_worker "$i"; wait_node "$i"; done
  wait_for mlflow curl -sf -o /dev/null "http://127.0.0.1:$(cat "$STATE/mlflow_port")/health"
  write_env
  status
  echo "Use it:  source $STATE/env && sweeper submit examples/quickstart.yaml"
}

stop_one() {  # name: SIGTERM the service's own process (it stops its children), then its group
  local name="$1" pid; pid="$(pid_of "$name")"
  [[ -n "$pid" ]] || return 0
  if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  for _ in $(seq 60); do group_alive "$pid" || break; sleep 0.5; done
  if group_alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || true; sleep 2
    group_alive "$pid" && kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/pids/$name"
}

stop_all() {
  [[ -d "$STATE/pids" ]] || return 0
  local p
  # Workers first: a worker node stopping after its head waits for a GCS that is gone.
  for p in "$STATE"/pids/worker-*; do [[ -e "$p" ]] && stop_one "$(basename "$p")"; done
  stop_one head
  stop_one mlflow
  if [[ -s "$STATE/ray_tmp" ]]; then rm -rf "$(cat "$STATE/ray_tmp")"; rm -f "$STATE/ray_tmp"; fi
  rm -f "$STATE/env"
}

down() {
  if [[ ! -d "$STATE/pids" ]] || [[ -z "$(ls -A "$STATE/pids")" ]]; then say "not running"; return 0; fi
  stop_all
  say "down (runs, artifacts and secrets kept in $STATE; '$0 purge' deletes them)"
}

status() {
  [[ -d "$STATE/pids" ]] && [[ -n "$(ls -A "$STATE/pids")" ]] || { echo "not running"; return 3; }
  local name pid bad=0
  for f in "$STATE"/pids/*; do
    name="$(basename "$f")"; pid="$(cat "$f")"
    if alive "$pid"; then echo "$name: running (pid $pid)"; else echo "$name: DEAD (see $STATE/logs/$name.log)"; bad=1; fi
  done
  if [[ -f "$STATE/env" ]]; then
    echo "ray nodes alive: $(count_nodes)"
    grep -E 'RAY_ADDRESS|RAY_API_SERVER_ADDRESS|MLFLOW_TRACKING_URI' "$STATE/env" | sed 's/^export /  /'
    echo "  credentials and token: source $STATE/env"
  fi
  return "$bad"
}

case "${1:-}" in
  up) up "${2:-2}" ;;
  down) down ;;
  status) status ;;
  purge) stop_all; rm -rf "$STATE"; say "purged $STATE" ;;
  *) echo "usage: $0 up [N] | status | down | purge" >&2; exit 2 ;;
esac
