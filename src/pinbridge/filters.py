"""Traffic that must not reach Pinterest: bots, users who denied ads consent, calls sent elsewhere.

Pure: each check looks at the input event (and the events it became) and returns the reason
to drop it, or ``None``. Dropped events are answered ``dropped`` with that reason and counted;
they are never stored.

Bots are recognised by user agent with crawlerdetect's maintained list (Pinterestbot,
Googlebot, headless browsers and some thousand others); results are cached per user agent,
since one lookup costs about 0.3 ms and the same agents come back all day.

Consent follows what pb.js sends (``context.consent.ads``) and Segment's consent spec
(``context.consent.categoryPreferences``, a category named like advertising set to false).
A Segment call whose ``integrations`` object turns Pinterest off is dropped too.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final

from crawlerdetect import CrawlerDetect

from pinbridge.pinterest.schema import ConversionEvent

__all__ = [
    "BOT",
    "CONSENT",
    "INTEGRATIONS",
    "TrafficFilter",
    "ads_consent_denied",
    "bot_name",
    "pinterest_excluded",
]

BOT: Final = "bot"
CONSENT: Final = "consent"
INTEGRATIONS: Final = "integrations"
#: Names under which a Segment call's ``integrations`` object may address this destination.
_OUR_NAMES: Final = frozenset(
    {"pinterest", "pinterest conversions api", "pinterest conversions", "pinbridge"}
)
_ADS_CATEGORIES: Final = frozenset({"ads", "advertising", "marketing", "targeting"})
_detector = CrawlerDetect()


@lru_cache(maxsize=16384)
def bot_name(user_agent: str) -> str | None:
    """The crawler a user agent belongs to, or ``None`` for a person's browser or app."""
    if not user_agent or not _detector.isCrawler(user_agent):
        return None
    return str(_detector.getMatches() or "crawler")


def ads_consent_denied(message: object) -> bool:
    """Whether the input event says the user refused advertising."""
    if not isinstance(message, dict):
        return False
    context = message.get("context")
    consent = context.get("consent") if isinstance(context, dict) else None
    if not isinstance(consent, dict):
        return False
    if consent.get("ads") is False:
        return True
    preferences: Any = consent.get("categoryPreferences")
    if isinstance(preferences, dict):
        return any(
            str(k).strip().lower() in _ADS_CATEGORIES and v is False for k, v in preferences.items()
        )
    return False


def pinterest_excluded(message: object) -> bool:
    """Whether a Segment call's ``integrations`` keeps it away from Pinterest.

    As Segment reads it: ``{"Pinterest": false}`` excludes it; ``{"All": false}`` excludes
    every destination not named with ``true`` (or with an object of options). The names
    ``Pinterest``, ``Pinterest Conversions API`` and ``pinbridge`` are recognised, ignoring case.
    """
    if not isinstance(message, dict):
        return False
    integrations = message.get("integrations")
    if not isinstance(integrations, dict):
        return False
    ours = [v for k, v in integrations.items() if str(k).strip().lower() in _OUR_NAMES]
    if any(v is True or isinstance(v, dict) for v in ours):
        return False
    if any(v is False for v in ours):
        return True
    return any(str(k).strip().lower() == "all" and v is False for k, v in integrations.items())


class TrafficFilter:
    """Decides whether an accepted event is dropped before delivery, and why.

    Args:
        drop_bots: drop events whose user agent is a crawler's.
        honour_consent: drop events whose user refused ads consent.
    """

    __slots__ = ("_bots", "_consent")

    def __init__(self, *, drop_bots: bool = True, honour_consent: bool = True) -> None:
        self._bots = drop_bots
        self._consent = honour_consent

    def __call__(
        self,
        message: object,
        events: Sequence[ConversionEvent],
        user_agent: str | None = None,
    ) -> str | None:
        """The reason to drop (``bot: <name>`` or ``consent``), or ``None`` to send.

        ``user_agent`` is the input's own, for an input that became no event (``identify``):
        what it tells about its person is dropped all the same.
        """
        if self._consent and ads_consent_denied(message):
            return CONSENT
        if pinterest_excluded(message):
            return INTEGRATIONS
        if self._bots:
            agents: list[object] = [e.user_data.client_user_agent for e in events]
            for agent in agents or [user_agent]:
                name = bot_name(agent) if isinstance(agent, str) else None
                if name is not None:
                    return f"{BOT}: {name}"
        return None
