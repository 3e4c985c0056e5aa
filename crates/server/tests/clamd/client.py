#!/usr/bin/env python3
"""A clamd protocol client written from clamd's documentation (man clamd),
Python 3 standard library only. Used by crates/server/tests/clamd.rs against
mxguard's socket and against a real clamd, to compare the raw replies.

Usage:
  client.py ADDR cases CASE...          run named cases; one JSON line per case:
                                        {"case": [reply as latin-1, seconds]}
  client.py ADDR idsession FILE...      one IDSESSION: for each file a zINSTREAM
                                        and a zSCAN; prints {"1": reply, ...}
  client.py ADDR reload-during-scan DIR sends CONTSCAN DIR, waits until STATS
                                        shows it running, sends RELOAD, waits
                                        for VERSION to change, checks STATS
                                        again, then prints the replies as JSON
ADDR is HOST:PORT or unix:PATH. Environment: EICAR (path of an EICAR file),
DIR (a directory with one infected file), MIXED (a directory with several),
FILE (an infected file), CLEAN (a clean directory).
"""
import json
import os
import socket
import struct
import sys
import threading
import time

ADDR = sys.argv[1]
TIMEOUT = 30


def connect():
    if ADDR.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(ADDR[5:])
    else:
        host, port = ADDR.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    s.settimeout(TIMEOUT)
    return s


def read_all(s):
    """Everything until the server closes (or the timeout, marked)."""
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        out += b"<CLIENT TIMEOUT>"
    except ConnectionResetError:
        out += b"<RESET>"
    return out


def run(*parts, pause=0.0):
    """Sends the parts (pausing between them) and returns (reply, seconds)."""
    s = connect()
    t = time.time()
    for p in parts:
        s.sendall(p)
        if pause:
            time.sleep(pause)
    r = read_all(s)
    s.close()
    return r, round(time.time() - t, 1)


def chunks(data, n=None):
    """INSTREAM framing: <u32 big-endian length><data>..., then a zero length."""
    n = n or max(1, len(data))
    out = b""
    for i in range(0, len(data), n):
        c = data[i:i + n]
        out += struct.pack(">I", len(c)) + c
    return out + struct.pack(">I", 0)


def env(name):
    v = os.environ.get(name)
    if not v:
        sys.exit(f"client.py: environment variable {name} is required for this case")
    return v


def eicar():
    with open(env("EICAR"), "rb") as f:
        return f.read()


MIB = 1024 * 1024

