/* passphrase.c - passphrase from the environment or the terminal without
 * echo (see passphrase.h). Not for the key derivation (keystore.c). */
#include "passphrase.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "sign.h"

#define PASSPHRASE_NO_TTY \
	"no terminal to read the passphrase from; set BRANCHSYNC_PASSPHRASE"

/* Signals that would otherwise kill us with echo still off. */
static const int passphrase_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define PASSPHRASE_NSIGNALS \
	(sizeof passphrase_signals / sizeof passphrase_signals[0])

static volatile sig_atomic_t passphrase_caught;

struct passphrase_tty {
	int fd;
	int echo_off;           /* `saved` must be put back */
	size_t handlers;        /* how many of old[] are installed */
	struct termios saved;
	struct sigaction old[PASSPHRASE_NSIGNALS];
};

static void passphrase_on_signal(int sig)
{
	passphrase_caught = sig;
}

static void passphrase_set_why(const char **why, const char *msg)
{
	if (why)
		*why = msg;
}

/* A copy of the variable's value in sodium_malloc memory. */
static enum bs_status passphrase_from_env(const char *val, char **out,
					  const char **why)
{
	size_t len = strnlen(val, PASSPHRASE_MAX + 1);
	char *p;

	if (len == 0) {
		passphrase_set_why(why, PASSPHRASE_ENV " is empty");
		return BS_EINVALID;
	}
	if (len > PASSPHRASE_MAX) {
		passphrase_set_why(why, PASSPHRASE_ENV
				   " is longer than 1024 bytes");
		return BS_ELIMIT;
	}
	p = sodium_malloc(len + 1);
	if (!p) {
		passphrase_set_why(why, "out of memory");
		return BS_ENOMEM;
	}
	memcpy(p, val, len);
	p[len] = '\0';
	*out = p;
	return BS_OK;
}

