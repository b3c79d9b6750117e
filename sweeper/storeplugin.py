"""``sweeper:`` tracking-store URIs for an MLflow tracking server.

``mlflow server --backend-store-uri sweeper:<database URI>`` serves the database through
:class:`sweeper.serverstore.BatchSqlStore`: MLflow's SQL store with ``log_batch`` in one
transaction, about half of what a sweeper trial costs such a server. The model registry
and the auth app take the database URI itself (``--registry-store-uri``). It needs sweeper
installed in the server's Python; ``deploy/tracking-server.sh`` uses it where it is.

MLflow loads this module's entry point (``mlflow.tracking_store`` in ``pyproject.toml``)
whenever it is imported, in every process: it imports nothing until a store is built.
"""

from __future__ import annotations

import os
from typing import Any

SCHEME = "sweeper"
PREFIX = SCHEME + ":"


def database_uri(store_uri: str) -> str:
    """The database URI inside ``sweeper:<database URI>``.

    Raises:
        mlflow.exceptions.MlflowException: Not that form, or not a database MLflow serves.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.store.db.db_types import DATABASE_ENGINES
    from mlflow.utils.uri import extract_db_type_from_uri

    inner = store_uri[len(PREFIX):] if store_uri.startswith(PREFIX) else ""
    try:
        engine = extract_db_type_from_uri(inner)
    except MlflowException:
        engine = None
    if engine not in DATABASE_ENGINES:
        raise MlflowException.invalid_parameter_value(
            f"'{store_uri}' is not a sweeper store URI: write '{PREFIX}' and then a database URI "
            f"MLflow serves ({', '.join(DATABASE_ENGINES)}), e.g. {PREFIX}sqlite:///mlflow.db"
        )
    return inner


def build(store_uri: str, artifact_uri: str | None = None) -> Any:
    """The store for a ``sweeper:`` URI: a ``BatchSqlStore`` on the database, or MLflow's
    own store where MLflow's workspaces are on (their store is a subclass of MLflow's that
    this one does not follow)."""
    from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
    from mlflow.tracking._tracking_service import utils

    inner = database_uri(store_uri)
    if MLFLOW_ENABLE_WORKSPACES.get():
        return utils._get_sqlalchemy_store(inner, artifact_uri)
    if artifact_uri is None:  # as MLflow's own builder: the server's artifact root
        artifact_uri = os.environ.get(utils._SERVER_ARTIFACT_ROOT_ENV_VAR, utils.DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
    from .serverstore import BatchSqlStore

    # as MLflow's server builder: the read replica `mlflow server` was given, if any
    return BatchSqlStore(inner, artifact_uri, read_db_uri=os.environ.get(READ_REPLICA_ENV) or None)


READ_REPLICA_ENV = "_MLFLOW_SERVER_READ_REPLICA_BACKEND_STORE"
"""Where ``mlflow server --read-replica-backend-store-uri`` leaves its URI for the store
(``mlflow.server.constants.READ_REPLICA_BACKEND_STORE_URI_ENV_VAR``)."""
