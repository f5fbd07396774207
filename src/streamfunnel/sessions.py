"""Per-session state: what one visitor did since their first event in the session.

A session belongs to a *session key* (the session id when events carry one, else
the anonymous id, else the user id) and ends after a configurable time without
events. The same key can then start a new session, so every session also has a
derived id, ``<session key>:<epoch ms of its first event>``, which is stable: the
same events always give the same id.
"""

from __future__ import annotations

from typing import Any, final

from streamfunnel.cart import Cart
from streamfunnel.events import Event


def session_id_for(key: str, start_ms: int) -> str:
    return f"{key}:{start_ms}"


@final
class SessionState:
    """The applied history of one session plus the events still waiting to apply.

    ``pending`` holds this key's accepted events that stream time has not yet
    passed; the engine applies them in event-time order once it has, which is
    what makes the result independent of arrival order. ``seen`` holds the event
    ids of the current session (applied and pending), for duplicate detection.
    ``deadline_entry`` is the engine's bookkeeping for when to check the
    session's timeout next.
    """

    __slots__ = (
        "anonymous_id",
        "cart",
        "carted",
        "checkout_open",
        "contact",
        "counts",
        "deadline_entry",
        "event_count",
        "furthest",
        "key",
        "last_ts",
        "macro_count",
        "macro_first_ts",
        "micro",
        "open_forms",
        "pending",
        "seen",
        "sequences_done",
        "session_id",
        "start_ts",
        "user_id",
    )

    def __init__(self, key: str, funnel_count: int) -> None:
        self.key = key
        self.pending: list[Event] = []
        self.seen: set[str] = set()
        self.deadline_entry: int | None = None
        self.reset(funnel_count)

    def reset(self, funnel_count: int) -> None:
        """Forget the applied history; pending events stay for the next session."""
        self.session_id = ""
        self.start_ts = 0
        self.last_ts = 0
        self.event_count = 0
        self.anonymous_id: str | None = None
        self.user_id: str | None = None
        self.contact: str | None = None
        self.micro: dict[str, int] = {}
        self.counts: dict[int, int] = {}
        self.macro_count = 0
        self.macro_first_ts: int | None = None
        self.cart = Cart()
        self.carted = False
        self.checkout_open = False
        self.open_forms: dict[str | None, int] = {}
        self.furthest = [0] * funnel_count
        self.sequences_done: set[str] = set()
        self.seen = {event.event_id for event in self.pending}

    @property
    def started(self) -> bool:
        return self.event_count > 0

    def start(self, ts: int) -> None:
        self.start_ts = ts
        self.session_id = session_id_for(self.key, ts)

    def identity(self) -> dict[str, Any]:
        """The identity fields every output record carries."""
        fields: dict[str, Any] = {
            "session_id": self.session_id,
            "session_key": self.key,
        }
        if self.anonymous_id is not None:
            fields["anonymous_id"] = self.anonymous_id
        if self.user_id is not None:
            fields["user_id"] = self.user_id
        return fields
