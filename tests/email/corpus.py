"""Real-world message shapes, written as the clients send them (bytes built here, at test time).

Each builder returns the raw RFC 5322 bytes a mailbox would hold. Texts follow what Outlook,
Gmail, Foxmail and QQ Mail put in a reply; charsets are the ones Chinese mail really uses.
"""

from __future__ import annotations

import base64
from email.header import Header
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

CUSTOMER = "xiaoming@example.cn"
DESK = "support@desk.example"


def _b64_word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def plain(
    body: str,
    subject: str = "无法登录账户",
    sender: str = f"王小明 <{CUSTOMER}>",
    message_id: str = "<first.1@mail.example.cn>",
    extra: dict[str, str] | None = None,
    charset: str = "utf-8",
) -> bytes:
    msg = MIMEText(body, "plain", charset)
    msg["From"] = sender
    msg["To"] = DESK
    msg["Subject"] = Header(subject, charset).encode() if not subject.isascii() else subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Mon, 02 Mar 2026 09:00:00 +0800"
    for name, value in (extra or {}).items():
        msg[name] = value
    return msg.as_bytes()


OUTLOOK_REPLY_EN = """Thanks, that fixed it.

Regards,
Ming

________________________________
From: Support <support@desk.example>
Sent: Monday, March 2, 2026 10:00 AM
To: Wang Xiaoming <xiaoming@example.cn>
Subject: RE: Cannot log in [#1a2b3c4d]

Please reset your password from the login page.
"""

OUTLOOK_REPLY_ZH = """好的，问题已解决，谢谢！

-----原始邮件-----
发件人: 技术支持 <support@desk.example>
发送时间: 2026年3月2日 10:00
收件人: 王小明 <xiaoming@example.cn>
主题: 回复: 无法登录账户

请在登录页重置密码。
"""

GMAIL_REPLY_EN = """Still broken after the reset.

On Mon, Mar 2, 2026 at 10:00 AM Support <support@desk.example> wrote:
> Please reset your password from the login page.
>
> Li Wei
"""

GMAIL_REPLY_ZH = """重置之后还是不行。

技术支持 <support@desk.example> 于2026年3月2日周一 10:00写道：
> 请在登录页重置密码。
"""

FOXMAIL_REPLY = """收到，我明天再试。

------------------ Original ------------------
From:  "技术支持"<support@desk.example>;
Date:  Mon, Mar 2, 2026 10:00 AM
To:  "王小明"<xiaoming@example.cn>;
Subject:  回复: 无法登录账户

请在登录页重置密码。
"""

QQ_REPLY = """已经可以登录了。

------------------ 原始邮件 ------------------
发件人: "技术支持"<support@desk.example>;
发送时间: 2026年3月2日(星期一) 上午10:00
收件人: "王小明"<xiaoming@example.cn>;
主题: 回复: 无法登录账户

请在登录页重置密码。
"""

TRAILING_QUOTE = """Works now.

> Please reset your password.
> Li Wei
"""

FORWARDED = """---------- Forwarded message ---------
From: 张三 <zhangsan@example.cn>
Date: Mon, Mar 2, 2026 at 8:00 AM
Subject: 发票抬头错误

发票抬头应为「北京某某科技有限公司」。
"""


def html_only_gmail_reply() -> bytes:
    html = (
        "<html><head><style>p{color:red}</style></head><body>"
        '<div dir="ltr">您好，<br>附件里的发票&amp;收据<b>还没有</b>收到。</div><br>'
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "技术支持 &lt;support@desk.example&gt; 于2026年3月2日周一 10:00写道：<br></div>"
        '<blockquote class="gmail_quote"><div>我们已寄出发票。</div></blockquote></div>'
        "</body></html>"
    )
    msg = MIMEText(html, "html", "utf-8")
    msg["From"] = f"王小明 <{CUSTOMER}>"
    msg["To"] = DESK
    msg["Subject"] = Header("回复: 发票", "utf-8").encode()
    msg["Message-ID"] = "<html.1@mail.example.cn>"
    return msg.as_bytes()


def alternative(plain_text: str, html: str) -> bytes:
    msg = MIMEMultipart("alternative")
    msg.attach(MIMEText(plain_text, "plain", "utf-8"))
    msg.attach(MIMEText(html, "html", "utf-8"))
    msg["From"] = CUSTOMER
    msg["To"] = DESK
    msg["Subject"] = "both parts"
    msg["Message-ID"] = "<alt.1@mail.example.cn>"
    return msg.as_bytes()


def gbk_labelled_gb2312() -> bytes:
    """Subject and body labelled GB2312 but holding GBK-only characters (镕, 喆), as old clients send."""
    subject = "朱镕基的喆字显示乱码"
    body = "王喆反映：系统里“镕”和“喆”都是问号。"
    raw = (
        f"From: {_b64_word('王喆', 'gbk').replace('gbk', 'gb2312')} <zhe@example.cn>\r\n"
        f"To: {DESK}\r\n"
        f"Subject: {_b64_word(subject, 'gbk').replace('gbk', 'GB2312')}\r\n"
        "Message-ID: <gbk.1@mail.example.cn>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=gb2312\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + base64.encodebytes(body.encode("gbk"))
    return raw


def gb18030_body() -> bytes:
    body = "生僻字𠀀与欧元符号€都要保留。"  # 𠀀 is four bytes in GB18030
    return plain(body, subject="GB18030 测试", charset="gb18030", message_id="<gb18030.1@mail.example.cn>")


def big5_mail() -> bytes:
    return plain(
        "請問帳號為什麼被鎖定？", subject="帳號被鎖定", charset="big5", message_id="<big5.1@mail.example.tw>"
    )


def raw_8bit_gbk_subject() -> bytes:
    """A subject sent as raw GBK bytes, no encoded words (seen from some Foxmail versions and gateways)."""
    return (
        b"From: <zhe@example.cn>\r\nTo: "
        + DESK.encode()
        + b"\r\nSubject: "
        + "打印机卡纸".encode("gbk")
        + b"\r\nMessage-ID: <raw8.1@mail.example.cn>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=GBK\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "第三层打印机一直卡纸。\r\n".encode("gbk")
    )


def bounce() -> bytes:
    msg = MIMEMultipart("report", report_type="delivery-status")
    msg.attach(MIMEText("Delivery to the following recipient failed permanently:\n\n  xiaoming@example.cn\n"))
    msg["From"] = "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"
    msg["To"] = DESK
    msg["Subject"] = "Delivery Status Notification (Failure)"
    msg["Message-ID"] = "<bounce.1@mx.google.com>"
    return b"Return-Path: <>\r\n" + msg.as_bytes()


def auto_reply(header: str, value: str) -> bytes:
    return plain(
        "我正在休假，3月9日回来。",
        subject="自动回复: 无法登录账户",
        message_id=f"<auto.{header}@mail.example.cn>",
        extra={header: value},
    )


def with_attachment_and_cc() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"王小明 <{CUSTOMER}>"
    msg["To"] = DESK
    msg["Cc"] = "boss@example.cn"
    msg["Subject"] = "截图"
    msg["Message-ID"] = "<att.1@mail.example.cn>"
    msg.set_content("截图见附件。")
    msg.add_attachment(b"%PDF-1.4 not text", maintype="application", subtype="pdf", filename="报错.pdf")
    return msg
