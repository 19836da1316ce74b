"""WhatsApp's own words in pt (pt-BR and pt-PT), nl, fi, hr and ko, as the sources in docs/connectors.md
("Where the phrases come from") give them, parse to the right kinds.

Each body is WhatsApp's string as the source writes it (iOS Localizable.strings, Android strings.xml, or a real
export), placed in a line of the shape that locale's exports have; names are made up. The header shapes are
those of our sample corpus (tests/samples/whatsapp), which parse.
"""

from __future__ import annotations

import pytest

from tenantry.protocols.whatsapp import MessageKind, parse_text

K = MessageKind

# One Android header ("date - ") and one iOS header ("[date] ") per locale.
ANDROID = {
    "pt": "17/09/2020 11:31 - ",
    "nl": "12-01-2024 10:02 - ",
    "fi": "14.6.2018 klo 8.05.00 - ",
    "hr": "12. 1. 2024. 09:00 - ",
    "ko": "2024. 1. 12. 오후 3:05 - ",
}
IOS = {
    "pt": "[3/27/22 21:41:55] ",  # the shape of the real pt-PT export in starkdmi/whats_json
    "nl": "[12-01-2024 10:02:00] ",
    "fi": "[14.6.2018 klo 8.05.00] ",
    "hr": "[13. 6. 2018. 21:25:15] ",
    "ko": "[2024. 1. 12. 오후 3:05:12] ",
}
LRM = "\u200e"


def _kind(header: str, body: str) -> tuple[str | None, MessageKind]:
    parsed = parse_text(f"{header}Ana: {body}\n")
    assert not parsed.issues
    m = parsed.messages[0]
    return m.author, m.kind


# --- what a participant's message becomes ----------------------------------------------------------------

