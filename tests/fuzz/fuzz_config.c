/*
 * fuzz_config.c - libFuzzer target for the buzon.conf parser.
 *
 * The input is the file text (not NUL-terminated: the parser must honour
 * len).  Checks that parsing never crashes, that on success every listen
 * set is within bounds and every string field is NUL-terminated, and that
 * on failure the error names the file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

static void
check_str(const char *s, size_t size)
{
	if (memchr(s, '\0', size) == NULL)
		abort();
}

static void
check_listen(const struct listen_set *ls)
{
	int i;

	if (ls->n < 0 || ls->n > CONFIG_MAX_LISTEN)
		abort();
	for (i = 0; i < ls->n; i++) {
		check_str(ls->l[i].host, sizeof(ls->l[i].host));
		if (ls->l[i].port == 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	char err[512];
	char *copy;

	/* an exact-size heap copy so ASan sees any read past len */
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	config_defaults(&cfg);
	err[0] = '\0';
	if (config_parse(&cfg, copy, size, "fuzz.conf", err, sizeof(err)) == 0) {
		check_str(cfg.hostname, sizeof(cfg.hostname));
		check_str(cfg.state_dir, sizeof(cfg.state_dir));
		check_str(cfg.database, sizeof(cfg.database));
		check_str(cfg.mail_dir, sizeof(cfg.mail_dir));
		check_str(cfg.queue_dir, sizeof(cfg.queue_dir));
		check_str(cfg.user, sizeof(cfg.user));
		check_str(cfg.tls_cert, sizeof(cfg.tls_cert));
		check_str(cfg.tls_key, sizeof(cfg.tls_key));
		check_str(cfg.relayhost, sizeof(cfg.relayhost));
		check_str(cfg.dnsbl, sizeof(cfg.dnsbl));
		check_listen(&cfg.smtpd_listen);
		check_listen(&cfg.imapd_listen);
		check_listen(&cfg.pop3d_listen);
		if (cfg.max_recipients == 0 || cfg.max_recipients > 1000000)
			abort();
	} else {
		check_str(err, sizeof(err));
		if (strncmp(err, "fuzz.conf:", 10) != 0)
			abort();
	}
	/* the size/duration helpers on the same bytes */
	{
		uint64_t v;

		(void)config_parse_size(copy, size, &v);
		(void)config_parse_duration(copy, size, &v);
	}
	free(copy);
	return 0;
}
