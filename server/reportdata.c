/* reportdata.c - the district's figures read from the consolidated records
 * (server/reportdata.h): SQL aggregates per branch, township and district,
 * all inside one read transaction. Not for writing them out (report.c),
 * and never writes to the database. */
#include "reportdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logentry.h"
#include "mem.h"
#include "utf8.h"

#define NONE "(none)"                  /* no township; a missing value */
#define NO_TOWNSHIP_NAME "(no township)"
#define UNKNOWN_BRANCH "(unknown branch)"
#define DISTRICT_WIDE "(district-wide)"
#define OTHER_CITIES "(other cities)"
#define TOP_BRANCH 5                   /* cities listed per branch */
#define TOP_WIDE 10                    /* per township and district */
#define SQL_MAX 4096

enum level { LEVEL_BRANCH, LEVEL_TOWNSHIP, LEVEL_DISTRICT };

enum metric_id {
	M_MEMBERS_STATUS,
	M_MEMBERS_CITY,
	M_NEEDS_CATEGORY,
	M_NEEDS_STATUS,
	M_ACT_TOTALS,
	M_ACT_MONTH,
	M_TRAIN_TOTALS,
	M_POS_KIND,
	M_POS_STATUS,
	M_POS_TOTALS,
	M_HELP_STATUS,
	M_HELP_AMOUNT,
	M_HELP_TOTALS,
	M_PAIR_MODEL,
	M_AWARD_LEVEL,
	M_COUNT
};

_Static_assert(M_COUNT == REPORTDATA_METRICS, "the metric table and its size");

static const char *const member_statuses[] = {
	"active", "away", "transferred", "left", NULL,
};
static const char *const need_categories[] = {
	"job", "training", "business", "hardship", "culture", "other", NULL,
};
static const char *const need_statuses[] = {
	"open", "in_progress", "met", "closed", NULL,
};
static const char *const activity_totals[] = { "dated", "undated", NULL };
static const char *const training_totals[] = { "count", "attendees", NULL };
static const char *const position_kinds[] = { "internship", "job", NULL };
static const char *const position_statuses[] = {
	"open", "filled", "closed", NULL,
};
static const char *const position_totals[] = { "open_openings", NULL };
static const char *const case_statuses[] = {
	"open", "in_progress", "closed", NULL,
};
static const char *const case_totals[] = { "unreadable_amounts", NULL };

const struct reportdata_metric reportdata_metrics[REPORTDATA_METRICS] = {
	[M_MEMBERS_STATUS] = { "members", "by_status", "Members by status",
			       member_statuses, NULL, REPORTDATA_TOTAL },
	[M_MEMBERS_CITY] = { "members", "away_by_city",
			     "Members away, by city (top 5 per branch, 10 per "
			     "township and district)", NULL, "city",
			     REPORTDATA_TOP },
	[M_NEEDS_CATEGORY] = { "needs", "by_category", "Needs by category",
			       need_categories, NULL, REPORTDATA_TOTAL },
	[M_NEEDS_STATUS] = { "needs", "by_status", "Needs by status",
			     need_statuses, NULL, REPORTDATA_TOTAL },
	[M_ACT_TOTALS] = { "activities", "totals", "Activities",
			   activity_totals, NULL, REPORTDATA_TOTAL },
	[M_ACT_MONTH] = { "activities", "by_month", "Activities per month",
			  NULL, "month", 0 },
	[M_TRAIN_TOTALS] = { "trainings", "totals", "Trainings",
			     training_totals, NULL, 0 },
	[M_POS_KIND] = { "positions", "by_kind", "Positions by kind",
			 position_kinds, NULL, REPORTDATA_TOTAL },
	[M_POS_STATUS] = { "positions", "by_status", "Positions by status",
			   position_statuses, NULL, REPORTDATA_TOTAL },
	[M_POS_TOTALS] = { "positions", "totals",
			   "Openings of open positions", position_totals, NULL,
			   0 },
	[M_HELP_STATUS] = { "help_cases", "by_status", "Help cases by status",
			    case_statuses, NULL, REPORTDATA_TOTAL },
	[M_HELP_AMOUNT] = { "help_cases", "amount_by_status",
			    "Help case amounts by status", case_statuses, NULL,
			    REPORTDATA_TOTAL | REPORTDATA_MONEY },
	[M_HELP_TOTALS] = { "help_cases", "totals",
			    "Help cases whose amount is unreadable",
			    case_totals, NULL, REPORTDATA_QUIET },
	[M_PAIR_MODEL] = { "pairings", "by_model", "Pairings by model", NULL,
			   "model", 0 },
	[M_AWARD_LEVEL] = { "awards", "by_level", "Awards by level", NULL,
			    "level", 0 },
};

