"""Who gets a copy: participants → directory users, in seed 000's order.

1. The connector's custom CSV (mobile number → user e-mail; we also accept a name column, since phone
   exports name saved contacts instead of numbering them).
2. The item's own e-mail address property of the participant.
3. Beyond the seed: the mobile numbers SCIM provisioned into the directory (if the connector allows it).

Numbers are compared by their key (``protocols.phones.phone_key``): E.164 where phonenumbers calls the number
possible, else its digits. A number the directory accepted is never refused here, and a match made by digits
only is reported as such: in the CSV upload's notes and in the run report (issue #10, item 3).

A rule whose e-mail is no directory user falls through to the next rule; a participant no rule maps is an
outsider (a copy goes to nobody for them, but they still appear in the message's headers), and the run report
lists them with the reason each rule failed (``UserMapper.why_unmapped``; issue #10, item 2).

The same rules say who a participant *is* for a message's identity (``UserMapper.person_keys``): two phones name
one person differently, and only the mapping knows they are one (issue #10, item 5; docs/connectors.md).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from tenantry.connectors.items import Participant
from tenantry.core.errors import Invalid
from tenantry.directory.service import DirectoryService, DirectoryUser
from tenantry.protocols.phones import matched_by_digits, phone_key

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_PHONE_HEADERS = {"mobile", "mobile number", "phone", "phone number", "number", "msisdn", "mobilephone"}
_EMAIL_HEADERS = {"email", "e-mail", "email address", "mail", "user", "userprincipalname", "upn"}
_NAME_HEADERS = {"name", "display name", "contact", "contact name"}


@dataclass(frozen=True)
class MappingRow:
    line: int
    e164: str | None           # the number's key: E.164, else its digits (the column keeps its first name)
    name_key: str | None
    email: str
    phone: str | None = None   # as written in the CSV (for the upload's notes; not stored)
    by_digits: bool = False    # the number is not a valid one: it matches by its digits only


class MatchedBy(StrEnum):
    """Which rule made a participant a recipient (the run report's notes say it)."""

    CSV = "csv"                # the connector's mapping CSV, by number or name
    EMAIL = "email"            # the item's own e-mail address of the participant
    DIRECTORY = "directory"    # a mobile number SCIM provisioned into the directory
    OWNER = "owner"            # an export's owner: a copy whatever the mapping


@dataclass(frozen=True)
class Recipient:
    user_id: str
    address: str
    display_name: str | None
    via: MatchedBy
    by_digits: bool = False   # found through a number phonenumbers calls invalid, by its digits


def name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def unresolved_person_key(p: Participant, default_region: str | None = None) -> str:
    """Who a participant is when no mapping rule finds a user: their number, else e-mail, else name as written."""
    e164 = phone_key(p.phone, default_region) if p.phone else None
    if e164:
        return f"tel:{e164}"
    if p.email:
        return f"mail:{p.email.strip().lower()}"
    return f"name:{name_key(p.name or p.phone or '')}"


def parse_mapping_csv(text: str, default_region: str | None = None) -> list[MappingRow]:
    """Read a mapping CSV; any bad line makes the whole upload fail with every problem listed.

    Columns: a mobile number and an e-mail (in that order without a header), or named columns
    (``mobile``/``phone``, ``email``, optional ``name``).
    """
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise Invalid("the mapping CSV is empty")
    header = [h.strip().lower() for h in rows[0]]
    if any(h in _EMAIL_HEADERS for h in header):
        phone_col = next((i for i, h in enumerate(header) if h in _PHONE_HEADERS), None)
        email_col = next(i for i, h in enumerate(header) if h in _EMAIL_HEADERS)
        name_col = next((i for i, h in enumerate(header) if h in _NAME_HEADERS), None)
        body = list(enumerate(rows[1:], start=2))
    else:
        phone_col, email_col, name_col = 0, 1, 2 if len(rows[0]) > 2 else None
        body = list(enumerate(rows, start=1))
    out: list[MappingRow] = []
    problems: list[str] = []
    for line, row in body:
        if not any(cell.strip() for cell in row):
            continue
        phone, email, name = (_cell(row, phone_col), _cell(row, email_col), _cell(row, name_col))
        e164 = phone_key(phone, default_region) if phone else None
        if phone and not e164:
            problems.append(f"line {line}: {phone!r} is not a phone number (write it as +<country><number>)")
        if not _EMAIL.match(email):
            problems.append(f"line {line}: {email!r} is not an e-mail address")
        if not phone and not name:
            problems.append(f"line {line}: a mobile number or a name is needed")
        out.append(MappingRow(line, e164, name_key(name) if name else None, email.lower(), phone or None,
                              bool(phone) and matched_by_digits(phone, default_region)))
    if problems:
        raise Invalid("the mapping CSV was not saved:\n" + "\n".join(problems[:50]))
    return out


def mapping_notes(rows: list[MappingRow]) -> list[str]:
    """The upload's notes: each row whose number is no valid phone number and so matches by its digits."""
    return [f"line {r.line}: {r.phone!r} is not a valid phone number by its country's plan; it is kept, and "
            f"matches participants and directory numbers with the same digits ({r.e164})"
            for r in rows if r.by_digits]


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


class UserMapper:
    """Resolves participants for one run, caching every directory look-up."""

    def __init__(self, directory: DirectoryService, tenant: str, rows: list[MappingRow], *,
                 use_directory_mobiles: bool, default_region: str | None = None) -> None:
        self.directory = directory
        self.tenant = tenant
        self.by_e164 = {r.e164: r.email for r in rows if r.e164}
        self.by_name = {r.name_key: r.email for r in rows if r.name_key}
        self.use_directory_mobiles = use_directory_mobiles
        self.region = default_region
        self._by_email: dict[str, list[DirectoryUser]] = {}
        self._by_mobile: dict[str, list[DirectoryUser]] = {}

    def _users_by_email(self, email: str) -> list[DirectoryUser]:
        key = email.strip().lower()
        if key not in self._by_email:
            self._by_email.update({key: []})
            self._by_email.update(self.directory.find_users_by_email(self.tenant, [key]))
        return self._by_email[key]

    def _users_by_mobile(self, e164: str) -> list[DirectoryUser]:
        if e164 not in self._by_mobile:
            self._by_mobile[e164] = []
            self._by_mobile.update(self.directory.find_users_by_mobile(self.tenant, [e164]))
        return self._by_mobile[e164]

    def prefetch(self, phones: list[str], emails: list[str]) -> None:
        """Warm the caches for a batch of participants in two queries instead of one per participant."""
        numbers = {n for n in (phone_key(p, self.region) for p in phones) if n}
        wanted_emails = {e.strip().lower() for e in emails if e} | {
            self.by_e164[n] for n in numbers if n in self.by_e164}
        missing_emails = [e for e in wanted_emails if e not in self._by_email]
        if missing_emails:
            self._by_email.update({e: [] for e in missing_emails})
            self._by_email.update(self.directory.find_users_by_email(self.tenant, missing_emails))
        if self.use_directory_mobiles:
            missing = [n for n in numbers if n not in self._by_mobile]
            if missing:
                self._by_mobile.update({n: [] for n in missing})
                self._by_mobile.update(self.directory.find_users_by_mobile(self.tenant, missing))

    def resolve(self, phone: str | None, name: str | None, email: str | None) -> list[Recipient]:
        """The users a participant is, by the first rule that finds any (empty: an outsider)."""
        e164 = phone_key(phone, self.region) if phone else None
        digits = bool(phone) and matched_by_digits(phone or "", self.region)
        if e164 and e164 in self.by_e164:
            users = self._users_by_email(self.by_e164[e164])
            if users:
                return [_recipient(u, MatchedBy.CSV, digits) for u in users]
        if name and name_key(name) in self.by_name:
            users = self._users_by_email(self.by_name[name_key(name)])
            if users:
                return [_recipient(u, MatchedBy.CSV) for u in users]
        if email:
            users = self._users_by_email(email)
            if users:
                return [_recipient(u, MatchedBy.EMAIL) for u in users]
        if e164 and self.use_directory_mobiles:
            users = self._users_by_mobile(e164)
            if users:
                return [_recipient(u, MatchedBy.DIRECTORY, digits) for u in users]
        return []

    def person_keys(self, people: Sequence[Participant]) -> dict[Participant, str]:
        """Who each participant is, for a message's identity: ``user:<id>`` of the directory user the rules find
        (the smallest id when an e-mail names several), else :func:`unresolved_person_key`."""
        self.prefetch([p.phone for p in people if p.phone], [p.email for p in people if p.email])
        keys: dict[Participant, str] = {}
        for p in people:
            users = self.resolve(p.phone, p.name, p.email)
            keys[p] = f"user:{min(u.user_id for u in users)}" if users else unresolved_person_key(p, self.region)
        return keys

    def why_unmapped(self, phone: str | None, name: str | None, email: str | None) -> str:
        """Why no rule of :meth:`resolve` found a user, rule by rule in its order (for the run report).

        Call it after ``resolve`` came back empty: it reads the caches that call filled.
        """
        e164 = phone_key(phone, self.region) if phone else None
        csv_email = self.by_e164.get(e164) if e164 else None
        if csv_email is None and name:
            csv_email = self.by_name.get(name_key(name))
        if csv_email is not None:
            csv_rule = f"the CSV row's {csv_email} is no directory user"
        elif not self.by_e164 and not self.by_name:
            csv_rule = "no mapping CSV"
        else:
            csv_rule = "no CSV row"
        email_rule = f"the e-mail {email} is no directory user" if email else "no e-mail"
        if not self.use_directory_mobiles:
            mobile_rule = "directory mobiles are off for this connector"
        elif e164:
            mobile_rule = f"no directory user has the mobile {e164}"
        elif phone:
            mobile_rule = f"{phone!r} is not a phone number"
        else:
            mobile_rule = "no mobile number (a saved contact's name)"
        return "; ".join((csv_rule, email_rule, mobile_rule))


def _recipient(user: DirectoryUser, via: MatchedBy, by_digits: bool = False) -> Recipient:
    return Recipient(user.id, user.email, user.display_name, via, by_digits)