# (locale, platform, body, kind): the body is WhatsApp's string; iOS puts U+200E before its markers.
_MESSAGE_KINDS = [
    # pt-BR / pt-PT
    ("pt", "android", "<Mídia oculta>", K.MEDIA_OMITTED),
    ("pt", "android", "<Mídia omitida>", K.MEDIA_OMITTED),  # strings.xml email_media_omitted (older pt-BR)
    ("pt", "android", "<Ficheiro não revelado>", K.MEDIA_OMITTED),  # strings.xml, pt-PT
    ("pt", "ios", LRM + "imagem não revelada", K.MEDIA_OMITTED),  # pt-PT export / PT-PT.strings n*sq0
    ("pt", "ios", LRM + "vídeo não revelado", K.MEDIA_OMITTED),
    ("pt", "ios", LRM + "ficheiro de áudio não revelado", K.MEDIA_OMITTED),
    ("pt", "ios", LRM + "sticker não revelado", K.MEDIA_OMITTED),
    ("pt", "ios", LRM + "GIF não revelada", K.MEDIA_OMITTED),
    ("pt", "ios", LRM + "Contacto não revelado", K.MEDIA_OMITTED),
    ("pt", "ios", "Template.docx " + LRM + "documento não revelado", K.MEDIA_OMITTED),
    ("pt", "ios", LRM + "imagem ocultada", K.MEDIA_OMITTED),  # PT-BR.strings n*sq0
    ("pt", "ios", LRM + "Cartão do contato omitido", K.MEDIA_OMITTED),  # PT-BR.strings Sk+0p
    ("pt", "android", "Plan.pdf (ficheiro anexado)", K.ATTACHMENT),  # strings.xml email_file_attached, pt-PT
    ("pt", "android", "Plan.pdf (arquivo anexado)", K.ATTACHMENT),
    ("pt", "ios", LRM + "Esta mensagem foi apagada.", K.DELETED),  # pt-PT export / qBly]
    ("pt", "ios", LRM + "Apagou esta mensagem.", K.DELETED),  # pt-PT export / S?EA5
    ("pt", "ios", LRM + "Mensagem apagada", K.DELETED),  # PT-BR.strings S?EA5
    ("pt", "android", "Esta mensagem foi apagada", K.DELETED),  # strings.xml revoked_msg_incoming
    ("pt", "android", "Você apagou esta mensagem", K.DELETED),
    ("pt", "android", "Chamada de voz perdida", K.MISSED_VOICE_CALL),
    ("pt", "ios", LRM + "Videochamada perdida", K.MISSED_VIDEO_CALL),  # PT-PT.strings PnA`x
    ("pt", "android", "Chamada de vídeo perdida", K.MISSED_VIDEO_CALL),
    # nl
    ("nl", "android", "<Media weggelaten>", K.MEDIA_OMITTED),
    ("nl", "ios", LRM + "afbeelding weggelaten", K.MEDIA_OMITTED),
    ("nl", "ios", LRM + "Visitekaartje weggelaten", K.MEDIA_OMITTED),  # NL.strings Sk+0p
    ("nl", "android", "Plan.pdf (bestand bijgevoegd)", K.ATTACHMENT),
    ("nl", "android", "Dit bericht is verwijderd", K.DELETED),
    ("nl", "ios", LRM + "U hebt dit bericht verwijderd.", K.DELETED),  # NL.strings S?EA5
    ("nl", "android", "Gemiste spraakoproep", K.MISSED_VOICE_CALL),  # strings.xml missed_voice_call
    ("nl", "ios", LRM + "Gemist spraakgesprek", K.MISSED_VOICE_CALL),  # NL.strings A),w/
    ("nl", "android", "Gemiste video-oproep", K.MISSED_VIDEO_CALL),  # strings.xml video_missed_call
    ("nl", "ios", LRM + "Gemist videogesprek", K.MISSED_VIDEO_CALL),  # NL.strings PnA`x
    ("nl", "ios", LRM + "Gemist groepsvideogesprek", K.MISSED_VIDEO_CALL),  # NL.strings zG&3x
    # fi
    ("fi", "android", "<Media jätettiin pois>", K.MEDIA_OMITTED),
    ("fi", "android", "<Media jätetty pois>", K.MEDIA_OMITTED),  # strings.xml email_media_omitted (older)
    ("fi", "ios", LRM + "videota ei sisällytetä", K.MEDIA_OMITTED),  # FI.strings I4|vp
    ("fi", "ios", LRM + "äänitiedostoa ei sisällytetä", K.MEDIA_OMITTED),  # a86Wu
    ("fi", "ios", LRM + "tarraa ei sisällytetty", K.MEDIA_OMITTED),  # 2K_mB
    ("fi", "ios", LRM + "GIF-animaatio jätetty pois", K.MEDIA_OMITTED),  # ~.KLq
    ("fi", "ios", LRM + "Yhteystietokortti jätettiin pois", K.MEDIA_OMITTED),  # Sk+0p
    ("fi", "ios", "Lasku.pdf " + LRM + "dokumenttia ei sisällytetä", K.MEDIA_OMITTED),  # StaLC
    ("fi", "android", "Lasku.pdf (liitetiedosto)", K.ATTACHMENT),  # strings.xml email_file_attached
    ("fi", "ios", LRM + "Tämä viesti poistettiin.", K.DELETED),
    ("fi", "ios", LRM + "Poistit tämän viestin.", K.DELETED),
    ("fi", "android", "Vastaamaton äänipuhelu", K.MISSED_VOICE_CALL),
    ("fi", "ios", LRM + "Vastaamaton ryhmä-äänipuhelu", K.MISSED_VOICE_CALL),  # FI.strings 3B_xE
    ("fi", "android", "Vastaamaton videopuhelu", K.MISSED_VIDEO_CALL),
    # hr
    ("hr", "android", "<Medijski zapis izostavljen>", K.MEDIA_OMITTED),
    ("hr", "ios", LRM + "slika izostavljena", K.MEDIA_OMITTED),
    ("hr", "ios", LRM + "video izostavljen", K.MEDIA_OMITTED),  # HR.strings I4|vp
    ("hr", "ios", LRM + "zvuk izostavljen", K.MEDIA_OMITTED),  # a86Wu
    ("hr", "ios", LRM + "Posjetnica izostavljena", K.MEDIA_OMITTED),  # Sk+0p
    ("hr", "android", "Plan.pdf (datoteka u privitku)", K.ATTACHMENT),  # strings.xml email_file_attached
    ("hr", "android", "Ova poruka je izbrisana", K.DELETED),  # strings.xml revoked_msg_incoming
    ("hr", "ios", LRM + "Ova je poruka izbrisana.", K.DELETED),  # HR.strings qBly]
    ("hr", "ios", LRM + "Izbrisali ste ovu poruku.", K.DELETED),
    ("hr", "ios", LRM + "Propušteni glasovni poziv", K.MISSED_VOICE_CALL),
    ("hr", "android", "Propušten glasovni poziv", K.MISSED_VOICE_CALL),  # strings.xml missed_voice_call
    ("hr", "ios", LRM + "Propušteni videopoziv", K.MISSED_VIDEO_CALL),
    ("hr", "android", "Propušten video poziv", K.MISSED_VIDEO_CALL),  # strings.xml video_missed_call
    # ko
    ("ko", "android", "<미디어 파일을 생략한 대화내용>", K.MEDIA_OMITTED),  # strings.xml email_media_omitted
    ("ko", "android", "<미디어 파일 제외됨>", K.MEDIA_OMITTED),
    ("ko", "ios", LRM + "이미지 생략됨", K.MEDIA_OMITTED),  # KO.strings n*sq0
    ("ko", "ios", LRM + "비디오 생략됨", K.MEDIA_OMITTED),  # I4|vp
    ("ko", "ios", LRM + "스티커 제외됨", K.MEDIA_OMITTED),  # 2K_mB
    ("ko", "ios", LRM + "연락처 카드 생략됨", K.MEDIA_OMITTED),  # Sk+0p
    ("ko", "android", "계획.pdf (파일 첨부됨)", K.ATTACHMENT),  # strings.xml email_file_attached
    ("ko", "ios", LRM + "이 메시지는 삭제되었습니다.", K.DELETED),  # KO.strings qBly]
    ("ko", "ios", LRM + "삭제한 메시지입니다", K.DELETED),  # GHe7G
    ("ko", "ios", LRM + "이 메시지를 삭제했습니다.", K.DELETED),  # S?EA5
    ("ko", "ios", LRM + "부재중 전화", K.MISSED_VOICE_CALL),  # A),w/ and strings.xml missed_voice_call
    ("ko", "ios", LRM + "부재중 그룹 통화", K.MISSED_VOICE_CALL),  # -}G;Q
    ("ko", "ios", LRM + "부재중 영상통화", K.MISSED_VIDEO_CALL),  # PnA`x and strings.xml video_missed_call
    ("ko", "ios", LRM + "부재중 그룹 영상통화", K.MISSED_VIDEO_CALL),  # zG&3x
]