/* One aggregate: rows (group, key, value) for `metric`, over records `t`
 * of table `from` matching `where`. Several queries may fill one metric. */
struct query {
	enum metric_id metric;
	const char *key;
	const char *value;
	const char *from;
	const char *where;
	const char *order;   /* after "ORDER BY group, " */
};

#define DATED "t.held_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-*'"
/* The canonical money text of shared/schema.c: digits, '.', two digits.
 * Its cents are the digits without the point, so no floating point. */
#define MONEY_OK "(t.amount GLOB '[0-9]*.[0-9][0-9]' AND" \
	" length(t.amount) <= 16 AND" \
	" substr(t.amount, 1, length(t.amount) - 3) NOT GLOB '*[^0-9]*')"
#define OR_NONE(col) "coalesce(" col ", '" NONE "')"

static const struct query queries[] = {
	{ M_MEMBERS_STATUS, OR_NONE("t.status"), "count(*)", "members", "1",
	  "2" },
	{ M_MEMBERS_CITY, OR_NONE("t.away_city"), "count(*)", "members",
	  "t.status = 'away'", "3 DESC, 2" },
	{ M_NEEDS_CATEGORY, OR_NONE("t.category"), "count(*)", "needs", "1",
	  "2" },
	{ M_NEEDS_STATUS, OR_NONE("t.status"), "count(*)", "needs", "1", "2" },
	{ M_ACT_TOTALS, "CASE WHEN " DATED " THEN 'dated' ELSE 'undated' END",
	  "count(*)", "activities", "1", "2" },
	{ M_ACT_MONTH, "substr(t.held_on, 1, 7)", "count(*)", "activities",
	  DATED, "2" },
	{ M_TRAIN_TOTALS, "'count'", "count(*)", "trainings", "1", "2" },
	{ M_TRAIN_TOTALS, "'attendees'", "coalesce(sum(t.attendees), 0)",
	  "trainings", "1", "2" },
	{ M_POS_KIND, OR_NONE("t.kind"), "count(*)", "positions", "1", "2" },
	{ M_POS_STATUS, OR_NONE("t.status"), "count(*)", "positions", "1",
	  "2" },
	{ M_POS_TOTALS, "'open_openings'", "coalesce(sum(t.openings), 0)",
	  "positions", "t.status = 'open'", "2" },
	{ M_HELP_STATUS, OR_NONE("t.status"), "count(*)", "help_cases", "1",
	  "2" },
	{ M_HELP_AMOUNT, OR_NONE("t.status"),
	  "coalesce(sum(CASE WHEN " MONEY_OK " THEN CAST(replace(t.amount, '.',"
	  " '') AS INTEGER) END), 0)", "help_cases", "1", "2" },
	{ M_HELP_TOTALS, "'unreadable_amounts'", "count(*)", "help_cases",
	  "t.amount IS NOT NULL AND NOT " MONEY_OK, "2" },
	{ M_PAIR_MODEL, OR_NONE("t.model"), "count(*)", "pairings", "1", "2" },
	{ M_AWARD_LEVEL, OR_NONE("t.level"), "count(*)", "awards", "1", "2" },
};

/* Each registered branch (branch_id = id) and its township, per the rule
 * of docs/REPORT.md; twp is NULL for a branch in no township. */
#define TW_CTE \
	"WITH tw(bid, name, twp) AS (SELECT b.id, b.name," \
	" CASE WHEN p.kind = 'township' THEN p.id" \
	" WHEN b.kind = 'township' THEN b.id END" \
	" FROM branches AS b LEFT JOIN branches AS p" \
	" ON p.id = b.parent_id AND p.branch_id = p.id" \
	" WHERE b.branch_id = b.id)"

