"""Tests for pinbridge.normalize: field rules, warnings, digest pass-through and the cache."""

from __future__ import annotations

import hashlib
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinbridge.normalize import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_REGION,
    NormalizationError,
    Normalizer,
    is_sha256_hex,
    normalize,
    sha256_hex,
)
from pinbridge.pinterest.schema import HASHED_FIELDS
from pinbridge.problems import Problem

PROPERTIES = settings(max_examples=200, deadline=None, database=None)

DIGEST = "a" * 32 + "0123456789abcdef" * 2
MD5 = "9e107d9d372bb6826bd81d3542a419d6"
SHA1 = "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"


def sha(text: str) -> str:
    """SHA-256 of the UTF-8 bytes, computed independently of the module under test."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture(name="normalizer", scope="module")
def _normalizer() -> Normalizer:
    return Normalizer()


# (field, raw value, the string the spec says must be hashed)
NORMALIZED = [
    # em: trim + lowercase only
    ("em", "John.Doe@Example.com", "john.doe@example.com"),
    ("em", "  jane+promo@gmail.com\t", "jane+promo@gmail.com"),
    ("em", "J.Smith+Tag@Sub.Example.CO.UK", "j.smith+tag@sub.example.co.uk"),
    # ph: E.164 digits through the phone library
    ("ph", "+1 (650) 555-1234", "16505551234"),
    ("ph", "415.555.2671", "14155552671"),
    ("ph", "0044 20 7946 0958", "442079460958"),
    ("ph", "011 44 20 7946 0958", "442079460958"),
    ("ph", "00 44 20 7946 0958", "442079460958"),
    ("ph", "+44 (0)20 7946 0958", "442079460958"),
    ("ph", "(650) 555-1234 ext. 99", "16505551234"),
    ("ph", "650-555-1234 x7", "16505551234"),
    ("ph", "16505551234", "16505551234"),
    ("ph", "+33 6 12 34 56 78", "33612345678"),
    # bare digits, not possible in the default region (US): Pinterest's own form, read as
    # international (country code first)
    ("ph", "442079460958", "442079460958"),
    ("ph", "4915112345678", "4915112345678"),
    ("ph", "33612345678", "33612345678"),
    # fn / ln: NFC, lowercase, ends trimmed, inside kept
    ("fn", "John", "john"),
    ("fn", "  MARY ", "mary"),
    ("fn", "Mary-Ann", "mary-ann"),
    ("fn", "Mary Ann", "mary ann"),
    ("fn", "李", "李"),
    ("fn", "Ζωή", "ζωή"),
    ("fn", "Straße", "straße"),
    ("ln", "Müller", "müller"),
    ("ln", "Mu\u0308ller", "müller"),
    ("ln", "O'Brien", "o'brien"),
    ("ln", "Smith, Jr.", "smith, jr"),
    ("ln", "-Núñez-", "núñez"),
    ("ln", "शर्मा", "शर्मा"),
    # ge: synonyms
    *[("ge", raw, "f") for raw in ("Female", "F", "woman", "w", "female", "girl", " FEMALE ")],
    *[("ge", raw, "m") for raw in ("male", "M", "man", "boy", "Male")],
    *[
        ("ge", raw, "n")
        for raw in (
            "non-binary",
            "nonbinary",
            "Non Binary",
            "nb",
            "N",
            "other",
            "X",
            "genderqueer",
            "Agender",
            "non_binary",
        )
    ],
    # db: many spellings to YYYYMMDD
    ("db", "1997-12-26", "19971226"),
    ("db", "1997-12-26T10:00:00Z", "19971226"),
    ("db", "1997-12-26T10:00:00", "19971226"),
    ("db", "1997-12-26T23:30:00.123+05:30", "19971226"),
    ("db", "1997-12-26 10:00", "19971226"),
    ("db", "19971226", "19971226"),
    ("db", "1997/12/26", "19971226"),
    ("db", "1997-1-5", "19970105"),
    ("db", "12/26/1997", "19971226"),
    ("db", "01/02/1997", "19970102"),
    ("db", "26/12/1997", "19971226"),
    ("db", "26.12.1997", "19971226"),
    ("db", "01.02.1997", "19970201"),
    ("db", "2000-02-29", "20000229"),
    ("db", "1900-01-01", "19000101"),
    # ct: lowercase, letters and digits only, accents kept
    ("ct", "San Francisco", "sanfrancisco"),
    ("ct", "St. Louis", "stlouis"),
    ("ct", "São Paulo", "sãopaulo"),
    ("ct", "Sa\u0303o Paulo", "sãopaulo"),
    ("ct", "Winston-Salem", "winstonsalem"),
    ("ct", "Menlo Park", "menlopark"),
    ("ct", "Coeur d'Alene", "coeurdalene"),
    ("ct", "Zürich", "zürich"),
    ("ct", "東京", "東京"),
    ("ct", "Twentynine Palms 2", "twentyninepalms2"),
    # st: two-letter codes, names mapped, US first
    ("st", "CA", "ca"),
    ("st", "ca", "ca"),
    ("st", "California", "ca"),
    ("st", "new york", "ny"),
    ("st", "New-York", "ny"),
    ("st", "District of Columbia", "dc"),
    ("st", "Washington DC", "dc"),
    ("st", "Georgia", "ga"),
    ("st", "US-CA", "ca"),
    ("st", "N.Y.", "ny"),
    ("st", "Ontario", "on"),
    ("st", "ON", "on"),
    ("st", "CA-ON", "on"),
    ("st", "Québec", "qc"),
    ("st", "Quebec", "qc"),
    ("st", "Bayern", "by"),
    ("st", "Puerto Rico", "pr"),
    # zp: US ZIP to 5 digits, others lowercase alphanumerics
    ("zp", "94103", "94103"),
    ("zp", "94103-1234", "94103"),
    ("zp", "941031234", "94103"),
    ("zp", "02134", "02134"),
    ("zp", "2000", "2000"),
    ("zp", "SW1A 2AA", "sw1a2aa"),
    ("zp", "K1A 0A6", "k1a0a6"),
    ("zp", "K1A-0A6", "k1a0a6"),
    ("zp", "01310-100", "01310100"),
    ("zp", "75008", "75008"),
    # country: names, alpha-3, aliases to alpha-2
    ("country", "US", "us"),
    ("country", "us", "us"),
    ("country", "USA", "us"),
    ("country", "U.S.A.", "us"),
    ("country", "United States", "us"),
    ("country", "United States of America", "us"),
    ("country", "DEU", "de"),
    ("country", "Germany", "de"),
    ("country", "United Kingdom", "gb"),
    ("country", "UK", "gb"),
    ("country", "Great Britain", "gb"),
    ("country", "france", "fr"),
    ("country", "South Korea", "kr"),
    ("country", "Türkiye", "tr"),
    ("country", "Turkey", "tr"),
    ("country", "Côte d'Ivoire", "ci"),
    # external_id: trimmed, case kept
    ("external_id", "  User-ABC-123 ", "User-ABC-123"),
    ("external_id", "abc", "abc"),
    (
        "external_id",
        "5f2b8c1d9e3a4b6c7d8e9f0a1b2c3d4e",
        "5f2b8c1d9e3a4b6c7d8e9f0a1b2c3d4e",
    ),
    # hashed_maids: lowercase UUIDs
    (
        "hashed_maids",
        " 38400000-8CF0-11BD-B23E-10B96E40000D ",
        "38400000-8cf0-11bd-b23e-10b96e40000d",
    ),
    (
        "hashed_maids",
        "6d92078a-8246-4ba4-ae5b-76104861e7dc",
        "6d92078a-8246-4ba4-ae5b-76104861e7dc",
    ),
]

# (field, raw value, warning message)
ZERO_MAID = "the all-zero advertising id means tracking was denied; it identifies no one"
UNUSABLE = [
    ("em", "Hashed email", "not an email address or a SHA-256 digest"),
    ("em", "john.doe.example.com", "not an email address or a SHA-256 digest"),
    ("em", "john@localhost", "not an email address or a SHA-256 digest"),
    ("em", "john@doe@example.com", "not an email address or a SHA-256 digest"),
    ("em", "@example.com", "not an email address or a SHA-256 digest"),
    ("em", "john doe@example.com", "not an email address or a SHA-256 digest"),
    ("ph", "Hashed phone", "not a phone number"),
    ("ph", "555-1234", "not a possible phone number"),
    ("ph", "+999 1234 5678", "not a phone number"),
    ("ph", "12", "not a possible phone number"),
    ("ph", "5551234", "not a possible phone number"),  # local only, not read as +55 51234
    ("ph", "9876543", "not a possible phone number"),  # local only, not read as +98 (Iran)
    ("ph", "4304114", "not a possible phone number"),  # local only, not read as +43 (Austria)
    ("ph", "44207946095", "not a possible phone number"),  # too long, but +44… is not valid
    ("ph", "+1 650 555 12345678", "not a possible phone number"),
    ("fn", "123", "no letter in name"),
    ("fn", "---", "no letter in name"),
    ("ln", "?!", "no letter in name"),
    ("ge", "unknown", "not a recognised gender"),
    ("ge", "yes", "not a recognised gender"),
    ("db", "1997-02-30", "not a real calendar date"),
    ("db", "1997-13-01", "not a real calendar date"),
    ("db", "13/13/1997", "not a real calendar date"),
    ("db", "1850-01-01", "birth year out of range"),
    ("db", "2150-01-01", "birth year out of range"),
    ("db", "Dec 26 1997", "not a recognised date format"),
    ("db", "12/26/97", "not a recognised date format"),
    ("ct", "12345", "no letter in city"),
    ("ct", "--", "no letter in city"),
    ("st", "Atlantis Province", "not a recognised state or province"),
    ("st", "GB-ENG", "not a recognised state or province"),
    ("zp", "--", "no letters or digits in postcode"),
    ("country", "Atlantis", "not a recognised country"),
    ("country", "XQ", "not a recognised country"),
    ("em", MD5, "looks like a digest but not SHA-256"),
    ("ph", SHA1, "looks like a digest but not SHA-256"),
    ("hashed_maids", MD5.upper(), "looks like a digest but not SHA-256"),
    ("hashed_maids", "00000000-0000-0000-0000-000000000000", ZERO_MAID),
    ("hashed_maids", sha("00000000-0000-0000-0000-000000000000").upper(), ZERO_MAID),
    ("fn", "ab" * 64, "looks like a digest but not SHA-256"),
]


class TestSha256Hex:
    """sha256_hex hashes UTF-8 bytes into lowercase hex."""

    @pytest.mark.parametrize(
        ("text", "digest"),
        [
            ("us", "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
            ("US", "9b202ecbc6d45c6d8901d989a918878397a3eb9d00e8f48022fc051b19d21a1d"),
            ("16505551234", "6069d14bf122fdfd931dc7beb58e5dfbba395b1faf05bdcd42d12358d63d8599"),
            ("müller", "2dbd218072117713f2d5996a726a9b216ed791ffd0783b6ba4ab6d61b8333192"),
        ],
    )
    def test_known_digests(self, text: str, digest: str) -> None:
        """Digests match literal values (``US`` is the example in Pinterest's spec)."""
        assert sha256_hex(text) == digest


class TestIsSha256Hex:
    """is_sha256_hex recognises values that are already digests."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (DIGEST, True),
            (DIGEST.upper(), True),
            (f"  {DIGEST}\n", True),
            (DIGEST[:-1], False),
            (DIGEST + "0", False),
            (DIGEST[:-1] + "g", False),
            (MD5, False),
            ("", False),
        ],
    )
    def test_detection(self, text: str, expected: bool) -> None:
        """Exactly 64 hex characters in any case, after trimming, count as a digest."""
        assert is_sha256_hex(text) is expected


class TestNormalize:
    """normalize brings each field to the exact form Pinterest hashes."""

    @pytest.mark.parametrize(("field", "raw", "expected"), NORMALIZED)
    def test_normalized_form(self, field: str, raw: str, expected: str) -> None:
        """The raw value normalises to the spec's string."""
        assert normalize(field, raw) == expected

    @pytest.mark.parametrize(
        ("raw", "region", "expected"),
        [
            ("06 12 34 56 78", "FR", "33612345678"),
            ("06 12 34 56 78", "fr", "33612345678"),
            ("0044 20 7946 0958", "FR", "442079460958"),
            ("020 7946 0958", "GB", "442079460958"),
            ("030 123456", "DE", "4930123456"),
            ("+1 650 555 1234", "DE", "16505551234"),
        ],
    )
    def test_phone_default_region(self, raw: str, region: str, expected: str) -> None:
        """National numbers get the default region's code; international ones keep theirs."""
        assert normalize("ph", raw, default_region=region) == expected

    @pytest.mark.parametrize("field", HASHED_FIELDS)
    def test_digest_returned_lowercase(self, field: str) -> None:
        """An existing SHA-256 digest comes back trimmed and lowercased, for every field."""
        assert normalize(field, f" {DIGEST.upper()} ") == DIGEST

    @pytest.mark.parametrize(("field", "raw", "message"), UNUSABLE)
    def test_unusable_raises(self, field: str, raw: str, message: str) -> None:
        """Unusable values raise NormalizationError with the reason."""
        with pytest.raises(NormalizationError, match=message):
            normalize(field, raw)

    def test_empty_raises(self) -> None:
        """A blank value is an error for the uncached single-value API."""
        with pytest.raises(NormalizationError, match="empty"):
            normalize("em", "   ")

    def test_unknown_field(self) -> None:
        """A field that is not hashed is a programming error, not a normalisation problem."""
        with pytest.raises(ValueError, match="not a hashed user_data field") as info:
            normalize("client_ip_address", "1.2.3.4")
        assert not isinstance(info.value, NormalizationError)

    def test_external_id_md5_kept(self) -> None:
        """external_id is opaque, so a 32-hex id is hashed rather than refused as an MD5."""
        assert normalize("external_id", MD5.upper()) == MD5.upper()

    def test_sixty_four_non_hex_is_raw(self) -> None:
        """A 64-character value with non-hex characters is treated as raw data."""
        raw = "z" * 64
        assert normalize("external_id", raw) == raw


class TestHashValues:
    """Normalizer.hash_values turns a field's values into digests and warnings."""

    @pytest.mark.parametrize(("field", "raw", "expected"), NORMALIZED)
    def test_digest_of_normalized(
        self, normalizer: Normalizer, field: str, raw: str, expected: str
    ) -> None:
        """The digest is SHA-256 of the spec-normalised string."""
        assert normalizer.hash_values(field, [raw]) == ([sha(expected)], [])

    @pytest.mark.parametrize(("field", "raw", "message"), UNUSABLE)
    def test_unusable_warns(
        self, normalizer: Normalizer, field: str, raw: str, message: str
    ) -> None:
        """An unusable value gives no digest and one warning that names the field, not the value."""
        digests, problems = normalizer.hash_values(field, [raw])
        assert digests == []
        assert problems == [Problem(field=f"user_data.{field}", message=message)]
        assert raw.strip() not in problems[0].message

    @pytest.mark.parametrize("field", HASHED_FIELDS)
    def test_digest_passes_through(self, normalizer: Normalizer, field: str) -> None:
        """A SHA-256 digest in any case and padding is lowercased and never hashed again."""
        assert normalizer.hash_values(field, [f"\t{DIGEST.upper()} "]) == ([DIGEST], [])

    @pytest.mark.parametrize("field", HASHED_FIELDS)
    def test_blank_values_dropped_silently(self, normalizer: Normalizer, field: str) -> None:
        """None, empty and whitespace-only values vanish without a warning."""
        assert normalizer.hash_values(field, [None, "", "  ", "\n\t"]) == ([], [])

    def test_duplicates_removed_after_normalization(self, normalizer: Normalizer) -> None:
        """Values that normalise alike give one digest, in first-seen order."""
        digests, problems = normalizer.hash_values(
            "em", ["B@x.com", "a@x.com", " A@X.COM ", "b@x.com", sha("a@x.com").upper()]
        )
        assert digests == [sha("b@x.com"), sha("a@x.com")]
        assert problems == []

    def test_several_emails(self, normalizer: Normalizer) -> None:
        """Every usable email is kept; the unusable one gets a warning."""
        digests, problems = normalizer.hash_values("em", ["a@x.com", "nope", "b@y.org"])
        assert digests == [sha("a@x.com"), sha("b@y.org")]
        assert [p.field for p in problems] == ["user_data.em"]

    @pytest.mark.parametrize(
        ("field", "value", "expected"),
        [
            ("ph", 16505551234, "16505551234"),
            ("zp", 94103, "94103"),
            ("zp", 94103.0, "94103"),
            ("db", 19971226, "19971226"),
            ("external_id", 42, "42"),
        ],
    )
    def test_numbers_converted(
        self, normalizer: Normalizer, field: str, value: object, expected: str
    ) -> None:
        """Numbers sent where strings belong are converted to text, then normalised."""
        assert normalizer.hash_values(field, [value]) == ([sha(expected)], [])

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (True, "expected a string, got bool"),
            (False, "expected a string, got bool"),
            ({"email": "a@x.com"}, "expected a string, got dict"),
            (["a@x.com"], "expected a string, got list"),
            (b"a@x.com", "expected a string, got bytes"),
            (float("nan"), "not a finite number"),
            (float("inf"), "not a finite number"),
        ],
    )
    def test_unusable_types_warn(self, normalizer: Normalizer, value: object, message: str) -> None:
        """Booleans, containers, bytes and non-finite numbers are dropped with a warning."""
        digests, problems = normalizer.hash_values("external_id", ["ok", value])
        assert digests == [sha("ok")]
        assert problems == [Problem(field="user_data.external_id", message=message)]
        assert "a@x.com" not in message

    def test_unknown_field(self, normalizer: Normalizer) -> None:
        """A field that is not hashed raises ValueError."""
        with pytest.raises(ValueError, match="not a hashed user_data field"):
            normalizer.hash_values("click_id", ["x"])

    def test_generator_input(self, normalizer: Normalizer) -> None:
        """Any iterable of values is accepted, including a one-shot generator."""
        values = (v for v in ["a@x.com"])
        assert normalizer.hash_values("em", values) == ([sha("a@x.com")], [])

    def test_phone_region_from_config(self) -> None:
        """The configured default region is used for national phone numbers."""
        digests, _ = Normalizer(default_region="fr").hash_values("ph", ["06 12 34 56 78"])
        assert digests == [sha("33612345678")]

    def test_composed_and_decomposed_names_agree(self, normalizer: Normalizer) -> None:
        """NFC and NFD spellings of a name hash the same."""
        composed = unicodedata.normalize("NFC", "José")
        decomposed = unicodedata.normalize("NFD", "José")
        assert composed != decomposed
        assert normalizer.hash_values("fn", [composed, decomposed]) == ([sha("josé")], [])


