"""What the console's content search and eDiscovery pages show: a search's hits or its query error, a **safe
preview** of one message, and the cases with their custodians and holds — read through ``EDiscoveryService`` and
``ComplianceService``, of the viewer's tenant only.

The preview never hands the browser anything a message's author wrote as markup: a text part is text (the page
escapes it), an HTML part is reduced to its text (``html_text``: no element, attribute, link, image or script
survives) and offered as escaped source. Links are listed as text, never as links, so a ``javascript:`` (or a
tracking) URL cannot be followed from the page by a click. The page's Content-Security-Policy forbids remote
content and inline script as a second wall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from html.parser import HTMLParser
from typing import Any

from sqlalchemy import select

from tenantry.archive.models import Case, CaseSearch
from tenantry.archive.results import ContentSearchResult, HoldInfo
from tenantry.core.access import COMPLIANCE, EDISCOVERY
from tenantry.core.errors import Invalid, NotFound
from tenantry.protocols.query.errors import QuerySyntaxError
from tenantry.services import Services

# The admin API's roles for the same reads: POST …/search, …/items/{id}/raw, GET …/holds, the cases' routes.
READ_SEARCH = (COMPLIANCE, EDISCOVERY)
READ_CASES = (COMPLIANCE, EDISCOVERY)

SEARCH_PAGE = 25
MAX_QUERY = 2000
MAX_PART_CHARS = 200_000          # a part longer than this is cut (and says so): the page stays readable
HEADERS_SHOWN = ("From", "To", "Cc", "Bcc", "Reply-To", "Date", "Subject", "Message-ID")
_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote",
           "pre", "hr", "section", "article", "header", "footer"}
_HIDDEN = {"script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg", "math"}


@dataclass(frozen=True, slots=True)
class QueryError:
    """Where the query language refused the query: its message, the 1-based column, and the caret pointer."""

    message: str
    column: int | None
    pointer: str | None


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """A search page's answer: nothing asked (``query`` empty), a query error, or the result."""

    query: str
    result: ContentSearchResult | None = None
    error: QueryError | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a message as the preview shows it: ``text`` is plain text (escaped by the page), ``source``
    an HTML part's markup (shown escaped, never rendered), ``links`` its link targets (shown as text)."""

    content_type: str
    text: str
    source: str | None = None
    links: list[str] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Preview:
    item_id: int
    mailbox: str
    folder: str
    kind: str
    sent_at: str
    size: int
    deleted: bool
    headers: list[tuple[str, str]]
    parts: list[Part]
    attachments: list[Attachment]


@dataclass(frozen=True, slots=True)
class CaseRow:
    id: str
    name: str
    status: str
    description: str
    created_by: str
    created_at: str


@dataclass(frozen=True, slots=True)
class Custodian:
    user_id: str
    user_name: str | None      # None: not (or no longer) a directory user


@dataclass(frozen=True, slots=True)
class SavedSearchRow:
    name: str
    query: str
    last_run_at: str | None
    last_count: int | None


@dataclass(frozen=True, slots=True)
class CaseDetail:
    case: CaseRow
    custodians: list[Custodian]
    holds: list[HoldInfo]
    searches: list[SavedSearchRow]


class _TextOf(HTMLParser):
    """An HTML document's text: element content only, blocks on their own lines; the text of scripts, styles and
    the like dropped; link targets collected (as strings, for the page to show as text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.links: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.out.append("\n")
        if tag == "a":
            self.links += [v.strip() for k, v in attrs if k == "href" and v and v.strip()]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.out.append("\n")
        elif tag in ("a", "td", "th", "img"):   # words of neighbouring links or cells stay apart
            self.out.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.out.append(data)


def html_text(markup: str) -> tuple[str, list[str]]:
    """The plain text of an HTML part and its links' targets. The text is characters, not markup: a ``<`` in
    it is shown as ``<`` by the page (which escapes it), so nothing in it can become an element."""
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.out).splitlines()]
    text = "\n".join(line for line in lines if line)
    return text, list(dict.fromkeys(parser.links))


def _content(part: Message) -> str:
    """A text part's characters: its transfer encoding undone, decoded by its charset (an unknown charset as
    UTF-8), undecodable bytes replaced — a broken part is shown as well as it can be, never refused."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


_AS_WRITTEN = HeaderRegistry(use_default_map=False)     # every header unstructured: encoded words decoded only


def _header(msg: Message, name: str) -> str | None:
    """A header's value for display as it was written, encoded words decoded — not the parsed address or
    message-id object, which turns a malformed value into something else (``,,,@@@`` into ``<>``); undecodable
    bytes become U+FFFD. Should the decoder fail on a hostile value, the raw text is shown."""
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None) \
        if isinstance(msg, EmailMessage) else msg.get(name)
    if raw is None:
        return None
    try:
        text = str(_AS_WRITTEN(name, str(raw)))
    except Exception:   # noqa: BLE001 - the stdlib's header parser's failures are not a closed set
        text = str(raw)
    return " ".join(_clean(text).split())


