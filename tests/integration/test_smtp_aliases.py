"""Aliases, catch-all and redirections as smtpd applies them: one copy
per final mailbox per transaction, Delivered-To names the final mailbox,
catch-all only for addresses that are not users, redirections go to the
queue (ID.msg + ID.env, see store/queue.h) and never leave the machine
here: relayhost is a loopback server that always answers 421."""

import re
import smtplib

import pytest

from buzon import TempfailServer, dot_stuff, expect, make_message, t

ALICE = "alice@example.test"
BOB = "bob@example.test"


def send(instance, rcpts, sender="x@y.test", msg=None):
    if msg is None:
        _, msg = make_message()
    with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=t(30)) as s:
        s.ehlo("client.example.test")
        refused = s.sendmail(sender, rcpts, msg)
    assert refused == {}, f"recipients refused: {refused}"
    return msg


def alias(instance, src, dst):
    instance.mailadm("alias", "add", src, dst, check=True)


def count(instance, addr):
    return len(instance.messages(addr))


def test_alias_fanout(instance):
    alias(instance, "list@example.test", ALICE)
    alias(instance, "list@example.test", BOB)
    msg = send(instance, ["list@example.test"])
    assert (count(instance, ALICE), count(instance, BOB)) == (1, 1), \
        f"mail to list@: alice has {count(instance, ALICE)}, bob {count(instance, BOB)}; expected 1 and 1"
    for who in (ALICE, BOB):
        d = instance.one(who)
        d.check_trace("x@y.test", who)
        d.check_original(msg)
    assert not instance.maildir("list@example.test").exists(), "a Maildir was created for the alias itself"


def test_same_mailbox_twice_one_copy(instance):
    alias(instance, "list@example.test", ALICE)
    alias(instance, "list@example.test", BOB)
    send(instance, [ALICE, "list@example.test", "ALICE@example.test", "alice+x@example.test"])
    assert count(instance, ALICE) == 1, \
        f"RCPT alice + list@ (-> alice, bob) + variants of alice: alice has {count(instance, ALICE)} " \
        f"copies, expected 1"
    assert count(instance, BOB) == 1, f"bob has {count(instance, BOB)} copies, expected 1"


def test_separate_transactions_separate_copies(instance):
    alias(instance, "list@example.test", ALICE)
    send(instance, [ALICE])
    send(instance, ["list@example.test"])
    assert count(instance, ALICE) == 2, f"two transactions: alice has {count(instance, ALICE)}, expected 2"


def test_alias_chain(instance):
    alias(instance, "a1@example.test", "a2@example.test")
    alias(instance, "a2@example.test", "a3@example.test")
    alias(instance, "a3@example.test", ALICE)
    msg = send(instance, ["a1@example.test"])
    d = instance.one(ALICE)
    d.check_trace("x@y.test", ALICE)
    d.check_original(msg)


def test_alias_loop_refused_or_dropped(instance):
    alias(instance, "loop1@example.test", "loop2@example.test")
    alias(instance, "loop2@example.test", "loop1@example.test")
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        r = c.cmd("RCPT TO:<loop1@example.test>")
        assert r.code // 100 in (4, 5), \
            f"RCPT to an alias loop with no mailbox at all: client saw '{r}', expected a refusal"
        expect(c.cmd("NOOP"), 250, after="NOOP after an alias loop")


def test_alias_with_keep_copy(instance):
    # alice forwards to bob but keeps a copy
    alias(instance, ALICE, ALICE)
    alias(instance, ALICE, BOB)
    send(instance, [ALICE])
    assert (count(instance, ALICE), count(instance, BOB)) == (1, 1), \
        f"keep-a-copy forwarding: alice has {count(instance, ALICE)}, bob {count(instance, BOB)}; expected 1, 1"


def test_catch_all(instance):
    alias(instance, "@example.test", ALICE)
    msg = send(instance, ["unknown@example.test"])
    d = instance.one(ALICE)
    d.check_trace("x@y.test", ALICE)
    d.check_original(msg)
    send(instance, [BOB])
    assert count(instance, BOB) == 1, f"with a catch-all, mail to bob reached bob {count(instance, BOB)} times"
    assert count(instance, ALICE) == 1, \
        "with a catch-all to alice, mail to the existing user bob also reached alice"


def test_catch_all_does_not_open_relay(instance):
    alias(instance, "@example.test", ALICE)
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd("RCPT TO:<user%other.test@example.test>"), 554, "5.7.1",
               "RCPT with a % routing trick in a catch-all domain")
        expect(c.cmd("RCPT TO:<someone@other.test>"), 554, "5.7.1", "RCPT outside with a catch-all")