@pytest.mark.parametrize(("locale", "platform", "body", "kind"), _MESSAGE_KINDS,
                         ids=[f"{c[0]}-{c[1]}-{c[2].lstrip(LRM)}" for c in _MESSAGE_KINDS])
def test_whatsapps_own_marker_gives_the_message_its_kind(locale: str, platform: str, body: str,
                                                         kind: MessageKind) -> None:
    header = (ANDROID if platform == "android" else IOS)[locale]
    assert _kind(header, body) == ("Ana", kind)


@pytest.mark.parametrize(("locale", "body", "text"), [
    ("pt", "Sábado às 13h <Mensagem editada>", "Sábado às 13h"),
    ("nl", "Om 9 uur bij de molen <Dit bericht is bewerkt>", "Om 9 uur bij de molen"),
])
def test_an_edited_marker_is_removed_and_flagged(locale: str, body: str, text: str) -> None:
    m = parse_text(f"{ANDROID[locale]}Ana: {body}\n").messages[0]
    assert (m.kind, m.text, m.edited) == (K.TEXT, text, True)


# --- iOS system lines: the chat's name stands where an author would, and U+200E leads the text -------------

_IOS_SYSTEM = [
    ("pt", "As mensagens e chamadas são encriptadas ponto a ponto. Ninguém fora desta conversa, nem mesmo o "
           "WhatsApp, pode ler ou ouvi-las."),  # pt-PT export line 1 / PT-PT.strings _i3PG
    ("pt", "As mensagens e as chamadas são protegidas com a criptografia de ponta a ponta e ficam somente entre "
           "você e os participantes desta conversa. Nem mesmo o WhatsApp pode ler ou ouvi-las."),  # PT-BR _i3PG
    ("pt", "O seu código de segurança partilhado com Rui mudou. Toque para saber mais."),  # pt-PT export
    ("pt", "O participante Rui foi removido"),  # PT-PT.strings 8RBce
    ("pt", "Rui foi removido(a)"),  # PT-BR.strings 8RBce
    ("pt", "Foi adicionado/a a este grupo por Rui"),  # PT-PT.strings L0?X-
    ("pt", "Rui aderiu a partir da comunidade"),  # PT-PT.strings OyYk5
    ("pt", "Você entrou usando o link de convite deste grupo"),  # PT-BR.strings )H04Q
    ("pt", "Rui mudou o nome do grupo para “Viagem”"),  # PT-BR.strings o18be
    ("nl", "Berichten en gesprekken worden end-to-end versleuteld. Niemand buiten deze chat kan ze lezen of "
           "beluisteren, zelfs WhatsApp niet."),  # NL _i3PG
    ("nl", "Daan heeft de groep verlaten"),  # NL.strings IGUjt
    ("nl", "Daan heeft berichten met vervaldatum uitgeschakeld."),  # NL.strings 3|Iw.
    ("nl", "U bent deelnemer geworden via de uitnodigingslink van deze groep"),  # NL.strings )H04Q
    ("nl", "U hebt de groep “Fietsclub” gemaakt"),  # NL.strings (K2R*
    ("nl", "Daan heeft het onderwerp gewijzigd naar “Fietsclub”"),  # NL.strings o18be
    ("fi", "Viestit ja puhelut salataan täysin. Kukaan tämän keskustelun ulkopuolinen, ei edes WhatsApp, voi "
           "lukea tai kuunnella niitä."),  # FI _i3PG
    ("fi", "Mikko poistettiin"),  # FI.strings 8RBce
    ("fi", "Lisäsit henkilön Eetu"),  # FI.strings Ik.w'
    ("fi", "Turvanumerosi muuttui henkilön Aino kanssa."),  # FI.strings G)W)p
    ("fi", "Mikko kytki viestien katoamisen päälle."),  # FI.strings 3|Iw.
    ("fi", "Liityit ryhmään kutsulinkillä"),  # FI.strings )H04Q
    ("fi", "Loit ryhmän “Mökki”"),  # FI.strings (K2R*
    ("fi", "Mikko vaihtoi aiheeksi “Mökki”"),  # FI.strings o18be
    ("hr", "Poruke i pozivi zaštićeni su potpunom enkripcijom. Nitko izvan ovog razgovora, čak ni WhatsApp, ne "
           "može ih pročitati niti poslušati."),  # HR _i3PG
    ("hr", "Marko je uklonjen/a"),  # HR.strings 8RBce
    ("hr", "Nadodali ste Marka"),  # HR.strings Ik.w'
    ("hr", "Vaš sigurnosni kôd za kontakt Ivana promijenio se."),  # HR.strings G)W)p
    ("hr", "Tvorac grupe izradio je ovu grupu"),  # HR.strings _Zv4&
    ("hr", "Izradili ste grupu “Izlet”"),  # HR.strings (K2R*
    ("hr", "Pridružili ste se koristeći pozivnicu ove grupe"),  # HR.strings )H04Q
    ("hr", "Ivana je promjenio/la temu u “Izlet”"),  # HR.strings o18be (WhatsApp's own spelling)
    ("ko", "메시지 및 전화는 종단간 암호화되어 안전합니다. 아무도 엿보거나 들을 수 없습니다. WhatsApp에게도 이러한 "
           "권한이 없습니다."),  # KO _i3PG
    ("ko", "민준님이 서연님을 퇴장시켰습니다"),  # KO.strings Qv?AC
    ("ko", "서연님이 강제 퇴장되었습니다."),  # KO.strings 8RBce
    ("ko", "민준님이 자동삭제 메시지 설정을 켰습니다."),  # KO.strings 3|Iw.
    ("ko", "그룹 만든이가 그룹 “주말 등산”(을)를 생성했습니다"),  # KO.strings epN1D
    ("ko", "민준님이 “주말 등산” 그룹을 만들었습니다."),  # KO.strings aD=R{
    ("ko", "민준님이 그룹 이름을 “주말 등산”(으)로 변경했습니다."),  # KO.strings o18be
    ("ko", "민준님이 메시지 타이머를 업데이트했습니다."),  # KO.strings jm_F}
]


