/* report.c - the district's figures written for people (text tables) and
 * machines (CSV, JSON), see server/report.h and docs/REPORT.md. All three
 * are written from the one copy reportdata.c reads, so they always agree.
 * Not for computing the figures. */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "enrollment.h"
#include "mem.h"
#include "reportdata.h"
#include "utf8.h"

/* ---- shared by the writers ---- */

static const char *format_value(const struct reportdata_metric *m, int64_t n,
				char buf[32])
{
	if (m->flags & REPORTDATA_MONEY)
		snprintf(buf, 32, "%" PRId64 ".%02d", n / 100,
			 (int)(n % 100));
	else
		snprintf(buf, 32, "%" PRId64, n);
	return buf;
}

static const char *device_role(const struct reportdata_device *d)
{
	const char *name = enrollment_role_name((enum enrollment_role)d->role);

	return name ? name : "unknown";
}

static const char *device_last_sync(const struct reportdata_device *d,
				    char buf[CLI_TIME_MAX])
{
	if (d->last_seen_ms <= 0)
		return "never";
	cli_time_ms(d->last_seen_ms, buf);
	return buf;
}

static size_t named_towns(const struct reportdata *r)
{
	size_t i, n = 0;

	for (i = 0; i < r->ntowns; i++)
		n += r->towns[i].u.known;
	return n;
}

static size_t known_branches(const struct reportdata *r)
{
	size_t i, n = 0;

	for (i = 0; i < r->nunits; i++)
		n += r->units[i].known;
	return n;
}

/* ---- text ---- */

/* A table for people: cells are copied; columns are aligned by display
 * width (CJK characters take two columns). */
struct table {
	size_t ncols;
	unsigned right;            /* bit i: column i is right-aligned */
	char **cells;
	size_t n, cap;
	int failed;
};

static void table_cell(struct table *t, const char *s)
{
	char **c, *copy;
	size_t ncap;

	if (t->failed)
		return;
	if (t->n == t->cap) {
		ncap = t->cap ? t->cap * 2 : 64;
		c = ncap <= SIZE_MAX / sizeof *c ? mem_realloc(t->cells,
					ncap * sizeof *c) : NULL;
		if (!c) {
			t->failed = 1;
			return;
		}
		t->cells = c;
		t->cap = ncap;
	}
	copy = mem_strdup(s);
	if (!copy) {
		t->failed = 1;
		return;
	}
	t->cells[t->n++] = copy;
}

static void table_release(struct table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		mem_free(t->cells[i]);
	mem_free(t->cells);
	t->cells = NULL;
	t->n = t->cap = 0;
}

static int wide_char(uint32_t cp)
{
	return (cp >= 0x1100 && cp <= 0x115f) ||
	       (cp >= 0x2e80 && cp <= 0xa4cf && cp != 0x303f) ||
	       (cp >= 0xac00 && cp <= 0xd7a3) ||
	       (cp >= 0xf900 && cp <= 0xfaff) ||
	       (cp >= 0xfe30 && cp <= 0xfe4f) ||
	       (cp >= 0xff00 && cp <= 0xff60) ||
	       (cp >= 0xffe0 && cp <= 0xffe6) ||
	       (cp >= 0x20000 && cp <= 0x3fffd);
}

/* Columns that cli_text_field's output of s takes on a terminal. */
static size_t text_width(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t len = strlen(s), i = 0, w = 0, n;
	uint32_t cp;

	while (i < len) {
		n = utf8_decode(p + i, len - i, &cp);
		if (n == 0) {
			w++;
			i++;
			continue;
		}
		if (cp == '\\' || cp == '\t' || cp == '\n' || cp == '\r')
			w += 2;
		else
			w += wide_char(cp) ? 2 : 1;
		i += n;
	}
	return w;
}

static void pad(FILE *out, size_t n)
{
	while (n--)
		fputc(' ', out);
}

/* Prints the rows (the first is the header, underlined), or "(nothing
 * recorded)" when there is only the header; frees them. */