def test_unknown_without_catch_all(instance):
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd("RCPT TO:<unknown@example.test>"), 550, "5.1.1", "RCPT to an unknown user")


@pytest.fixture
def relay():
    srv = TempfailServer()
    yield srv
    srv.close()


def read_env(path):
    return path.read_text(errors="replace")


def test_redirection_goes_to_queue(instance_nostart, relay):
    inst = instance_nostart
    # all outbound mail goes to a loopback server that always says 421
    inst.write_conf({"smtpd": {"relayhost": f"127.0.0.1:{relay.port}"}})
    inst.start_smtpd()
    alias(inst, "fwd@example.test", "someone@outside.test")
    msgid, msg = make_message(subject="to be forwarded")
    with inst.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd("RCPT TO:<fwd@example.test>"), 250, "2.1.5", "RCPT to a redirection")
        expect(c.cmd("DATA"), 354, after="DATA")
        c.send(dot_stuff(msg))
        expect(c.read_reply(after="end of data"), 250, "2.0.0", "end of data")
        envs = inst.queue_entries()   # durable before the 250: no waiting
    assert len(envs) == 1, f"right after the 250 the queue holds {len(envs)} .env files, expected 1"
    env = envs[0]
    qid = env.stem
    msgfile = inst.queue_dir / f"{qid}.msg"
    assert msgfile.is_file(), f"{env.name} has no {msgfile.name} beside it"
    text = read_env(env)
    lines = text.splitlines()
    assert "sender x@y.test" in lines, f"{env.name} has no 'sender x@y.test' line:\n{text}"
    assert "rcpt pending someone@outside.test" in lines, \
        f"{env.name} has no 'rcpt pending someone@outside.test' line:\n{text}"
    assert f"id {qid}" in lines, f"{env.name} has no 'id {qid}' line:\n{text}"
    assert lines[0] == "version 1", f"{env.name} starts with {lines[0]!r}, expected 'version 1'"
    body = msgfile.read_bytes()
    assert b"Subject: to be forwarded" in body and msgid.encode() in body, \
        f"{msgfile.name} does not hold the message: {body[:300]!r}"
    assert b"\r\n" not in body, f"{msgfile.name} has CRLF line ends (queue files are LF)"
    # nothing was delivered locally, and the tempfail keeps it queued
    assert inst.messages(ALICE) == [] and inst.messages(BOB) == [], \
        "a message to a redirection was also delivered to a local mailbox"
    assert not inst.maildir("fwd@example.test").exists(), "a Maildir was created for the redirection address"


def test_redirection_and_local_copy(instance_nostart, relay):
    inst = instance_nostart
    inst.write_conf({"smtpd": {"relayhost": f"127.0.0.1:{relay.port}"}})
    inst.start_smtpd()
    alias(inst, "both@example.test", ALICE)
    alias(inst, "both@example.test", "someone@outside.test")
    msg = send(inst, ["both@example.test"])
    d = inst.one(ALICE)
    d.check_original(msg)
    envs = inst.queue_entries()
    assert len(envs) == 1, f"queue holds {len(envs)} entries, expected 1"
    lines = read_env(envs[0]).splitlines()
    rcpts = [ln for ln in lines if ln.startswith("rcpt ")]
    assert rcpts == ["rcpt pending someone@outside.test"], \
        f"queued recipients {rcpts}, expected only the outside address (alice got a local copy)"


def test_two_redirections_one_queue_entry(instance_nostart, relay):
    inst = instance_nostart
    inst.write_conf({"smtpd": {"relayhost": f"127.0.0.1:{relay.port}"}})
    inst.start_smtpd()
    alias(inst, "f1@example.test", "one@outside.test")
    alias(inst, "f2@example.test", "two@outside.test")
    alias(inst, "f3@example.test", "one@outside.test")
    send(inst, ["f1@example.test", "f2@example.test", "f3@example.test"])
    envs = inst.queue_entries()
    assert len(envs) >= 1, "no queue entry for two redirections"
    rcpts = []
    for e in envs:
        rcpts += [ln.split()[-1] for ln in read_env(e).splitlines() if ln.startswith("rcpt ")]
    assert sorted(rcpts) == ["one@outside.test", "two@outside.test"], \
        f"queued recipients {sorted(rcpts)}, expected one@ once and two@ once"
    for e in envs:
        assert re.match(r"^[A-Za-z0-9._-]+$", e.stem), f"queue id {e.stem!r} has odd characters"
