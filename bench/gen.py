#!/usr/bin/env python3
"""Deterministic generator for the mxguard-vs-ClamAV benchmark.

Writes, into OUT:

  db/bench.hdb   MD5 hash signatures        hash:size:Name
  db/bench.hsb   SHA256 hash signatures     hash:size:Name  (a few hash:*:Name:73)
  db/bench.ndb   body signatures            Name:Target:Offset:HexSig
  db/bench.ldb   logical signatures         Name;Engine:81-255,Target:T;expr;subsig0;...
  corpus/...     binary, PE-like, text and HTML files (no archives)
  manifest.tsv   expected findings: path<TAB>name<TAB>kind<TAB>class  (path relative to corpus/;
                 kind hdb/hsb/ndb/ldb; class e.g. ndb/t7/eof, ldb/t1, hdb/txt)
  stats.json     counts and sizes

Everything is derived from --seed, so two runs with the same arguments give
byte-identical output.  Python stdlib only.

Rules followed so that every line loads in clamscan 1.4 (see
bench/README.md): every part of a body pattern between `*` / `{n-m}` gaps
starts with at least three static bytes and ends with a static byte;
alternations, nibbles and `??` only appear after those leading static bytes;
`EOF-n` signatures have a bounded length no larger than n.
"""

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import struct
import sys
import time

GEN_VERSION = "1"

PRESETS = {
    # signature counts, corpus bytes, largest file, share of files with planted
    # body/logical matches, share of files whose hash goes into the db
    "quick": dict(hdb=100_000, hsb=5_000, ndb=5_000, ldb=1_000, corpus=20 << 20, max_file=1 << 20,
                  plant_rate=0.35, hash_rate=0.08),
    "full": dict(hdb=2_000_000, hsb=50_000, ndb=100_000, ldb=20_000, corpus=200 << 20, max_file=6 << 20,
                 plant_rate=0.2, hash_rate=0.06),
}

# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

PLATFORMS = (["Win"] * 12 + ["Doc", "Xls", "Html", "Js", "Pdf", "Unix", "Email",
                             "Andr", "Osx", "Txt", "Java", "Php", "Vbs", "Multios"])
CATEGORIES = ["Trojan"] * 6 + ["Malware"] * 3 + ["Downloader", "Dropper", "Exploit",
                                                 "Worm", "Virus", "Ransomware", "Adware",
                                                 "Phishing", "Packed", "Coinminer",
                                                 "Backdoor", "Spyware", "Keylogger"]
FAMILIES_FIXED = ["Agent"] * 8 + ["Generic"] * 3 + [
    "Emotet", "Zbot", "Qakbot", "Trickbot", "Ursnif", "Dridex", "Lokibot", "Formbook",
    "AgentTesla", "Remcos", "Nanocore", "Njrat", "Mirai", "Gafgyt", "Xmrig", "Cobaltstrike",
    "Sality", "Virut", "Ramnit", "Expiro", "Neshta", "Allaple", "Upatre", "Vobfus",
    "Kryptik", "Razy", "Tiggre", "Zusy", "Bladabindi", "Swrort", "Meterpreter", "Obfuscator",
]
SYLL = ["ra", "ko", "zu", "me", "tri", "lo", "van", "dex", "qu", "bot", "nix", "sal",
        "ter", "mo", "fa", "gle", "pyr", "on", "ex", "cor", "bla", "vir", "zen", "tal"]


class Namer:
    """Unique ClamAV-style names: Platform.Category.Family-1234567-0."""

    def __init__(self, rng):
        self.rng = rng
        self.next_id = 1_000_000 + rng.randrange(100_000)
        fam = list(FAMILIES_FIXED)
        for _ in range(120):
            n = rng.randint(2, 3)
            fam.append("".join(rng.choice(SYLL) for _ in range(n)).capitalize())
        self.families = fam

    def name(self, platform=None):
        r = self.rng
        self.next_id += r.randint(1, 37)
        p = platform or r.choice(PLATFORMS)
        rev = 0 if r.random() < 0.85 else r.randint(1, 3)
        return f"{p}.{r.choice(CATEGORIES)}.{r.choice(self.families)}-{self.next_id}-{rev}"


# --------------------------------------------------------------------------
# Body patterns
# --------------------------------------------------------------------------
# A pattern is a list of tokens:
#   ("lit", bytes)            static bytes
#   ("any",)                  ??
#   ("hi", h)                 h?   (high nibble fixed)
#   ("lo", l)                 ?l   (low nibble fixed)
#   ("alt", [bytes, ...])     (aa|bb) / (aabb|ccdd)  all members the same length
#   ("gap", lo, hi)           * (0,None)  {n-m}  {n-} (n,None)  {-m} (0,m)
# Gaps split the pattern into parts.

COMMON_X86 = [bytes.fromhex(h) for h in (
    "558bec", "558bec83ec", "8bff558bec", "5589e5", "4883ec28", "4889e5", "31c0",
    "33c0", "e8000000005d", "64a130000000", "8b4508", "8b450c", "ff15", "ff25",
    "6a00", "6a0068", "c3cccccc", "5dc3", "8be55dc3", "837d0800", "8d4dfc", "50e8",
    "85c07405", "85c0750a", "0f8480000000", "0f8500000000", "b8ffffffff", "eb0e",
)]

