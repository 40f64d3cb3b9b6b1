"""Identity: who an event belongs to, and what that person's history adds to it.

People are stitched from identifiers. Every identifier is kept as a digest, prefixed with its
kind: ``uid:`` (user id), ``aid:`` (anonymous id), ``em:`` / ``ph:`` (email / phone
digests, as sent to Pinterest), ``xid:`` (external id digest), ``maid:`` (advertising id
digest). An event that carries identifiers of two known people merges them.

**Merge guard.** Shared identifiers (a shop's own test email, a kiosk's anonymous id) would
otherwise chain everyone into one giant person. Three rules stop that:

* identifiers listed in ``[identity] ignore`` are never used to stitch;
* a user id is exclusive: an input with a user id never joins, or merges, a person who has
  another user id, unless it names one of that person's user ids too (an ``alias`` whose
  ``previousId`` is the old user id). A shared browser's anonymous id, or a shared email,
  does not make two customers one; the input belongs to the person of its own user id (a new
  one when unknown), and the other person keeps its identifiers;
* a merge that would give one person more than ``max_per_kind`` identifiers of one kind
  (default 10 emails, 10 phones, 50 anonymous ids, ...) is refused; the event then belongs to
  the person of its strongest identifier (user id, then email, phone, external id, advertising
  id, anonymous id) and the other identifiers are not attached.

**Enrichment.** An event without a click id gets the person's latest click id when that click
happened (was first seen) within the destination's click attribution window before the event
(Pinterest's windows: 1, 7, 14 or 30 days; default 30). Seeing the click again later (the
``_epik`` cookie on every visit) does not restart the window: the window runs from the click.
An event with neither email nor phone gets the person's email and phone digests (enhanced
match). An event that still lacks what Pinterest requires (email, advertising id, or IP
address and user agent: a store sale known only by a phone number) gets the person's email,
else the IP address and user agent of the person's last visit; when the person has neither,
the event is refused. What was added, and from which click, is recorded with the event.

This module is pure: the store implements :class:`IdentityTables` inside its accept
transaction and calls :func:`resolve` and :func:`enrich`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Protocol

import msgspec
from msgspec import UNSET

from pinbridge.normalize import Normalizer
from pinbridge.pinterest.schema import ConversionEvent, UserData
from pinbridge.signals import PROFILE_FIELDS, Click, IdentitySignals, identifier_key

__all__ = [
    "CLICK_WINDOW_DAYS",
    "CLOCK_SKEW",
    "DEFAULT_MAX_PER_KIND",
    "Click",
    "Enrichment",
    "IdentitySignals",
    "IdentityTables",
    "Profile",
    "enrich",
    "forget_digests",
    "identifier_key",
    "identifying_digests",
    "input_names",
    "latest_click",
    "merge_profiles",
    "person_keys",
    "resolve",
    "satisfies_identifier_rule",
    "split_needles",
]

#: The click attribution windows Ads Manager offers.
CLICK_WINDOW_DAYS: Final = (1, 7, 14, 30)
#: Seconds a click may follow the event it is attributed to (clocks differ).
CLOCK_SKEW: Final = 300.0
#: A person unchanged by an event is marked seen (for retention) at most this often.
_TOUCH_EVERY: Final = 3600.0
#: Strongest first: the kind that decides when a merge is refused.
KIND_ORDER: Final = ("uid", "em", "ph", "xid", "maid", "aid")
DEFAULT_MAX_PER_KIND: Final[Mapping[str, int]] = {
    "uid": 3,
    "em": 10,
    "ph": 10,
    "xid": 10,
    "maid": 20,
    "aid": 50,
}
_MAX_VALUES_PER_FIELD: Final = 10
_PROFILE_FIELDS: Final = frozenset(PROFILE_FIELDS)
#: Profile fields whose digests are identifiers too (``em:``/``ph:`` keys).
_IDENTIFYING_FIELDS: Final = frozenset(("em", "ph"))


class Profile(msgspec.Struct):
    """What pinbridge remembers of a person: digests, last IP and user agent."""

    fields: dict[str, list[str]] = {}
    last_ip: str | None = None
    last_user_agent: str | None = None
    seen: float = 0.0


class Enrichment(msgspec.Struct, frozen=True, omit_defaults=True):
    """What identity added to one event, for the event history."""

    person: int
    click_id: str | None = None
    #: When the click happened: the first time it was seen.
    click_seen: float | None = None
    utm: dict[str, str] = {}
    added: tuple[str, ...] = ()


class IdentityTables(Protocol):
    """The storage :func:`resolve` needs, inside the accept transaction."""

    def persons_of(self, keys: Sequence[str]) -> dict[str, int]:
        """Known keys and their person."""
        ...

    def kind_counts(self, person: int) -> dict[str, int]:
        """How many identifiers of each kind a person has."""
        ...

    def new_person(self, now: float) -> int:
        """Create a person; returns its id."""
        ...

    def merge(self, into: int, other: int, now: float) -> None:
        """Move everything of ``other`` to ``into`` and delete ``other``."""
        ...

    def attach(self, person: int, keys: Sequence[str], now: float) -> None:
        """Attach identifiers (new or already this person's) and update their last seen time."""
        ...

    def add_click(self, person: int, click: Click) -> None:
        """Remember a sighting of a click.

        A click id is one click, however often it is seen again (the ``_epik`` cookie on
        every visit, another landing URL): a known click keeps the earlier ``first_seen``
        (when it happened, which the attribution window is measured from) and takes the
        later ``last_seen``; merging two people's copies of a click does the same.
        """
        ...

    def clicks(self, person: int) -> list[Click]:
        """The person's clicks, in any order."""
        ...

    def profile(self, person: int) -> Profile:
        """The person's profile."""
        ...

    def save_profile(self, person: int, profile: Profile, now: float) -> None:
        """Store the person's profile."""
        ...


def _kind(key: str) -> str:
    return key.partition(":")[0]


def resolve(
    tables: IdentityTables,
    signals: IdentitySignals,
    *,
    now: float,
    ignore: frozenset[str] = frozenset(),
    max_per_kind: Mapping[str, int] = DEFAULT_MAX_PER_KIND,
) -> int | None:
    """Find or create the person of an input, merge where allowed, record what it tells.

    Returns the person id, or ``None`` when the input carries no usable identifier.
    """
    keys = [k for k in dict.fromkeys(signals.keys) if k not in ignore]
    if not keys:
        return None
    known = tables.persons_of(keys)
    keys = _without_anonymous_twins(keys, known)
    people = _eligible(tables, keys, known)
    if not people:
        person = tables.new_person(now)
    else:
        person = _merge_guarded(tables, people, keys, known, now, max_per_kind)
    owned = {k for k in keys if known.get(k) == person}
    new = [k for k in keys if k not in known]
    if new:
        attached = _within_limits(tables, person, new, max_per_kind)
        tables.attach(person, attached, now)
        owned.update(attached)
    click = signals.click
    if click is not None:
        tables.add_click(person, click)
    profile = tables.profile(person)
    stale = profile.seen <= now - _TOUCH_EVERY
    shared = any(p != person for p in known.values())  # a refused merge
    if _remember(profile, _owned_signals(signals, owned, shared=shared)) or stale:
        # Saved when something changed, or to mark the person seen (retention) hourly.
        profile.seen = now
        tables.save_profile(person, profile, now)
    return person


def _without_anonymous_twins(keys: list[str], known: dict[str, int]) -> list[str]:
    """The keys without the user id twin of a known anonymous id.

    An alias's ``previousId`` may be an anonymous id or a user id, so it comes as both keys.
    When pinbridge knows it as an anonymous id and not as a user id, it is the anonymous id:
    its user id twin would count as a user id of the person, and a second customer aliasing
    the same browser's anonymous id would name it.
    """
    anonymous = {k.partition(":")[2] for k in keys if _kind(k) == "aid" and k in known}
    if not anonymous:
        return keys
    return [
        k
        for k in keys
        if not (_kind(k) == "uid" and k not in known and k.partition(":")[2] in anonymous)
    ]


def _eligible(tables: IdentityTables, keys: list[str], known: dict[str, int]) -> list[int]:
    """The known people an input may belong to: a user id is exclusive.

    An input with a user id never goes to a person who has other user ids and none of the
    input's (as in Segment's identity resolution: the user id ranks first, one per profile).
    It reached that person through a weaker, shared identifier: the anonymous id of a shared
    browser, a family's email. An input that names a user id of the person (an ``alias`` from
    the old user id to a new one) may still add one, up to ``max_per_kind``.
    """
    people = sorted(set(known.values()))
    user_ids = [k for k in keys if _kind(k) == "uid"]
    if not user_ids:
        return people
    named = {known[k] for k in user_ids if k in known}
    return [p for p in people if p in named or not tables.kind_counts(p).get("uid")]


def _merge_guarded(
    tables: IdentityTables,
    people: list[int],
    keys: list[str],
    known: dict[str, int],
    now: float,
    max_per_kind: Mapping[str, int],
) -> int:
    if len(people) == 1:
        return people[0]
    totals: dict[str, int] = {}
    for person in people:
        for kind, count in tables.kind_counts(person).items():
            totals[kind] = totals.get(kind, 0) + count
    if all(totals.get(kind, 0) <= limit for kind, limit in max_per_kind.items()):
        into = people[0]
        for other in people[1:]:
            tables.merge(into, other, now)
        for key, person in known.items():
            if person in people:
                known[key] = into
        return into
    # Refused: the strongest identifier decides, among those of the eligible people only
    # (a key of a person with another user id must not hand this input to that person).
    strongest = min(
        (k for k in keys if known.get(k) in people), key=lambda k: KIND_ORDER.index(_kind(k))
    )
    return known[strongest]


def _within_limits(
    tables: IdentityTables, person: int, new: list[str], max_per_kind: Mapping[str, int]
) -> list[str]:
    """The new identifiers the person may take without passing the per-kind limits."""
    counts = tables.kind_counts(person)
    kept = []
    for key in new:
        kind = _kind(key)
        if counts.get(kind, 0) < max_per_kind.get(kind, 10):
            counts[kind] = counts.get(kind, 0) + 1
            kept.append(key)
    return kept


def _owned_signals(signals: IdentitySignals, owned: set[str], *, shared: bool) -> IdentitySignals:
    """The signals a person may keep: only what is theirs.

    An email or phone digest is kept only when its identifier is attached to the person (not
    ignored, not refused by the merge guard, not another person's). The descriptive digests
    (names, gender, birthday, address) are kept unless the input also carries another
    person's identifier (``shared``: a refused merge), as it then tells nothing certain about
    either. IP address and user agent describe the visit, which belongs to the person.
    """
    fields: dict[str, list[str]] = {}
    for field, digests in signals.fields.items():
        if field in _IDENTIFYING_FIELDS:
            digests = [d for d in digests if identifier_key(field, d) in owned]
        elif shared:
            continue
        if digests:
            fields[field] = digests
    if fields == signals.fields:
        return signals
    return msgspec.structs.replace(signals, fields=fields)


def _remember(profile: Profile, signals: IdentitySignals) -> bool:
    """Record the signals in the profile; whether that changed it."""
    changed = False
    fields = profile.fields
    for field, digests in signals.fields.items():
        if field not in _PROFILE_FIELDS or not digests:
            continue
        known = fields.get(field)
        if known is None:
            known = fields[field] = []
        elif len(digests) == 1:
            if known and known[-1] == digests[0] and len(known) <= _MAX_VALUES_PER_FIELD:
                continue  # the usual case: one value, already the latest
        elif known[-len(digests) :] == digests and len(known) <= _MAX_VALUES_PER_FIELD:
            continue  # already the latest, in this order (a list never holds a digest twice)
        before = list(known)
        for digest in digests:
            if digest in known:
                known.remove(digest)
            known.append(digest)  # the latest last
        del known[:-_MAX_VALUES_PER_FIELD]
        changed = changed or known != before
    if signals.ip and signals.ip != profile.last_ip:
        profile.last_ip = signals.ip
        changed = True
    if signals.user_agent and signals.user_agent != profile.last_user_agent:
        profile.last_user_agent = signals.user_agent
        changed = True
    return changed


#: The fields of a kept input (Segment's) that name a user id or an anonymous id.
_ID_FIELDS: Final = {"uid": ("userId", "previousId"), "aid": ("anonymousId", "previousId")}


def person_keys(
    region: str,
    *,
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    user_ids: Sequence[str] = (),
    anonymous_ids: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """A person's identifier keys, and the needles that find their events: for ``forget``.

    A needle is a digest (email, phone, external id), found in an event's payloads and kept
    input; or ``FIELD=VALUE`` (``userId=42``), found only where the kept input's top-level
    field ``FIELD`` is exactly ``VALUE`` (see :func:`split_needles`), so that an order or a
    product with the same value is never taken for the person.
    """
    normalizer = Normalizer(default_region=region, cache_size=0)
    keys: list[str] = []
    needles: list[str] = []
    for kind, values in (("em", emails), ("ph", phones)):
        digests, _ = normalizer.hash_values(kind, values)
        keys += [identifier_key(kind, d) for d in digests]
        needles += digests
    for kind, values in (("uid", user_ids), ("aid", anonymous_ids)):
        for value in values:
            keys.append(identifier_key(kind, value))
            needles += [f"{field}={value}" for field in _ID_FIELDS[kind]]
            if kind == "uid":
                needles += normalizer.hash_values("external_id", [value])[0]
    return list(dict.fromkeys(keys)), list(dict.fromkeys(needles))


def split_needles(needles: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The digests, and the ``(field, value)`` pairs, of :func:`person_keys`' needles."""
    digests: list[str] = []
    fields: list[tuple[str, str]] = []
    for needle in needles:
        field, sep, value = needle.partition("=")
        if sep:  # a digest is hex: it never holds "="
            fields.append((field, value))
        else:
            digests.append(needle)
    return digests, fields


def input_names(kept_input: bytes, fields: Sequence[tuple[str, str]]) -> bool:
    """Whether a kept input's top-level field is exactly one of the ``(field, value)`` pairs."""
    if not fields or not any(v.encode() in kept_input for _, v in fields):
        return False
    try:
        message = msgspec.json.decode(kept_input)
    except msgspec.DecodeError:
        return False
    if not isinstance(message, dict):
        return False
    return any(_as_text(message.get(f)) == v for f, v in fields)


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def identifying_digests(keys: Sequence[str]) -> frozenset[str]:
    """The email and phone digests among identifier keys."""
    return frozenset(k.partition(":")[2] for k in keys if _kind(k) in _IDENTIFYING_FIELDS)


def forget_digests(profile: Profile, digests: frozenset[str]) -> bool:
    """Remove email and phone digests from a profile (another person's, on ``forget``);
    whether that changed it."""
    changed = False
    for field in _IDENTIFYING_FIELDS:
        values = profile.fields.get(field)
        if values and any(v in digests for v in values):
            profile.fields[field] = [v for v in values if v not in digests]
            changed = True
    return changed


def satisfies_identifier_rule(user: UserData) -> bool:
    """Pinterest's rule: ``em``, or ``hashed_maids``, or both IP address and user agent."""
    return bool(
        (user.em is not UNSET and user.em)
        or (user.hashed_maids is not UNSET and user.hashed_maids)
        or (user.client_ip_address and user.client_user_agent)
    )


def merge_profiles(kept: Profile, other: Profile) -> Profile:
    """One profile from two people's: the kept one's latest values win."""
    merged = Profile(fields={f: list(v) for f, v in other.fields.items()})
    _remember(
        merged,
        IdentitySignals(
            keys=(), fields=kept.fields, ip=kept.last_ip, user_agent=kept.last_user_agent
        ),
    )
    merged.last_ip = kept.last_ip or other.last_ip
    merged.last_user_agent = kept.last_user_agent or other.last_user_agent
    return merged


def latest_click(clicks: Sequence[Click], event_time: float, window_seconds: float) -> Click | None:
    """The last click before an event within the attribution window, or ``None``.

    A click counts from when it happened, its ``first_seen``: seeing it again later (the
    ``_epik`` cookie on every visit) does not bring an old click back into the window. A
    click up to :data:`CLOCK_SKEW` seconds after the event still counts (the browser's and
    the server's clocks differ).
    """
    earliest = event_time - window_seconds
    latest = event_time + CLOCK_SKEW
    usable = [c for c in clicks if earliest <= c.first_seen <= latest]
    return max(usable, key=lambda c: c.first_seen, default=None)


def enrich(
    event: ConversionEvent,
    person: int,
    profile: Profile,
    clicks: Sequence[Click],
    *,
    window_seconds: float,
) -> tuple[ConversionEvent, Enrichment]:
    """The event with what its person adds, and a record of it (the input is not changed)."""
    user = event.user_data
    added: list[str] = []
    click_id: str | None = None
    click: Click | None = None
    changes: dict[str, object] = {}
    if not user.click_id:
        click = latest_click(clicks, event.event_time, window_seconds)
        if click is not None:
            click_id = click.click_id
            changes["click_id"] = click_id
            added.append("click_id")
    has_em = user.em is not UNSET and bool(user.em)
    has_ph = user.ph is not UNSET and bool(user.ph)
    if not has_em and not has_ph:
        for field in ("em", "ph"):
            digests = profile.fields.get(field)
            if digests:
                changes[field] = list(reversed(digests[-3:]))
                added.append(field)
    merged = msgspec.structs.replace(user, **changes) if changes else user
    if not satisfies_identifier_rule(merged):
        # Pinterest needs em, a MAID, or IP and user agent: take them from the person.
        if profile.fields.get("em"):
            changes["em"] = list(reversed(profile.fields["em"][-3:]))
            added.append("em")
        elif profile.last_ip and profile.last_user_agent:
            changes["client_ip_address"] = profile.last_ip
            changes["client_user_agent"] = profile.last_user_agent
            added += ["client_ip_address", "client_user_agent"]
    if not changes:
        return event, Enrichment(person=person)
    enriched = msgspec.structs.replace(event, user_data=msgspec.structs.replace(user, **changes))
    record = Enrichment(
        person=person,
        click_id=click_id,
        click_seen=click.first_seen if click else None,
        utm=click.utm if click else {},
        added=tuple(added),
    )
    return enriched, record
