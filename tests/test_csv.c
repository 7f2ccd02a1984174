/* test_csv.c - Check suite for shared/csv: the dialect (quoting, line ends,
 * BOM, empty lines, header trimming), encodings (the UTF-8 and GB18030
 * vectors under tests/vectors/csv), every error with its line number,
 * limits, allocation failures and a random write/read round trip. */
#include <check.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "csv.h"
#include "fsutil.h"
#include "mem.h"

#define MAX_IN CSV_DEFAULT_MAX_INPUT

struct result {
	enum bs_status rc;
	int at_open;            /* failed in csv_reader_open */
	unsigned long line;     /* from csv_next_record on failure */
	enum csv_encoding used;
	char err[256];
	char *text;             /* rendering of what was read; free() */
};

static void put_escaped(struct buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\n')
			buf_append(b, "\\n", 2);
		else if (s[i] == '\r')
			buf_append(b, "\\r", 2);
		else if (s[i] == '|' || s[i] == '\\') {
			buf_append_u8(b, '\\');
			buf_append_u8(b, (uint8_t)s[i]);
		} else
			buf_append_u8(b, (uint8_t)s[i]);
	}
}

/* Reads in[0..len) to the end and renders it: the header names joined by
 * '|', then "LINE:f1|f2|..." per record, one per line, with CR, LF, '|'
 * and '\' escaped. Stops at the first error. */
static void run(const void *in, size_t len, enum csv_encoding enc,
		size_t max, struct result *res)
{
	struct csv_reader r;
	struct buf b;
	const char *const *names, *const *f;
	const size_t *l;
	size_t n, i, outlen;
	unsigned long line;
	uint8_t *out;

	memset(res, 0, sizeof *res);
	buf_init(&b, 64u << 20);
	res->rc = csv_reader_open(&r, in, len, enc, max, res->err,
				  sizeof res->err);
	res->at_open = res->rc != BS_OK;
	res->used = csv_reader_encoding(&r);
	if (res->rc == BS_OK) {
		names = csv_header(&r, &n);
		for (i = 0; i < n; i++) {
			if (i)
				buf_append_u8(&b, '|');
			put_escaped(&b, names[i], strlen(names[i]));
		}
		buf_append_u8(&b, '\n');
	}
	while (res->rc == BS_OK) {
		char num[32];

		res->rc = csv_next_record(&r, &f, &l, &n, &line, res->err,
					  sizeof res->err);
		if (res->rc) {
			res->line = line;
			break;
		}
		if (n == 0) {
			ck_assert_ptr_null(f);
			break;
		}
		snprintf(num, sizeof num, "%lu:", line);
		buf_append(&b, num, strlen(num));
		for (i = 0; i < n; i++) {
			if (i)
				buf_append_u8(&b, '|');
			ck_assert_uint_eq(strlen(f[i]), l[i]);
			put_escaped(&b, f[i], l[i]);
		}
		buf_append_u8(&b, '\n');
	}
	csv_reader_release(&r);
	buf_append_u8(&b, 0);
	ck_assert_int_eq(b.status, BS_OK);
	out = buf_detach(&b, &outlen);
	res->text = malloc(outlen);
	ck_assert_ptr_nonnull(res->text);
	memcpy(res->text, out, outlen);
	mem_free(out);
}

/* Reads a NUL-terminated input and expects success with rendering `want`. */
static void expect_text(const char *in, enum csv_encoding enc,
			const char *want)
{
	struct result res;

	run(in, strlen(in), enc, MAX_IN, &res);
	ck_assert_msg(res.rc == BS_OK, "input \"%s\": %s", in, res.err);
	ck_assert_str_eq(res.text, want);
	free(res.text);
}

/* True when msg contains "line N" with no further digit after N. */
static int names_line(const char *msg, unsigned long n)
{
	char want[32];
	const char *p = msg;
	size_t k;

	k = (size_t)snprintf(want, sizeof want, "line %lu", n);
	while ((p = strstr(p, want)) != NULL) {
		if (p[k] < '0' || p[k] > '9')
			return 1;
		p += k;
	}
	return 0;
}