/* Formats whose %s receive only the fixed fragments of queries[]: no value
 * from the records or the user is ever part of the SQL text. */
static const char *const level_sql[] = {
	[LEVEL_BRANCH] = "SELECT t.branch_id, %s, %s FROM %s AS t WHERE %s"
			 " GROUP BY 1, 2 ORDER BY 1, %s",
	[LEVEL_TOWNSHIP] = TW_CTE " SELECT " OR_NONE("u.twp") ", %s, %s"
			   " FROM %s AS t LEFT JOIN tw AS u"
			   " ON u.bid = t.branch_id WHERE %s"
			   " GROUP BY 1, 2 ORDER BY 1, %s",
	[LEVEL_DISTRICT] = "SELECT '', %s, %s FROM %s AS t WHERE %s"
			   " GROUP BY 1, 2 ORDER BY 1, %s",
};

/* Every scope the records use: the registered branches, then the branch
 * ids that have records but no branches row (every table reported on). */
static const char units_sql[] =
	TW_CTE ", used(bid) AS (SELECT branch_id FROM members"
	" UNION SELECT branch_id FROM needs"
	" UNION SELECT branch_id FROM activities"
	" UNION SELECT branch_id FROM trainings"
	" UNION SELECT branch_id FROM positions"
	" UNION SELECT branch_id FROM help_cases"
	" UNION SELECT branch_id FROM pairings"
	" UNION SELECT branch_id FROM awards)"
	" SELECT bid, name, " OR_NONE("twp") ", 1 FROM tw"
	" UNION ALL SELECT bid, NULL, '" NONE "', 0 FROM used"
	" WHERE bid NOT IN (SELECT bid FROM tw)";

static const char partners_sql[] =
	"SELECT t.branch_id, t.partner_id, p.name, t.model FROM pairings AS t"
	" LEFT JOIN branches AS p ON p.id = t.partner_id AND p.branch_id = p.id"
	" ORDER BY 1, 2, 4, t.id";

static const char devices_sql[] =
	"SELECT d.key, d.name, d.role, d.scope, d.revoke_idx, d.last_seen_ms,"
	" d.last_seq,"
	" (SELECT count(*) FROM srv_log AS l WHERE l.author = d.key"
	" AND l.verdict = ?1),"
	" (SELECT l.entry FROM srv_log AS l WHERE l.author = d.key"
	" AND l.verdict = ?1 ORDER BY l.idx DESC LIMIT 1)"
	" FROM srv_devices AS d ORDER BY d.enroll_idx, d.key";

/* ---- memory ---- */

/* Returns p grown to hold n + 1 elements (*cap updated), or NULL. */
static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *q;

	if (n < *cap)
		return p;
	ncap = *cap ? *cap * 2 : 8;
	if (ncap > SIZE_MAX / size)
		return NULL;
	q = mem_realloc(p, ncap * size);
	if (q)
		*cap = ncap;
	return q;
}

static void unit_clear(struct reportdata_unit *u)
{
	size_t i, j;

	for (i = 0; i < M_COUNT; i++) {
		for (j = 0; j < u->m[i].n; j++)
			mem_free(u->m[i].v[j].key);
		mem_free(u->m[i].v);
	}
	for (i = 0; i < u->npartners; i++) {
		mem_free(u->partners[i].id);
		mem_free(u->partners[i].name);
		mem_free(u->partners[i].model);
	}
	mem_free(u->partners);
	mem_free(u->id);
	mem_free(u->name);
	mem_free(u->twp);
	memset(u, 0, sizeof *u);
}

void reportdata_clear(struct reportdata *r)
{
	size_t i;

	for (i = 0; i < r->nunits; i++)
		unit_clear(&r->units[i]);
	for (i = 0; i < r->ntowns; i++)
		unit_clear(&r->towns[i].u);
	for (i = 0; i < r->ndevices; i++) {
		mem_free(r->devices[i].name);
		mem_free(r->devices[i].scope);
		mem_free(r->devices[i].reason);
	}
	unit_clear(&r->all);
	mem_free(r->units);
	mem_free(r->by_id);
	mem_free(r->towns);
	mem_free(r->devices);
	mem_free(r->district);
	memset(r, 0, sizeof *r);
}

