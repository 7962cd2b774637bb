/*
 * adm_output.c - how mailadm prints lists: an aligned text table with a
 * header line for people, or (--json) a JSON array for scripts, with
 * every string escaped.  Sizes and dates get one human format here.
 */
#include "adm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
adm_table_init(struct adm_table *t, size_t ncols, const char *const *header)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	adm_table_add(t, header);
}

int
adm_table_add(struct adm_table *t, const char *const *cells)
{
	size_t i, need = (t->nrows + 1) * t->ncols;

	if (need > t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : t->ncols * 16;
		char **p;

		while (ncap < need)
			ncap *= 2;
		p = reallocarray(t->cells, ncap, sizeof(*p));
		if (p == NULL)
			return -1;
		t->cells = p;
		t->cap = ncap;
	}
	for (i = 0; i < t->ncols; i++) {
		char *c = strdup(cells[i] != NULL ? cells[i] : "");

		if (c == NULL) {
			while (i > 0)
				free(t->cells[t->nrows * t->ncols + --i]);
			return -1;
		}
		t->cells[t->nrows * t->ncols + i] = c;
	}
	t->nrows++;
	return 0;
}

void
adm_table_print(const struct adm_table *t)
{
	size_t *w = calloc(t->ncols, sizeof(*w));
	size_t r, c;

	if (w == NULL)
		return;
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			size_t l = strlen(t->cells[r * t->ncols + c]);

			if (l > w[c])
				w[c] = l;
		}
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];

			if (c + 1 == t->ncols)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)w[c], s);
		}
	}
	free(w);
}

void
adm_table_free(struct adm_table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

int
adm_json_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int r = buf_putc(b, '"');

	for (; *s != '\0' && r == 0; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			r = buf_putc(b, '\\');
			if (r == 0)
				r = buf_putc(b, (char)c);
		} else if (c < 0x20 || c == 0x7f) {
			char u[7] = { '\\', 'u', '0', '0', hex[c >> 4],
			    hex[c & 15], '\0' };

			r = buf_puts(b, u);
		} else {
			r = buf_putc(b, (char)c);
		}
	}
	return r == 0 ? buf_putc(b, '"') : -1;
}

void
adm_print_buf(const struct buf *b)
{
	fwrite(buf_cstr(b), 1, b->len, stdout);
}

void
adm_json_init(struct adm_json *j)
{
	memset(j, 0, sizeof(*j));
	buf_init(&j->b, BUF_UNLIMITED);
}

/* The separator and "key": of a new item of the innermost open value. */
static void
json_item(struct adm_json *j, const char *key)
{
	if (j->depth == 0)
		return;
	if (j->count[j->depth - 1]++ > 0)
		j->err |= buf_putc(&j->b, ',');
	/* the entries of a top-level list go one per line */
	if (j->depth == 1 && j->close[0] == ']')
		j->err |= buf_puts(&j->b, "\n  ");
	if (key != NULL) {
		j->err |= adm_json_str(&j->b, key);
		j->err |= buf_putc(&j->b, ':');
	}
}

void
adm_json_open(struct adm_json *j, const char *key, char kind)
{
	json_item(j, key);
	if (j->depth == ADM_JSON_DEPTH) {
		j->err = -1;
		return;
	}
	j->err |= buf_putc(&j->b, kind);
	j->close[j->depth] = kind == '[' ? ']' : '}';
	j->count[j->depth++] = 0;
}

void
adm_json_close(struct adm_json *j)
{
	if (j->depth == 0) {
		j->err = -1;
		return;
	}
	j->depth--;
	if (j->depth == 0 && j->close[0] == ']' && j->count[0] > 0)
		j->err |= buf_putc(&j->b, '\n');
	j->err |= buf_putc(&j->b, j->close[j->depth]);
}

void
adm_json_field_str(struct adm_json *j, const char *key, const char *v)
{
	json_item(j, key);
	j->err |= adm_json_str(&j->b, v);
}

void
adm_json_field_bool(struct adm_json *j, const char *key, int v)
{
	json_item(j, key);
	j->err |= buf_puts(&j->b, v ? "true" : "false");
}

void
adm_json_field_int(struct adm_json *j, const char *key, long long v)
{
	json_item(j, key);
	j->err |= buf_printf(&j->b, "%lld", v);
}

int
adm_json_print(struct adm_json *j)
{
	int r = ADM_OK;

	if (j->depth != 0)
		r = adm_fail("internal error: JSON value left open");
	else if (j->err != 0 || buf_putc(&j->b, '\n') < 0)
		r = adm_fail("out of memory");
	else
		adm_print_buf(&j->b);
	buf_free(&j->b);
	return r;
}

void
adm_format_size(uint64_t bytes, char *out, size_t outsz)
{
	static const struct {
		uint64_t mult;
		char suffix;
	} units[] = {
		{ 1ULL << 30, 'G' }, { 1ULL << 20, 'M' }, { 1ULL << 10, 'K' },
	};
	size_t i;

	if (bytes == 0) {
		strlcpy_checked(out, "none", outsz);
		return;
	}
	/*
	 * Exact when possible, in the units config_parse_size() reads, so
	 * the value can be given back to mailadm user quota as it is.
	 */
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (bytes % units[i].mult == 0) {
			snprintf_checked(out, outsz, "%llu%c",
			    (unsigned long long)(bytes / units[i].mult),
			    units[i].suffix);
			return;
		}
	}
	snprintf_checked(out, outsz, "%llu", (unsigned long long)bytes);
}

void
adm_format_time(int64_t t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(out, outsz, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf_checked(out, outsz, "%lld", (long long)t);
}
