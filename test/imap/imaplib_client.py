"""Python imaplib against Cartero IMAP: several sessions on one mailbox at once.

Usage: imaplib_client.py PORT TLSPORT USER PASSWORD
Session A IDLEs on INBOX; session B appends and expunges; session C (IMAP over TLS) reads the bytes back.
Prints one JSON object with what each session saw; the Node test compares it with the store.
"""
import imaplib
import json
import socket
import ssl
import sys
import time

port, tls_port, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}

a = imaplib.IMAP4("127.0.0.1", port, timeout=10)
a.login(user, password)
typ, data = a.select("INBOX")
out["a_exists"] = int(data[0])

b = imaplib.IMAP4("127.0.0.1", port, timeout=10)
b.login(user, password)
b.select("INBOX")

# A starts IDLE by hand (imaplib has no idle() before 3.14)
tag = a._new_tag()
a.send(tag + b" IDLE\r\n")
out["a_idle"] = a.readline().decode().strip()

msg = b"From: py@remote.test\r\nTo: alice@example.test\r\nSubject: from imaplib\r\n\r\nHello from Python\r\n"
typ, data = b.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), msg)
out["b_append"] = data[0].decode()

seen = []
deadline = time.time() + 5
a.sock.settimeout(5)
while time.time() < deadline:
    line = a.readline().decode().strip()
    seen.append(line)
    if line.endswith("EXISTS"):
        break
out["a_saw_exists"] = seen

# B deletes message 1 and expunges; A, still idling, hears EXPUNGE
b.store("1", "+FLAGS", "\\Deleted")
typ, data = b.expunge()
out["b_expunge"] = [d.decode() for d in data if d]
seen = []
deadline = time.time() + 5
while time.time() < deadline:
    line = a.readline().decode().strip()
    seen.append(line)
    if line.endswith("EXPUNGE"):
        break
out["a_saw_expunge"] = seen
a.send(b"DONE\r\n")
out["a_done"] = a.readline().decode().strip()

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = imaplib.IMAP4_SSL("127.0.0.1", tls_port, ssl_context=ctx, timeout=10)
c.login(user, password)
c.select("INBOX", readonly=True)
typ, data = c.uid("SEARCH", None, "SUBJECT", '"from imaplib"')
uids = data[0].split()
out["c_uids"] = [int(u) for u in uids]
typ, data = c.uid("FETCH", uids[-1].decode(), "(FLAGS BODY.PEEK[])")
out["c_body"] = data[0][1].decode("latin1")
out["c_meta"] = data[0][0].decode()
typ, data = c.search(None, "ALL")
out["c_all"] = data[0].decode()

for s in (a, b, c):
    s.logout()
print(json.dumps(out))
