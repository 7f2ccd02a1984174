/* main.c - `branchsyncd`, the district server's command line: init, serve,
 * branch add, token, devices, revoke, report, export-log (DESIGN.md fixes
 * the names; docs/SERVER.md describes them). Each command is a short
 * function over store/srvlog/ingest; none holds protocol logic. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sodium.h>

#include "api.h"
#include "capture.h"
#include "cli.h"
#include "clock.h"
#include "config.h"
#include "devices.h"
#include "digest.h"
#include "exportlog.h"
#include "frame.h"
#include "http.h"
#include "ingest.h"
#include "mem.h"
#include "passphrase.h"
#include "records.h"
#include "report.h"
#include "schema.h"
#include "srvlog.h"
#include "store.h"

#define TOKEN_DEFAULT_HOURS 72

extern const struct cli_command srv_init, srv_serve, srv_branch_add,
	srv_token, srv_devices, srv_revoke, srv_report, srv_export_log;

static const struct cli_command *const commands[] = {
	&srv_init, &srv_serve, &srv_branch_add, &srv_token, &srv_devices,
	&srv_revoke, &srv_report, &srv_export_log,
};

static int data_dir(const struct cli_command *cmd, const char *opt,
		    const char **dir, struct err *e)
{
	const char *env = getenv("BRANCHSYNCD_DATA");

	*dir = opt && *opt ? opt : (env && *env ? env : NULL);
	if (*dir)
		return 0;
	return cli_usage(cmd, e, "no data directory given; use --data DIR or "
			 "set BRANCHSYNCD_DATA");
}

/* Opens the data directory and, when `unlock`, the server key (with the
 * passphrase from BRANCHSYNC_PASSPHRASE or the terminal if encrypted). */
static int open_store(const char *dir, int unlock, struct store **s,
		      struct err *e)
{
	char *pass = NULL;
	const char *why = NULL;
	int rc = -1;

	if (store_open(dir, s, e))
		return -1;
	if (!unlock)
		return 0;
	if (store_key_encrypted(*s) &&
	    passphrase_read("passphrase of the server key: ", 0, &pass,
			    &why) != BS_OK) {
		err_set(e, ERR_INVALID, "%s", why ? why : "no passphrase");
		goto cleanup;
	}
	rc = store_unlock(*s, pass, e);
cleanup:
	passphrase_free(pass);
	if (rc) {
		store_close(*s);
		*s = NULL;
	}
	return rc;
}

/* Runs fn inside one write transaction with the log loaded, then signs a
 * checkpoint of the result. */
static int with_log(struct store *s,
		    int (*fn)(struct store *, struct ingest *, void *,
			      struct err *),
		    void *arg, struct err *e)
{
	struct srvlog *log = NULL;
	struct ingest *in = NULL;
	struct checkpoint cp;
	int rc = -1;

	if (replica_begin(s->r, e))
		return -1;
	if (srvlog_open(s, &log, e) || ingest_new(s, log, &in, e) ||
	    fn(s, in, arg, e) ||
	    srvlog_checkpoint(log, (int64_t)clock_wall_ms(), &cp, e) ||
	    replica_commit(s->r, e))
		goto cleanup;
	rc = 0;
cleanup:
	if (rc)
		replica_rollback(s->r);
	ingest_free(in);
	srvlog_free(log);
	return rc;
}

/* ---- init ---- */

static int enroll_self(struct store *s, struct ingest *in, void *arg,
		       struct err *e)
{
	uint8_t *signed_en = NULL;
	size_t len;
	uint64_t index;
	int rc;

	(void)arg;
	rc = ingest_enroll(in, s->pk, ROLE_DISTRICT, SCHEMA_DISTRICT_SCOPE,
			   "branchsyncd", (int64_t)clock_wall_ms(), &signed_en,
			   &len, &index, e);
	mem_free(signed_en);
	return rc;
}

