"""DMARC aggregate reports (issue 6, item 2): smtpd records every DMARC
evaluation of mail from outside in the database; `mailadm dmarc report`
turns one UTC day of them into RFC 7489 aggregate XML and, with --send,
queues the report mail (gzip attachment) to the rua= addresses; smtpd's
queue runner does the same once a day with [policy] dmarc_reports = on.

Everything runs inside the private network namespace of outbound.py (its
DNS server serves tests/dns/*.zone), so the DMARC records, the RFC 7489
7.1 destination checks (<domain>._report._dmarc.<rua domain>) and the
delivery of a report to another instance never leave the machine:
    B = mx.b.test (127.0.0.3:25), the receiver that judges and reports
    A = mail.a.test (127.0.0.2:25), where a daily report is delivered
Clients speak from 127.0.0.9 (allowed by the SPF of the names used
here) and 127.0.0.10 (allowed by none).

Evaluations come either from real SMTP transactions judged by B, or are
inserted into the database with sqlite3 (the test then controls their
time and contents).  The XML is read with xml.etree; assertions are on
what mailadm prints, what lands in the queue and in A's mailbox."""

import datetime
import email
import email.policy
import email.utils
import gzip
import json
import sqlite3
import time
import xml.etree.ElementTree as ET

import dkim
import pytest

import buzon
from buzon import SMTPClient, dot_stuff, t, wait_until
from outbound import fresh_zones, net  # noqa: F401 (fixtures)
from outbound import (A_HOST, ALICE, B_HOST, finish, make_a, make_b, new_msgid,
                      reconfigure)

pytestmark = pytest.mark.usefixtures("net", "fresh_zones")

GOOD_IP = "127.0.0.9"
BAD_IP = "127.0.0.10"
HELO = "client.spf.test"
POLICY = {"spf": "on", "dkim_verify": "on", "dmarc": "on", "spf_reject": "fail",
          "dnsbl": ""}
REP = "rep.dmarc.test"          # the policy domain of the SMTP test


# ---------------------------------------------------------------- helpers


def utc_day(days_ago=0):
    """("YYYY-MM-DD", its 00:00 UTC as unix time) of today - days_ago."""
    d = datetime.datetime.now(datetime.timezone.utc).date() - \
        datetime.timedelta(days=days_ago)
    begin = int(datetime.datetime(d.year, d.month, d.day,
                                  tzinfo=datetime.timezone.utc).timestamp())
    return d.isoformat(), begin


def db_rows(inst, where="1"):
    con = sqlite3.connect(str(inst.database), timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(
            f"SELECT * FROM dmarc_evaluations WHERE {where} ORDER BY id")]
    finally:
        con.close()


EVAL_DEFAULTS = dict(
    source_ip="192.0.2.1", envelope_from="example.org", header_from="example.org",
    spf_domain="example.org", spf_scope="mfrom", spf_result="pass", spf_aligned=1,
    dkim="example.org s1 pass", dkim_aligned=1, dmarc_result="pass",
    disposition="none", reason="", policy_domain="example.org",
    org_domain="example.org", p="none", sp="none", adkim="r", aspf="r", pct=100,
    rua="mailto:dmarc@example.org")


def insert_eval(inst, when, **fields):
    row = dict(EVAL_DEFAULTS, time=when, **fields)
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    con = sqlite3.connect(str(inst.database), timeout=10)
    try:
        con.execute(f"INSERT INTO dmarc_evaluations ({cols}) VALUES ({marks})",
                    list(row.values()))
        con.commit()
    finally:
        con.close()


def report(inst, *args, json_out=False):
    """mailadm dmarc report ARGS: the CompletedProcess (asserts exit 0)."""
    cp = inst.mailadm("dmarc", "report", *args, json=json_out)
    assert cp.returncode == 0, \
        f"`mailadm dmarc report {' '.join(args)}` exited {cp.returncode}, expected 0; " \
        f"stderr: {cp.stderr.strip()!r}"
    return cp


def xml_docs(stdout):
    """The XML documents mailadm printed one after the other, parsed."""
    parts = [p for p in stdout.split("<?xml ") if p.strip()]
    return [ET.fromstring(("<?xml " + p).encode()) for p in parts]


def records(doc):
    out = []
    for rec in doc.findall("record"):
        out.append({
            "ip": rec.findtext("row/source_ip"),
            "count": int(rec.findtext("row/count")),
            "disposition": rec.findtext("row/policy_evaluated/disposition"),
            "dkim": rec.findtext("row/policy_evaluated/dkim"),
            "spf": rec.findtext("row/policy_evaluated/spf"),
            "reasons": [r.findtext("type") for r in
                        rec.findall("row/policy_evaluated/reason")],
            "envelope_from": rec.findtext("identifiers/envelope_from"),
            "header_from": rec.findtext("identifiers/header_from"),
            "auth_dkim": [(d.findtext("domain"), d.findtext("selector"),
                           d.findtext("result"))
                          for d in rec.findall("auth_results/dkim")],
            "auth_spf": [(s.findtext("domain"), s.findtext("scope"),
                          s.findtext("result"))
                         for s in rec.findall("auth_results/spf")],
        })
    return out