START_TEST(encoding_names)
{
	static const struct {
		const char *name;
		enum bs_status rc;
		enum csv_encoding enc;
	} cases[] = {
		{"auto", BS_OK, CSV_ENC_AUTO},
		{"utf-8", BS_OK, CSV_ENC_UTF8},
		{"UTF-8", BS_OK, CSV_ENC_UTF8},
		{"utf8", BS_OK, CSV_ENC_UTF8},
		{"gb18030", BS_OK, CSV_ENC_GB18030},
		{"GB18030", BS_OK, CSV_ENC_GB18030},
		{"gbk", BS_OK, CSV_ENC_GB18030},
		{"", BS_EINVALID, CSV_ENC_AUTO},
		{"utf-16", BS_EINVALID, CSV_ENC_AUTO},
		{"gb2312x", BS_EINVALID, CSV_ENC_AUTO},
		{"utf-8 ", BS_EINVALID, CSV_ENC_AUTO},
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum csv_encoding e = (enum csv_encoding)99;

		ck_assert_int_eq(csv_encoding_parse(cases[i].name, &e),
				 cases[i].rc);
		if (cases[i].rc == BS_OK)
			ck_assert_int_eq(e, cases[i].enc);
		else
			ck_assert_int_eq(e, 99);
	}
	ck_assert_str_eq(csv_encoding_name(CSV_ENC_AUTO), "auto");
	ck_assert_str_eq(csv_encoding_name(CSV_ENC_UTF8), "utf-8");
	ck_assert_str_eq(csv_encoding_name(CSV_ENC_GB18030), "gb18030");
}
END_TEST

START_TEST(header_and_rows)
{
	struct result res;

	expect_text("name,age\n张三,30\n李四,41\n", CSV_ENC_AUTO,
		    "name|age\n2:张三|30\n3:李四|41\n");
	/* no final line break; empty last field; all-empty record */
	expect_text("a,b\n1,\n,", CSV_ENC_UTF8, "a|b\n2:1|\n3:|\n");
	/* what fsutil_read_all gives for an empty file */
	run(NULL, 0, CSV_ENC_AUTO, MAX_IN, &res);
	ck_assert_int_eq(res.rc, BS_EINVALID);
	ck_assert(res.at_open);
	free(res.text);
	run(NULL, 0, CSV_ENC_GB18030, MAX_IN, &res);
	ck_assert_int_eq(res.rc, BS_EINVALID);
	free(res.text);
	/* header only */
	expect_text("a,b\n", CSV_ENC_AUTO, "a|b\n");
	expect_text("a", CSV_ENC_AUTO, "a\n");
}
END_TEST

START_TEST(quoting)
{
	expect_text("a,b,c\n"
		    "\"x,y\",\"line1\nline2\",\"say \"\"hi\"\"\"\n"
		    "\"\",x,\"\"\"\"\n"
		    "1,2,3",
		    CSV_ENC_AUTO,
		    "a|b|c\n"
		    "2:x,y|line1\\nline2|say \"hi\"\n"
		    "4:|x|\"\n"
		    "5:1|2|3\n");
	/* quoted header names, a quoted field spanning several lines */
	expect_text("\"na,me\",\"a\"\"b\"\n\"\n\n\n\",2\nx,y\n", CSV_ENC_AUTO,
		    "na,me|a\"b\n2:\\n\\n\\n|2\n6:x|y\n");
	/* a one-column empty value survives only when quoted */
	expect_text("name\n\n\"\"\nx\n", CSV_ENC_AUTO, "name\n3:\n4:x\n");
}
END_TEST

START_TEST(line_endings)
{
	static const char *const same[] = {
		"a,b\n1,2\n3,4\n", "a,b\r\n1,2\r\n3,4\r\n", "a,b\r1,2\r3,4\r",
		"a,b\r\n1,2\n3,4", "a,b\r1,2\r\n3,4\n",
	};
	size_t i;

	for (i = 0; i < sizeof same / sizeof same[0]; i++)
		expect_text(same[i], CSV_ENC_AUTO, "a|b\n2:1|2\n3:3|4\n");
	/* breaks inside quotes are kept byte for byte and still count */
	expect_text("a\r\n\"x\r\ny\"\r\nz\r\n", CSV_ENC_AUTO,
		    "a\n2:x\\r\\ny\n4:z\n");
	expect_text("a\r\"x\ry\"\rz", CSV_ENC_AUTO, "a\n2:x\\ry\n4:z\n");
	expect_text("a\n\"x\r\"\nz", CSV_ENC_AUTO, "a\n2:x\\r\n4:z\n");
}
END_TEST

START_TEST(bom_spaces_and_empty_lines)
{
	struct result res;
	static const char bom[] = "\xEF\xBB\xBFname,age\r\n1,2\r\n";

	expect_text(bom, CSV_ENC_AUTO, "name|age\n2:1|2\n");
	expect_text(bom, CSV_ENC_UTF8, "name|age\n2:1|2\n");
	run(bom, strlen(bom), CSV_ENC_AUTO, MAX_IN, &res);
	ck_assert_int_eq(res.used, CSV_ENC_UTF8);
	free(res.text);
	/* a BOM after the start is data */
	expect_text("a\n\xEF\xBB\xBFx\n", CSV_ENC_AUTO, "a\n2:\xEF\xBB\xBFx\n");
	/* empty lines skipped anywhere; lines still counted; values keep
	 * their spaces; header names lose theirs */
	expect_text("\n\n  name , age  \n\n张三 , 30 \r\n\r\n\n李四,41\n\n",
		    CSV_ENC_AUTO, "name|age\n5:张三 | 30 \n8:李四|41\n");
	expect_text("\" a \",b\n  x , \n", CSV_ENC_AUTO, "a|b\n2:  x | \n");
	/* a line of spaces is not empty: it is a record */
	expect_text("a\n \n", CSV_ENC_AUTO, "a\n2: \n");
}
END_TEST