static int passphrase_write(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Puts the terminal and the signal dispositions back and closes it. There
 * is nobody left to tell if tcsetattr fails here, so it is only retried
 * when a signal interrupted it. */
static void passphrase_tty_close(struct passphrase_tty *t)
{
	size_t i;

	if (t->echo_off) {
		while (tcsetattr(t->fd, TCSAFLUSH, &t->saved) != 0 &&
		       errno == EINTR)
			;
		t->echo_off = 0;
	}
	for (i = 0; i < t->handlers; i++)
		sigaction(passphrase_signals[i], &t->old[i], NULL);
	t->handlers = 0;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

/* Opens the controlling terminal and turns echo off. The handlers go in
 * first so that a signal at any later moment finds the restore ready. */
static enum bs_status passphrase_tty_open(struct passphrase_tty *t,
					  const char **why)
{
	struct sigaction sa;
	struct termios quiet;
	enum bs_status rc = BS_OK;

	t->fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (t->fd < 0 || tcgetattr(t->fd, &t->saved) != 0) {
		passphrase_set_why(why, PASSPHRASE_NO_TTY);
		rc = BS_ESTATE;
		goto cleanup;
	}
	passphrase_caught = 0;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = passphrase_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: read() must return EINTR */
	for (t->handlers = 0; t->handlers < PASSPHRASE_NSIGNALS; t->handlers++)
		if (sigaction(passphrase_signals[t->handlers], &sa,
			      &t->old[t->handlers]) != 0)
			break;
	if (t->handlers < PASSPHRASE_NSIGNALS) {
		passphrase_set_why(why, "could not install signal handlers");
		rc = BS_ESTATE;
		goto cleanup;
	}
	quiet = t->saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	quiet.c_lflag |= ICANON;
	/* TCSAFLUSH drops type-ahead that was typed while echo was on. */
	if (tcsetattr(t->fd, TCSAFLUSH, &quiet) != 0) {
		passphrase_set_why(why, "could not turn off echo on the terminal");
		rc = BS_ESTATE;
		goto cleanup;
	}
	t->echo_off = 1;
cleanup:
	return rc;
}

/* Writes the prompt and reads one line into buf (PASSPHRASE_MAX + 1 bytes).
 * A line that is too long is still read to its end so that its rest does not
 * reach the shell once we exit. */
static enum bs_status passphrase_tty_line(struct passphrase_tty *t,
					  const char *prompt, char *buf,
					  const char **why)
{
	size_t n = 0;
	int too_long = 0, has_nul = 0;
	char c = 0;
	enum bs_status rc = BS_OK;

	if (passphrase_write(t->fd, prompt) != 0) {
		passphrase_set_why(why, "could not write to the terminal");
		rc = BS_ESTATE;
		goto cleanup;
	}
	for (;;) {
		ssize_t r;

		if (passphrase_caught) {
			passphrase_set_why(why, "interrupted by a signal");
			rc = BS_ESTATE;
			goto cleanup;
		}
		r = read(t->fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			passphrase_set_why(why, "could not read the passphrase "
					   "from the terminal");
			rc = BS_ESTATE;
			goto cleanup;
		}
		if (r == 0 || c == '\n')
			break;
		if (c == '\0')
			has_nul = 1; /* it would cut the C string short */
		if (n == PASSPHRASE_MAX)
			too_long = 1;
		else
			buf[n++] = c;
	}
	buf[n] = '\0';
	/* Echo is off, so the user's Enter did not move the cursor. */
	if (passphrase_write(t->fd, "\n") != 0) {
		passphrase_set_why(why, "could not write to the terminal");
		rc = BS_ESTATE;
		goto cleanup;
	}
	if (too_long) {
		passphrase_set_why(why, "the passphrase is longer than 1024 "
				   "bytes");
		rc = BS_ELIMIT;
	} else if (has_nul) {
		passphrase_set_why(why, "the passphrase contains a NUL byte");
		rc = BS_EINVALID;
	} else if (n == 0 && c != '\n') {
		passphrase_set_why(why, "end of input before a passphrase was "
				   "typed");
		rc = BS_ETRUNCATED;
	} else if (n == 0) {
		passphrase_set_why(why, "the passphrase is empty");
		rc = BS_EINVALID;
	}
cleanup:
	sodium_memzero(&c, sizeof c);
	return rc;
}

enum bs_status passphrase_read(const char *prompt, int confirm, char **out,
			       const char **why)
{
	struct passphrase_tty t = {.fd = -1};
	char *first = NULL, *second = NULL;
	const char *env;
	size_t len;
	int caught;
	enum bs_status rc;

	*out = NULL;
	passphrase_set_why(why, NULL);
	rc = sign_init();
	if (rc) {
		passphrase_set_why(why, "libsodium could not be initialised");
		goto cleanup;
	}
	env = getenv(PASSPHRASE_ENV);
	if (env) {
		rc = passphrase_from_env(env, out, why);
		goto cleanup;
	}
	rc = passphrase_tty_open(&t, why);
	if (rc)
		goto cleanup;
	first = sodium_malloc(PASSPHRASE_MAX + 1);
	second = confirm ? sodium_malloc(PASSPHRASE_MAX + 1) : NULL;
	if (!first || (confirm && !second)) {
		passphrase_set_why(why, "out of memory");
		rc = BS_ENOMEM;
		goto cleanup;
	}
	rc = passphrase_tty_line(&t, prompt ? prompt : "Passphrase: ", first,
				 why);
	if (rc || !confirm)
		goto cleanup;
	rc = passphrase_tty_line(&t, "Repeat the passphrase: ", second, why);
	if (rc)
		goto cleanup;
	len = strlen(first);
	if (len != strlen(second) || sodium_memcmp(first, second, len) != 0) {
		passphrase_set_why(why, "the passphrases do not match");
		rc = BS_EINVALID;
		goto cleanup;
	}
cleanup:
	passphrase_tty_close(&t);
	if (second)
		sodium_free(second);
	if (first && rc == BS_OK) {
		*out = first;
		first = NULL;
	}
	if (first)
		sodium_free(first);
	/* Now that echo is back, let the signal do what the caller wanted. */
	caught = passphrase_caught;
	passphrase_caught = 0;
	if (caught)
		raise(caught);
	return rc;
}

void passphrase_free(char *passphrase)
{
	/* sodium_free zeroes the whole block before releasing it. */
	if (passphrase)
		sodium_free(passphrase);
}