static int fail_oom(struct err *e)
{
	err_set(e, ERR_INVALID, "out of memory while making the report");
	return -1;
}

static int fail_db(sqlite3 *db, const char *what, struct err *e)
{
	err_set(e, ERR_INVALID, "cannot read %s for the report: %s", what,
		sqlite3_errmsg(db));
	return -1;
}

static int fail_status(enum bs_status st, struct err *e)
{
	if (st == BS_ENOMEM)
		return fail_oom(e);
	err_set(e, ERR_INVALID, "a total in the report is too large to count");
	return -1;
}

/* A copy of len bytes of s with each invalid UTF-8 byte replaced by
 * U+FFFD, so that every format writes the same valid text; NULL only when
 * out of memory. */
static char *text_dup(const char *s, size_t len)
{
	static const char fffd[] = "\xef\xbf\xbd";
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, n = 0, good;
	char *out;

	if (utf8_valid(p, len))
		return mem_strndup(s, len);
	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	out = mem_alloc(len * 3 + 1);
	if (!out)
		return NULL;
	while (i < len) {
		good = utf8_valid_prefix(p + i, len - i);
		memcpy(out + n, s + i, good);
		n += good;
		i += good;
		if (i < len) {
			memcpy(out + n, fffd, 3);
			n += 3;
			i++;
		}
	}
	out[n] = '\0';
	return out;
}

/* A copy of column i as text_dup makes it, or of dflt when it is NULL. */
static char *column_dup(sqlite3_stmt *st, int i, const char *dflt)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	if (!s)
		return mem_strdup(dflt);
	return text_dup(s, (size_t)sqlite3_column_bytes(st, i));
}

/* ---- figures ---- */

static struct reportdata_item *vals_find(const struct reportdata_vals *vs,
					 const char *key)
{
	size_t i;

	for (i = 0; i < vs->n; i++)
		if (strcmp(vs->v[i].key, key) == 0)
			return &vs->v[i];
	return NULL;
}

/* Adds n to key, appending it when new. BS_ENOMEM, or BS_ELIMIT when the
 * sum does not fit. */
static enum bs_status vals_add(struct reportdata_vals *vs, const char *key,
			       int64_t n)
{
	struct reportdata_item *it = vals_find(vs, key), *v;
	char *k;

	if (it)
		return __builtin_add_overflow(it->n, n, &it->n) ? BS_ELIMIT
								 : BS_OK;
	v = grow(vs->v, &vs->cap, vs->n, sizeof *v);
	if (!v)
		return BS_ENOMEM;
	vs->v = v;
	k = mem_strdup(key);
	if (!k)
		return BS_ENOMEM;
	vs->v[vs->n].key = k;
	vs->v[vs->n].n = n;
	vs->n++;
	return BS_OK;
}

int64_t reportdata_get(const struct reportdata_vals *vs, const char *key)
{
	const struct reportdata_item *it = vals_find(vs, key);

	return it ? it->n : 0;
}

/* Gives every fixed key its zero, so that a figure no record has shows. */
static enum bs_status unit_prefill(struct reportdata_unit *u)
{
	const char *const *k;
	enum bs_status st = BS_OK;
	size_t i;

	for (i = 0; i < M_COUNT && st == BS_OK; i++)
		for (k = reportdata_metrics[i].keys; k && *k && st == BS_OK;
		     k++)
			st = vals_add(&u->m[i], *k, 0);
	return st;
}

static enum bs_status unit_totals(struct reportdata_unit *u)
{
	enum bs_status st = BS_OK;
	int64_t sum;
	size_t i, j;

	for (i = 0; i < M_COUNT && st == BS_OK; i++) {
		if (!(reportdata_metrics[i].flags & REPORTDATA_TOTAL))
			continue;
		sum = 0;
		for (j = 0; j < u->m[i].n; j++)
			if (__builtin_add_overflow(sum, u->m[i].v[j].n, &sum))
				return BS_ELIMIT;
		st = vals_add(&u->m[i], "total", sum);
	}
	return st;
}

