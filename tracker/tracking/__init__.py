"""MLflow tracking of runs. The training process sends records (tracker.tracking.run) to a
tracking process of its own (tracker.tracking.service), which alone imports MLflow, applies them
to the store (tracker.tracking.store_writer) and spools them to disk while the store is away
(tracker.tracking.spool); `xp sync` sends a spool left behind (tracker.tracking.sync)."""

from tracker.tracking.run import start_run_with
from tracker.tracking.uris import CLASSIC_VIEW, DEFAULT_STORE, UI_ADDRESS, tracking_uri

__all__ = ["CLASSIC_VIEW", "DEFAULT_STORE", "UI_ADDRESS", "start_run_with", "tracking_uri"]
