/* bench_audit.c - audit speed: `branchsync audit --log` over an exported log
 * of 100,000 change sets (one member row each, pushed through the server's
 * real ingest into a real data directory, then exported), in change sets
 * verified and replayed per second, beside the bare Ed25519 verification
 * rate of the same signatures on the same machine in the same run (one
 * core). One JSON object per figure on stdout. Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "capture.h"
#include "changeset.h"
#include "clock.h"
#include "exportlog.h"
#include "ingest.h"
#include "mem.h"
#include "srvlog.h"
#include "store.h"

#define SETS 100000
#define BATCH 500

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const struct err *e)
{
	fprintf(stderr, "bench: %s\n", e->msg);
	exit(1);
}

/* Makes, signs and ingests SETS one-row change sets, then exports. */
static void build_log(const char *dir, const char *out, uint8_t **sigs_env,
		      size_t *env_lens, uint8_t (*sigs)[64], uint8_t *pk)
{
	struct replica *r = NULL;
	uint8_t sk[64];
	struct capture_signer signer = {pk, sk, NULL, 1790000000000ull};
	struct capture *c = NULL;
	struct store *s = NULL;
	struct srvlog *log = NULL;
	struct ingest *in = NULL;
	struct ingest_outcome o;
	struct checkpoint cp;
	sqlite3_stmt *st;
	uint8_t *en = NULL;
	size_t en_len;
	uint64_t idx;
	struct err e;
	char sql[256];
	int i, count;

	err_init(&e);
	crypto_sign_keypair(pk, sk);
	if (replica_open(":memory:", REPLICA_MEMORY, &r, &e) ||
	    store_init(dir, "Bench", NULL, &s, &e) || store_unlock(s, NULL, &e) ||
	    srvlog_open(s, &log, &e) || ingest_new(s, log, &in, &e) ||
	    replica_begin(s->r, &e) ||
	    /* entry 0 is the server's own enrollment, as branchsyncd init
	     * writes it */
	    ingest_enroll(in, s->pk, ROLE_DISTRICT, "district", "branchsyncd",
			  (int64_t)clock_wall_ms(), &en, &en_len, &idx, &e))
		die(&e);
	mem_free(en);
	if (ingest_enroll(in, pk, ROLE_DISTRICT, "district", "bench",
			  (int64_t)clock_wall_ms(), &en, &en_len, &idx, &e))
		die(&e);
	mem_free(en);
	for (i = 0; i < SETS; i++) {
		struct changeset cs;

		if (capture_begin(r, &signer, &c, &e))
			die(&e);
		snprintf(sql, sizeof sql, "INSERT INTO members(id, branch_id, name,"
			 " status) VALUES('%032x', 'b%d', 'member %d', 'active')",
			 i, i % 100, i);
		sqlite3_exec(r->db, sql, NULL, NULL, NULL);
		if (capture_commit(c, &count, &e))
			die(&e);
		capture_free(c);
		signer.wall_ms += 1;
		sqlite3_prepare_v2(r->db, "SELECT bytes FROM bs_outbox WHERE seq=?1",
				   -1, &st, NULL);
		sqlite3_bind_int(st, 1, i + 1);
		sqlite3_step(st);
		if (changeset_decode(sqlite3_column_blob(st, 0),
				     (size_t)sqlite3_column_bytes(st, 0), &cs))
			exit(1);
		/* keep the signing inputs for the bare verification baseline */
		env_lens[i] = cs.env_len;
		sigs_env[i] = mem_alloc(cs.env_len);
		memcpy(sigs_env[i], cs.env_bytes, cs.env_len);
		memcpy(sigs[i], cs.sig, 64);
		if (ingest_changeset(in, sqlite3_column_blob(st, 0),
				     (size_t)sqlite3_column_bytes(st, 0), 0,
				     (int64_t)clock_wall_ms(), &o, &e))
			die(&e);
		sqlite3_finalize(st);
		if ((i + 1) % BATCH == 0 &&
		    (srvlog_checkpoint(log, (int64_t)clock_wall_ms(), &cp, &e) ||
		     replica_commit(s->r, &e) || replica_begin(s->r, &e)))
			die(&e);
		/* the scratch replica's outbox is not needed once ingested */
		if ((i + 1) % BATCH == 0)
			sqlite3_exec(r->db, "DELETE FROM bs_outbox", NULL, NULL, NULL);
	}
	if (srvlog_checkpoint(log, (int64_t)clock_wall_ms(), &cp, &e) ||
	    replica_commit(s->r, &e))
		die(&e);
	ingest_free(in);
	srvlog_free(log);
	if (exportlog_write(s, out, &e))
		die(&e);
	store_close(s);
	replica_close(r);
}

/* Bare Ed25519: the same signatures over the same signing inputs. */
static double bare_verify_rate(uint8_t **env, const size_t *lens,
			       uint8_t (*sigs)[64], const uint8_t *pk)
{
	double t0 = now_s();
	int i, ok = 0;

	for (i = 0; i < SETS; i++)
		ok += sign_verify(SIGN_CHANGESET, env[i], lens[i], sigs[i], pk) ==
		      BS_OK;
	if (ok != SETS)
		exit(1);
	return SETS / (now_s() - t0);
}

static double audit_rate(const char *bin, const char *log)
{
	double t0 = now_s();
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		freopen("/dev/null", "w", stdout);
		execl(bin, bin, "audit", "--log", log, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench: audit failed\n");
		exit(1);
	}
	return SETS / (now_s() - t0);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	const char *bin = getenv("BRANCHSYNC_BIN");
	static uint8_t *env[SETS];
	static size_t lens[SETS];
	static uint8_t sigs[SETS][64];
	uint8_t pk[32];
	char data[512], log[512], cmd[600];
	double bare[3], aud[3], t;
	int i, j;

	if (!bin || sodium_init() < 0) {
		fprintf(stderr, "bench: set BRANCHSYNC_BIN\n");
		return 1;
	}
	snprintf(data, sizeof data, "%s/bench-audit-data", dir);
	snprintf(log, sizeof log, "%s/bench-audit.log", dir);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", data);
	if (system(cmd) != 0)
		return 1;
	build_log(data, log, env, lens, sigs, pk);
	for (i = 0; i < 3; i++) {
		bare[i] = bare_verify_rate(env, lens, sigs, pk);
		aud[i] = audit_rate(bin, log);
	}
	for (i = 0; i < 3; i++)
		for (j = i + 1; j < 3; j++) {
			if (bare[j] < bare[i]) {
				t = bare[i]; bare[i] = bare[j]; bare[j] = t;
			}
			if (aud[j] < aud[i]) {
				t = aud[i]; aud[i] = aud[j]; aud[j] = t;
			}
		}
	printf("{\"figure\": \"audit of 100,000 change sets, sets/s\", "
	       "\"value\": %.0f, \"unit\": \"/s\", \"baseline\": %.0f, "
	       "\"baseline_name\": \"bare Ed25519 verifications/s, one core\", "
	       "\"ratio\": %.3f, \"goal\": \">= 10000 sets/s\", \"ok\": %s}\n",
	       aud[1], bare[1], aud[1] / bare[1], aud[1] >= 10000 ? "true" : "false");
	for (i = 0; i < SETS; i++)
		mem_free(env[i]);
	unlink(log);
	if (system(cmd) != 0)
		return 1;
	return 0;
}
