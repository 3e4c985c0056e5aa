#!/usr/bin/env python3
"""Generates the mime-* golden cases (small ones written inline here, large ones
by loops). Run from this directory's parent: python3 bombs/mime-gen.py"""
import base64, os

def w(path, data, expect):
    if isinstance(data, str):
        data = data.encode("latin-1")
    open(path, "wb").write(data)
    open(path + ".expect", "w").write(expect)

def uu(data):
    out = []
    for i in range(0, len(data), 45):
        chunk = data[i:i+45]
        line = chr(32 + len(chunk))
        for j in range(0, len(chunk), 3):
            c = chunk[j:j+3] + b"\0\0"
            v = c[0] << 16 | c[1] << 8 | c[2]
            line += "".join(chr(32 + ((v >> s) & 63)) if ((v >> s) & 63) else "`" for s in (18, 12, 6, 0))
        out.append(line)
    out.append("`")
    return "\n".join(out) + "\n"

EXE = b"MZ\x90\x00\x03\x00\x00\x00test program bytes"
B64EXE = base64.encodebytes(EXE).decode()

# ---------- rfc ----------
w("rfc/mime-nested-multipart.eml", f"""From: a@example.com
To: b@example.com
Subject: nested
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is the preamble.
--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

plain body
--alt
Content-Type: text/html; charset=utf-8

<html><body>html body</body></html>
--alt--
--outer
Content-Type: application/octet-stream; name="tool.exe"
Content-Disposition: attachment; filename="tool.exe"
Content-Transfer-Encoding: base64

{B64EXE}
--outer--
epilogue
""", """# multipart/mixed holding multipart/alternative: IMAP section numbers
object part[1.1] declared=text/plain text=plain body
object part[1.2] declared=text/html contains=html body
object part[2]/tool.exe name=tool.exe type=pe declared=application/octet-stream contains=MZ\\x90
objects 4
""")

w("rfc/mime-rfc822-attached.eml", """From: a@example.com
Subject: forward
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/plain

see attached
--b1
Content-Type: message/rfc822

From: inner@example.com
Subject: the inner one
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b2

--b2
Content-Type: text/plain

inner text
--b2
Content-Type: application/zip; name=inner.zip
Content-Transfer-Encoding: base64

UEsDBAoAAAAAAA==
--b2--
--b1--
""", """# the attached message is one child, re-parsed by the walk
object part[2] type=mail declared=message/rfc822 contains=Subject: the inner one
object part[2]/part[1] text=inner text
object part[2]/part[2]/inner.zip name=inner.zip declared=application/zip
# its parts are not also emitted at the outer level
objects 5
""")

inner = b"From: level5@example.com\nSubject: bottom\nContent-Type: text/plain\n\nthe bottom of five\n"
for lvl in range(4, 0, -1):
    enc = base64.encodebytes(inner).decode()
    inner = (f"From: level{lvl}@example.com\nSubject: level {lvl}\nMIME-Version: 1.0\n"
             f"Content-Type: multipart/mixed; boundary=L{lvl}\n\n--L{lvl}\nContent-Type: message/rfc822\n"
             f"Content-Transfer-Encoding: base64\n\n{enc}--L{lvl}--\n").encode()
w("rfc/mime-nested5-base64.eml", inner, """# five messages, each base64-encoded inside the previous (mail-parser alone stops after 3)
object part[1]/part[1]/part[1]/part[1]/part[1] text=the bottom of five
no-finding Heuristics.Limits.
""")

w("rfc/mime-encoded-names.eml", f"""From: a@example.com
Subject: names
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=nm

--nm
Content-Type: application/pdf; name="=?UTF-8?B?UmVjaG51bmctTcOkcnoucGRm?="
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--nm
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=utf-8''%E2%82%AC-rates.exe
Content-Transfer-Encoding: base64

{B64EXE}
--nm
Content-Type: application/octet-stream
Content-Disposition: attachment;
 filename*0*=iso-8859-1''caf%E9;
 filename*1="-menu";
 filename*2*=%2Etxt

menu
--nm
Content-Type: text/plain; name="=?iso-8859-1?Q?r=E9sum=E9?= =?iso-8859-1?Q?-2024.txt?="

resume
--nm--
""", """# RFC 2047 in name=, RFC 2231 with charset, RFC 2231 continuations
object part[1]/Rechnung-März.pdf name=Rechnung-März.pdf type=pdf
object part[2]/€-rates.exe name=€-rates.exe type=pe
object part[3]/café-menu.txt name=café-menu.txt
object part[4]/résumé-2024.txt name=résumé-2024.txt
""")

