"""Attribute mappings: how a directory user becomes the target app's SCIM user (Entra's mapping model).

A mapping is Direct (a source attribute), Constant (a value), or Expression (Entra's function syntax, a
subset: ``Append``, ``Join``, ``ToLower``, ``ToUpper``, ``Coalesce``, ``Switch``, ``Replace``, and the app-role
functions ``SingleAppRoleAssignment`` and ``AppRoleAssignmentsComplex``); it applies always or only when the
object is created; "default if null" fills a missing value on create. One mapping is the matching attribute
(with a precedence when several are): it is how an existing target object is found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import LarkError

from tenantry.core.errors import Invalid


class MappingType(StrEnum):
    DIRECT = "direct"
    CONSTANT = "constant"
    EXPRESSION = "expression"


class ApplyWhen(StrEnum):
    ALWAYS = "always"
    ON_CREATE = "on_create"


@dataclass(frozen=True)
class AttributeMapping:
    target: str                       # SCIM path in the target: "userName", "emails[type eq \"work\"].value"
    type: MappingType
    source: str = ""                  # the source attribute (direct), the value (constant), the expression
    apply: ApplyWhen = ApplyWhen.ALWAYS
    default_if_null: str | None = None
    matching_precedence: int | None = None   # set on matching attributes: 1 is tried first

    def __post_init__(self) -> None:
        if self.type is MappingType.EXPRESSION:
            compile_expression(self.source)


_GRAMMAR = r"""
?expr: call | attr | STRING
call: NAME "(" [expr ("," expr)*] ")"
attr: "[" /[^\]]+/ "]"
NAME: /[A-Za-z][A-Za-z0-9]*/
STRING: /"(\\.|""|[^"\\])*"/
%ignore /\s+/
"""
_PARSER = Lark(_GRAMMAR, start="expr", parser="lalr")

Read = Callable[[str], Any]
Expression = Callable[[Read], Any]


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


# The user's app roles, as the cycle puts them on the source object (provisioning.roles.grants): a list of
# {"id", "displayName", "value", "direct"}, one per role, Default Access left out (it is no role to send).
APP_ROLE_ASSIGNMENTS = "appRoleAssignments"
ROLE_TYPE = "WindowsAzureActiveDirectoryRole"      # the type Entra gives every role it sends


class RoleValue(str):
    """A role's value as SingleAppRoleAssignment returns it: a string, so it nests in other functions
    (``Switch(SingleAppRoleAssignment([appRoleAssignments]), …)``), that also knows the role's display name for
    a mapping whose target is ``roles[primary eq "True"].display``."""

    display: str

    def __new__(cls, value: str, display: str) -> RoleValue:
        made = super().__new__(cls, value)
        made.display = display
        return made


def _grants(value: Any) -> list[dict[str, Any]]:  # dict: [appRoleAssignments] entries
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("the app-role functions read [appRoleAssignments], a list of roles")
    return [g for g in value if isinstance(g, dict)]


def _role_sent(grant: dict[str, Any]) -> str:
    """What identifies a role in the app: its value; a role without one (the built-in User) by its name."""
    return str(grant.get("value") or grant.get("displayName") or "")


def _role_order(grant: dict[str, Any]) -> tuple[str, str]:
    return _role_sent(grant).casefold(), _role_sent(grant)


def pick_role(grants: list[dict[str, Any]]) -> dict[str, Any] | None:  # dict: an [appRoleAssignments] entry
    """The one role SingleAppRoleAssignment sends. Entra picks one of several unpredictably; ours is a rule
    (docs/provisioning.md): the role assigned to the user directly, else the lowest value (case-insensitive) of
    those reached through groups."""
    if not grants:
        return None
    return min([g for g in grants if g.get("direct")] or grants, key=_role_order)


def _single_role(args: list[Any]) -> RoleValue | None:
    chosen = pick_role(_grants(args[0]))
    if chosen is None:
        return None
    return RoleValue(_role_sent(chosen), str(chosen.get("displayName") or _role_sent(chosen)))


def _all_roles(args: list[Any]) -> list[dict[str, Any]] | None:  # dict: SCIM "roles" entries
    """Every role of the user's in Entra's complex shape, ordered by value (an order that only changes when
    the roles do, so an unchanged set is never sent again)."""
    grants = _grants(args[0])
    if not grants:
        return None
    unique = {str(g.get("id") or _role_sent(g)): g for g in sorted(grants, key=_role_order)}
    return [{"primary": False, "type": ROLE_TYPE, "display": str(g.get("displayName") or _role_sent(g)),
             "value": _role_sent(g)} for g in unique.values()]


def _switch(args: list[Any]) -> Any:
    if len(args) < 2 or len(args) % 2:
        raise ValueError("Switch(source, default, key, value, …) takes pairs after the default")
    source, default, pairs = args[0], args[1], args[2:]
    for key, value in zip(pairs[0::2], pairs[1::2], strict=True):
        if _str(source) == _str(key):
            return value
    return default


FUNCTIONS: dict[str, Callable[[list[Any]], Any]] = {
    "append": lambda a: None if a[0] is None else (_str(a[0]) or "") + (_str(a[1]) or ""),
    "join": lambda a: (_str(a[0]) or "").join(s for s in (_str(x) for x in a[1:]) if s),
    "tolower": lambda a: None if a[0] is None else (_str(a[0]) or "").lower(),
    "toupper": lambda a: None if a[0] is None else (_str(a[0]) or "").upper(),
    "coalesce": lambda a: next((x for x in a if x not in (None, "")), None),
    "switch": _switch,
    "replace": lambda a: None if a[0] is None else (_str(a[0]) or "").replace(_str(a[1]) or "", _str(a[2]) or ""),
    "singleapproleassignment": _single_role,
    "approleassignmentscomplex": _all_roles,
}
_ARITY = {"append": (2, 2), "join": (2, 99), "tolower": (1, 1), "toupper": (1, 1), "coalesce": (1, 99),
          "switch": (2, 99), "replace": (3, 3), "singleapproleassignment": (1, 1), "approleassignmentscomplex": (1, 1)}
_ROLE_FUNCTIONS = {"singleapproleassignment", "approleassignmentscomplex"}


class _Attribute:
    """``[name]`` in an expression: reads the source attribute (and says which, for argument checks)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, read: Read) -> Any:
        return read(self.name)