def queued(inst):
    """[(envelope lines, message bytes)] of inst's queue."""
    out = []
    for env in inst.queue_entries():
        out.append((env.read_text().splitlines(),
                    env.with_suffix(".msg").read_bytes()))
    return out


def env_value(lines, key):
    return [ln[len(key) + 1:] for ln in lines if ln.startswith(key + " ")]


def attachment(msg_bytes):
    """(filename, decompressed XML bytes) of the report mail's attachment."""
    m = email.message_from_bytes(msg_bytes, policy=email.policy.default)
    assert m.get_content_type() == "multipart/mixed", \
        f"the report mail is {m.get_content_type()}, expected multipart/mixed"
    parts = [p for p in m.iter_attachments()]
    assert len(parts) == 1 and parts[0].get_content_type() == "application/gzip", \
        f"expected one application/gzip attachment, found " \
        f"{[p.get_content_type() for p in parts]}"
    data = parts[0].get_payload(decode=True)
    return parts[0].get_filename(), gzip.decompress(data)


def send_msg(source, sender, rcpt, from_hdr, subject):
    """One transaction to B's port 25 from source; the final reply."""
    msgid = new_msgid("dmarc")
    text = (f"From: {from_hdr}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
            f"Message-ID: {msgid}\r\nDate: {email.utils.formatdate()}\r\n\r\n"
            "Hello.\r\n")
    c = SMTPClient(25, host=B_HOST, source=source, timeout=t(20))
    try:
        assert c.greeting().code == 220
        c.ehlo(HELO)
        final = c.mail_tx(sender, [rcpt], text.encode())
        c.quit()
    finally:
        c.close()
    return final


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def b_nostart(net, tmp_path):
    inst = make_b(tmp_path / "b", policy=dict(POLICY))
    yield inst
    finish(inst)


@pytest.fixture
def a_nostart(net, tmp_path):
    inst = make_a(tmp_path / "a")
    yield inst
    finish(inst)


# ---------------------------------------------------------------- tests