CASES = {
    "ping_old": lambda: run(b"PING"),
    "ping_old_crlf": lambda: run(b"PING\r\n"),
    "ping_n": lambda: run(b"nPING\n"),
    "ping_z": lambda: run(b"zPING\0"),
    "ping_n_crlf": lambda: run(b"nPING\r\n"),
    "ping_trailing": lambda: run(b"nPING x\n"),
    "ping_lower": lambda: run(b"nping\n"),
    "pingpong": lambda: run(b"nPINGPONG\n"),
    "empty_n": lambda: run(b"n\n"),
    "empty_z": lambda: run(b"z\0"),
    "unknown_n": lambda: run(b"nFOO\n"),
    "unknown_z": lambda: run(b"zFOO\0"),
    "unknown_old": lambda: run(b"FOO"),
    "end_without_session": lambda: run(b"nEND\n"),
    "scan_no_argument": lambda: run(b"nSCAN\n"),
    "scan_missing": lambda: run(b"nSCAN /nonexistent/x\n"),
    "scan_missing_z": lambda: run(b"zSCAN /nonexistent/x\0"),
    "scan_file": lambda: run(b"nSCAN " + env("FILE").encode() + b"\n"),
    "scan_file_old": lambda: run(b"SCAN " + env("FILE").encode()),
    "scan_tab_separator": lambda: run(b"nSCAN\t" + env("FILE").encode() + b"\n"),
    "scan_dir": lambda: run(b"nSCAN " + env("DIR").encode() + b"\n"),
    "contscan_dir": lambda: run(b"nCONTSCAN " + env("DIR").encode() + b"/\n"),
    "allmatchscan_dir": lambda: run(b"zALLMATCHSCAN " + env("DIR").encode() + b"\0"),
    "allmatchscan_old": lambda: run(b"ALLMATCHSCAN " + env("DIR").encode()),
    "multiscan_file": lambda: run(b"nMULTISCAN " + env("FILE").encode() + b"\n"),
    "contscan_mixed": lambda: run(b"nCONTSCAN " + env("MIXED").encode() + b"\n"),
    "multiscan_mixed": lambda: run(b"zMULTISCAN " + env("MIXED").encode() + b"\0"),
    "idsession_scan_mixed": lambda: run(
        b"zIDSESSION\0zSCAN " + env("MIXED").encode() + b"/sub\0zSCAN " + env("MIXED").encode()
        + b"/note.txt\0zSCAN " + env("MIXED").encode() + b"/empty\0zEND\0"),
    "contscan_clean": lambda: run(b"nCONTSCAN " + env("CLEAN").encode() + b"\n"),
    "scan_clean_trailing_slash": lambda: run(b"zSCAN " + env("CLEAN").encode() + b"//\0"),
    "instream_eicar_z": lambda: run(b"zINSTREAM\0" + chunks(eicar())),
    "instream_eicar_n_small_chunks": lambda: run(b"nINSTREAM\n" + chunks(eicar(), 7)),
    "instream_clean": lambda: run(b"zINSTREAM\0" + chunks(b"hello world")),
    "instream_empty": lambda: run(b"zINSTREAM\0" + struct.pack(">I", 0)),
    "instream_old_style": lambda: run(b"INSTREAM\n" + chunks(b"x")),
    "instream_oversized_chunk": lambda: run(
        b"zINSTREAM\0" + struct.pack(">I", 2 * MIB) + b"x" * 1000),
    "instream_exactly_the_limit": lambda: run(b"zINSTREAM\0" + chunks(b"a" * MIB, 65536)),
    "instream_one_byte_over": lambda: run(b"zINSTREAM\0" + chunks(b"a" * (MIB + 1), 65536)),
    "instream_split_everywhere": lambda: run(
        b"zINS", b"TREAM\0\0\0", b"\0\x44" + eicar()[:10], eicar()[10:], b"\0\0", b"\0\0",
        pause=0.2),
    "instream_then_more": lambda: run(b"zINSTREAM\0" + chunks(eicar()) + b"zPING\0"),
    "two_commands": lambda: run(b"nPING\nnPING\n"),
    "versioncommands_old": lambda: run(b"VERSIONCOMMANDS"),
    "stats_old": lambda: run(b"STATS"),
    "detstats": lambda: run(b"nDETSTATS\n"),
    "idsession": lambda: run(
        b"zIDSESSION\0zPING\0zINSTREAM\0" + chunks(eicar()) + b"zSCAN " + env("FILE").encode()
        + b"\0zSCAN /nonexistent\0zEND\0"),
    "idsession_n": lambda: run(b"nIDSESSION\nnPING\nnINSTREAM\n" + chunks(b"clean") + b"nEND\n"),
    "idsession_mixed_terminators": lambda: run(b"zIDSESSION\0nPING\nzPING\0zEND\0"),
    "idsession_contscan": lambda: run(b"zIDSESSION\0zPING\0zCONTSCAN /tmp\0zPING\0zEND\0"),
    "idsession_old_style": lambda: run(b"zIDSESSION\0zPING\0", b"PING", pause=0.3),
    "idsession_unknown": lambda: run(b"zIDSESSION\0zPING\0zFOO\0zPING\0zEND\0"),
    "idsession_oversized": lambda: run(
        b"zIDSESSION\0zPING\0zINSTREAM\0" + struct.pack(">I", 2 * MIB) + b"x", pause=0.3),
    "idsession_nested": lambda: run(b"zIDSESSION\0zIDSESSION\0zEND\0"),
    "idsession_only_end": lambda: run(b"zIDSESSION\0zEND\0"),
    "idsession_fildes_without_fd": lambda: run(b"zIDSESSION\0zFILDES\0zEND\0"),
    "command_too_long": lambda: run(b"n" + b"A" * 5000 + b"\n"),
    "command_long_but_fits": lambda: run(b"n" + b"A" * 1100 + b"\n"),
    "path_too_long": lambda: run(b"nSCAN /" + b"A" * 4000 + b"\n"),
    # Timeouts (the test sets short CommandReadTimeout/ReadTimeout on both servers).
    "idle_connection": lambda: run(b""),
    "partial_command": lambda: run(b"nPI"),
    "stalled_stream": lambda: run(b"zINSTREAM\0\0\0\0\x10abc"),
    "idle_session": lambda: run(b"zIDSESSION\0zPING\0"),
    # Replies that differ from clamd on purpose; checked by shape.
    "version_n": lambda: run(b"nVERSION\n"),
    "versioncommands_z": lambda: run(b"zVERSIONCOMMANDS\0"),
    "stats_z": lambda: run(b"zSTATS\0"),
    "stats_in_session": lambda: run(b"zIDSESSION\0zSTATS\0zEND\0"),
    "shutdown": lambda: run(b"nSHUTDOWN\n"),
}