static char *vector_path(const char *name)
{
	const char *dir = getenv("BRANCHSYNC_VECTORS");
	static char path[4096];

	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof path, "%s/csv/%s", dir, name);
	return path;
}

static uint8_t *read_vector(const char *name, size_t *len)
{
	uint8_t *data = NULL;

	ck_assert_msg(fsutil_read_all(vector_path(name), 1 << 20, &data,
				      len) == 0,
		      "cannot read %s: %s", name, strerror(errno));
	return data;
}

#define ROSTER_HEAD "name|gender|birth_date|phone|notes\n" \
	"2:张三|男|1980-05-01|13800000001|村委会委员,负责宣传\n"
#define ROSTER_TAIL "5:刘䶮|男|1990-01-15||他说\"到了\"\n" \
		    "6:吴㛃|女|1988-08-08|13800000004|👍 \n"
static const char roster_lf[] = ROSTER_HEAD
	"3:李四|女|1975-11-23|13800000002|外出务工\\n在杭州\n"
	ROSTER_TAIL;
static const char roster_crlf[] = ROSTER_HEAD
	"3:李四|女|1975-11-23|13800000002|外出务工\\r\\n在杭州\n"
	ROSTER_TAIL;

static void expect_vector(const char *name, enum csv_encoding enc,
			  enum csv_encoding used, const char *want)
{
	struct result res;
	size_t len;
	uint8_t *data = read_vector(name, &len);

	run(data, len, enc, MAX_IN, &res);
	ck_assert_msg(res.rc == BS_OK, "%s: %s", name, res.err);
	ck_assert_int_eq(res.used, used);
	ck_assert_str_eq(res.text, want);
	free(res.text);
	mem_free(data);
}

START_TEST(vectors_utf8)
{
	expect_vector("roster-utf8-lf.csv", CSV_ENC_AUTO, CSV_ENC_UTF8,
		      roster_lf);
	expect_vector("roster-utf8-lf.csv", CSV_ENC_UTF8, CSV_ENC_UTF8,
		      roster_lf);
	expect_vector("roster-utf8-bom-crlf.csv", CSV_ENC_AUTO, CSV_ENC_UTF8,
		      roster_crlf);
}
END_TEST

START_TEST(vectors_gb18030)
{
	static const uint8_t zhangsan[] = {0xE5, 0xBC, 0xA0, 0xE4, 0xB8, 0x89};
	static const uint8_t lisi[] = {0xE6, 0x9D, 0x8E, 0xE5, 0x9B, 0x9B};
	struct csv_reader r;
	const char *const *f;
	const size_t *l;
	size_t len, n;
	unsigned long line;
	uint8_t *data = read_vector("roster-gb18030-crlf.csv", &len);
	char err[256];

	/* the file itself really is GB18030: 张三 is D5 C5 C8 FD there,
	 * right after the 36-byte header line */
	ck_assert_uint_gt(len, 40);
	ck_assert_mem_eq(data + 36, "\xD5\xC5\xC8\xFD", 4);
	expect_vector("roster-gb18030-crlf.csv", CSV_ENC_AUTO, CSV_ENC_GB18030,
		      roster_crlf);
	expect_vector("roster-gb18030-crlf.csv", CSV_ENC_GB18030,
		      CSV_ENC_GB18030, roster_crlf);

	ck_assert_int_eq(csv_reader_open(&r, data, len, CSV_ENC_AUTO, MAX_IN,
					 err, sizeof err), BS_OK);
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, err,
					 sizeof err), BS_OK);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(l[0], sizeof zhangsan);
	ck_assert_mem_eq(f[0], zhangsan, sizeof zhangsan);
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, err,
					 sizeof err), BS_OK);
	ck_assert_uint_eq(l[0], sizeof lisi);
	ck_assert_mem_eq(f[0], lisi, sizeof lisi);
	csv_reader_release(&r);

	/* told it is UTF-8, a GB file is refused at its first Chinese line */
	ck_assert_int_eq(csv_reader_open(&r, data, len, CSV_ENC_UTF8, MAX_IN,
					 err, sizeof err), BS_EINVALID);
	ck_assert_msg(names_line(err, 2), "message: %s", err);
	ck_assert_ptr_nonnull(strstr(err, "gb18030"));
	csv_reader_release(&r);
	mem_free(data);
}
END_TEST