def test_smtp_evaluations_recorded_reported_and_sent(net, b_nostart):
    b = b_nostart
    net.append_zone("dmarc.test", f'{REP}. IN TXT "v=spf1 ip4:{GOOD_IP} -all"')
    net.append_zone("dmarc.test", f'_dmarc.{REP}. IN TXT "v=DMARC1; p=quarantine; '
                    f'adkim=s; rua=mailto:agg@{REP},mailto:reports@b.test!10m"')
    b.start_smtpd(timeout=t(30))
    day, begin = utc_day()
    for i in range(2):
        r = send_msg(GOOD_IP, f"u@{REP}", "bob@b.test", f"u@{REP}", f"pass {i}")
        assert r.code == 250, f"a message passing DMARC was refused: '{r}'"
    r = send_msg(BAD_IP, f"u@{REP}", "bob@b.test", f"<u@{REP}>", "fail")
    assert r.code == 250, \
        f"a message failing DMARC under p=quarantine should be accepted (Junk): '{r}'"

    rows = db_rows(b)
    assert len(rows) == 3, \
        f"expected 3 recorded DMARC evaluations after 3 messages, found {len(rows)}: {rows}"
    for row in rows:
        assert begin <= row["time"] < begin + 86400
        assert row["policy_domain"] == REP and row["header_from"] == REP
        assert row["p"] == "quarantine" and row["adkim"] == "s" and row["pct"] == 100
        assert row["rua"] == f"mailto:agg@{REP},mailto:reports@b.test!10m"
    by_ip = {r["source_ip"]: r for r in rows}
    assert by_ip[BAD_IP]["dmarc_result"] == "fail"
    assert by_ip[BAD_IP]["disposition"] == "quarantine"
    assert by_ip[BAD_IP]["spf_result"] == "fail"
    assert by_ip[GOOD_IP]["dmarc_result"] == "pass"
    assert by_ip[GOOD_IP]["spf_aligned"] == 1

    # the day's report, printed: one document, B's identity, both rows
    cp = report(b, "--date", day)
    docs = xml_docs(cp.stdout)
    assert len(docs) == 1, f"expected one report, mailadm printed {len(docs)}"
    doc = docs[0]
    assert doc.tag == "feedback"
    assert doc.findtext("report_metadata/org_name") == "mx.b.test"
    assert doc.findtext("report_metadata/email") == "postmaster@b.test"
    assert int(doc.findtext("report_metadata/date_range/begin")) == begin
    assert int(doc.findtext("report_metadata/date_range/end")) == begin + 86399
    pp = doc.find("policy_published")
    assert (pp.findtext("domain"), pp.findtext("p"), pp.findtext("adkim"),
            pp.findtext("pct")) == (REP, "quarantine", "s", "100")
    recs = {r["ip"]: r for r in records(doc)}
    assert set(recs) == {GOOD_IP, BAD_IP}, f"records for {set(recs)}"
    good, bad = recs[GOOD_IP], recs[BAD_IP]
    assert (good["count"], good["disposition"], good["spf"], good["dkim"]) == \
        (2, "none", "pass", "fail"), f"the passing messages' record: {good}"
    assert (bad["count"], bad["disposition"], bad["spf"], bad["dkim"]) == \
        (1, "quarantine", "fail", "fail"), f"the failing message's record: {bad}"
    assert good["header_from"] == REP and good["envelope_from"] == REP
    assert good["auth_spf"] == [(REP, "mfrom", "pass")]
    assert bad["auth_spf"] == [(REP, "mfrom", "fail")]
    assert good["auth_dkim"] == []

    # the summary
    summary = json.loads(report(b, "--date", day, json_out=True).stdout)
    assert len(summary) == 1 and summary[0]["domain"] == REP
    assert summary[0]["messages"] == 3 and summary[0]["records"] == 2
    assert summary[0]["report_id"] == doc.findtext("report_metadata/report_id")
    assert summary[0]["filename"] == f"mx.b.test!{REP}!{begin}!{begin + 86399}.xml.gz"

    # --send: reports@b.test is outside rep.dmarc.test's organisation and
    # b.test has not agreed (RFC 7489 7.1): only agg@ gets it.  The queue
    # runner is stopped so the entry stays for the test to read.
    b.stop_smtpd()
    cp = report(b, "--date", day, "--send")
    assert f"agg@{REP}" in cp.stdout and "reports@b.test" not in cp.stdout, \
        f"--send printed {cp.stdout!r}"
    assert "reports@b.test" in cp.stderr and "_report._dmarc" in cp.stderr, \
        f"the dropped destination is not explained on stderr: {cp.stderr!r}"
    entries = queued(b)
    assert len(entries) == 1, f"expected one queue entry, found {len(entries)}"
    env, msg = entries[0]
    assert env_value(env, "sender") == ["postmaster@b.test"]
    assert env_value(env, "rcpt") == [f"pending agg@{REP}"]
    m = email.message_from_bytes(msg, policy=email.policy.default)
    rid = doc.findtext("report_metadata/report_id")
    assert " ".join(m["Subject"].split()) == \
        f"Report Domain: {REP} Submitter: mx.b.test Report-ID: <{rid}>"
    assert m["From"] == "postmaster@b.test" and m["To"] == f"agg@{REP}"
    fname, xml = attachment(msg)
    assert fname == summary[0]["filename"]
    assert xml.decode() == cp_xml(b, day), \
        "the attachment does not decompress to the XML mailadm prints"

    # once b.test publishes its agreement, both destinations are used
    net.append_zone("b.test", f'{REP}._report._dmarc.b.test. IN TXT "v=DMARC1"')
    for e in b.queue_entries():
        e.unlink()
        e.with_suffix(".msg").unlink()
    report(b, "--date", day, "--send")
    entries = queued(b)
    assert len(entries) == 1
    assert sorted(env_value(entries[0][0], "rcpt")) == \
        sorted([f"pending agg@{REP}", "pending reports@b.test"])


def cp_xml(inst, day):
    return report(inst, "--date", day).stdout


def test_hostile_values_are_escaped(b_nostart):
    b = b_nostart
    day, begin = utc_day(3)
    insert_eval(b, begin + 10, header_from="ex<am>&ple.org\x01",
                envelope_from='"quoted"', source_ip="192.0.2.5<",
                dkim="ev&il.test s<1> pass;- - fail",
                rua="mailto:dmarc@example.org")
    insert_eval(b, begin + 20, source_ip="192.0.2.5<", header_from="ex<am>&ple.org\x01",
                envelope_from='"quoted"', dkim="ev&il.test s<1> pass;- - fail")
    # other days, no rua, no verdict: not in the report
    insert_eval(b, begin - 1)
    insert_eval(b, begin + 86400)
    insert_eval(b, begin + 30, rua="")
    insert_eval(b, begin + 40, dmarc_result="temperror")
    docs = xml_docs(report(b, "--date", day).stdout)
    assert len(docs) == 1
    (rec,) = records(docs[0])
    assert rec["count"] == 2
    assert rec["ip"] == "192.0.2.5<"
    assert rec["header_from"] == "ex<am>&ple.org?", rec
    assert rec["envelope_from"] == '"quoted"'
    assert rec["auth_dkim"] == [("ev&il.test", "s<1>", "pass"), ("", None, "fail")]