API_STRINGS = [
    "CreateRemoteThread", "VirtualAllocEx", "WriteProcessMemory", "GetProcAddress",
    "LoadLibraryA", "URLDownloadToFileA", "WinExec", "ShellExecuteA", "RegSetValueExA",
    "InternetOpenUrlA", "CryptEncrypt", "NtUnmapViewOfSection", "SetWindowsHookExA",
    "IsDebuggerPresent", "GetAsyncKeyState", "CreateToolhelp32Snapshot", "Process32Next",
    "OpenProcess", "AdjustTokenPrivileges", "HttpSendRequestA", "WSAStartup",
]
TEXT_FRAGS = [
    "powershell -nop -w hidden -enc ", "cmd.exe /c ", "eval(base64_decode(", "document.write(unescape(",
    "WScript.Shell", "ActiveXObject(", "String.fromCharCode(", "http://", "https://", "/wp-content/",
    "window.location=", "Sub AutoOpen()", "Shell(", "CreateObject(", "\\AppData\\Roaming\\",
    "HKEY_CURRENT_USER\\Software\\", "RunOnce\\", "Your account has been suspended",
    "verify your password", "invoice_", ".exe", ".scr", "$_POST[", "system($_GET[", "/bin/sh -c ",
    "chmod 777 ", "wget -q -O- ", "curl -s ", "bitcoin wallet", "decrypt your files",
] + API_STRINGS
TEXT7_FRAGS = [  # target 7 sees lowercased, whitespace-collapsed text
    "your account has been suspended", "verify your password", "click here to unlock",
    "decrypt your files", "send bitcoin to", "wire transfer", "urgent payment",
    "dear customer", "confirm your identity", "invoice attached", "tracking number",
    "act now", "password expires", "security alert", "gift card",
]
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
MIN_STATIC = 9  # static bytes in every body pattern / subsignature
LOWER = "abcdefghijklmnopqrstuvwxyz"


def tok_hex(t):
    k = t[0]
    if k == "lit":
        return t[1].hex()
    if k == "any":
        return "??"
    if k == "hi":
        return "%x?" % t[1]
    if k == "lo":
        return "?%x" % t[1]
    if k == "alt":
        return "(" + "|".join(m.hex() for m in t[1]) + ")"
    if k == "gap":
        lo, hi = t[1], t[2]
        if lo == 0 and hi is None:
            return "*"
        if hi is None:
            return "{%d-}" % lo
        if lo == 0:
            return "{-%d}" % hi
        if lo == hi:
            return "{%d}" % lo
        return "{%d-%d}" % (lo, hi)
    raise ValueError(t)


def pat_hex(toks):
    return "".join(tok_hex(t) for t in toks)


def pat_bytes(toks):
    return b"".join(t[1] for t in toks if t[0] == "lit")


def pat_maxlen(toks):
    n = 0
    for t in toks:
        k = t[0]
        if k == "lit":
            n += len(t[1])
        elif k in ("any", "hi", "lo"):
            n += 1
        elif k == "alt":
            n += len(t[1][0])
        elif k == "gap":
            if t[2] is None:
                return None
            n += t[2]
    return n


class Filler:
    """Bytes used for wildcard positions when planting a pattern."""

    def __init__(self, mode):
        self.mode = mode  # "bin", "text", "lower"

    def byte(self, rng):
        if self.mode == "bin":
            return rng.randrange(256)
        if self.mode == "lower":
            return ord(rng.choice(LOWER))
        return ord(rng.choice(ALNUM))

    def run(self, rng, n):
        if self.mode == "bin":
            return rng.randbytes(n)
        src = LOWER if self.mode == "lower" else ALNUM
        return "".join(rng.choices(src, k=n)).encode()


def instantiate(toks, rng, filler, nocase=False):
    out = bytearray()
    for t in toks:
        k = t[0]
        if k == "lit":
            b = t[1]
            if nocase:
                b = bytes(c ^ 0x20 if (65 <= c <= 90 or 97 <= c <= 122) and rng.random() < 0.5 else c
                          for c in b)
            out += b
        elif k == "any":
            out.append(filler.byte(rng))
        elif k == "hi":
            # keep text files text: only 4?/6? are generated for text patterns
            out.append((t[1] << 4) | (rng.randrange(1, 15) if filler.mode != "bin" else rng.randrange(16)))
        elif k == "lo":
            out.append((rng.choice((4, 6)) << 4 if filler.mode != "bin" else rng.randrange(16) << 4) | t[1])
        elif k == "alt":
            out += rng.choice(t[1])
        elif k == "gap":
            lo, hi = t[1], t[2]
            if hi is None:
                hi = lo + 40
            out += filler.run(rng, rng.randint(lo, min(hi, lo + 200)))
    return bytes(out)


def distinct_token(rng, n):
    return "".join(rng.choices(ALNUM, k=n)).encode()


def rand_binary_lit(rng, n):
    """Random bytes, never all-zero-ish (corpus has long zero runs)."""
    b = bytearray(rng.randbytes(n))
    for i in range(len(b)):
        if b[i] == 0 and rng.random() < 0.7:
            b[i] = rng.randrange(1, 256)
    return bytes(b)


