/*
 * adm_dkim.c - mailadm dkim keygen|list|retire: the RSA keys our mail is
 * signed with, and their rotation (see common/db_dkim.h).
 *
 * A private key is written 0600 into STATE_DIR/dkim/, after mailadm has
 * dropped to the daemons' user, so that it belongs to them; it is never
 * overwritten and never deleted once its row exists.  keygen prints the
 * record to publish as a zone-file fragment: ';' comment lines and one
 * "SELECTOR._domainkey.DOMAIN. IN TXT ..." line, the same line
 * `mailadm dns` prints.
 */
#include "adm.h"
#include "../common/db_admin.h"
#include "../common/db_dkim.h"
#include "../common/dkim_sign.h"
#include "../store/durable.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A DNS name is at most 253 characters written without the final dot. */
#define DNS_NAME_MAX 253
#define DOMAINKEY_LABEL "._domainkey."

struct keygen {
	char domain[ADDR_DOMAIN_MAX + 1];
	char selector[DKIM_SELECTOR_MAX + 1];
	unsigned bits;
	char dir[CONFIG_STR_MAX];
	char path[DKIM_PATH_MAX];
	struct buf pem, p, value, zone;
	int signing;
	char signer[DKIM_SELECTOR_MAX + 1];	/* the key that signs */
};

static int
parse_bits(const char *s, unsigned *bits)
{
	char *end;
	unsigned long v;

	if (s == NULL) {
		*bits = DKIM_BITS_DEFAULT;
		return ADM_OK;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    v < DKIM_BITS_MIN || v > DKIM_BITS_MAX)
		return adm_fail("invalid key size \"%.32s\": --bits takes %u to "
		    "%u (default %u)", s, DKIM_BITS_MIN, DKIM_BITS_MAX,
		    DKIM_BITS_DEFAULT);
	*bits = (unsigned)v;
	return ADM_OK;
}

/* "s" and this month, e.g. s202611: a new selector at each rotation. */
static void
default_selector(char *out, size_t outsz)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	snprintf_checked(out, outsz, "s%04d%02d", tm.tm_year + 1900,
	    tm.tm_mon + 1);
}

/* Parse and check everything that needs no database.  ADM_*. */
static int
keygen_args(struct adm_ctx *ctx, int argc, char **argv, struct keygen *k)
{
	const char *sel = NULL, *bits = NULL, *error;
	const struct adm_opt opts[] = {
		{ "--selector", &sel, NULL },
		{ "--bits", &bits, NULL },
		{ NULL, NULL, NULL },
	};
	char *pos[1], defsel[16];
	int r, n;

	if ((r = adm_args(ctx, argc, argv, opts, pos, 1, 1, &n)) != ADM_OK)
		return r;
	if (db_admin_check_domain(pos[0], k->domain, sizeof(k->domain),
	    &error) < 0)
		return adm_fail("%s", error);
	if (sel == NULL) {
		default_selector(defsel, sizeof(defsel));
		sel = defsel;
	}
	if (db_dkim_check_selector(sel, k->selector, sizeof(k->selector),
	    &error) < 0)
		return adm_fail("%s", error);
	if (strlen(k->selector) + strlen(DOMAINKEY_LABEL) +
	    strlen(k->domain) > DNS_NAME_MAX)
		return adm_fail("the record name %s%s%s would be longer than "
		    "%d characters; choose a shorter --selector", k->selector,
		    DOMAINKEY_LABEL, k->domain, DNS_NAME_MAX);
	if ((r = parse_bits(bits, &k->bits)) != ADM_OK)
		return r;
	if (snprintf_checked(k->dir, sizeof(k->dir), "%s/dkim",
	    ctx->cfg.state_dir) < 0 ||
	    snprintf_checked(k->path, sizeof(k->path), "%s/%s.%s.key", k->dir,
	    k->domain, k->selector) < 0)
		return adm_fail("state_dir %s is too long for a DKIM key path",
		    ctx->cfg.state_dir);
	return ADM_OK;
}

