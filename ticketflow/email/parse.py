"""Reading one RFC 5322 message into what a ticket needs, with the standard library only.

``parse_message(raw)`` returns the sender, the subject, the text the customer wrote (an
HTML-only mail turned into text, the quoted history of a reply trimmed), the threading
headers and, when the mail was written by a machine (an auto-reply, a bounce, a mailing
list), the reason it must never open a ticket.

Chinese mail is read in its own charsets: GB2312 and GBK are decoded as GB18030 (their
superset: mail labelled GB2312 routinely carries GBK characters), Big5 as Big5-HKSCS, and
header bytes sent raw (no encoded words, as some clients do) are tried as UTF-8, then GB18030.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import decode_header
from email.message import EmailMessage, Message
from email.utils import getaddresses
from html import unescape
from html.parser import HTMLParser

from ticketflow.email.attachments import MailAttachment, attachments_of

#: Labels whose text is better read by a superset codec.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
}


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset; undeclared or unknown: UTF-8, else GB18030 (never raises)."""
    label = (charset or "").strip().strip('"').lower()
    label = _CHARSET_ALIASES.get(label, label)
    if label:
        try:
            codecs.lookup(label)
            return data.decode(label, errors="replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def decode_header_text(raw: str) -> str:
    """A header's text: encoded words in any charset above, raw 8-bit bytes guessed, folding undone."""
    pieces: list[str] = []
    for chunk, charset in decode_header(raw):
        if isinstance(chunk, bytes):
            pieces.append(decode_bytes(chunk, charset))
        else:
            pieces.append(_unescape_raw(chunk))
    return " ".join(re.sub(r"\s*\r?\n\s*", " ", "".join(pieces)).split())


def _unescape_raw(text: str) -> str:
    """Raw 8-bit header bytes come through the parser as surrogate escapes: decode them properly."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_bytes(text.encode("ascii", errors="surrogateescape"), None)


@dataclass(frozen=True)
class ParsedMail:
    sender_name: str
    sender_address: str  # lower-cased addr-spec; "" when the mail names no sender
    subject: str
    body: str  # what the sender wrote, quoted history trimmed
    full_body: str  # the whole text part, untrimmed
    message_id: str | None  # with its angle brackets
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    loop: str | None  # why a machine wrote it (never opens a ticket), or None
    html_only: bool = False
    recipients: tuple[str, ...] = field(default_factory=tuple)
    attachments: tuple[MailAttachment, ...] = field(default_factory=tuple)

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Every Message-ID this mail answers, the nearest first."""
        seen: list[str] = []
        for mid in (*self.in_reply_to, *reversed(self.references)):
            if mid not in seen:
                seen.append(mid)
        return tuple(seen)


_MSGID = re.compile(r"<[^<>\s]+>")


def parse_message(raw: bytes) -> ParsedMail:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    headers = {k.lower(): v for k, v in _raw_items(msg)}
    sender_name, sender_address = _sender(headers.get("from", ""))
    text, html_only = _text_of(msg)
    text = clean_text(text)
    subject = clean_line(decode_header_text(headers.get("subject", "")))
    return ParsedMail(
        sender_name=sender_name,
        sender_address=sender_address,
        subject=subject,
        body=trim_quoted(text, subject),
        full_body=text,
        message_id=_first_id(headers.get("message-id", "")),
        in_reply_to=tuple(_MSGID.findall(headers.get("in-reply-to", ""))),
        references=tuple(_MSGID.findall(headers.get("references", ""))),
        loop=loop_reason(msg, headers, sender_address),
        html_only=html_only,
        recipients=tuple(
            a.lower()
            for _, a in getaddresses([decode_header_text(headers.get(h, "")) for h in ("to", "cc")])
            if a
        ),
        attachments=attachments_of(msg),
    )


def _raw_items(msg: Message) -> list[tuple[str, str]]:
    """Header values as sent (the first of each name wins), before the policy decodes them."""
    items: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in msg.raw_items():
        if name.lower() not in seen:
            seen.add(name.lower())
            items.append((name, str(value)))
    return items


def _first_id(value: str) -> str | None:
    found = _MSGID.search(value)
    return found.group(0) if found else None


def _sender(raw_from: str) -> tuple[str, str]:
    pairs = getaddresses([decode_header_text(raw_from)])
    for name, address in pairs:
        if "@" in address:
            return clean_line(name.strip().strip('"')), address.strip().lower()
    return "", ""


# ------------------------------------------------------------------ loops
_LOOP_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|noreply-dmarc-support)@", re.IGNORECASE)
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-auto-reply", "x-autoresponder", "x-fc-machinegenerated")


def loop_reason(msg: Message, headers: dict[str, str], sender: str) -> str | None:
    """Why this mail was written by a machine (RFC 3834 and the de-facto headers), or None."""
    submitted = headers.get("auto-submitted", "").strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted.split(';')[0]}"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _LOOP_PRECEDENCE:
        return f"Precedence: {precedence}"
    if "return-path" in headers and headers["return-path"].strip() in ("<>", ""):
        return "Return-Path: <> (a bounce)"
    if msg.get_content_type() == "multipart/report":
        return "a delivery or read report (multipart/report)"
    for name in _AUTO_HEADERS:
        if name in headers and headers[name].strip().lower() not in ("no", "false", "0"):
            return f"{name}: {headers[name].strip()}"
    if "list-id" in headers or "list-unsubscribe" in headers:
        return "a mailing list (List-Id)"
    if sender and _DAEMONS.match(sender):
        return f"sent by {sender.split('@')[0]}"
    if "x-autogenerated" in headers:
        return "X-AutoGenerated"
    return None