@pytest.mark.parametrize(("locale", "text"), _IOS_SYSTEM, ids=[f"{c[0]}-{c[1][:40]}" for c in _IOS_SYSTEM])
def test_an_ios_system_line_under_the_chat_name_is_a_system_event(locale: str, text: str) -> None:
    parsed = parse_text(f"{IOS[locale]}Grupo: {LRM}{text}\n{IOS[locale]}Ana: olá\n")
    assert [(m.author, m.kind) for m in parsed.messages] == [(None, K.SYSTEM), ("Ana", K.TEXT)]
    assert parsed.chat_name == "Grupo"
    assert not parsed.issues


# --- Android: the encryption notice under the group's name (issue #10, item 4) -----------------------------

_ANDROID_NOTICES = [
    ("pt", "As mensagens e as chamadas são protegidas com a criptografia de ponta a ponta e ficam somente entre "
           "você e os participantes desta conversa. Nem mesmo o WhatsApp pode ler ou ouvi-las. Toque para saber "
           "mais."),
    ("pt", "As mensagens e chamadas são encriptadas ponto a ponto. Ninguém fora desta conversa, nem mesmo o "
           "WhatsApp, pode ler ou ouvi-las."),
    ("pt", "Suas chamadas e mensagens estão seguras com criptografia de ponta-a-ponta, o que significa que o "
           "WhatsApp ou terceiros não podem lê-las ou ouví-las."),  # strings.xml settings_security_info, pt-BR
    ("pt", "Quando é possível, as mensagens que enviar e as chamadas que efetuar são completamente encriptadas "
           "automaticamente, o que significa que não podem ser consultadas pelo WhatsApp, nem por terceiros."),
    ("nl", "Berichten en gesprekken worden end-to-end versleuteld. Niemand buiten deze chat kan ze lezen of "
           "beluisteren, zelfs WhatsApp niet. Tik voor meer informatie."),
    ("nl", "Uw oproepen en berichten zijn beveiligd met end-to-end encryptie. Dit houdt in dat WhatsApp en derde "
           "partijen ze niet lezen of beluisteren."),  # strings.xml settings_security_info, nl
    ("fi", "Viestit ja puhelut salataan täysin. Kukaan tämän keskustelun ulkopuolinen, ei edes WhatsApp, voi "
           "lukea tai kuunnella niitä."),
    ("fi", "Viestit ja puhelut salataan täysin, mikä tarkoittaa, että WhatsApp ja kolmannet osapuolet eivät voi "
           "lukea tai kuunnella niitä."),  # strings.xml settings_security_info, fi
    ("hr", "Poruke i pozivi zaštićeni su potpunom enkripcijom. Nitko izvan ovog razgovora, čak ni WhatsApp, ne "
           "može ih pročitati niti poslušati."),
    ("hr", "Vaši pozivi i poruke koje pošaljete šifrirane su end-to-end metodom, što znači da ih WhatsApp i treće "
           "strane nisu u mogućnosti preslušavati niti čitati."),  # strings.xml settings_security_info, hr
    ("ko", "메시지 및 전화는 종단간 암호화되어 안전합니다. 아무도 엿보거나 들을 수 없습니다. WhatsApp에게도 이러한 "
           "권한이 없습니다."),
    ("ko", "메시지 및 전화는 암호화되어 안전합니다. WhatsApp 또는 제3자가 읽거나 들을 수 없습니다."),  # strings.xml
]


