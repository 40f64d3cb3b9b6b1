"""Why a body breaks ``ConversionEvents``, said the way Pinterest says it (jsonschema wording).

Only used on the slow path: msgspec has already refused the body, and this module walks the
decoded JSON against the same Structs (through ``msgspec.inspect``) to name the first offending
field, e.g. ``72.39 is not of type 'string'`` at ``$.data[0].custom_data.value``. Pinterest's
observed 400 message is ``"Invalid request: " + <first python-jsonschema error>``.

It also strips unknown keys inside events for the lenient mode.
"""

from __future__ import annotations

from typing import Any, Final, cast

import msgspec.inspect as mi

from pinbridge.pinterest.schema import ConversionEvents, UserData

__all__ = ["SchemaViolation", "find_violation", "format_path", "strip_unknown_fields"]

_ROOT: Final = cast(mi.StructType, mi.type_info(ConversionEvents))
_REPR_MAX: Final = 120
Path = tuple[str | int, ...]


class SchemaViolation(Exception):
    """A body that breaks the schema: the jsonschema-style message and the JSON path."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def describe(self) -> str:
        """The message followed by the JSON path it refers to."""
        return f"{self.message} (at {format_path(self.path)})"


def format_path(path: Path) -> str:
    """``('data', 0, 'custom_data')`` -> ``$.data[0].custom_data``."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def find_violation(obj: Any) -> SchemaViolation | None:
    """The first schema violation in ``obj`` (decoded JSON), or ``None`` if it conforms."""
    try:
        _check(obj, _ROOT, ())
    except SchemaViolation as violation:
        return violation
    return None


def strip_unknown_fields(obj: Any) -> list[list[str]]:
    """Remove unknown keys inside each event (in place); per event, the dotted keys removed.

    Only closed objects below the event level are cleaned; the top level stays strict, so a
    misplaced ``"test": true`` in the body is still refused.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        return []
    event_info = _struct_of(_field_types(_ROOT)["data"])
    removed: list[list[str]] = []
    for event in obj["data"]:
        found: list[str] = []
        if event_info is not None:
            _strip(event, event_info, "", found)
        removed.append(found)
    return removed


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


def _field_types(info: mi.StructType) -> dict[str, mi.Type]:
    return {f.encode_name: f.type for f in info.fields}


def _struct_of(info: mi.Type) -> mi.StructType | None:
    """The Struct inside ``info`` (through lists and unions), if any."""
    if isinstance(info, mi.StructType):
        return info
    if isinstance(info, mi.ListType):
        return _struct_of(info.item_type)
    if isinstance(info, mi.UnionType):
        for member in info.types:
            found = _struct_of(member)
            if found is not None:
                return found
    return None


def _strip(obj: Any, info: mi.StructType, prefix: str, found: list[str]) -> None:
    if not isinstance(obj, dict):
        return
    types = _field_types(info)
    if info.forbid_unknown_fields:
        for key in [k for k in obj if k not in types]:
            found.append(prefix + key)
            del obj[key]
    for key, value in obj.items():
        inner = _struct_of(types[key]) if key in types else None
        if inner is None:
            continue
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            where = f"{prefix}{key}[{index}]." if isinstance(value, list) else f"{prefix}{key}."
            _strip(item, inner, where, found)


def _check(value: Any, info: mi.Type, path: Path) -> None:
    if isinstance(info, mi.UnionType):
        if value is None and any(isinstance(t, mi.NoneType) for t in info.types):
            return
        info = next(t for t in info.types if not isinstance(t, mi.NoneType))
    if isinstance(info, mi.StructType):
        _check_object(value, info, path)
    elif isinstance(info, mi.ListType):
        _check_array(value, info, path)
    elif isinstance(info, mi.StrType):
        _check_string(value, info, path)
    elif isinstance(info, mi.IntType):
        _check_integer(value, info, path)
    elif isinstance(info, mi.LiteralType):
        if not isinstance(value, str):
            raise SchemaViolation(f"{_short(value)} is not of type 'string'", path)
        if value not in info.values:
            raise SchemaViolation(f"{_short(value)} is not one of {list(info.values)!r}", path)
    elif isinstance(info, mi.BoolType) and not isinstance(value, bool):
        raise SchemaViolation(f"{_short(value)} is not of type 'boolean'", path)


def _check_object(value: Any, info: mi.StructType, path: Path) -> None:
    if not isinstance(value, dict):
        raise SchemaViolation(f"{_short(value)} is not of type 'object'", path)
    fields = info.fields
    if info.forbid_unknown_fields:
        known = {f.encode_name for f in fields}
        extra = [k for k in value if k not in known]
        if extra:
            names = ", ".join(repr(k) for k in extra)
            verb = "was" if len(extra) == 1 else "were"
            raise SchemaViolation(
                f"Additional properties are not allowed ({names} {verb} unexpected)", path
            )
    for f in fields:
        if f.encode_name in value:
            _check(value[f.encode_name], f.type, (*path, f.encode_name))
    for f in fields:
        if f.required and f.encode_name not in value:
            raise SchemaViolation(f"{f.encode_name!r} is a required property", path)
    if info.cls is UserData and not _has_identifier(value):
        raise SchemaViolation(f"{_short(value)} is not valid under any of the given schemas", path)


def _has_identifier(user_data: dict[str, Any]) -> bool:
    """The ``anyOf`` of ``user_data``: em, hashed_maids, or IP and user agent together."""
    return (
        "em" in user_data
        or "hashed_maids" in user_data
        or ("client_ip_address" in user_data and "client_user_agent" in user_data)
    )


def _check_array(value: Any, info: mi.ListType, path: Path) -> None:
    if not isinstance(value, list):
        raise SchemaViolation(f"{_short(value)} is not of type 'array'", path)
    if info.min_length is not None and len(value) < info.min_length:
        if info.min_length == 1:
            raise SchemaViolation(f"{_short(value)} should be non-empty", path)
        raise SchemaViolation(f"{_short(value)} is too short", path)
    if info.max_length is not None and len(value) > info.max_length:
        raise SchemaViolation(f"{_short(value)} is too long", path)
    for index, item in enumerate(value):
        _check(item, info.item_type, (*path, index))


def _check_string(value: Any, info: mi.StrType, path: Path) -> None:
    if not isinstance(value, str):
        raise SchemaViolation(f"{_short(value)} is not of type 'string'", path)
    if info.max_length is not None and len(value) > info.max_length:
        raise SchemaViolation(f"{_short(value)} is too long", path)


def _check_integer(value: Any, info: mi.IntType, path: Path) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SchemaViolation(f"{_short(value)} is not of type 'integer'", path)
    if info.ge is not None and value < info.ge:
        raise SchemaViolation(f"{value} is less than the minimum of {info.ge}", path)
    if info.le is not None and value > info.le:
        raise SchemaViolation(f"{value} is greater than the maximum of {info.le}", path)