static int run_init(const struct cli_command *cmd, int argc, char **argv)
{
	const char *dir_opt = NULL, *district = NULL, *dir;
	int nopass = 0, npos;
	char *pass = NULL;
	const char *why = NULL;
	struct store *s = NULL;
	struct err e;
	const struct cli_opt opts[] = {{"--data", &dir_opt, NULL},
				       {"--district", &district, NULL},
				       {"--no-passphrase", NULL, &nopass},
				       {NULL, NULL, NULL}};

	err_init(&e);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e) ||
	    data_dir(cmd, dir_opt, &dir, &e))
		goto out;
	if (npos || !district || !*district) {
		cli_usage(cmd, &e, "give the district's name with --district");
		goto out;
	}
	if (strlen(district) > CHECKPOINT_ORIGIN_MAX) {
		err_set(&e, ERR_INVALID, "the district name is longer than %d "
			"bytes", CHECKPOINT_ORIGIN_MAX);
		goto out;
	}
	if (nopass)
		cli_warn("the server key is stored unencrypted (unattended "
			 "server); protect %s/%s", dir, STORE_KEY_NAME);
	else if (passphrase_read("new passphrase for the server key: ", 1,
				 &pass, &why) != BS_OK) {
		err_set(&e, ERR_INVALID, "%s (or use --no-passphrase for an "
			"unattended server)", why ? why : "no passphrase");
		goto out;
	}
	if (store_init(dir, district, pass, &s, &e) ||
	    store_unlock(s, pass, &e) || with_log(s, enroll_self, NULL, &e))
		goto out;
	fprintf(stderr, "branchsyncd: district %s initialised in %s\n",
		district, dir);
	{
		char hex[65];
		sodium_bin2hex(hex, sizeof hex, s->pk, SIGN_PUBLIC_BYTES);
		printf("%s\n", hex);
	}
out:
	passphrase_free(pass);
	store_close(s);
	return cli_finish(&e);
}

const struct cli_command srv_init = {
	"init", "create a data directory, its database and the server key",
	"usage: branchsyncd init --data DIR --district NAME [--no-passphrase]\n"
	"\n"
	"Creates DIR with the consolidated database and the server's signing\n"
	"key, and logs the server's own enrollment. Prints the server's public\n"
	"key. The key is encrypted with a passphrase (from the terminal or\n"
	"BRANCHSYNC_PASSPHRASE) unless --no-passphrase is given.\n",
	run_init};

/* ---- serve ---- */

static int split_listen(const char *listen, char *host, size_t hostlen,
			uint16_t *port)
{
	const char *colon = strrchr(listen, ':');
	char *end;
	long p;

	if (!colon || (size_t)(colon - listen) >= hostlen)
		return -1;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (*end || colon[1] == '\0' || p < 0 || p > 65535)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

static int write_port_file(const char *path, uint16_t port)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "%u\n", port);
	return fclose(f);
}

/* A decimal count in [lo, hi] for option `name`. */
static int count_opt(const struct cli_command *cmd, const char *name,
		     const char *v, long lo, long hi, unsigned *out,
		     struct err *e)
{
	char *end;
	long n;

	if (!v)
		return 0;
	n = strtol(v, &end, 10);
	if (!*v || *end || n < lo || n > hi)
		return cli_usage(cmd, e, "%s must be a number from %ld to %ld",
				 name, lo, hi);
	*out = (unsigned)n;
	return 0;
}

/* The pool serving requests: a push holds its thread until its group
 * commit, so there are many more than cores; but not one per connection:
 * hundreds of threads at once share the cores evenly, so a burst of
 * requests all finish late, where a pool answers them in turn (the load
 * bench's 99th percentile was half as long with a pool of 16 or 32 as with
 * a thread per connection on 2 cores). */
#define SERVE_THREADS_PER_CORE 16

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return SERVE_THREADS_PER_CORE * (n > 0 && n < 64 ? (unsigned)n : 1);
}

/* Each connection takes a descriptor (and, by default, a thread): the
 * soft limit on descriptors goes up to what the connections need, as far
 * as the hard limit lets it. */
static void raise_fd_limit(unsigned connections)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)connections + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
		      ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		cli_warn("only %llu file descriptors allowed: fewer than %u "
			 "connections will be served at once",
			 (unsigned long long)rl.rlim_cur, connections);
}

