"""protocols.sip: bounded request parsing over sipmessage, RFC 3261 §8.2.6 responses, TCP framing."""

from __future__ import annotations

import pytest

from tenantry.protocols.sip import (
    Limits,
    MalformedMessage,
    MessageTooLarge,
    StreamFramer,
    parse_request,
    response,
)

INVITE = (
    "INVITE sip:+12065550123@redirect.contoso.com;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/UDP gw1.contoso.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "Via: SIP/2.0/TCP sbc.contoso.com:5060;branch=z9hG4bKnashds8\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:+12065550123@redirect.contoso.com;user=phone>\r\n"
    'From: "Alice" <sip:alice@contoso.com>;tag=1928301774\r\n'
    "Call-ID: a84b4c76e66710@pc33.contoso.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@pc33.contoso.com>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "v=0\n"
)


def lines(data: bytes) -> list[str]:
    return data.decode().split("\r\n")


def test_invite_is_read_with_its_transaction_fields() -> None:
    request = parse_request(INVITE.encode())
    assert request.method == "INVITE"
    assert request.uri.user == "+12065550123"
    assert request.branch == "z9hG4bK776asdhds"
    assert request.from_tag == "1928301774"
    assert request.to_tag is None
    assert request.cseq.sequence == 314159
    assert request.transaction_key() == ("z9hG4bK776asdhds", "gw1.contoso.com:5060", "INVITE")


def test_ack_matches_the_invite_transaction_it_acknowledges() -> None:
    ack = INVITE.replace("INVITE sip:", "ACK sip:").replace("314159 INVITE", "314159 ACK")
    assert parse_request(ack.encode()).transaction_key() == parse_request(INVITE.encode()).transaction_key()


def test_branch_without_magic_cookie_falls_back_to_rfc2543_matching() -> None:
    old = parse_request(INVITE.replace("branch=z9hG4bK776asdhds", "branch=1234").encode())
    assert old.transaction_key() == (
        "a84b4c76e66710@pc33.contoso.com", "314159", "1928301774", "gw1.contoso.com:5060", "INVITE"
    )


def test_response_copies_via_from_to_call_id_cseq_and_adds_a_to_tag() -> None:
    request = parse_request(INVITE.encode())
    out = lines(response(request, 302, "Moved Temporarily", to_tag="abc",
                         contacts=["sip:+12065550123@gw2:5068;transport=tls;user=phone", "sip:+12065550123@gw1"]))
    assert out[0] == "SIP/2.0 302 Moved Temporarily"
    assert out[1:9] == [
        "Via: SIP/2.0/UDP gw1.contoso.com:5060;branch=z9hG4bK776asdhds;rport",
        "Via: SIP/2.0/TCP sbc.contoso.com:5060;branch=z9hG4bKnashds8",
        'From: "Alice" <sip:alice@contoso.com>;tag=1928301774',
        "To: <sip:+12065550123@redirect.contoso.com;user=phone>;tag=abc",
        "Call-ID: a84b4c76e66710@pc33.contoso.com",
        "CSeq: 314159 INVITE",
        "Contact: <sip:+12065550123@gw2:5068;transport=tls;user=phone>",
        "Contact: <sip:+12065550123@gw1>",
    ]
    assert out[9] == "Content-Length: 0"
    assert out[-2:] == ["", ""]


def test_response_keeps_an_existing_to_tag() -> None:
    tagged = INVITE.replace("user=phone>\r\nFrom", "user=phone>;tag=xyz\r\nFrom")
    out = response(parse_request(tagged.encode()), 481, "Call/Transaction Does Not Exist", to_tag="abc")
    assert "To: <sip:+12065550123@redirect.contoso.com;user=phone>;tag=xyz\r\n" in out.decode()


def test_response_adds_received_and_fills_rport_when_the_source_differs() -> None:
    request = parse_request(INVITE.encode())
    out = response(request, 200, "OK", source=("192.0.2.4", 40000)).decode()
    assert "Via: SIP/2.0/UDP gw1.contoso.com:5060;branch=z9hG4bK776asdhds;rport=40000;received=192.0.2.4\r\n" in out
    assert "Via: SIP/2.0/TCP sbc.contoso.com:5060;branch=z9hG4bKnashds8\r\n" in out


def test_compact_header_forms_are_read() -> None:
    compact = (
        "OPTIONS sip:redirect.contoso.com SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\r\n"
        "f: <sip:gw@contoso.com>;tag=1\r\nt: <sip:redirect.contoso.com>\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n"
    )
    request = parse_request(compact.encode())
    assert request.method == "OPTIONS"
    assert request.call_id == "abc"


@pytest.mark.parametrize("header", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_request_without_a_mandatory_header_is_malformed(header: str) -> None:
    text = "\r\n".join(line for line in INVITE.split("\r\n") if not line.startswith(f"{header}:"))
    with pytest.raises(MalformedMessage, match="missing"):
        parse_request(text.encode())


def test_over_size_message_is_refused_before_parsing() -> None:
    with pytest.raises(MessageTooLarge):
        parse_request(INVITE.encode(), Limits(max_message=100))


def test_too_many_header_lines_is_malformed() -> None:
    many = INVITE.replace("Max-Forwards: 70\r\n", "X-A: b\r\n" * 200)
    with pytest.raises(MalformedMessage, match="header lines"):
        parse_request(many.encode())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"INVITE\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\r\n",
        INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE").encode(),
        INVITE.replace("CSeq: 314159 INVITE", "CSeq: many INVITE").encode(),
        INVITE.replace("Content-Length: 4", "Content-Length: 400").encode(),
        INVITE.replace("Via: SIP/2.0/UDP", "Via: nonsense").encode(),
        INVITE.replace("Max-Forwards: 70", "no colon here").encode(),
        INVITE.replace("Alice", "\udcff", 1).encode("utf-8", "surrogateescape"),
    ],
)
def test_garbage_raises_malformed_only(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_request(data)


def test_stream_framer_cuts_messages_by_content_length_across_segments() -> None:
    framer = StreamFramer()
    data = b"\r\n\r\n" + INVITE.encode() + INVITE.encode()
    assert framer.feed(data[:50]) == []
    messages = framer.feed(data[50:-3])
    assert messages == [INVITE.encode()]
    assert framer.feed(data[-3:]) == [INVITE.encode()]


def test_stream_framer_refuses_a_message_without_content_length() -> None:
    text = INVITE.replace("Content-Length: 4\r\n", "")
    with pytest.raises(MalformedMessage, match="Content-Length"):
        StreamFramer().feed(text.encode())


def test_stream_framer_bounds_endless_headers() -> None:
    framer = StreamFramer(Limits(max_message=1000))
    with pytest.raises(MessageTooLarge):
        framer.feed(b"INVITE sip:a SIP/2.0\r\n" + b"X: y\r\n" * 400)