/* NONE sorts after every township id, so "no township" comes last. */
static int twp_cmp(const char *a, const char *b)
{
	int an = strcmp(a, NONE) == 0, bn = strcmp(b, NONE) == 0;

	if (an || bn)
		return an - bn;
	return strcmp(a, b);
}

static int unit_order(const void *pa, const void *pb)
{
	const struct reportdata_unit *a = pa, *b = pb;
	int c = twp_cmp(a->twp, b->twp);

	return c ? c : strcmp(a->id, b->id);
}

static int unit_ptr_by_id(const void *pa, const void *pb)
{
	const struct reportdata_unit *const *a = pa, *const *b = pb;

	return strcmp((*a)->id, (*b)->id);
}

static int key_vs_unit_ptr(const void *key, const void *p)
{
	const struct reportdata_unit *const *u = p;

	return strcmp(key, (*u)->id);
}

static int key_vs_town(const void *key, const void *p)
{
	const struct reportdata_town *t = p;

	return twp_cmp(key, t->u.id);
}

static struct reportdata_unit *find_unit(struct reportdata *r,
					 enum level level, const char *g)
{
	struct reportdata_unit **u;
	struct reportdata_town *t;

	switch (level) {
	case LEVEL_BRANCH:
		u = r->nunits ? bsearch(g, r->by_id, r->nunits, sizeof *u,
					key_vs_unit_ptr) : NULL;
		return u ? *u : NULL;
	case LEVEL_TOWNSHIP:
		t = r->ntowns ? bsearch(g, r->towns, r->ntowns, sizeof *t,
					key_vs_town) : NULL;
		return t ? &t->u : NULL;
	case LEVEL_DISTRICT:
		return &r->all;
	}
	return NULL;
}