class _Build(Transformer[Token, Expression]):
    def STRING(self, token: Token) -> Expression:  # noqa: N802 - lark names terminal callbacks after them
        text = str(token)[1:-1].replace('""', '"').replace('\\"', '"')
        return lambda read: text

    def attr(self, items: list[Token]) -> Expression:
        return _Attribute(str(items[0]).strip())

    def call(self, items: list[Any]) -> Expression:
        name = str(items[0]).lower()
        args: list[Expression] = [i for i in items[1:] if i is not None]
        if name not in FUNCTIONS:
            raise Invalid(f"unknown function {items[0]!s}; known: {', '.join(sorted(FUNCTIONS))}")
        low, high = _ARITY[name]
        if not low <= len(args) <= high:
            raise Invalid(f"{items[0]!s} takes {low}{'' if low == high else f' to {high}'} arguments, not {len(args)}")
        if name == "switch" and len(args) % 2:
            raise Invalid(f"{items[0]!s}(source, default, key, value, …) takes key/value pairs after the default")
        if name in _ROLE_FUNCTIONS and not (isinstance(args[0], _Attribute)
                                            and args[0].name.lower() == APP_ROLE_ASSIGNMENTS.lower()):
            raise Invalid(f"{items[0]!s} takes [{APP_ROLE_ASSIGNMENTS}], the user's app roles")
        function = FUNCTIONS[name]
        return lambda read: function([arg(read) for arg in args])


