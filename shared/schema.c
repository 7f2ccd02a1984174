/* schema.c - the record tables of branchsync as data, and the validation of
 * input strings into canonical values (see schema.h). No database access:
 * the DDL is produced as text for the store to run. */
#include "schema.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "utf8.h"

#define MONEY_MAX_CENTS INT64_C(100000000000000) /* 1e12 in cents */
#define PHONE_MIN_DIGITS 5
#define PHONE_MAX_DIGITS 20
#define DATE_YEAR_MIN 1900
#define DATE_YEAR_MAX 2100
#define ECHO_MAX 64 /* bytes of an unknown name repeated in a message */

/* Column constructors; the table definitions below read as the spec. */
#define C_TEXT(n) { .name = (n), .type = SCHEMA_TEXT }
#define C_TEXT_REQ(n) { .name = (n), .type = SCHEMA_TEXT, .required = 1 }
#define C_DATE(n) { .name = (n), .type = SCHEMA_DATE }
#define C_PHONE(n) { .name = (n), .type = SCHEMA_PHONE }
#define C_IDNUM(n) { .name = (n), .type = SCHEMA_IDNUM }
#define C_MONEY(n) { .name = (n), .type = SCHEMA_MONEY }
#define C_REF(n, tbl) { .name = (n), .type = SCHEMA_REF, .ref_table = (tbl) }
#define C_REF_REQ(n, tbl) { .name = (n), .type = SCHEMA_REF, .required = 1, \
			    .ref_table = (tbl) }
#define C_INT(n, lo, hi) { .name = (n), .type = SCHEMA_INT, .min = (lo), \
			   .max = (hi) }
#define C_ENUM(n, v) { .name = (n), .type = SCHEMA_ENUM, .values = (v) }
#define C_ENUM_REQ(n, v) { .name = (n), .type = SCHEMA_ENUM, .required = 1, \
			   .values = (v) }
#define C_ENUM_DEF(n, v, d) { .name = (n), .type = SCHEMA_ENUM, .values = (v), \
			      .default_value = (d) }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const branch_kinds[] = {
	"village", "enterprise", "community", "school", "township", NULL,
};
static const char *const genders[] = { "male", "female", NULL };
static const struct schema_alias gender_aliases[] = {
	{ "\xe7\x94\xb7", "male" },   /* 男 */
	{ "\xe5\xa5\xb3", "female" }, /* 女 */
	{ "m", "male" },
	{ "f", "female" },
	{ NULL, NULL },
};
static const char *const member_statuses[] = {
	"active", "away", "transferred", "left", NULL,
};
static const char *const need_categories[] = {
	"job", "training", "business", "hardship", "culture", "other", NULL,
};
static const char *const need_statuses[] = {
	"open", "in_progress", "met", "closed", NULL,
};
static const char *const position_kinds[] = { "internship", "job", NULL };
static const char *const position_statuses[] = {
	"open", "filled", "closed", NULL,
};
static const char *const case_statuses[] = {
	"open", "in_progress", "closed", NULL,
};

static const struct schema_column id_column = {
	.name = "id", .type = SCHEMA_ID, .required = 1,
};
static const struct schema_column branch_id_column = {
	/* Not a ref to branches: district-wide rows use the scope "district",
	 * which names no row. */
	.name = "branch_id", .type = SCHEMA_ID, .required = 1,
};

