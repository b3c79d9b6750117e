#!/usr/bin/env bash
# A Ray worker node of a sweeper cluster, in the foreground (systemd, a container, tmux).
#
# Required:
#   RAY_HEAD_ADDRESS            the head's GCS address, HEAD:6379
#   the cluster token           RAY_AUTH_TOKEN, or the file RAY_AUTH_TOKEN_PATH
#                               (default ~/.ray/auth_token) copied from the head
# Optional:
#   WORKER_CPUS, WORKER_GPUS    what this node offers (default: Ray counts them); a trial
#                               holds resources.cpus_per_trial / gpus_per_trial of the grid
#   WORKER_RESOURCES            custom resources as JSON, e.g. '{"bigmem": 1}'
#   RAY_NODE_IP                 this node's address as the others reach it
#   PYTHON (python3)            with sweeper's dependencies (pip install -e . ; '.[gpu]' on GPUs)
set -euo pipefail

die() { echo "worker: error: $*" >&2; exit 1; }
PYTHON="${PYTHON:-python3}"
: "${RAY_HEAD_ADDRESS:?set RAY_HEAD_ADDRESS to HEAD_HOST:6379 (the GCS address of the head)}"
"$PYTHON" -c 'import ray, numpy, threadpoolctl' 2>/dev/null || die "$PYTHON needs sweeper's dependencies: pip install -e ."

export RAY_AUTH_MODE=token
if [[ -z "${RAY_AUTH_TOKEN:-}" ]]; then
  export RAY_AUTH_TOKEN_PATH="${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"
  [[ -s "$RAY_AUTH_TOKEN_PATH" ]] || die "no cluster token: copy the head's $RAY_AUTH_TOKEN_PATH here (or set RAY_AUTH_TOKEN)"
fi

args=(--address "$RAY_HEAD_ADDRESS" --block --disable-usage-stats)
[[ -n "${RAY_NODE_IP:-}" ]] && args+=(--node-ip-address "$RAY_NODE_IP")
[[ -n "${WORKER_CPUS:-}" ]] && args+=(--num-cpus "$WORKER_CPUS")
[[ -n "${WORKER_GPUS:-}" ]] && args+=(--num-gpus "$WORKER_GPUS")
[[ -n "${WORKER_RESOURCES:-}" ]] && args+=(--resources "$WORKER_RESOURCES")

exec "$PYTHON" -m ray.scripts.scripts start "${args[@]}" "$@"
