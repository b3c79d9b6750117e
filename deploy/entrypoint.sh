#!/usr/bin/env bash
# The container's entrypoint: the first argument picks the role.
#   head     a Ray head node          (deploy/head.sh; env as documented there)
#   worker   a Ray worker node        (deploy/worker.sh)
#   mlflow   the MLflow tracking server (deploy/tracking-server.sh)
#   sweeper ARGS... / submit ARGS... / validate ARGS...  the driver: `sweeper ARGS`
#   anything else runs as a command (bash, python, ray, ...)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
role="${1:---help}"
case "$role" in
  head) shift; exec "$here/head.sh" "$@" ;;
  worker) shift; exec "$here/worker.sh" "$@" ;;
  mlflow) shift; exec "$here/tracking-server.sh" "$@" ;;
  sweeper) shift; exec sweeper "$@" ;;
  -*|submit|validate|status|logs|leaderboard|rank|report|gradcheck) exec sweeper "$@" ;;
  *) exec "$@" ;;
esac