START_TEST(gb18030_edge_cases)
{
	struct result res;

	/* GB18030's own BOM (U+FEFF as 84 31 95 33) is dropped too */
	run("\x84\x31\x95\x33" "a\n\xD5\xC5\n", 9, CSV_ENC_GB18030, MAX_IN,
	    &res);
	ck_assert_int_eq(res.rc, BS_OK);
	ck_assert_str_eq(res.text, "a\n2:张\n");
	free(res.text);
	/* a lead byte cut off by the end of input */
	run("a\n\xD5", 3, CSV_ENC_GB18030, MAX_IN, &res);
	ck_assert_int_eq(res.rc, BS_EINVALID);
	ck_assert_msg(names_line(res.err, 2), "message: %s", res.err);
	free(res.text);
	/* neither UTF-8 nor GB18030: both bad lines are named */
	run("a\nb\n\xFF\n", 6, CSV_ENC_AUTO, MAX_IN, &res);
	ck_assert_int_eq(res.rc, BS_EINVALID);
	ck_assert_ptr_nonnull(strstr(res.err, "neither"));
	ck_assert_msg(names_line(res.err, 3), "message: %s", res.err);
	free(res.text);
	/* errors in a GB file are reported on the decoded lines */
	run("a,b\r\n\xD5\xC5,1\r\n\xC0\xEE\r\n", 15, CSV_ENC_AUTO, MAX_IN,
	    &res);
	ck_assert_int_eq(res.rc, BS_EINVALID);
	ck_assert_uint_eq(res.line, 3);
	ck_assert_msg(names_line(res.err, 3), "message: %s", res.err);
	free(res.text);
	/* UTF-16 is refused whatever the encoding asked for */
	run("\xFF\xFE" "a\0,\0b\0", 8, CSV_ENC_AUTO, MAX_IN, &res);
	ck_assert_int_eq(res.rc, BS_EINVALID);
	ck_assert_ptr_nonnull(strstr(res.err, "UTF-16"));
	free(res.text);
	run("\xFE\xFF\0a", 4, CSV_ENC_GB18030, MAX_IN, &res);
	ck_assert_int_eq(res.rc, BS_EINVALID);
	free(res.text);
	/* a UTF-8 BOM means UTF-8: no falling back to GB18030 after it */
	run("\xEF\xBB\xBF" "a\n\xD5\xC5\n", 8, CSV_ENC_AUTO, MAX_IN, &res);
	ck_assert_int_eq(res.rc, BS_EINVALID);
	free(res.text);
}
END_TEST

START_TEST(malformed_inputs)
{
#define CASE(s, rc, open, line, what) {s, sizeof s - 1, rc, open, line, what}
	static const struct {
		const char *in;
		size_t len;
		enum bs_status rc;
		int at_open;
		unsigned long line; /* 0: no line to name */
		const char *what;   /* in the message */
	} cases[] = {
		CASE("a,b\n1,x\"y\n", BS_EINVALID, 0, 2, "quote inside"),
		CASE("a,b\n1,2\n\"x\"y,2\n",
		     BS_EINVALID, 0, 3, "after a closing quote"),
		CASE("a,b\n\"x\" ,2\n",
		     BS_EINVALID, 0, 2, "after a closing quote"),
		CASE("a,b\n\"x\"\"y\"z,1\n",
		     BS_EINVALID, 0, 2, "after a closing quote"),
		CASE("a,b\n \"x\",2\n", BS_EINVALID, 0, 2, "quote inside"),
		CASE("a,b\n1,\"abc\n2,3\n", BS_ETRUNCATED, 0, 2, "still open"),
		CASE("a,b\n\"1\n2\",3\n4,\"5\n",
		     BS_ETRUNCATED, 0, 4, "still open"),
		CASE("a,b\r\n1,2\r\n3,4\r\n\"5\r\n\r\n",
		     BS_ETRUNCATED, 0, 4, "still open"),
		CASE("a,b\r3,\"x\"\"\r", BS_ETRUNCATED, 0, 2, "still open"),
		CASE("a,b\n1,2,3\n", BS_EINVALID, 0, 2, "more fields"),
		CASE("a,b\n1,2\n3\n",
		     BS_EINVALID, 0, 3, "expected 2 fields as in the header, "
		     "found 1"),
		CASE("a,b\n\n\n1,2,3\n", BS_EINVALID, 0, 4, "more fields"),
		CASE("a,b\n\"x\ny\"\n", BS_EINVALID, 0, 2, "found 1"),
		CASE("a,b\n1,2\0\n", BS_EINVALID, 0, 2, "NUL"),
		CASE("a,b\n1,\"\0\"\n", BS_EINVALID, 0, 2, "NUL"),
		CASE("a\0,b\n", BS_EINVALID, 1, 1, "NUL"),
		CASE("a, ,c\n1,2,3\n", BS_EINVALID, 1, 1, "no name"),
		CASE("a,,c\n", BS_EINVALID, 1, 1, "no name"),
		CASE("a,b,\n", BS_EINVALID, 1, 1, "no name"),
		CASE("a,\"\"\n", BS_EINVALID, 1, 1, "no name"),
		CASE("a,b,A\n", BS_EINVALID, 1, 1, "both named \"A\""),
		CASE(" a ,a\n", BS_EINVALID, 1, 1, "both named \"a\""),
		CASE("\n\nx,y,x\n", BS_EINVALID, 1, 3, "columns 1 and 3"),
		CASE("\"a\nb\",\"c\n", BS_ETRUNCATED, 1, 1, "still open"),
		CASE("a,b\"\n", BS_EINVALID, 1, 1, "quote inside"),
		CASE("", BS_EINVALID, 1, 0, "empty"),
		CASE("\n\r\n\r", BS_EINVALID, 1, 0, "empty"),
		CASE("a,b\n1,\x80\n", BS_EINVALID, 1, 2, "neither"),
	};
#undef CASE
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct result res;

		run(cases[i].in, cases[i].len, CSV_ENC_AUTO, MAX_IN, &res);
		ck_assert_msg(res.rc == cases[i].rc, "case %zu: %s (rc %d)",
			      i, res.err, res.rc);
		ck_assert_msg(res.at_open == cases[i].at_open,
			      "case %zu: at_open %d", i, res.at_open);
		ck_assert_msg(strstr(res.err, cases[i].what),
			      "case %zu: message \"%s\"", i, res.err);
		if (cases[i].line) {
			ck_assert_msg(names_line(res.err, cases[i].line),
				      "case %zu: message \"%s\"", i, res.err);
			if (!cases[i].at_open)
				ck_assert_uint_eq(res.line, cases[i].line);
		}
		free(res.text);
	}
}
END_TEST

