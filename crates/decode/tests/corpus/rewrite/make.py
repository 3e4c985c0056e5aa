#!/usr/bin/env python3
"""Writes the rewrite corpus: NAME.eml and NAME.eml.locations (one location
per line, `<input>` for the message itself). The expected NAME.eml.cleaned
files are written by `MXGUARD_BLESS=1 cargo test -p mxguard-decode --test
rewrite` and reviewed by hand; NAME.eml.error holds the expected error (Debug
form) instead. EICAR is never stored as is: base64, quoted-printable, or
inside a zip."""
import base64, io, zipfile

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def b64(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76))


def qp_eicar():
    # 'X' written =58: decodes to EICAR, does not hold it.
    return "=58" + EICAR[1:].decode()


def zipped(name, data, extra=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for n, d in [(name, data), *extra]:
            info = zipfile.ZipInfo(n, date_time=(2024, 1, 1, 0, 0, 0))
            z.writestr(info, d)
    return buf.getvalue()


def write(name, text, locations):
    with open(name + ".eml", "w", newline="\n") as f:
        f.write(text)
    with open(name + ".eml.locations", "w", newline="\n") as f:
        f.write("\n".join(locations) + "\n")


HEAD = """From: sender@example.com
To: rcpt@example.com
Subject: {subject}
Date: Mon, 1 Jan 2024 00:00:00 +0000
Message-ID: <{subject}@example.com>
MIME-Version: 1.0
"""

write("attachment-mixed", HEAD.format(subject="attachment-mixed") + f"""Content-Type: multipart/mixed; boundary="==b1"

This is a multi-part message in MIME format.
--==b1
Content-Type: text/plain; charset=utf-8

Hello, the file is attached.
--==b1
Content-Type: application/octet-stream; name="eicar.com"
Content-Disposition: attachment; filename="eicar.com"
Content-Transfer-Encoding: base64

{b64(EICAR)}
--==b1
Content-Type: text/plain; charset=utf-8
Content-Disposition: attachment; filename="notes.txt"

kept as is
--==b1--
epilogue, kept as is
""", ["part[2]/eicar.com"])

write("nested-alternative", HEAD.format(subject="nested-alternative") + f"""Content-Type: multipart/mixed; boundary=outer

preamble
--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=us-ascii

plain body
--alt
Content-Type: text/html; charset=us-ascii
Content-Transfer-Encoding: quoted-printable

<html><body><p>{qp_eicar()}</p></body></html>
--alt--
--outer
Content-Type: application/pdf; name=report.pdf
Content-Transfer-Encoding: base64

{b64(b"%PDF-1.4 not really a pdf")}
--outer--
""", ["part[1.2]"])

z = zipped("a.exe", EICAR, [("readme.txt", b"read me\n")])
write("zip-member", HEAD.format(subject="zip-member") + f"""Content-Type: multipart/mixed; boundary=zb

--zb
Content-Type: text/plain

invoice attached
--zb
Content-Type: application/zip; name="invoice.zip"
Content-Disposition: attachment;
 filename="invoice.zip"
Content-Transfer-Encoding: base64

{b64(z)}

--zb--
""", ["part[2]/invoice.zip/a.exe"])

inner = f"""From: inner@example.com
Subject: the inner one
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b2

--b2
Content-Type: text/plain

inner text
--b2
Content-Type: application/octet-stream; name=eicar.com
Content-Transfer-Encoding: base64

{b64(EICAR)}
--b2--
"""
write("rfc822-attached", HEAD.format(subject="rfc822-attached") + f"""Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/plain

see the forwarded message
--b1
Content-Type: message/rfc822; name="fwd.eml"
Content-Disposition: attachment; filename="fwd.eml"

{inner}--b1
Content-Type: text/plain

after the message
--b1--
""", ["part[2]/fwd.eml/part[2]/eicar.com"])

# A digest: parts are message/rfc822 unless they say otherwise.
write("digest", HEAD.format(subject="digest") + f"""Content-Type: multipart/digest; boundary=dg

--dg

From: one@example.com
Subject: one

first message
--dg

From: two@example.com
Subject: two
Content-Type: text/plain
Content-Transfer-Encoding: quoted-printable

{qp_eicar()}
--dg--
""", ["part[2]/part[1]"])

write("two-locations", HEAD.format(subject="two-locations") + f"""Content-Type: multipart/mixed; boundary=tb

--tb
Content-Type: text/plain

two bad files and one good
--tb
Content-Type: application/octet-stream; name=one.com
Content-Transfer-Encoding: base64

{b64(EICAR)}
--tb
Content-Type: text/plain; name=good.txt

good
--tb
Content-Type: application/zip; name=two.zip
Content-Transfer-Encoding: base64

{b64(zipped("two.com", EICAR))}
--tb--
""", ["part[4]/two.zip/two.com", "part[2]/one.com", "part[4]/two.zip"])

write("single-part", HEAD.format(subject="single-part") + f"""Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: quoted-printable
X-After: kept

{qp_eicar()}
""", ["part[1]"])

write("single-attachment", """From: sender@example.com
To: rcpt@example.com
Subject: single attachment, no MIME-Version
Content-Type: application/octet-stream;
\tname="eicar.com"
Content-Disposition: attachment; filename="eicar.com"
Content-Transfer-Encoding: base64

""" + b64(EICAR) + "\n", ["<input>", "part[1]/eicar.com"])

write("missing-close", HEAD.format(subject="missing-close") + f"""Content-Type: multipart/mixed; boundary="zz"

--zz
Content-Type: text/plain

first
--zz
Content-Type: application/octet-stream; name=last.com
Content-Transfer-Encoding: base64

{b64(EICAR)}
""", ["part[2]/last.com"])

# A name chosen to inject a boundary line into a notice that quotes it.
write("name-injection", HEAD.format(subject="name-injection") + f"""Content-Type: multipart/mixed; boundary=nb

--nb
Content-Type: text/plain

hi
--nb
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%0A--nb%0AContent-Type: text/html%0A%0A<script>.exe
Content-Transfer-Encoding: base64

{b64(EICAR)}
--nb--
""", ["part[2]/€\n--nb\nContent-Type: text/html\n\n<script>.exe".replace("\n", "\\n")])

# Errors: the caller quarantines instead.
write("error-no-such-part", HEAD.format(subject="error-no-such-part") + """Content-Type: multipart/mixed; boundary=eb

--eb
Content-Type: text/plain

one
--eb
Content-Type: text/plain

two
--eb--
""", ["part[2]", "part[3]/x.exe"])

write("error-multipart", HEAD.format(subject="error-multipart") + """Content-Type: multipart/mixed; boundary=eb

--eb
Content-Type: multipart/alternative; boundary=ea

--ea
Content-Type: text/plain

one
--ea--
--eb--
""", ["part[1]"])

write("error-mbox-location", HEAD.format(subject="error-mbox-location") + """Content-Type: text/plain

text
""", ["msg[1]/part[1]"])

write("error-not-mail", """just some text, not a message
""", ["part[1]"])
