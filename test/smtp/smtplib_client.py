"""Python smtplib as a real SMTP client for Cartero's tests.

Reads one JSON job on stdin, prints one JSON result on stdout. The message is given base64-encoded and
sent as bytes, so smtplib changes nothing but the dot-stuffing and the final CRLF (the test compares
bytes). Modes: plain, starttls, pipelined (one write of MAIL/RCPT/DATA through the raw socket, as
RFC 2920 allows, after smtplib's EHLO).
"""
import base64
import json
import smtplib
import socket
import ssl
import sys


def login(smtp, auth):
    if not auth:
        return
    smtp.user, smtp.password = auth["user"], auth["password"]
    mech = auth["mechanism"]
    smtp.auth(mech, smtp.auth_plain if mech == "PLAIN" else smtp.auth_login)


def read_reply(f):
    lines = []
    while True:
        line = f.readline().decode("utf-8").rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines[-1]


def pipelined(smtp, job, message):
    sock = smtp.sock
    f = sock.makefile("rb")
    rcpts = "".join("RCPT TO:<%s>\r\n" % r for r in job["to"])
    sock.sendall(("MAIL FROM:<%s>\r\n%sDATA\r\n" % (job["from"], rcpts)).encode())
    replies = [read_reply(f) for _ in range(2 + len(job["to"]))]
    body = smtplib._quote_periods(message)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    sock.sendall(body + b".\r\nQUIT\r\n")
    replies.append(read_reply(f))
    replies.append(read_reply(f))
    return replies


def main():
    job = json.load(sys.stdin)
    message = base64.b64decode(job["message"])
    smtp = smtplib.SMTP("127.0.0.1", job["port"], local_hostname="pyclient.example", timeout=10)
    result = {}
    try:
        smtp.ehlo()
        result["ehlo"] = sorted(smtp.esmtp_features.keys())
        if job.get("mode") == "starttls":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            smtp.starttls(context=ctx)
            smtp.ehlo()
            result["ehlo_tls"] = sorted(smtp.esmtp_features.keys())
        login(smtp, job.get("auth"))
        if job.get("mode") == "pipelined":
            result["replies"] = pipelined(smtp, job, message)
            smtp.close()
        else:
            refused = smtp.sendmail(job["from"], job["to"], message)
            result["refused"] = {k: [v[0], v[1].decode()] for k, v in refused.items()}
            result["quit"] = smtp.quit()[0]
    except smtplib.SMTPException as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(result))


main()