@pytest.mark.parametrize(("locale", "notice"), _ANDROID_NOTICES,
                         ids=[f"{c[0]}-{c[1][:40]}" for c in _ANDROID_NOTICES])
def test_whatsapps_encryption_notice_under_the_group_name_is_no_participant(locale: str, notice: str) -> None:
    stamp = ANDROID[locale]
    parsed = parse_text(f"{stamp}Grupo: {notice}\n{stamp}Ana: olá\n")
    assert [(m.author, m.kind) for m in parsed.messages] == [(None, K.SYSTEM), ("Ana", K.TEXT)]
    assert parsed.chat_name == "Grupo"


# --- Android lines that quote a new group name containing ": " ---------------------------------------------

@pytest.mark.parametrize("line", [
    # Korean puts the verb last, so only the words before the quoted name can tell (KO.strings o18be, aD=R{).
    '2024. 1. 12. 오후 3:05 - 민준님이 그룹 이름을 "등산: 1월"(으)로 변경했습니다',
    '2024. 1. 12. 오후 3:05 - 민준님이 "등산: 1월" 그룹을 만들었습니다.',
    # WhatsApp's Croatian string spells the verb "promjenio/la" (HR.strings o18be).
    '12. 1. 2024. 09:00 - Ivana je promjenio/la temu u "Izlet: Krk"',
    # Finnish "changed the subject to" is "vaihtoi aiheeksi" (FI.strings o18be).
    '14.6.2018 klo 8.05.00 - Mikko vaihtoi aiheeksi "Mökki: 2018"',
])
def test_an_android_subject_change_quoting_a_colon_has_no_author(line: str) -> None:
    m = parse_text(line + "\n").messages[0]
    assert (m.author, m.kind) == (None, K.SYSTEM)


@pytest.mark.parametrize(("stamp", "line"), [
    ("12/01/2024, 09:00 - ", "Book club: Messages and calls are end-to-end encrypted. Only people in this chat can "
                             "read, listen to, or share them. Learn more."),
    ("17/09/2024 11:31 - ", "Grupo: As mensagens e ligações são protegidas com a criptografia de ponta a ponta. "
                            "Somente as pessoas nesta conversa podem ler, ouvir ou compartilhar. Saiba mais."),
])
def test_the_2024_encryption_notice_naming_no_whatsapp_under_a_group_name_is_no_participant(
        stamp: str, line: str) -> None:
    parsed = parse_text(stamp + line + "\n" + stamp + "Ana: hi\n")
    assert [(m.author, m.kind) for m in parsed.messages] == [(None, K.SYSTEM), ("Ana", K.TEXT)]