def gen_part(rng, style, budget, first):
    """One part (no gaps inside except {n} short).  Returns (tokens, static count)."""
    toks = []
    if style == "bin":
        if first and rng.random() < 0.2:
            # common prologue first (the corpus's code is full of them: realistic
            # prefilter load), then enough random bytes that it never matches by chance
            lead = rng.choice(COMMON_X86) + rand_binary_lit(rng, rng.randint(5, 7))
        else:
            lead = rand_binary_lit(rng, rng.randint(3, 6))
    elif style == "text":
        frag = rng.choice(TEXT_FRAGS).encode()
        lead = frag[:rng.randint(4, 24)] if len(frag) > 4 else frag
        if len(lead) < 3:
            lead += distinct_token(rng, 3)
        lead += distinct_token(rng, rng.randint(3, 6))
    else:  # lower (target 7)
        frag = rng.choice(TEXT7_FRAGS)
        lead = (frag + " " + "".join(rng.choices(LOWER, k=rng.randint(4, 7)))).encode()
    toks.append(("lit", lead))
    used = len(lead)
    while used < budget:
        r = rng.random()
        if r < 0.35:
            # a wildcard-ish single position
            w = rng.random()
            if w < 0.55 or style == "lower":
                toks.append(("any",))
            elif w < 0.85:
                if style == "bin":
                    toks.append(("hi", rng.randrange(16)))
                else:
                    toks.append(("hi", rng.choice((4, 6))))
            else:
                if style == "bin":
                    toks.append(("lo", rng.randrange(16)))
                else:
                    toks.append(("lo", rng.randrange(1, 15)))
            used += 1
        elif r < 0.5:
            if style == "bin":
                if rng.random() < 0.6:
                    members = {rand_binary_lit(rng, 1) for _ in range(rng.randint(2, 4))}
                else:
                    ln = rng.randint(2, 3)
                    members = {rand_binary_lit(rng, ln) for _ in range(rng.randint(2, 3))}
            elif style == "text":
                c = rng.choice(LOWER)
                members = {c.encode(), c.upper().encode()} if rng.random() < 0.6 else \
                    {distinct_token(rng, 2) for _ in range(rng.randint(2, 3))}
            else:
                members = {c.encode() for c in rng.sample(LOWER, rng.randint(2, 4))}
            members = sorted(members)
            if len(members) < 2:
                continue
            toks.append(("alt", members))
            used += len(members[0])
        elif r < 0.55 and style != "lower":
            # {n}: ClamAV turns it into n x ?? only when the pattern has no {n-m}
            # range; otherwise it splits there too, so a static block must follow.
            n = rng.randint(2, 12)
            toks.append(("gap", n, n))
            lit = rand_binary_lit(rng, rng.randint(2, 5)) if style == "bin" else distinct_token(rng, rng.randint(2, 5))
            toks.append(("lit", lit))
            used += n // 2 + len(lit)
        else:
            if style == "bin":
                lit = rand_binary_lit(rng, rng.randint(2, 8))
            elif style == "text":
                lit = distinct_token(rng, rng.randint(2, 8)) if rng.random() < 0.5 else \
                    rng.choice(TEXT_FRAGS).encode()[:rng.randint(3, 12)]
            else:
                lit = ("".join(rng.choices(LOWER, k=rng.randint(2, 6)))).encode()
            toks.append(("lit", lit))
            used += len(lit)
    if toks[-1][0] != "lit":
        if style == "bin":
            toks.append(("lit", rand_binary_lit(rng, rng.randint(2, 3))))
        elif style == "text":
            toks.append(("lit", distinct_token(rng, rng.randint(2, 3))))
        else:
            toks.append(("lit", "".join(rng.choices(LOWER, k=3)).encode()))
    return toks