static int load_district(sqlite3 *db, struct reportdata *r, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	if (sqlite3_prepare_v2(db, "SELECT value FROM bs_settings"
			       " WHERE key = ?1", -1, &st, NULL) != SQLITE_OK) {
		fail_db(db, "the district's name", e);
		goto cleanup;
	}
	sqlite3_bind_text(st, 1, "district", -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		r->district = column_dup(st, 0, "");
		if (!r->district) {
			fail_oom(e);
			goto cleanup;
		}
	} else if (step != SQLITE_ROW && step != SQLITE_DONE) {
		fail_db(db, "the district's name", e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static int add_unit(struct reportdata *r, sqlite3_stmt *st, struct err *e)
{
	struct reportdata_unit *units = grow(r->units, &r->cap, r->nunits,
					     sizeof *units);
	struct reportdata_unit *u;
	const char *dflt;

	if (!units)
		return fail_oom(e);
	r->units = units;
	u = &units[r->nunits++];
	memset(u, 0, sizeof *u);
	u->known = sqlite3_column_int(st, 3);
	u->id = column_dup(st, 0, "");
	if (!u->id)
		return fail_oom(e);
	if (u->known)
		dflt = "";
	else if (strcmp(u->id, "district") == 0)
		dflt = DISTRICT_WIDE;
	else
		dflt = UNKNOWN_BRANCH;
	u->name = column_dup(st, 1, dflt);
	u->twp = column_dup(st, 2, NONE);
	if (!u->name || !u->twp)
		return fail_oom(e);
	return 0;
}

/* Groups the ordered units into townships. */
static int make_towns(struct reportdata *r, struct err *e)
{
	struct reportdata_unit **found;
	struct reportdata_town *t;
	size_t i;

	if (r->nunits == 0)
		return 0;
	r->towns = mem_calloc(r->nunits, sizeof *r->towns);
	if (!r->towns)
		return fail_oom(e);
	for (i = 0; i < r->nunits; i++) {
		const char *twp = r->units[i].twp;

		t = r->ntowns ? &r->towns[r->ntowns - 1] : NULL;
		if (t && strcmp(t->u.id, twp) == 0) {
			t->count++;
			continue;
		}
		t = &r->towns[r->ntowns++];
		t->first = i;
		t->count = 1;
		found = bsearch(twp, r->by_id, r->nunits, sizeof *found,
				key_vs_unit_ptr);
		t->u.known = strcmp(twp, NONE) != 0;
		t->u.id = mem_strdup(twp);
		t->u.twp = mem_strdup(twp);
		t->u.name = mem_strdup(!t->u.known ? NO_TOWNSHIP_NAME
				       : found ? (*found)->name : "");
		if (!t->u.id || !t->u.twp || !t->u.name)
			return fail_oom(e);
	}
	return 0;
}

static int load_units(sqlite3 *db, struct reportdata *r, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;
	size_t i;

	if (sqlite3_prepare_v2(db, units_sql, -1, &st, NULL) != SQLITE_OK) {
		fail_db(db, "the branches", e);
		goto cleanup;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		if (add_unit(r, st, e))
			goto cleanup;
	if (step != SQLITE_DONE) {
		fail_db(db, "the branches", e);
		goto cleanup;
	}
	if (r->nunits) {
		qsort(r->units, r->nunits, sizeof *r->units, unit_order);
		r->by_id = mem_calloc(r->nunits, sizeof *r->by_id);
		if (!r->by_id) {
			fail_oom(e);
			goto cleanup;
		}
		for (i = 0; i < r->nunits; i++)
			r->by_id[i] = &r->units[i];
		qsort(r->by_id, r->nunits, sizeof *r->by_id, unit_ptr_by_id);
	}
	rc = make_towns(r, e);
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static int run_query(sqlite3 *db, struct reportdata *r, const struct query *q,
		     enum level level, struct err *e)
{
	const struct reportdata_metric *m = &reportdata_metrics[q->metric];
	size_t limit = level == LEVEL_BRANCH ? TOP_BRANCH : TOP_WIDE;
	sqlite3_stmt *st = NULL;
	char sql[SQL_MAX];
	enum bs_status bs;
	int rc = -1, step, n;

	n = snprintf(sql, sizeof sql, level_sql[level], q->key, q->value,
		     q->from, q->where, q->order);
	if (n < 0 || (size_t)n >= sizeof sql) {
		err_set(e, ERR_INVALID, "report query for %s too long",
			m->title);
		goto cleanup;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fail_db(db, q->from, e);
		goto cleanup;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *g = (const char *)sqlite3_column_text(st, 0);
		const char *k = (const char *)sqlite3_column_text(st, 1);
		struct reportdata_unit *u = find_unit(r, level, g ? g : "");
		struct reportdata_vals *vs;

		if (!u) {
			err_set(e, ERR_INVALID, "the records changed while "
				"the report read them; run it again");
			goto cleanup;
		}
		vs = &u->m[q->metric];
		k = k ? k : NONE;
		if ((m->flags & REPORTDATA_TOP) && vs->n >= limit &&
		    !vals_find(vs, k))
			k = OTHER_CITIES;
		bs = vals_add(vs, k, sqlite3_column_int64(st, 2));
		if (bs) {
			fail_status(bs, e);
			goto cleanup;
		}
	}
	if (step != SQLITE_DONE) {
		fail_db(db, q->from, e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static int add_partner(struct reportdata *r, sqlite3_stmt *st, struct err *e)
{
	const char *g = (const char *)sqlite3_column_text(st, 0);
	struct reportdata_unit *u = find_unit(r, LEVEL_BRANCH, g ? g : "");
	struct reportdata_partner *p;

	if (!u) {
		err_set(e, ERR_INVALID, "the records changed while the report "
			"read them; run it again");
		return -1;
	}
	p = grow(u->partners, &u->cap, u->npartners, sizeof *p);
	if (!p)
		return fail_oom(e);
	u->partners = p;
	p = &p[u->npartners++];
	p->id = column_dup(st, 1, "");
	p->name = column_dup(st, 2, UNKNOWN_BRANCH);
	p->model = column_dup(st, 3, "");
	if (!p->id || !p->name || !p->model)
		return fail_oom(e);
	return 0;
}

static int load_partners(sqlite3 *db, struct reportdata *r, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	if (sqlite3_prepare_v2(db, partners_sql, -1, &st, NULL) != SQLITE_OK) {
		fail_db(db, "the pairings", e);
		goto cleanup;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		if (add_partner(r, st, e))
			goto cleanup;
	if (step != SQLITE_DONE) {
		fail_db(db, "the pairings", e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

/* The reason inside the latest refused entry (column 8). */
static char *device_reason(sqlite3_stmt *st)
{
	const uint8_t *p = sqlite3_column_blob(st, 8);
	size_t len = (size_t)sqlite3_column_bytes(st, 8);
	struct logentry le;

	if (!p)
		return mem_strdup("");
	if (logentry_decode(p, len, &le) != BS_OK)
		return mem_strdup("(unreadable log entry)");
	return text_dup(le.reason, le.reason_len);
}

static int add_device(struct reportdata *r, sqlite3_stmt *st, struct err *e)
{
	struct reportdata_device *d = grow(r->devices, &r->dcap, r->ndevices,
					   sizeof *d);
	const uint8_t *key = sqlite3_column_blob(st, 0);
	size_t klen = (size_t)sqlite3_column_bytes(st, 0), i;

	if (!d)
		return fail_oom(e);
	r->devices = d;
	d = &d[r->ndevices++];
	memset(d, 0, sizeof *d);
	for (i = 0; key && i < klen && i < 32; i++)
		snprintf(d->hex + 2 * i, 3, "%02x", key[i]);
	d->name = column_dup(st, 1, "");
	d->role = sqlite3_column_int(st, 2);
	d->scope = column_dup(st, 3, "");
	d->revoked = sqlite3_column_int64(st, 4) >= 0;
	d->last_seen_ms = sqlite3_column_int64(st, 5);
	d->last_seq = sqlite3_column_int64(st, 6);
	d->pending = sqlite3_column_int64(st, 7);
	if (!d->name || !d->scope)
		return fail_oom(e);
	if (d->pending > 0 && !(d->reason = device_reason(st)))
		return fail_oom(e);
	return 0;
}

static int load_devices(sqlite3 *db, struct reportdata *r, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	if (sqlite3_prepare_v2(db, devices_sql, -1, &st, NULL) != SQLITE_OK) {
		fail_db(db, "the devices", e);
		goto cleanup;
	}
	sqlite3_bind_int(st, 1, LOGENTRY_REFUSED);
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		if (add_device(r, st, e))
			goto cleanup;
	if (step != SQLITE_DONE) {
		fail_db(db, "the devices", e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

/* Applies f to every unit: branches, townships, district. */
static enum bs_status each_unit(struct reportdata *r,
				enum bs_status (*f)(struct reportdata_unit *))
{
	enum bs_status st = f(&r->all);
	size_t i;

	for (i = 0; i < r->nunits && st == BS_OK; i++)
		st = f(&r->units[i]);
	for (i = 0; i < r->ntowns && st == BS_OK; i++)
		st = f(&r->towns[i].u);
	return st;
}

static int load_figures(sqlite3 *db, struct reportdata *r, struct err *e)
{
	enum bs_status st;
	size_t i;
	int level;

	if (load_district(db, r, e) || load_units(db, r, e))
		return -1;
	r->all.id = mem_strdup("");
	r->all.twp = mem_strdup("");
	r->all.name = mem_strdup(r->district ? r->district : "");
	if (!r->all.id || !r->all.twp || !r->all.name)
		return fail_oom(e);
	if ((st = each_unit(r, unit_prefill)))
		return fail_status(st, e);
	for (level = LEVEL_BRANCH; level <= LEVEL_DISTRICT; level++)
		for (i = 0; i < sizeof queries / sizeof queries[0]; i++)
			if (run_query(db, r, &queries[i], (enum level)level, e))
				return -1;
	if ((st = each_unit(r, unit_totals)))
		return fail_status(st, e);
	if (load_partners(db, r, e) || load_devices(db, r, e))
		return -1;
	return 0;
}

/* Reads everything inside one read transaction, or inside the caller's
 * if one is open, so that the figures describe one state of the records. */
int reportdata_load(sqlite3 *db, struct reportdata *r, struct err *e)
{
	int own = sqlite3_get_autocommit(db), rc = -1;

	if (own && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return fail_db(db, "the database", e);
	if (load_figures(db, r, e))
		goto cleanup;
	if (own && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fail_db(db, "the database", e);
		goto cleanup;
	}
	own = 0;
	rc = 0;
cleanup:
	/* Nothing was written: a failed rollback loses nothing, and the
	 * error that brought us here is the one to report. */
	if (own)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}