class TestNormalizer:
    """Normalizer configuration and caching."""

    def test_defaults(self) -> None:
        """Defaults are the named module constants."""
        normalizer = Normalizer()
        assert normalizer.default_region == DEFAULT_REGION == "US"
        assert normalizer.cache_size == DEFAULT_CACHE_SIZE
        assert repr(normalizer) == "Normalizer(default_region='US', cache_size=65536)"

    def test_unknown_region(self) -> None:
        """An unknown phone region is refused at construction, not on every value."""
        with pytest.raises(ValueError, match="unknown phone region"):
            Normalizer(default_region="XX")

    def test_negative_cache_size(self) -> None:
        """A negative cache size is refused."""
        with pytest.raises(ValueError, match="cache_size"):
            Normalizer(cache_size=-1)

    def test_cache_is_bounded(self) -> None:
        """The cache never holds more than cache_size outcomes, and results stay correct."""
        normalizer = Normalizer(cache_size=2)
        for n in range(10):
            assert normalizer.hash_values("external_id", [str(n)]) == ([sha(str(n))], [])
        assert normalizer.hash_values("external_id", ["0"]) == ([sha("0")], [])

    def test_cached_failure_still_warns(self) -> None:
        """A repeated bad value warns every time, from the cache too."""
        normalizer = Normalizer()
        first = normalizer.hash_values("em", ["nope", "nope"])
        second = normalizer.hash_values("em", ["nope"])
        assert len(first[1]) == 2
        assert second[1] == first[1][:1]

    def test_field_is_part_of_cache_key(self) -> None:
        """The same raw text in two fields is normalised by each field's rule."""
        normalizer = Normalizer()
        assert normalizer.hash_values("external_id", ["CA"]) == ([sha("CA")], [])
        assert normalizer.hash_values("st", ["CA"]) == ([sha("ca")], [])


