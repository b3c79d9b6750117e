#!/usr/bin/env bash
# The MLflow tracking server of a sweeper cluster: PostgreSQL for runs and the model
# registry, an artifact store (a folder, or s3://, gs://, ...) served through the server,
# MLflow's basic authentication and a Host header allow-list. Runs in the foreground
# (for systemd, a container or tmux).
#
# Required:
#   MLFLOW_BACKEND_STORE_URI      postgresql+psycopg://USER@DBHOST:5432/mlflow  (no password in it:
#                                 it would show in `ps`; use PGPASSWORD or ~/.pgpass)
#   MLFLOW_ARTIFACTS_DESTINATION  /srv/mlflow/artifacts, or s3://bucket/prefix, ...
# Secrets (first start): either set
#   MLFLOW_AUTH_ADMIN_PASSWORD, MLFLOW_FLASK_SERVER_SECRET_KEY
# or let this script generate them (0600) into MLFLOW_SECRETS_DIR
#   (default ~/.config/sweeper/mlflow); the admin password is created in the user
#   store on the first start only; rotate it with MLflow's update-password API.
# Optional:
#   MLFLOW_HOST (127.0.0.1), MLFLOW_PORT (5000)
#   MLFLOW_WORKERS (1)            gunicorn worker processes; each serves MLFLOW_THREADS (4)
#   MLFLOW_THREADS (4)            requests at once on threads. More workers use more cores
#                                 (with PostgreSQL; keep 1 on a sqlite store, which locks).
#   MLFLOW_ALLOWED_HOSTS          Host headers accepted (default 127.0.0.1:PORT,localhost:PORT);
#                                 add the name clients use, e.g. mlflow.internal:5000
#   MLFLOW_AUTH_DATABASE_URI      user store (default: the backend store; its own tables)
#   MLFLOW_AUTH_ADMIN_USERNAME    (admin)
#   MLFLOW_DEFAULT_PERMISSION     what a new user may do with others' experiments (READ)
#   MLFLOW_AUTH_CACHE_TTL         seconds a checked password stays trusted (60). Each check
#                                 is a PBKDF2 hash, ~0.5 s of CPU: uncached, every MLflow
#                                 call of a sweep pays it. A changed or revoked password
#                                 is honoured after at most this long; 0 turns the cache off.
#   SWEEPER_SERVER_STORE (auto)   auto: store runs through sweeper's store where sweeper is
#                                 installed in $PYTHON (MLflow's SQL store with each log_batch
#                                 in one transaction: about half the server CPU a trial costs;
#                                 a sqlite file goes into WAL mode). off: MLflow's own store,
#                                 as also where MLflow's job runner is turned on.
#   PYTHON                        (python3)
set -euo pipefail

die() { echo "tracking-server: error: $*" >&2; exit 1; }

PYTHON="${PYTHON:-python3}"
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI, e.g. postgresql+psycopg://mlflow@db:5432/mlflow}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION, e.g. /srv/mlflow/artifacts or s3://bucket/mlflow}"
HOST="${MLFLOW_HOST:-127.0.0.1}"
PORT="${MLFLOW_PORT:-5000}"
WORKERS="${MLFLOW_WORKERS:-1}"
THREADS="${MLFLOW_THREADS:-4}"
ALLOWED_HOSTS="${MLFLOW_ALLOWED_HOSTS:-127.0.0.1:$PORT,localhost:$PORT}"
SECRETS="${MLFLOW_SECRETS_DIR:-$HOME/.config/sweeper/mlflow}"

