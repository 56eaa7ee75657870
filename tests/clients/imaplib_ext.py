"""IMAP extensions with Python's imaplib against smtpd; used by tests/imap_ext.rs.

usage: imaplib_ext.py STEP HOST PORT USER PASSWORD
STEP: esearch, list, binary or rev2. The mailbox must hold exactly three messages, subjects "one", "two" and
"three", delivered over SMTP. imaplib has no helper for these extensions, so the commands go
through its generic ones and the untagged answers are read with response(). Every step
asserts what it sees; prints "ok" at the end.
"""
import imaplib
import sys

step, host, port, user, password = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]


def ok(result, what):
    typ, data = result
    assert typ == "OK", (what, typ, data)
    return data


def bad(fn, what):
    try:
        fn()
    except imaplib.IMAP4.error as e:
        assert "BAD" in str(e) or "rror" in str(e), (what, e)
        return
    raise SystemExit(f"{what}: accepted")


def esearch(m, *args, uid=False):
    """The ESEARCH line's data after SEARCH RETURN ..."""
    if uid:
        ok(m.uid("SEARCH", *args), args)
    else:
        ok(m.search(None, *args), args)
    typ, data = m.response("ESEARCH")
    assert typ == "ESEARCH" and len(data) == 1 and data[0] is not None, (args, typ, data)
    return data[0].decode()


m = imaplib.IMAP4(host, port)
ok(m.login(user, password), "login")

if step == "esearch":
    assert "ESEARCH" in m.capabilities, m.capabilities
    ok(m.select("INBOX"), "select")
    ok(m.store("2", "+FLAGS.SILENT", "(\\Seen)"), "store")
    tag_re = r'\(TAG "[A-Z0-9]+"\)'
    import re
    got = esearch(m, "RETURN", "(MIN MAX COUNT ALL)", "UNSEEN")
    assert re.fullmatch(tag_re + " MIN 1 MAX 3 COUNT 2 ALL 1,3", got), got
    got = esearch(m, "RETURN", "(COUNT)", "ALL", uid=True)
    assert re.fullmatch(tag_re + " UID COUNT 3", got), got
    got = esearch(m, "RETURN", "()", "SUBJECT", "t", uid=True)
    assert re.fullmatch(tag_re + " UID ALL 2:3", got), got
    got = esearch(m, "RETURN", "(MIN MAX)", "SUBJECT", "nothing")
    assert re.fullmatch(tag_re, got), got
    # A plain SEARCH is still answered with * SEARCH.
    assert ok(m.search(None, "UNSEEN"), "plain search") == [b"1 3"]
    bad(lambda: m.search(None, "RETURN", "(PARTIAL 1:5)", "ALL"), "RETURN (PARTIAL)")
    bad(lambda: m.search(None, "RETURN", "(MIN", "ALL"), "unbalanced RETURN")
    bad(lambda: m.uid("SEARCH", "RETURN", "(FROB)", "ALL"), "unknown return option")
    ok(m.noop(), "still alive")
