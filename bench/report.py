#!/usr/bin/env python3
"""Turns one benchmark run directory (written by bench/run.sh) into a table.

A run directory holds one sub-directory per tool row:

  <row>/cmd.txt          the scan command line (shown in the report)
  <row>/load.time        `/usr/bin/time -v` of a scan of one tiny file (one per repeat: load.time.N)
  <row>/load.sec         load time measured some other way (clamd: start -> PONG)
  <row>/scan.time        `/usr/bin/time -v` of the full corpus scan (scan.time.N per repeat)
  <row>/scan.out         its standard output (`path: NAME FOUND` / `path: OK` lines)
  <row>/scan.err         its standard error
  <row>/scan.rc          its exit code
  <row>/hwm_kb           peak RSS measured some other way (clamd: VmHWM), KiB
  <row>/load_hwm_kb      (clamd) VmHWM right after PONG, KiB
  <row>/includes_load    present when the scan's wall time includes loading the db
  <row>/first_match      present when the tool reports only the first match per file

plus run.json (preset, corpus dir, versions...).  Output: Markdown on stdout
and, with --out, in that file.
"""

import argparse
import json
import os
import re
import sys

ROWS = ["mxguard", "mxguard-1t", "mxguard-cold", "clamscan", "clamd", "clamd-multiscan"]
MXG_ROWS = ["mxguard", "mxguard-1t", "mxguard-cold"]
REF_ROWS = ["clamscan", "clamd", "clamd-multiscan"]


def read(path, default=None):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return default


def parse_time_v(text):
    """(wall seconds, max RSS KiB, exit status) from GNU time -v output."""
    if not text:
        return None, None, None
    wall = rss = status = None
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    if m:
        parts = [float(x) for x in m.group(1).split(":")]
        wall = 0.0
        for p in parts:
            wall = wall * 60 + p
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        rss = int(m.group(1))
    m = re.search(r"Exit status: (\d+)", text)
    if m:
        status = int(m.group(1))
    return wall, rss, status


def best_time(d, stem):
    """Fastest of stem, stem.1, stem.2 ... : (wall, max rss over all, count)."""
    files = [f for f in os.listdir(d) if f == stem or f.startswith(stem + ".")]
    walls, rsss = [], []
    for f in sorted(files):
        w, r, _ = parse_time_v(read(os.path.join(d, f)))
        if w is not None:
            walls.append(w)
        if r is not None:
            rsss.append(r)
    if not walls:
        return None, (max(rsss) if rsss else None), 0
    return min(walls), (max(rsss) if rsss else None), len(walls)


def norm_path(p, prefixes):
    p = p.strip()
    for pre in prefixes:
        if p.startswith(pre):
            return p[len(pre):].lstrip("/")
    return p


def parse_findings(text, prefixes):
    """Set of (relative path, name) from `path: NAME FOUND` lines; also error lines."""
    found, errors = set(), []
    for line in (text or "").splitlines():
        line = line.rstrip("\r")
        if line.endswith(" FOUND"):
            body = line[:-len(" FOUND")]
            i = body.rfind(": ")
            if i < 0:
                continue
            path, name = body[:i], body[i + 2:].strip()
            if name.endswith(".UNOFFICIAL"):
                name = name[:-len(".UNOFFICIAL")]
            found.add((norm_path(path, prefixes), name))
        elif line.endswith(" ERROR") or line.endswith(" ERROR."):
            errors.append(line)
    return found, errors


def load_manifest(path):
    exp = set()
    kinds = {}
    for line in (read(path) or "").splitlines():
        if not line or line.startswith("#"):
            continue
        f = line.split("\t")
        rel, name = f[0], f[1]
        exp.add((rel, name))
        kinds[(rel, name)] = f[3] if len(f) > 3 else f[2]
    return exp, kinds