@lru_cache(maxsize=512)
def compile_expression(text: str) -> Expression:
    """Parse once, evaluate many times; a bad expression is refused when the mapping is saved."""
    try:
        tree: Tree[Token] | Token = _PARSER.parse(text)
    except LarkError as exc:
        raise Invalid(f"invalid mapping expression {text!r}: {str(exc).splitlines()[0]}") from exc
    if isinstance(tree, Token):
        return _Build().STRING(tree)
    try:
        return _Build().transform(tree)
    except Exception as exc:
        cause = exc.__context__ if isinstance(exc.__context__, Invalid) else exc
        raise Invalid(str(cause)) from exc


def map_object(mappings: Sequence[AttributeMapping], read: Read, *,
               creating: bool) -> dict[str, Any]:  # dict: target path → value, as the admin's mappings say
    """Target attribute → value for one source object (``None`` and empty values are left out)."""
    out: dict[str, Any] = {}
    for m in mappings:
        if m.apply is ApplyWhen.ON_CREATE and not creating:
            continue
        if m.type is MappingType.DIRECT:
            value = read(m.source)
        elif m.type is MappingType.CONSTANT:
            value = m.source
        else:
            try:
                value = compile_expression(m.source)(read)
            except ValueError as exc:
                raise Invalid(f"mapping to {m.target}: {exc}") from exc
        if isinstance(value, RoleValue):    # the role's value, or what the target names of it
            leaf = m.target.rsplit(".", 1)[-1].lower() if "]." in m.target else "value"
            value = value.display if leaf == "display" else ROLE_TYPE if leaf == "type" else str(value)
        if value in (None, "") and creating and m.default_if_null is not None:
            value = m.default_if_null
        if value is not None and value != "":   # an empty value is no value: Entra does not send it either
            out[m.target] = value
    return out


def uses_app_roles(mappings: Sequence[AttributeMapping]) -> bool:
    """Whether the mappings read the user's app roles (then a role change is a change of the user)."""
    return any(m.type is not MappingType.CONSTANT and APP_ROLE_ASSIGNMENTS.lower() in m.source.lower()
               for m in mappings)


def matching_order(mappings: Sequence[AttributeMapping]) -> list[AttributeMapping]:
    """The matching attributes, in the order they are tried."""
    matching = sorted((m for m in mappings if m.matching_precedence is not None),
                      key=lambda m: m.matching_precedence or 0)
    if not matching:
        raise Invalid("one mapping must be the matching attribute")
    return matching


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUPTALK = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User"
GROUPTALK_GROUP = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group"

# Seed 003's GroupTalk table (source: our directory's SCIM paths → the app's attributes).
DEFAULT_USER_MAPPINGS: tuple[AttributeMapping, ...] = (
    AttributeMapping("userName", MappingType.DIRECT, "userName", matching_precedence=1),
    AttributeMapping("active", MappingType.DIRECT, "active"),
    AttributeMapping("name.givenName", MappingType.DIRECT, "name.givenName"),
    AttributeMapping("name.familyName", MappingType.DIRECT, "name.familyName"),
    AttributeMapping('emails[type eq "work"].value', MappingType.DIRECT, 'emails[type eq "work"].value'),
    AttributeMapping('phoneNumbers[type eq "mobile"].value', MappingType.DIRECT,
                     'phoneNumbers[type eq "mobile"].value'),
    AttributeMapping("externalId", MappingType.DIRECT, "id"),
    AttributeMapping(f"{ENTERPRISE}:costCenter", MappingType.DIRECT, f"{ENTERPRISE}:costCenter"),
    AttributeMapping(f"{ENTERPRISE}:organization", MappingType.DIRECT, f"{ENTERPRISE}:organization"),
    *(AttributeMapping(f"{GROUPTALK}:label{i}", MappingType.DIRECT, f"{GROUPTALK}:label{i}") for i in range(1, 6)),
)