# ------------------------------------------------------------------ body text
def _text_of(msg: EmailMessage) -> tuple[str, bool]:
    """The first text/plain part outside attachments, else the first text/html as text."""
    plain = html = None
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = _part_text(part)
        elif kind == "text/html" and html is None:
            html = _part_text(part)
    if plain is not None and plain.strip():
        return plain, False
    if html is not None:
        return html_to_text(html), True
    return plain or "", False


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset())


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "hr", "pre"}
    )
    _SKIP = frozenset({"script", "style", "head", "title"})
    _VOID = frozenset({"br", "hr", "img", "meta", "input", "link", "area", "base", "col", "wbr", "source"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.open: list[tuple[str, bool]] = []  # open elements: (tag, starts a quote)
        self.quote_depth = 0
        self.skip = 0

    def _newline(self) -> None:
        if self.lines[-1].strip():
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        quoting = tag == "blockquote" or "gmail_quote" in (dict(attrs).get("class") or "")
        if tag in self._SKIP:
            self.skip += 1
        if tag in self._BLOCK or quoting:
            self._newline()
        if tag in self._VOID:
            return
        self.open.append((tag, quoting))
        self.quote_depth += quoting

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        if tag in self._BLOCK:
            self._newline()
        if not any(t == tag for t, _ in self.open):
            return
        while self.open:
            popped, quoting = self.open.pop()
            self.quote_depth -= quoting
            if popped == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        text = " ".join(data.replace("\xa0", " ").split())
        if not text:
            return
        if not self.lines[-1]:
            self.lines[-1] = "> " * self.quote_depth
        elif not self.lines[-1].endswith(" "):
            self.lines[-1] += " "
        self.lines[-1] += text


def html_to_text(html: str) -> str:
    """Visible text of an HTML mail: one line per block, quoted blocks prefixed with ``> ``."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return unescape("\n".join(line.rstrip() for line in parser.lines)).strip()


# ------------------------------------------------------------------ quoted history
#: A line where the quoted history of a reply begins (everything from it on is dropped).
_HISTORY_STARTS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^-{2,}\s*(original message|original|原始邮件|原始郵件|邮件原文)\s*-{2,}\s*$",  # Outlook, Foxmail, QQ
        r"^_{10,}\s*$",  # Outlook's rule above the quoted header block
        r"^on .{4,200}wrote:\s*$",  # Gmail, Apple Mail, Thunderbird
        r"^在 .{4,120}写道[:：]\s*$",  # Gmail / Apple Mail in Chinese
        r"^.{4,120}于\s*\d{4}年\d{1,2}月\d{1,2}日.{0,40}写道[:：]\s*$",  # Gmail zh-CN
        r"^(from|发件人|寄件者)\s*[:：].+$",  # an Outlook header block, when the next lines confirm it
    )
]
_FORWARDED = re.compile(
    r"^-{2,}\s*(forwarded message|begin forwarded message|转发的邮件|转发邮件|轉寄的郵件)\s*[:：]?\s*-{0,}\s*$",
    re.IGNORECASE,
)
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|转发|轉寄)\s*[:：]", re.IGNORECASE)
_OUTLOOK_BLOCK = re.compile(
    r"^(sent|date|to|subject|发送时间|日期|收件人|主题|傳送時間|主旨)\s*[:：]", re.IGNORECASE
)


def trim_quoted(text: str, subject: str = "") -> str:
    """The new text of a reply: the history below a client's quote marker, and a trailing block of
    ``>`` lines, are dropped. A mail that is all quote keeps its text (nothing is lost); a forwarded
    mail keeps what it forwards (it is the point of the mail)."""
    if _FORWARD_SUBJECT.match(subject):
        return text.strip()
    lines = text.split("\n")
    cut = len(lines)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if _FORWARDED.match(stripped):
            break
        matched = next((p for p in _HISTORY_STARTS if p.match(stripped)), None)
        if matched is None:
            continue
        if matched is _HISTORY_STARTS[-1]:  # a "From:" line: a header block only if Sent/To/Subject follow
            following = [x.strip() for x in lines[index + 1 : index + 4] if x.strip()]
            if not any(_OUTLOOK_BLOCK.match(x) for x in following):
                continue
        cut = index
        break
    kept = lines[:cut]
    while kept and (not kept[-1].strip() or kept[-1].lstrip().startswith(">")):
        kept.pop()  # a trailing quote (Gmail's "> " lines without a marker line)
    result = "\n".join(kept).strip()
    return result or text.strip()


# ------------------------------------------------------------------ cleaning
def clean_text(text: str) -> str:
    """NFC, LF line ends, no control or unassigned characters but tabs and line breaks."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    kept = [ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs", "Co", "Cn"}]
    return re.sub(r"\n{3,}", "\n\n", "".join(kept)).strip()


def clean_line(text: str) -> str:
    return " ".join(clean_text(text).split())