def gen_pattern(rng, style, total, bounded):
    """A pattern of about `total` positions, 1-3 parts separated by gaps."""
    nparts = 1
    r = rng.random()
    if total >= 20 and r < 0.35:
        nparts = 2
    if total >= 36 and r < 0.1:
        nparts = 3
    toks = []
    per = max(8, total // nparts)
    for i in range(nparts):
        if i:
            g = rng.random()
            if bounded or style == "lower":
                lo = rng.randint(0, 16)
                toks.append(("gap", lo, lo + rng.randint(1, 48)))
            elif g < 0.45:
                toks.append(("gap", 0, None))
            elif g < 0.85:
                lo = rng.randint(0, 32)
                toks.append(("gap", lo, lo + rng.randint(1, 200)))
            elif g < 0.93:
                toks.append(("gap", rng.randint(1, 64), None))
            else:
                toks.append(("gap", 0, rng.randint(2, 100)))
        toks += gen_part(rng, style, per, i == 0)
    return toks


class BodySig:
    __slots__ = ("name", "target", "style", "offkind", "off", "shift", "toks")

    def offset_str(self):
        if self.offkind == "any":
            return "*"
        if self.offkind == "abs":
            return str(self.off)
        if self.offkind == "float":
            return "%d,%d" % (self.off, self.shift)
        return "EOF-%d" % self.off

    def line(self):
        return "%s:%d:%s:%s" % (self.name, self.target, self.offset_str(), pat_hex(self.toks))


def gen_body_sig(rng, namer):
    s = BodySig()
    r = rng.random()
    s.target = 0 if r < 0.82 else (1 if r < 0.94 else 7)
    if s.target == 7:
        s.style = "lower"
        plat = rng.choice(["Txt", "Email", "Html", "Js"])
    elif s.target == 1:
        s.style = "bin" if rng.random() < 0.85 else "text"
        plat = "Win"
    else:
        st = rng.random()
        s.style = "bin" if st < 0.55 else ("text" if st < 0.88 else "lower")
        plat = rng.choice(["Html", "Email", "Txt", "Phishing"]) if s.style == "lower" else None
    s.name = namer.name(plat)
    # length: skewed towards 16-30 positions
    total = int(min(60, max(12, rng.lognormvariate(math.log(22), 0.4))))
    o = rng.random()
    if o < 0.84:
        s.offkind, s.off, s.shift = "any", 0, 0
    elif o < 0.91:
        s.offkind = "abs"
        s.off = rng.choice([0, 0, 2, 4, 16, 64, 128, 256, 512, 1024]) + rng.choice([0, 0, 0, rng.randrange(4096)])
        s.shift = 0
    elif o < 0.94:
        s.offkind = "float"
        s.off = rng.randrange(0, 2048)
        s.shift = rng.randint(1, 512)
    else:
        s.offkind = "eof"
        s.shift = 0
    if s.target == 1 and s.offkind in ("abs", "float"):
        s.off += 1024  # keep PE-targeted anchored sigs past the headers
    while True:
        s.toks = gen_pattern(rng, s.style, total, bounded=(s.offkind == "eof"))
        if len(pat_bytes(s.toks)) >= MIN_STATIC:
            break
    if s.offkind == "eof":
        s.off = pat_maxlen(s.toks) + rng.randint(0, 64)
    return s


class LogicalSig:
    __slots__ = ("name", "target", "expr", "subs", "tree")

    def line(self):
        parts = []
        for toks, mod, style in self.subs:
            parts.append(pat_hex(toks) + ("::" + mod if mod else ""))
        return "%s;Engine:81-255,Target:%d;%s;%s" % (self.name, self.target, self.expr, ";".join(parts))


def gen_expr(rng, n):
    """Random &/| expression tree over subsig indexes 0..n-1 (each used once)."""
    idx = list(range(n))
    rng.shuffle(idx)

    def build(ids):
        if len(ids) == 1:
            return ids[0]
        k = rng.randint(1, len(ids) - 1)
        op = "&" if rng.random() < 0.65 else "|"
        return (op, build(ids[:k]), build(ids[k:]))

    return build(idx)


def expr_str(t, top=True):
    if isinstance(t, int):
        return str(t)
    s = expr_str(t[1], False) + t[0] + expr_str(t[2], False)
    return s if top else "(" + s + ")"


def expr_pick(t, rng):
    """A set of subsig indexes that makes the expression true."""
    if isinstance(t, int):
        return {t}
    if t[0] == "&":
        return expr_pick(t[1], rng) | expr_pick(t[2], rng)
    return expr_pick(t[1] if rng.random() < 0.5 else t[2], rng)


def gen_logical_sig(rng, namer):
    s = LogicalSig()
    r = rng.random()
    s.target = 0 if r < 0.8 else (1 if r < 0.9 else 7)
    s.name = namer.name("Win" if s.target == 1 else ("Email" if s.target == 7 else None))
    n = rng.choice([2, 2, 3, 3, 3, 4])
    s.subs = []
    all_lower = s.target == 0 and rng.random() < 0.15  # phishing-page style: text only
    for _ in range(n):
        if s.target == 7 or all_lower:
            style = "lower"
        elif s.target == 1:
            style = "bin" if rng.random() < 0.6 else "text"
        else:
            style = "bin" if rng.random() < 0.45 else "text"
        total = int(min(40, max(8, rng.lognormvariate(math.log(16), 0.4))))
        while True:
            toks = gen_pattern(rng, style, total, bounded=False) if rng.random() < 0.25 else \
                gen_part(rng, style, total, True)
            # one subsignature alone can satisfy an '|': enough static bytes that
            # 200 MiB of corpus never matches it by chance
            if len(pat_bytes(toks)) >= MIN_STATIC:
                break
        mod = ""
        if style in ("text", "lower") and rng.random() < 0.3:
            mod = "i"
        s.subs.append((toks, mod, style))
    s.tree = gen_expr(rng, n)
    s.expr = expr_str(s.tree)
    return s


# --------------------------------------------------------------------------
# Corpus content
# --------------------------------------------------------------------------

WORDS = """the of and to a in is it you that he was for on are with as I his they be at one have
this from or had by hot word but what some we can out other were all there when up use your how said
an each she which do their time if will way about many then them write would like so these her long
make thing see him two has look more day could go come did number sound no most people my over know
water than call first who may down side been now find any new work part take get place made live where
after back little only round man year came show every good me give our under name very through just
form sentence great think say help low line differ turn cause much mean before move right boy old too
same tell does set three want air well also play small end put home read hand port large spell add even
land here must big high such follow act why ask men change went light kind off need house picture try us
again animal point mother world near build self earth father head stand own page should country found
answer school grow study still learn plant cover food sun four between state keep eye never last let
thought city tree cross farm hard start might story saw far sea draw left late run while press close
night real life few north open seem together next white children begin got walk example ease paper group
always music those both mark often letter until mile river car feet care second book carry took science
eat room friend began idea fish mountain stop once base hear horse cut sure watch color face wood main
enough plain girl usual young ready above ever red list though feel talk bird soon body dog family direct
pose leave song measure door product black short numeral class wind question happen complete ship area
half rock order fire south problem piece told knew pass since top whole king space heard best hour better
true during hundred five remember step early hold west ground interest reach fast verb sing listen six
table travel less morning ten simple several vowel toward war lay against pattern slow center love person
money serve appear road map rain rule govern pull cold notice voice unit power town fine certain fly fall
lead cry dark machine note wait plan figure star box noun field rest correct able pound done beauty drive
stood contain front teach week final gave green oh quick develop ocean warm free minute strong special
mind behind clear tail produce fact street inch multiply nothing course stay wheel full force blue object
decide surface deep moon island foot system busy test record boat common gold possible plane stead dry
wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes distant fill
east paint language among meeting quarterly report budget schedule attached regards thanks project""".split()
HTML_TAGS = ["p", "div", "span", "li", "td", "h2", "h3", "em", "strong"]


class TextSource:
    def __init__(self, rng):
        self.rng = rng
        # Zipf-ish weights
        self.cum = []
        acc = 0.0
        for i in range(len(WORDS)):
            acc += 1.0 / (i + 8)
            self.cum.append(acc)
        self.sentences = [self._sentence() for _ in range(6000)]
        self.paras = [self._para() for _ in range(1500)]

    def _sentence(self):
        r = self.rng
        n = r.randint(5, 22)
        w = r.choices(WORDS, cum_weights=self.cum, k=n)
        w[0] = w[0].capitalize()
        if n > 8 and r.random() < 0.4:
            w[r.randrange(2, n - 2)] += ","
        if r.random() < 0.08:
            w.insert(r.randrange(1, len(w)), str(r.randint(2, 9999)))
        return " ".join(w) + r.choice([".", ".", ".", "?", "!"])

    def _para(self):
        r = self.rng
        return " ".join(r.choices(self.sentences, k=r.randint(2, 8)))

    def text(self, size):
        r = self.rng
        # a title line first: never starts like a mail ("From ", "Received:") or markup
        out = [r.choice(["Notes on", "Report about", "Minutes of the", "Draft", "Summary of the",
                         "Letter about", "Chapter %d." % r.randint(1, 40)]) + " " +
               " ".join(r.choices(WORDS, k=r.randint(1, 4)))]
        n = len(out[0])
        while n < size:
            p = r.choice(self.paras)
            if r.random() < 0.3:
                p = "    " + p
            out.append(p)
            n += len(p) + 2
        s = ("\n\n".join(out)).encode()
        if r.random() < 0.3:
            s = s.replace(b"\n", b"\r\n")
        return s[:size]

    def html(self, size):
        r = self.rng
        title = " ".join(r.choices(WORDS, k=r.randint(2, 6))).title()
        head = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<title>{title}</title>\n<style>body {{ font-family: sans-serif; margin: 0 }}"
                " .c { color: #333 }</style>\n</head>\n<body>\n")
        out = [head]
        n = len(head)
        while n < size - 40:
            k = r.random()
            if k < 0.6:
                t = r.choice(HTML_TAGS)
                s = f"<{t} class=\"c{r.randint(1, 40)}\">{r.choice(self.paras)}</{t}>\n"
            elif k < 0.75:
                w = r.choice(WORDS)
                s = f"<a href=\"https://www.example.com/{w}/{r.randint(1, 99999)}\">{w} {r.choice(WORDS)}</a>\n"
            elif k < 0.85:
                cells = "".join(f"<td>{r.choice(WORDS)}</td>" for _ in range(r.randint(2, 6)))
                s = f"<table><tr>{cells}</tr></table>\n"
            elif k < 0.93:
                s = (f"<script>var {r.choice(WORDS)}_{r.randint(1, 99)} = {r.randint(0, 9999)};"
                     f" function f{r.randint(1, 999)}(a) {{ return a + \"{r.choice(WORDS)}\"; }}</script>\n")
            else:
                s = f"<!-- {r.choice(self.sentences)} -->\n"
            out.append(s)
            n += len(s)
        out.append("</body>\n</html>\n")
        b = "".join(out).encode()
        if len(b) > size:
            b = b[:size - 16] + b"\n</body></html>\n"
        return b


