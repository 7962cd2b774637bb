"""STARTTLS on the smtp listener: 220 then a handshake, TLS 1.2 minimum,
EHLO after TLS without STARTTLS, state reset after TLS, no answer to
commands injected before the handshake, Received header with ESMTPS, the
TLS version and cipher; swaks --tls."""

import smtplib
import socket
import ssl
import subprocess
import threading
import warnings


from buzon import HOSTNAME, client_tls_context, expect, make_message, t

ALICE = "alice@example.test"


def tls11_context(server=False, cert=None, key=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if server:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert), str(key))
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def local_tls11_works(cert, key):
    """Can this machine's OpenSSL do a TLS 1.1 handshake at all?  (Without
    this, a refused TLS 1.1 handshake would prove nothing about smtpd.)"""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(t(10))
    result = {}

    def serve():
        try:
            s, _ = ls.accept()
            s.settimeout(t(10))
            with tls11_context(True, cert, key).wrap_socket(s, server_side=True) as ss:
                result["server"] = ss.version()
        except (OSError, ssl.SSLError) as e:
            result["server_error"] = repr(e)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        with socket.create_connection(ls.getsockname(), timeout=t(10)) as s:
            with tls11_context().wrap_socket(s) as ss:
                result["client"] = ss.version()
    except (OSError, ssl.SSLError) as e:
        result["client_error"] = repr(e)
    th.join(t(10))
    ls.close()
    return result.get("client") == "TLSv1.1", result


def test_starttls_then_ehlo(smtp):
    with smtp.connect() as c:
        c.starttls()
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3"), f"negotiated {c.sock.version()}"
        r = c.ehlo()
        kw = r.keywords()
        assert "STARTTLS" not in kw, f"EHLO after TLS still offers STARTTLS: '{r}'"
        for k in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES"):
            assert k in kw, f"EHLO after TLS lacks {k}: '{r}'"


def test_starttls_resets_state(smtp):
    with smtp.connect() as c:
        c.starttls()
        expect(c.cmd("MAIL FROM:<x@y.test>"), 503, "5.5.1",
               "MAIL FROM right after the TLS handshake, without a new EHLO")
        c.ehlo()
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM after EHLO over TLS")


def test_starttls_twice_refused(smtp):
    with smtp.connect() as c:
        c.starttls()
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert r.code // 100 == 5, f"after a second STARTTLS (TLS active) the client saw '{r}', expected 5xx"
        expect(c.cmd("NOOP"), 250, after="NOOP after a refused second STARTTLS")


def test_starttls_with_argument_refused(smtp):
    with smtp.connect() as c:
        r = c.cmd("STARTTLS now")
        expect(r, 501, after="STARTTLS with an argument")


def test_starttls_before_ehlo(smtp):
    # RFC 3207 does not require EHLO first; either a handshake or 503 is fine,
    # but a 503 must leave the session usable
    with smtp.connect(ehlo=False) as c:
        r = c.cmd("STARTTLS")
        assert r.code in (220, 503), f"after STARTTLS before EHLO the client saw '{r}', expected 220 or 503"
        if r.code == 503:
            c.ehlo()
            c.starttls()
        else:
            c.sock = client_tls_context().wrap_socket(c.sock, server_hostname=HOSTNAME)
        c.ehlo()


def test_starttls_injection_not_answered(smtp):
    with smtp.connect() as c:
        c.send(b"STARTTLS\r\nRSET\r\n")
        # read the 220 without reading ahead: anything after it would be TLS
        line = b""
        while not line.endswith(b"\r\n") and len(line) < 1000:
            ch = c.sock.recv(1)
            assert ch, f"server closed the connection after STARTTLS (got {line!r})"
            line += ch
        assert line.startswith(b"220"), f"reply to STARTTLS is {line!r}, expected 220"
        c.sock.settimeout(t(15))
        try:
            c.sock = client_tls_context().wrap_socket(c.sock, server_hostname=HOSTNAME)
        except ssl.SSLError as e:
            raise AssertionError(f"TLS handshake failed after 'STARTTLS\\r\\nRSET\\r\\n' in one packet "
                                 f"(did the server answer RSET in plaintext?): {e!r}")
        c.send(b"EHLO client.example.test\r\n")
        r = c.read_reply(after="EHLO over TLS after an injected RSET")
        assert r.code == 250 and len(r.lines) > 1 and r.texts[0].split()[0] == HOSTNAME, \
            f"first reply over TLS is '{r}', expected the EHLO reply: the injected RSET " \
            f"(sent before the handshake) was answered"
        extra = c.replies_until_quiet(quiet=t(0.7))
        assert extra == [], f"replies after the EHLO over TLS: {[str(x) for x in extra]}"