static int run_serve(const struct cli_command *cmd, int argc, char **argv)
{
	const char *dir_opt = NULL, *listen = NULL, *cert = NULL, *key = NULL,
		   *port_file = NULL, *threads = NULL, *max_conn = NULL, *dir;
	int quiet = 0, npos, sig;
	char host[256];
	struct http_options ho;
	struct store *s = NULL;
	struct api *a = NULL;
	struct http_server *h = NULL;
	sigset_t set;
	struct err e;
	const struct cli_opt opts[] = {{"--data", &dir_opt, NULL},
				       {"--listen", &listen, NULL},
				       {"--tls-cert", &cert, NULL},
				       {"--tls-key", &key, NULL},
				       {"--port-file", &port_file, NULL},
				       {"--threads", &threads, NULL},
				       {"--max-connections", &max_conn, NULL},
				       {"--quiet", NULL, &quiet},
				       {NULL, NULL, NULL}};

	err_init(&e);
	memset(&ho, 0, sizeof ho);
	ho.connection_limit = HTTP_DEFAULT_CONNECTION_LIMIT;
	ho.threads = default_threads();
	if (cli_parse(cmd, argc, argv, opts, &npos, &e) ||
	    data_dir(cmd, dir_opt, &dir, &e) ||
	    count_opt(cmd, "--threads", threads, 0, 1024, &ho.threads, &e) ||
	    count_opt(cmd, "--max-connections", max_conn, 1, 65536,
		      &ho.connection_limit, &e))
		goto out;
	if (threads && ho.threads > ho.connection_limit) {
		cli_usage(cmd, &e, "--threads may not exceed --max-connections");
		goto out;
	}
	if (ho.threads > ho.connection_limit)
		ho.threads = ho.connection_limit;
	ho.thread_per_connection = ho.threads == 0;
	raise_fd_limit(ho.connection_limit);
	if (npos || !listen || split_listen(listen, host, sizeof host, &ho.port)) {
		cli_usage(cmd, &e, "give the address with --listen HOST:PORT");
		goto out;
	}
	if (!cert != !key) {
		cli_usage(cmd, &e, "give both --tls-cert and --tls-key, or neither");
		goto out;
	}
	ho.host = host;
	ho.tls_cert_file = cert;
	ho.tls_key_file = key;
	ho.quiet = quiet;
	/* signals are taken by sigwait below; block them before any thread
	 * starts so that no pool thread receives them */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (open_store(dir, 1, &s, &e) || api_new(s, &a, &e) ||
	    http_server_start(&ho, api_handle, a, &h, &e))
		goto out;
	api_set_http(a, h);
	if (port_file && write_port_file(port_file, http_server_port(h))) {
		err_set(&e, ERR_INVALID, "cannot write %s", port_file);
		goto out;
	}
	fprintf(stderr, "branchsyncd: serving %s on %s://%s:%u\n", s->origin,
		cert ? "https" : "http", host, http_server_port(h));
	sigwait(&set, &sig);
	fprintf(stderr, "branchsyncd: %s received, finishing requests in "
		"flight\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
out:
	http_server_stop(h);
	api_free(a);
	store_close(s);
	return cli_finish(&e);
}

const struct cli_command srv_serve = {
	"serve", "serve the HTTP API",
	"usage: branchsyncd serve --data DIR --listen HOST:PORT\n"
	"                         [--tls-cert PEM --tls-key PEM]\n"
	"                         [--port-file FILE] [--quiet]\n"
	"                         [--max-connections N] [--threads N]\n"
	"\n"
	"Serves docs/API.md until SIGTERM or SIGINT, then stops accepting,\n"
	"finishes the requests in flight and closes the database. PORT 0 picks\n"
	"a free port; --port-file writes the port bound. One log line per\n"
	"request goes to stderr unless --quiet.\n"
	"\n"
	"At most N connections are open at once (--max-connections, 1024);\n"
	"more wait to be accepted. A pool of --threads N threads (16 per\n"
	"core) serves them; --threads 0 gives each connection a thread (and\n"
	"then connections over the limit are closed at once).\n",
	run_serve};

/* ---- branch add ---- */

struct branch_args {
	const char *id, *name, *kind, *parent, *town, *secretary, *phone;
};

/* Writes the branch row through capture (so it is a change set signed by
 * the server) and logs it, all in capture's one transaction. */
static int add_branch(struct store *s, const struct branch_args *b,
		      struct err *e)
{
	const struct schema_table *t = schema_table_find("branches");
	struct capture_signer signer = {s->pk, s->key->sk, NULL,
					clock_wall_ms()};
	struct capture *c = NULL;
	struct records *rec = NULL;
	struct srvlog *log = NULL;
	struct ingest *in = NULL;
	struct checkpoint cp;
	struct records_row row;
	const char *cols[] = {"branch_id", "name", "kind", "parent_id", "town",
			      "secretary", "phone"};
	const char *vals[] = {b->id, b->name, b->kind, b->parent, b->town,
			      b->secretary, b->phone};
	size_t i;
	int count, rc = -1;

	records_row_init(&row, t);
	for (i = 0; i < sizeof cols / sizeof cols[0]; i++)
		if (vals[i] && records_row_set(&row, cols[i], vals[i],
					       strlen(vals[i]), e))
			goto cleanup;
	if (capture_begin(s->r, &signer, &c, e) || srvlog_open(s, &log, e) ||
	    ingest_new(s, log, &in, e) || records_new(s->r->db, &rec, e))
		goto cleanup;
	records_set_capture(rec, c);
	if (records_insert(rec, b->id, &row, e) || capture_cut(c, &count, e) ||
	    ingest_own_outbox(in, (int64_t)clock_wall_ms(), e) ||
	    srvlog_checkpoint(log, (int64_t)clock_wall_ms(), &cp, e) ||
	    capture_commit(c, &count, e))
		goto cleanup;
	rc = 0;
cleanup:
	records_free(rec);
	records_row_clear(&row);
	ingest_free(in);
	srvlog_free(log);
	capture_free(c);
	return rc;
}

static int run_branch_add(const struct cli_command *cmd, int argc,
			  char **argv)
{
	const char *dir_opt = NULL, *dir;
	struct branch_args b = {0};
	struct store *s = NULL;
	struct err e;
	int npos;
	const struct cli_opt opts[] = {{"--data", &dir_opt, NULL},
				       {"--id", &b.id, NULL},
				       {"--name", &b.name, NULL},
				       {"--kind", &b.kind, NULL},
				       {"--parent", &b.parent, NULL},
				       {"--town", &b.town, NULL},
				       {"--secretary", &b.secretary, NULL},
				       {"--phone", &b.phone, NULL},
				       {NULL, NULL, NULL}};

	err_init(&e);
	if (argc < 2 || strcmp(argv[1], "add") != 0) {
		cli_usage(cmd, &e, "the only branch command is 'branch add'");
		goto out;
	}
	argc--;
	argv++;
	if (cli_parse(cmd, argc, argv, opts, &npos, &e) ||
	    data_dir(cmd, dir_opt, &dir, &e))
		goto out;
	if (npos || !b.id || !b.name || !b.kind) {
		cli_usage(cmd, &e, "give --id, --name and --kind");
		goto out;
	}
	if (open_store(dir, 1, &s, &e) || add_branch(s, &b, &e))
		goto out;
	printf("%s\n", b.id);
out:
	store_close(s);
	return cli_finish(&e);
}

const struct cli_command srv_branch_add = {
	"branch", "add a branch (a change set signed by the server)",
	"usage: branchsyncd branch add --data DIR --id ID --name NAME\n"
	"                              --kind village|enterprise|community|"
	"school|township\n"
	"                              [--parent ID] [--town T] [--secretary S]"
	" [--phone P]\n"
	"\n"
	"Writes the branch as a change set signed by the server's own key and\n"
	"logs it like any other. Prints the branch id.\n",
	run_branch_add};

/* ---- token ---- */

static int run_token(const struct cli_command *cmd, int argc, char **argv)
{
	const char *dir_opt = NULL, *role_name = NULL, *branch = NULL,
		   *hours = NULL, *dir;
	enum enrollment_role role;
	struct store *s = NULL;
	char hex[65], *end;
	long ttl = TOKEN_DEFAULT_HOURS;
	struct err e;
	int npos;
	const struct cli_opt opts[] = {{"--data", &dir_opt, NULL},
				       {"--role", &role_name, NULL},
				       {"--branch", &branch, NULL},
				       {"--hours", &hours, NULL},
				       {NULL, NULL, NULL}};

	err_init(&e);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e) ||
	    data_dir(cmd, dir_opt, &dir, &e))
		goto out;
	if (npos || !role_name || enrollment_role_parse(role_name, &role)) {
		cli_usage(cmd, &e, "give --role branch, district or auditor");
		goto out;
	}
	if ((role == ROLE_BRANCH) != (branch != NULL)) {
		cli_usage(cmd, &e, role == ROLE_BRANCH
			  ? "a branch token needs --branch ID"
			  : "only branch tokens take --branch");
		goto out;
	}
	if (hours) {
		ttl = strtol(hours, &end, 10);
		if (*end || ttl < 1 || ttl > 24 * 365) {
			cli_usage(cmd, &e, "--hours must be 1 to 8760");
			goto out;
		}
	}
	if (branch && (!schema_id_valid(branch) ||
		       strcmp(branch, SCHEMA_DISTRICT_SCOPE) == 0)) {
		err_set(&e, ERR_INVALID, "'%s' is not a valid branch id", branch);
		goto out;
	}
	if (open_store(dir, 0, &s, &e) ||
	    store_token_make(s, role, branch ? branch : SCHEMA_DISTRICT_SCOPE,
			     (int64_t)clock_wall_ms() + ttl * 3600 * 1000, hex,
			     &e))
		goto out;
	printf("%s\n", hex);
