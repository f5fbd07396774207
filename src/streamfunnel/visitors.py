"""How simulated visitors behave: sessions, trackers and broken lines.

One ``SessionBuilder`` per simulation turns a session start into the session's
lines, drawn from one seeded generator: which tracker spells the events, which
identity the visitor carries, how many pages they read and what they do on
them (carts, forms, videos, opt-ins, the industry's goal), with the chances of
``profiles``. It also adds the noise a real topic holds: re-sent duplicates,
late arrivals and lines broken in each way the decoder names. ``simulation``
merges the sessions into one stream in arrival order.
"""

from __future__ import annotations

import math
import random
import time
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Final

import orjson

from streamfunnel import events as ev
from streamfunnel import vocabulary as v
from streamfunnel.engine import DUPLICATE
from streamfunnel.presets import MACRO_TYPES
from streamfunnel.profiles import (
    CART_CHECKOUT_LEFT_SHARE,
    CART_EMPTIED_SHARE,
    CART_PURCHASE_SHARE,
    CART_REMOVAL_SHARE,
    FORM_SUBMIT_SHARE,
    GOAL_FORM_COMPLETION,
    PROFILES,
    VIDEO_COMPLETE_AFTER,
    VIDEO_MILESTONES,
)

if TYPE_CHECKING:
    from streamfunnel.simulation import SimulationSettings


# The label of a line that is a valid, first-time event; other lines are labelled
# DUPLICATE or with the decoder's reason for rejecting them.
VALID: Final = "valid"
# A line with the simulated time it reaches the topic, and its label.
Arrival = tuple[int, bytes, str]

MAX_GAP_MS: Final = 10 * 60 * 1000
# A duplicate arrives between 100 ms and this long after the line it repeats,
# the way a client re-sends after a timeout.
MAX_RESEND_DELAY_MS: Final = 3000
MAX_PAGE_VIEWS: Final = 80

_Step = tuple[str, Any, int]
_Item = tuple[str, int, float]
# A flow's steps, whether they all happen on one page, and whether toward the end.
_Flow = tuple[list[_Step], bool, bool]
# Step gaps: a page view waits for reading time, an action for acting time.
_READ: Final = -1
_ACT: Final = 0


def _quantiles(median_ms: float, sigma: float, size: int = 1024) -> tuple[int, ...]:
    # Drawing from a precomputed log-normal table is five times cheaper than
    # random.lognormvariate and indistinguishable at this resolution.
    normal = NormalDist(math.log(median_ms), sigma)
    values = (math.exp(normal.inv_cdf((i + 0.5) / size)) for i in range(size))
    return tuple(max(1, min(MAX_GAP_MS, round(value))) for value in values)


_READ_MS: Final = _quantiles(30_000, 0.9)
_ACT_MS: Final = _quantiles(6_000, 0.7)


class _Tracker:
    """How one analytics tool spells events, cart lines and video progress."""

    def __init__(self, aliases: dict[str, str], segment: bool, percent: str) -> None:
        self.names = {name: name for name in v.CANONICAL_TYPES}
        self.names.update({canonical: alias for alias, canonical in aliases.items()})
        self.segment = segment
        self.percent = percent


_CANONICAL: Final = _Tracker({}, segment=False, percent="video_percent")
_GA4: Final = _Tracker(v.GA4_ALIASES, segment=False, percent="video_percent")
_SEGMENT: Final = _Tracker(v.SEGMENT_ALIASES, segment=True, percent="percent")

_CURRENCIES: Final = ("USD", "USD", "USD", "EUR", "EUR", "GBP")
# An empty referrer is a direct visit.
_REFERRERS: Final = ("https://search.example/", "https://social.example/", "")
_FILES: Final = ("buyers-guide.pdf", "price-list.pdf", "report-2026.pdf", "kit.zip")
_PARTNERS: Final = ("outdoorshop", "bikeparts", "homegoods", "travelco")
_SIGNUP_METHODS: Final = ("email", "google", "github")


