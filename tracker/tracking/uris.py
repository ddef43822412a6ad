"""Where runs are tracked and how a person looks at them: the store's URI, the UI's address."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tracker.components import TrackedRun
from tracker.redact import mask_uri

DEFAULT_STORE = "sqlite:///mlruns/mlflow.db"
UI_ADDRESS = "http://127.0.0.1:5000"  # where `xp ui` serves a store that is not a server itself
# MLflow 3.17's UI picks between its GenAI and its classic machine-learning view (runs, charts,
# models) from the URL's workflowType first, then the reader's last choice, so every link xp
# prints carries CLASSIC_VIEW.
CLASSIC_VIEW = "workflowType=machine_learning"


def tracking_uri(settings: Mapping[str, Any]) -> str:
    """`[tracking] uri`, else MLFLOW_TRACKING_URI, else the embedded store under ./mlruns."""
    return settings.get("uri") or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE


def tracked_run(run_id: str, run_name: str, experiment_name: str, experiment_id: str, uri: str) -> TrackedRun:
    """Where the run is, passwords masked, with the command and the link that show it."""
    shown_uri = mask_uri(uri)
    served = uri.startswith(("http://", "https://"))
    base = uri.rstrip("/") if served else UI_ADDRESS
    ui_command = "open it in a browser" if served else "xp ui" if uri == DEFAULT_STORE else f"xp ui --uri '{shown_uri}'"
    return TrackedRun(
        run_id=run_id,
        run_name=run_name,
        experiment_name=experiment_name,
        experiment_id=experiment_id,
        tracking_uri=shown_uri,
        ui_command=ui_command,
        run_url=mask_uri(f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{CLASSIC_VIEW}"),
    )