out:
	store_close(s);
	return cli_finish(&e);
}

const struct cli_command srv_token = {
	"token", "print a one-time enrollment token",
	"usage: branchsyncd token --data DIR --role branch|district|auditor\n"
	"                         [--branch ID] [--hours N]\n"
	"\n"
	"Prints a token on stdout that enrolls one device with that role (and\n"
	"branch) with 'branchsync enroll'. It works once, for N hours (72).\n",
	run_token};

/* ---- devices ---- */

static int run_devices(const struct cli_command *cmd, int argc, char **argv)
{
	const char *dir_opt = NULL, *dir;
	int json = 0, npos;
	struct store *s = NULL;
	struct buf b;
	struct err e;
	const struct cli_opt opts[] = {{"--data", &dir_opt, NULL},
				       {"--json", NULL, &json},
				       {NULL, NULL, NULL}};

	err_init(&e);
	buf_init(&b, 64u << 20);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e) ||
	    data_dir(cmd, dir_opt, &dir, &e))
		goto out;
	if (npos) {
		cli_usage(cmd, &e, "devices takes no arguments");
		goto out;
	}
	if (open_store(dir, 0, &s, &e))
		goto out;
	if (json) {
		if (devices_json(s, &b, &e) == 0)
			fwrite(b.data, 1, b.len, stdout);
	} else {
		devices_text(s, stdout, &e);
	}