def cases(names):
    results = {}

    def one(name):
        try:
            r, t = CASES[name]()
            results[name] = [r.decode("latin-1"), t]
        except Exception as e:  # a connection failure is a result too
            results[name] = ["EXCEPTION " + repr(e), 0]

    # In parallel: the timeout cases take seconds each.
    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in names:
        print(json.dumps({n: results[n]}))


def idsession(files):
    s = connect()
    req = b"zIDSESSION\0"
    for f in files:
        with open(f, "rb") as fh:
            req += b"zINSTREAM\0" + chunks(fh.read(), 4096)
        req += b"zSCAN " + f.encode() + b"\0"
    req += b"zEND\0"
    # Send while reading: clamd requires clients to read replies as they come.
    sender = threading.Thread(target=s.sendall, args=(req,))
    sender.start()
    raw = read_all(s)
    sender.join()
    replies = {}
    for line in raw.split(b"\0"):
        if not line:
            continue
        rid, _, rest = line.decode("latin-1").partition(": ")
        replies.setdefault(rid, []).append(rest)
    print(json.dumps(replies))


def stats():
    return run(b"zSTATS\0")[0].decode("latin-1")


def version():
    return run(b"nVERSION\n")[0].decode("latin-1").strip()


def reload_during_scan(directory):
    """CONTSCAN a big directory; RELOAD while it runs; report what happened."""
    before = version()
    s = connect()
    s.settimeout(120)
    s.sendall(b"nCONTSCAN " + directory.encode() + b"\n")
    t = time.time()
    while "\tCONTSCAN " not in stats():
        if time.time() - t > TIMEOUT:
            sys.exit("the scan never showed up in STATS")
        time.sleep(0.01)
    reload_reply = run(b"nRELOAD\n")[0].decode("latin-1")
    while version() == before:
        if time.time() - t > TIMEOUT:
            sys.exit("VERSION never changed after RELOAD")
        time.sleep(0.01)
    still_running = "\tCONTSCAN " in stats()
    result = read_all(s).decode("latin-1")
    print(json.dumps({
        "before": before,
        "reload": reload_reply,
        "after": version(),
        "scan_running_after_reload": still_running,
        "scan_result": result,
    }))


if __name__ == "__main__":
    mode = sys.argv[2]
    if mode == "cases":
        cases(sys.argv[3:] or list(CASES))
    elif mode == "idsession":
        idsession(sys.argv[3:])
    elif mode == "reload-during-scan":
        reload_during_scan(sys.argv[3])
    else:
        sys.exit(f"unknown mode {mode}")