def exe_like(rng, size):
    """A small but well-formed PE32 image whose sections look like code/data:
    opcode-ish bytes, zero padding runs, string tables.  Returns (bytes, text_range)."""
    size = max(size, 8192)
    fa = 0x200
    hdr = 0x400
    body = size - hdr
    body -= body % fa
    text_sz = max(fa, (body * rng.randint(45, 70) // 100) // fa * fa)
    rdata_sz = max(fa, (body - text_sz) * rng.randint(40, 70) // 100 // fa * fa)
    data_sz = max(fa, body - text_sz - rdata_sz)
    data_sz -= data_sz % fa
    sections = [(b".text", text_sz, 0x60000020), (b".rdata", rdata_sz, 0x40000040),
                (b".data", data_sz, 0xC0000040)]
    sa = 0x1000
    # sections' content
    out = bytearray()
    # .text
    t = bytearray()
    while len(t) < text_sz:
        k = rng.random()
        if k < 0.45:
            t += rng.choice(COMMON_X86)
        elif k < 0.8:
            t += rng.randbytes(rng.randint(2, 24))
        elif k < 0.93:
            t += b"\xcc" * rng.randint(1, 15)
        else:
            t += b"\x00" * rng.randint(4, 200)
    t = t[:text_sz]
    r_ = bytearray()
    while len(r_) < rdata_sz:
        k = rng.random()
        if k < 0.4:
            r_ += rng.choice(API_STRINGS).encode() + b"\x00" * rng.randint(1, 4)
        elif k < 0.6:
            r_ += " ".join(rng.choices(WORDS, k=rng.randint(2, 8))).encode() + b"\x00"
        elif k < 0.8:
            r_ += struct.pack("<I", rng.randrange(0x401000, 0x480000)) * rng.randint(1, 6)
        else:
            r_ += b"\x00" * rng.randint(8, 512)
    r_ = r_[:rdata_sz]
    d = bytearray(data_sz)
    for _ in range(max(1, data_sz // 512)):
        p = rng.randrange(data_sz)
        chunk = rng.randbytes(rng.randint(4, 64))
        d[p:p + len(chunk)] = chunk
    d = d[:data_sz]
    # headers
    h = bytearray(hdr)
    h[0:2] = b"MZ"
    struct.pack_into("<HHHHHHHHHHHHHH", h, 2, 0x90, 3, 0, 4, 0, 0xFFFF, 0, 0xB8, 0, 0, 0, 0x40, 0, 0)
    struct.pack_into("<I", h, 0x3C, 0x80)
    stub = b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21This program cannot be run in DOS mode.\r\r\n$"
    h[0x40:0x40 + len(stub)] = stub
    pe = 0x80
    h[pe:pe + 4] = b"PE\x00\x00"
    struct.pack_into("<HHIIIHH", h, pe + 4, 0x14C, len(sections), 0x5F000000 + rng.randrange(1 << 24),
                     0, 0, 0xE0, 0x0102)
    opt = pe + 24
    vsizes = [(s[1] + sa - 1) // sa * sa for s in sections]
    size_image = sa + sum(vsizes)
    struct.pack_into("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII", h, opt,
                     0x10B, 14, 0, text_sz, rdata_sz + data_sz, 0, sa + rng.randrange(0, min(text_sz, 0x800)) // 16 * 16,
                     sa, sa + vsizes[0], 0x400000, sa, fa, 6, 0, 0, 0, 6, 0, 0, size_image, hdr, 0, 2, 0x8140,
                     0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    sec = opt + 0xE0
    va, raw = sa, hdr
    for (nm, sz, ch), vs in zip(sections, vsizes):
        struct.pack_into("<8sIIIIIIHHI", h, sec, nm, sz, va, sz, raw, 0, 0, 0, 0, ch)
        sec += 40
        va += vs
        raw += sz
    out = bytes(h) + bytes(t) + bytes(r_) + bytes(d)
    return out, (hdr, hdr + text_sz)


def random_binary(rng, size):
    b = bytearray(rng.randbytes(size))
    # occasional structure: zero runs / repeated blocks, like compressed+padded data
    if rng.random() < 0.3:
        for _ in range(size // 8192 + 1):
            p = rng.randrange(size)
            n = rng.randint(16, 2048)
            b[p:p + n] = bytes(min(n, size - p))
    return b


# --------------------------------------------------------------------------
# Planting
# --------------------------------------------------------------------------

# What each kind of file can carry so that clamscan 1.4 reports it:
#  - bin: any target-0 signature, any offset.
#  - exe (a well-formed PE32): target 0 and 1; anchored offsets only past the headers.
#  - txt: target 7 (normalised text) and target-0 text signatures, printable fill.
#  - nowhere: a pattern with '<' in it.  clamscan re-types any file in which it
#    sees an HTML tag such as "<iframe" (even binary data) as HTML, and then
#    matches only the normalised HTML, never the raw bytes.
#  - html: clamscan does not scan the raw bytes of an HTML file at all (neither
#    body nor hash signatures): only its normalised copies, which are lowercased,
#    tag-stripped and whitespace-collapsed.  So only lowercase-text signatures
#    are planted there, inside paragraph text.

def body_fits(sig, kind):
    if b"<" in pat_bytes(sig.toks):
        return False
    if kind == "bin":
        return sig.target == 0
    if kind == "exe":
        return sig.target in (0, 1) and (sig.offkind in ("any", "eof") or sig.off >= 1024)
    if kind == "txt":
        return ((sig.target == 7 or (sig.target == 0 and sig.style in ("text", "lower")))
                and sig.offkind in ("any", "eof") and b"<" not in pat_bytes(sig.toks))
    if kind == "html":
        return sig.target == 0 and sig.style == "lower" and sig.offkind == "any"
    return False


def ldb_fits(sig, kind):
    styles = {st for _, _, st in sig.subs}
    if any(b"<" in pat_bytes(t) for t, _, _ in sig.subs):
        return False
    if kind == "bin":
        return sig.target == 0
    if kind == "exe":
        return sig.target in (0, 1)
    if kind == "txt":
        return ((sig.target == 7 or (sig.target == 0 and styles <= {"text", "lower"}))
                and all(b"<" not in pat_bytes(t) for t, _, _ in sig.subs))
    if kind == "html":
        return sig.target == 0 and styles == {"lower"}
    return False


def plant_class(sig, kind):
    """Bucket used to spread plants over targets and offset kinds."""
    if isinstance(sig, BodySig):
        return "ndb/t%d/%s" % (sig.target, sig.offkind)
    return "ldb/t%d" % sig.target


def filler_for(kind, style):
    if kind in ("bin", "exe") and style == "bin":
        return Filler("bin")
    if style == "lower":
        return Filler("lower")
    return Filler("text" if kind in ("txt", "html") else "bin")


class Planter:
    """Tracks byte ranges already used in one file so plants do not overlap."""

    def __init__(self, data, lo, hi):
        self.data = bytearray(data)
        self.lo, self.hi = lo, hi
        self.used = []

    def free(self, a, b):
        return all(b <= u0 or a >= u1 for u0, u1 in self.used)

    def put(self, pos, blob):
        self.data[pos:pos + len(blob)] = blob
        self.used.append((pos, pos + len(blob)))

    def put_anywhere(self, rng, blob, kind):
        if kind in ("txt", "html"):
            blob = blob + b" "
        n = len(blob)
        if self.hi - self.lo < n + 8:
            return False
        for _ in range(50):
            pos = rng.randrange(self.lo, self.hi - n)
            if kind == "html":
                # inside paragraph text: right after a tag's '>' that opens text,
                # never across markup, entities or comments
                gt = self.data.find(b'">', pos, self.hi - n)
                if gt < 0:
                    continue
                pos = gt + 2
                region = bytes(self.data[pos:pos + n])
                if any(c in region for c in b"<>&"):
                    continue
                if self.data.rfind(b"<script", self.lo, pos) > self.data.rfind(b"</script>", self.lo, pos) or \
                        self.data.rfind(b"<!--", self.lo, pos) > self.data.rfind(b"-->", self.lo, pos):
                    continue
                if self.free(pos - 1, pos + n + 1):
                    self.put(pos, blob)
                    return True
                continue
            if kind == "txt":
                # put text plants between words: after a space or newline
                sp = self.data.find(b" ", pos, min(pos + 200, self.hi - n))
                if sp >= 0:
                    pos = sp + 1
            if pos + len(blob) <= self.hi and self.free(pos - 1, pos + len(blob) + 1):
                self.put(pos, blob)
                return True
        return False


def plant_body(rng, pl, sig, kind):
    fil = filler_for(kind, sig.style)
    blob = instantiate(sig.toks, rng, fil)
    size = len(pl.data)
    if sig.offkind == "any":
        return pl.put_anywhere(rng, blob, kind)
    if sig.offkind == "abs" or sig.offkind == "float":
        pos = sig.off + (rng.randint(0, sig.shift) if sig.offkind == "float" else 0)
        if pos + len(blob) > size or not pl.free(pos, pos + len(blob)):
            return False
        pl.put(pos, blob)
        return True
    # EOF-n: the match starts n bytes before the end
    pos = size - sig.off
    if pos < pl.lo or pos + len(blob) > size or not pl.free(pos, size):
        return False
    if sig.target == 7:
        # Target 7 matches the normalised text, and EOF-n then counts from the end
        # of the normalised copy.  Make the raw tail from the match to EOF
        # normalisation-invariant (lowercase, single spaces) so both agree.
        tail = bytearray()
        need = size - pos - len(blob)
        while len(tail) < need:
            tail += b" " + "".join(rng.choices(LOWER, k=rng.randint(2, 9))).encode()
        blob = blob + bytes(tail[:need])
        if blob.endswith(b" "):
            blob = blob[:-1] + b"x"
    pl.put(pos, blob)
    return True


def plant_ldb(rng, pl, sig, kind):
    need = sorted(expr_pick(sig.tree, rng))
    blobs = []
    for i in need:
        toks, mod, style = sig.subs[i]
        fil = filler_for(kind, style)
        blobs.append(instantiate(toks, rng, fil, nocase=(mod == "i")))
    saved = (bytes(pl.data), list(pl.used))
    for b in blobs:
        if not pl.put_anywhere(rng, b, kind):
            pl.data, pl.used = bytearray(saved[0]), saved[1]
            return False
    return True


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def pick_size(rng, kind):
    """Mail-gateway-like sizes: mostly small, a tail of multi-MiB files."""
    def logu(a, b):
        return int(math.exp(rng.uniform(math.log(a), math.log(b))))
    r = rng.random()
    if kind == "bin":
        return logu(1024, 64 << 10) if r < 0.6 else (logu(64 << 10, 1 << 20) if r < 0.94 else logu(1 << 20, 5 << 20))
    if kind == "exe":
        return logu(16 << 10, 256 << 10) if r < 0.65 else (logu(256 << 10, 2 << 20) if r < 0.96 else logu(2 << 20, 4 << 20))
    if kind == "txt":
        return logu(1024, 32 << 10) if r < 0.75 else logu(32 << 10, 1 << 20)
    return logu(2048, 64 << 10) if r < 0.8 else logu(64 << 10, 512 << 10)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (db/, corpus/, manifest.tsv)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--hdb", type=int)
    ap.add_argument("--hsb", type=int)
    ap.add_argument("--ndb", type=int)
    ap.add_argument("--ldb", type=int)
    ap.add_argument("--corpus-mib", type=float)
    ap.add_argument("--plant-rate", type=float, help="fraction of files with planted body/logical matches")
    ap.add_argument("--hash-rate", type=float, help="fraction of files whose hash goes into the db")
    a = ap.parse_args()
    p = dict(PRESETS[a.preset])
    for k in ("hdb", "hsb", "ndb", "ldb", "plant_rate", "hash_rate"):
        if getattr(a, k) is not None:
            p[k] = getattr(a, k)
    if a.corpus_mib is not None:
        p["corpus"] = int(a.corpus_mib * (1 << 20))

    t0 = time.time()
    out = a.out
    db = os.path.join(out, "db")
    corpus = os.path.join(out, "corpus")
    for d in (db, corpus):
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)

    def R(label):
        return random.Random(f"{a.seed}:{label}")

    namer = Namer(R("names"))

    # ---- body and logical signatures (kept in memory: planting needs them)
    rb = R("ndb")
    ndb = [gen_body_sig(rb, namer) for _ in range(p["ndb"])]
    rl = R("ldb")
    ldb = [gen_logical_sig(rl, namer) for _ in range(p["ldb"])]
    t_sigs = time.time()

    # ---- corpus
    rc = R("corpus")
    text = TextSource(R("text"))
    manifest = []
    planted_hashes = []  # (kind, hexdigest, size, name)
    kinds = ["bin", "exe", "txt", "html"]
    kind_w = [0.34, 0.28, 0.2, 0.18]
    total = 0
    nfiles = 0
    by_kind = {k: [0, 0] for k in kinds}
    # plantable signatures per file kind, bucketed by (type, target, offset kind)
    # so that the plants cover every bucket rather than mirror the db's mix
    buckets = {}
    for k in kinds:
        b = {}
        for sg in ndb:
            if body_fits(sg, k):
                b.setdefault(plant_class(sg, k), []).append(sg)
        for sg in ldb:
            if ldb_fits(sg, k):
                b.setdefault(plant_class(sg, k), []).append(sg)
        buckets[k] = sorted(b.items())
    used_buckets = {}
    planted = {"ndb": 0, "ldb": 0, "hdb": 0, "hsb": 0}
    while total < p["corpus"]:
        kind = rc.choices(kinds, kind_w)[0]
        size = min(pick_size(rc, kind), p["max_file"], max(1024, p["corpus"] - total + 1024))
        lo, hi = 0, size
        if kind == "bin":
            data = random_binary(rc, size)
        elif kind == "exe":
            data, (lo, hi) = exe_like(rc, size)
        elif kind == "txt":
            data = text.text(size)
            lo = min(len(data) // 4, 2048)  # keep the start plain text (type detection)
            hi = len(data)
        else:
            data = text.html(size)
            lo = min(len(data) // 4, 1024)
            hi = len(data) - 20
        sub = "%s/%02d" % (kind, by_kind[kind][0] // 100)
        ext = {"bin": "bin", "exe": "exe", "txt": "txt", "html": "html"}[kind]
        rel = "%s/%s-%05d.%s" % (sub, kind, nfiles, ext)
        findings = []
        roll = rc.random()
        if roll < p["plant_rate"]:
            pl = Planter(data, lo, hi)
            nplants = rc.choice([1, 1, 1, 2, 2, 3])
            for _ in range(nplants):
                if not buckets[kind]:
                    break
                # least-planted bucket first, so even the quick corpus covers them all
                least = min(used_buckets.get(b, 0) for b, _ in buckets[kind])
                cls, sigs = rc.choice([(b, v) for b, v in buckets[kind] if used_buckets.get(b, 0) == least])
                used_buckets[cls] = least + 1
                for _try in range(10):
                    sig = rc.choice(sigs)
                    if isinstance(sig, BodySig):
                        if plant_body(rc, pl, sig, kind):
                            findings.append((sig.name, "ndb", plant_class(sig, kind)))
                            break
                    elif plant_ldb(rc, pl, sig, kind):
                        findings.append((sig.name, "ldb", plant_class(sig, kind)))
                        break
            data = pl.data
        elif roll < p["plant_rate"] + p["hash_rate"] and kind != "html":
            # (clamscan never hashes the raw bytes of an HTML file)
            if rc.random() < 0.8:
                name = namer.name({"exe": "Win", "txt": "Txt", "html": "Html"}.get(kind))
                planted_hashes.append(("hdb", hashlib.md5(data).hexdigest(), len(data), name))
                findings.append((name, "hdb", "hdb/" + kind))
            else:
                name = namer.name({"exe": "Win", "txt": "Txt", "html": "Html"}.get(kind))
                planted_hashes.append(("hsb", hashlib.sha256(data).hexdigest(), len(data), name))
                findings.append((name, "hsb", "hsb/" + kind))
        os.makedirs(os.path.join(corpus, sub), exist_ok=True)
        with open(os.path.join(corpus, rel), "wb") as f:
            f.write(data)
        seen = set()
        for name, k, cls in findings:
            if name not in seen:
                seen.add(name)
                manifest.append((rel, name, k, cls))
                planted[k] += 1
        total += len(data)
        nfiles += 1
        by_kind[kind][0] += 1
        by_kind[kind][1] += len(data)
    t_corpus = time.time()

    # ---- write the databases
    with open(os.path.join(db, "bench.ndb"), "w") as f:
        f.write("\n".join(s.line() for s in ndb))
        f.write("\n")
    with open(os.path.join(db, "bench.ldb"), "w") as f:
        f.write("\n".join(s.line() for s in ldb))
        f.write("\n")

    rh = R("hashes")
    hdb_plants = [h for h in planted_hashes if h[0] == "hdb"]
    hsb_plants = [h for h in planted_hashes if h[0] == "hsb"]

    def write_hashes(path, n, plants, hexlen, wildcard_rate):
        # planted hashes go at random line numbers among n random ones
        pos = sorted(rh.randrange(n + 1) for _ in plants)
        pi = 0
        chunk = 100_000
        nbytes = hexlen // 2
        with open(path, "w", buffering=1 << 20) as f:
            i = 0
            while i < n or pi < len(plants):
                m = min(chunk, n - i)
                raw = rh.randbytes(nbytes * m).hex() if m > 0 else ""
                lines = []
                for j in range(m):
                    while pi < len(plants) and pos[pi] <= i + j:
                        _, hx, sz, nm = plants[pi]
                        lines.append(f"{hx}:{sz}:{nm}")
                        pi += 1
                    h = raw[j * hexlen:(j + 1) * hexlen]
                    if wildcard_rate and rh.random() < wildcard_rate:
                        lines.append(f"{h}:*:{namer.name()}:73")
                    else:
                        sz = int(math.exp(rh.uniform(6.9, 16.2)))  # ~1 KB .. 10 MB
                        lines.append(f"{h}:{sz}:{namer.name()}")
                i += m
                if m == 0:
                    while pi < len(plants):
                        _, hx, sz, nm = plants[pi]
                        lines.append(f"{hx}:{sz}:{nm}")
                        pi += 1
                f.write("\n".join(lines))
                f.write("\n")

    write_hashes(os.path.join(db, "bench.hdb"), p["hdb"], hdb_plants, 32, 0.0)
    write_hashes(os.path.join(db, "bench.hsb"), p["hsb"], hsb_plants, 64, 0.05)
    t_db = time.time()

    manifest.sort()
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("# path\tname\tkind\tclass (db file / target / offset kind, or hash / file kind)\n")
        for rel, name, k, cls in manifest:
            f.write(f"{rel}\t{name}\t{k}\t{cls}\n")
    nsigs = p["hdb"] + len(hdb_plants) + p["hsb"] + len(hsb_plants) + p["ndb"] + p["ldb"]
    stats = {
        "generator_version": GEN_VERSION,
        "seed": a.seed,
        "preset": a.preset,
        "params": p,
        "signatures": {"hdb": p["hdb"] + len(hdb_plants), "hsb": p["hsb"] + len(hsb_plants),
                       "ndb": p["ndb"], "ldb": p["ldb"], "total": nsigs},
        "corpus": {"files": nfiles, "bytes": total,
                   "by_kind": {k: {"files": v[0], "bytes": v[1]} for k, v in by_kind.items()}},
        "expected_findings": len(manifest),
        "files_with_findings": len({m[0] for m in manifest}),
        "planted": planted,
        "seconds": {"sigs": round(t_sigs - t0, 2), "corpus": round(t_corpus - t_sigs, 2),
                    "db": round(t_db - t_corpus, 2)},
    }
    with open(os.path.join(out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=2)
        f.write("\n")
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    sys.exit(main())
