/*
 * bench/dovecot/dovecot_paths.c - LD_PRELOAD shim for running Debian's
 * Dovecot from a directory extracted with dpkg -x, as an ordinary user,
 * without installing it.
 *
 * Dovecot has its module directory compiled in (/usr/lib/dovecot/modules:
 * the SSL module every login process loads, auth and mail plugins).  This
 * shim rewrites opendir() and dlopen() of paths under /usr/lib/dovecot/
 * to the same path under DOVECOT_PREFIX (the extracted tree's root, given
 * at compile time).  Nothing else is touched.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#ifndef DOVECOT_PREFIX
#error "compile with -DDOVECOT_PREFIX='\"/path/to/extracted/root\"'"
#endif

#define SYS_DIR "/usr/lib/dovecot"

static const char *
rewrite(const char *path, char *buf, size_t size)
{
	size_t n = sizeof(SYS_DIR) - 1;

	if (path == NULL || strncmp(path, SYS_DIR, n) != 0 ||
	    (path[n] != '/' && path[n] != '\0'))
		return path;
	if ((size_t)snprintf(buf, size, "%s%s", DOVECOT_PREFIX, path) >= size)
		return path;
	return buf;
}

DIR *
opendir(const char *name)
{
	static DIR *(*real)(const char *);
	char buf[4096];

	if (real == NULL)
		real = (DIR *(*)(const char *))dlsym(RTLD_NEXT, "opendir");
	return real(rewrite(name, buf, sizeof(buf)));
}

void *
dlopen(const char *file, int flags)
{
	static void *(*real)(const char *, int);
	char buf[4096];

	if (real == NULL)
		real = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	return real(rewrite(file, buf, sizeof(buf)), flags);
}
