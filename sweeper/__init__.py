"""sweeper: hyperparameter sweeps for fully-connected networks on Ray, tracked in MLflow."""