static int table_print(struct table *t, FILE *out, struct err *e)
{
	size_t *width = NULL, i, c, w;
	int rc = -1;

	if (t->failed || !(width = mem_calloc(t->ncols, sizeof *width))) {
		err_set(e, ERR_INVALID, "out of memory while making the "
			"report");
		goto cleanup;
	}
	if (t->n <= t->ncols) {
		fputs("(nothing recorded)\n", out);
		rc = 0;
		goto cleanup;
	}
	for (i = 0; i < t->n; i++) {
		w = text_width(t->cells[i]);
		if (w > width[i % t->ncols])
			width[i % t->ncols] = w;
	}
	for (i = 0; i < t->n; i++) {
		c = i % t->ncols;
		w = text_width(t->cells[i]);
		if (c)
			fputs("  ", out);
		if (t->right & (1u << c))
			pad(out, width[c] - w);
		cli_text_field(out, t->cells[i], strlen(t->cells[i]));
		if (!(t->right & (1u << c)) && c + 1 < t->ncols)
			pad(out, width[c] - w);
		if (c + 1 < t->ncols)
			continue;
		fputc('\n', out);
		if (i + 1 != t->ncols)
			continue;
		for (c = 0; c < t->ncols; c++) {
			if (c)
				fputs("  ", out);
			for (w = 0; w < width[c]; w++)
				fputc('-', out);
		}
		fputc('\n', out);
	}
	rc = 0;
cleanup:
	mem_free(width);
	table_release(t);
	return rc;
}

/* A row of one unit in a table whose first columns are township, branch
 * and name; totals rows say "(all)" for the branch. */
static void table_unit(struct table *t, const struct reportdata_unit *u,
		       int total, const char *twp)
{
	table_cell(t, twp);
	table_cell(t, total ? "(all)" : u->id);
	table_cell(t, u->name);
}

static void text_pivot_row(struct table *t, const struct reportdata_metric *m,
			   const struct reportdata_vals *cols,
			   const struct reportdata_unit *u, int total,
			   const char *twp)
{
	const struct reportdata_vals *vs = &u->m[m - reportdata_metrics];
	char buf[32];
	size_t k;

	table_unit(t, u, total, twp);
	for (k = 0; k < cols->n; k++)
		table_cell(t, format_value(m, reportdata_get(vs,
							     cols->v[k].key),
					   buf));
}

/* One row per unit, one column per key: the district's keys are all the
 * keys any unit has, since its figures come from the same queries. */
static int text_pivot(const struct reportdata *r,
		      const struct reportdata_metric *m, FILE *out,
		      struct err *e)
{
	const struct reportdata_vals *cols = &r->all.m[m - reportdata_metrics];
	struct table t = { .ncols = 3 + cols->n };
	size_t i, j, k;

	if (t.ncols > 8 * sizeof t.right) {
		err_set(e, ERR_INVALID, "too many values of %s to show in a "
			"table; use --format csv", m->title);
		return -1;
	}
	for (k = 0; k < cols->n; k++)
		t.right |= 1u << (3 + k);
	table_cell(&t, "township");
	table_cell(&t, "branch");
	table_cell(&t, "name");
	for (k = 0; k < cols->n; k++)
		table_cell(&t, cols->v[k].key);
	for (i = 0; i < r->ntowns; i++) {
		const struct reportdata_town *tw = &r->towns[i];

		for (j = tw->first; j < tw->first + tw->count; j++)
			text_pivot_row(&t, m, cols, &r->units[j], 0,
				       tw->u.id);
		text_pivot_row(&t, m, cols, &tw->u, 1, tw->u.id);
	}
	text_pivot_row(&t, m, cols, &r->all, 1, "(district)");
	return table_print(&t, out, e);
}

static void text_list_rows(struct table *t, const struct reportdata_metric *m,
			   const struct reportdata_unit *u, int total,
			   const char *twp)
{
	const struct reportdata_vals *vs = &u->m[m - reportdata_metrics];
	char buf[32];
	size_t k;

	for (k = 0; k < vs->n; k++) {
		table_unit(t, u, total, twp);
		table_cell(t, vs->v[k].key);
		table_cell(t, format_value(m, vs->v[k].n, buf));
	}
}

static int text_list(const struct reportdata *r,
		     const struct reportdata_metric *m, FILE *out,
		     struct err *e)
{
	struct table t = { .ncols = 5, .right = 1u << 4 };
	size_t i, j;

	table_cell(&t, "township");
	table_cell(&t, "branch");
	table_cell(&t, "name");
	table_cell(&t, m->key_label);
	table_cell(&t, "count");
	for (i = 0; i < r->ntowns; i++) {
		const struct reportdata_town *tw = &r->towns[i];

		for (j = tw->first; j < tw->first + tw->count; j++)
			text_list_rows(&t, m, &r->units[j], 0, tw->u.id);
		text_list_rows(&t, m, &tw->u, 1, tw->u.id);
	}
	text_list_rows(&t, m, &r->all, 1, "(district)");
	return table_print(&t, out, e);
}

