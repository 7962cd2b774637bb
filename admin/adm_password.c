/*
 * adm_password.c - reading a new password for mailadm user add/passwd.
 * Never from argv (other users can read it in ps): either exactly one
 * line on stdin (--password-stdin), or typed twice on the terminal
 * (/dev/tty) with echo off.  Echo is restored on every way out,
 * including a signal.  The password never reaches a log or an error line.
 */
#include "adm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static int tty_fd = -1;
static struct termios tty_saved;
static volatile sig_atomic_t tty_echo_off;

static void
tty_restore(void)
{
	if (tty_echo_off) {
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
		tty_echo_off = 0;
	}
}

static void
on_signal(int sig)
{
	tty_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line from stdin; anything after it is refused. */
static int
read_stdin(char *out, size_t outsz)
{
	size_t len = 0;
	char *nl;
	ssize_t n;

	for (;;) {
		if (len + 1 >= outsz) {
			explicit_bzero(out, outsz);
			return adm_fail("the password on stdin is longer than %zu "
			    "bytes", outsz - 3);
		}
		n = read(STDIN_FILENO, out + len, outsz - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return adm_fail("reading the password from stdin: %s",
			    strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	nl = memchr(out, '\n', len);
	if (nl != NULL) {
		if ((size_t)(nl - out) + 1 != len) {
			explicit_bzero(out, outsz);
			return adm_fail("--password-stdin reads exactly one line, "
			    "but stdin has more; give the password alone");
		}
		*nl = '\0';
		len = (size_t)(nl - out);
		if (len > 0 && out[len - 1] == '\r')
			out[--len] = '\0';
	}
	if (memchr(out, '\0', len) != NULL) {
		explicit_bzero(out, outsz);
		return adm_fail("the password on stdin contains a NUL byte");
	}
	if (len == 0)
		return adm_fail("empty password on stdin; refusing to set an "
		    "empty password");
	return ADM_OK;
}

/* Prompt on the terminal with echo off; reads one line into out. */
static int
prompt(const char *msg, char *out, size_t outsz)
{
	struct termios t;
	size_t len = 0;
	int r = ADM_OK;
	char c;

	if (write(tty_fd, msg, strlen(msg)) < 0)
		return adm_fail("cannot write to the terminal: %s",
		    strerror(errno));
	t = tty_saved;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	t.c_lflag |= ICANON;
	tty_echo_off = 1;
	if (tcsetattr(tty_fd, TCSAFLUSH, &t) < 0) {
		tty_echo_off = 0;
		return adm_fail("cannot turn off echo on the terminal: %s",
		    strerror(errno));
	}
	for (;;) {
		ssize_t n = read(tty_fd, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n')
			break;
		if (len + 1 >= outsz) {
			r = adm_fail("password too long (more than %zu bytes)",
			    outsz - 2);
			break;
		}
		out[len++] = c;
	}
	out[len] = '\0';
	c = 0;
	tty_restore();
	(void)!write(tty_fd, "\n", 1);
	return r;
}

static int
read_tty(const char *address, char *out, size_t outsz)
{
	struct sigaction sa, old[4];
	static const int sigs[4] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	char again[1024], msg[ADDR_MAX + 64];
	int i, r;

	if (!isatty(STDIN_FILENO) ||
	    (tty_fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) < 0)
		return adm_fail("no terminal to ask for the password; pipe it "
		    "in with --password-stdin");
	if (tcgetattr(tty_fd, &tty_saved) < 0) {
		close(tty_fd);
		return adm_fail("cannot read the terminal settings: %s",
		    strerror(errno));
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, &old[i]);

	snprintf_checked(msg, sizeof(msg), "New password for %s: ", address);
	r = prompt(msg, out, outsz < sizeof(again) ? outsz : sizeof(again));
	if (r == ADM_OK && out[0] == '\0')
		r = adm_fail("empty password; nothing changed");
	if (r == ADM_OK)
		r = prompt("Repeat the password: ", again, sizeof(again));
	if (r == ADM_OK && strcmp(out, again) != 0)
		r = adm_fail("the two passwords differ; nothing changed");
	explicit_bzero(again, sizeof(again));

	for (i = 0; i < 4; i++)
		sigaction(sigs[i], &old[i], NULL);
	close(tty_fd);
	tty_fd = -1;
	if (r != ADM_OK)
		explicit_bzero(out, outsz);
	return r;
}

int
adm_password_read(int from_stdin, const char *address, char *out,
    size_t outsz)
{
	if (outsz < 4)
		return adm_fail("internal error: password buffer too small");
	return from_stdin ? read_stdin(out, outsz) : read_tty(address, out,
	    outsz);
}
