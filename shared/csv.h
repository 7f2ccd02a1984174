/* csv.h - reads the CSV rosters that branch secretaries keep in Excel
 * (RFC 4180, header row, UTF-8 with or without BOM, or GB18030/GBK) and hands
 * out records as UTF-8 fields. Takes bytes: reading the file (fsutil_read_all)
 * and mapping columns onto tables are the caller's job. Not a CSV writer.
 *
 * The accepted dialect, precisely:
 *  - Encoding. The whole input is decoded up front into UTF-8 (see
 *    enum csv_encoding). A leading U+FEFF (byte order mark) is dropped in
 *    every encoding. Input that starts with FF FE or FE FF (UTF-16) is
 *    refused. After decoding the text must be strict UTF-8 (utf8.h).
 *  - Records end at CRLF, LF, or a lone CR (old Mac line ends; a CR never
 *    appears inside an unquoted field). The line break after the last record
 *    is optional. Lines with no characters at all (before the header or
 *    between records) are skipped, so a record of one empty field must be
 *    written as "" to be kept.
 *  - Fields are separated by commas. A field that starts with a double quote
 *    is quoted: it ends at the next quote not doubled, "" stands for one
 *    quote, and it may hold commas and line breaks (kept byte for byte, so
 *    a CRLF inside a quoted field stays CRLF). After the closing quote comes
 *    a comma, a line break or the end of input, nothing else. A quote
 *    anywhere inside an unquoted field is an error (so is a quote after
 *    leading spaces: spaces are data).
 *  - Field values are never trimmed: spaces stay as written. Header names are
 *    trimmed of surrounding U+0020 spaces; after trimming each must be
 *    non-empty and unique, compared ASCII case-insensitively (the names
 *    become SQL column names, which SQLite compares that way).
 *  - Every record has exactly as many fields as the header. A NUL byte is
 *    an error anywhere.
 *  - Limits: at most CSV_MAX_COLUMNS columns, CSV_MAX_FIELD bytes per field
 *    (after decoding and unquoting), and the caller's `max` for the input
 *    and for its UTF-8 form.
 * Line numbers in messages are 1-based physical lines of the decoded text
 * (a line break inside a quoted field starts a new line) and name the line
 * where the offending record starts. For users: docs/csv-import.md. */
#ifndef BS_CSV_H
#define BS_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"

#define CSV_MAX_COLUMNS 256
#define CSV_MAX_FIELD (1u << 20)
/* A sensible `max` for csv_reader_open and fsutil_read_all. */
#define CSV_DEFAULT_MAX_INPUT ((size_t)256 << 20)

enum csv_encoding {
	/* UTF-8 BOM → UTF-8; else valid UTF-8 → UTF-8; else GB18030; else
	 * error. Plain ASCII reads the same either way. */
	CSV_ENC_AUTO,
	CSV_ENC_UTF8,
	/* GB18030, a superset of GBK and GB2312: what Excel writes as "CSV"
	 * on a Chinese Windows. Decoded with iconv(3). */
	CSV_ENC_GB18030,
};

/* Parses an encoding name: "auto", "utf-8" or "utf8", "gb18030", or "gbk"
 * (read as GB18030, its superset); ASCII case-insensitive. Returns BS_OK, or
 * BS_EINVALID for any other name (leaving *out untouched). */
enum bs_status csv_encoding_parse(const char *name,
				  enum csv_encoding *out /* OUT */);

/* Returns "auto", "utf-8" or "gb18030"; never NULL. */
const char *csv_encoding_name(enum csv_encoding enc);

/* Reader state; treat as opaque and use the functions below. */
struct csv_reader {
	const uint8_t *text;      /* UTF-8: the caller's bytes or `owned` */
	size_t len;
	size_t pos;
	uint8_t *owned;           /* decoded copy, or NULL when borrowing */
	unsigned long line;       /* physical line at `pos` */
	enum csv_encoding encoding;
	enum bs_status status;    /* sticky: first error, or BS_OK */
	char msg[256];            /* message for `status` */
	size_t ncols;
	char *header_data;        /* owned: the trimmed names, NUL-separated */
	const char *names[CSV_MAX_COLUMNS];
	struct buf rec;           /* fields of the current record, each + NUL */
	size_t offs[CSV_MAX_COLUMNS];
	size_t lens[CSV_MAX_COLUMNS];
	const char *fields[CSV_MAX_COLUMNS];
};

/* Decodes data[0..len) as `enc` and reads the header row. The reader may
 * keep pointers into `data` (when it already is UTF-8), so `data` must stay
 * valid and unchanged until csv_reader_release. It allocates the decoded
 * text and the header; csv_reader_release frees them, and must be called
 * whatever this returns.
 * Fails with BS_ELIMIT (input or its UTF-8 form over `max`, too many columns,
 * a field too long), BS_EINVALID (not in the encoding, empty input, a
 * malformed or empty or duplicate header name, UTF-16), BS_ETRUNCATED (the
 * header ends inside quotes) or BS_ENOMEM; a one-sentence message for the
 * user, naming the line, then goes to err (if err != NULL and errlen > 0). */
enum bs_status csv_reader_open(struct csv_reader *r, const uint8_t *data,
			       size_t len, enum csv_encoding enc, size_t max,
			       char *err, size_t errlen);

/* The encoding the input was actually read as (never CSV_ENC_AUTO once
 * csv_reader_open succeeded). */
enum csv_encoding csv_reader_encoding(const struct csv_reader *r);

/* The trimmed, NUL-terminated header names (owned by the reader, valid until
 * csv_reader_release); *ncols is their count (0 if open failed). */
const char *const *csv_header(const struct csv_reader *r,
			      size_t *ncols /* OUT */);

/* Reads the next record. On BS_OK, either *nfields == csv_header's ncols and
 * fields[i] (NUL-terminated, no NUL inside) / lens[i] hold the record, whose
 * first line is *line; or *nfields == 0 and *fields == NULL: the input is
 * exhausted (and stays so). The fields are owned by the reader and valid
 * until the next call or csv_reader_release.
 * Fails with BS_EINVALID (bad quoting, wrong field count, NUL), BS_ETRUNCATED
 * (input ends inside quotes), BS_ELIMIT (field too long) or BS_ENOMEM,
 * writing a message that starts with "line N" to err; *line is then the
 * failing record's first line (0 when unknown). Errors are sticky: later
 * calls fail the same way. */
enum bs_status csv_next_record(struct csv_reader *r,
			       const char *const **fields /* OUT */,
			       const size_t **lens /* OUT */,
			       size_t *nfields /* OUT */,
			       unsigned long *line /* OUT */,
			       char *err, size_t errlen);

/* Frees everything the reader allocated; safe on a zero-filled reader, on
 * one whose open failed, and twice. Does not touch the caller's bytes. */
void csv_reader_release(struct csv_reader *r);

#endif
