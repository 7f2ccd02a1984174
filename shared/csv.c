/* csv.c - CSV reader for roster imports: decodes the whole input to UTF-8,
 * then walks it record by record (dialect and limits in csv.h). Not a
 * writer, and it knows nothing of tables: the importer maps columns. */
#include "csv.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "utf8.h"

static const uint8_t utf8_bom[3] = {0xEF, 0xBB, 0xBF};

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* strcasecmp depends on the locale; names and encodings must not. */
static bool ascii_caseeq(const char *a, const char *b)
{
	while (*a && ascii_lower((unsigned char)*a) ==
			     ascii_lower((unsigned char)*b)) {
		a++;
		b++;
	}
	return *a == *b;
}

enum bs_status csv_encoding_parse(const char *name, enum csv_encoding *out)
{
	if (ascii_caseeq(name, "auto"))
		*out = CSV_ENC_AUTO;
	else if (ascii_caseeq(name, "utf-8") || ascii_caseeq(name, "utf8"))
		*out = CSV_ENC_UTF8;
	else if (ascii_caseeq(name, "gb18030") || ascii_caseeq(name, "gbk"))
		*out = CSV_ENC_GB18030;
	else
		return BS_EINVALID;
	return BS_OK;
}

const char *csv_encoding_name(enum csv_encoding enc)
{
	switch (enc) {
	case CSV_ENC_UTF8:
		return "utf-8";
	case CSV_ENC_GB18030:
		return "gb18030";
	case CSV_ENC_AUTO:
		break;
	}
	return "auto";
}

__attribute__((format(printf, 3, 4)))
static enum bs_status fail(struct csv_reader *r, enum bs_status rc,
			   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	r->status = rc;
	return rc;
}

static void report(const struct csv_reader *r, char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", r->msg);
}

static bool is_break(uint8_t c) { return c == '\n' || c == '\r'; }

/* True when text[i] ends a physical line: LF, or a CR not followed by LF
 * (a CRLF counts once, at its LF). */
static bool ends_line(const uint8_t *text, size_t len, size_t i)
{
	return text[i] == '\n' ||
	       (text[i] == '\r' && (i + 1 == len || text[i + 1] != '\n'));
}

/* 1-based line of byte `off`, for decoding errors. ASCII bytes mean
 * themselves in GB18030 as in UTF-8 (its multi-byte forms never contain
 * 0x0A or 0x0D), so this counts right in the undecoded input too. */
static unsigned long line_at(const uint8_t *text, size_t len, size_t off)
{
	unsigned long line = 1;
	size_t i;

	for (i = 0; i < off && i < len; i++)
		if (ends_line(text, len, i))
			line++;
	return line;
}

/* Decodes GB18030 in[0..len) (len > 0) into a fresh allocation stored in
 * r->owned (freed by csv_reader_release), its UTF-8 length in *outlen.
 * Fails with BS_ELIMIT (output over max), BS_ENOMEM, or BS_EINVALID (bad
 * or truncated sequence: *bad is its input offset; or no converter: *bad
 * stays SIZE_MAX). Writes the message. */
static enum bs_status gb_decode(struct csv_reader *r, const uint8_t *in,
				size_t len, size_t max,
				size_t *outlen /* OUT */, size_t *bad /* OUT */)
{
	iconv_t cd = (iconv_t)-1;
	char *ip = (char *)in; /* iconv takes no const; it never writes */
	char *op;
	size_t il = len, ol, cap;
	enum bs_status rc = BS_OK;

	*bad = SIZE_MAX;
	*outlen = 0;
	/* GB18030 needs at most 3 UTF-8 bytes per 2 input bytes; E2BIG below
	 * grows the buffer should that ever be wrong. */
	cap = len > SIZE_MAX / 2 ? SIZE_MAX : len + len / 2 + 16;
	if (cap > max)
		cap = max;
	if (cap == 0) {
		rc = fail(r, BS_ELIMIT, "input is larger than %zu bytes once "
			  "decoded; split the file", max);
		goto cleanup;
	}
	cd = iconv_open("UTF-8", "GB18030");
	if (cd == (iconv_t)-1) {
		rc = fail(r, BS_EINVALID, "this system cannot decode GB18030 "
			  "(iconv: %s); save the file as \"CSV UTF-8\"",
			  strerror(errno));
		goto cleanup;
	}
	r->owned = mem_alloc(cap);
	if (!r->owned) {
		rc = fail(r, BS_ENOMEM, "out of memory while decoding GB18030");
		goto cleanup;
	}
	op = (char *)r->owned;
	ol = cap;
	while (il > 0) {
		size_t used;
		uint8_t *p;

		if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1)
			break;
		if (errno != E2BIG) {
			/* EILSEQ: bad sequence; EINVAL: cut off at the end */
			*bad = (size_t)((const uint8_t *)ip - in);
			rc = fail(r, BS_EINVALID, "line %lu: input is not "
				  "valid GB18030; check the file's encoding",
				  line_at(in, len, *bad));
			goto cleanup;
		}
		used = (size_t)((uint8_t *)op - r->owned);
		if (cap == max) {
			rc = fail(r, BS_ELIMIT, "input is larger than %zu "
				  "bytes once decoded; split the file", max);
			goto cleanup;
		}
		cap = cap > max / 2 ? max : cap * 2;
		p = mem_realloc(r->owned, cap);
		if (!p) {
			rc = fail(r, BS_ENOMEM,
				  "out of memory while decoding GB18030");
			goto cleanup;
		}
		r->owned = p;
		op = (char *)p + used;
		ol = cap - used;
	}
	*outlen = cap - ol;
