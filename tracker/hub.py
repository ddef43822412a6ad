"""Whether the Hugging Face Hub answers, asked once per command before datasets or transformers
are imported. Where it does not, HF_HUB_OFFLINE=1 makes them read their cache at once, where they
would otherwise retry each file for half a minute and more before saying they cannot reach it; a
hub dataset or checkpoint that is not in the cache then fails in seconds, with their own message.

The answer goes into the environment, so the processes a command starts (runs, trials, the
tracking process) inherit it instead of asking again; HF_HUB_OFFLINE set by the user is left as
it is, either way.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

ANSWER_SECONDS = 3.0  # a Hub that answers does so in well under a second
DEFAULT_ENDPOINT = "https://huggingface.co"  # huggingface_hub's default; HF_ENDPOINT names a mirror


def offline_unless_the_hub_answers() -> None:
    """Set HF_HUB_OFFLINE to 1 when the Hub (HF_ENDPOINT, else huggingface.co) does not answer
    within ANSWER_SECONDS, to 0 when it does; nothing when the user set it (or TRANSFORMERS_OFFLINE).
    Call it before anything imports huggingface_hub, which reads the variable once, at import."""
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"):
        return
    if "huggingface_hub" in sys.modules:  # read already (xp called from a program): its setting stays
        return
    os.environ["HF_HUB_OFFLINE"] = "0" if hub_answers() else "1"


def hub_answers(endpoint: str | None = None) -> bool:
    """True when the Hub's endpoint gives any HTTP answer but a server error within ANSWER_SECONDS."""
    url = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/") + "/api/whoami-v2"
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=ANSWER_SECONDS):
            return True
    except urllib.error.HTTPError as error:  # 401 from whoami without a token: the Hub is there
        return error.code < 500
    except (OSError, ValueError):  # no route, no name, refused, timed out; ValueError: not a URL
        return False


def why_not_loaded(name: str, error: BaseException) -> str:
    """Why `name` (a hub id, or a path, that failed to load with `error`) was not loaded, as one
    sentence without its full stop. With the hub out of reach, the libraries' own words speak of
    connections and offline modes the user never set up: this says what happened instead."""
    from huggingface_hub import constants

    local = name.startswith(("/", ".", "~")) or os.path.exists(name)  # never a hub id
    if constants.HF_HUB_OFFLINE and not local:
        endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
        return f"it is not in this machine's Hugging Face cache, and the hub ({endpoint}) cannot be reached from here"
    return str(error).strip().rstrip(".")