elif step == "list":
    for cap in ("LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE"):
        assert cap in m.capabilities, (cap, m.capabilities)
    ok(m.create("Work"), "create")
    ok(m.create("Work.2026"), "create child")
    ok(m.subscribe("Work.2026"), "subscribe")
    ok(m.unsubscribe("Trash"), "unsubscribe")
    ok(m.subscribe("Gone"), "subscribe a name with no folder")

    def xlist(*args):
        typ, dat = m._simple_command("LIST", *args)
        lines = [l.decode() for l in ok(m._untagged_response(typ, dat, "LIST"), args) if l]
        typ, status = m.response("STATUS")
        return lines, [l.decode() for l in status if l]

    lines, status = xlist("(SUBSCRIBED SPECIAL-USE)", '""', '"*"', "RETURN",
                          "(SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN UIDNEXT UIDVALIDITY))")
    names = {l.rsplit(" ", 1)[1]: l for l in lines}
    assert sorted(names) == ["Archive", "Drafts", "Junk", "Sent"], lines
    assert names["Sent"] == '(\\HasNoChildren \\Sent \\Subscribed) "." Sent', lines
    assert len(status) == 4 and all("MESSAGES 0 UNSEEN 0 UIDNEXT 1 UIDVALIDITY " in l for l in status), status
    lines, status = xlist("(SUBSCRIBED)", '""', "*")
    names = {l.rsplit(" ", 1)[1]: l for l in lines}
    assert "Trash" not in names and "Work" not in names, lines
    assert names["Gone"].startswith("(\\NonExistent"), lines
    assert "\\Subscribed" in names["Work.2026"] and "\\Subscribed" in names["INBOX"], lines
    assert status == [], status
    lines, _ = xlist("(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
    assert '(\\HasChildren) "." Work ("CHILDINFO" ("SUBSCRIBED"))' in lines, lines
    lines, status = xlist('""', "(INBOX Work*)", "RETURN", "(STATUS (MESSAGES UNSEEN))")
    assert len(lines) == 3, lines
    assert "INBOX (MESSAGES 3 UNSEEN 3)" in status, status
    bad(lambda: m._simple_command("LIST", "(FROB)", '""', "*"), "unknown selection option")
    bad(lambda: m._simple_command("LIST", '""', "*", "RETURN", "(STATUS (FROB))"), "unknown status item")
    bad(lambda: m._simple_command("LIST", "(SUBSCRIBED", '""', "*"), "unbalanced")
    # STATUS=SIZE: the RFC822.SIZE octets summed, in STATUS and in LIST-STATUS.
    assert "STATUS=SIZE" in m.capabilities, m.capabilities
    ok(m.select("INBOX", readonly=True), "examine")
    sizes = ok(m.fetch("1:*", "(RFC822.SIZE)"), "sizes")
    total = sum(int(l.split(b"RFC822.SIZE ")[1].rstrip(b")")) for l in sizes)
    st = ok(m.status("INBOX", "(MESSAGES SIZE)"), "status size")[0].decode()
    assert st == f"INBOX (MESSAGES 3 SIZE {total})", (st, total)
    _, status = xlist('""', "INBOX", "RETURN", "(STATUS (SIZE))")
    assert status == [f"INBOX (SIZE {total})"], status
    # Plain LIST is unchanged.
    plain = [l.decode() for l in ok(m.list(), "plain list")]
    assert any(l.endswith('"." Trash') for l in plain) and not any("Gone" in l for l in plain), plain
    ok(m.noop(), "still alive")
elif step == "binary":
    # A fourth message, delivered by the test: part 1 quoted-printable, part 2 base64 of
    # 00 01 02 ff, part 3 x-uuencode.
    assert "BINARY" in m.capabilities, m.capabilities
    assert ok(m.select("INBOX"), "select") == [b"4"]
    data = ok(m.fetch("4", "(BINARY.PEEK[2] BINARY.SIZE[2])"), "binary base64")
    assert data[0][0].endswith(b"BINARY[2] ~{4}") and data[0][1] == b"\x00\x01\x02\xff", data
    assert data[1] == b" BINARY.SIZE[2] 4)", data
    data = ok(m.fetch("4", "(BINARY.PEEK[1])"), "binary quoted-printable")
    assert data[0][1] == "café au lait".encode(), data
    assert b"\\Seen" not in ok(m.fetch("4", "(FLAGS)"), "flags")[0]
    typ, data = m.fetch("4", "(BINARY.PEEK[3])")
    assert typ == "NO" and b"UNKNOWN-CTE" in data[0], (typ, data)
    data = ok(m.uid("FETCH", "4", "(BINARY[1]<0.4>)"), "binary partial")
    assert data[0][0].endswith(b"BINARY[1]<0> {4}") and data[0][1] == b"caf\xc3", data
    assert b"\\Seen" in ok(m.fetch("4", "(FLAGS)"), "flags after BINARY")[0]
    data = ok(m.fetch("1", "(BINARY.PEEK[1])"), "single part")
    assert data[0][1] == b"one body\r\n", data
    bad(lambda: m.fetch("4", "(BINARY.PEEK[1.MIME])"), "BINARY of a MIME header")
    ok(m.noop(), "still alive")
elif step == "rev2":
    import re
    assert "IMAP4REV1" in m.capabilities and "IMAP4REV2" in m.capabilities, m.capabilities
    ok(m.create("Work.2026"), "a folder whose parent does not exist")
    ok(m.enable("IMAP4rev2"), "enable")
    assert m.response("ENABLED") == ("ENABLED", [b"IMAP4rev2"])
    assert ok(m.select("INBOX"), "select") == [b"3"]
    assert m.response("RECENT") == ("RECENT", [None]), "RECENT under IMAP4rev2"
    assert m.response("LIST") == ("LIST", [b'(\\HasNoChildren \\Subscribed) "." INBOX'])
    flags = ok(m.fetch("1:*", "(FLAGS)"), "flags")
    assert len(flags) == 3 and not any(b"Recent" in f for f in flags), flags
    ok(m.search(None, "UNSEEN"), "search")
    typ, data = m.response("ESEARCH")
    assert re.fullmatch(rb'\(TAG "[A-Z0-9]+"\) ALL 1:3', data[0]), data
    ok(m.uid("SEARCH", "SUBJECT", "two"), "uid search")
    typ, data = m.response("ESEARCH")
    assert re.fullmatch(rb'\(TAG "[A-Z0-9]+"\) UID ALL 2', data[0]), data
    lines = [l.decode() for l in ok(m.list('""', "%"), "list %")]
    assert '(\\NonExistent \\HasChildren) "." Work' in lines, lines
    # UTF-8 folder names on the wire (the test then finds .Entw&APw-rfe on disk).
    ok(m._simple_command("CREATE", '"Entwürfe"'.encode()), "create a UTF-8 name")
    typ, dat = m._simple_command("LIST", '""', '"Entw*"')
    lines = ok(m._untagged_response(typ, dat, "LIST"), "list utf-8")
    assert lines[0][1] == "Entwürfe".encode(), lines
    # SEARCHRES: SAVE answers nothing, "$" is the saved result (by UID and by sequence number).
    assert "SEARCHRES" in m.capabilities, m.capabilities
    ok(m.uid("SEARCH", "RETURN", "(SAVE)", "SUBJECT", "t"), "save")
    assert m.response("ESEARCH") == ("ESEARCH", [None]), "SAVE alone answers no ESEARCH"
    data = ok(m.uid("FETCH", "$", "(FLAGS)"), "uid fetch $")
    assert len(data) == 2 and b"UID 2 " in data[0] and b"UID 3 " in data[1], data
    ok(m.store("$", "+FLAGS.SILENT", "(\\Flagged)"), "store $")
    ok(m.search(None, "FLAGGED"), "search flagged")
    assert re.fullmatch(rb'\(TAG "[A-Z0-9]+"\) ALL 2:3', m.response("ESEARCH")[1][0])
    ok(m.search(None, "RETURN", "(SAVE)", "SUBJECT", "nothing"), "save nothing")
    typ, data = m.fetch("$", "(FLAGS)")
    assert typ == "OK" and data == [None], (typ, data)
    ok(m.noop(), "still alive")
else:
    raise SystemExit(f"unknown step {step}")

m.logout()
print("ok")