START_TEST(errors_and_end_are_sticky)
{
	static const char in[] = "a,b\n1,2\n3\n4,5\n";
	struct csv_reader r;
	const char *const *f;
	const size_t *l;
	size_t n;
	unsigned long line;
	char err[256], err2[256];

	ck_assert_int_eq(csv_reader_open(&r, (const uint8_t *)in, strlen(in),
					 CSV_ENC_AUTO, MAX_IN, err, sizeof err),
			 BS_OK);
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, err,
					 sizeof err), BS_OK);
	ck_assert_uint_eq(line, 2);
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, err,
					 sizeof err), BS_EINVALID);
	ck_assert_uint_eq(line, 3);
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, err2,
					 sizeof err2), BS_EINVALID);
	ck_assert_str_eq(err, err2);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(f);
	/* a short message buffer is truncated, never overrun; none is fine */
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, err2, 5),
			 BS_EINVALID);
	ck_assert_uint_eq(strlen(err2), 4);
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, NULL, 0),
			 BS_EINVALID);
	csv_reader_release(&r);
	csv_reader_release(&r);

	ck_assert_int_eq(csv_reader_open(&r, (const uint8_t *)in, 8,
					 CSV_ENC_AUTO, MAX_IN, err, sizeof err),
			 BS_OK);
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, err,
					 sizeof err), BS_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, err,
					 sizeof err), BS_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, err,
					 sizeof err), BS_OK);
	ck_assert_uint_eq(n, 0);
	csv_reader_release(&r);
	ck_assert_int_eq(csv_next_record(&r, &f, &l, &n, &line, err,
					 sizeof err), BS_ESTATE);
	/* what callers do when they bail out before opening */
	memset(&r, 0, sizeof r);
	csv_reader_release(&r);
}
END_TEST

/* Appends `n` copies of s to b. */
static void put_repeat(struct buf *b, const char *s, size_t n)
{
	size_t k = strlen(s);

	while (n--)
		buf_append(b, s, k);
}

static struct result run_buf(struct buf *b, enum csv_encoding enc,
			     size_t max)
{
	struct result res;

	ck_assert_int_eq(b->status, BS_OK);
	run(b->data, b->len, enc, max, &res);
	buf_release(b);
	return res;
}