def test_cli_usage_and_empty_day(b_nostart):
    b = b_nostart
    cp = b.mailadm("dmarc", "report", "--date", "2024-02-30")
    assert cp.returncode == 2 and "YYYY-MM-DD" in cp.stderr, \
        f"an impossible date: exit {cp.returncode}, stderr {cp.stderr!r}"
    cp = b.mailadm("dmarc", "report", "extra")
    assert cp.returncode == 2
    cp = report(b, "--date", "2024-01-01")
    assert cp.stdout == "" and "no DMARC reports for 2024-01-01" in cp.stderr
    assert json.loads(report(b, "--date", "2024-01-01", json_out=True).stdout) == []
    # the default is yesterday (UTC)
    day, begin = utc_day(1)
    insert_eval(b, begin + 5)
    docs = xml_docs(report(b).stdout)
    assert len(docs) == 1 and \
        int(docs[0].findtext("report_metadata/date_range/begin")) == begin


def keygen(inst, domain):
    """mailadm dkim keygen: the zone-file line of the TXT record."""
    cp = inst.mailadm("dkim", "keygen", domain, "--selector", "rep", check=True)
    lines = [ln for ln in cp.stdout.splitlines()
             if ln.strip() and not ln.lstrip().startswith(";")]
    assert len(lines) == 1, f"keygen printed {cp.stdout!r}"
    return lines[0]


def test_daily_run_sends_signed_report_and_purges(net, a_nostart, b_nostart):
    now = datetime.datetime.now(datetime.timezone.utc)
    if now.hour == 0 or (now.hour == 1 and now.minute < 6):
        pytest.skip("the daily run starts at a random time up to 65 minutes "
                    "after 00:00 UTC: too early in the day to wait for it")
    a, b = a_nostart, b_nostart
    # B signs its mail for b.test; the key is published for the verifier
    net.append_zone("b.test", keygen(b, "b.test"))
    day, begin = utc_day(1)
    # yesterday: mail from a.test judged by B, rua at a.test (same
    # organisation: no destination check); 40 days ago: to be purged
    for i in range(3):
        insert_eval(b, begin + 60 * i, source_ip=A_HOST, header_from="a.test",
                    envelope_from="a.test", spf_domain="a.test", dkim="",
                    dkim_aligned=0, policy_domain="a.test", org_domain="a.test",
                    rua=f"mailto:{ALICE}")
    old = begin - 40 * 86400
    insert_eval(b, old)
    reconfigure(b, policy={"dmarc_reports": "on"})
    a.start_smtpd()
    b.start_smtpd()
    state = b.state_dir / "dmarc-reports.last"
    wait_until(lambda: state.exists(), t(30), what="the daily DMARC job's state file")
    assert state.read_text() == day + "\n"
    wait_until(lambda: len(a.messages(ALICE)) >= 1, t(60),
               what="the report delivered to alice@a.test by B's queue runner")
    assert db_rows(b, f"time = {old}") == [], "the 40-day-old evaluation was not purged"
    assert len(db_rows(b)) == 3

    msg = a.messages(ALICE)[0].read_bytes()
    m = email.message_from_bytes(msg, policy=email.policy.default)
    assert " ".join(m["Subject"].split()).startswith(
        "Report Domain: a.test Submitter: mx.b.test Report-ID: <")
    sig = m.get_all("DKIM-Signature") or []
    assert any("d=b.test" in " ".join(s.split()) for s in sig), \
        f"the report is not DKIM-signed by b.test: {sig}"

    def txt(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        rr = net.dns_query(name.rstrip("."), "TXT").rr
        return b"".join(rr[0].rdata.data) if rr else None
    crlf = msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    # A's trace headers are above B's signature: verify from it down
    start = crlf.find(b"DKIM-Signature:")
    assert dkim.verify(crlf[start:], dnsfunc=txt), \
        "B's DKIM signature on the report does not verify"
    fname, xml = attachment(msg)
    assert fname == f"mx.b.test!a.test!{begin}!{begin + 86399}.xml.gz"
    doc = ET.fromstring(xml)
    (rec,) = records(doc)
    assert rec["ip"] == A_HOST and rec["count"] == 3

    # a restart does not send the day again
    assert b.stop_smtpd() == 0
    b.start_smtpd()
    time.sleep(t(3))
    assert b.queue_entries() == [] and len(a.messages(ALICE)) == 1, \
        "the report was sent again after a restart"