out:
	buf_release(&b);
	store_close(s);
	return cli_finish(&e);
}

const struct cli_command srv_devices = {
	"devices", "list enrolled devices",
	"usage: branchsyncd devices --data DIR [--json]\n", run_devices};

/* ---- revoke ---- */

struct revoke_args {
	uint8_t key[SIGN_PUBLIC_BYTES];
	const char *reason;
};

static int revoke_one(struct store *s, struct ingest *in, void *arg,
		      struct err *e)
{
	struct revoke_args *r = arg;
	uint64_t index;

	(void)s;
	return ingest_revoke(in, r->key, r->reason, (int64_t)clock_wall_ms(),
			     &index, e);
}

static int run_revoke(const struct cli_command *cmd, int argc, char **argv)
{
	const char *dir_opt = NULL, *dir;
	struct revoke_args r = {{0}, NULL};
	struct store *s = NULL;
	size_t n = 0;
	struct err e;
	int npos;
	const struct cli_opt opts[] = {{"--data", &dir_opt, NULL},
				       {"--reason", &r.reason, NULL},
				       {NULL, NULL, NULL}};

	err_init(&e);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e) ||
	    data_dir(cmd, dir_opt, &dir, &e))
		goto out;
	if (npos != 1 || strlen(argv[0]) != 64 ||
	    sodium_hex2bin(r.key, sizeof r.key, argv[0], 64, NULL, &n, NULL) ||
	    n != sizeof r.key) {
		cli_usage(cmd, &e, "give the device's key (64 hex characters, "
			  "see 'branchsyncd devices')");
		goto out;
	}
	if (open_store(dir, 1, &s, &e) || with_log(s, revoke_one, &r, &e))
		goto out;
	fprintf(stderr, "branchsyncd: device revoked\n");