def test_tls11_refused(smtp):
    works, detail = local_tls11_works(smtp.tls_cert, smtp.tls_key)
    assert works, f"cannot check: this machine cannot do TLS 1.1 even locally: {detail}"
    with smtp.connect() as c:
        expect(c.cmd("STARTTLS"), 220, after="STARTTLS")
        c.sock.settimeout(t(15))
        try:
            s = tls11_context().wrap_socket(c.sock, server_hostname=HOSTNAME)
        except (ssl.SSLError, OSError):
            return  # refused: good
        v = s.version()
        s.close()
        raise AssertionError(f"a TLS 1.1-only client completed a handshake ({v}); expected refusal "
                             f"(TLS 1.2 minimum)")


def test_tls12_accepted(smtp):
    ctx = client_tls_context(maximum=ssl.TLSVersion.TLSv1_2)
    with smtp.connect() as c:
        c.starttls(ctx)
        assert c.sock.version() == "TLSv1.2", f"negotiated {c.sock.version()}, expected TLSv1.2"
        c.ehlo()


def test_delivery_over_tls_received_header(instance):
    msgid, msg = make_message(subject="over tls")
    with instance.connect() as c:
        c.starttls()
        version = c.sock.version()
        cipher = c.sock.cipher()[0]
        c.ehlo()
        expect(c.mail_tx("x@y.test", [ALICE], msg), 250, "2.0.0", "end of data over TLS")
        files = instance.messages(ALICE)   # before QUIT: already on disk
        c.quit()
    assert len(files) == 1, f"alice has {len(files)} messages right after the 250, expected 1"
    d = instance.one(ALICE)
    d.check_name()
    d.check_trace("x@y.test", ALICE)
    rec = d.received
    assert "ESMTPS" in rec, f"Received header {rec!r} lacks 'ESMTPS' for a TLS session"
    assert "TLSv1." in rec and version in rec, \
        f"Received header {rec!r} does not name the TLS version {version}"
    assert cipher in rec, f"Received header {rec!r} does not name the cipher {cipher}"
    d.check_original(msg)


def test_smtplib_starttls(instance):
    msgid, msg = make_message()
    with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=t(30)) as s:
        s.ehlo("client.example.test")
        assert s.has_extn("starttls"), "smtplib sees no STARTTLS extension"
        code, _ = s.starttls(context=client_tls_context())
        assert code == 220, f"smtplib starttls() got {code}, expected 220"
        s.ehlo("client.example.test")
        assert not s.has_extn("starttls"), "smtplib still sees STARTTLS after TLS"
        assert s.sendmail("x@y.test", [ALICE], msg) == {}
    instance.one(ALICE).check_original(msg)


def test_swaks_tls(instance, tool):
    swaks = tool("swaks")
    cp = subprocess.run([swaks, "--tls", "--to", ALICE, "--from", "x@y.test",
                         "--server", f"127.0.0.1:{instance.smtp_port}",
                         "--header", "Subject: swaks tls", "--body", "swaks over tls"],
                        capture_output=True, text=True, timeout=t(60))
    assert cp.returncode == 0, f"swaks --tls exited {cp.returncode}; transcript:\n{cp.stdout[-3000:]}"
    d = instance.one(ALICE)
    d.check_trace("x@y.test", ALICE)
    assert "ESMTPS" in d.received, f"Received header {d.received!r} lacks ESMTPS"
    assert b"swaks over tls" in d.original, f"stored message lacks the swaks body: {d.original[:300]!r}"


def test_plaintext_garbage_after_starttls_does_not_crash(smtp):
    with smtp.connect() as c:
        expect(c.cmd("STARTTLS"), 220, after="STARTTLS")
        c.send(b"this is not a TLS ClientHello\r\n" * 10)
        c.closed_by_server(t(5))
    with smtp.connect() as c:
        expect(c.cmd("NOOP"), 250, after="NOOP on a new connection after a failed handshake")