w("rfc/mime-folded-name.eml", f"""From: a@example.com
Subject: folded
MIME-Version: 1.0
Content-Type: multipart/mixed;
\tboundary="fold"

--fold
Content-Type: application/octet-stream;
\tname="a.exe"
Content-Transfer-Encoding: base64

{B64EXE}
--fold
Content-Type: application/octet-stream
Content-Disposition: attachment;
    filename=
     "b.scr"

MZ
--fold--
""", """# name= and filename= folded onto the next line (mail-parser 0.11 drops these)
object part[1]/a.exe name=a.exe type=pe
object part[2]/b.scr name=b.scr
""")

w("rfc/mime-quoted-printable.eml", """From: a@example.com
Subject: qp
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe aus K=F6ln, this line is long and continues on the next one wit=
hout a break; an equals sign is written =3D.
""", """# a single-part message: its body is part[1], decoded from QP and Latin-1
object part[1] declared=text/plain text=Grüße aus Köln
object part[1] text=next one without a break; an equals sign is written =.
object part[1] contains=Gr\\xfc\\xdfe
objects 2
""")

hello_uu = uu(b"hello from a uuencoded file\n")
w("rfc/mime-uuencode-in-text.eml", f"""From: a@example.com
Subject: uu in text
Content-Type: text/plain

Hello, the file follows.

begin 644 hello.txt
{hello_uu}end

Bye.
""", """# the text body goes to the uuencode reader
object part[1] declared=text/plain
object part[1]/hello.txt name=hello.txt contains=hello from a uuencoded file
""")

w("rfc/mime-two-messages.mbox", f"""From alice@example.com Mon Jan  1 00:00:00 2024
From: alice@example.com
Subject: first

first body
From bob@example.com Tue Jan  2 00:00:00 2024
From: bob@example.com
Subject: second
Content-Type: application/octet-stream; name=x.exe
Content-Transfer-Encoding: base64

{B64EXE}""", """object msg[1] type=mail contains=first body
object msg[1]/part[1] text=first body
object msg[2] type=mail
object msg[2]/part[1]/x.exe type=pe name=x.exe
""")

# ---------- malformed ----------
w("malformed/mime-missing-closing-boundary.eml", f"""From: a@example.com
Subject: truncated
Content-Type: multipart/mixed; boundary="zz"

--zz
Content-Type: text/plain

first
--zz
Content-Type: application/octet-stream; name=last.exe
Content-Transfer-Encoding: base64

{B64EXE}""", """# the last part runs to the end of the message
object part[1] text=first
object part[2]/last.exe type=pe name=last.exe
no-finding Heuristics.Broken.
""")

w("malformed/mime-bad-base64.eml", """From: a@example.com
Subject: bad base64
Content-Type: multipart/mixed; boundary=bb

--bb
Content-Type: application/octet-stream; name=junk.exe
Content-Transfer-Encoding: base64

TVqQ!!AAMA*AAB0
ZXN0IH~~Byb2dy
YW0gYnl0ZX
--bb
Content-Type: application/octet-stream; name=trunc.bin
Content-Transfer-Encoding: base64

aGVsbG8gd29ybGQ
--bb--
""", """# invalid characters skipped; a truncated final quantum keeps its whole bytes
object part[1]/junk.exe type=pe contains=test program byte
object part[2]/trunc.bin contains=hello world
""")

