"""Fixtures for Buzón integration tests.

  instance       a fresh instance per test: config on free loopback ports,
                 `mailadm init`, domain example.test, users alice and bob,
                 smtpd running.  Teardown: SIGTERM, exit code must be 0.
  smtp_module    the same, shared by the tests of one module (for tests
                 that do not count files or change accounts).
  adm            config written, nothing run (for mailadm tests).

Config overrides:  @pytest.mark.buzon_conf(top={...}, smtpd={...}, ...)
on a test (function fixtures) or as `pytestmark` in a module.

Binaries come from $BUZON_BIN (default <repo>/bin).  A missing binary or
tool is a failure, never a skip.
"""

import shutil

import pytest

import buzon


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "buzon_conf(top=None, smtpd=None, imapd=None, pop3d=None, policy=None): "
        "override or add buzon.conf lines for the instance fixture")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        seen = set()
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, buzon.Instance) and id(value) not in seen \
                    and value.stderr_path.exists():
                seen.add(id(value))
                rep.sections.append(
                    (f"smtpd stderr (tail) {value.stderr_path}",
                     buzon.tail(value.stderr_path)))


def _overrides(node):
    m = node.get_closest_marker("buzon_conf")
    if m is None:
        return {}
    if m.args:
        raise TypeError("buzon_conf takes keyword arguments only")
    return dict(m.kwargs)


def _finish(inst):
    rc = inst.stop_smtpd()
    assert rc == 0, (f"smtpd exited with code {rc} after SIGTERM, expected 0; "
                     f"stderr:\n{buzon.tail(inst.stderr_path)}")


@pytest.fixture
def instance(request, tmp_path):
    inst = buzon.Instance(tmp_path / "buzon", _overrides(request.node))
    inst.setup_accounts()
    inst.start_smtpd()
    yield inst
    _finish(inst)


@pytest.fixture
def instance_nostart(request, tmp_path):
    """Accounts set up, smtpd not started (the test starts it)."""
    inst = buzon.Instance(tmp_path / "buzon", _overrides(request.node))
    inst.setup_accounts()
    yield inst
    if inst.proc is not None:
        _finish(inst)


@pytest.fixture(scope="module")
def smtp_module(request, tmp_path_factory):
    inst = buzon.Instance(tmp_path_factory.mktemp("buzon"), _overrides(request.node))
    inst.setup_accounts()
    inst.start_smtpd()
    yield inst
    _finish(inst)


@pytest.fixture
def smtp(smtp_module):
    """The module instance, checked to be still running before each test."""
    p = smtp_module.proc
    assert p is not None and p.poll() is None, \
        f"the shared smtpd is not running (exit code {p.returncode if p else None}); " \
        f"stderr:\n{buzon.tail(smtp_module.stderr_path)}"
    return smtp_module


@pytest.fixture
def adm(request, tmp_path):
    inst = buzon.Instance(tmp_path / "buzon", _overrides(request.node))
    (inst.root / "tls").mkdir(mode=0o700)
    return inst


@pytest.fixture
def tool():
    """Path of a required command-line tool; missing = failure (make deps)."""
    def find(name):
        p = shutil.which(name)
        assert p, f"{name} is not installed: run `sudo make deps`"
        return p
    return find


@pytest.fixture
def imap(request, tmp_path):
    """An instance with accounts and imapd running (smtpd too, for
    delivery tests).  Yields the Instance; .imapd is the Daemon."""
    from daemon import Daemon
    inst = buzon.Instance(tmp_path / "buzon", _overrides(request.node))
    inst.setup_accounts()
    inst.start_smtpd()
    inst.imapd = Daemon(inst, "imapd", inst.imap_port, b"* OK")
    try:
        inst.imapd.start()      # a failed start must not leave smtpd running
        yield inst
    finally:
        try:
            inst.imapd.stop()
        finally:
            assert inst.stop_smtpd() == 0


def _add_pop3s_listener(inst):
    """Give the instance a pop3s (implicit TLS) listener next to the pop3
    one of the base config, on inst.pop3s_port."""
    if getattr(inst, "pop3s_port", None) is None:
        inst.pop3s_port = buzon.free_port()
    if f":{inst.pop3s_port} pop3s" not in inst.conf_text:
        inst.conf_text = inst.conf_text.replace(
            "[pop3d]\n", f"[pop3d]\nlisten = 127.0.0.1:{inst.pop3s_port} pop3s\n", 1)
        inst.conf.write_text(inst.conf_text)


@pytest.fixture
def pop3(request, tmp_path):
    """An instance with accounts, smtpd and pop3d running: .pop3_port
    (pop3, STLS) and .pop3s_port (pop3s).  Yields the Instance; .pop3d is
    the Daemon."""
    from daemon import Daemon
    inst = buzon.Instance(tmp_path / "buzon", _overrides(request.node))
    _add_pop3s_listener(inst)
    inst.setup_accounts()
    inst.start_smtpd()
    inst.pop3d = Daemon(inst, "pop3d", inst.pop3_port, b"+OK")
    try:
        inst.pop3d.start()      # a failed start must not leave smtpd running
        yield inst
    finally:
        try:
            inst.pop3d.stop()
        finally:
            assert inst.stop_smtpd() == 0
