/*
 * fuzz_policy_header.c - libFuzzer target for policy_header_filter()
 * and policy_auth_results().
 *
 * Filter: any bytes are a header; the output is never longer than the
 * input, filtering it again changes nothing (no field claiming our
 * authserv-id survives, continuation lines stay with their field) and
 * counts the same From fields.  Builder: whatever the message put in
 * d=, s=, the sender or the From domain, the header has exactly one
 * result per method, LF line ends each followed by a tab, no CR or NUL.
 *
 * Input: one byte choosing the target and the out size, then the data.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID "mail.example.org"

static void
fuzz_filter(const char *p, size_t len, size_t max)
{
	struct buf out, again;
	unsigned nfrom, nfrom2;
	int r;

	buf_init(&out, max);
	buf_init(&again, BUF_UNLIMITED);
	r = policy_header_filter(p, len, ID, &out, &nfrom);
	if (r != 0 && r != -1)
		abort();
	if (r == 0) {
		if (out.len > len)
			abort();
		if (policy_header_filter(out.data != NULL ? out.data : "",
		    out.len, ID, &again, &nfrom2) != 0)
			abort();
		if (again.len != out.len || (out.len > 0 &&
		    memcmp(again.data, out.data, out.len) != 0) ||
		    nfrom2 != nfrom)
			abort();
	}
	buf_free(&out);
	buf_free(&again);
}

/* The next NUL-separated piece of [*p, end) into out (bounded). */
static void
piece(const char **p, const char *end, char *out, size_t outsz)
{
	size_t n = 0;

	while (*p < end && **p != '\0') {
		if (n + 1 < outsz)
			out[n++] = **p;
		(*p)++;
	}
	if (*p < end)
		(*p)++;
	out[n] = '\0';
}

/* ';' outside comments */
static int
count_results(const char *s, size_t len)
{
	int n = 0, depth = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '(')
			depth++;
		else if (s[i] == ')')
			depth--;
		else if (s[i] == ';' && depth == 0)
			n++;
		if (depth < 0)
			abort();
	}
	if (depth != 0)
		abort();
	return n;
}

static void
fuzz_builder(const char *p, size_t len, unsigned sel)
{
	const char *end = p + len;
	struct spf_outcome spf;
	struct dkim_outcome dkim;
	struct dmarc_outcome dmarc;
	char mailfrom[512];
	struct buf out;
	size_t i;

	memset(&spf, 0, sizeof(spf));
	memset(&dkim, 0, sizeof(dkim));
	memset(&dmarc, 0, sizeof(dmarc));
	spf.result = (enum spf_result)(sel % 7);
	spf.helo_identity = (sel >> 3) & 1;
	piece(&p, end, spf.domain, sizeof(spf.domain));
	piece(&p, end, mailfrom, sizeof(mailfrom));
	dkim.nsigs = (sel >> 4) % 4;
	for (i = 0; i < dkim.nsigs; i++) {
		dkim.sig[i].result = (enum dkim_result)((sel + i) % 7);
		piece(&p, end, dkim.sig[i].domain, sizeof(dkim.sig[i].domain));
		piece(&p, end, dkim.sig[i].selector,
		    sizeof(dkim.sig[i].selector));
		piece(&p, end, dkim.sig[i].reason, sizeof(dkim.sig[i].reason));
	}
	dmarc.result = (enum dmarc_result)(sel % 5);
	dmarc.disposition = (enum dmarc_disposition)(sel % 3);
	piece(&p, end, dmarc.policy, sizeof(dmarc.policy));
	piece(&p, end, dmarc.from_domain, sizeof(dmarc.from_domain));

	buf_init(&out, 65536);
	if (policy_auth_results(ID, &spf, mailfrom, &dkim, &dmarc, &out) != 0)
		abort();
	if (out.len == 0 || out.data[out.len - 1] != '\n' ||
	    memchr(out.data, '\r', out.len) != NULL ||
	    memchr(out.data, '\0', out.len) != NULL)
		abort();
	for (i = 0; i + 1 < out.len; i++)
		if (out.data[i] == '\n' && out.data[i + 1] != '\t')
			abort();
	if (count_results(out.data, out.len) !=
	    2 + (int)(dkim.nsigs > 0 ? dkim.nsigs : 1))
		abort();
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1;

	if (size < 1)
		return 0;
	if (data[0] & 0x80)
		fuzz_builder(p, size - 1, data[0]);
	else
		fuzz_filter(p, size - 1, (data[0] & 0x40) ? 1 + data[0] % 64 :
		    BUF_UNLIMITED);
	return 0;
}
