"""Concurrency and durability: 100 messages from 10 parallel clients all
land intact exactly once; kill -9 during load loses no message that got
its 250; smtpd restarts cleanly over the leftovers."""

import random
import smtplib
import threading
import time

from buzon import Delivered, make_message, t

ALICE = "alice@example.test"


def varied_body(rnd, n):
    lines = []
    for j in range(rnd.randint(1, 60)):
        kind = rnd.random()
        if kind < 0.1:
            lines.append("." + "d" * rnd.randint(0, 40))    # needs dot-stuffing
        elif kind < 0.15:
            lines.append("")
        else:
            lines.append("".join(rnd.choice("abcdefghij klmnop") for _ in range(rnd.randint(1, 200))))
    return f"message {n}\n" + "\n".join(lines) + "\n"


def index_by_msgid(instance, addr):
    out = {}
    for p in instance.messages(addr):
        d = Delivered(p)
        for line in d.original.split(b"\n"):
            if line == b"":
                break
            if line.lower().startswith(b"message-id:"):
                out.setdefault(line.split(b":", 1)[1].strip().decode(), []).append(d)
    return out


def test_parallel_clients(instance):
    nthreads, per = 10, 10
    sent = {}
    errors = []
    lock = threading.Lock()

    def worker(k):
        rnd = random.Random(k)
        try:
            with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=t(60)) as s:
                s.ehlo(f"client{k}.example.test")
                for i in range(per):
                    msgid, msg = make_message(subject=f"load {k}/{i}", body=varied_body(rnd, i),
                                              msgid=f"<load-{k}-{i}@client.test>")
                    refused = s.sendmail(f"sender{k}@y.test", [ALICE], msg)
                    assert refused == {}, f"refused {refused}"
                    with lock:
                        sent[msgid] = (msg, f"sender{k}@y.test")
        except Exception as e:  # collected and reported below
            with lock:
                errors.append(f"client {k}: {e!r}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(t(180))
    assert not any(th.is_alive() for th in threads), "some clients did not finish within the time limit"
    assert errors == [], f"client errors: {errors}"
    assert len(sent) == nthreads * per, f"only {len(sent)} of {nthreads * per} messages were acknowledged"

    files = instance.messages(ALICE)
    assert len(files) == nthreads * per, \
        f"alice has {len(files)} message files, expected exactly {nthreads * per}"
    by_id = index_by_msgid(instance, ALICE)
    dups = {k: len(v) for k, v in by_id.items() if len(v) > 1}
    assert dups == {}, f"duplicate deliveries: {dups}"
    missing = sorted(set(sent) - set(by_id))
    assert missing == [], f"messages that got 250 but are not in the Maildir: {missing[:10]}"
    names = [p.name for p in files]
    assert len(set(names)) == len(names), "two deliveries share a file name"
    for msgid, (msg, sender) in sent.items():
        d = by_id[msgid][0]
        d.check_name()
        d.check_trace(sender, ALICE)
        d.check_original(msg)


def test_kill9_during_load_loses_nothing_acknowledged(instance):
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def worker(k):
        rnd = random.Random(1000 + k)
        try:
            with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=t(30)) as s:
                s.ehlo(f"client{k}.example.test")
                for i in range(50):
                    if stop.is_set():
                        return
                    msgid, msg = make_message(subject=f"crash {k}/{i}", body=varied_body(rnd, i),
                                              msgid=f"<crash-{k}-{i}@client.test>")
                    s.sendmail("x@y.test", [ALICE], msg)   # returns only after the 250
                    with lock:
                        acked[msgid] = msg
        except (smtplib.SMTPException, OSError):
            return   # expected once the server is killed

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(5)]
    for th in threads:
        th.start()
    time.sleep(0.5)
    instance.kill9()
    stop.set()
    for th in threads:
        th.join(t(60))
    assert not any(th.is_alive() for th in threads), "clients still running after the server was killed"
    with lock:
        acked = dict(acked)
    assert acked, "no message was acknowledged within 0.5 s: the test proved nothing"

    new = instance.maildir(ALICE) / "new"
    by_id = index_by_msgid(instance, ALICE)
    missing = sorted(set(acked) - set(by_id))
    assert missing == [], \
        f"{len(missing)} of {len(acked)} acknowledged messages are not in new/ after kill -9: {missing[:10]}"
    for msgid, msg in acked.items():
        copies = by_id[msgid]
        assert len(copies) == 1, f"{msgid} is in the Maildir {len(copies)} times"
        copies[0].check_name()
        copies[0].check_original(msg)
    # nothing half-written ever shows up in new/ (tmp/ may hold leftovers)
    for p in new.iterdir():
        Delivered(p).check_name()

    # smtpd starts again over the leftovers and delivers
    instance.start_smtpd()
    msgid, msg = make_message(subject="after restart")
    with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=t(30)) as s:
        assert s.sendmail("x@y.test", [ALICE], msg) == {}
    found = instance.find(ALICE, msgid)
    assert len(found) == 1, f"after restart the new message landed {len(found)} times"
    found[0].check_original(msg)