START_TEST(limits)
{
	struct buf b;
	struct result res;
	size_t i;

	/* columns */
	buf_init(&b, 1 << 20);
	for (i = 0; i < CSV_MAX_COLUMNS; i++) {
		char name[16];

		snprintf(name, sizeof name, "%sc%zu", i ? "," : "", i);
		buf_append(&b, name, strlen(name));
	}
	buf_append(&b, "\n", 1);
	put_repeat(&b, "x,", CSV_MAX_COLUMNS - 1);
	buf_append(&b, "x\n", 2);
	put_repeat(&b, "x,", CSV_MAX_COLUMNS);
	buf_append(&b, "x\n", 2);
	res = run_buf(&b, CSV_ENC_AUTO, MAX_IN);
	ck_assert_int_eq(res.rc, BS_EINVALID); /* the 257-field record */
	ck_assert_uint_eq(res.line, 3);
	free(res.text);

	buf_init(&b, 1 << 20);
	put_repeat(&b, "c,", CSV_MAX_COLUMNS);
	buf_append(&b, "d\n", 2);
	res = run_buf(&b, CSV_ENC_AUTO, MAX_IN);
	ck_assert_int_eq(res.rc, BS_ELIMIT);
	ck_assert(res.at_open);
	ck_assert(names_line(res.err, 1));
	free(res.text);

	/* field length: plain, quoted, and an escape across the limit */
	buf_init(&b, 8 << 20);
	buf_append(&b, "a,b\n1,", 6);
	put_repeat(&b, "x", CSV_MAX_FIELD);
	buf_append(&b, "\n2,\"", 4);
	put_repeat(&b, "y", CSV_MAX_FIELD - 1);
	buf_append(&b, "\"\"\"\n", 4);
	res = run_buf(&b, CSV_ENC_AUTO, MAX_IN);
	ck_assert_int_eq(res.rc, BS_OK);
	free(res.text);

	buf_init(&b, 8 << 20);
	buf_append(&b, "a,b\n1,2\n3,", 10);
	put_repeat(&b, "x", CSV_MAX_FIELD + 1);
	res = run_buf(&b, CSV_ENC_AUTO, MAX_IN);
	ck_assert_int_eq(res.rc, BS_ELIMIT);
	ck_assert_uint_eq(res.line, 3);
	free(res.text);

	buf_init(&b, 8 << 20);
	buf_append(&b, "a,b\n\"", 5);
	put_repeat(&b, "y", CSV_MAX_FIELD);
	buf_append(&b, "\"\"\",1\n", 6);
	res = run_buf(&b, CSV_ENC_AUTO, MAX_IN);
	ck_assert_int_eq(res.rc, BS_ELIMIT);
	ck_assert_uint_eq(res.line, 2);
	free(res.text);

	buf_init(&b, 8 << 20);
	buf_append(&b, "a\n\"", 3);
	put_repeat(&b, "y\n", CSV_MAX_FIELD / 2);
	buf_append(&b, "z\"\n", 3);
	res = run_buf(&b, CSV_ENC_AUTO, MAX_IN);
	ck_assert_int_eq(res.rc, BS_ELIMIT);
	ck_assert_uint_eq(res.line, 2);
	free(res.text);

	/* the input cap, and the cap on its decoded form: 2 bytes of
	 * GB18030 become 3 of UTF-8 */
	run("a,b\n1,2\n", 8, CSV_ENC_AUTO, 8, &res);
	ck_assert_int_eq(res.rc, BS_OK);
	free(res.text);
	run("a,b\n1,2\n", 8, CSV_ENC_AUTO, 7, &res);
	ck_assert_int_eq(res.rc, BS_ELIMIT);
	free(res.text);
	buf_init(&b, 1 << 20);
	buf_append(&b, "a\n", 2);
	put_repeat(&b, "\xD5\xC5", 1000);
	res = run_buf(&b, CSV_ENC_AUTO, 2002);
	ck_assert_int_eq(res.rc, BS_ELIMIT);
	free(res.text);
	buf_init(&b, 1 << 20);
	buf_append(&b, "a\n", 2);
	put_repeat(&b, "\xD5\xC5", 1000);
	res = run_buf(&b, CSV_ENC_AUTO, 3002);
	ck_assert_int_eq(res.rc, BS_OK);
	ck_assert_int_eq(res.used, CSV_ENC_GB18030);
	free(res.text);
	buf_init(&b, 1 << 20);
	buf_append(&b, "a\n", 2);
	put_repeat(&b, "\xD5\xC5", 1000);
	res = run_buf(&b, CSV_ENC_AUTO, 3001);
	ck_assert_int_eq(res.rc, BS_ELIMIT);
	free(res.text);
}
END_TEST

/* Opens and reads all of in[0..len) without allocating itself, so that
 * the Nth allocation failing is always the reader's. */
static enum bs_status read_through(const uint8_t *in, size_t len,
				   size_t *records)
{
	struct csv_reader r;
	const char *const *f;
	const size_t *l;
	size_t n;
	unsigned long line;
	enum bs_status rc;

	*records = 0;
	rc = csv_reader_open(&r, in, len, CSV_ENC_AUTO, MAX_IN, NULL, 0);
	while (rc == BS_OK) {
		rc = csv_next_record(&r, &f, &l, &n, &line, NULL, 0);
		if (rc || n == 0)
			break;
		(*records)++;
	}
	csv_reader_release(&r);
	return rc;
}

START_TEST(allocation_failures)
{
	static const char *const names[] = {"roster-utf8-lf.csv",
					    "roster-gb18030-crlf.csv"};
	size_t v;

	for (v = 0; v < 2; v++) {
		size_t len, records;
		uint8_t *data = read_vector(names[v], &len);
		enum bs_status rc = BS_ENOMEM;
		long k;

		for (k = 0; rc == BS_ENOMEM; k++) {
			ck_assert_int_lt(k, 100);
			mem_fail_after(k);
			rc = read_through(data, len, &records);
			mem_fail_reset();
		}
		ck_assert_int_eq(rc, BS_OK);
		ck_assert_uint_eq(records, 4);
		ck_assert_int_gt(k, 1); /* some allocation was exercised */
		mem_free(data);
	}
}
END_TEST

