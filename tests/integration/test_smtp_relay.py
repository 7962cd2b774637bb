"""No open relay: on port 25 (no AUTH) a recipient outside our domains is
refused with 554 5.7.1, and so is every sender-specified routing trick
that would make an address in our domain route elsewhere.  Nothing may
reach the queue."""

import pytest

from buzon import expect, make_message, dot_stuff

TRICKS = [
    "user%other.test@example.test",
    "@example.test:user@other.test",
    '"user@other.test"@example.test',
    "user@other.test@example.test",
    "user!other.test@example.test",
    "alice%other.test@example.test",
    "other.test!alice@example.test",
    '"alice@other.test"@example.test',
    "@mx.example.test,@example.test:user@other.test",
]


@pytest.mark.parametrize("rcpt", ["someone@other.test", "someone@OTHER.test", "alice@example.test.other.test",
                                  "alice@sub.example.test", "alice@test"])
def test_outside_recipient_denied(smtp, rcpt):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd(f"RCPT TO:<{rcpt}>"), 554, "5.7.1", f"RCPT TO:<{rcpt}> (relay attempt)")
        # the session goes on
        expect(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5", "RCPT to a local user after a refused one")


def test_outside_recipient_denied_for_local_sender(smtp):
    # a sender in our domain changes nothing without AUTH
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", "MAIL FROM:<alice@example.test>")
        expect(c.cmd("RCPT TO:<someone@other.test>"), 554, "5.7.1", "RCPT TO:<someone@other.test>")


def test_outside_recipient_denied_for_null_sender(smtp):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<>"), 250, "2.1.0", "MAIL FROM:<>")
        expect(c.cmd("RCPT TO:<someone@other.test>"), 554, "5.7.1", "RCPT TO:<someone@other.test>")


@pytest.mark.parametrize("rcpt", TRICKS)
def test_routing_tricks_denied(smtp, rcpt):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        if rcpt == "user@other.test@example.test":
            # not a valid path at all: a syntax refusal is as good
            assert r.code in (554, 501, 553), \
                f"after RCPT TO:<{rcpt}> the client saw '{r}', expected 554 5.7.1"
        else:
            expect(r, 554, "5.7.1", f"RCPT TO:<{rcpt}> (routing trick)")


def test_relay_attempts_queue_nothing(instance):
    """Whatever the client does after refused RCPTs, nothing is queued or
    delivered."""
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        for rcpt in ["someone@other.test"] + TRICKS:
            r = c.cmd(f"RCPT TO:<{rcpt}>")
            assert r.code >= 500, f"after RCPT TO:<{rcpt}> the client saw '{r}', expected a refusal"
        r = c.cmd("DATA")
        if r.code == 354:  # wrong already; finish the message to see if it lands
            _, msg = make_message()
            c.send(dot_stuff(msg))
            c.read_reply(after="end of data")
        assert r.code in (503, 554), f"after DATA with only refused RCPTs the client saw '{r}'"
        c.quit()
    assert instance.queue_entries() == [], \
        f"relay attempts left queue entries: {instance.queue_entries()}"
    leftovers = list(instance.queue_dir.glob("*.msg")) if instance.queue_dir.is_dir() else []
    assert leftovers == [], f"relay attempts left message files in the queue: {leftovers}"
    assert instance.messages("alice@example.test") == [] and instance.messages("bob@example.test") == [], \
        "relay attempts delivered a message locally"
    odd = [p.name for p in (instance.mail_dir / "example.test").iterdir() if p.name not in ("alice", "bob")]
    assert odd == [], f"relay attempts created Maildirs: {odd}"


def test_mixed_transaction_delivers_only_local(instance):
    _, msg = make_message()
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd("RCPT TO:<someone@other.test>"), 554, "5.7.1", "RCPT outside")
        expect(c.cmd("RCPT TO:<user%other.test@example.test>"), 554, "5.7.1", "RCPT with %")
        expect(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5", "RCPT alice")
        expect(c.cmd("DATA"), 354, after="DATA")
        c.send(dot_stuff(msg))
        expect(c.read_reply(after="end of data"), 250, "2.0.0", "end of data")
    n = len(instance.messages("alice@example.test"))
    assert n == 1, f"alice has {n} messages, expected 1"
    assert instance.queue_entries() == [], f"queue entries: {instance.queue_entries()}"
