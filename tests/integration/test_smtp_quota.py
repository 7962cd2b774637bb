"""Per-user quota: a mailbox already over quota is refused at RCPT with
452 4.2.2; a message bigger than what is left is refused after DATA with
552 5.2.2 and nothing is delivered; other users are not affected."""

from buzon import expect, make_message, dot_stuff

ALICE = "alice@example.test"
CAROL = "carol@example.test"


def body_of(nbytes):
    line = "q" * 63 + "\n"
    return line * (nbytes // len(line))


def deliver(c, rcpt, nbytes, subject="q"):
    _, msg = make_message(subject=subject, body=body_of(nbytes), to=rcpt)
    expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
    expect(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", f"RCPT TO:<{rcpt}>")
    expect(c.cmd("DATA"), 354, after="DATA")
    c.send(dot_stuff(msg))
    return c.read_reply(after=f"end of a {nbytes}-byte message to {rcpt}")


def test_message_bigger_than_remaining_quota(instance):
    instance.add_user(CAROL, quota="20K")
    with instance.connect() as c:
        expect(deliver(c, CAROL, 15 * 1024), 250, "2.0.0", "a 15K message to carol (quota 20K, empty)")
        r = deliver(c, CAROL, 15 * 1024)
        expect(r, 552, "5.2.2", "a second 15K message to carol (quota 20K, 15K used)")
        n = len(instance.messages(CAROL))
        assert n == 1, f"carol has {n} messages after the over-quota refusal, expected 1"
        # the session goes on, and other users are not affected
        expect(deliver(c, ALICE, 15 * 1024), 250, "2.0.0", "a 15K message to alice after carol's refusal")
        expect(deliver(c, CAROL, 1024), 250, "2.0.0", "a 1K message to carol (still fits)")
    n = len(instance.messages(CAROL))
    assert n == 2, f"carol has {n} messages, expected 2"


def test_message_bigger_than_whole_quota(instance):
    instance.add_user(CAROL, quota="10K")
    with instance.connect() as c:
        expect(deliver(c, CAROL, 15 * 1024), 552, "5.2.2", "a 15K message to carol (quota 10K)")
    assert instance.messages(CAROL) == [], "a message over the whole quota was delivered"
    tmp = instance.maildir(CAROL) / "tmp"
    left = list(tmp.iterdir()) if tmp.is_dir() else []
    assert left == [], f"refused message left files in tmp/: {left}"


def test_mailbox_already_over_quota_refused_at_rcpt(instance):
    instance.add_user(CAROL, quota="20K")
    with instance.connect() as c:
        expect(deliver(c, CAROL, 15 * 1024), 250, "2.0.0", "a 15K message to carol (quota 20K)")
    instance.mailadm("user", "quota", CAROL, "10K", check=True)
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd(f"RCPT TO:<{CAROL}>"), 452, "4.2.2",
               "RCPT to carol with 15K stored and quota lowered to 10K")
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250, "2.1.5", "RCPT to alice in the same transaction")
    # raising the quota again lets mail in
    instance.mailadm("user", "quota", CAROL, "1M", check=True)
    with instance.connect() as c:
        expect(deliver(c, CAROL, 1024), 250, "2.0.0", "a 1K message to carol after raising the quota")
    n = len(instance.messages(CAROL))
    assert n == 2, f"carol has {n} messages, expected 2"


def test_no_quota_means_unlimited(instance):
    instance.add_user(CAROL, quota="0")
    with instance.connect() as c:
        for i in range(3):
            expect(deliver(c, CAROL, 300 * 1024), 250, "2.0.0", f"300K message #{i + 1} to carol (quota 0)")
    n = len(instance.messages(CAROL))
    assert n == 3, f"carol has {n} messages, expected 3"