static int text_partners(const struct reportdata *r, FILE *out, struct err *e)
{
	struct table t = { .ncols = 6 };
	size_t i, j;

	fputs("\n== Pairings ==\n", out);
	table_cell(&t, "township");
	table_cell(&t, "branch");
	table_cell(&t, "name");
	table_cell(&t, "partner");
	table_cell(&t, "partner name");
	table_cell(&t, "model");
	for (i = 0; i < r->nunits; i++) {
		const struct reportdata_unit *u = &r->units[i];

		for (j = 0; j < u->npartners; j++) {
			table_unit(&t, u, 0, u->twp);
			table_cell(&t, u->partners[j].id);
			table_cell(&t, u->partners[j].name);
			table_cell(&t, u->partners[j].model);
		}
	}
	return table_print(&t, out, e);
}

static int text_devices(const struct reportdata *r, FILE *out, struct err *e)
{
	struct table t = { .ncols = 9, .right = (1u << 6) | (1u << 7) };
	char num[32], when[CLI_TIME_MAX];
	size_t i;

	fputs("\n== Devices ==\n", out);
	table_cell(&t, "device");
	table_cell(&t, "name");
	table_cell(&t, "role");
	table_cell(&t, "scope");
	table_cell(&t, "state");
	table_cell(&t, "last sync");
	table_cell(&t, "last seq");
	table_cell(&t, "evidence");
	table_cell(&t, "latest reason");
	for (i = 0; i < r->ndevices; i++) {
		const struct reportdata_device *d = &r->devices[i];

		/* 16 hex digits tell devices apart; CSV and JSON have all. */
		snprintf(num, sizeof num, "%.16s", d->hex);
		table_cell(&t, num);
		table_cell(&t, d->name);
		table_cell(&t, device_role(d));
		table_cell(&t, d->scope);
		table_cell(&t, d->revoked ? "revoked" : "active");
		table_cell(&t, device_last_sync(d, when));
		snprintf(num, sizeof num, "%" PRId64, d->last_seq);
		table_cell(&t, num);
		snprintf(num, sizeof num, "%" PRId64, d->pending);
		table_cell(&t, num);
		table_cell(&t, d->reason ? d->reason : "");
	}
	return table_print(&t, out, e);
}

static int all_zero(const struct reportdata_vals *vs)
{
	size_t i;

	for (i = 0; i < vs->n; i++)
		if (vs->v[i].n)
			return 0;
	return 1;
}

static int write_text(const struct reportdata *r, uint64_t now_ms, FILE *out,
		      struct err *e)
{
	char when[CLI_TIME_MAX];
	size_t i, unknown = r->nunits - known_branches(r);
	int rc = 0;

	cli_time_ms((int64_t)now_ms, when);
	fputs("District report", out);
	if (r->district) {
		fputs(": ", out);
		cli_text_field(out, r->district, strlen(r->district));
	}
	fprintf(out, "\nGenerated %s\n", when);
	fprintf(out, "Branches: %zu   Townships: %zu   Devices: %zu\n",
		known_branches(r), named_towns(r), r->ndevices);
	if (unknown)
		fprintf(out, "Records under unregistered branch ids: %zu\n",
			unknown);
	for (i = 0; i < REPORTDATA_METRICS && rc == 0; i++) {
		const struct reportdata_metric *m = &reportdata_metrics[i];

		if ((m->flags & REPORTDATA_QUIET) && all_zero(&r->all.m[i]))
			continue;
		fprintf(out, "\n== %s ==\n", m->title);
		rc = m->keys ? text_pivot(r, m, out, e)
			     : text_list(r, m, out, e);
	}
	if (rc == 0)
		rc = text_partners(r, out, e);
	if (rc == 0)
		rc = text_devices(r, out, e);
	return rc;
}

/* ---- CSV ---- */

static void csv_row(FILE *out, const char *const f[7])
{
	size_t i;

	for (i = 0; i < 7; i++) {
		if (i)
			fputc(',', out);
		cli_csv_field(out, f[i], strlen(f[i]));
	}
	fputs("\r\n", out);
}

static void csv_unit(FILE *out, const struct reportdata_unit *u,
		     const char *twp, const char *bid, const char *bname)
{
	const char *f[7] = { NULL, twp, bid, bname, NULL, NULL, NULL };
	char buf[32];
	size_t i, k;

	for (i = 0; i < REPORTDATA_METRICS; i++) {
		f[0] = reportdata_metrics[i].section;
		f[4] = reportdata_metrics[i].name;
		for (k = 0; k < u->m[i].n; k++) {
			f[5] = u->m[i].v[k].key;
			f[6] = format_value(&reportdata_metrics[i],
					    u->m[i].v[k].n, buf);
			csv_row(out, f);
		}
	}
	f[0] = "pairings";
	f[4] = "partner";
	for (k = 0; k < u->npartners; k++) {
		f[5] = u->partners[k].id;
		f[6] = u->partners[k].model;
		csv_row(out, f);
	}
}

