#!/usr/bin/env python3
"""Helpers for bench/smtp.sh (Python 3 stdlib only).

  smtp_probe.py wait-sink FILE N TIMEOUT [STATUS-FILE]
      Polls the running counters that `smtp-sink -c` writes to FILE until
      mesg >= N; prints the Unix time (float) when it saw it. Exit 1 on
      timeout, or at once when STATUS-FILE (the load generator's exit status,
      written when it ends) holds anything but 0.

  smtp_probe.py cpu PID
      "utime stime" of PID in seconds (from /proc/PID/stat).

  smtp_probe.py latency --target HOST:PORT --sink-port PORT --n N
                        (--size BYTES | --files LISTFILE) --out JSON
      Sends N messages one after another over one SMTP session to TARGET and
      times, for each, the final "." to its reply (`reply`), and the final
      "." to the moment the message arrives at a minimal SMTP sink this
      script runs on 127.0.0.1:PORT (`delivery`; when TARGET is that sink
      itself, both are the direct path). Each message carries a token header
      so the sink can tell which message arrived. Writes every sample and
      the percentiles to JSON.
"""
import json
import os
import re
import socket
import socketserver
import sys
import threading
import time

TOKEN_RE = re.compile(rb"^X-Bench-Token: (\d+)\r?$", re.M)


def wait_sink(path, n, timeout, status=None):
    deadline = time.time() + timeout
    last = 0
    while time.time() < deadline:
        if status and os.path.exists(status):
            with open(status) as f:
                st = f.read().strip()
            if st and st != "0":
                print(f"wait-sink: the load generator failed (exit {st}) after {last} of {n} messages",
                      file=sys.stderr)
                return 1
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 200))
                tail = f.read()
            m = re.findall(rb"mesg=(\d+)", tail)
            if m:
                last = int(m[-1])
                if last >= n:
                    print(f"{time.time():.6f}")
                    return 0
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    print(f"wait-sink: only {last} of {n} messages arrived within {timeout} s", file=sys.stderr)
    return 1


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat(5) are utime and stime; after the ")" the list starts at field 3.
    hz = os.sysconf("SC_CLK_TCK")
    print(f"{int(fields[11]) / hz:.3f} {int(fields[12]) / hz:.3f}")
    return 0


class Arrivals:
    def __init__(self):
        self.lock = threading.Lock()
        self.times = {}
        self.cond = threading.Condition(self.lock)

    def record(self, token, t):
        with self.cond:
            self.times.setdefault(token, t)
            self.cond.notify_all()

    def wait(self, token, timeout):
        deadline = time.perf_counter() + timeout
        with self.cond:
            while token not in self.times:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.times[token]


ARRIVALS = Arrivals()


class SinkHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for mxguard's delivery client (no extensions offered)."""

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.reply("220 probe-sink ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.reply("250 probe-sink")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.reply("250 2.0.0 Ok")
            elif verb == b"DATA":
                self.reply("354 go ahead")
                chunks = []
                while True:
                    l = self.rfile.readline()
                    if not l or l in (b".\r\n", b".\n"):
                        break
                    chunks.append(l)
                t = time.perf_counter()
                m = TOKEN_RE.search(b"".join(chunks[:200]))
                if m:
                    ARRIVALS.record(int(m.group(1)), t)
                self.reply("250 2.0.0 Ok: queued")
            elif verb == b"QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")


class Sink(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def messages(args):
    """Message bodies (bytes, CRLF lines, already dot-stuffed), without the token header."""
    if args.size is not None:
        line = b"X" * 78 + b"\r\n"
        body = line * max(1, args.size // len(line))
        head = (b"From: <probe@bench.test>\r\nTo: <rcpt@example.com>\r\n"
                b"Subject: latency probe\r\n\r\n")
        return [head + body]
    out = []
    with open(args.files) as f:
        for name in f.read().split():
            with open(name, "rb") as m:
                data = m.read()
            lines = data.replace(b"\r\n", b"\n").split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            lines = [b"." + l if l.startswith(b".") else l for l in lines]
            out.append(b"\r\n".join(lines) + b"\r\n")
    return out


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def latency(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="smtp_probe.py latency")
    ap.add_argument("--target", required=True)
    ap.add_argument("--sink-port", type=int, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int)
    ap.add_argument("--files")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args(argv)
    bodies = messages(args)

    sink = Sink(("127.0.0.1", args.sink_port), SinkHandler)
    threading.Thread(target=sink.serve_forever, daemon=True).start()

    host, port = args.target.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=args.timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    r = s.makefile("rb")

    def reply():
        while True:
            l = r.readline()
            if not l:
                raise RuntimeError("connection closed")
            if l[3:4] != b"-":
                return int(l[:3]), l

    def cmd(c, want):
        s.sendall(c + b"\r\n")
        code, l = reply()
        if code != want:
            raise RuntimeError(f"{c!r}: {l!r}")

    code, l = reply()
    assert code == 220, l
    cmd(b"EHLO probe.bench.test", 250)
    replies, deliveries = [], []
    for i in range(args.n):
        body = b"X-Bench-Token: %d\r\n" % i + bodies[i % len(bodies)]
        cmd(b"MAIL FROM:<probe@bench.test>", 250)
        cmd(b"RCPT TO:<rcpt@example.com>", 250)
        cmd(b"DATA", 354)
        s.sendall(body)
        s.sendall(b".\r\n")
        t0 = time.perf_counter()
        code, l = reply()
        t1 = time.perf_counter()
        if code != 250:
            raise RuntimeError(f"message {i}: {l!r}")
        t2 = ARRIVALS.wait(i, args.timeout)
        if t2 is None:
            raise RuntimeError(f"message {i} did not reach the sink in {args.timeout} s")
        replies.append((t1 - t0) * 1000)
        deliveries.append((t2 - t0) * 1000)
    cmd(b"QUIT", 221)
    s.close()
    sink.shutdown()
    out = {"n": args.n, "reply_ms": replies, "delivery_ms": deliveries}
    for k in ("reply_ms", "delivery_ms"):
        v = sorted(out[k])
        out[k + "_p50"] = pct(v, 50)
        out[k + "_p99"] = pct(v, 99)
    with open(args.out, "w") as f:
        json.dump(out, f)
    print(f"reply p50 {out['reply_ms_p50']:.2f} ms p99 {out['reply_ms_p99']:.2f} ms; "
          f"delivery p50 {out['delivery_ms_p50']:.2f} ms p99 {out['delivery_ms_p99']:.2f} ms",
          file=sys.stderr)
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "wait-sink":
        return wait_sink(rest[0], int(rest[1]), float(rest[2]), rest[3] if len(rest) > 3 else None)
    if cmd == "cpu":
        return cpu(rest[0])
    if cmd == "latency":
        return latency(rest)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
