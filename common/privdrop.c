/*
 * privdrop.c - see privdrop.h.  Any failure is fatal for the caller: a
 * daemon must never serve clients with more privilege than it asked for.
 */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
privdrop(const char *user, char *err, size_t errlen)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	if (user == NULL || *user == '\0' || geteuid() != 0)
		return 0;
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errlen, "user \"%s\" does not exist: create it with "
		    "useradd --system --shell /usr/sbin/nologin %s", user, user);
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0) {
		snprintf(err, errlen, "user \"%s\" is root: set user to an "
		    "unprivileged account", user);
		return -1;
	}
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		snprintf(err, errlen, "cannot switch to user %s: %s", user,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		snprintf(err, errlen, "privilege drop to %s did not stick", user);
		return -1;
	}
	return 0;
}