static void csv_device(FILE *out, const struct reportdata_device *d)
{
	char num[2][32], when[CLI_TIME_MAX];
	const char *fields[][2] = {
		{ "name", d->name },
		{ "role", device_role(d) },
		{ "state", d->revoked ? "revoked" : "active" },
		{ "last_sync", device_last_sync(d, when) },
		{ "last_seq", num[0] },
		{ "pending_evidence", num[1] },
		{ "latest_reason", d->reason ? d->reason : "" },
	};
	const char *f[7] = { "devices", "", d->scope, "", NULL, d->hex, NULL };
	size_t i;

	snprintf(num[0], sizeof num[0], "%" PRId64, d->last_seq);
	snprintf(num[1], sizeof num[1], "%" PRId64, d->pending);
	for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		f[4] = fields[i][0];
		f[6] = fields[i][1];
		csv_row(out, f);
	}
}

static void write_csv(const struct reportdata *r, uint64_t now_ms, FILE *out)
{
	static const char *const header[7] = {
		"section", "township", "branch_id", "branch_name", "metric",
		"key", "value",
	};
	char when[CLI_TIME_MAX], num[3][32];
	const char *about[][2] = {
		{ "generated_at", when },
		{ "district", r->district ? r->district : "" },
		{ "branches", num[0] },
		{ "townships", num[1] },
		{ "devices", num[2] },
	};
	const char *f[7] = { "report", "", "", "", NULL, "", NULL };
	size_t i, j;

	cli_time_ms((int64_t)now_ms, when);
	snprintf(num[0], sizeof num[0], "%zu", known_branches(r));
	snprintf(num[1], sizeof num[1], "%zu", named_towns(r));
	snprintf(num[2], sizeof num[2], "%zu", r->ndevices);
	csv_row(out, header);
	for (i = 0; i < sizeof about / sizeof about[0]; i++) {
		f[4] = about[i][0];
		f[6] = about[i][1];
		csv_row(out, f);
	}
	csv_unit(out, &r->all, "", "", "");
	for (i = 0; i < r->ntowns; i++) {
		const struct reportdata_town *tw = &r->towns[i];

		csv_unit(out, &tw->u, tw->u.id, "", "");
		for (j = tw->first; j < tw->first + tw->count; j++)
			csv_unit(out, &r->units[j], tw->u.id, r->units[j].id,
				 r->units[j].name);
	}
	for (i = 0; i < r->ndevices; i++)
		csv_device(out, &r->devices[i]);
}

/* ---- JSON ---- */

static void json_str(FILE *out, const char *s)
{
	cli_json_string(out, s, strlen(s));
}

/* Writes `"key": ` after a comma and newline at `indent`. */
static void json_key(FILE *out, const char *indent, const char *key)
{
	fprintf(out, ",\n%s", indent);
	json_str(out, key);
	fputs(": ", out);
}

/* The figures of u as members of the open object: one section a line. */
static void json_sections(FILE *out, const struct reportdata_unit *u,
			  const char *indent)
{
	char buf[32];
	size_t i, k;

	for (i = 0; i < REPORTDATA_METRICS; i++) {
		const struct reportdata_metric *m = &reportdata_metrics[i];

		if (i == 0 ||
		    strcmp(m->section, reportdata_metrics[i - 1].section)) {
			if (i)
				fputc('}', out);
			json_key(out, indent, m->section);
			fputc('{', out);
		} else {
			fputs(", ", out);
		}
		json_str(out, m->name);
		fputs(": {", out);
		for (k = 0; k < u->m[i].n; k++) {
			if (k)
				fputs(", ", out);
			json_str(out, u->m[i].v[k].key);
			fputs(": ", out);
			format_value(m, u->m[i].v[k].n, buf);
			if (m->flags & REPORTDATA_MONEY)
				json_str(out, buf);
			else
				fputs(buf, out);
		}
		fputc('}', out);
	}
	fputc('}', out);
}

