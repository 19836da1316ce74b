"""The words WhatsApp writes into a chat export, per interface language.

An export never says which language it is in, so the parser tries every table at once; the phrases are
distinct enough across languages that this costs nothing in precision. Where each phrase comes from (WhatsApp's
own iOS and Android strings, real exports, public parsers' tables) and which ones no source confirms is in
docs/connectors.md, "Where the phrases come from". A phrase missing here never loses data: the line is still
kept, only its ``kind`` falls back to ``text`` (or ``system`` where the line has no author).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LOCALES", "Locale", "casefold_set", "notice_pattern", "system_pattern"]


@dataclass(frozen=True, slots=True)
class Locale:
    """What one interface language writes for the markers the parser recognises.

    ``system`` and ``system_strict`` are regular-expression fragments matched case-insensitively:
    ``system`` against the text of a line that WhatsApp led with U+200E (iOS system lines carry the chat's
    name as if it were an author), ``system_strict`` against what would otherwise be an author name, to
    catch Android system lines that quote user text containing ": " (a changed group subject).
    ``notice`` fragments match, from the start of a one-line body, the fixed sentences only WhatsApp writes
    (the end-to-end encryption notice, which also names WhatsApp: "not even WhatsApp"): some Android versions
    write them under the group's name as if it were an author, so a body matching one is a system event
    whatever name precedes it (issue #10, item 4).
    """

    code: str
    media_omitted: tuple[str, ...]  # Android, whole line: <Media omitted>
    omitted: tuple[str, ...]  # iOS: image omitted, document omitted …
    attached: tuple[str, ...]  # iOS: <attached: 00000012-PHOTO-….jpg>, older iOS: ….jpg <attached>
    file_attached: tuple[str, ...]  # Android: IMG-….jpg (file attached)
    deleted: tuple[str, ...]
    edited: tuple[str, ...]  # the text between < and > at the end of an edited message
    missed_voice: tuple[str, ...]
    missed_video: tuple[str, ...]
    system: tuple[str, ...]
    system_strict: tuple[str, ...]
    notice: tuple[str, ...] = ()


LOCALES: tuple[Locale, ...] = (
    Locale(
        code="en",
        media_omitted=("<Media omitted>",),
        omitted=("image omitted", "video omitted", "audio omitted", "sticker omitted", "GIF omitted",
                 "document omitted", "Contact card omitted", "video note omitted"),
        attached=("attached",),
        file_attached=("file attached",),
        deleted=("This message was deleted", "You deleted this message"),
        edited=("This message was edited",),
        missed_voice=("Missed voice call", "Missed group voice call"),
        missed_video=("Missed video call", "Missed group video call"),
        system=(r"end-to-end encrypt", r"\bcreated (?:the )?group\b", r"\bcreated this group\b", r"\badded\b",
                r"\bremoved\b", r"\bleft$", r"\bjoined\b", r"\bchanged (?:the|this|their|to)\b",
                r"security code", r"\bis a contact\b", r"disappearing messages", r"\ban admin\b",
                r"pinned a message", r"\bturned (?:on|off)\b", r"business account", r"secure service from meta",
                r"\bblocked this contact\b", r"\bunblocked this contact\b"),
        system_strict=(r"\bchanged (?:the subject|the group name|the group description|this group's)\b",
                       r"\bcreated group\b", r"^messages and calls are end-to-end encrypted",
                       r"^messages to this group are now secured"),
        notice=(r"messages and calls are end-to-end encrypted\b.{0,200}\bwhatsapp\b",
                # The 2024 wording names no WhatsApp; its second sentence is as much WhatsApp's own.
                r"messages and calls are end-to-end encrypted\. only people in this chat can read, listen to",
                r"messages (?:you send )?to this (?:group|chat)(?: and calls)? are now secured with end-to-end",
                r"this business uses a secure service from meta"),
    ),
    Locale(
        code="de",
        media_omitted=("<Medien ausgeschlossen>",),
        omitted=("Bild weggelassen", "Video weggelassen", "Audio weggelassen", "Sticker weggelassen",
                 "GIF weggelassen", "Dokument weggelassen", "Kontaktkarte weggelassen"),
        attached=("Anhang",),
        file_attached=("Datei angehängt",),
        deleted=("Diese Nachricht wurde gelöscht", "Du hast diese Nachricht gelöscht"),
        edited=("Diese Nachricht wurde bearbeitet",),
        missed_voice=("Verpasster Sprachanruf", "Verpasster Gruppen-Sprachanruf"),
        missed_video=("Verpasster Videoanruf", "Verpasster Gruppen-Videoanruf"),
        system=(r"ende-zu-ende-verschlüssel", r"\bhat die gruppe\b", r"\bhinzugefügt\b", r"\bentfernt\b",
                r"\bverlassen\b", r"\bbeigetreten\b", r"\bgeändert\b", r"sicherheitsnummer", r"sicherheitscode",
                r"selbstlöschende", r"\badmin\b"),
        system_strict=(r"\bhat den betreff\b", r"\bhat den gruppennamen\b", r"\bhat die gruppenbeschreibung\b",
                       r"\bhat die gruppe .{0,100}erstellt"),
        notice=(r"nachrichten\b.{0,80}ende-zu-ende-verschlüssel.{0,200}\bwhatsapp\b",),
    ),
    Locale(
        code="fr",
        media_omitted=("<Médias omis>",),
        omitted=("image absente", "vidéo absente", "audio omis", "autocollant omis", "GIF retiré",
                 "document omis", "fiche contact omise"),
        attached=("pièce jointe",),
        file_attached=("fichier joint",),
        deleted=("Ce message a été supprimé", "Vous avez supprimé ce message"),
        edited=("Ce message a été modifié",),
        missed_voice=("Appel vocal manqué", "Appel vocal de groupe manqué"),
        missed_video=("Appel vidéo manqué", "Appel vidéo de groupe manqué"),
        system=(r"chiffrés de bout en bout", r"\ba créé (?:le|ce) groupe\b", r"\ba ajouté\b", r"\ba retiré\b",
                r"\best parti\b", r"\ba quitté\b", r"\ba rejoint\b", r"\ba (?:modifié|changé)\b",
                r"code de sécurité", r"messages éphémères", r"\badministrat"),
        system_strict=(r"\ba (?:modifié|changé) (?:le sujet|le nom du groupe|la description)",
                       r"\ba créé le groupe\b"),
        notice=(r"les messages\b.{0,80}chiffrés de bout en bout.{0,200}\bwhatsapp\b",),
    ),
    Locale(
        code="es",
        media_omitted=("<Multimedia omitido>",),
        omitted=("imagen omitida", "video omitido", "audio omitido", "sticker omitido", "GIF omitido",
                 "documento omitido", "tarjeta de contacto omitida"),
        attached=("adjunto",),
        file_attached=("archivo adjunto",),
        deleted=("Se eliminó este mensaje", "Eliminaste este mensaje", "Este mensaje fue eliminado"),
        edited=("Se editó este mensaje",),
        missed_voice=("Llamada de voz perdida", "Llamada perdida"),
        missed_video=("Videollamada perdida",),
        system=(r"cifrados de extremo a extremo", r"\bcreó (?:el|este) grupo\b", r"\bañadió\b", r"\bagregó\b",
                r"\beliminó a\b", r"\bsalió\b", r"\bse unió\b", r"\bcambió\b", r"código de seguridad",
                r"mensajes temporales", r"\badministrador"),
        system_strict=(r"\bcambió (?:el asunto|el nombre del grupo|la descripción)", r"\bcreó el grupo\b"),
        notice=(r"(?:los )?mensajes\b.{0,80}cifrados de extremo a extremo.{0,200}\bwhatsapp\b",),
    ),
    Locale(
        code="pt",
        media_omitted=("<Mídia oculta>", "<Arquivo de mídia oculto>", "<Mídia omitida>", "<Ficheiro não revelado>"),
        omitted=("imagem ocultada", "imagem omitida", "vídeo omitido", "áudio ocultado", "áudio omitido",
                 "figurinha omitida", "GIF omitido", "documento omitido", "Cartão do contato omitido",
                 "imagem não revelada", "vídeo não revelado", "ficheiro de áudio não revelado",
                 "sticker não revelado", "GIF não revelada", "Contacto não revelado", "documento não revelado"),
        attached=("anexado", "anexo"),
        file_attached=("arquivo anexado", "ficheiro anexado"),
        deleted=("Mensagem apagada", "Você apagou esta mensagem", "Essa mensagem foi apagada",
                 "Esta mensagem foi apagada", "Esta mensagem foi apagada pelo remetente", "Apagou esta mensagem"),
        edited=("Mensagem editada",),
        missed_voice=("Chamada de voz perdida", "Ligação de voz perdida"),
        missed_video=("Chamada de vídeo perdida", "Videochamada perdida"),
        system=(r"criptografia de ponta a ponta", r"encriptad[ao]s ponto a ponto", r"\bcriou (?:o|este) grupo\b",
                r"\badicionou\b", r"\badicionad[ao]\b", r"\bremoveu\b", r"\bfoi removid[ao]\b", r"\bsaiu\b",
                r"\bentrou\b", r"\baderiu\b", r"\bentrar no grupo\b", r"\b(?:mudou|alterou)\b",
                r"código de segurança", r"mensagens temporárias", r"\badmin"),
        system_strict=(r"\b(?:mudou|alterou) (?:o assunto|o nome do grupo|a descrição)", r"\bcriou o grupo\b"),
        notice=(r"(?:as )?mensagens\b.{0,80}criptografia de ponta a ponta.{0,200}\bwhatsapp\b",
                r"as mensagens e ligações são protegidas com a criptografia de ponta a ponta\. somente as pessoas "
                r"nesta conversa podem ler",  # the 2024 wording (pt-BR), which names no WhatsApp
                r"(?:as )?mensagens\b.{0,80}encriptad[ao]s ponto a ponto.{0,200}\bwhatsapp\b",
                r"suas chamadas e mensagens estão seguras com criptografia de ponta-a-ponta.{0,200}\bwhatsapp\b",
                r"quando é possível, as mensagens que enviar.{0,120}encriptadas.{0,200}\bwhatsapp\b"),
    ),
    Locale(
        code="nl",
        media_omitted=("<Media weggelaten>",),
        omitted=("afbeelding weggelaten", "video weggelaten", "audio weggelaten", "sticker weggelaten",
                 "GIF weggelaten", "document weggelaten", "Visitekaartje weggelaten", "contactkaart weggelaten"),
        attached=("bijgevoegd",),
        file_attached=("bestand bijgevoegd",),
        deleted=("Dit bericht is verwijderd", "U hebt dit bericht verwijderd", "Je hebt dit bericht verwijderd"),
        edited=("Dit bericht is bewerkt",),
        missed_voice=("Gemiste spraakoproep", "Gemist spraakgesprek", "Gemiste groepsspraakoproep"),
        missed_video=("Gemiste video-oproep", "Gemist videogesprek", "Gemist groepsvideogesprek",
                      "Gemiste groepsvideo-oproep"),
        system=(r"end-to-end versleuteld", r"end-to-end encryptie", r"\baangemaakt\b", r"\bgemaakt\b",
                r"\btoegevoegd\b", r"\bverwijderd\b", r"\bverlaten\b", r"\bvertrokken\b", r"\blid geworden\b",
                r"\bdeelnemer geworden\b", r"\bgewijzigd\b", r"\bwijzigde\b", r"beveiligingscode",
                r"berichten met vervaldatum", r"verdwijnende berichten", r"\bbeheerder\b"),
        system_strict=(r"\bheeft (?:het onderwerp|de groepsnaam|de groepsbeschrijving) gewijzigd",
                       r"\bwijzigde (?:het onderwerp|de groepsnaam|de groepsbeschrijving)",
                       r"\bheeft (?:de )?groep .{0,100}aangemaakt", r"\bheeft (?:de )?groep [“\"]"),
        notice=(r"berichten\b.{0,80}end-to-end versleuteld.{0,200}\bwhatsapp\b",
                r"uw oproepen en berichten zijn beveiligd met end-to-end encryptie.{0,200}\bwhatsapp\b"),
    ),
    Locale(
        code="fi",
        media_omitted=("<Media jätettiin pois>", "<Media jätetty pois>"),
        omitted=("ei kuvaa", "videota ei sisällytetä", "äänitiedostoa ei sisällytetä", "tarraa ei sisällytetty",
                 "GIF-animaatio jätetty pois", "Yhteystietokortti jätettiin pois", "dokumenttia ei sisällytetä",
                 "kuva jätetty pois", "video jätetty pois", "ääni jätetty pois", "tarra jätetty pois",
                 "GIF jätetty pois", "asiakirja jätetty pois"),
        attached=("liite", "liitetty"),
        file_attached=("liitetiedosto", "tiedosto liitetty"),
        deleted=("Tämä viesti poistettiin", "Poistit tämän viestin"),
        edited=("Tätä viestiä on muokattu",),
        missed_voice=("Vastaamaton äänipuhelu", "Vastaamaton ryhmä-äänipuhelu"),
        missed_video=("Vastaamaton videopuhelu", "Vastaamaton ryhmävideopuhelu"),
        system=(r"salataan täysin", r"täysin salat", r"päästä päähän", r"\bloi ryhmän\b", r"\bloit ryhmän\b",
                r"\blisäsi(?:t)?\b", r"\bpoisti\b", r"\bpoistettiin\b", r"\bpoistui\b", r"\bliittyi\b",
                r"\bliityit\b", r"\bvaihtoi\b", r"\bmuutti\b", r"turvanumero", r"turvakoodi", r"katoavat viestit",
                r"viestien katoami", r"ylläpitäjä"),
        system_strict=(r"\b(?:vaihtoi|muutti) (?:aiheen|ryhmän nimen|ryhmän kuvauksen)", r"\bvaihtoi aiheeksi\b",
                       r"\bloi ryhmän\b"),
        notice=(r"viestit ja puhelut salataan täysin\b.{0,200}\bwhatsapp\b",
                r"viestit\b.{0,80}päästä päähän -salat.{0,200}\bwhatsapp\b"),
    ),
    Locale(
        code="hr",
        media_omitted=("<Medijski zapis izostavljen>",),
        omitted=("slika izostavljena", "video izostavljen", "zvuk izostavljen", "naljepnica izostavljena",
                 "GIF izostavljen", "Posjetnica izostavljena", "dokument izostavljen", "videozapis izostavljen",
                 "audiozapis izostavljen"),
        attached=("priloženo", "privitak"),
        file_attached=("datoteka u privitku", "datoteka priložena", "priložena datoteka"),
        deleted=("Ova poruka je izbrisana", "Ova je poruka izbrisana", "Izbrisali ste ovu poruku"),
        edited=("Ova poruka je uređena",),
        missed_voice=("Propušteni glasovni poziv", "Propušten glasovni poziv", "Propušteni grupni glasovni poziv"),
        missed_video=("Propušteni videopoziv", "Propušten video poziv", "Propušteni grupni videopoziv"),
        system=(r"potpunom enkripcijom", r"šifrirane su end-to-end", r"\bšifrira(?:ni|ne|no)\b",
                r"\bstvori(?:o|la) (?:je )?grupu\b", r"\bizradi(?:o|la|li)\b", r"\bdoda(?:o|la|je)\b",
                r"\bnadodali ste\b", r"\bdodali ste\b", r"\bukloni(?:o|la)\b", r"\buklonjen", r"\buklanja\b",
                r"\bnapusti(?:o|la)\b", r"\bpridruži(?:o|la)\b", r"\bpridružuje se\b", r"\bpridružili ste se\b",
                r"\bpromi?jeni(?:o|la)\b", r"\bmijenja\b", r"sigurnosni k[oô]d", r"nestajuće poruke",
                r"\badministrator"),
        system_strict=(r"\bpromi?jeni(?:o|la)(?:/la)? (?:je )?(?:temu|naziv grupe|opis grupe)",
                       r"\bstvori(?:o|la) (?:je )?grupu\b"),
        notice=(r"poruke i pozivi zaštićeni su potpunom enkripcijom.{0,200}\bwhatsapp\b",
                r"vaši pozivi i poruke koje pošaljete šifrirane su end-to-end.{0,200}\bwhatsapp\b",
                r"poruke\b.{0,80}šifrira(?:ni|ne|no)\b.{0,200}\bwhatsapp\b"),
    ),
    Locale(
        code="ko",
        media_omitted=("<미디어 파일을 생략한 대화내용>", "<미디어 파일 제외됨>", "<미디어 파일 생략>",
                       "<미디어 생략됨>", "<미디어 없음>"),
        omitted=("이미지 생략됨", "비디오 생략됨", "오디오 생략됨", "스티커 제외됨", "GIF 생략됨", "연락처 카드 생략됨",
                 "문서 생략됨", "사진 생략됨", "동영상 생략됨", "스티커 생략됨"),
        attached=("첨부됨", "첨부"),
        file_attached=("파일 첨부됨", "파일 첨부"),
        deleted=("이 메시지는 삭제되었습니다", "삭제한 메시지입니다", "이 메시지를 삭제했습니다", "삭제된 메시지입니다",
                 "메시지를 삭제했습니다"),
        edited=("수정됨", "메시지 수정됨"),
        missed_voice=("부재중 전화", "부재중 그룹 통화", "부재중 음성 통화", "부재중 그룹 음성 통화"),
        missed_video=("부재중 영상통화", "부재중 그룹 영상통화", "부재중 영상 통화", "부재중 그룹 영상 통화"),
        system=(r"종단간 암호화", r"암호화되어 안전합니다", r"그룹을 (?:만들었|생성했)습니다", r"생성했습니다",
                r"초대했습니다", r"추가했습니다", r"퇴장시켰습니다", r"퇴장되었습니다", r"내보냈습니다", r"나갔습니다",
                r"참여했습니다", r"변경했습니다", r"바꿨습니다", r"보안 코드", r"사라지는 메시지", r"자동삭제 메시지",
                r"메시지 타이머", r"관리자"),
        system_strict=(r"그룹 (?:이름|설명)을 [“\"]", r"님이 [“\"]", r"그룹을 (?:만들었|생성했)습니다"),
        notice=(r"메시지(?:\S{0,2}| 및) (?:통화|전화)는 (?:종단간 )?암호화.{0,200}whatsapp",),
    ),
)


def _alternation(fragments: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{f})" for f in fragments), re.IGNORECASE)


def casefold_set(attr: str) -> frozenset[str]:
    """Every locale's phrases of one kind, case-folded, for exact look-ups."""
    return frozenset(p.casefold() for loc in LOCALES for p in getattr(loc, attr))


def system_pattern(strict: bool) -> re.Pattern[str]:
    """One regex over every locale's system-line fragments."""
    return _alternation([f for loc in LOCALES for f in (loc.system_strict if strict else loc.system)])


def notice_pattern() -> re.Pattern[str]:
    """One regex over every locale's notices (see ``Locale.notice``); use it with ``match`` (from the start)."""
    return _alternation([f for loc in LOCALES for f in loc.notice])