[[ "$MLFLOW_BACKEND_STORE_URI" =~ ://[^/@]*:[^/@]*@ ]] \
  && die "MLFLOW_BACKEND_STORE_URI holds a password; move it to PGPASSWORD or ~/.pgpass"
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "MLFLOW_WORKERS must be a whole number >= 1, not '$WORKERS'"
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "MLFLOW_THREADS must be a whole number >= 1, not '$THREADS'"
[[ "${SWEEPER_SERVER_STORE:-auto}" =~ ^(auto|off)$ ]] \
  || die "SWEEPER_SERVER_STORE must be auto or off, not '${SWEEPER_SERVER_STORE}'"
[[ "$ALLOWED_HOSTS" == "*" ]] && die "MLFLOW_ALLOWED_HOSTS='*' turns off the Host check; name the hosts"
"$PYTHON" -c 'import mlflow, flask_wtf' 2>/dev/null || die "$PYTHON needs mlflow[auth]: pip install 'mlflow[auth]'"
if [[ "$MLFLOW_BACKEND_STORE_URI" == postgresql* ]]; then
  "$PYTHON" -c 'import psycopg' 2>/dev/null || die "$PYTHON needs psycopg (3): pip install 'psycopg[binary]'"
fi

secret_from_file() {  # variable, file: fill the variable from the file, generating it once
  local var="$1" file="$SECRETS/$2"
  [[ -n "${!var:-}" ]] && return 0
  if [[ ! -s "$file" ]]; then
    (umask 077 && mkdir -p "$SECRETS" && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$file")
    echo "tracking-server: generated $file" >&2
  fi
  export "$var=$(cat "$file")"
}
secret_from_file MLFLOW_AUTH_ADMIN_PASSWORD admin_password
secret_from_file MLFLOW_FLASK_SERVER_SECRET_KEY flask_secret_key
export MLFLOW_AUTH_ADMIN_USERNAME="${MLFLOW_AUTH_ADMIN_USERNAME:-admin}"

# The auth app reads its settings from an ini file; it holds no secret.
AUTH_INI="$(mktemp "${TMPDIR:-/tmp}/mlflow-auth.XXXXXX.ini")"
trap 'rm -f "$AUTH_INI"' EXIT
cat >"$AUTH_INI" <<EOF
[mlflow]
default_permission = ${MLFLOW_DEFAULT_PERMISSION:-READ}
database_uri = ${MLFLOW_AUTH_DATABASE_URI:-$MLFLOW_BACKEND_STORE_URI}
admin_username = $MLFLOW_AUTH_ADMIN_USERNAME
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = ${MLFLOW_AUTH_CACHE_TTL:-60}
EOF
export MLFLOW_AUTH_CONFIG_PATH="$AUTH_INI"
# MLflow's background job runner (GenAI jobs) is not used by sweeper.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"

# MLflow's Flask app under gunicorn's threaded workers rather than its default uvicorn:
# the same requests, 0.79-0.92x the server CPU for each trial sweeper logs (create, one
# batch, two artifacts, terminate; bench/tracking_cost.py), and no delayed-ACK wait with several workers
# (uvicorn #3149). MLflow takes --allowed-hosts only with uvicorn, so the Host allow-list
# goes to the same check through its environment variable.
export MLFLOW_SERVER_ALLOWED_HOSTS="$ALLOWED_HOSTS"
# Runs go through sweeper's store (sweeper/serverstore.py) where it is installed as
# MLflow's tracking-store plugin and loads against this MLflow: the `sweeper:` prefix picks
# it. The model registry and the user store take the database URI as it is.
STORE_URI="$MLFLOW_BACKEND_STORE_URI" STORE="MLflow's store"
if [[ "${SWEEPER_SERVER_STORE:-auto}" == off ]]; then
  STORE="MLflow's store (SWEEPER_SERVER_STORE=off)"
elif [[ "${MLFLOW_SERVER_ENABLE_JOB_EXECUTION,,}" =~ ^(true|1)$ ]]; then
  # MLflow's job store reads the backend URI as a plain database URI
  STORE="MLflow's store (MLflow's job runner is on)"
elif "$PYTHON" -c '
import sys
from importlib.metadata import entry_points
if not any(e.name == "sweeper" for e in entry_points(group="mlflow.tracking_store")):
    sys.exit(1)
import sweeper.serverstore' 2>/dev/null; then
  STORE_URI="sweeper:$MLFLOW_BACKEND_STORE_URI" STORE="sweeper's store"
else
  STORE="MLflow's store (sweeper's store does not load in $PYTHON)"
fi
echo "tracking-server: MLflow on http://$HOST:$PORT (allowed hosts: $ALLOWED_HOSTS), basic auth, user '$MLFLOW_AUTH_ADMIN_USERNAME', runs in $STORE" >&2
"$PYTHON" -m mlflow server --app-name basic-auth \
  --backend-store-uri "$STORE_URI" --registry-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
  --host "$HOST" --port "$PORT" --workers "$WORKERS" \
  --gunicorn-opts "--worker-class gthread --threads $THREADS" &
child=$!
# Forward a stop to MLflow and wait, so the ini file is removed after it exits.
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; rm -f "$AUTH_INI"' TERM INT
wait "$child"