def fmt(x, nd=2, unit=""):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        if abs(x) >= 100:
            return "%.0f%s" % (x, unit)
        if abs(x) >= 10:
            return "%.1f%s" % (x, unit)
        return ("%." + str(nd) + "f%s") % (x, unit)
    return "%s%s" % (x, unit)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--out", help="also write the Markdown here")
    ap.add_argument("--max-diff", type=int, default=15, help="discrepancies listed per comparison")
    a = ap.parse_args()

    info = json.loads(read(os.path.join(a.run_dir, "run.json"), "{}"))
    corpus = info.get("corpus_dir", "")
    prefixes = sorted({corpus.rstrip("/") + "/", os.path.realpath(corpus).rstrip("/") + "/"}, key=len, reverse=True)
    stats = json.loads(read(info.get("stats", ""), "{}") or "{}")
    corpus_bytes = stats.get("corpus", {}).get("bytes") or info.get("corpus_bytes")
    expected, exp_kind = load_manifest(info.get("manifest", ""))
    exp_files = {p for p, _ in expected}

    rows = {}
    for row in ROWS:
        d = os.path.join(a.run_dir, row)
        if not os.path.isdir(d):
            continue
        r = {"cmd": (read(os.path.join(d, "cmd.txt")) or "").strip()}
        lw, lrss, _ = best_time(d, "load.time")
        if lw is None and read(os.path.join(d, "load.sec")):
            lw = float(read(os.path.join(d, "load.sec")).strip())
        sw, srss, nrep = best_time(d, "scan.time")
        hwm = read(os.path.join(d, "hwm_kb"))
        hwm = int(hwm) if hwm and hwm.strip().isdigit() else None
        lhwm = read(os.path.join(d, "load_hwm_kb"))
        lhwm = int(lhwm) if lhwm and lhwm.strip().isdigit() else None
        rss_vals = [x for x in (lrss, srss, hwm) if x is not None]
        if hwm is not None:
            rss_vals = [hwm]  # clamd: the daemon's own peak, not clamdscan's
        r["load_s"] = lw
        r["load_rss_mib"] = (lhwm if lhwm is not None else lrss) / 1024 if (lhwm or lrss) else None
        r["peak_rss_mib"] = max(rss_vals) / 1024 if rss_vals else None
        r["scan_wall_s"] = sw
        includes_load = os.path.exists(os.path.join(d, "includes_load"))
        r["includes_load"] = includes_load
        if sw is not None:
            r["scan_only_s"] = max(0.001, sw - (lw or 0)) if includes_load else sw
        else:
            r["scan_only_s"] = None
        r["mbps"] = (corpus_bytes / 1e6 / r["scan_only_s"]) if (corpus_bytes and r["scan_only_s"]) else None
        r["rc"] = (read(os.path.join(d, "scan.rc")) or "").strip()
        found, errs = parse_findings(read(os.path.join(d, "scan.out")), prefixes)
        err_text = (read(os.path.join(d, "scan.err")) or "").strip()
        r["found"] = found
        r["errors"] = errs
        r["stderr_lines"] = [ln for ln in err_text.splitlines() if ln.strip()
                             and not ln.startswith("Command exited with non-zero status")]
        r["first_match"] = os.path.exists(os.path.join(d, "first_match"))
        r["repeats"] = nrep
        rows[row] = r

    out = []
    w = out.append
    w("# mxguard vs ClamAV benchmark (%s)" % info.get("preset", "?"))
    w("")
    w("- Date: %s; machine: %s, %s cores, %s" % (info.get("date", "?"), info.get("cpu", "?"),
                                                info.get("cores", "?"), info.get("mem", "?")))
    w("- Versions: %s; mxguard %s" % (info.get("clamav_version", "?"), info.get("mxguard_version", "?")))
    sig = stats.get("signatures", {})
    c = stats.get("corpus", {})
    w("- Database: %s signatures (hdb %s, hsb %s, ndb %s, ldb %s), seed %s; clamscan loaded %s"
      % (sig.get("total", "?"), sig.get("hdb", "?"), sig.get("hsb", "?"), sig.get("ndb", "?"),
         sig.get("ldb", "?"), stats.get("seed", "?"), info.get("clamscan_known", "?")))
    kinds = c.get("by_kind", {})
    w("- Corpus: %s files, %.1f MiB (%s); %d expected findings in %d files"
      % (c.get("files", "?"), (corpus_bytes or 0) / 1048576,
         ", ".join("%s %d" % (k, v["files"]) for k, v in kinds.items()),
         len(expected), len(exp_files)))
    w("- Repeats: %s (best wall time kept)" % info.get("repeat", 1))
    w("")
    w("| tool | load (s) | RSS after load (MiB) | peak RSS (MiB) | full scan wall (s) | scan only (s) | throughput (MB/s) | findings | missed vs manifest | extra vs manifest | errors |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in ROWS:
        if row not in rows:
            continue
        r = rows[row]
        if r["first_match"]:
            got_files = {p for p, _ in r["found"]}
            missed = len(exp_files - got_files)
            extra = len(got_files - exp_files)
            nf = "%d files" % len(got_files)
            missed_s, extra_s = "%d files" % missed, "%d files" % extra
        else:
            missed_s = str(len(expected - r["found"]))
            extra_s = str(len(r["found"] - expected))
            nf = str(len(r["found"]))
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            row, fmt(r["load_s"]), fmt(r["load_rss_mib"], 0), fmt(r["peak_rss_mib"], 0),
            fmt(r["scan_wall_s"]), fmt(r["scan_only_s"]), fmt(r["mbps"]), nf, missed_s, extra_s,
            len(r["errors"])))
    w("")
    w("Throughput = corpus bytes (10^6 per MB) / scan-only time.  For mxguard and clamscan the scan-only")
    w("time is the full-scan wall time minus the load time (a scan of one tiny file); for clamd it is the")
    w("clamdscan wall time against an already loaded daemon, and RSS is the daemon's VmHWM.")
    w("`clamd-multiscan` reports only the first match per file (clamd has no all-match MULTISCAN), so")
    w("its parity is counted in files.")
    w("")

    # ratios
    lines = []
    for m in MXG_ROWS:
        if m not in rows:
            continue
        for ref in REF_ROWS:
            if ref not in rows:
                continue
            M, R = rows[m], rows[ref]
            lines.append("| %s vs %s | %s | %s | %s |" % (
                m, ref,
                fmt(ratio(R["load_s"], M["load_s"]), 1, "x"),
                fmt(ratio(R["peak_rss_mib"], M["peak_rss_mib"]), 1, "x"),
                fmt(ratio(M["mbps"], R["mbps"]), 1, "x")))
    if lines:
        w("Ratios (above 1 means mxguard is better):")
        w("")
        w("| comparison | load time (theirs / ours) | peak RSS (theirs / ours) | throughput (ours / theirs) |")
        w("|---|---:|---:|---:|")
        out.extend(lines)
        w("")

    # parity details
    w("## Detection parity")
    w("")

    def listing(title, items):
        items = sorted(items)
        w("%s: %d" % (title, len(items)))
        for p, n in items[:a.max_diff]:
            k = exp_kind.get((p, n))
            w("    %s: %s%s" % (p, n, " (%s)" % k if k else ""))
        if len(items) > a.max_diff:
            w("    ... %d more" % (len(items) - a.max_diff))

    for row in ROWS:
        if row not in rows:
            continue
        r = rows[row]
        w("### %s" % row)
        w("")
        w("Command: `%s` (exit code %s)" % (r["cmd"], r["rc"] or "?"))
        w("")
        w("```")
        if r["first_match"]:
            got_files = {p for p, _ in r["found"]}
            w("files reported infected: %d (expected %d)" % (len(got_files), len(exp_files)))
            listing("expected files not reported", {(p, "") for p in exp_files - got_files})
            listing("files reported but not expected", {(p, "") for p in got_files - exp_files})
        else:
            listing("missed (in manifest, not reported)", expected - r["found"])
            listing("extra (reported, not in manifest)", r["found"] - expected)
            for m in MXG_ROWS:
                if m in rows and m != row and row not in MXG_ROWS:
                    listing("reported by %s only" % row, r["found"] - rows[m]["found"])
                    listing("reported by %s only" % m, rows[m]["found"] - r["found"])
                    break
        if r["errors"]:
            w("error lines: %d, e.g. %s" % (len(r["errors"]), r["errors"][0]))
        if r["stderr_lines"]:
            w("stderr: %d lines, first: %s" % (len(r["stderr_lines"]), r["stderr_lines"][0][:200]))
        w("```")
        w("")
        if not r["first_match"] and expected:
            by = {}
            for key in expected:
                k = exp_kind[key]
                t = by.setdefault(k, [0, 0])
                t[0] += 1
                t[1] += key in r["found"]
            w("Recall by class (db file / target / offset, or hash / file kind): "
              + ", ".join("%s %d/%d" % (k, v[1], v[0]) for k, v in sorted(by.items())))
            w("")

    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text)
    summary = {row: {k: v for k, v in r.items() if k not in ("found", "errors", "stderr_lines")}
               for row, r in rows.items()}
    for row, r in rows.items():
        summary[row]["findings"] = len(r["found"])
        summary[row]["missed"] = len(expected - r["found"])
        summary[row]["extra"] = len(r["found"] - expected)
    with open(os.path.join(a.run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
