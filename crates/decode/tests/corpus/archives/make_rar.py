#!/usr/bin/env python3
"""Writes the arc-rar-* golden cases (no rar tool is packaged for Debian main).

Minimal but well-formed RAR 4 (technote.txt) and RAR 5.0 archives: correct
header CRCs and data CRCs; stored members (method 0x30 / method 0); an
encrypted member (flag 0x04 with a salt / a file encryption extra record);
a "compressed" member (the method set, the data arbitrary); a directory; an
archive comment service header; a double-extension executable name; a
Unicode name (RAR4 flag 0x200 encoding); truncated archives; archives with
encrypted headers. Run from anywhere: files go next to this script.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
MARKER = b"EICAR-LIKE-MARKER-1234"
TEXT = b"readme: " + MARKER + b"\n"
EXE = b"MZ\x90\x00" + b"\x00" * 60 + b"not really a program " + MARKER


def crc(b):
    return zlib.crc32(b) & 0xFFFFFFFF


# ---------------------------------------------------------------- RAR 4

def block4(ty, flags, body):
    h = bytes([ty]) + struct.pack("<HH", flags, len(body) + 7) + body
    return struct.pack("<H", crc(h) & 0xFFFF) + h


def unicode_name(uname):
    """OEM name, NUL, then the encoded UTF-16 (every char as opcode 2: both bytes)."""
    oem = uname.encode("ascii", "replace")
    units = uname.encode("utf-16-le")
    enc = bytearray([0])  # high byte (unused by opcode 2)
    pairs = [units[i:i + 2] for i in range(0, len(units), 2)]
    for g in range(0, len(pairs), 4):
        grp = pairs[g:g + 4]
        enc.append(0b10101010)
        for p in grp:
            enc += p
    return oem + b"\x00" + bytes(enc)


def file4(name, payload, method=0x30, flags=0, ty=0x74, unicode=None):
    name_b = unicode_name(unicode) if unicode else name.encode()
    if unicode:
        flags |= 0x200
    salt = b""
    if flags & 0x04:
        flags |= 0x400
        salt = b"\x11" * 8
    body = struct.pack(
        "<IIBIIBBHI",
        len(payload), len(payload), 2, crc(payload), 0x5A000000, 29, method,
        len(name_b), 0x10 if (flags & 0xE0) == 0xE0 else 0x20,
    ) + name_b + salt
    return block4(ty, flags | 0x8000, body) + payload


def main4():
    return b"Rar!\x1a\x07\x00" + block4(0x73, 0, b"\x00" * 6)


def end4():
    return block4(0x7B, 0x4000, b"")


def rar4():
    a = main4()
    a += file4("docs", b"", flags=0xE0)
    a += file4("docs\\readme.txt", TEXT)
    a += file4("invoice.pdf.exe", EXE)
    a += file4("secret.txt", b"\x5a" * 32, flags=0x04)
    a += file4("report.doc", b"\x01\x02\x03 compressed bytes", method=0x33)
    a += file4("", MARKER, unicode="docs\\\u0434\u043e\u043a\u0443\u043c\u0435\u043d\u0442.txt")
    a += file4("CMT", b"archive comment", ty=0x7A)
    return a + end4()


# ---------------------------------------------------------------- RAR 5

def vint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def head5(ty, fields, extra=b"", data=None, hflags=0):
    body = vint(ty)
    if extra:
        hflags |= 0x01
    if data is not None:
        hflags |= 0x02
    body += vint(hflags)
    if extra:
        body += vint(len(extra))
    if data is not None:
        body += vint(len(data))
    body += fields + extra
    sized = vint(len(body)) + body
    return struct.pack("<I", crc(sized)) + sized + (data or b"")


def file5(name, payload, method=0, encrypted=False, directory=False, ty=2):
    fflags = 0x0004 | 0x0002 | (0x0001 if directory else 0)
    fields = vint(fflags) + vint(len(payload)) + vint(0x20)
    fields += struct.pack("<II", 0x5F000000, crc(payload))
    fields += vint((method << 7) | 0) + vint(0) + vint(len(name.encode())) + name.encode()
    extra = b""
    if encrypted:
        rec = vint(0x01) + vint(0) + vint(0) + bytes([15]) + b"\x22" * 16 + b"\x33" * 16
        extra = vint(len(rec)) + rec
    return head5(ty, fields, extra, None if directory else payload)


def main5():
    return b"Rar!\x1a\x07\x01\x00" + head5(1, vint(0))


def end5():
    return head5(5, vint(0))


def rar5():
    a = main5()
    a += file5("docs", b"", directory=True)
    a += file5("docs/readme.txt", TEXT)
    a += file5("invoice.pdf.exe", EXE)
    a += file5("secret.txt", b"\x5a" * 32, encrypted=True)
    a += file5("report.doc", b"\x01\x02\x03 compressed bytes", method=3)
    a += file5("docs/\u0434\u043e\u043a\u0443\u043c\u0435\u043d\u0442.txt", MARKER)
    a += file5("CMT", b"archive comment", ty=3)
    return a + end5()


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


if __name__ == "__main__":
    write("arc-rar-v4.rar", rar4())
    write("arc-rar-v5.rar", rar5())
    v4, v5 = rar4(), rar5()
    # Cut in the middle of invoice.pdf.exe's data.
    write("arc-rar-v4-truncated.rar", v4[: v4.index(b"not really") + 5])
    write("arc-rar-v5-truncated.rar", v5[: v5.index(b"not really") + 5])
    # rar -hp: headers encrypted (the rest stands in for AES data).
    write("arc-rar-v4-hp.rar", main4()[:7] + block4(0x73, 0x80, b"\x00" * 6) + b"\x44" * 64)
    enc = vint(0) + vint(0) + bytes([15]) + b"\x22" * 16
    write("arc-rar-v5-hp.rar", b"Rar!\x1a\x07\x01\x00" + head5(4, enc) + b"\x44" * 64)
