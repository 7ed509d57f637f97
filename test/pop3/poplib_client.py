"""Drives Python's poplib against the Cartero POP3 server for the end-to-end tests.

Reads a JSON job on stdin: {port, user, password, steps: [[conn, action, args...], ...]} and prints a
JSON list with one {"ok": result} or {"error": text} per step. Connections are numbered so one job can
hold several sessions at once (the [IN-USE] test). Message bodies come back base64-encoded, rebuilt
from poplib's (already unstuffed) lines with CRLF, so the caller compares them with the stored bytes.
"""
import base64
import json
import poplib
import ssl
import sys


def body(lines):
    return base64.b64encode(b"".join(line + b"\r\n" for line in lines)).decode()


def main():
    job = json.load(sys.stdin)
    conns = {}
    results = []
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for step in job["steps"]:
        n, action, *args = step
        try:
            c = conns.get(n)
            if action == "connect":
                conns[n] = poplib.POP3("127.0.0.1", job["port"], timeout=15)
                out = conns[n].getwelcome().decode()
            elif action == "connect_ssl":
                conns[n] = poplib.POP3_SSL("127.0.0.1", args[0], timeout=15, context=ctx)
                out = conns[n].getwelcome().decode()
            elif action == "stls":
                out = c.stls(context=ctx).decode()
            elif action == "capa":
                out = sorted(c.capa().keys())
            elif action == "user":
                out = c.user(args[0] if args else job["user"]).decode()
            elif action == "pass":
                out = c.pass_(args[0] if args else job["password"]).decode()
            elif action == "auth_plain":
                token = base64.b64encode(("\0%s\0%s" % (job["user"], job["password"])).encode()).decode()
                out = c._shortcmd("AUTH PLAIN " + token).decode()
            elif action == "stat":
                out = list(c.stat())
            elif action == "list":
                resp, lines, _ = c.list()
                out = [line.decode() for line in lines]
            elif action == "uidl":
                resp, lines, _ = c.uidl()
                out = [line.decode() for line in lines]
            elif action == "retr":
                resp, lines, _ = c.retr(args[0])
                out = body(lines)
            elif action == "top":
                resp, lines, _ = c.top(args[0], args[1])
                out = body(lines)
            elif action == "dele":
                out = c.dele(args[0]).decode()
            elif action == "rset":
                out = c.rset().decode()
            elif action == "noop":
                out = c.noop().decode()
            elif action == "quit":
                out = c.quit().decode()
            elif action == "close":
                c.close()
                out = None
            else:
                raise ValueError("unknown action " + action)
            results.append({"ok": out})
        except Exception as e:  # the test asserts on the text
            results.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