/* Make the key, write it (new file, 0600, fsync-ed), derive the record. */
static int
keygen_write(struct adm_ctx *ctx, struct keygen *k)
{
	char err[CONFIG_STR_MAX + 256];
	int created;

	if (adm_mkdirs(k->dir, 0700, &created, err, sizeof(err)) < 0)
		return adm_fail("%s", err);
	if (created && durable_fsync_dir(ctx->cfg.state_dir) < 0)
		return adm_fail("cannot sync %s: %s", ctx->cfg.state_dir,
		    strerror(errno));
	if (access(k->path, F_OK) == 0)
		return adm_fail("%s already exists (left from an earlier key?); "
		    "move it away or choose another --selector", k->path);
	if (dkim_keygen(k->bits, &k->pem, err, sizeof(err)) < 0)
		return adm_fail("%s", err);
	if (dkim_txt_record(k->pem.data, k->pem.len, &k->p) < 0 ||
	    dkim_txt_value(buf_cstr(&k->p), &k->value) < 0 ||
	    dkim_zone_line(k->selector, k->domain, buf_cstr(&k->p),
	    &k->zone) < 0)
		return adm_fail("cannot derive the public key record");
	if (adm_write_new_file(k->path, k->pem.data, k->pem.len, 0600, err,
	    sizeof(err)) < 0)
		return adm_fail("%s", err);
	if (durable_fsync_dir(k->dir) < 0) {
		durable_unlink_quiet(k->path);
		return adm_fail("cannot sync %s: %s", k->dir, strerror(errno));
	}
	return ADM_OK;
}

static int
keygen_print_json(const struct keygen *k)
{
	struct adm_json j;
	char name[DNS_NAME_MAX + 1];

	snprintf_checked(name, sizeof(name), "%s%s%s", k->selector,
	    DOMAINKEY_LABEL, k->domain);
	adm_json_init(&j);
	adm_json_open(&j, NULL, '{');
	adm_json_field_str(&j, "domain", k->domain);
	adm_json_field_str(&j, "selector", k->selector);
	adm_json_field_int(&j, "bits", k->bits);
	adm_json_field_str(&j, "key_path", k->path);
	adm_json_field_str(&j, "txt_name", name);
	adm_json_field_str(&j, "txt_value", buf_cstr(&k->value));
	adm_json_field_str(&j, "zone_line", buf_cstr(&k->zone));
	adm_json_field_bool(&j, "signing", k->signing);
	adm_json_close(&j);
	return adm_json_print(&j);
}

static void
keygen_print_text(const struct keygen *k)
{
	printf("; DKIM key %s of %s, %u-bit RSA, private key %s\n",
	    k->selector, k->domain, k->bits, k->path);
	if (k->signing)
		printf("; it signs mail of %s from now on: publish this TXT "
		    "record now\n", k->domain);
	else
		printf("; %s keeps signing: publish this TXT record, and once "
		    "it is visible in DNS run: mailadm dkim retire %s %s\n",
		    k->signer, k->domain, k->signer);
	printf("%s\n", buf_cstr(&k->zone));
}

int
adm_dkim_keygen(struct adm_ctx *ctx, int argc, char **argv)
{
	struct keygen k;
	struct db_dkim_key signer;
	const char *error;
	int r;

	memset(&k, 0, sizeof(k));
	buf_init(&k.pem, DKIM_KEY_FILE_MAX);
	buf_init(&k.p, 4096);
	buf_init(&k.value, 4096);
	buf_init(&k.zone, 8192);
	if ((r = keygen_args(ctx, argc, argv, &k)) != ADM_OK)
		goto done;
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		goto done;
	if (db_admin_domain_hosted(ctx->db, k.domain, &error) < 0) {
		r = adm_fail("%s", error);
		goto done;
	}
	if ((r = db_dkim_key_exists(ctx->db, k.domain, k.selector,
	    &error)) != 0) {
		r = r < 0 ? adm_fail("%s", error) : adm_fail("domain %s already "
		    "has a DKIM key with selector %s; choose another: "
		    "--selector NAME", k.domain, k.selector);
		goto done;
	}
	if ((r = keygen_write(ctx, &k)) != ADM_OK)
		goto done;
	if (db_dkim_key_add(ctx->db, k.domain, k.selector, k.path,
	    &error) < 0) {
		durable_unlink_quiet(k.path);
		r = adm_fail("%s", error);
		goto done;
	}
	if (db_dkim_signer(ctx->db, k.domain, &signer) == 1) {
		k.signing = strcmp(signer.selector, k.selector) == 0;
		strlcpy_checked(k.signer, signer.selector, sizeof(k.signer));
	}
	if (ctx->json)
		r = keygen_print_json(&k);
	else
		keygen_print_text(&k);
done:
	dkim_buf_wipe(&k.pem);
	buf_free(&k.p);
	buf_free(&k.value);
	buf_free(&k.zone);
	return r;
}

