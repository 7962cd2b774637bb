/*
 * fuzz_mx_answer.c - libFuzzer target for mx_parse_answer(): a DNS
 * answer from the network is untrusted bytes.  Whatever it says, the
 * route must be sorted by preference and every name NUL-terminated.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/mx_lookup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mx_route r;
	size_t i;

	if (mx_parse_answer(data, size, 7, &r) != MX_OK)
		return 0;
	if (r.nhosts == 0 || r.nhosts > MX_HOSTS_MAX)
		abort();
	for (i = 0; i < r.nhosts; i++) {
		if (memchr(r.hosts[i].name, '\0', MX_NAME_MAX) == NULL)
			abort();
		if (i > 0 && r.hosts[i - 1].pref > r.hosts[i].pref)
			abort();
	}
	return 0;
}
