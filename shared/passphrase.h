/* passphrase.h - getting the passphrase that unlocks the device key: from
 * BRANCHSYNC_PASSPHRASE for scripts, else typed on the terminal with echo
 * off. The result only ever lives in sodium_malloc memory. Not for deciding
 * whether a passphrase is needed (keystore_is_encrypted says so). */
#ifndef BS_PASSPHRASE_H
#define BS_PASSPHRASE_H

#include "bs_status.h"

#define PASSPHRASE_ENV "BRANCHSYNC_PASSPHRASE"
#define PASSPHRASE_MAX 1024 /* bytes, not counting the terminating NUL */

/* Reads a passphrase. If BRANCHSYNC_PASSPHRASE is set it is used as is
 * (`confirm` is then moot); otherwise `prompt` (NULL: "Passphrase: ") is
 * written to /dev/tty and one line is read from it with echo off, the line
 * end not included; with `confirm` set it is asked a second time and must
 * match. The terminal settings are restored on every return, and also when
 * SIGINT, SIGTERM, SIGHUP or SIGQUIT arrive during the read: the signal is
 * then re-raised after the restore with the caller's own disposition.
 *
 * On BS_OK, *out is a NUL-terminated string in sodium_malloc memory that the
 * caller releases with passphrase_free. On failure *out is NULL and *why
 * (if `why` is not NULL) points to a static one-sentence message for the
 * user; the result is:
 *   BS_EINVALID    empty passphrase (variable or typed), a typed NUL byte,
 *                  or the two typed passphrases differ
 *   BS_ELIMIT      longer than PASSPHRASE_MAX bytes
 *   BS_ESTATE      no variable and no terminal, a terminal read error, or
 *                  interrupted by a signal
 *   BS_ETRUNCATED  end of input before anything was typed
 *   BS_ENOMEM, BS_ECRYPTO (libsodium unusable) */
enum bs_status passphrase_read(const char *prompt, int confirm,
			       char **out /* OUT */,
			       const char **why /* OUT */)
	__attribute__((warn_unused_result));

/* Wipes and frees a passphrase from passphrase_read. NULL is fine. */
void passphrase_free(char *passphrase);

#endif