out:
	store_close(s);
	return cli_finish(&e);
}

const struct cli_command srv_revoke = {
	"revoke", "revoke a device",
	"usage: branchsyncd revoke --data DIR [--reason TEXT] DEVICE\n"
	"\n"
	"Logs a signed revocation: from then on the device can neither push\n"
	"nor pull. What it signed before stays valid and verifiable.\n",
	run_revoke};

/* ---- report ---- */

static int run_report(const struct cli_command *cmd, int argc, char **argv)
{
	const char *dir_opt = NULL, *format = NULL, *dir;
	enum report_format fmt;
	struct store *s = NULL;
	struct err e;
	int npos;
	const struct cli_opt opts[] = {{"--data", &dir_opt, NULL},
				       {"--format", &format, NULL},
				       {NULL, NULL, NULL}};

	err_init(&e);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e) ||
	    data_dir(cmd, dir_opt, &dir, &e))
		goto out;
	if (npos || report_format_parse(format ? format : "text", &fmt)) {
		cli_usage(cmd, &e, "--format is text, csv or json");
		goto out;
	}
	if (open_store(dir, 0, &s, &e))
		goto out;
	report_write(s->r->db, fmt, clock_wall_ms(), stdout, &e);
out:
	store_close(s);
	return cli_finish(&e);
}

const struct cli_command srv_report = {
	"report", "the district's figures",
	"usage: branchsyncd report --data DIR [--format text|csv|json]\n", run_report};

/* ---- export-log ---- */

static int run_export_log(const struct cli_command *cmd, int argc,
			  char **argv)
{
	const char *dir_opt = NULL, *out_path = NULL, *dir;
	struct store *s = NULL;
	struct err e;
	int npos;
	const struct cli_opt opts[] = {{"--data", &dir_opt, NULL},
				       {"--out", &out_path, NULL},
				       {NULL, NULL, NULL}};

	err_init(&e);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e) ||
	    data_dir(cmd, dir_opt, &dir, &e))
		goto out;
	if (npos || !out_path) {
		cli_usage(cmd, &e, "give the file to write with --out FILE");
		goto out;
	}
	if (open_store(dir, 1, &s, &e) || exportlog_write(s, out_path, &e))
		goto out;
	fprintf(stderr, "branchsyncd: log exported to %s\n", out_path);
out:
	store_close(s);
	return cli_finish(&e);
}

const struct cli_command srv_export_log = {
	"export-log", "write the whole log for an auditor",
	"usage: branchsyncd export-log --data DIR --out FILE\n"
	"\n"
	"Writes every log entry, the latest checkpoint, the server's public key\n"
	"and a signed digest of the consolidated records to FILE, for\n"
	"'branchsync audit --log FILE'.\n",
	run_export_log};

/* ---- dispatch ---- */

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: branchsyncd COMMAND [OPTIONS]\n\ncommands:\n");
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-11s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "\n'branchsyncd COMMAND --help' describes each command.\n"
		"Exit codes: 0 ok, 1 usage, 2 invalid data or refused, "
		"3 unreachable, 4 verification failed.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	store_global_init();
	if (sign_init() != BS_OK) {
		fprintf(stderr, "branchsyncd: libsodium could not start\n");
		return ERR_INVALID;
	}
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? ERR_USAGE : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("branchsyncd %s\n", BRANCHSYNC_VERSION);
		return 0;
	}
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[1], commands[i]->name) != 0)
			continue;
		if (cli_wants_help(argc - 1, argv + 1)) {
			fputs(commands[i]->usage, stdout);
			return 0;
		}
		return commands[i]->run(commands[i], argc - 1, argv + 1);
	}
	fprintf(stderr, "branchsyncd: unknown command '%s'; see 'branchsyncd "
		"--help'\n", argv[1]);
	return ERR_USAGE;
}
