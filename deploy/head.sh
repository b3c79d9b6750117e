#!/usr/bin/env bash
# The Ray head node of a sweeper cluster, in the foreground (systemd, a container, tmux).
# Token authentication is always on: every node, driver and `sweeper status` needs the token.
#
# Token: RAY_AUTH_TOKEN, or the file RAY_AUTH_TOKEN_PATH (default ~/.ray/auth_token),
#   generated (256 bits, 0600) on the first start when neither exists. Copy that file to
#   each worker and to the machines that submit sweeps (scp, a secret manager): never to git.
# Optional:
#   RAY_PORT (6379)             GCS port workers and drivers connect to
#   RAY_DASHBOARD_HOST          dashboard + Jobs API bind address (127.0.0.1; reach it via an
#                               SSH tunnel, or set the head's private IP to open it to the LAN)
#   RAY_DASHBOARD_PORT (8265)
#   RAY_CLIENT_PORT (10001)     Ray Client server port
#   RAY_NODE_IP                 this node's address as the others reach it (Ray picks one)
#   HEAD_CPUS                   CPUs the head offers to trials (default: Ray counts them;
#                               0 keeps the head for coordination and detached drivers)
#   HEAD_GPUS
#   MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD
#                               for detached sweeps, whose driver runs on the head
#   PYTHON (python3)
#
# Ray's gRPC ports (GCS, raylet, object manager, workers 10002-19999) listen on every
# interface whatever the settings: firewall them to the cluster's own network.
set -euo pipefail

die() { echo "head: error: $*" >&2; exit 1; }
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import ray, sweeper' 2>/dev/null || die "$PYTHON needs ray and sweeper: pip install -e ."

export RAY_AUTH_MODE=token
if [[ -z "${RAY_AUTH_TOKEN:-}" ]]; then
  export RAY_AUTH_TOKEN_PATH="${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"
  if [[ ! -s "$RAY_AUTH_TOKEN_PATH" ]]; then
    (umask 077 && mkdir -p "$(dirname "$RAY_AUTH_TOKEN_PATH")" \
      && "$PYTHON" -c 'import secrets; print(secrets.token_hex(32))' >"$RAY_AUTH_TOKEN_PATH")
    echo "head: generated the cluster token in $RAY_AUTH_TOKEN_PATH; copy it to every worker and client" >&2
  fi
fi

args=(--head --block --disable-usage-stats
  --port "${RAY_PORT:-6379}"
  --dashboard-host "${RAY_DASHBOARD_HOST:-127.0.0.1}" --dashboard-port "${RAY_DASHBOARD_PORT:-8265}"
  --ray-client-server-port "${RAY_CLIENT_PORT:-10001}"
  --include-dashboard true)
[[ -n "${RAY_NODE_IP:-}" ]] && args+=(--node-ip-address "$RAY_NODE_IP")
[[ -n "${HEAD_CPUS:-}" ]] && args+=(--num-cpus "$HEAD_CPUS")
[[ -n "${HEAD_GPUS:-}" ]] && args+=(--num-gpus "$HEAD_GPUS")
[[ -z "${MLFLOW_TRACKING_URI:-}" ]] && echo "head: note: MLFLOW_TRACKING_URI is unset; detached sweeps must name one" >&2

exec "$PYTHON" -m ray.scripts.scripts start "${args[@]}" "$@"