static const struct schema_column branches_columns[] = {
	C_TEXT_REQ("name"),
	C_ENUM_REQ("kind", branch_kinds),
	C_REF("parent_id", "branches"),
	C_TEXT("town"),
	C_TEXT("secretary"),
	C_PHONE("phone"),
};
static const struct schema_column pairings_columns[] = {
	C_REF_REQ("partner_id", "branches"),
	C_TEXT("model"),
	C_DATE("since"),
	C_TEXT("goals"),
};
static const struct schema_column members_columns[] = {
	C_TEXT_REQ("name"),
	{ .name = "gender", .type = SCHEMA_ENUM, .values = genders,
	  .aliases = gender_aliases },
	C_DATE("birth_date"),
	C_PHONE("phone"),
	C_IDNUM("id_number"),
	C_DATE("joined_on"),
	C_ENUM_DEF("status", member_statuses, "active"),
	C_TEXT("occupation"),
	C_TEXT("away_city"),
};
static const struct schema_column transfers_columns[] = {
	C_REF_REQ("member_id", "members"),
	C_REF("from_branch", "branches"),
	C_REF("to_branch", "branches"),
	C_DATE("on_date"),
	C_TEXT("reason"),
};
static const struct schema_column needs_columns[] = {
	C_REF("member_id", "members"),
	C_ENUM_REQ("category", need_categories),
	C_TEXT("detail"),
	C_ENUM_DEF("status", need_statuses, "open"),
};
static const struct schema_column activities_columns[] = {
	C_TEXT_REQ("title"),
	C_TEXT("kind"),
	C_DATE("held_on"),
	C_TEXT("place"),
	C_INT("participants", 0, INT64_MAX),
	C_REF("partner_id", "branches"),
	C_TEXT("notes"),
};
static const struct schema_column trainings_columns[] = {
	C_TEXT_REQ("title"),
	C_DATE("held_on"),
	C_TEXT("provider"),
	C_INT("attendees", 0, INT64_MAX),
};
static const struct schema_column positions_columns[] = {
	C_TEXT_REQ("employer"),
	C_TEXT_REQ("title"),
	C_ENUM("kind", position_kinds),
	C_INT("openings", 0, INT64_MAX),
	C_ENUM_DEF("status", position_statuses, "open"),
};
static const struct schema_column help_cases_columns[] = {
	C_REF("member_id", "members"),
	C_TEXT("kind"),
	C_MONEY("amount"),
	C_ENUM_DEF("status", case_statuses, "open"),
	C_TEXT("notes"),
};
static const struct schema_column awards_columns[] = {
	C_REF("member_id", "members"),
	C_TEXT_REQ("title"),
	C_INT("year", 1900, 2100),
	C_TEXT("level"),
};

#define TABLE(n, cols, self) { (n), (cols), COUNT(cols), (self) }
static const struct schema_table tables[] = {
	TABLE("branches", branches_columns, 1),
	TABLE("pairings", pairings_columns, 0),
	TABLE("members", members_columns, 0),
	TABLE("transfers", transfers_columns, 0),
	TABLE("needs", needs_columns, 0),
	TABLE("activities", activities_columns, 0),
	TABLE("trainings", trainings_columns, 0),
	TABLE("positions", positions_columns, 0),
	TABLE("help_cases", help_cases_columns, 0),
	TABLE("awards", awards_columns, 0),
};

size_t schema_table_count(void)
{
	return COUNT(tables);
}

const struct schema_table *schema_table_at(size_t i)
{
	return i < COUNT(tables) ? &tables[i] : NULL;
}

const struct schema_table *schema_table_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < COUNT(tables); i++)
		if (strcmp(tables[i].name, name) == 0)
			return &tables[i];
	return NULL;
}

const struct schema_column *schema_column_find(const struct schema_table *t,
					       const char *name)
{
	size_t i;

	if (!t || !name)
		return NULL;
	if (strcmp(name, id_column.name) == 0)
		return &id_column;
	if (strcmp(name, branch_id_column.name) == 0)
		return &branch_id_column;
	for (i = 0; i < t->ncolumns; i++)
		if (strcmp(t->columns[i].name, name) == 0)
			return &t->columns[i];
	return NULL;
}

/* Writes "column 'c' of table 't' <what>" into err. */
__attribute__((format(printf, 5, 6)))
static void col_msg(const struct schema_table *t,
		    const struct schema_column *c, char *err, size_t errlen,
		    const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || errlen == 0)
		return;
	n = snprintf(err, errlen, "column '%s' of table '%s' ", c->name,
		     t->name);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Appends `s` to the NUL-terminated string in dst[size], truncating. */
static void str_add(char *dst, size_t size, const char *s)
{
	size_t used = strnlen(dst, size);

	if (used + 1 >= size)
		return;
	snprintf(dst + used, size - used, "%s", s);
}

static int is_digit(uint8_t ch)
{
	return ch >= '0' && ch <= '9';
}

static uint8_t ascii_lower(uint8_t ch)
{
	return ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch - 'A' + 'a') : ch;
}

/* Compares len bytes of p with the string s, ignoring ASCII case only:
 * other bytes (Chinese aliases) must match exactly, and no locale is
 * consulted, so every replica accepts the same spellings. */
static int ascii_eq_nocase(const char *p, size_t len, const char *s)
{
	size_t i;

	if (strlen(s) != len)
		return 0;
	for (i = 0; i < len; i++)
		if (ascii_lower((uint8_t)p[i]) != ascii_lower((uint8_t)s[i]))
			return 0;
	return 1;
}

