/* cli.c - option parsing, error reporting and output encoders shared by the
 * commands of branchsync and branchsyncd (see cli.h). Not for command logic. */
#define _GNU_SOURCE /* program_invocation_short_name */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "utf8.h"

static const struct cli_opt *find_opt(const struct cli_opt *opts,
				      const char *arg, size_t namelen)
{
	for (; opts && opts->name; opts++)
		if (strlen(opts->name) == namelen &&
		    strncmp(opts->name, arg, namelen) == 0)
			return opts;
	return NULL;
}

int cli_usage(const struct cli_command *cmd, struct err *e, const char *fmt,
	      ...)
{
	char msg[sizeof e->msg];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	err_set(e, ERR_USAGE, "%s; see '%s %s --help'", msg,
		program_invocation_short_name,
		cmd->name);
	return -1;
}

int cli_wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

/* Echoes an option name in a message: at most 40 bytes, controls as '?'. */
static void shown_arg(char *dst, size_t size, const char *arg, size_t len)
{
	size_t i;

	if (len > 40)
		len = 40;
	for (i = 0; i < len && i + 1 < size; i++)
		dst[i] = (unsigned char)arg[i] < 0x20 ? '?' : arg[i];
	dst[i] = '\0';
}

int cli_parse(const struct cli_command *cmd, int argc, char **argv,
	      const struct cli_opt *opts, int *npos, struct err *e)
{
	int i, n = 0, only_pos = 0;

	*npos = 0;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq;
		const struct cli_opt *o;
		size_t namelen;
		char shown[48];

		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			argv[n++] = argv[i];
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = 1;
			continue;
		}
		eq = strchr(arg, '=');
		namelen = eq ? (size_t)(eq - arg) : strlen(arg);
		o = arg[1] == '-' ? find_opt(opts, arg, namelen) : NULL;
		shown_arg(shown, sizeof shown, arg, namelen);
		if (!o)
			return cli_usage(cmd, e, "unknown option '%s' for %s",
					 shown, cmd->name);
		if (o->flag) {
			if (eq)
				return cli_usage(cmd, e, "option %s takes no "
						 "value", o->name);
			if (*o->flag)
				return cli_usage(cmd, e, "option %s is given "
						 "twice", o->name);
			*o->flag = 1;
			continue;
		}
		if (*o->value)
			return cli_usage(cmd, e, "option %s is given twice",
					 o->name);
		if (eq) {
			*o->value = eq + 1;
		} else if (i + 1 < argc) {
			*o->value = argv[++i];
		} else {
			return cli_usage(cmd, e, "option %s needs a value",
					 o->name);
		}
	}
	*npos = n;
	return 0;
}

int cli_fail(const struct err *e)
{
	fprintf(stderr, "%s: %s\n", program_invocation_short_name,
		e->msg[0] ? e->msg : "failed for an unknown reason");
	return e->kind == ERR_OK ? ERR_INVALID : (int)e->kind;
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: warning: ", program_invocation_short_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_finish(struct err *e)
{
	if (e->kind != ERR_OK)
		return cli_fail(e);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		err_set(e, ERR_INVALID, "cannot write the output; check the "
			"disk or the program reading it");
		return cli_fail(e);
	}
	return 0;
}

void cli_json_append(struct buf *b, const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;
	char esc[8];

	buf_append_u8(b, '"');
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_decode(p + i, len - i, &cp);

		if (n == 0) {
			buf_append(b, "\xef\xbf\xbd", 3); /* U+FFFD */
			i++;
			continue;
		}
		if (cp == '"' || cp == '\\') {
			buf_append_u8(b, '\\');
			buf_append_u8(b, (uint8_t)cp);
		} else if (cp == '\n') {
			buf_append(b, "\\n", 2);
		} else if (cp == '\t') {
			buf_append(b, "\\t", 2);
		} else if (cp == '\r') {
			buf_append(b, "\\r", 2);
		} else if (cp < 0x20 || cp == 0x7f) {
			snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
			buf_append(b, esc, 6);
		} else {
			buf_append(b, p + i, n);
		}
		i += n;
	}
	buf_append_u8(b, '"');
}

void cli_json_string(FILE *f, const char *s, size_t len)
{
	struct buf b;

	/* escaping at most sextuples a byte */
	buf_init(&b, len * 6 + 2);
	cli_json_append(&b, s, len);
	if (b.status == BS_OK)
		fwrite(b.data, 1, b.len, f);
	else
		fputs("\"\"", f);
	buf_release(&b);
}

void cli_csv_field(FILE *f, const char *s, size_t len)
{
	size_t i;
	int quote = len > 0 && (s[0] == ' ' || s[len - 1] == ' ');

	for (i = 0; i < len && !quote; i++)
		if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
			quote = 1;
	if (!quote) {
		fwrite(s, 1, len, f);
		return;
	}
	fputc('"', f);
	for (i = 0; i < len; i++) {
		if (s[i] == '"')
			fputc('"', f);
		fputc(s[i], f);
	}
	fputc('"', f);
}

void cli_text_field(FILE *f, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '\\':
			fputs("\\\\", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			fputc(s[i], f);
			break;
		}
	}
}

void cli_hex(FILE *f, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

void cli_time_ms(int64_t ms, char out[CLI_TIME_MAX])
{
	int64_t secs = ms / 1000, frac = ms % 1000;
	struct tm tm;
	time_t t;

	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	t = (time_t)secs;
	if (!gmtime_r(&t, &tm)) {
		snprintf(out, CLI_TIME_MAX, "%lld ms", (long long)ms);
		return;
	}
	snprintf(out, CLI_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)frac);
}
