"""`xp sync`: send the spools runs left behind when their tracking store stayed away past their
end, in order, each exactly once; a run whose records stop short of its end is ended FAILED."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tracker.redact import REDACTED
from tracker.stores import SHORT_ID, StoreError, store_uri
from tracker.tracking.service import died_without_ending
from tracker.tracking.spool import Spool, SpoolBusy, spools_under
from tracker.tracking.store_writer import StoreUnavailable, StoreWriter, send_spool


@dataclass(frozen=True)
class Synced:
    spool: Path
    run: str  # "name (id)", or "" when the spool never reached its run's start
    records: int


def sync_spools(folders: list[Path], uri: str | None, say: Callable[[str], None]) -> list[Synced]:
    """Send every spool in `folders` to its store (`uri` when given: a store whose URI held a
    password must be named again; any spelling tracker.stores takes, and never created here).
    StoreError for what cannot be sent now; a spool that its run's tracking process is still
    sending is left to it."""
    if uri is not None:
        uri = store_uri(uri)
    spools = [spool for folder in folders for spool in spools_under(folder)]
    if not spools:
        raise StoreError(f"no tracking spool in {', '.join(map(str, folders))}: every run's records are stored")
    synced = []
    for spool in spools:
        try:
            spool.claim()
        except SpoolBusy:
            say(f"{spool.folder}: its run's tracking process is still sending it")
            continue
        synced.append(_sync(spool, uri))
    return synced


def _sync(spool: Spool, uri: str | None) -> Synced:
    from tracker.stores import open_store_for_runs, patient_uri

    state = spool.state()
    store = uri or state.get("uri")
    if not store or REDACTED in store:
        raise StoreError(
            f"{spool.folder}: its store's URI held a password, which is never stored; name the store with --uri"
        )
    with tempfile.TemporaryDirectory(prefix="xp-sync-") as scratch:
        try:
            writer = StoreWriter(
                open_store_for_runs(patient_uri(store)), store, lambda answer: None, Path(scratch), live=False
            )
            writer.go_on(state)
            ended = any(record["kind"] == "end" for _, record in spool.unsent())
            sent = send_spool(spool, writer)
            if not ended and writer.run is not None:  # its processes died with it: the run ends here
                writer.apply(
                    [
                        {
                            "seq": -1,
                            "kind": "end",
                            "status": "FAILED",
                            "error": died_without_ending(state.get("parent", 0)),
                        }
                    ]
                )
        except StoreUnavailable as error:
            raise StoreError(
                f"{spool.folder}: the store is still unreachable ({error}); nothing is lost, try again later"
            ) from None
    spool.remove()
    run = writer.run
    return Synced(spool.folder.resolve(), f"{run['run_name']} ({run['run_id'][:SHORT_ID]})" if run else "", sent)