/* One load a character: every row id of every pulled change set is
 * checked (three branches a byte cost a first sync several ms). */
static const uint8_t id_chars[256] = {
	['-'] = 1, ['.'] = 1, [':'] = 1, ['_'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
	['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
	['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
	['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
	['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
	['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
	['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
	['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

static int id_char(uint8_t ch)
{
	return id_chars[ch];
}

static int id_valid_n(const char *p, size_t len)
{
	size_t i;

	if (len < 1 || len > SCHEMA_ID_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!id_char((uint8_t)p[i]))
			return 0;
	return 1;
}

int schema_id_valid(const char *s)
{
	return s ? id_valid_n(s, strnlen(s, SCHEMA_ID_MAX + 1)) : 0;
}

/* Sets *out to a fresh copy of len bytes of p. */
static enum bs_status set_text(struct schema_value *out, const char *p,
			       size_t len)
{
	char *s = mem_strndup(p, len);

	if (!s)
		return BS_ENOMEM;
	out->kind = SCHEMA_VALUE_TEXT;
	out->text = s;
	return BS_OK;
}

static enum bs_status parse_text(const struct schema_table *t,
				 const struct schema_column *c, const char *p,
				 size_t len, struct schema_value *out,
				 char *err, size_t errlen)
{
	size_t i;

	if (len > SCHEMA_TEXT_MAX) {
		col_msg(t, c, err, errlen, "is longer than %d bytes",
			SCHEMA_TEXT_MAX);
		return BS_ELIMIT;
	}
	/* Control bytes never occur inside a UTF-8 multi-byte sequence, so a
	 * byte scan is exact. */
	for (i = 0; i < len; i++) {
		uint8_t ch = (uint8_t)p[i];

		if (ch == 0) {
			col_msg(t, c, err, errlen, "contains a nul byte");
			return BS_EINVALID;
		}
		if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f) {
			col_msg(t, c, err, errlen,
				"contains a control character (only tab and "
				"newline are allowed)");
			return BS_EINVALID;
		}
	}
	if (!utf8_valid((const uint8_t *)p, len)) {
		col_msg(t, c, err, errlen, "is not valid utf-8 text");
		return BS_EINVALID;
	}
	return set_text(out, p, len);
}

static int leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30,
				      31, 31, 30, 31, 30, 31 };

	return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/* Value of n decimal digits at p, or -1 if any is not a digit. */
static int digits_value(const char *p, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!is_digit((uint8_t)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

static enum bs_status parse_date(const struct schema_table *t,
				 const struct schema_column *c, const char *p,
				 size_t len, struct schema_value *out,
				 char *err, size_t errlen)
{
	int y, m, d;

	if (len != 10 || p[4] != '-' || p[7] != '-' ||
	    (y = digits_value(p, 4)) < 0 || (m = digits_value(p + 5, 2)) < 0 ||
	    (d = digits_value(p + 8, 2)) < 0) {
		col_msg(t, c, err, errlen,
			"must be a date written yyyy-mm-dd, like 2024-03-01");
		return BS_EINVALID;
	}
	if (y < DATE_YEAR_MIN || y > DATE_YEAR_MAX) {
		col_msg(t, c, err, errlen, "must be a date in the years %d to %d",
			DATE_YEAR_MIN, DATE_YEAR_MAX);
		return BS_EINVALID;
	}
	if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) {
		col_msg(t, c, err, errlen, "is not a real calendar date");
		return BS_EINVALID;
	}
	return set_text(out, p, len);
}

static enum bs_status parse_enum(const struct schema_table *t,
				 const struct schema_column *c, const char *p,
				 size_t len, struct schema_value *out,
				 char *err, size_t errlen)
{
	const struct schema_alias *a;
	const char *const *v;
	char list[256] = "";

	for (v = c->values; *v; v++)
		if (ascii_eq_nocase(p, len, *v))
			return set_text(out, *v, strlen(*v));
	for (a = c->aliases; a && a->from; a++)
		if (ascii_eq_nocase(p, len, a->from))
			return set_text(out, a->to, strlen(a->to));
	for (v = c->values; *v; v++) {
		if (v != c->values)
			str_add(list, sizeof list, ", ");
		str_add(list, sizeof list, *v);
	}
	col_msg(t, c, err, errlen, "must be one of: %s", list);
	return BS_EINVALID;
}

/* Parses [-]digits into *v; 0 on success, -1 on bad syntax, -2 when the
 * number does not fit in int64. */
static int int_syntax(const char *p, size_t len, int64_t *v)
{
	uint64_t acc = 0, limit = (uint64_t)INT64_MAX;
	size_t i = 0;
	int neg = 0;

	if (len > 0 && p[0] == '-') {
		neg = 1;
		limit = (uint64_t)INT64_MAX + 1;
		i = 1;
	}
	if (i == len)
		return -1;
	for (; i < len; i++) {
		unsigned d;

		if (!is_digit((uint8_t)p[i]))
			return -1;
		d = (unsigned)(p[i] - '0');
		if (acc > (limit - d) / 10) {
			/* Keep checking syntax so "99…9x" is bad syntax. */
			for (i++; i < len; i++)
				if (!is_digit((uint8_t)p[i]))
					return -1;
			return -2;
		}
		acc = acc * 10 + d;
	}
	if (!neg)
		*v = (int64_t)acc;
	else if (acc == (uint64_t)INT64_MAX + 1)
		*v = INT64_MIN;
	else
		*v = -(int64_t)acc;
	return 0;
}

static void int_range_msg(const struct schema_table *t,
			  const struct schema_column *c, char *err,
			  size_t errlen)
{
	if (c->max == INT64_MAX)
		col_msg(t, c, err, errlen,
			"must be a whole number of at least %" PRId64, c->min);
	else
		col_msg(t, c, err, errlen,
			"must be a whole number from %" PRId64 " to %" PRId64,
			c->min, c->max);
}

static enum bs_status parse_int(const struct schema_table *t,
				const struct schema_column *c, const char *p,
				size_t len, struct schema_value *out,
				char *err, size_t errlen)
{
	int64_t v = 0;
	int rc = int_syntax(p, len, &v);

	if (rc == -1) {
		col_msg(t, c, err, errlen,
			"must be a whole number written in digits, with an "
			"optional leading '-'");
		return BS_EINVALID;
	}
	if (rc == -2 || v < c->min || v > c->max) {
		int_range_msg(t, c, err, errlen);
		return BS_EINVALID;
	}
	out->kind = SCHEMA_VALUE_INT;
	out->i = v;
	return BS_OK;
}

static enum bs_status parse_money(const struct schema_table *t,
				  const struct schema_column *c, const char *p,
				  size_t len, struct schema_value *out,
				  char *err, size_t errlen)
{
	int64_t units = 0, cents;
	size_t i = 0, nint = 0, nfrac = 0;
	char tmp[32];
	int n;

	for (; i < len && is_digit((uint8_t)p[i]); i++, nint++) {
		/* Stop growing once over the cap; leading zeros stay cheap. */
		if (units <= MONEY_MAX_CENTS / 100)
			units = units * 10 + (p[i] - '0');
	}
	cents = units > MONEY_MAX_CENTS / 100 ? MONEY_MAX_CENTS + 1
					      : units * 100;
	if (i < len && p[i] == '.') {
		for (i++; i < len && is_digit((uint8_t)p[i]); i++, nfrac++)
			if (nfrac < 2)
				cents += (p[i] - '0') * (nfrac ? 1 : 10);
		if (nfrac == 0)
			nint = 0; /* "5." is refused like ".5" */
	}
	if (nint == 0 || i != len || nfrac > 2) {
		col_msg(t, c, err, errlen,
			"must be an amount like 1200 or 3.50: digits, at most "
			"two after the point, not negative");
		return BS_EINVALID;
	}
	if (cents > MONEY_MAX_CENTS) {
		col_msg(t, c, err, errlen, "must not exceed 1000000000000");
		return BS_EINVALID;
	}
	n = snprintf(tmp, sizeof tmp, "%" PRId64 ".%02d", cents / 100,
		     (int)(cents % 100));
	if (n < 0 || (size_t)n >= sizeof tmp)
		return BS_EINVALID; /* unreachable: cents is capped */
	return set_text(out, tmp, (size_t)n);
}

static enum bs_status parse_phone(const struct schema_table *t,
				  const struct schema_column *c, const char *p,
				  size_t len, struct schema_value *out,
				  char *err, size_t errlen)
{
	char tmp[PHONE_MAX_DIGITS + 2];
	size_t i = 0, n = 0, ndigits = 0;

	if (len > 0 && p[0] == '+')
		tmp[n++] = p[i++];
	/* Separators only between digits: the first and last are digits. */
	if (i == len || !is_digit((uint8_t)p[i]) ||
	    !is_digit((uint8_t)p[len - 1]))
		goto bad;
	for (; i < len; i++) {
		if (is_digit((uint8_t)p[i])) {
			if (++ndigits > PHONE_MAX_DIGITS)
				goto bad;
			tmp[n++] = p[i];
		} else if (p[i] != ' ' && p[i] != '-') {
			goto bad;
		}
	}
	if (ndigits < PHONE_MIN_DIGITS)
		goto bad;
	return set_text(out, tmp, n);
bad:
	col_msg(t, c, err, errlen,
		"must be a phone number of %d to %d digits, with an optional "
		"leading '+' and spaces or '-' between digits",
		PHONE_MIN_DIGITS, PHONE_MAX_DIGITS);
	return BS_EINVALID;
}

/* The check character of an 18-character resident id (GB 11643, ISO 7064
 * MOD 11-2): weights 2^(17-i) mod 11 over the first 17 digits. */
static char idnum_check_char(const char *p)
{
	static const int weights[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6,
					 3, 7, 9, 10, 5, 8, 4, 2 };
	int sum = 0, i, r;

	for (i = 0; i < 17; i++)
		sum += (p[i] - '0') * weights[i];
	r = (12 - sum % 11) % 11;
	return r == 10 ? 'X' : (char)('0' + r);
}

static enum bs_status parse_idnum(const struct schema_table *t,
				  const struct schema_column *c, const char *p,
				  size_t len, struct schema_value *out,
				  char *err, size_t errlen)
{
	char tmp[19];
	size_t i;

	if (len != 18 && len != 15)
		goto bad;
	for (i = 0; i < len; i++) {
		uint8_t ch = (uint8_t)p[i];

		if (is_digit(ch))
			tmp[i] = (char)ch;
		else if (len == 18 && i == 17 && (ch == 'X' || ch == 'x'))
			tmp[i] = 'X';
		else
			goto bad;
	}
	if (len == 18 && idnum_check_char(tmp) != tmp[17]) {
		col_msg(t, c, err, errlen,
			"has an id number whose checksum does not match; check "
			"every digit");
		return BS_EINVALID;
	}
	return set_text(out, tmp, len);
bad:
	col_msg(t, c, err, errlen,
		"must be an id number of 18 characters (17 digits then a digit "
		"or x) or of 15 digits");
	return BS_EINVALID;
}

static enum bs_status parse_id(const struct schema_table *t,
			       const struct schema_column *c, const char *p,
			       size_t len, struct schema_value *out, char *err,
			       size_t errlen)
{
	if (!id_valid_n(p, len)) {
		col_msg(t, c, err, errlen,
			"must be an id of 1 to %d characters from a-z, A-Z, "
			"0-9, '_', '.', ':' and '-'", SCHEMA_ID_MAX);
		return BS_EINVALID;
	}
	return set_text(out, p, len);
}

enum bs_status schema_parse_value_n(const struct schema_table *t,
				    const struct schema_column *c,
				    const char *input, size_t len,
				    struct schema_value *out, char *err,
				    size_t errlen)
{
	enum bs_status rc;

	out->kind = SCHEMA_VALUE_NULL;
	out->i = 0;
	out->text = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!input || len == 0) {
		if (!c->required)
			return BS_OK;
		col_msg(t, c, err, errlen, "is required");
		return BS_EINVALID;
	}
	/* Every non-text parser refuses long input anyway; capping here keeps
	 * the cost of hostile CSV cells bounded whatever the type. */
	if (c->type != SCHEMA_TEXT && len > SCHEMA_INPUT_MAX) {
		col_msg(t, c, err, errlen, "is longer than %d bytes",
			SCHEMA_INPUT_MAX);
		return BS_EINVALID;
	}
	switch (c->type) {
	case SCHEMA_TEXT:
		rc = parse_text(t, c, input, len, out, err, errlen);
		break;
	case SCHEMA_DATE:
		rc = parse_date(t, c, input, len, out, err, errlen);
		break;
	case SCHEMA_ENUM:
		rc = parse_enum(t, c, input, len, out, err, errlen);
		break;
	case SCHEMA_INT:
		rc = parse_int(t, c, input, len, out, err, errlen);
		break;
	case SCHEMA_MONEY:
		rc = parse_money(t, c, input, len, out, err, errlen);
		break;
	case SCHEMA_PHONE:
		rc = parse_phone(t, c, input, len, out, err, errlen);
		break;
	case SCHEMA_IDNUM:
		rc = parse_idnum(t, c, input, len, out, err, errlen);
		break;
	case SCHEMA_REF:
	case SCHEMA_ID:
		rc = parse_id(t, c, input, len, out, err, errlen);
		break;
	default:
		col_msg(t, c, err, errlen, "has an unknown type");
		rc = BS_EINVALID;
		break;
	}
	if (rc == BS_ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	return rc;
}

enum bs_status schema_parse_value(const struct schema_table *t,
				  const struct schema_column *c,
				  const char *input, struct schema_value *out,
				  char *err, size_t errlen)
{
	/* Bounded so that a huge argument costs no more than a long one. */
	size_t len = input ? strnlen(input, SCHEMA_TEXT_MAX + 1) : 0;

	return schema_parse_value_n(t, c, input, len, out, err, errlen);
}

enum bs_status schema_insert_default(const struct schema_table *t,
				     const struct schema_column *c,
				     struct schema_value *out, char *err,
				     size_t errlen)
{
	return schema_parse_value(t, c, c->default_value, out, err, errlen);
}

void schema_value_clear(struct schema_value *v)
{
	mem_free(v->text);
	v->text = NULL;
	v->i = 0;
	v->kind = SCHEMA_VALUE_NULL;
}

/* Copies name into dst for echoing: control bytes become '?', and a long
 * name is cut at a UTF-8 character boundary and marked with "...". */
static void echo_name(char *dst, size_t size, const char *name)
{
	size_t len = name ? strnlen(name, ECHO_MAX + 1) : 0, cut = len, i;

	if (cut > ECHO_MAX) {
		cut = ECHO_MAX;
		while (cut > 0 && ((uint8_t)name[cut] & 0xc0) == 0x80)
			cut--;
	}
	for (i = 0; i < cut && i + 1 < size; i++) {
		uint8_t ch = (uint8_t)name[i];

		dst[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	dst[i] = '\0';
	if (cut < len)
		str_add(dst, size, "...");
}

void schema_unknown_table_msg(const char *name, char *err, size_t errlen)
{
	char shown[ECHO_MAX + 4];
	size_t i;

	if (!err || errlen == 0)
		return;
	echo_name(shown, sizeof shown, name);
	snprintf(err, errlen, "unknown table '%s'; known tables: ", shown);
	for (i = 0; i < COUNT(tables); i++) {
		if (i)
			str_add(err, errlen, ", ");
		str_add(err, errlen, tables[i].name);
	}
}

void schema_unknown_column_msg(const struct schema_table *t, const char *name,
			       char *err, size_t errlen)
{
	char shown[ECHO_MAX + 4];
	size_t i;

	if (!err || errlen == 0)
		return;
	echo_name(shown, sizeof shown, name);
	snprintf(err, errlen,
		 "unknown column '%s' in table '%s'; known columns: id, "
		 "branch_id", shown, t->name);
	for (i = 0; i < t->ncolumns; i++) {
		str_add(err, errlen, ", ");
		str_add(err, errlen, t->columns[i].name);
	}
}

static void add_str(struct buf *out, const char *s)
{
	buf_append(out, s, strlen(s));
}

enum bs_status schema_table_ddl(const struct schema_table *t, struct buf *out)
{
	size_t i;

	add_str(out, "CREATE TABLE ");
	add_str(out, t->name);
	add_str(out, " (\n\tid TEXT NOT NULL,\n\tbranch_id TEXT NOT NULL");
	for (i = 0; i < t->ncolumns; i++) {
		add_str(out, ",\n\t");
		add_str(out, t->columns[i].name);
		add_str(out, t->columns[i].type == SCHEMA_INT ? " INTEGER"
							      : " TEXT");
	}
	/* The scope is part of the key so that every session changeset entry,
	 * UPDATE and DELETE included, carries it: a receiver checks the scope
	 * from the signed bytes alone, and no write can move a row between
	 * scopes in place. */
	add_str(out, ",\n\tPRIMARY KEY (id, branch_id)\n) STRICT;\n"
		     "CREATE INDEX ");
	add_str(out, t->name);
	add_str(out, "_by_branch ON ");
	add_str(out, t->name);
	add_str(out, " (branch_id);\n");
	return out->status;
}

enum bs_status schema_ddl(struct buf *out)
{
	size_t i;

	for (i = 0; i < COUNT(tables); i++)
		schema_table_ddl(&tables[i], out);
	buf_append_u8(out, 0);
	return out->status;
}
