/* cli.h - what every command of branchsync and branchsyncd shares: the command table, option
 * parsing, errors and exit codes, and writers for the machine formats (JSON
 * strings, CSV fields, hex). Not for any one command's logic, which lives in
 * cmd_*.c. Output contracts: docs/CLI.md. */
#ifndef BS_CLI_H
#define BS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "err.h"

/* One command of `branchsync`. */
struct cli_command {
	const char *name;
	const char *summary;   /* one line for `branchsync --help` */
	const char *usage;     /* the text `branchsync NAME --help` prints */
	/* argv[0] is the command name; returns the exit code. */
	int (*run)(const struct cli_command *cmd, int argc, char **argv);
};

/* An option a command accepts: either `value` (the option takes a value,
 * given as "--opt VALUE" or "--opt=VALUE") or `flag` (set to 1). A list of
 * options ends with an entry whose name is NULL. */
struct cli_opt {
	const char *name;      /* "--db" */
	const char **value;
	int *flag;
};

/* Parses argv[1..argc) of `cmd`: options per `opts`, everything else
 * positional (after "--" everything is). The positionals are moved to
 * argv[0..*npos) in their order (argv[0], the command name, is overwritten);
 * option values point into argv. Fails with ERR_USAGE for an unknown or
 * repeated option or a missing value. Allocates nothing. */
int cli_parse(const struct cli_command *cmd, int argc, char **argv,
	      const struct cli_opt *opts, int *npos /* OUT */, struct err *e);

/* 1 if argv[1..argc) asks for help ("--help" or "-h" before any "--"). */
int cli_wants_help(int argc, char **argv);

/* Sets e to a usage error about `cmd` with the text of fmt, followed by a
 * pointer to the command's --help. Returns -1. */
int cli_usage(const struct cli_command *cmd, struct err *e, const char *fmt,
	      ...) __attribute__((format(printf, 3, 4)));

/* Prints "PROGRAM: MSG" on stderr (PROGRAM: branchsync or branchsyncd) and returns e->kind, the exit code. */
int cli_fail(const struct err *e);

/* Prints "PROGRAM: warning: ..." on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports an error already in e (cli_fail), or flushes stdout; a write error (full disk, closed pipe) becomes ERR_INVALID
 * so that a script never takes truncated output for success. Returns the
 * exit code: 0, or cli_fail's. */
int cli_finish(struct err *e);

/* Appends `len` bytes as a JSON string with its quotes to b (same rules as
 * cli_json_string). */
void cli_json_append(struct buf *b, const char *s, size_t len);
/* Writes `len` bytes as a JSON string with its quotes. Invalid UTF-8 bytes
 * become U+FFFD so the output is always valid JSON. */
void cli_json_string(FILE *f, const char *s, size_t len);
/* Writes a field of RFC 4180 CSV, quoted when it holds a comma, a quote,
 * CR or LF, or starts or ends with a space. */
void cli_csv_field(FILE *f, const char *s, size_t len);
/* Writes a value for the tab-separated and "column: value" text outputs:
 * backslash, tab, LF and CR become \\, \t, \n and \r so that a value stays
 * on one line. */
void cli_text_field(FILE *f, const char *s, size_t len);
/* Writes n bytes as lowercase hex. */
void cli_hex(FILE *f, const uint8_t *p, size_t n);

/* Bytes cli_time_ms writes, NUL included: "YYYY-MM-DDTHH:MM:SS.mmmZ". */
#define CLI_TIME_MAX 64
/* Formats Unix milliseconds as UTC ISO 8601 with milliseconds. */
void cli_time_ms(int64_t ms, char out[CLI_TIME_MAX]);

#endif