/* Random round trip: random tables written as CSV with correct quoting
 * (and random needless quoting, line ends, empty lines, BOM), read back. */

struct table {
	size_t ncols, nrows;
	char *names[CSV_MAX_COLUMNS];
	char **cells;               /* nrows * ncols, NUL-terminated */
	unsigned long *lines;       /* expected first line of each record */
};

static const char *const pieces[] = {
	"a", "Z", "0", " ", ",", "\"", "\n", "\r\n", "\r", "张", "三", "䶮",
	"㛃", "👍", "é", "\t", "'", ";", "\"\"", "党支部",
};

static char *random_field(unsigned *seed)
{
	struct buf b;
	size_t n = (size_t)rand_r(seed) % 9, i, len;
	uint8_t *p;
	char *s;

	if (rand_r(seed) % 50 == 0)
		n = 2000; /* now and then a long one */
	buf_init(&b, 1 << 20);
	for (i = 0; i < n; i++) {
		const char *piece = pieces[(size_t)rand_r(seed) %
					   (sizeof pieces / sizeof pieces[0])];

		buf_append(&b, piece, strlen(piece));
	}
	buf_append_u8(&b, 0);
	ck_assert_int_eq(b.status, BS_OK);
	p = buf_detach(&b, &len);
	s = malloc(len);
	ck_assert_ptr_nonnull(s);
	memcpy(s, p, len);
	mem_free(p);
	return s;
}

static void write_field(struct buf *out, const char *s, int must_quote,
			unsigned *seed)
{
	const char *p;

	if (!must_quote && !strpbrk(s, ",\"\r\n") && rand_r(seed) % 5) {
		buf_append(out, s, strlen(s));
		return;
	}
	buf_append_u8(out, '"');
	for (p = s; *p; p++) {
		if (*p == '"')
			buf_append_u8(out, '"');
		buf_append_u8(out, (uint8_t)*p);
	}
	buf_append_u8(out, '"');
}

/* Counts physical lines the way csv.h defines them (LF; CR not before LF),
 * independently of the reader. */