cleanup:
	if (cd != (iconv_t)-1)
		iconv_close(cd);
	return rc;
}

/* Sets r->text/len to the UTF-8 form of data[0..len), BOM dropped. */
static enum bs_status decode_input(struct csv_reader *r, const uint8_t *data,
				   size_t len, enum csv_encoding enc,
				   size_t max)
{
	enum bs_status rc = BS_OK;
	size_t off, bad, outlen;
	bool guessed = enc == CSV_ENC_AUTO;

	if (len > max) {
		rc = fail(r, BS_ELIMIT, "input is larger than %zu bytes; split "
			  "the file", max);
		goto cleanup;
	}
	if (len >= 2 && ((data[0] == 0xFF && data[1] == 0xFE) ||
			 (data[0] == 0xFE && data[1] == 0xFF))) {
		rc = fail(r, BS_EINVALID, "input is UTF-16 text; save it from "
			  "Excel as \"CSV UTF-8\" instead");
		goto cleanup;
	}
	off = utf8_valid_prefix(data, len);
	if (enc == CSV_ENC_AUTO) {
		bool bom = len >= 3 && memcmp(data, utf8_bom, 3) == 0;

		enc = bom || off == len ? CSV_ENC_UTF8 : CSV_ENC_GB18030;
	}
	r->encoding = enc;
	if (enc == CSV_ENC_UTF8) {
		if (off != len) {
			rc = fail(r, BS_EINVALID, "line %lu: input is not "
				  "valid UTF-8; if Excel saved it on a Chinese "
				  "PC, read it as gb18030",
				  line_at(data, len, off));
			goto cleanup;
		}
		r->text = data;
		r->len = len;
	} else if (len > 0) {
		rc = gb_decode(r, data, len, max, &outlen, &bad);
		if (rc == BS_EINVALID && bad != SIZE_MAX && guessed)
			fail(r, rc, "input is neither UTF-8 (bad byte on line "
			     "%lu) nor GB18030 (bad byte on line %lu); save it "
			     "from Excel as \"CSV UTF-8\"",
			     line_at(data, len, off), line_at(data, len, bad));
		if (rc)
			goto cleanup;
		/* glibc's converter emits UTF-8, but we promise strict
		 * UTF-8 to callers whatever iconv does. */
		off = utf8_valid_prefix(r->owned, outlen);
		if (off != outlen) {
			rc = fail(r, BS_EINVALID, "line %lu: GB18030 decoding "
				  "produced invalid UTF-8; check the file's "
				  "encoding", line_at(r->owned, outlen, off));
			goto cleanup;
		}
		r->text = r->owned;
		r->len = outlen;
	}
	if (r->len >= 3 && memcmp(r->text, utf8_bom, 3) == 0) {
		r->text += 3;
		r->len -= 3;
	}
cleanup:
	return rc;
}

static void skip_break(struct csv_reader *r)
{
	if (r->text[r->pos] == '\r' && r->pos + 1 < r->len &&
	    r->text[r->pos + 1] == '\n')
		r->pos++;
	r->pos++;
	r->line++;
}

static enum bs_status nul_error(struct csv_reader *r, unsigned long line,
				size_t field)
{
	return fail(r, BS_EINVALID, "line %lu, field %zu: a NUL byte is not "
		    "allowed in CSV text; check the file's encoding", line,
		    field);
}

static enum bs_status long_error(struct csv_reader *r, unsigned long line,
				 size_t field)
{
	return fail(r, BS_ELIMIT, "line %lu, field %zu: field is longer than "
		    "%u bytes; shorten it", line, field, CSV_MAX_FIELD);
}