def _clean(text: str) -> str:
    """``text`` without lone surrogates (the email package's way of carrying undecodable bytes), which would not
    encode as the page's UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _part(part: Message) -> Part | Attachment:
    ctype = part.get_content_type()
    if ctype in ("text/plain", "text/html") and part.get_content_disposition() != "attachment":
        content = _content(part)
        truncated = len(content) > MAX_PART_CHARS
        content = content[:MAX_PART_CHARS]
        if ctype == "text/plain":
            return Part(ctype, content, truncated=truncated)
        text, links = html_text(content)
        return Part(ctype, text, source=content, links=links, truncated=truncated)
    payload = part.get_payload(decode=True)
    size = len(payload) if isinstance(payload, bytes) else 0
    return Attachment(_clean(part.get_filename() or "(no name)"), ctype, size)


def preview_of(raw: bytes) -> tuple[list[tuple[str, str]], list[Part], list[Attachment]]:
    """A message's headers worth showing, its text and HTML parts made safe, and its attachments (named only).
    A part the email package cannot read is listed as unreadable rather than failing the page."""
    msg = message_from_bytes(raw, policy=default_policy)
    headers = [(name, value) for name in HEADERS_SHOWN if (value := _header(msg, name)) is not None]
    parts: list[Part] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        try:
            if part.is_multipart():
                continue
            shown = _part(part)
        except Exception:   # noqa: BLE001 - as in _header: hostile MIME headers break the stdlib's parser
            shown = Attachment("(a part that cannot be read)", "application/octet-stream", 0)
        if isinstance(shown, Part):
            parts.append(shown)
        else:
            attachments.append(shown)
    return headers, parts, attachments


class ComplianceConsole:
    """The console's reads of content search and eDiscovery, each of one tenant."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def search(self, tenant: str, query: str, actor: str, start: int) -> SearchOutcome:
        """One page (``SEARCH_PAGE`` hits from ``start``, 1-based) of what ``query`` finds in every mailbox, or
        the query language's error. Each search is written to the ledger by ``content_search``, as the API's."""
        text = query.strip()
        if not text:
            return SearchOutcome("")
        if len(text) > MAX_QUERY or any(ord(ch) < 0x20 and ch not in "\t" for ch in text):
            return SearchOutcome(text, error=QueryError(
                f"a query is at most {MAX_QUERY} characters, on one line", None, None))
        try:
            result = self.services.ediscovery.content_search(tenant, text, actor, start=start - 1,
                                                             count=SEARCH_PAGE)
        except QuerySyntaxError as exc:
            return SearchOutcome(text, error=QueryError(exc.message, exc.column, exc.pointer))
        except Invalid as exc:
            return SearchOutcome(text, error=QueryError(exc.message, None, None))
        return SearchOutcome(text, result=result)

    def preview(self, tenant: str, item_id: int) -> Preview:
        """A message of this tenant made safe to show; ``NotFound`` for another tenant's (or no) item."""
        found = self.services.ediscovery.review_items(tenant, [item_id])
        if not found:
            raise NotFound(f"no item {item_id} in this tenant")
        item = found[0]
        raw = self.services.archive.read(tenant, item_id)
        headers, parts, attachments = preview_of(raw)
        return Preview(item.id, item.address, item.folder, item.kind, item.sent_at.isoformat(), item.size,
                       item.deleted, headers, parts, attachments)

    def cases(self, tenant: str) -> list[CaseRow]:
        with self.services.db.session() as session:
            rows = session.scalars(select(Case).where(Case.tenant_id == tenant)
                                   .order_by(Case.created_at.desc(), Case.name))
            return [_case_row(c) for c in rows]

    def case(self, tenant: str, case_id: str) -> CaseDetail:
        """A case of this tenant with its custodians, holds (released ones too) and saved searches; ``NotFound``
        for another tenant's case."""
        with self.services.db.session() as session:
            case = session.scalar(select(Case).where(Case.tenant_id == tenant, Case.id == case_id))
            if case is None:
                raise NotFound(f"no case {case_id!r} in this tenant")
            row = _case_row(case)
            searches = [SavedSearchRow(s.name, s.query, s.last_run_at.isoformat() if s.last_run_at else None,
                                       s.last_count)
                        for s in session.scalars(select(CaseSearch).where(CaseSearch.case_id == case_id)
                                                 .order_by(CaseSearch.name))]
        ids = self.services.ediscovery.custodians(tenant, case_id)
        names = {u.id: u.user_name for u in self.services.directory.users_by_id(tenant, ids)}
        custodians = [Custodian(i, names.get(i)) for i in ids]
        holds = self.services.compliance.holds(tenant, active_only=False, case_id=case_id)
        return CaseDetail(row, custodians, holds, searches)


def _case_row(case: Any) -> CaseRow:
    return CaseRow(case.id, case.name, str(case.status), case.description or "", case.created_by,
                   case.created_at.isoformat() if case.created_at else "")
