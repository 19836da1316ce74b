"""SCIM filters (RFC 7644 §3.4.2.2) compiled to SQL over the directory tables.

scim2-models parses and validates the filter; this module turns its syntax tree into a SQLAlchemy
condition. Where a part of a filter cannot be expressed on the indexed columns (say ``emails[primary eq
true]``), the compiler returns a *superset* condition and says the result is inexact: the store then checks
each candidate with scim2-models' own evaluator, so SQL only ever speeds a filter up, never changes its
meaning.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import ColumnElement, and_, exists, false, not_, or_, true

from tenantry.core.clock import as_utc
from tenantry.directory.models import Group, GroupMember, User, UserValue
from tenantry.protocols.phones import phone_key

CORE_PREFIXES = ("urn:ietf:params:scim:schemas:core:2.0:user:", "urn:ietf:params:scim:schemas:core:2.0:group:")

# Multi-valued complex attributes: a filter naming one without a sub-attribute means its ``value``
# (RFC 7644 §3.4.2.2, "emails co …").
MULTI_COMPLEX = {
    "emails", "phonenumbers", "ims", "photos", "addresses", "groups", "entitlements", "roles",
    "x509certificates", "members",
}

# Attributes whose comparisons keep case (RFC 7643 §2.2 caseExact=true).
CASE_EXACT = {"id", "externalid", "meta.version", "members.value", "groups.value"}


# Default-ignorable code points (Unicode's Default_Ignorable_Code_Point) that are not of category Cf: the
# combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian variation selectors, variation
# selectors. Like format characters, they draw nothing.
_IGNORABLE = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0x180B, 0x1810),
                        *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)})


def user_name_key(value: str) -> str:
    """The uniqueness and look-up key of a ``userName``: look-alikes of one name share it.

    RFC 7643 §4.1.1 makes userName unique and caseExact=false, and RFC 7613 (PRECIS UsernameCaseMapped)
    asks for width mapping and case folding of user names: here NFKC (fullwidth "ａ" is "a"), no format
    characters (Unicode category Cf: zero-width space, joiners, bidi marks — invisible in every console)
    nor the other default-ignorable code points (variation selectors, Hangul fillers, …),
    no leading or trailing white space, lower case, and NFKC again since lowering can denormalise.
    """
    if value.isascii():  # the common case, kept cheap: ASCII has no format characters and is NFKC already
        return value.strip().lower()
    value = unicodedata.normalize("NFKC", value)
    value = "".join(ch for ch in value if unicodedata.category(ch) != "Cf" and ord(ch) not in _IGNORABLE).strip()
    return unicodedata.normalize("NFKC", value.lower())


def fold(attr: str, value: str) -> str:
    """The comparison form of a string: NFC, and lower case unless the attribute is caseExact.

    ``userName`` is compared on its look-alike-proof key (``user_name_key``).
    """
    if attr == "username":
        return user_name_key(value)
    value = unicodedata.normalize("NFC", value)
    if attr in CASE_EXACT:
        return value
    return unicodedata.normalize("NFC", value.lower())


def with_user_name_keys(node: FilterNode) -> FilterNode:
    """The filter with every ``userName`` comparison value replaced by its key (``user_name_key``).

    For the exact check of an inexact SQL answer: scim2-models' evaluator, run on a resource whose userName
    is its key too, then agrees with the SQL on the key column.
    """
    if isinstance(node, Comparison) and isinstance(node.value, str) and attr_key(node.attr_path) == "username":
        return replace(node, value=user_name_key(node.value))
    if isinstance(node, LogicalExpr):
        return replace(node, terms=tuple(with_user_name_keys(t) for t in node.terms))
    if isinstance(node, Not):
        return replace(node, expr=with_user_name_keys(node.expr))
    return node


# The attributes that name one user: a filter that asks for one of them by ``eq`` asks for that user
# explicitly, and finds it even when it is hidden from address lists.
NAMING_ATTRIBUTES = frozenset({"id", "username", "externalid"})


def names_one(node: FilterNode) -> bool:
    """Whether the filter asks for a resource by name: ``id``, ``userName`` or ``externalId`` ``eq`` a value,
    alone or as a term of an ``and`` (which can only narrow it). Such a query is a look-up, not a listing, so
    users hidden from address lists are found by it."""
    if isinstance(node, Comparison):
        return (node.op is CompareOperator.eq and isinstance(node.value, str)
                and attr_key(node.attr_path) in NAMING_ATTRIBUTES)
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.and_:
        return any(names_one(term) for term in node.terms)
    return False


def attr_key(path: AttrPath, sub_attr: str | None = None) -> str:
    """The lower-case storage key of an attribute path: ``name.givenname``, ``urn:…:user:costcenter``."""
    key = path.attr.lower()
    sub = path.sub_attr or sub_attr
    if sub:
        key = f"{key}.{sub.lower()}"
    if path.uri:
        uri = path.uri.lower() + ":"
        if uri not in CORE_PREFIXES:
            key = uri + key
    if key in MULTI_COMPLEX:
        key += ".value"
    return key


@dataclass(frozen=True)
class Compiled:
    condition: ColumnElement[bool]
    exact: bool


INEXACT = Compiled(true(), False)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _string_op(column: Any, op: CompareOperator, value: str) -> ColumnElement[bool] | None:
    if op is CompareOperator.eq:
        return column == value  # type: ignore[no-any-return]
    if op is CompareOperator.co:
        return column.contains(value, autoescape=True)  # type: ignore[no-any-return]
    if op is CompareOperator.sw:
        return column.startswith(value, autoescape=True)  # type: ignore[no-any-return]
    if op is CompareOperator.ew:
        return column.endswith(value, autoescape=True)  # type: ignore[no-any-return]
    if op is CompareOperator.gt:
        return column > value  # type: ignore[no-any-return]
    if op is CompareOperator.ge:
        return column >= value  # type: ignore[no-any-return]
    if op is CompareOperator.lt:
        return column < value  # type: ignore[no-any-return]
    if op is CompareOperator.le:
        return column <= value  # type: ignore[no-any-return]
    return None


def _as_datetime(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        try:
            value = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return as_utc(value)


class FilterCompiler:
    """Compile a parsed filter for one resource type (``User`` or ``Group``)."""

    def __init__(self, resource_type: str, default_phone_region: str | None = None) -> None:
        self.resource_type = resource_type
        self.region = default_phone_region

    def compile(self, node: FilterNode) -> Compiled:
        if isinstance(node, LogicalExpr):
            parts = [self.compile(term) for term in node.terms]
            if node.op is LogicalOperator.and_:
                # A part we cannot express is left out: the AND of the rest is a superset of the answer.
                return Compiled(and_(*[p.condition for p in parts]), all(p.exact for p in parts))
            if not all(p.exact for p in parts):
                return INEXACT
            return Compiled(or_(*[p.condition for p in parts]), True)
        if isinstance(node, Not):
            inner = self.compile(node.expr)
            return Compiled(not_(inner.condition), True) if inner.exact else INEXACT
        if isinstance(node, Present):
            return self._present(node.attr_path)
        if isinstance(node, Comparison):
            if node.op is CompareOperator.ne:
                positive = self._compare(node.attr_path, CompareOperator.eq, node.value)
                return Compiled(not_(positive.condition), True) if positive.exact else INEXACT
            return self._compare(node.attr_path, node.op, node.value)
        if isinstance(node, ValuePath):
            return self._value_path(node)
        return INEXACT

    # -- columns ------------------------------------------------------------

    def _column(self, key: str) -> tuple[Any, str] | None:
        """(column, kind) for attributes held in a column; kind is 'fold', 'exact', 'bool' or 'time'."""
        if self.resource_type == "User":
            columns: dict[str, tuple[Any, str]] = {
                "id": (User.id, "exact"),
                "username": (User.user_name_key, "fold"),
                "externalid": (User.external_id, "exact"),
                "active": (User.active, "bool"),
                "meta.created": (User.created, "time"),
                "meta.lastmodified": (User.last_modified, "time"),
            }
        else:
            columns = {
                "id": (Group.id, "exact"),
                "displayname": (Group.display_name_key, "fold"),
                "externalid": (Group.external_id, "exact"),
                "meta.created": (Group.created, "time"),
                "meta.lastmodified": (Group.last_modified, "time"),
            }
        return columns.get(key)

    def _present(self, path: AttrPath) -> Compiled:
        key = attr_key(path)
        column = self._column(key)
        if column is not None:
            return Compiled(column[0].is_not(None), True)
        if self.resource_type == "User":
            if key == "groups.value":
                # Same tenant only: another tenant's group may name this user's id (kept as its IdP sent it).
                return Compiled(
                    exists().where(GroupMember.member_id == User.id, GroupMember.tenant_id == User.tenant_id), True
                )
            # Only strings and booleans are indexed; presence of a complex attribute is its value's presence.
            prefix = key.removesuffix(".value")
            return Compiled(
                exists().where(
                    UserValue.user_id == User.id,
                    or_(UserValue.attr == key, UserValue.attr.startswith(prefix + ".", autoescape=True)),
                ),
                True,
            )
        if key == "members.value":
            return Compiled(
                exists().where(GroupMember.group_id == Group.id, GroupMember.tenant_id == Group.tenant_id), True
            )
        return INEXACT

    def _compare(self, path: AttrPath, op: CompareOperator, value: Any) -> Compiled:
        key = attr_key(path)
        column = self._column(key)
        if column is not None:
            col, kind = column
            if kind == "bool":
                if op is not CompareOperator.eq or not isinstance(value, bool):
                    return INEXACT
                return Compiled(col == value, True)
            if kind == "time":
                when = _as_datetime(value)
                cond = _string_op(col, op, when) if when and op not in (  # type: ignore[arg-type]
                    CompareOperator.co, CompareOperator.sw, CompareOperator.ew) else None
                return Compiled(cond, True) if cond is not None else INEXACT
            if not isinstance(value, str):
                return Compiled(false(), True) if op is CompareOperator.eq else INEXACT
            lit = fold(key, value) if kind == "fold" else value
            cond = _string_op(col, op, lit)
            return Compiled(cond, True) if cond is not None else INEXACT
        if self.resource_type == "User":
            if key == "groups.value" and op is CompareOperator.eq and isinstance(value, str):
                return Compiled(
                    exists().where(GroupMember.member_id == User.id, GroupMember.tenant_id == User.tenant_id,
                                   GroupMember.group_id == value), True
                )
            cond = self._value_condition(key, op, value)
            if cond is None:
                return INEXACT
            return Compiled(exists().where(UserValue.user_id == User.id, UserValue.attr == key, cond), True)
        if key == "members.value" and op is CompareOperator.eq and isinstance(value, str):
            return Compiled(
                exists().where(GroupMember.group_id == Group.id, GroupMember.tenant_id == Group.tenant_id,
                               GroupMember.member_id == value), True
            )
        return INEXACT

    def _value_condition(self, key: str, op: CompareOperator, value: Any) -> ColumnElement[bool] | None:
        """The condition on one ``user_values`` row, or None when rows cannot answer it."""
        if isinstance(value, bool):
            return UserValue.value_key == _literal(value) if op is CompareOperator.eq else None
        if not isinstance(value, str):
            return None
        cond = _string_op(UserValue.value_key, op, fold(key, value))
        if cond is not None and key == "phonenumbers.value" and op is CompareOperator.eq:
            # A number written another way ("+49 170 …" vs "0049170…") is the same number.
            number = phone_key(value, self.region)
            if number:
                cond = or_(cond, UserValue.e164 == number)
        return cond

    def _value_path(self, node: ValuePath) -> Compiled:
        """``emails[type eq "work" and value co "@x"]``: conditions on one entry of a multi-valued attribute."""
        if self.resource_type != "User":
            if attr_key(node.attr_path) == "members.value":
                inner = node.val_filter
                if (
                    isinstance(inner, Comparison)
                    and inner.op is CompareOperator.eq
                    and inner.attr_path.attr.lower() == "value"
                ):
                    return self._compare(AttrPath("members"), CompareOperator.eq, inner.value)
            return INEXACT
        base = node.attr_path.attr.lower()
        if node.attr_path.uri and node.attr_path.uri.lower() + ":" not in CORE_PREFIXES:
            base = node.attr_path.uri.lower() + ":" + base
        terms = node.val_filter.terms if (
            isinstance(node.val_filter, LogicalExpr) and node.val_filter.op is LogicalOperator.and_
        ) else (node.val_filter,)
        type_cond: list[ColumnElement[bool]] = []
        value_cond: list[ColumnElement[bool]] = []
        exact = True
        for term in terms:
            if not isinstance(term, Comparison) or term.attr_path.sub_attr or term.attr_path.uri:
                exact = False
                continue
            sub = term.attr_path.attr.lower()
            if sub == "type" and term.op is CompareOperator.eq and isinstance(term.value, str):
                type_cond.append(UserValue.type_key == fold("type", term.value))
            elif sub == "value":
                cond = self._value_condition(f"{base}.value", term.op, term.value)
                if cond is None or term.op is CompareOperator.ne:
                    exact = False
                    continue
                value_cond.append(cond)
            else:
                exact = False
        if not value_cond:
            # Every entry with a value has a ``value`` row carrying its type: select on those.
            value_cond.append(true())
        return Compiled(
            exists().where(
                UserValue.user_id == User.id,
                UserValue.attr == f"{base}.value",
                *type_cond,
                *value_cond,
            ),
            exact,
        )