static void json_branch(FILE *out, const struct reportdata_unit *u)
{
	size_t k;

	fputs("        {\n          \"id\": ", out);
	json_str(out, u->id);
	json_key(out, "          ", "name");
	json_str(out, u->name);
	json_key(out, "          ", "known");
	fputs(u->known ? "true" : "false", out);
	json_sections(out, u, "          ");
	json_key(out, "          ", "partners");
	fputc('[', out);
	for (k = 0; k < u->npartners; k++) {
		fputs(k ? ", {\"id\": " : "{\"id\": ", out);
		json_str(out, u->partners[k].id);
		fputs(", \"name\": ", out);
		json_str(out, u->partners[k].name);
		fputs(", \"model\": ", out);
		json_str(out, u->partners[k].model);
		fputc('}', out);
	}
	fputs("]\n        }", out);
}

static void json_town(FILE *out, const struct reportdata *r,
		      const struct reportdata_town *tw)
{
	size_t j;

	fputs("    {\n      \"id\": ", out);
	json_str(out, tw->u.id);
	json_key(out, "      ", "name");
	json_str(out, tw->u.name);
	json_sections(out, &tw->u, "      ");
	json_key(out, "      ", "branches");
	fputs("[\n", out);
	for (j = tw->first; j < tw->first + tw->count; j++) {
		json_branch(out, &r->units[j]);
		fputs(j + 1 < tw->first + tw->count ? ",\n" : "\n", out);
	}
	fputs("      ]\n    }", out);
}

static void json_device(FILE *out, const struct reportdata_device *d)
{
	char when[CLI_TIME_MAX];

	fputs("    {\"device\": ", out);
	json_str(out, d->hex);
	fputs(", \"name\": ", out);
	json_str(out, d->name);
	fputs(", \"role\": ", out);
	json_str(out, device_role(d));
	fputs(", \"scope\": ", out);
	json_str(out, d->scope);
	fputs(", \"state\": ", out);
	json_str(out, d->revoked ? "revoked" : "active");
	fputs(", \"last_sync\": ", out);
	json_str(out, device_last_sync(d, when));
	fprintf(out, ", \"last_seq\": %" PRId64 ", \"pending_evidence\": %"
		PRId64 ", \"latest_reason\": ", d->last_seq, d->pending);
	if (d->reason)
		json_str(out, d->reason);
	else
		fputs("null", out);
	fputc('}', out);
}

static void write_json(const struct reportdata *r, uint64_t now_ms, FILE *out)
{
	char when[CLI_TIME_MAX];
	size_t i;

	cli_time_ms((int64_t)now_ms, when);
	fputs("{\n  \"generated_at\": ", out);
	json_str(out, when);
	fputs(",\n  \"district\": {\n    \"name\": ", out);
	if (r->district)
		json_str(out, r->district);
	else
		fputs("null", out);
	fprintf(out, ",\n    \"branches\": %zu,\n    \"townships\": %zu,\n"
		"    \"devices\": %zu", known_branches(r), named_towns(r),
		r->ndevices);
	json_sections(out, &r->all, "    ");
	fputs("\n  },\n  \"townships\": [", out);
	for (i = 0; i < r->ntowns; i++) {
		fputs(i ? ",\n" : "\n", out);
		json_town(out, r, &r->towns[i]);
	}
	fputs(r->ntowns ? "\n  ],\n  \"devices\": [" : "],\n  \"devices\": [",
	      out);
	for (i = 0; i < r->ndevices; i++) {
		fputs(i ? ",\n" : "\n", out);
		json_device(out, &r->devices[i]);
	}
	fputs(r->ndevices ? "\n  ]\n}\n" : "]\n}\n", out);
}

/* ---- entry points ---- */

int report_format_parse(const char *name, enum report_format *out)
{
	if (!name)
		return -1;
	if (strcmp(name, "text") == 0)
		*out = REPORT_TEXT;
	else if (strcmp(name, "csv") == 0)
		*out = REPORT_CSV;
	else if (strcmp(name, "json") == 0)
		*out = REPORT_JSON;
	else
		return -1;
	return 0;
}

int report_write(sqlite3 *db, enum report_format fmt, uint64_t now_ms,
		 FILE *out, struct err *e)
{
	struct reportdata r;
	int rc = -1;

	memset(&r, 0, sizeof r);
	if (reportdata_load(db, &r, e))
		goto cleanup;
	switch (fmt) {
	case REPORT_TEXT:
		if (write_text(&r, now_ms, out, e))
			goto cleanup;
		break;
	case REPORT_CSV:
		write_csv(&r, now_ms, out);
		break;
	case REPORT_JSON:
		write_json(&r, now_ms, out);
		break;
	default:
		err_set(e, ERR_USAGE, "unknown report format");
		goto cleanup;
	}
	if (fflush(out) != 0 || ferror(out)) {
		err_set(e, ERR_INVALID, "cannot write the report: %s",
			strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	reportdata_clear(&r);
	return rc;
}