w("malformed/mime-wrong-case.eml", f"""From: a@example.com
Subject: case
mime-version: 1.0
CONTENT-TYPE: MULTIPART/MIXED; BOUNDARY="CaseB"

--CaseB
content-type: Text/Plain; Charset=ISO-8859-1
content-transfer-encoding: Quoted-Printable

caf=E9
--CaseB
Content-type: Application/Octet-Stream; Name="up.exe"
Content-Transfer-Encoding: BASE64

{B64EXE}
--CaseB
Content-Type: application/octet-stream; name=odd.bin
Content-Transfer-Encoding: x-made-up

raw bytes as 7bit
--CaseB--
""", """# header names, types, parameters and encodings in any case; unknown encodings as 7bit
object part[1] declared=text/plain text=café
object part[2]/up.exe type=pe declared=application/octet-stream name=up.exe
object part[3]/odd.bin contains=raw bytes as 7bit
""")

w("malformed/mime-nul-bytes.eml", b"""From: a@example.com
Subject: nul\x00here
Content-Type: multipart/mixed; boundary=nb

--nb
Content-Type: text/plain; name="n\x00ul.txt"

text with a \x00 NUL
--nb
Content-Type: application/octet-stream; name=b.bin
Content-Transfer-Encoding: base64

AAEC
--nb--
""", """# NUL bytes in headers and bodies are ordinary bytes
object part[1]/n\x00ul.txt contains=a \\x00 NUL
object part[2]/b.bin contains=\\x00\\x01\\x02
""")

w("malformed/mime-8bit-headers.eml", "From: a@example.com\nSubject: r\xe9sum\xe9\nContent-Type: multipart/mixed; boundary=e8\n\n--e8\nContent-Type: application/octet-stream; name=\"caf\xc3\xa9.exe\"\n\nMZ\n--e8\nContent-Type: application/octet-stream; name=\"na\xefve.bin\"\n\nbytes\n--e8--\n",
  """# raw 8-bit names: UTF-8 when valid, else Windows-1252
object part[1]/café.exe name=café.exe
object part[2]/naïve.bin name=naïve.bin
""")

w("malformed/mime-boundary-quirks.eml", """From: a@example.com
Subject: boundaries
Content-Type: multipart/mixed; boundary="q1 "

--q1\t
Content-Type: text/plain

one
--q1  
Content-Type: multipart/mixed; boundary="q1"

--q1
Content-Type: text/plain

inner reuses the outer boundary
--q1--
--q1
Content-Type: text/plain

--q1 is not a boundary when it is part of a longer line: --q1x
after
--q1--   
""", """# trailing blanks on boundary lines and in the parameter; an inner multipart
# reusing its parent's boundary (the innermost wins); no blank line before a body
object part[1] text=one
object part[2.1] text=inner reuses the outer boundary
object part[3] text=--q1x
""")

# ---------- bombs ----------
parts = "".join(f"--many\nContent-Type: text/plain\n\npart {i}\n" for i in range(10_050))
w("bombs/mime-10000-parts.eml", f"From: a@example.com\nSubject: many parts\nContent-Type: multipart/mixed; boundary=many\n\n{parts}--many--\n",
  """# more parts than max_objects: the walk stops with MaxFiles
finding Heuristics.Limits.Exceeded.MaxFiles
only lf
""")

w("bombs/mime-1mb-header.eml", "From: a@example.com\nSubject: " + "x" * (1 << 20) + "\nContent-Type: text/plain; x-pad=" + "y" * 1000 + "; name=big.txt\n\nbody after a huge header\n",
  """# a 1 MiB header line is read in linear time
object part[1]/big.txt name=big.txt contains=body after a huge header
only lf
""")

msg = "From: deep@example.com\nSubject: bottom\n\nbottom of the nest\n"
for i in range(30):
    msg = f"From: l{i}@example.com\nSubject: level {i}\nContent-Type: message/rfc822\n\n" + msg
w("bombs/mime-nested-30.eml", msg, """# 30 attached messages in each other: the walk's max_depth (17) stops it
finding Heuristics.Limits.Exceeded.MaxRecursion
object part[1]/part[1]/part[1]/part[1]/part[1] type=mail
""")
