/* benchsync.h - helpers of the sync benchmarks (bench_sync_*.c): runs of
 * the real branchsync and branchsyncd to their end with wall time and peak
 * memory, a district server on a loopback port, enrolled devices, the
 * byte-counting relay (tests/faultproxy) and the JSON figure line.
 * Not for tests and not a library: a helper that fails says why on stderr
 * and exits 1; the exit handler then stops every background process by its
 * pid and removes the benchmark's work directory. */
#ifndef BS_BENCHSYNC_H
#define BS_BENCHSYNC_H

#include <stddef.h>
#include <sys/types.h>

#define BENCHSYNC_PATH 512
#define BENCHSYNC_HEX_KEY 64

/* What one run of a program produced. */
struct benchsync_run {
	int code;            /* exit code, or 128 + signal */
	char *out, *err;     /* NUL-terminated, malloc'd; benchsync_run_free */
	size_t outlen, errlen;
	double seconds;      /* wall time, fork to reaped */
	long maxrss_kb;      /* the child's own peak RSS (wait4) */
};

/* A district server: data directory, public key (hex), pid (-1 when
 * stopped) and the loopback port it serves. */
struct benchsync_server {
	char dir[BENCHSYNC_PATH];
	char key[BENCHSYNC_HEX_KEY + 1];
	pid_t pid;
	int port;
};

/* Bytes the relay passed on while one command ran through it. */
struct benchsync_wire {
	long long up, down;  /* client to server, server to client */
	long connections;
};

/* Makes the work directory PARENT/NAME.XXXXXX, finds the binaries
 * ($BRANCHSYNC_BIN, $BRANCHSYNCD_BIN, $FAULTPROXY_BIN, else beside this
 * executable in the build tree) and installs the exit and signal
 * handlers. Call first. */
void benchsync_start(const char *parent, const char *name);
/* WORKDIR/NAME into out */
void benchsync_path(char *out, size_t n, const char *name);
void benchsync_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
double benchsync_now(void);

/* Runs branchsync (benchsync_bs) or branchsyncd (benchsync_bsd) with the
 * NULL-terminated arguments to its end; stdin is /dev/null. */
struct benchsync_run benchsync_bs(const char *first, ...);
struct benchsync_run benchsync_bsd(const char *first, ...);
struct benchsync_run benchsync_run_argv(const char *bin,
					const char *const *argv);
/* Exits 1 (printing what and the run's stderr) unless the run ended 0. */
void benchsync_expect_ok(const struct benchsync_run *r, const char *what);
void benchsync_run_free(struct benchsync_run *r);
/* The integer after "key": in a one-line JSON object. */
long long benchsync_json_int(const char *json, const char *key);

/* branchsyncd init in WORKDIR/NAME, `branches` branches b1, b2, ... added,
 * then serve on 127.0.0.1 (port 0, the port read back from --port-file).
 * The server gets SIGKILL if this process dies. */
void benchsync_server_start(struct benchsync_server *s, const char *name,
			    int branches);
/* SIGTERM, then waits for it. */
void benchsync_server_stop(struct benchsync_server *s);

/* WORKDIR/NAME.db made with init --no-passphrase and enrolled as a
 * `branch` device of `branch` (directly, not through the relay). */
void benchsync_device(const struct benchsync_server *s, const char *name,
		      const char *branch, char *db, size_t n);
/* Sets the replica's server_url to http://127.0.0.1:PORT, so that the next
 * commands go through a relay on that port (or straight to the server). */
void benchsync_point(const char *db, int port);

/* branchsync sync --json straight to the server; must exit 0. */
struct benchsync_run benchsync_sync(const char *db);
/* The same through a fresh counting relay, whose counts go to *w. */
struct benchsync_run benchsync_sync_counted(const struct benchsync_server *s,
					    const char *db,
					    struct benchsync_wire *w);

/* A counting relay (tests/faultproxy) in front of the server, with the
 * NULL-terminated fault options `faults` (NULL: none); its port in *port.
 * benchsync_relay_stop stops it and reads its counts into *w. */
pid_t benchsync_relay_start(const struct benchsync_server *s,
			    const char *const *faults, int *port);
void benchsync_relay_stop(pid_t pid, struct benchsync_wire *w);

/* A CSV of n members for import-csv, without ids (each row becomes a new
 * record with a random id, as an operator's roster does): Chinese names,
 * genders, birth dates, phone numbers, statuses, occupations and cities
 * drawn from a fixed pseudo-random sequence starting at row `first`, so
 * that the rows compress about as well as real ones, and every run makes
 * the same file. */
void benchsync_members_csv(const char *path, long first, long n);

/* The first column of the first row of sql on a replica (or any SQLite
 * file), as an integer. */
long long benchsync_db_int(const char *db, const char *sql);

/* The ids of the first n members of a replica, in id order, into ids
 * (32 hex digits and a NUL each); dies unless there are n. */
void benchsync_member_ids(const char *db, char (*ids)[33], int n);

double benchsync_median(double *v, int n);
/* One figure as a JSON line on stdout (scripts/bench.sh reads them);
 * baseline_name NULL prints a null baseline and ratio. */
void benchsync_figure(const char *figure, double value, const char *unit,
		      double baseline, const char *baseline_name,
		      const char *goal, int ok);

#endif