fields = st.sampled_from(HASHED_FIELDS)
values = st.one_of(
    st.text(),
    st.text(alphabet="0123456789 +-().", max_size=20),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=30, max_size=70),
    st.from_regex(r"[a-zA-Z0-9.+]{1,10}@[a-z]{1,8}\.[a-z]{2,3}", fullmatch=True),
    st.sampled_from([raw for _, raw, _ in NORMALIZED + UNUSABLE]),
)


class TestProperties:
    """Invariants over arbitrary input."""

    @PROPERTIES
    @given(field=fields, raws=st.lists(values, max_size=4))
    def test_digests_are_lowercase_hex(self, field: str, raws: list[str]) -> None:
        """Every digest is 64 lowercase hex characters, and none repeats."""
        digests, _ = Normalizer().hash_values(field, raws)
        assert all(len(d) == 64 and d == d.lower() and is_sha256_hex(d) for d in digests)
        assert len(set(digests)) == len(digests)

    @PROPERTIES
    @given(field=fields, raws=st.lists(values, max_size=4))
    def test_idempotent(self, field: str, raws: list[str]) -> None:
        """Feeding the digests back in returns them unchanged, with no warnings."""
        normalizer = Normalizer()
        digests, _ = normalizer.hash_values(field, raws)
        assert normalizer.hash_values(field, digests) == (digests, [])

    @PROPERTIES
    @given(field=fields, raw=st.text())
    def test_never_raises(self, field: str, raw: str) -> None:
        """Arbitrary Unicode gives digests or warnings, never an exception."""
        digests, problems = Normalizer(cache_size=0).hash_values(field, [raw])
        assert len(digests) + len(problems) <= 1
        assert all(p.field == f"user_data.{field}" for p in problems)

    @PROPERTIES
    @given(field=fields, raws=st.lists(values, max_size=6))
    def test_cached_matches_uncached(self, field: str, raws: list[str]) -> None:
        """The cache changes speed only: cached, tiny-cache and uncached results agree."""
        expected = Normalizer(cache_size=0).hash_values(field, raws)
        cached = Normalizer()
        assert cached.hash_values(field, raws) == expected
        assert cached.hash_values(field, raws) == expected
        digests, problems = Normalizer(cache_size=1).hash_values(field, raws + raws)
        assert (digests, problems) == (expected[0], expected[1] * 2)

    @PROPERTIES
    @given(field=fields, raw=values)
    def test_hash_values_agrees_with_normalize(self, field: str, raw: str) -> None:
        """hash_values hashes exactly what normalize returns (or passes a digest through)."""
        try:
            normalized = normalize(field, raw)
        except NormalizationError as exc:
            digests, problems = Normalizer().hash_values(field, [raw])
            assert digests == []
            warned = [Problem(field=f"user_data.{field}", message=str(exc))]
            assert problems == ([] if raw.isspace() or not raw else warned)
            return
        expected = normalized if is_sha256_hex(raw) else sha(normalized)
        assert Normalizer().hash_values(field, [raw]) == ([expected], [])
