#!/usr/bin/env python3
"""Generates the doc-* golden cases (PDF, OLE2 with VBA, RTF) in
tests/corpus/documents/ and tests/corpus/heuristics/. Deterministic; needs only
Python 3 and `cryptography` (for the AES-encrypted PDFs).

    python3 crates/decode/tests/corpus/documents/make/make_docs.py
"""
import hashlib
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = os.path.normpath(os.path.join(HERE, ".."))
HEUR = os.path.normpath(os.path.join(HERE, "..", "..", "heuristics"))


def write(dirname, name, data, expect):
    with open(os.path.join(dirname, name), "wb") as f:
        f.write(data)
    with open(os.path.join(dirname, name + ".expect"), "w") as f:
        f.write(expect.strip() + "\n")


# ---------------------------------------------------------------- PDF writer

def pdf(objs, trailer_extra=b"", head=b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"):
    """objs: list of (num, body bytes). Writes a classic xref (which the reader ignores)."""
    out = bytearray(head)
    offs = {}
    for num, body in objs:
        offs[num] = len(out)
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    size = max(offs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for n in range(1, size):
        out += b"%010d 00000 n \n" % offs.get(n, 0)
    out += b"trailer\n<< /Size %d /Root 1 0 R " % size + trailer_extra + b">>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def stream(dict_body, data):
    return b"<< " + dict_body + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>"
CONTENT = stream(b"", b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET")


def pdf_cases():
    js = b"app.alert('mxguard-openaction');"
    write(HEUR, "doc-pdf-openaction-js.pdf", pdf([
        (1, b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>"),
        (2, PAGES), (3, PAGE), (4, CONTENT),
        (5, b"<< /Type /Action /S /JavaScript /JS 6 0 R >>"),
        (6, stream(b"/Filter /FlateDecode", zlib.compress(js))),
    ]), """
# /OpenAction -> indirect action -> JavaScript in a Flate stream.
finding Heuristics.PDF.JavaScript.AutoRun at obj[1]
object obj[5]/javascript text=mxguard-openaction
object obj[6] contains=app.alert
no-finding Heuristics.PDF.Launch
""")

    write(HEUR, "doc-pdf-launch.pdf", pdf([
        (1, b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /Launch /Win << /F (cmd.exe) /P (/c calc) >> >> >>"),
        (2, PAGES), (3, PAGE), (4, CONTENT),
    ]), """
finding Heuristics.PDF.Launch at obj[1]
no-finding Heuristics.PDF.JavaScript.
""")

    # Hex-escaped names and a page /AA open action; JS as a literal string.
    write(HEUR, "doc-pdf-hexnames-aa.pdf", pdf([
        (1, CATALOG), (2, PAGES),
        (3, b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /AA << /O << /S /J#61va#53cript /J#53 (this.exportDataObject\\({cName: 'x'}\\)) >> >> >>"),
        (4, CONTENT),
    ]), """
# /J#61va#53cript is /JavaScript, /J#53 is /JS.
finding Heuristics.PDF.JavaScript.AutoRun at obj[3]
object obj[3]/javascript text=this.exportDataObject({cName: 'x'})
""")

    payload = b"This is an attached invoice, plain text.\r\n"
    write(DOCS, "doc-pdf-embedded.pdf", pdf([
        (1, b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(a) 5 0 R] >> >> >>"),
        (2, PAGES), (3, PAGE), (4, CONTENT),
        (5, b"<< /Type /Filespec /F (old.txt) /UF <FEFF0069006E0076006F006900630065002E007400780074> /EF << /F 6 0 R >> >>"),
        (6, stream(b"/Type /EmbeddedFile /Filter /FlateDecode", zlib.compress(payload))),
    ]), """
# /UF (UTF-16BE) wins over /F.
object invoice.txt name=invoice.txt contains=attached\\sinvoice
object obj[4] contains=Hello
no-findings
""")

    # Object stream holding the catalog (with /OpenAction) and the JS action.
    o1 = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 7 0 R >>"
    o7 = b"<< /S /JavaScript /JS (app.launchURL\\('http://example.invalid/'\\)) >>"
    hdr = b"1 0 7 %d " % (len(o1) + 1)
    body = hdr + o1 + b" " + o7
    objstm = stream(b"/Type /ObjStm /N 2 /First %d /Filter /FlateDecode" % len(hdr), zlib.compress(body))
    write(HEUR, "doc-pdf-objstm.pdf", pdf([(2, PAGES), (3, PAGE), (4, CONTENT), (9, objstm)]), """
# Catalog and action live only inside a compressed object stream.
finding Heuristics.PDF.JavaScript.AutoRun at obj[1]
object obj[7]/javascript text=app.launchURL
""")

    # Flate + PNG Up predictor, then a chain ASCIIHex -> Flate.
    rows = [b"row one of the predicted stream!", b"row two of the predicted stream!"]
    cols = len(rows[0])
    raw = b""
    prev = bytes(cols)
    for r in rows:
        raw += b"\x02" + bytes((a - b) & 0xff for a, b in zip(r, prev))
        prev = r
    chain = zlib.compress(b"text behind a hex and flate chain").hex().encode() + b">"
    write(DOCS, "doc-pdf-filters.pdf", pdf([
        (1, CATALOG), (2, PAGES), (3, PAGE), (4, CONTENT),
        (5, stream(b"/Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns %d >>" % cols, zlib.compress(raw))),
        (6, stream(b"/Filter [/AHx /Fl]", chain)),
        (7, stream(b"/Filter /A85", b"<~87cURD]i,\"Ebo80~>")),
        (8, stream(b"/Filter /RunLengthDecode", b"\x04abcde\xfcz\x80")),
    ]), """
object obj[5] contains=row\\sone\\sof\\sthe\\spredicted\\sstream!row\\stwo
object obj[6] contains=text\\sbehind\\sa\\shex
object obj[7] contains=Hello\\sWorld!
object obj[8] contains=abcdezzzzz
no-findings
""")

    write(DOCS, "doc-pdf-uri.pdf", pdf([
        (1, CATALOG), (2, PAGES),
        (3, b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Annots [5 0 R] >>"), (4, CONTENT),
        (5, b"<< /Type /Annot /Subtype /Link /Rect [0 0 100 20] /A << /S /URI /URI (https://login.example.invalid/reset) >> >>"),
    ]), """
object <input> link=https://login.example.invalid/reset
no-findings
""")

    # Unknown filter -> unscannable; a DCT image is skipped silently.
    write(HEUR, "doc-pdf-unknown-filter.pdf", pdf([
        (1, CATALOG), (2, PAGES), (3, PAGE), (4, CONTENT),
        (5, stream(b"/Filter /FooDecode", b"opaque")),
        (6, stream(b"/Type /XObject /Subtype /Image /Width 1 /Height 1 /Filter /DCTDecode", b"\xff\xd8\xff\xe0 jpeg")),
        (7, stream(b"/Filter /DCTDecode", b"\xff\xd8\xff\xe0 jpeg")),
    ]), """
finding Heuristics.Unscannable.PDF at obj[5]
object obj[4]
objects 2
""")

    # Incremental update + garbage before the header: the later object 4 wins.
    base = pdf([(1, CATALOG), (2, PAGES), (3, PAGE), (4, stream(b"", b"old content"))])
    upd = b"4 0 obj\n" + stream(b"", b"new content") + b"\nendobj\ntrailer\n<< /Size 5 /Root 1 0 R >>\n%%EOF\n"
    write(DOCS, "doc-pdf-incremental.pdf", b"GARBAGE\x00\x01 before the header\n" + base + upd, """
object obj[4] contains=new\\scontent
no-findings
""")

    encrypted_cases()


# ----------------------------------------------------- PDF standard security

PAD = bytes.fromhex("28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a")


def rc4(key, data):
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    i = j = 0
    out = bytearray()
    for c in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(c ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def pad_pw(pw):
    return (pw + PAD)[:32]


def r34_keys(user_pw, owner_pw, p, id0, n, r):
    # Algorithm 3 (O), 2 (key), 5 (U).
    h = hashlib.md5(pad_pw(owner_pw)).digest()
    for _ in range(50):
        h = hashlib.md5(h).digest()
    ok = h[:n]
    o = rc4(ok, pad_pw(user_pw))
    for i in range(1, 20):
        o = rc4(bytes(b ^ i for b in ok), o)
    k = hashlib.md5(pad_pw(user_pw) + o + struct.pack("<i", p) + id0).digest()
    for _ in range(50):
        k = hashlib.md5(k[:n]).digest()
    k = k[:n]
    u = rc4(k, hashlib.md5(PAD + id0).digest())
    for i in range(1, 20):
        u = rc4(bytes(b ^ i for b in k), u)
    return o, k, u + bytes(16)


def obj_key(k, num, aes):
    h = hashlib.md5(k + struct.pack("<I", num)[:3] + b"\x00\x00" + (b"sAlT" if aes else b"")).digest()
    return h[: min(len(k) + 5, 16)]


def aes_cbc(key, data, iv=b"\x01" * 16):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    padn = 16 - len(data) % 16
    data = data + bytes([padn]) * padn
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + e.update(data) + e.finalize()


def enc_pdf(user_pw, aes):
    id0 = bytes(range(16))
    p = -4
    o, k, u = r34_keys(user_pw, b"owner", p, id0, 16, 4 if aes else 3)

    def enc(num, data):
        ok = obj_key(k, num, aes)
        return aes_cbc(ok, data) if aes else rc4(ok, data)

    content = enc(4, b"BT (secret page text) Tj ET")
    js = enc(5, b"app.alert('encrypted js');")
    if aes:
        edict = (b"<< /Filter /Standard /V 4 /R 4 /Length 128 /CF << /StdCF << /CFM /AESV2 /AuthEvent /DocOpen /Length 16 >> >> /StmF /StdCF /StrF /StdCF /O <%s> /U <%s> /P %d >>"
                 % (o.hex().encode(), u.hex().encode(), p))
    else:
        edict = b"<< /Filter /Standard /V 2 /R 3 /Length 128 /O <%s> /U <%s> /P %d >>" % (o.hex().encode(), u.hex().encode(), p)
    return pdf([
        (1, b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>"), (2, PAGES), (3, PAGE),
        (4, stream(b"", content)),
        (5, b"<< /S /JavaScript /JS <%s> >>" % js.hex().encode()),
        (6, edict),
    ], trailer_extra=b"/Encrypt 6 0 R /ID [<%s> <%s>] " % (id0.hex().encode(), id0.hex().encode()))


def sha256(b):
    return hashlib.sha256(b).digest()


def r6_hash(pw, salt, udata):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    k = sha256(pw + salt + udata)
    i = 0
    while True:
        k1 = (pw + k + udata) * 64
        e = Cipher(algorithms.AES(k[:16]), modes.CBC(k[16:32])).encryptor()
        E = e.update(k1) + e.finalize()
        m = sum(E[:16]) % 3
        k = [hashlib.sha256, hashlib.sha384, hashlib.sha512][m](E).digest()
        i += 1
        if i >= 64 and E[-1] <= i - 32:
            break
    return k[:32]


def enc_pdf_aes256():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    file_key = bytes(range(100, 132))
    vsalt, ksalt = b"vsalt123", b"ksalt456"
    u = r6_hash(b"", vsalt, b"") + vsalt + ksalt
    ik = r6_hash(b"", ksalt, b"")
    e = Cipher(algorithms.AES(ik), modes.CBC(bytes(16))).encryptor()
    ue = e.update(file_key) + e.finalize()
    content = aes_cbc(file_key, b"BT (aes256 page text) Tj ET")
    edict = (b"<< /Filter /Standard /V 5 /R 6 /Length 256 /CF << /StdCF << /CFM /AESV3 /Length 32 >> >> /StmF /StdCF /StrF /StdCF /O <%s> /U <%s> /OE <%s> /UE <%s> /P -4 /Perms <%s> >>"
             % ((bytes(48)).hex().encode(), u.hex().encode(), bytes(32).hex().encode(), ue.hex().encode(), bytes(16).hex().encode()))
    return pdf([(1, CATALOG), (2, PAGES), (3, PAGE), (4, stream(b"", content)), (6, edict)],
               trailer_extra=b"/Encrypt 6 0 R /ID [<00> <00>] ")


def encrypted_cases():
    write(HEUR, "doc-pdf-encrypted-password.pdf", enc_pdf(b"secret", False), """
# RC4-128 with a real user password: reported, nothing pretended.
finding Heuristics.Encrypted.PDF at <input>
objects 1
""")
    write(DOCS, "doc-pdf-encrypted-empty-rc4.pdf", enc_pdf(b"", False), """
# Empty user password (permissions only): decrypted and scanned.
no-finding Heuristics.Encrypted.
object obj[4] contains=secret\\spage\\stext
object obj[5]/javascript text=encrypted js
finding Heuristics.PDF.JavaScript.AutoRun at obj[1]
""")
    write(DOCS, "doc-pdf-encrypted-empty-aes128.pdf", enc_pdf(b"", True), """
no-finding Heuristics.Encrypted.
object obj[4] contains=secret\\spage\\stext
object obj[5]/javascript text=encrypted js
""")
    write(DOCS, "doc-pdf-encrypted-empty-aes256.pdf", enc_pdf_aes256(), """
# V5 R6 (AES-256), empty user password.
no-finding Heuristics.Encrypted.
object obj[4] contains=aes256\\spage\\stext
""")


# ---------------------------------------------------------------- CFB writer

def cfb(streams):
    """streams: {"VBA/dir": bytes, ...}. Version 3 (512-byte sectors), mini stream for < 4096."""
    SEC = 512
    # Build the tree of storages.
    tree = {"": {}}
    for path in streams:
        parts = path.split("/")
        for i in range(1, len(parts)):
            tree.setdefault("/".join(parts[:i]), {})
    entries = []  # dicts: name, type, path

    def key(n):
        return (len(n), n.upper())

    # Index entries: root first.
    paths = sorted(set(list(tree.keys()) + list(streams.keys())), key=lambda p: (p.count("/"), p))
    idx = {p: i for i, p in enumerate(paths)}
    children = {p: [] for p in tree}
    for p in paths:
        if p == "":
            continue
        parent = p.rsplit("/", 1)[0] if "/" in p else ""
        children[parent].append(p)
    mini = bytearray()
    minifat = []
    big = bytearray()
    fat_chain_big = []  # (start index within big sectors, count)
    info = {}
    for p in paths:
        if p in streams:
            data = streams[p]
            if len(data) < 4096:
                start = len(mini) // 64
                n = (len(data) + 63) // 64
                mini += data + bytes(n * 64 - len(data))
                for i in range(n):
                    minifat.append(start + i + 1 if i < n - 1 else 0xFFFFFFFE)
                info[p] = ("mini", start if n else 0xFFFFFFFE, len(data))
            else:
                start = len(big) // SEC
                n = (len(data) + SEC - 1) // SEC
                big += data + bytes(n * SEC - len(data))
                info[p] = ("big", start, len(data), n)
    # Sector layout: [FAT][DIR][MINIFAT][MINISTREAM][BIG]
    ndir = (len(paths) * 128 + SEC - 1) // SEC
    nminifat = (len(minifat) * 4 + SEC - 1) // SEC
    nmini = (len(mini) + SEC - 1) // SEC
    nbig = len(big) // SEC
    nfat = 1
    while True:
        total = nfat + ndir + nminifat + nmini + nbig
        if nfat * 128 >= total:
            break
        nfat += 1
    fat = []
    fat += [0xFFFFFFFD] * nfat
    def chain(start, n):
        return [start + i + 1 if i < n - 1 else 0xFFFFFFFE for i in range(n)]
    dir_start = nfat
    fat += chain(dir_start, ndir)
    minifat_start = dir_start + ndir
    fat += chain(minifat_start, nminifat)
    mini_start = minifat_start + nminifat
    fat += chain(mini_start, nmini)
    big_start = mini_start + nmini
    for p, v in info.items():
        pass
    bigfat = [0] * nbig
    for p, v in info.items():
        if v[0] == "big":
            s, n = v[1], v[3]
            for i in range(n):
                bigfat[s + i] = big_start + s + i + 1 if i < n - 1 else 0xFFFFFFFE
    fat += bigfat
    fat += [0xFFFFFFFF] * (nfat * 128 - len(fat))
    # Directory entries.
    d = bytearray()
    for p in paths:
        name = "Root Entry" if p == "" else p.rsplit("/", 1)[-1]
        nm = name.encode("utf-16-le") + b"\x00\x00"
        typ = 5 if p == "" else (2 if p in streams else 1)
        left = right = 0xFFFFFFFF
        child = 0xFFFFFFFF
        if typ != 2:
            kids = sorted(children.get(p, []), key=lambda c: key(c.rsplit("/", 1)[-1]))
            if kids:
                child = idx[kids[0]]
        # Right sibling: next in sorted order among the parent's children.
        if p != "":
            parent = p.rsplit("/", 1)[0] if "/" in p else ""
            sib = sorted(children[parent], key=lambda c: key(c.rsplit("/", 1)[-1]))
            j = sib.index(p)
            if j + 1 < len(sib):
                right = idx[sib[j + 1]]
        if p == "":
            start, size = (mini_start if nmini else 0xFFFFFFFE), len(mini)
        elif p in streams:
            v = info[p]
            start, size = (v[1], v[2]) if v[0] == "mini" else (big_start + v[1], v[2])
        else:
            start, size = 0, 0
        e = nm.ljust(64, b"\x00") + struct.pack("<HBBIII", len(nm), typ, 1, left, right, child)
        e += bytes(16) + bytes(4) + bytes(16) + struct.pack("<IQ", start, size)
        d += e
    d += bytes(ndir * SEC - len(d))
    mf = b"".join(struct.pack("<I", x) for x in minifat)
    mf += b"\xff" * (nminifat * SEC - len(mf))
    hdr = bytearray(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16))
    hdr += struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
    hdr += struct.pack("<IIIIIIII", 0, nfat, dir_start, 0, 4096,
                       minifat_start if nminifat else 0xFFFFFFFE, nminifat, 0xFFFFFFFE)
    hdr += struct.pack("<I", 0)  # number of DIFAT sectors
    difat = list(range(nfat)) + [0xFFFFFFFF] * (109 - nfat)
    hdr = hdr[:76] + b"".join(struct.pack("<I", x) for x in difat)
    assert len(hdr) == 512, len(hdr)
    fatb = b"".join(struct.pack("<I", x) for x in fat)
    return bytes(hdr) + fatb + bytes(d) + mf + bytes(mini) + bytes(nmini * SEC - len(mini)) + bytes(big)


def vba_compress(data):
    """MS-OVBA container of literal-only compressed chunks (valid, not small)."""
    out = bytearray(b"\x01")
    for i in range(0, len(data), 4096):
        chunk = data[i:i + 4096]
        body = bytearray()
        for j in range(0, len(chunk), 8):
            body.append(0)
            body += chunk[j:j + 8]
        if len(body) + 2 <= 4098:
            out += struct.pack("<H", 0xB000 | (len(body) + 2 - 3)) + body
        else:
            out += struct.pack("<H", 0x3000 | (4096 + 2 - 3)) + chunk.ljust(4096, b" ")
    return bytes(out)


def rec(rid, body):
    return struct.pack("<HI", rid, len(body)) + body


def vba_project(modules, prefix):
    """modules: [(name, source)] -> {path: bytes} for a VBA storage at prefix."""
    d = rec(0x0001, struct.pack("<I", 1)) + rec(0x0003, struct.pack("<H", 1252))
    d += struct.pack("<HIIH", 0x0009, 4, 1, 0)  # PROJECTVERSION: size says 4, 6 bytes follow
    d += rec(0x000F, struct.pack("<H", len(modules))) + rec(0x0013, b"\xff\xff")
    files = {}
    for name, src in modules:
        n = name.encode()
        d += rec(0x0019, n) + rec(0x0047, name.encode("utf-16-le"))
        d += rec(0x001A, n) + rec(0x0032, name.encode("utf-16-le"))
        d += rec(0x001C, b"") + rec(0x0048, b"")
        cache = b"\xcc" * 37  # stand-in for the p-code performance cache
        d += rec(0x0031, struct.pack("<I", len(cache)))
        d += rec(0x001E, struct.pack("<I", 0)) + rec(0x002C, struct.pack("<H", 0xFFFF))
        d += rec(0x0021, b"") + struct.pack("<HI", 0x002B, 0)
        files[prefix + "/" + name] = cache + vba_compress(src.encode())
    d += struct.pack("<HI", 0x0010, 0)
    files[prefix + "/dir"] = vba_compress(d)
    files[prefix + "/_VBA_PROJECT"] = b"\xcc\x61\xff\xff\x00" + bytes(2)
    return files


def package(label, data):
    body = struct.pack("<H", 2) + label + b"\x00" + b"C:\\tmp\\" + label + b"\x00"
    body += struct.pack("<HH", 0, 3)
    tmp = b"C:\\Users\\x\\AppData\\Local\\Temp\\" + label + b"\x00"
    body += struct.pack("<I", len(tmp)) + tmp + struct.pack("<I", len(data)) + data
    return body


def ole_cases():
    bad = ("Attribute VB_Name = \"Module1\"\r\nSub AutoOpen()\r\n    Dim x\r\n"
           "    x = Shell(\"cmd /c powershell -enc ZQBjAGgAbwA=\", 0)\r\nEnd Sub\r\n")
    files = vba_project([("Module1", bad)], "Macros/VBA")
    files["WordDocument"] = b"\xec\xa5" + bytes(600)
    files["Macros/PROJECT"] = b"ID=\"{00000000-0000-0000-0000-000000000000}\"\r\nModule=Module1\r\n"
    write(HEUR, "doc-ole2-macro-autorun-shell.doc", cfb(files), """
object vba/Module1 text=Sub AutoOpen()
object Macros/VBA/dir
finding Heuristics.Macro.AutoRun.Dangerous at vba/Module1
""")

    # Entry point in ThisDocument, the call in another module of the same project.
    this = "Attribute VB_Name = \"ThisDocument\"\r\nPrivate Sub Document_Open()\r\n    Helper.Run\r\nEnd Sub\r\n"
    helper = ("Attribute VB_Name = \"Helper\"\r\nSub Run()\r\n    Set o = CreateObject(\"WScript.Shell\")\r\n"
              "    o.Run \"calc\"\r\nEnd Sub\r\n" + "' padding comment line\r\n" * 200)
    files = vba_project([("ThisDocument", this), ("Helper", helper)], "_VBA_PROJECT_CUR/VBA")
    files["Workbook"] = struct.pack("<HH", 0x0809, 4) + bytes(4) + struct.pack("<HH", 0x000A, 0)
    write(HEUR, "doc-ole2-macro-split-modules.xls", cfb(files), """
# Helper's source is larger than the mini-stream cutoff: read from regular sectors.
object vba/Helper text=WScript.Shell
finding Heuristics.Macro.AutoRun.Dangerous at vba/ThisDocument
""")

    harmless = ("Attribute VB_Name = \"ThisDocument\"\r\nSub Document_Open()\r\n"
                "    ' Shell and CreateObject are only mentioned in this comment\r\n"
                "    ActiveDocument.Fields.Update\r\n    MsgBox \"Totals updated\"\r\nEnd Sub\r\n")
    files = vba_project([("ThisDocument", harmless)], "Macros/VBA")
    files["WordDocument"] = b"\xec\xa5" + bytes(600)
    write(DOCS, "doc-ole2-macro-harmless.doc", cfb(files), """
object vba/ThisDocument text=Fields.Update
no-finding Heuristics.Macro.
""")

    payload = b"@echo off\r\nrem mxguard package payload\r\n"
    pkg = package(b"run.bat", payload)
    ole = cfb({"\x01Ole10Native": struct.pack("<I", len(pkg)) + pkg,
               "\x01CompObj": b"\x01\x00\xfe\xff" + bytes(20)})
    write(DOCS, "doc-ole2-package.bin", ole, """
object \\\\x01Ole10Native/run.bat name=run.bat contains=mxguard\\spackage\\spayload
no-findings
""")

    write(HEUR, "doc-ole2-encrypted-ooxml.docx", cfb({
        "EncryptionInfo": struct.pack("<HHI", 4, 4, 0x40) + b"<encryption/>",
        "EncryptedPackage": struct.pack("<Q", 1000) + bytes(range(256)) * 20,
    }), """
finding Heuristics.Encrypted.Office at <input>
""")

    fib = bytearray(b"\xec\xa5" + bytes(600))
    fib[11] |= 0x01
    write(HEUR, "doc-ole2-word-encrypted.doc", cfb({"WordDocument": bytes(fib), "1Table": bytes(100)}), """
finding Heuristics.Encrypted.Office at <input>
""")
    return ole


def rtf_cases(ole_package):
    payload = b"@echo off\r\nrem rtf package payload\r\n"
    pkg = package(b"setup.bat", payload)

    def ole1(cls, native):
        c = cls + b"\x00"
        return (struct.pack("<II", 0x0501, 2) + struct.pack("<I", len(c)) + c
                + struct.pack("<I", 0) + struct.pack("<I", 0) + struct.pack("<I", len(native)) + native)

    hx = ole1(b"Package", pkg).hex()
    lines = "\r\n".join(hx[i:i + 128] for i in range(0, len(hx), 128))
    doc = ("{\\rtf1\\ansi\\deff0 {\\fonttbl{\\f0 Arial;}}\\pard Hello\\par\r\n"
           "{\\object\\objemb\\objw855\\objh765{\\*\\objclass Package}{\\*\\objdata " + lines + "}}\\par}\r\n")
    write(DOCS, "doc-rtf-objdata-package.rtf", doc.encode(), """
object objdata[0]/setup.bat name=setup.bat contains=rtf\\spackage\\spayload
object objdata[0]
""")

    # Obfuscated: control words, {\*\..} groups, \'hh and whitespace between digits.
    hx = ole1(b"Package", pkg).hex()
    parts = []
    for i in range(0, len(hx), 6):
        parts.append(hx[i:i + 6])
        k = (i // 6) % 4
        parts.append(["\\par ", "{\\*\\mxjunk 4142}", " \r\n\t", "\\'41"][k])
    doc = "{\\rtf1{\\object\\objemb{\\*\\objdata " + "".join(parts) + "}}}"
    write(DOCS, "doc-rtf-objdata-obfuscated.rtf", doc.encode(), """
object objdata[0]/setup.bat contains=rtf\\spackage\\spayload
""")

    # An OLE2 compound file as the native data: nested reader opens it.
    hx = ole1(b"Word.Document.8", ole_package).hex()
    doc = "{\\rtf1{\\object\\objemb{\\*\\objclass Word.Document.8}{\\*\\objdata\r\n" + hx + "\r\n}}}"
    write(DOCS, "doc-rtf-objdata-ole2.rtf", doc.encode(), """
object objdata[0] type=ole2
object objdata[0]/\\\\x01Ole10Native/run.bat contains=mxguard\\spackage\\spayload
""")


if __name__ == "__main__":
    os.makedirs(HEUR, exist_ok=True)
    pdf_cases()
    ole = ole_cases()
    rtf_cases(ole)
    print("written")
