/* err.h - the error carried out of shared/ code to the programs: a class that
 * maps one to one onto DESIGN.md's exit codes, and one sentence for the user
 * that says what failed and, where possible, what to do next. */
#ifndef BS_ERR_H
#define BS_ERR_H

enum err_kind {
	ERR_OK = 0,
	ERR_USAGE = 1,       /* bad command line */
	ERR_INVALID = 2,     /* invalid data, refused by policy, local failure */
	ERR_UNREACHABLE = 3, /* server unreachable; nothing lost */
	ERR_VERIFY = 4,      /* a signature, hash, proof or chain check failed */
};

struct err {
	enum err_kind kind;
	char msg[512];
};

void err_init(struct err *e);
/* Records the first error only: the root cause is what the user needs. */
void err_set(struct err *e, enum err_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
