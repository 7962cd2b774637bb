/*
 * privdrop.h - the one fixed privilege-drop sequence every daemon runs
 * after binding its ports: setgroups, setresgid, setresuid, then a check
 * that root cannot be regained.
 */
#ifndef BUZON_PRIVDROP_H
#define BUZON_PRIVDROP_H

#include <stddef.h>

/*
 * Drop to user when running as root and user is non-empty; otherwise do
 * nothing.  Returns 0, or -1 with err set (the caller must exit).
 */
int privdrop(const char *user, char *err, size_t errlen);

#endif
