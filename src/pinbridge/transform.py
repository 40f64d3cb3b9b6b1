"""The pure transform: one input event in, Pinterest events (or field-level errors) out.

``parse → map names → normalize and hash → custom_data → build → validate``. No store, no
network, no clock (``now`` is passed in): the same input, options and ``now`` always give the
same output. An event is either sent whole or refused with every reason at once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
from msgspec import UNSET

from pinbridge.customdata import (
    custom_data_from_native,
    custom_data_from_segment,
    parse_money,
    scrub_personal,
)
from pinbridge.inputs import InputEvent, parse_input
from pinbridge.mapping import EventMapper, derive_event_id, primary_event
from pinbridge.normalize import DEFAULT_REGION, NormalizationError, Normalizer, normalize
from pinbridge.pinterest.schema import (
    MAX_EVENT_AGE_SECONDS,
    AppInfo,
    ConversionEvent,
    CustomData,
    DeviceInfo,
    UserData,
)
from pinbridge.problems import Problem, problem_from_validation
from pinbridge.redact import scrub_url
from pinbridge.signals import PROFILE_FIELDS, IdentitySignals, identifier_key
from pinbridge.validate import (
    DEFAULT_FUTURE_SKEW_SECONDS,
    IDENTIFIER_RULE,
    EventValidator,
    check_digests,
)

__all__ = ["IDENTITY_CACHE_SIZE", "TransformOptions", "TransformResult", "Transformer"]

_IDENTIFIER_PROBLEM = Problem("user_data", IDENTIFIER_RULE)
_URL_SCRUBBED = (
    "held personal data (an email address, a phone number, a parameter such as phone= or "
    "first_name=); that part was left out"
)
#: People whose hashed identifiers are kept, per Transformer.
IDENTITY_CACHE_SIZE = 32768
_IdentityKey = tuple[tuple[str, tuple[object, ...]], ...]


class _Person(NamedTuple):
    """What a person's raw identifiers give, worked out once per person and cached.

    Shared between the events of that person: nothing downstream changes these lists (the
    store's enrichment replaces fields, it does not append to them).
    """

    #: Digests per hashed ``user_data`` field, as sent.
    fields: dict[str, Any]
    #: Warnings of the normalization (a value that could not be used).
    problems: tuple[Problem, ...]
    #: Pinterest's format check of those digests (empty: all well-formed).
    digest_problems: tuple[Problem, ...]
    #: Identity keys of the digests that identify (email, phone, external id, ad id).
    digest_keys: tuple[str, ...]
    #: The digests remembered in the person's profile.
    profile: dict[str, list[str]]


class _Extras(msgspec.Struct, forbid_unknown_fields=True):
    """The event-level fields an input may give as they are, typed as Pinterest types them."""

    partner_name: str | None = None
    app_id: str | None = None
    app_name: str | None = None
    app_version: str | None = None
    device_brand: str | None = None
    device_carrier: str | None = None
    device_model: str | None = None
    device_type: str | None = None
    os_version: str | None = None
    wifi: bool | None = None
    app_info: AppInfo | None = None
    device_info: DeviceInfo | None = None


class TransformOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a user may configure about the transform (``[transform]`` in ``pinbridge.toml``).

    Attributes:
        default_region: ISO country whose numbering plan applies to phones without ``+``.
        unmapped: ``custom`` sends unknown event names as ``custom``; ``drop`` drops them.
        mapping: input event name → Pinterest event name(s), over the defaults.
        advertiser_event_names: advertiser-defined event names the ad account accepts.
        checkout_default_value / checkout_default_currency: given to ``checkout`` events that
            carry no value (off by default; each use adds a warning).
        max_event_age_seconds / future_skew_seconds: the accepted time window.
        partner_name: Pinterest's ``partner_name`` (``ss-<partner>``), when set.
        ldp_regions: where Limited Data Processing applies by rule: ``US-CA`` (country and
            state) or ``BR`` (a whole country); matched on the event's address.
        ldp_requires_opt_out: apply the rule only to people who opted out of the sale of
            their data (``opt_out_of_sale`` in the context, properties or traits).
    """

    default_region: str = DEFAULT_REGION
    unmapped: str = "custom"
    mapping: dict[str, str | list[str]] = {}
    advertiser_event_names: frozenset[str] = frozenset()
    checkout_default_value: str | None = None
    checkout_default_currency: str | None = None
    max_event_age_seconds: int = MAX_EVENT_AGE_SECONDS
    future_skew_seconds: int = DEFAULT_FUTURE_SKEW_SECONDS
    partner_name: str | None = None
    ldp_regions: tuple[str, ...] = ()
    ldp_requires_opt_out: bool = True


class TransformResult(msgspec.Struct):
    """The outcome for one input: events to send, or the errors that refused it."""

    ok: bool
    events: list[ConversionEvent] = []
    warnings: list[Problem] = []
    errors: list[Problem] = []
    identity: IdentitySignals | None = None
    needs_identifier: bool = False


class Transformer:
    """Turns input events into validated Pinterest events. Configure once, call per event."""

    __slots__ = ("_defer", "_hash_identity", "_mapper", "_normalizer", "_options", "_validator")

    def __init__(
        self,
        options: TransformOptions | None = None,
        *,
        cache_size: int = IDENTITY_CACHE_SIZE,
        defer_identifier_rule: bool = False,
    ) -> None:
        """``cache_size`` bounds both caches (people, and single values); 0 disables them.

        With ``defer_identifier_rule``, an event that lacks only Pinterest's identifier (em,
        hashed_maids, or IP and user agent) but names its person is let through with
        ``needs_identifier``: the accept path may find the identifier in the person's history,
        and refuses the event when it cannot.
        """
        self._defer = defer_identifier_rule
        options = options or TransformOptions()
        if options.checkout_default_value is not None:
            parse_money(options.checkout_default_value)
        self._options = options
        self._normalizer = Normalizer(
            default_region=options.default_region, cache_size=2 * cache_size
        )
        self._hash_identity = functools.lru_cache(maxsize=cache_size)(self._hash_identifiers)
        self._mapper = EventMapper(
            options.mapping, unmapped=options.unmapped, extra_names=options.advertiser_event_names
        )
        self._validator = EventValidator(
            extra_names=options.advertiser_event_names,
            max_age_seconds=options.max_event_age_seconds,
            future_skew_seconds=options.future_skew_seconds,
        )

    def __call__(self, obj: object, *, now: int, default_source: str = "web") -> TransformResult:
        """Transform one decoded JSON value (a Segment call or a Pinterest-shaped event)."""
        event = parse_input(obj, now=now, default_source=default_source)
        return self.transform_event(event, now=now)

    def transform_event(self, event: InputEvent, *, now: int) -> TransformResult:
        """Transform an already parsed input event."""
        errors, warnings = list(event.errors), list(event.warnings)
        if event.kind == "group" and not errors:
            return TransformResult(ok=True, warnings=warnings)
        if event.kind in ("identify", "alias") and not errors:
            user, person = self._user_data(event, warnings)
            identity = identity_signals(event, person, now=now)
            return TransformResult(ok=True, warnings=_unique(warnings), identity=identity)
        names = self._mapper.names_for(event)
        if not names and not errors:
            warnings.append(Problem("event", f"{event.name!r} has no mapping and unmapped = drop"))
            return TransformResult(ok=True, warnings=warnings)
        url = event.event_source_url
        if url:
            event.event_source_url = scrub_url(url) or None
            if event.event_source_url != url:
                warnings.append(Problem("event_source_url", _URL_SCRUBBED))
        if not event.limited_data_processing and self._ldp_by_rule(event):
            event.limited_data_processing = True
        user, person = self._user_data(event, warnings)
        custom = self._custom_data(event, names, errors, warnings)
        extra = self._passthrough(event, errors, warnings)
        if event.event_time is not None:
            errors.extend(self._validator.check_time(event.event_time, now=now))
        if errors:
            return TransformResult(ok=False, warnings=warnings, errors=_unique(errors))
        order_id = custom.order_id if custom is not None else None
        base_id = event.event_id or derive_event_id(event, names, order_id)
        identity = identity_signals(event, person, now=now)
        events = []
        validate = self._validator
        primary = primary_event(names)  # keeps the base id; the others get ":<name>"
        for name in names:
            event_id = base_id if name == primary else f"{base_id}:{name}"
            built = self._build(event, name, event_id, user, custom, extra)
            errors.extend(
                validate(built, now=now, check_time=False, digest_problems=person.digest_problems)
            )
            events.append(built)
        needs_identifier = False
        if self._defer and identity is not None and _IDENTIFIER_PROBLEM in errors:
            # The person's history may supply the identifier; the store decides.
            errors = [p for p in errors if p != _IDENTIFIER_PROBLEM]
            needs_identifier = True
        if errors:
            return TransformResult(ok=False, warnings=warnings, errors=_unique(errors))
        return TransformResult(
            ok=True,
            events=events,
            warnings=_unique(warnings),
            identity=identity,
            needs_identifier=needs_identifier,
        )

    def _user_data(self, event: InputEvent, warnings: list[Problem]) -> tuple[UserData, _Person]:
        key = tuple((field, tuple(raw)) for field, raw in event.identifiers.items())
        if event.non_text_identifiers:  # True == 1 == 1.0 as keys, objects unhashable
            person = self._hash_identifiers(key)
        else:
            try:
                person = self._hash_identity(key)
            except TypeError:  # not expected: only strings reach this branch
                person = self._hash_identifiers(key)
        warnings.extend(person.problems)
        user = UserData(**person.fields)
        if event.client_ip_address:
            user.client_ip_address = event.client_ip_address
        if event.client_user_agent:
            user.client_user_agent = event.client_user_agent
        if event.click_id:
            user.click_id = event.click_id
        if event.partner_id:
            user.partner_id = event.partner_id
        if event.limited_data_processing and (user.st is UNSET or user.country is UNSET):
            warnings.append(
                Problem("user_data", "Limited Data Processing needs the state (st) and country")
            )
        return user, person

    def _ldp_by_rule(self, event: InputEvent) -> bool:
        """Whether a configured region makes this event Limited Data Processing."""
        options = self._options
        if not options.ldp_regions or (
            options.ldp_requires_opt_out and not event.opted_out_of_sale
        ):
            return False
        country = _first_code("country", event.identifiers.get("country"), options.default_region)
        state = _first_code("st", event.identifiers.get("st"), options.default_region)
        regions = {r.upper() for r in options.ldp_regions}
        return bool(country) and (
            country.upper() in regions or f"{country}-{state}".upper() in regions
        )

    def _hash_identifiers(self, key: _IdentityKey) -> _Person:
        """Digests, warnings and identity keys for one person's raw identifiers.

        Cached per Transformer on the whole set of raw identifiers: the same buyers come back,
        and one lookup replaces a dozen normalizations, the digests' format check and the
        hashing of their identity keys.
        """
        fields: dict[str, list[str]] = {}
        problems: list[Problem] = []
        for field, raw in key:
            digests, found = self._normalizer.hash_values(field, raw)
            problems.extend(found)
            if digests:
                fields[field] = digests
        digest_keys = tuple(
            identifier_key(kind, digest)
            for kind, field in _DIGEST_KEYS
            for digest in fields.get(field, ())
        )
        profile: dict[str, list[str]] = {f: fields[f] for f in PROFILE_FIELDS if f in fields}
        given: dict[str, Any] = fields
        digest_problems = tuple(check_digests(UserData(**given)))
        return _Person(fields, tuple(problems), digest_problems, digest_keys, profile)

    def _custom_data(
        self,
        event: InputEvent,
        names: Sequence[str],
        errors: list[Problem],
        warnings: list[Problem],
    ) -> CustomData | None:
        if event.kind == "pinterest":
            custom, problems = custom_data_from_native(event.custom_data or {})
        else:
            custom, problems = custom_data_from_segment(
                event.properties, page_category=event.page_category
            )
        errors.extend(problems)
        if custom is not None:
            warnings.extend(scrub_personal(custom))
        options = self._options
        default_value = options.checkout_default_value
        if "checkout" in names and default_value and (custom is None or custom.value is None):
            custom = custom or CustomData()
            custom.value = parse_money(default_value)
            custom.currency = custom.currency or options.checkout_default_currency
            warnings.append(
                Problem("custom_data.value", "no value given; the configured default was sent")
            )
        if event.limited_data_processing:
            custom = custom or CustomData()
            custom.opt_out_type = "LDP"
        return custom

    def _passthrough(
        self, event: InputEvent, errors: list[Problem], warnings: list[Problem]
    ) -> dict[str, Any]:
        """Event-level fields given as they are, checked against the wire model.

        A bad one refuses a Pinterest-shaped input; in a Segment call, whose context we only
        borrow, it is left out with a warning: only the bad sub-field of ``app_info`` or
        ``device_info`` (a ``context.locale`` too long), the rest of the object is kept.
        """
        extra: dict[str, Any] = {}
        for key, value in event.passthrough.items():
            if value is None or value == {}:
                continue
            try:
                checked = msgspec.convert({key: value}, _Extras)
            except msgspec.ValidationError as exc:
                problem = problem_from_validation(exc, "")
                if event.kind == "pinterest":
                    errors.append(problem)
                    continue
                repaired = _without_bad_fields(key, value, problem, warnings)
                if repaired is None:
                    continue
                checked = repaired
            extra[key] = getattr(checked, key)
        return extra

    def _build(
        self,
        event: InputEvent,
        name: str,
        event_id: str,
        user: UserData,
        custom: CustomData | None,
        extra: dict[str, Any],
    ) -> ConversionEvent:
        built = ConversionEvent(
            event_name=name,
            action_source=event.action_source or "web",
            event_time=event.event_time or 0,
            event_id=event_id,
            user_data=user,
            event_source_url=event.event_source_url,
            language=event.language,
            partner_name=self._options.partner_name,
        )
        if custom is not None:
            built.custom_data = custom
        if event.opt_out is not None:
            built.opt_out = event.opt_out
        for key, value in extra.items():
            setattr(built, key, value)
        return built


def _without_bad_fields(
    key: str, value: Any, problem: Problem, warnings: list[Problem]
) -> _Extras | None:
    """A borrowed field checked again after leaving out each sub-field the wire model refuses,
    with a warning each; ``None`` when the field itself is refused (it is left out whole)."""
    kept = dict(value) if isinstance(value, dict) else None
    while True:
        sub = problem.field.removeprefix(f"{key}.").partition(".")[0].partition("[")[0]
        if kept is None or not problem.field.startswith(f"{key}.") or sub not in kept:
            warnings.append(Problem(problem.field, f"{problem.message}; left out"))
            return None
        warnings.append(Problem(f"{key}.{sub}", f"{problem.message}; left out"))
        del kept[sub]
        if not kept:
            return None
        try:
            return msgspec.convert({key: kept}, _Extras)
        except msgspec.ValidationError as exc:
            problem = problem_from_validation(exc, "")


def _first_code(field: str, values: list[object] | None, region: str) -> str:
    """The normalized code of the first usable raw value (``us``, ``ca``), or ``""``."""
    for value in values or ():
        if isinstance(value, str):
            try:
                return normalize(field, value, default_region=region)
            except NormalizationError:
                continue
    return ""


#: ``(kind, user_data field)`` of the identifiers that are stored by their digest.
_DIGEST_KEYS = (("em", "em"), ("ph", "ph"), ("xid", "external_id"), ("maid", "hashed_maids"))


def identity_signals(event: InputEvent, person: _Person, *, now: int) -> IdentitySignals | None:
    """What an input tells about its person: identifiers, digests, click, IP, user agent."""
    keys: list[str] = []
    previous = event.previous_id
    if previous:
        keys += [_raw_key("uid", previous), _raw_key("aid", previous)]
    if event.user_id:
        keys.append(_raw_key("uid", event.user_id))
    keys += person.digest_keys
    if event.anonymous_id:
        keys.append(_raw_key("aid", event.anonymous_id))
    if not keys:
        return None
    return IdentitySignals(
        keys=tuple(keys),
        fields=person.profile,
        click_id=event.click_id,
        landing_url=event.event_source_url,
        ip=event.client_ip_address,
        user_agent=event.client_user_agent,
        seen_at=float(event.event_time if event.event_time is not None else now),
    )


#: The key of a raw id (user id, anonymous id), hashed once per id while it stays recent:
#: the same people come back.
_raw_key = functools.lru_cache(maxsize=IDENTITY_CACHE_SIZE)(identifier_key)


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