/* Appends the unquoted field at r->pos to r->rec; stops at its delimiter. */
static enum bs_status read_plain(struct csv_reader *r, unsigned long line,
				 size_t field)
{
	size_t i;

	for (i = r->pos; i < r->len; i++) {
		uint8_t c = r->text[i];

		if (c == ',' || is_break(c))
			break;
		if (c == '"')
			return fail(r, BS_EINVALID, "line %lu, field %zu: a "
				    "quote inside an unquoted field; put the "
				    "whole field in quotes and double the "
				    "quotes inside it", line, field);
		if (c == 0)
			return nul_error(r, line, field);
	}
	if (i - r->pos > CSV_MAX_FIELD)
		return long_error(r, line, field);
	buf_append(&r->rec, r->text + r->pos, i - r->pos);
	r->pos = i;
	return BS_OK;
}

/* Appends the quoted field at r->pos (on its opening quote) to r->rec,
 * unescaped; stops at its delimiter. Counts the lines it spans. */
static enum bs_status read_quoted(struct csv_reader *r, unsigned long line,
				  size_t field)
{
	size_t i = r->pos + 1, j, flen = 0;

	for (;;) {
		for (j = i; j < r->len && r->text[j] != '"'; j++) {
			if (r->text[j] == 0)
				return nul_error(r, line, field);
			if (ends_line(r->text, r->len, j))
				r->line++;
		}
		if (j - i > CSV_MAX_FIELD - flen)
			return long_error(r, line, field);
		buf_append(&r->rec, r->text + i, j - i);
		flen += j - i;
		if (j == r->len)
			return fail(r, BS_ETRUNCATED, "line %lu, field %zu: a "
				    "quoted field is still open at the end of "
				    "the input; add the missing closing quote",
				    line, field);
		if (j + 1 < r->len && r->text[j + 1] == '"') {
			if (flen == CSV_MAX_FIELD)
				return long_error(r, line, field);
			buf_append_u8(&r->rec, '"');
			flen++;
			i = j + 2;
			continue;
		}
		i = j + 1;
		break;
	}
	r->pos = i;
	if (i < r->len && r->text[i] != ',' && !is_break(r->text[i]))
		return fail(r, BS_EINVALID, "line %lu, field %zu: characters "
			    "after a closing quote; put the whole field in "
			    "quotes and double the quotes inside it", line,
			    field);
	return BS_OK;
}

/* Reads the next record into r->rec (each field followed by a NUL),
 * r->offs and r->lens, skipping empty lines before it. *nfields is 0 at
 * the end of input. A record may have at most r->ncols fields (the header:
 * CSV_MAX_COLUMNS). */
static enum bs_status read_record(struct csv_reader *r, bool header,
				  size_t *nfields /* OUT */,
				  unsigned long *line /* OUT */)
{
	size_t limit = header ? CSV_MAX_COLUMNS : r->ncols, nf = 0;
	enum bs_status rc = BS_OK;

	*nfields = 0;
	while (r->pos < r->len && is_break(r->text[r->pos]))
		skip_break(r);
	*line = r->line;
	if (r->pos == r->len)
		goto cleanup;
	buf_reset(&r->rec);
	for (;;) {
		if (nf == limit && header) {
			rc = fail(r, BS_ELIMIT, "line %lu: the header has more "
				  "than %d columns; split the file",
				  *line, CSV_MAX_COLUMNS);
			goto cleanup;
		}
		if (nf == limit) {
			rc = fail(r, BS_EINVALID, "line %lu: the record has "
				  "more fields than the header's %zu; put "
				  "fields that contain commas in quotes",
				  *line, r->ncols);
			goto cleanup;
		}
		r->offs[nf] = r->rec.len;
		if (r->pos < r->len && r->text[r->pos] == '"')
			rc = read_quoted(r, *line, nf + 1);
		else
			rc = read_plain(r, *line, nf + 1);
		if (rc)
			goto cleanup;
		r->lens[nf] = r->rec.len - r->offs[nf];
		buf_append_u8(&r->rec, 0);
		if (r->rec.status) {
			rc = fail(r, r->rec.status, "line %lu: cannot hold the "
				  "record: %s", *line,
				  bs_status_str(r->rec.status));
			goto cleanup;
		}
		nf++;
		if (r->pos == r->len)
			break;
		if (r->text[r->pos] != ',') {
			skip_break(r);
			break;
		}
		r->pos++;
	}
	*nfields = nf;
cleanup:
	return rc;
}

