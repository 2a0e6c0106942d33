#!/usr/bin/env python3
"""Sends the request cases of malformed.json or oversized.json (beside this file) and checks
every answer; tests/integration/api.rs reads the same files for the app directly.

  send.py malformed|oversized --port PORT [--host 127.0.0.1] [--via app|traefik] [--runs N]

--via app (default) talks to one app replica; --via traefik to Traefik's web entry point,
with /api before every target and the answers Traefik gives itself where a case says so.
oversized cases are each sent `runs` times (the file's, or --runs) in a row, on a fresh
connection each; after each case the app must still answer /healthz. Prints one line per
case, then a JSON summary line ({"requests", "by_status", "failed", "slowest_s"}); exits 1
if any answer differs from the expected one. Python 3 standard library only.
"""

import argparse
import json
import os
import re
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPEAT = re.compile(r"\{(\d+)\*(.)\}")


def expand(text):
    """`{N*c}` -> c repeated N times; then the string's characters as bytes (latin-1)."""
    return REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text).encode("latin-1")


def build(case, prefix=""):
    """The raw request bytes of a case (the rules are in malformed.json's `about`)."""
    if "raw" in case:
        return expand(case["raw"])
    head = [f"{case.get('method', 'GET')} {prefix}".encode() + expand(case["target"]) + b" HTTP/1.1", b"Host: t"]
    head += [expand(h) for h in case.get("headers", [])]
    run = case.get("header_run")
    if run:
        value = expand(run["value"])
        head += [f"X-H{i}: ".encode() + value for i in range(run["count"])]
    body = expand(case["body"]) if "body" in case else None
    names_length = any(h.lower().startswith("content-length:") for h in case.get("headers", []))
    if body is not None and case.get("chunked"):
        head.append(b"Transfer-Encoding: chunked")
        body = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    elif body is not None and not names_length:
        head.append(f"Content-Length: {len(body)}".encode())
    if not case.get("keep_open"):
        head.append(b"Connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + (body or b"")


def exchange(host, port, data, timeout=10.0):
    """Sends data, reads one answer -> (status, headers dict, body); status 0 for no answer.
    Keeps what arrived before a reset: a server that refuses a huge request early closes
    with unread input, which resets the connection."""
    buf = b""
    with socket.create_connection((host, port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        try:
            while True:
                head, sep, rest = buf.partition(b"\r\n\r\n")
                if sep:
                    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    if m and len(rest) >= int(m.group(1)):
                        break
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError:
            pass
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        return 0, {}, b""
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return int(m.group(1)), headers, body


def json_error(headers, body):
    """The `error` of a JSON error body, or None."""
    if not headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        error = json.loads(body).get("error")
    except ValueError:
        return None
    return error if isinstance(error, str) and error else None


def healthy(host, port, prefix):
    return exchange(host, port, build({"target": "/healthz"}, prefix))[0] == 200


def expected_malformed(case, via):
    """(status, JSON body wanted) for a malformed case."""
    if via == "traefik" and "traefik" in case:
        status = case["traefik"]
        return (0 if status is None else status), not case.get("traefik_plain", False)
    return case["status"], True


def expected_oversized(doc, case, via):
    """(status, check(headers, body) -> problem or None) for an oversized case."""
    if via == "traefik" and case["answered_by"] == "traefik":
        want = doc["traefik_body"]
        return doc["status"], lambda h, b: None if b.strip() == want.encode() else f"body {b[:80]!r}, want {want!r}"
    want = doc["app_error"]
    return doc["status"], lambda h, b: None if json_error(h, b) == want else f"body {b[:80]!r}, want JSON error {want!r}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite", choices=["malformed", "oversized"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--via", choices=["app", "traefik"], default="app")
    ap.add_argument("--runs", type=int)
    args = ap.parse_args()
    with open(os.path.join(HERE, f"{args.suite}.json"), encoding="utf-8") as f:
        doc = json.load(f)
    prefix = "/api" if args.via == "traefik" else ""
    runs = args.runs or doc.get("runs", 1)
    by_status, failed, requests, slowest = {}, [], 0, 0.0
    for case in doc["cases"]:
        data = build(case, prefix)
        if args.suite == "malformed":
            status, want_json = expected_malformed(case, args.via)
            check = (lambda h, b: None if json_error(h, b) else f"no JSON error body: {b[:80]!r}") if want_json \
                else (lambda h, b: None)
        else:
            status, check = expected_oversized(doc, case, args.via)
        seen, problems = {}, []
        for _ in range(runs):
            t = time.monotonic()
            got, headers, body = exchange(args.host, args.port, data)
            slowest = max(slowest, time.monotonic() - t)
            requests += 1
            seen[got] = seen.get(got, 0) + 1
            by_status[got] = by_status.get(got, 0) + 1
            problem = f"status {got}, want {status}: {body[:60]!r}" if got != status else (check(headers, body) if got else None)
            if problem and problem not in problems:
                problems.append(problem)
        if not healthy(args.host, args.port, prefix):
            problems.append("/healthz did not answer 200 afterwards")
        tally = ", ".join(f"{n}x {s}" for s, n in sorted(seen.items()))
        print(f"{'FAIL' if problems else 'ok  '} {case['what']} ({len(data)} bytes): {tally}"
              + ("".join(f"\n       {p}" for p in problems)))
        if problems:
            failed.append(case["what"])
    print(json.dumps({"suite": args.suite, "via": args.via, "runs": runs, "requests": requests,
                      "by_status": {str(k): v for k, v in sorted(by_status.items())},
                      "failed": failed, "slowest_s": round(slowest, 2)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
