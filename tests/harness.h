/* harness.h - helpers for the tests that drive the real programs: runs of
 * branchsync and branchsyncd with their output collected, background
 * processes, a district server on a loopback port, enrolled devices, and
 * looks into replica and server files. Compiled into those tests only;
 * every helper fails the running Check test (ck_assert) rather than
 * returning an error. */
#ifndef BS_HARNESS_H
#define BS_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "sign.h"

#define HARNESS_MAX_ARGS 40
#define HARNESS_HEX_KEY 64
#define HARNESS_PATH 512

/* What one run of a program produced. */
struct harness_run {
	int code;            /* exit code, or 128 + signal */
	char *out, *err;     /* NUL-terminated, malloc'd; harness_run_free */
	size_t outlen, errlen;
	double seconds;
};

/* A district server made by harness_server_init: its data directory,
 * public key (hex), and the process serving it (pid -1 when stopped). */
struct harness_server {
	char dir[HARNESS_PATH];
	char key[HARNESS_HEX_KEY + 1];
	char log[HARNESS_PATH], port_file[HARNESS_PATH];
	pid_t pid;
	int port;
};

/* ---- directories: one root per test program, one directory per test ---- */

/* Unchecked fixture pair: makes and removes the root under $TMPDIR. */
void harness_root_setup(void);
void harness_root_teardown(void);
/* Checked fixture pair: a fresh directory under the root; the teardown
 * kills every background process still running and removes it. */
void harness_tmp_setup(void);
void harness_tmp_teardown(void);
const char *harness_root(void);
/* tmp/NAME into out */
void harness_path(char *out, size_t n, const char *name);
/* snprintf that fails the test rather than truncate */
void harness_fmt(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- processes ---- */

double harness_now(void);
void harness_run_free(struct harness_run *r);
/* Runs bin with argv (argv[0] the program's name, NULL-terminated) to its
 * end: no stdin, no controlling terminal. */
struct harness_run harness_run_argv(const char *bin, const char *const *argv);
/* $BRANCHSYNC_BIN and $BRANCHSYNCD_BIN with NULL-terminated arguments:
 * harness_bs("sync", "--db", db, NULL). */
struct harness_run harness_bs(const char *first, ...);
struct harness_run harness_bsd(const char *first, ...);
void harness_expect_code(const struct harness_run *r, int code);
/* The first line of stdout, without its newline. */
void harness_first_line(const struct harness_run *r, char *out, size_t n);
/* The value of "key": in a one-line JSON object (numbers only). */
long long harness_json_int(const char *json, const char *key);

/* Starts bin in the background (stdin /dev/null, stdout and stderr
 * appended to log, or /dev/null when log is NULL); it gets SIGKILL if the
 * test process dies, and harness_tmp_teardown kills it if still running. */
pid_t harness_spawn(const char *bin, const char *const *argv,
		    const char *log);
/* Waits for a spawned process; returns its exit code or 128 + signal. */
int harness_wait(pid_t pid);
/* Like harness_wait, but gives up after `seconds`: returns -1 then (the
 * process keeps running). */
int harness_wait_for(pid_t pid, double seconds);
/* Whether a spawned process has not ended yet (it is not reaped). */
int harness_running(pid_t pid);
/* Sends sig and waits; returns as harness_wait. */
int harness_kill(pid_t pid, int sig);
/* Waits (up to `seconds`) for pid to write a port number to `file`;
 * returns it, or 0 if pid ended first (not reaped: harness_wait does
 * that) or time ran out. */
int harness_port_wait(const char *file, pid_t pid, double seconds);

/* ---- the server ---- */

/* branchsyncd init in `dir` (district "Test"), with branches b1 and b2. */
void harness_server_init(struct harness_server *s, const char *dir);
/* Serves on `port` (0: a random free one below the ephemeral range, so
 * that while it is stopped no other test's server takes it); its output
 * goes to DIR.log, its port to DIR.port. */
void harness_server_start(struct harness_server *s, int port);
/* SIGTERM; it must end with exit 0. */
void harness_server_stop(struct harness_server *s);
/* SIGKILL: a crash. */
void harness_server_kill(struct harness_server *s);
void harness_server_url(const struct harness_server *s, char *out, size_t n);
void harness_token(const struct harness_server *s, const char *role,
		   const char *branch, char out[HARNESS_HEX_KEY + 1]);

/* ---- devices ---- */

/* branchsync init --no-passphrase; the device id goes to id (if not
 * NULL). */
void harness_device_init(const char *db, char id[HARNESS_HEX_KEY + 1]);
/* init and enroll with role (and branch) directly at the server. */
void harness_device(const struct harness_server *s, const char *db,
		    const char *role, const char *branch,
		    char id[HARNESS_HEX_KEY + 1]);
/* branchsync put DB TABLE ARGS... NULL; the row id goes to id (if not
 * NULL, 65 bytes). */
void harness_put(const char *db, char *id, const char *table, ...);
void harness_import(const char *db, const char *table, const char *csv);
/* Points a replica's sync at http://127.0.0.1:port (the signatures cover
 * path and query, not the host, so a relay in between is invisible). */
void harness_point_at(const char *db, int port);

/* ---- files ---- */

/* Read-only unless `writable`; fails the test if it cannot open. */
sqlite3 *harness_db_open(const char *path, int writable);
/* The first column of the first row of sql, read-only. */
long long harness_db_int(const char *path, const char *sql);
void harness_db_exec(const char *path, const char *sql);
/* PRAGMA integrity_check must say "ok". */
void harness_integrity_ok(const char *path);
/* The canonical digest (shared/digest.h) of a replica, read-only. */
void harness_digest(const char *path, uint8_t out[HASH_BYTES]);
/* The digest of the records of db as a device of `scope` sees them: its
 * own scope and the district's. `scratch` is a path for a copy. */
void harness_digest_scope(const char *path, const char *scope,
			  const char *scratch, uint8_t out[HASH_BYTES]);
void harness_digest_eq(const uint8_t a[HASH_BYTES],
		       const uint8_t b[HASH_BYTES], const char *what);
void harness_copy_file(const char *from, const char *to);
/* Copies the regular files of `from` into `to` (made if need be),
 * replacing what `to` held. */
void harness_copy_dir(const char *from, const char *to);
void harness_rm_tree(const char *path);

#endif