static unsigned long count_lines(const uint8_t *p, size_t from, size_t to,
				 size_t len)
{
	unsigned long n = 0;
	size_t i;

	for (i = from; i < to; i++)
		if (p[i] == '\n' ||
		    (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n')))
			n++;
	return n;
}

static void make_table(unsigned *seed, struct table *t, struct buf *out)
{
	static const char *const breaks[] = {"\n", "\r\n", "\r"};
	size_t *starts, i, j;
	unsigned long line = 1;
	size_t last = 0;

	t->ncols = 1 + (size_t)rand_r(seed) % 12;
	t->nrows = (size_t)rand_r(seed) % 60;
	t->cells = calloc(t->nrows * t->ncols + 1, sizeof *t->cells);
	t->lines = calloc(t->nrows + 1, sizeof *t->lines);
	starts = calloc(t->nrows + 1, sizeof *starts);
	ck_assert(t->cells && t->lines && starts);
	if (rand_r(seed) % 4 == 0)
		buf_append(out, "\xEF\xBB\xBF", 3);
	for (j = 0; j < t->ncols; j++) {
		char name[64], padded[80];
		int pad = rand_r(seed) % 3;

		snprintf(name, sizeof name, "%s%zu",
			 rand_r(seed) % 2 ? "列" : "col", j);
		t->names[j] = strdup(name);
		ck_assert_ptr_nonnull(t->names[j]);
		snprintf(padded, sizeof padded, "%*s%s%*s", pad, "", name,
			 pad, "");
		if (j)
			buf_append_u8(out, ',');
		write_field(out, padded, 0, seed);
	}
	for (i = 0; i < t->nrows; i++) {
		const char *br = breaks[(size_t)rand_r(seed) % 3];

		buf_append(out, br, strlen(br));
		while (rand_r(seed) % 6 == 0) /* empty lines */
			buf_append(out, "\n", 1);
		starts[i] = out->len;
		for (j = 0; j < t->ncols; j++) {
			char *s = random_field(seed);

			t->cells[i * t->ncols + j] = s;
			if (j)
				buf_append_u8(out, ',');
			write_field(out, s, t->ncols == 1 && !*s, seed);
		}
	}
	if (rand_r(seed) % 2)
		buf_append(out, "\r\n", 2);
	ck_assert_int_eq(out->status, BS_OK);
	for (i = 0; i < t->nrows; i++) {
		line += count_lines(out->data, last, starts[i], out->len);
		last = starts[i];
		t->lines[i] = line;
	}
	free(starts);
}

static void free_table(struct table *t)
{
	size_t i;

	for (i = 0; i < t->ncols; i++)
		free(t->names[i]);
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->lines);
}

static void check_table(const struct table *t, const uint8_t *in,
			size_t len, enum csv_encoding enc,
			enum csv_encoding want_used, unsigned iter)
{
	struct csv_reader r;
	const char *const *names, *const *f;
	const size_t *l;
	size_t n, i, j;
	unsigned long line;
	char err[256];

	if (csv_reader_open(&r, in, len, enc, MAX_IN, err, sizeof err))
		ck_abort_msg("table %u: open: %s", iter, err);
	if (csv_reader_encoding(&r) != want_used)
		ck_abort_msg("table %u: read as %s", iter,
			     csv_encoding_name(csv_reader_encoding(&r)));
	names = csv_header(&r, &n);
	if (n != t->ncols)
		ck_abort_msg("table %u: %zu columns", iter, n);
	for (j = 0; j < n; j++)
		if (strcmp(names[j], t->names[j]))
			ck_abort_msg("table %u: column %zu is \"%s\"", iter, j,
				     names[j]);
	for (i = 0; i <= t->nrows; i++) {
		if (csv_next_record(&r, &f, &l, &n, &line, err, sizeof err))
			ck_abort_msg("table %u: record %zu: %s", iter, i, err);
		if (i == t->nrows) {
			if (n != 0)
				ck_abort_msg("table %u: extra record", iter);
			break;
		}
		if (n != t->ncols || line != t->lines[i])
			ck_abort_msg("table %u: record %zu: %zu fields, line "
				     "%lu (want %lu)", iter, i, n, line,
				     t->lines[i]);
		for (j = 0; j < n; j++) {
			const char *want = t->cells[i * t->ncols + j];

			if (l[j] != strlen(want) || memcmp(f[j], want, l[j]))
				ck_abort_msg("table %u: record %zu field %zu "
					     "differs", iter, i, j);
		}
	}
	csv_reader_release(&r);
}

/* UTF-8 → GB18030 with iconv, as Excel would save it. */
static uint8_t *to_gb18030(const uint8_t *in, size_t len, size_t *outlen)
{
	iconv_t cd = iconv_open("GB18030", "UTF-8");
	size_t cap = len * 2 + 16, il = len, ol = cap;
	uint8_t *out = malloc(cap);
	char *ip = (char *)in, *op = (char *)out;

	ck_assert(cd != (iconv_t)-1 && out);
	ck_assert(iconv(cd, &ip, &il, &op, &ol) != (size_t)-1);
	ck_assert_uint_eq(il, 0);
	iconv_close(cd);
	*outlen = cap - ol;
	return out;
}

START_TEST(random_roundtrip)
{
	unsigned seed = 20240601, iter;
	int some_gb = 0;

	for (iter = 0; iter < 400; iter++) {
		struct table t;
		struct buf out;
		uint8_t *gb;
		size_t gblen, skip;
		int ascii = 1;
		size_t i;

		buf_init(&out, 64 << 20);
		make_table(&seed, &t, &out);
		check_table(&t, out.data, out.len, CSV_ENC_AUTO, CSV_ENC_UTF8,
			    iter);
		check_table(&t, out.data, out.len, CSV_ENC_UTF8, CSV_ENC_UTF8,
			    iter);
		/* the same table saved as GB18030 (without the BOM) */
		skip = out.len >= 3 && !memcmp(out.data, "\xEF\xBB\xBF", 3) ?
			       3 : 0;
		for (i = skip; i < out.len; i++)
			ascii &= out.data[i] < 0x80;
		gb = to_gb18030(out.data + skip, out.len - skip, &gblen);
		check_table(&t, gb, gblen, CSV_ENC_GB18030, CSV_ENC_GB18030,
			    iter);
		check_table(&t, gb, gblen, CSV_ENC_AUTO,
			    ascii ? CSV_ENC_UTF8 : CSV_ENC_GB18030, iter);
		some_gb += !ascii;
		free(gb);
		buf_release(&out);
		free_table(&t);
	}
	ck_assert_int_gt(some_gb, 100);
}
END_TEST

static Suite *csv_suite(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, encoding_names);
	tcase_add_test(tc, header_and_rows);
	tcase_add_test(tc, quoting);
	tcase_add_test(tc, line_endings);
	tcase_add_test(tc, bom_spaces_and_empty_lines);
	tcase_add_test(tc, vectors_utf8);
	tcase_add_test(tc, vectors_gb18030);
	tcase_add_test(tc, gb18030_edge_cases);
	tcase_add_test(tc, malformed_inputs);
	tcase_add_test(tc, errors_and_end_are_sticky);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, allocation_failures);
	tcase_add_test(tc, random_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(csv_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