class SessionBuilder:
    """Builds sessions one at a time for one industry, from one seeded generator."""

    def __init__(self, settings: SimulationSettings) -> None:
        self.s = settings
        self.rng = rng = random.Random(settings.seed)
        self.profile = p = PROFILES[settings.industry]
        self.macro = MACRO_TYPES[settings.industry]

        # Only sessions that go past the landing page act, so their chances are
        # the profile's shares scaled up; their pages after the second are
        # geometric, with the mean that gives the profile's page views.
        engaged = 1.0 - p.bounce_share
        depth = (p.page_views_mean - p.bounce_share) / engaged - 2.0
        self.log_stay = math.log(depth / (1.0 + depth))
        goal = p.macro_share
        if self.macro in (v.DEMO_REQUEST, v.ACCOUNT_CREATED):
            goal /= GOAL_FORM_COMPLETION
        elif self.macro == v.PURCHASE:
            goal = 0.0
        self.chances = tuple(
            share / engaged
            for share in (
                goal,
                p.cart_share,
                p.wishlist_share,
                p.optin_share,
                p.form_share,
                p.signup_share,
                p.download_share,
                p.comment_share,
                p.video_share,
            )
        )

        # Extra lines per event, so that they make up the shares of *all* lines.
        rest = 1.0 - settings.invalid_share - settings.duplicate_share
        self.dup_p = settings.duplicate_share / rest
        self.noise_p = self.dup_p + settings.invalid_share / rest

        self.catalog = tuple(
            (f"SKU-{i:05d}", round(math.exp(rng.uniform(1.6, 5.7))) - 0.01)
            for i in range(1, 241)
        )
        paths = ["/"] + [f"{s}/{i}" for s in p.sections for i in range(1, 31)]
        url = f"https://{p.host}"
        self.pages = {
            _CANONICAL: tuple({"path": path} for path in paths),
            _GA4: tuple({"page_location": url + path} for path in paths),
            _SEGMENT: tuple({"path": path, "url": url + path} for path in paths),
        }
        self._iso_minutes: dict[int, str] = {}

    # -- one session ------------------------------------------------------------

    def build(self, start_ms: int, out: list[Arrival]) -> None:
        """Append the lines of one session starting at ``start_ms`` to ``out``."""
        rng = self.rng
        rnd = rng.random
        s = self.s
        roll = rnd()
        if roll < s.ga4_share:
            tracker = _GA4
        elif roll < s.ga4_share + s.segment_share:
            tracker = _SEGMENT
        else:
            tracker = _CANONICAL
        token = f"{rng.getrandbits(64):016x}"
        user_id = "u-" + token
        roll = rnd()
        logged_in = False
        ident: dict[str, str]
        if roll < s.anonymous_only_share:
            ident = {"anonymous_id": "a-" + token}
        elif roll < s.anonymous_only_share + s.user_only_share:
            ident = {"user_id": user_id}
            logged_in = True
        else:
            ident = {"session_id": token}
            if tracker is not _CANONICAL:
                ident["anonymous_id"] = "a-" + token

        steps = self._steps(tracker, token)
        login_at = -1
        if not logged_in and len(steps) > 1 and rnd() < s.login_share:
            login_at = int(rnd() * len(steps))
        signup = tracker.names[v.ACCOUNT_CREATED]
        iso = rnd() >= s.epoch_ms_share
        stamp = self._iso
        dumps = orjson.dumps
        dup_p, noise_p = self.dup_p, self.noise_p
        delayed, max_delay = s.delayed_share, s.max_delay_ms
        append = out.append

        at = start_ms
        for n, (name, props, gap) in enumerate(steps):
            if n:
                if gap == _READ:
                    at += _READ_MS[int(rnd() * 1024)]
                elif gap == _ACT:
                    at += _ACT_MS[int(rnd() * 1024)]
                else:
                    at += gap
            if not logged_in and (n == login_at or name == signup):
                ident = {**ident, "user_id": user_id}
                logged_in = True
            doc = {
                "event_id": f"{token}-{n}",
                "type": name,
                "timestamp": stamp(at) if iso else at,
                **ident,
                "properties": props,
            }
            line = dumps(doc)
            arrival = at
            if rnd() < delayed:
                arrival += 1 + int(rnd() * max_delay)
            append((arrival, line, VALID))
            roll = rnd()
            if roll < noise_p:
                if roll < dup_p:
                    resend_ms = 100 + int(rnd() * (MAX_RESEND_DELAY_MS - 100))
                    append((arrival + resend_ms, line, DUPLICATE))
                else:
                    reason = CORRUPTIONS[int(rnd() * len(CORRUPTIONS))]
                    doc["event_id"] += "-x"
                    bad = _corrupt(reason, doc, rng)
                    append((arrival + int(rnd() * 1000), bad, reason))

    def _iso(self, ms: int) -> str:
        # format_timestamp builds a datetime per call; one prefix per minute
        # gives the same text at a quarter of the cost.
        minute, rest = divmod(ms, 60_000)
        prefix = self._iso_minutes.get(minute)
        if prefix is None:
            if len(self._iso_minutes) > 4096:
                self._iso_minutes.clear()
            prefix = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))
            self._iso_minutes[minute] = prefix
        return f"{prefix}{rest // 1000:02d}.{rest % 1000:03d}Z"

    def _steps(self, t: _Tracker, token: str) -> list[_Step]:
        rng = self.rng
        pool = self.pages[t]
        landing = dict(rng.choice(pool))
        referrer = rng.choice(_REFERRERS)
        if referrer:
            landing["referrer"] = referrer
        page = t.names[v.PAGE_VIEW]
        if rng.random() < self.profile.bounce_share:
            return [(page, landing, _READ)]

        extra = int(math.log(1.0 - rng.random()) / self.log_stay)
        pages = min(MAX_PAGE_VIEWS, 2 + extra)
        placed: list[tuple[int, int, int, _Step]] = []
        for order, (flow, same_page, late) in enumerate(self._flows(t, token)):
            low = pages // 2 if late else 0
            if same_page:
                slot = rng.randint(low, pages - 1)
                slots = [slot] * len(flow)
            else:
                slots = sorted(rng.randint(low, pages - 1) for _ in flow)
            for position, (slot, step) in enumerate(zip(slots, flow, strict=True)):
                placed.append((slot, order, position, step))
        placed.sort(key=lambda item: item[:3])

        steps: list[_Step] = [(page, landing, _READ)]
        rnd = rng.random
        size = len(pool)
        index = 0
        for slot in range(pages):
            if slot:
                steps.append((page, pool[int(rnd() * size)], _READ))
            while index < len(placed) and placed[index][0] == slot:
                steps.append(placed[index][3])
                index += 1
        return steps

    # -- what a visitor does besides reading ------------------------------------

    def _flows(self, t: _Tracker, token: str) -> list[_Flow]:
        """What this visitor does besides reading, one flow per activity."""
        rnd = self.rng.random
        goal, cart, wish, optin, form, signup, download, comment, video = self.chances
        names = t.names
        flows: list[_Flow] = []
        if rnd() < download:
            flows.append(([self._download(t)], True, False))
        if rnd() < video:
            flows.append((self._video(t), True, False))
        if rnd() < comment:
            post = {"post_id": f"post-{int(rnd() * 500)}"}
            flows.append(([(names[v.BLOG_COMMENT], post, _ACT)], True, False))
        if rnd() < wish:
            wished = self._cart_props(t, [self._item()], _CURRENCIES[0])
            flows.append(([(names[v.WISHLIST_ADD], wished, _ACT)], True, False))
        if rnd() < optin:
            flows.append(([self._optin(t, token)], True, False))
        if rnd() < form:
            form_id = self.rng.choice(self.profile.form_ids)
            flows.append((self._form(t, form_id, FORM_SUBMIT_SHARE), True, False))
        if rnd() < signup:
            joined = (names[v.ACCOUNT_CREATED], self._signup(), _ACT)
            flows.append(([joined], True, False))
        if rnd() < cart:
            flows.append((self._cart(t), False, False))
        if rnd() < goal:
            flows.append((self._goal(t, token), True, True))
        return flows

    def _form(self, t: _Tracker, form_id: str, submit_share: float) -> list[_Step]:
        ident = {"form_id": form_id}
        steps = [(t.names[v.FORM_START], ident, _ACT)]
        if self.rng.random() < submit_share:
            steps.append((t.names[v.FORM_SUBMIT], ident, _ACT))
        return steps

    def _goal(self, t: _Tracker, token: str) -> list[_Step]:
        rng = self.rng
        names = t.names
        if self.macro == v.DEMO_REQUEST:
            steps = self._form(t, "demo", GOAL_FORM_COMPLETION)
            if len(steps) > 1:
                size = rng.choice(("1-10", "11-50", "51-200", "201-1000"))
                steps.append((names[v.DEMO_REQUEST], {"company_size": size}, 800))
            return steps
        if self.macro == v.ACCOUNT_CREATED:
            steps = self._form(t, "signup", GOAL_FORM_COMPLETION)
            if len(steps) > 1:
                steps.append((names[v.ACCOUNT_CREATED], self._signup(), 600))
                if rng.random() < 0.3:
                    steps.append(self._optin(t, token))
            return steps
        if self.macro == v.NEWSLETTER_SIGNUP:
            # Readers who subscribe have often just watched something.
            steps = self._video(t) if rng.random() < 0.4 else []
            props = {"list": "daily", "email": f"reader-{token[:10]}@example.com"}
            return [*steps, (names[v.NEWSLETTER_SIGNUP], props, _ACT)]
        partner = rng.choice(_PARTNERS)
        props = {"partner": partner, "link_url": f"https://{partner}.example/?ref=rv"}
        return [(names[v.SPONSORED_LINK_CLICK], props, _ACT)]

    def _cart(self, t: _Tracker) -> list[_Step]:
        rng = self.rng
        rnd = rng.random
        currency = rng.choice(_CURRENCIES)
        count = 1 + (rnd() < 0.35) + (rnd() < 0.12)
        items = [
            (item_id, 2 if rnd() < 0.15 else 1, price)
            for item_id, price in rng.sample(self.catalog, count)
        ]
        add, remove = t.names[v.ADD_TO_CART], t.names[v.REMOVE_FROM_CART]
        props = self._cart_props
        steps = [(add, props(t, [item], currency), _ACT) for item in items]
        outcome = rnd()
        if outcome < CART_EMPTIED_SHARE:
            steps += [(remove, props(t, [item], currency), _ACT) for item in items]
            return steps
        if len(items) > 1 and rnd() < CART_REMOVAL_SHARE:
            steps.append((remove, props(t, [items.pop()], currency), _ACT))

        outcome -= CART_EMPTIED_SHARE
        if outcome < CART_PURCHASE_SHARE + CART_CHECKOUT_LEFT_SHARE:
            order = props(t, items, currency, order=True)
            steps.append((t.names[v.CHECKOUT_START], order, _ACT))
            if outcome < CART_PURCHASE_SHARE:
                paid = dict(order)
                order_key = "order_id" if t.segment else "transaction_id"
                paid[order_key] = f"T{rng.getrandbits(40):010x}"
                steps.append((t.names[v.PURCHASE], paid, _READ))
        return steps

    def _item(self) -> _Item:
        item_id, price = self.rng.choice(self.catalog)
        return (item_id, 1, price)

    @staticmethod
    def _cart_props(
        t: _Tracker, items: list[_Item], currency: str, order: bool = False
    ) -> dict[str, Any]:
        # GA4 always sends a list of lines; Segment sends a single product at the
        # top of the properties, and a product list only for whole orders.
        id_key = "product_id" if t.segment else "item_id"
        lines = [{id_key: i, "quantity": q, "price": p} for i, q, p in items]
        if t.segment and not order:
            return {**lines[0], "currency": currency}
        props: dict[str, Any] = {"currency": currency}
        if order:
            props["value"] = round(sum(q * p for _, q, p in items), 2)
        props["products" if t.segment else "items"] = lines
        return props

    def _video(self, t: _Tracker) -> list[_Step]:
        rng = self.rng
        names = t.names
        length_ms = rng.randint(45, 720) * 1000
        title = f"video-{rng.randint(1, 300)}"
        opened = {"video_title": title, "video_duration": length_ms // 1000}
        steps: list[_Step] = [(names[v.VIDEO_START], opened, _ACT)]
        for percent, share, go_on in VIDEO_MILESTONES:
            if rng.random() >= go_on:
                return steps
            props = {"video_title": title, t.percent: percent}
            steps.append((names[v.VIDEO_PROGRESS], props, int(length_ms * share)))
        share, go_on = VIDEO_COMPLETE_AFTER
        if rng.random() < go_on:
            ended = {"video_title": title}
            steps.append((names[v.VIDEO_COMPLETE], ended, int(length_ms * share)))
        return steps

    def _optin(self, t: _Tracker, token: str) -> _Step:
        roll = self.rng.random()
        email = f"visitor-{token[:10]}@example.com"
        if roll < 0.2:
            return (t.names[v.SMS_OPTIN], {"source": "checkout"}, _ACT)
        # Where the newsletter is the macro conversion, its signups are the goal.
        if roll < 0.45 and self.macro != v.NEWSLETTER_SIGNUP:
            props = {"list": "weekly", "email": email}
            return (t.names[v.NEWSLETTER_SIGNUP], props, _ACT)
        return (t.names[v.EMAIL_OPTIN], {"source": "popup", "email": email}, _ACT)

    def _signup(self) -> dict[str, Any]:
        return {"method": self.rng.choice(_SIGNUP_METHODS)}

    def _download(self, t: _Tracker) -> _Step:
        name = self.rng.choice(_FILES)
        props = {"file_name": name, "file_extension": name.rsplit(".", 1)[1]}
        return (t.names[v.RESOURCE_DOWNLOAD], props, _ACT)


# -- broken lines, one way per decoder reason -----------------------------------


def _corrupt(reason: str, doc: dict[str, Any], rng: random.Random) -> bytes:
    """A line the decoder rejects for ``reason``, made the way producers break."""
    if reason == ev.NOT_UTF8:
        # Text encoded as Latin-1: the é of a title becomes a single byte.
        doc["properties"] = {**doc["properties"], "title": "Café menu"}
        return orjson.dumps(doc).replace("é".encode(), "é".encode("latin-1"))
    if reason == ev.MALFORMED_JSON:
        # A write cut short: every strict prefix of an object is broken JSON.
        raw = orjson.dumps(doc)
        return raw[: rng.randint(1, len(raw) - 1)]
    if reason == ev.NOT_AN_OBJECT:
        return orjson.dumps([doc])
    if reason in _REQUIRED:
        del doc[_REQUIRED[reason]]
    elif reason == ev.MISSING_IDENTITY:
        for name in ev.IDENTITY_FIELDS:
            doc.pop(name, None)
    elif reason == ev.BAD_TIMESTAMP:
        # Seconds where milliseconds belong, or local time without its zone.
        ms = ev.parse_timestamp(doc["timestamp"]) or 0
        late = rng.random() < 0.5
        doc["timestamp"] = ms // 1000 if late else ev.format_timestamp(ms)[:-1]
    elif reason == ev.BAD_PROPERTIES:
        doc["properties"] = orjson.dumps(doc["properties"]).decode()
    elif reason == ev.BAD_FIELD:
        doc["user_id"] = rng.randint(1, 999_999)
    return orjson.dumps(doc)


_REQUIRED: Final = {
    ev.MISSING_EVENT_ID: "event_id",
    ev.MISSING_TYPE: "type",
    ev.MISSING_TIMESTAMP: "timestamp",
}
# Every reason the decoder names, so that each one shows up in the dead letters.
CORRUPTIONS: Final[tuple[str, ...]] = ev.INVALID_REASONS