/* Length of s[0..n) cut to at most `max` bytes on a character boundary,
 * so that messages quoting user text stay valid UTF-8. */
static int clip_utf8(const char *s, size_t n, size_t max)
{
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	return (int)n;
}

/* Copies the record just read into r->header_data, trimmed, and checks
 * that every name is non-empty and unique. */
static enum bs_status take_header(struct csv_reader *r, size_t nf,
				  unsigned long line)
{
	enum bs_status rc = BS_OK;
	size_t i, j, o = 0;

	r->header_data = mem_alloc(r->rec.len);
	if (!r->header_data) {
		rc = fail(r, BS_ENOMEM, "out of memory while reading the "
			  "header");
		goto cleanup;
	}
	for (i = 0; i < nf; i++) {
		const char *p = (const char *)r->rec.data + r->offs[i];
		size_t n = r->lens[i];

		while (n > 0 && p[0] == ' ') {
			p++;
			n--;
		}
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == 0) {
			rc = fail(r, BS_EINVALID, "line %lu: header column %zu "
				  "has no name; give every column a name",
				  line, i + 1);
			goto cleanup;
		}
		memcpy(r->header_data + o, p, n);
		r->header_data[o + n] = '\0';
		r->names[i] = r->header_data + o;
		o += n + 1;
		for (j = 0; j < i; j++) {
			if (!ascii_caseeq(r->names[i], r->names[j]))
				continue;
			rc = fail(r, BS_EINVALID, "line %lu: header columns "
				  "%zu and %zu are both named \"%.*s\"; rename "
				  "one of them", line, j + 1, i + 1,
				  clip_utf8(r->names[i], n, 64), r->names[i]);
			goto cleanup;
		}
	}
	r->ncols = nf;
cleanup:
	return rc;
}

enum bs_status csv_reader_open(struct csv_reader *r, const uint8_t *data,
			       size_t len, enum csv_encoding enc, size_t max,
			       char *err, size_t errlen)
{
	enum bs_status rc;
	unsigned long line;
	size_t nf;

	memset(r, 0, sizeof *r);
	r->line = 1;
	r->encoding = enc;
	buf_init(&r->rec, (size_t)CSV_MAX_COLUMNS * (CSV_MAX_FIELD + 1));
	rc = decode_input(r, data, len, enc, max);
	if (rc)
		goto cleanup;
	rc = read_record(r, true, &nf, &line);
	if (rc)
		goto cleanup;
	if (nf == 0) {
		rc = fail(r, BS_EINVALID, "input is empty; the first line must "
			  "name the columns");
		goto cleanup;
	}
	rc = take_header(r, nf, line);
cleanup:
	if (rc)
		report(r, err, errlen);
	return rc;
}

enum csv_encoding csv_reader_encoding(const struct csv_reader *r)
{
	return r->encoding;
}

const char *const *csv_header(const struct csv_reader *r, size_t *ncols)
{
	*ncols = r->ncols;
	return r->names;
}

enum bs_status csv_next_record(struct csv_reader *r,
			       const char *const **fields, const size_t **lens,
			       size_t *nfields, unsigned long *line,
			       char *err, size_t errlen)
{
	enum bs_status rc = r->status;
	size_t nf, i;

	*fields = NULL;
	*lens = NULL;
	*nfields = 0;
	*line = 0;
	if (rc)
		goto cleanup;
	if (r->ncols == 0) {
		rc = fail(r, BS_ESTATE, "the CSV reader has no header; open "
			  "it first");
		goto cleanup;
	}
	rc = read_record(r, false, &nf, line);
	if (rc || nf == 0)
		goto cleanup;
	if (nf != r->ncols) {
		rc = fail(r, BS_EINVALID, "line %lu: expected %zu fields as in "
			  "the header, found %zu; add the missing commas",
			  *line, r->ncols, nf);
		goto cleanup;
	}
	for (i = 0; i < nf; i++)
		r->fields[i] = (const char *)r->rec.data + r->offs[i];
	*fields = r->fields;
	*lens = r->lens;
	*nfields = nf;
cleanup:
	if (rc)
		report(r, err, errlen);
	return rc;
}

void csv_reader_release(struct csv_reader *r)
{
	buf_release(&r->rec);
	mem_free(r->owned);
	mem_free(r->header_data);
	r->owned = NULL;
	r->header_data = NULL;
	r->text = NULL;
	r->len = 0;
	r->pos = 0;
	r->ncols = 0;
	if (!r->status)
		fail(r, BS_ESTATE, "the CSV reader was released");
}
