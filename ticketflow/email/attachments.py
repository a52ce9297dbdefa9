"""Attachments of received mail: found in the MIME tree, typed by their bytes, kept as opaque bytes.

The type a mail declares for a part (``Content-Type``) and its file name's extension are the sender's
claims; the desk records the type its own magic-byte sniffing finds (:func:`sniff`), and serves every
attachment as a download (``Content-Disposition: attachment``, ``X-Content-Type-Options: nosniff``),
so nothing a customer sends is ever rendered or run by the desk or an agent's browser. Types that a
browser would render as active content (HTML, SVG, XML, scripts) are sniffed as plain text or as
``application/octet-stream``, never as themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

#: The type of bytes the sniffer does not recognise.
OPAQUE = "application/octet-stream"

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF-", 0, "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"PK\x03\x04", 0, "application/zip"),  # also docx, xlsx, pptx, odt: all zip archives
    (b"PK\x05\x06", 0, "application/zip"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", 0, "application/vnd.rar"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "application/x-ole-storage"),  # doc, xls, msg
    (b"MZ", 0, "application/x-msdownload"),  # a Windows executable: kept, never run
    (b"\x7fELF", 0, "application/x-executable"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
    (b"ftyp", 4, "video/mp4"),
)


def sniff(data: bytes) -> str:
    """The type the bytes themselves show (never the declared one)."""
    for magic, offset, kind in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    head = data[:4096]
    if b"\x00" in head:
        return OPAQUE
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the sample's end
            return OPAQUE
    return "text/plain"


@dataclass(frozen=True)
class MailAttachment:
    filename: str  # as the mail names it ("" when it names none); personal data
    data: bytes


def attachments_of(msg: EmailMessage) -> tuple[MailAttachment, ...]:
    """The parts a mail client shows as attachments: ``Content-Disposition: attachment``, and inline
    parts that are not text (images pasted into the mail, with or without a name)."""
    found: list[MailAttachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        disposition = part.get_content_disposition()
        if disposition != "attachment" and (disposition is None or part.get_content_maintype() == "text"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        name = part.get_filename() or ""
        found.append(MailAttachment(" ".join(name.split())[:255], payload))
    return tuple(found)