static int
list_print_json(const struct db_dkim_key *l, size_t n)
{
	struct adm_json j;
	size_t i;

	adm_json_init(&j);
	adm_json_open(&j, NULL, '[');
	for (i = 0; i < n; i++) {
		adm_json_open(&j, NULL, '{');
		adm_json_field_str(&j, "domain", l[i].domain);
		adm_json_field_str(&j, "selector", l[i].selector);
		adm_json_field_bool(&j, "active", l[i].active);
		adm_json_field_bool(&j, "signing", l[i].signing);
		adm_json_field_str(&j, "key_path", l[i].key_path);
		adm_json_close(&j);
	}
	adm_json_close(&j);
	return adm_json_print(&j);
}

static void
list_print_table(const struct db_dkim_key *l, size_t n)
{
	static const char *const header[] = { "DOMAIN", "SELECTOR", "ACTIVE",
	    "SIGNING", "KEY" };
	struct adm_table t;
	size_t i;

	adm_table_init(&t, 5, header);
	for (i = 0; i < n; i++) {
		const char *row[5] = { l[i].domain, l[i].selector,
		    l[i].active ? "yes" : "retired", l[i].signing ? "yes" : "no",
		    l[i].key_path };

		adm_table_add(&t, row);
	}
	adm_table_print(&t);
	adm_table_free(&t);
}

int
adm_dkim_list(struct adm_ctx *ctx, int argc, char **argv)
{
	struct db_dkim_key *l;
	const char *domain, *error;
	size_t n;
	int r;

	if ((r = adm_args_list(ctx, argc, argv, &domain)) != ADM_OK)
		return r;
	if (db_dkim_key_list(ctx->db, domain, &l, &n, &error) < 0)
		return adm_fail("%s", error);
	r = ADM_OK;
	if (ctx->json)
		r = list_print_json(l, n);
	else
		list_print_table(l, n);
	free(l);
	return r;
}

int
adm_dkim_retire(struct adm_ctx *ctx, int argc, char **argv)
{
	char *pos[2], d[ADDR_DOMAIN_MAX + 1], s[DKIM_SELECTOR_MAX + 1];
	struct db_dkim_key signer;
	const char *error;
	int r, n;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 2, 2, &n)) != ADM_OK)
		return r;
	if (db_admin_check_domain(pos[0], d, sizeof(d), &error) < 0 ||
	    db_dkim_check_selector(pos[1], s, sizeof(s), &error) < 0)
		return adm_fail("%s", error);
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	if (db_dkim_key_retire(ctx->db, d, s, &error) < 0)
		return adm_fail("%s", error);
	printf("retired DKIM key %s of %s: it signs nothing from now on and "
	    "mailadm dns no longer lists it; keep its DNS record a few days "
	    "for mail still in transit, then remove it (the key file stays "
	    "on disk)\n", s, d);
	r = db_dkim_signer(ctx->db, d, &signer);
	if (r == 1)
		printf("mail of %s is now signed with %s\n", d, signer.selector);
	else if (r == 0)
		printf("note: %s has no active DKIM key left, its mail goes out "
		    "unsigned; create one with: mailadm dkim keygen %s\n", d, d);
	return ADM_OK;
}
