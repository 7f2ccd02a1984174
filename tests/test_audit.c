/* test_audit.c - Check suite 'audit': builds a small honest district with a
 * real branchsyncd ($BRANCHSYNCD_BIN) and real branchsync processes
 * ($BRANCHSYNC_BIN): two branches, several devices, puts and updates, a
 * change set refused as out of scope (made by a device that ignores its own
 * policy, with shared/capture), a revocation. Then `branchsync audit`: the
 * honest log passes from an export and from the server with an auditor
 * enrollment; every tampering is caught with exit 4 and a message naming
 * the entry: flipped bytes (signature, body, enrollment, checkpoint,
 * digest), a deleted entry, swapped entries, an entry by an unknown key, a
 * re-signed enrollment, a record changed in the server's database, a
 * revoked device's write with the checkpoint and digest re-signed by the
 * server's own key, and a server that forks its log between two audits.
 * A synthetic log of several thousand change sets crosses batch and thread
 * boundaries. */
#include <check.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "capture.h"
#include "changeset.h"
#include "checkpoint.h"
#include "clock.h"
#include "digest.h"
#include "enrollment.h"
#include "err.h"
#include "frame.h"
#include "harness.h"
#include "keystore.h"
#include "logentry.h"
#include "merkle.h"
#include "replica.h"
#include "sign.h"
#include "statedigest.h"
#include "wire.h"

#define NOT_FOUND ((size_t)-1)

static struct harness_server srv; /* made and started by setup() */

/* ---- devices ---- */

/* Makes replica tmp/NAME.db enrolled with role (and branch). */
static void device(const char *name, const char *role, const char *branch,
		   char *out, size_t n)
{
	char tok[HARNESS_HEX_KEY + 1], url[64], file[64];
	struct harness_run r;

	/* not harness_device: the enrollment carries the device's name */
	harness_fmt(file, sizeof file, "%s.db", name);
	harness_path(out, n, file);
	harness_device_init(out, NULL);
	harness_token(&srv, role, branch, tok);
	harness_server_url(&srv, url, sizeof url);
	r = harness_bs("enroll", "--db", out, "--server", url, "--token", tok,
		       "--server-key", srv.key, "--name", name, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
}

static void sync_code(const char *db, int code)
{
	struct harness_run r = harness_bs("sync", "--db", db, NULL);

	harness_expect_code(&r, code);
	harness_run_free(&r);
}

/* ---- files ---- */

static void read_all(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	*out = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(*out);
	ck_assert_uint_eq(fread(*out, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
}

/* ---- keys ---- */

/* The device key of a replica made with --no-passphrase. */
static struct keystore_key *replica_key(const char *db)
{
	sqlite3 *h = harness_db_open(db, 1);
	sqlite3_stmt *st = NULL;
	struct keystore_key *k = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(h,
					    "SELECT value FROM bs_settings"
					    " WHERE key='device_key'",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(keystore_open(sqlite3_column_blob(st, 0),
				       (size_t)sqlite3_column_bytes(st, 0),
				       NULL, &k),
			 BS_OK);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return k;
}

/* The server's key from its data directory (made with --no-passphrase). */
static struct keystore_key *server_secret(void)
{
	char path[450];
	uint8_t *sealed;
	size_t len;
	struct keystore_key *k = NULL;

	harness_fmt(path, sizeof path, "%s/server.key", srv.dir);
	read_all(path, &sealed, &len);
	ck_assert_int_eq(keystore_open(sealed, len, NULL, &k), BS_OK);
	free(sealed);
	return k;
}

/* Runs `sql` on the replica through capture as its device, with no scope
 * limit (a device that ignores its own policy), and copies the signed
 * change set made into out. */
static void rogue_write(const char *db, const char *sql, struct buf *out)
{
	struct keystore_key *k = replica_key(db);
	struct capture_signer sg = {k->pk, k->sk, NULL, clock_wall_ms()};
	struct replica *r = NULL;
	struct capture *c = NULL;
	sqlite3_stmt *st = NULL;
	struct err e;
	int count = 0;

	err_init(&e);
	ck_assert_msg(replica_open(db, REPLICA_OPEN, &r, &e) == 0, "%s", e.msg);
	ck_assert_msg(capture_begin(r, &sg, &c, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(sqlite3_exec(r->db, sql, NULL, NULL, NULL), SQLITE_OK);
	ck_assert_msg(capture_commit(c, &count, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(count, 1);
	capture_free(c);
	ck_assert_int_eq(sqlite3_prepare_v2(r->db,
					    "SELECT bytes FROM bs_outbox"
					    " ORDER BY seq DESC LIMIT 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	buf_reset(out);
	buf_append(out, sqlite3_column_blob(st, 0),
		   (size_t)sqlite3_column_bytes(st, 0));
	ck_assert_int_eq(out->status, BS_OK);
	sqlite3_finalize(st);
	replica_close(r);
	keystore_key_free(k);
}

/* ---- export files, frame by frame ---- */

struct xframe {
	uint8_t type;
	uint8_t *p;
	size_t len;
};

struct xlog {
	struct xframe *f;
	size_t n;
	uint8_t pk[SIGN_PUBLIC_BYTES];
};

static void xlog_add(struct xlog *x, size_t pos, uint8_t type, const uint8_t *p,
		     size_t len)
{
	x->f = realloc(x->f, (x->n + 1) * sizeof *x->f);
	ck_assert_ptr_nonnull(x->f);
	memmove(x->f + pos + 1, x->f + pos, (x->n - pos) * sizeof *x->f);
	x->f[pos].type = type;
	x->f[pos].p = malloc(len + 1);
	ck_assert_ptr_nonnull(x->f[pos].p);
	if (len)
		memcpy(x->f[pos].p, p, len);
	x->f[pos].len = len;
	x->n++;
}

static void xlog_remove(struct xlog *x, size_t pos)
{
	free(x->f[pos].p);
	memmove(x->f + pos, x->f + pos + 1, (x->n - pos - 1) * sizeof *x->f);
	x->n--;
}

static void xlog_set(struct xlog *x, size_t pos, const uint8_t *p, size_t len)
{
	free(x->f[pos].p);
	x->f[pos].p = malloc(len + 1);
	ck_assert_ptr_nonnull(x->f[pos].p);
	memcpy(x->f[pos].p, p, len);
	x->f[pos].len = len;
}

static void xlog_read(const char *path, struct xlog *x)
{
	struct frame_reader fr;
	struct frame f;
	uint8_t *data;
	size_t len, off = 0, used;

	memset(x, 0, sizeof *x);
	read_all(path, &data, &len);
	frame_reader_init(&fr, 16u << 20);
	while (off < len) {
		ck_assert_int_eq(
		    frame_reader_feed(&fr, data + off, len - off, &used),
		    BS_OK);
		off += used;
		while (frame_reader_next(&fr, &f))
			xlog_add(x, x->n, f.type, f.payload, f.len);
	}
	ck_assert_int_eq(frame_reader_finish(&fr), BS_OK);
	frame_reader_release(&fr);
	free(data);
	ck_assert_uint_gt(x->n, 0);
	ck_assert_int_eq(x->f[0].type, FRAME_META);
	memcpy(x->pk, x->f[0].p, SIGN_PUBLIC_BYTES);
}

static void xlog_write(const struct xlog *x, const char *path)
{
	struct buf b;
	FILE *f;
	size_t i;

	buf_init(&b, 1u << 30);
	frame_stream_begin(&b);
	for (i = 0; i < x->n; i++)
		frame_put(&b, x->f[i].type, x->f[i].p, x->f[i].len);
	frame_stream_end(&b);
	ck_assert_int_eq(b.status, BS_OK);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(b.data, 1, b.len, f), b.len);
	ck_assert_int_eq(fclose(f), 0);
	buf_release(&b);
}

static void xlog_free(struct xlog *x)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		free(x->f[i].p);
	free(x->f);
	memset(x, 0, sizeof *x);
}

static size_t xlog_find_type(const struct xlog *x, uint8_t type)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		if (x->f[i].type == type)
			return i;
	return NOT_FOUND;
}

/* The log entry of ENTRY frame `pos`: its index and decoded entry, and
 * the offset of the entry's payload in the frame. */
static size_t xlog_entry(const struct xlog *x, size_t pos, uint64_t *index,
			 struct logentry *le)
{
	struct wire_reader r;

	ck_assert_int_eq(x->f[pos].type, FRAME_ENTRY);
	wire_reader_init(&r, x->f[pos].p, x->f[pos].len);
	ck_assert_int_eq(wire_get_varint(&r, index), BS_OK);
	ck_assert_int_eq(
	    logentry_decode(x->f[pos].p + r.pos, x->f[pos].len - r.pos, le),
	    BS_OK);
	return (size_t)(le->payload - x->f[pos].p);
}

/* The frame of the nth (from 0) entry of `kind` and `verdict` whose author
 * (change sets) or device (enrollments, revocations) is `who` (any when
 * NULL). */
static size_t xlog_find(const struct xlog *x, int kind, int verdict,
			const uint8_t *who, int nth)
{
	size_t i;

	for (i = 0; i < x->n; i++) {
		struct logentry le;
		struct changeset cs;
		struct enrollment en;
		struct revocation rv;
		const uint8_t *key = NULL;
		uint64_t index;

		if (x->f[i].type != FRAME_ENTRY)
			continue;
		xlog_entry(x, i, &index, &le);
		if ((int)le.kind != kind || (int)le.verdict != verdict)
			continue;
		if (kind == LOGENTRY_CHANGESET &&
		    changeset_decode(le.payload, le.payload_len, &cs) == BS_OK)
			key = cs.env.author;
		if (kind == LOGENTRY_ENROLLMENT &&
		    enrollment_open(le.payload, le.payload_len, x->pk, &en) ==
			BS_OK)
			key = en.device;
		if (kind == LOGENTRY_REVOCATION &&
		    revocation_open(le.payload, le.payload_len, x->pk, &rv) ==
			BS_OK)
			key = rv.device;
		if (who && (!key || memcmp(key, who, SIGN_PUBLIC_BYTES) != 0))
			continue;
		if (nth-- == 0)
			return i;
	}
	return NOT_FOUND;
}

static uint64_t xlog_index(const struct xlog *x, size_t pos)
{
	struct logentry le;
	uint64_t index;

	xlog_entry(x, pos, &index, &le);
	return index;
}

/* An ENTRY frame payload: varint index || the entry. */
static void entry_frame(uint64_t index, int kind, int verdict,
			const char *reason, const uint8_t *p, size_t len,
			struct buf *out)
{
	struct logentry le = {
	    kind, verdict, reason, reason ? strlen(reason) : 0, p, len};

	buf_reset(out);
	wire_put_varint(out, index);
	ck_assert_int_eq(logentry_encode(&le, out), BS_OK);
}

/* Re-signs the export's checkpoint over all its entries with sk, as a
 * dishonest server would. */
static void xlog_resign_checkpoint(struct xlog *x, const uint8_t *sk)
{
	struct merkle_compact mc;
	struct checkpoint cp;
	struct buf b;
	size_t i, pos = xlog_find_type(x, FRAME_CHECKPOINT);

	ck_assert_uint_ne(pos, NOT_FOUND);
	ck_assert_int_eq(checkpoint_decode(x->f[pos].p, x->f[pos].len, &cp),
			 BS_OK);
	merkle_compact_init(&mc);
	for (i = 0; i < x->n; i++) {
		struct wire_reader r;
		uint64_t index;
		uint8_t leaf[HASH_BYTES];

		if (x->f[i].type != FRAME_ENTRY)
			continue;
		wire_reader_init(&r, x->f[i].p, x->f[i].len);
		ck_assert_int_eq(wire_get_varint(&r, &index), BS_OK);
		logentry_leaf_hash(x->f[i].p + r.pos, x->f[i].len - r.pos,
				   leaf);
		ck_assert_int_eq(merkle_compact_append(&mc, leaf), BS_OK);
	}
	cp.size = merkle_compact_size(&mc);
	merkle_compact_root(&mc, cp.root);
	buf_init(&b, CHECKPOINT_SIGNED_MAX);
	ck_assert_int_eq(checkpoint_sign(&cp, sk, &b), BS_OK);
	xlog_set(x, pos, b.data, b.len);
	buf_release(&b);
}

/* Re-signs the export's state digest as one of `size` entries and
 * `digest`. */
static void xlog_resign_digest(struct xlog *x, const uint8_t *sk, uint64_t size,
			       const uint8_t *digest)
{
	struct statedigest sd;
	struct buf b;
	size_t pos = xlog_find_type(x, FRAME_DIGEST);

	ck_assert_uint_ne(pos, NOT_FOUND);
	ck_assert_int_eq(
	    statedigest_open(x->f[pos].p, x->f[pos].len, x->pk, &sd), BS_OK);
	sd.log_size = size;
	memcpy(sd.digest, digest, HASH_BYTES);
	buf_init(&b, STATEDIGEST_SIGNED_MAX);
	ck_assert_int_eq(statedigest_sign(&sd, sk, &b), BS_OK);
	xlog_set(x, pos, b.data, b.len);
	buf_release(&b);
}

/* The position just after the last ENTRY frame, and the next index. */
static size_t xlog_end(const struct xlog *x, uint64_t *next)
{
	size_t i, last = NOT_FOUND;

	for (i = 0; i < x->n; i++)
		if (x->f[i].type == FRAME_ENTRY)
			last = i;
	ck_assert_uint_ne(last, NOT_FOUND);
	*next = xlog_index(x, last) + 1;
	return last + 1;
}

/* ---- auditing ---- */

static struct harness_run audit_log(const char *file)
{
	return harness_bs("audit", "--log", file, NULL);
}

/* The audit of `file` fails (exit 4) and its report holds every needle. */
static void expect_caught(const char *file, const char *n1, const char *n2)
{
	struct harness_run r = audit_log(file);

	harness_expect_code(&r, 4);
	ck_assert_msg(strstr(r.out, "FAILED") && strstr(r.err, "the audit "
							       "found"),
		      "report: %s\nstderr: %s", r.out, r.err);
	ck_assert_msg(strstr(r.out, n1) != NULL, "no '%s' in the report:\n%s",
		      n1, r.out);
	ck_assert_msg(!n2 || strstr(r.out, n2) != NULL,
		      "no '%s' in the report:\n%s", n2, r.out);
	harness_run_free(&r);
}

/* "entry N" as the report writes it. */
static const char *entry_name(uint64_t index, char *out, size_t n)
{
	snprintf(out, n, "entry %llu", (unsigned long long)index);
	return out;
}

/* ---- the district ---- */

struct district {
	char a1[400], a2[400], b[400], d[400], au[400];
	uint8_t a1_pk[SIGN_PUBLIC_BYTES], a2_pk[SIGN_PUBLIC_BYTES];
	char member[65]; /* put by a1, edited by a2 and a1 */
	char log[400];	 /* the export */
};

static void device_pk(const char *db, uint8_t pk[SIGN_PUBLIC_BYTES])
{
	struct keystore_key *k = replica_key(db);

	memcpy(pk, k->pk, SIGN_PUBLIC_BYTES);
	keystore_key_free(k);
}

static void export(const char *path)
{
	struct harness_run r =
	    harness_bsd("export-log", "--data", srv.dir, "--out", path, NULL);

	harness_expect_code(&r, 0);
	harness_run_free(&r);
}

/* Two branches and a district; a1 and a2 write b1, b writes b2, d the
 * district; a2 edits a1's member; a1 signs a write of b2 that the server
 * refuses and logs; a2 is revoked; a1 goes on. The log is exported to
 * D->log. */
static void district_build(struct district *D)
{
	char a2hex[HARNESS_HEX_KEY + 1], other[65];
	struct buf cs;
	struct harness_run r;
	int port = srv.port;

	device("a1", "branch", "b1", D->a1, sizeof D->a1);
	device("a2", "branch", "b1", D->a2, sizeof D->a2);
	device("b", "branch", "b2", D->b, sizeof D->b);
	device("d", "district", NULL, D->d, sizeof D->d);
	device("au", "auditor", NULL, D->au, sizeof D->au);
	device_pk(D->a1, D->a1_pk);
	device_pk(D->a2, D->a2_pk);

	harness_put(D->a1, D->member, "members", "name=Li Lei", "gender=male",
		    NULL);
	harness_put(D->a1, other, "members", "name=Han Meimei", NULL);
	sync_code(D->a1, 0);
	harness_put(D->b, NULL, "members", "name=Wang Wu", NULL);
	harness_put(D->b, NULL, "needs", "category=job", "detail=a driver",
		    NULL);
	sync_code(D->b, 0);
	harness_put(D->d, NULL, "activities", "branch_id=district",
		    "title=District meeting", NULL);
	sync_code(D->d, 0);
	sync_code(D->a2, 0);
	harness_put(D->a2, NULL, "members", "--id", D->member,
		    "phone=13800138000", NULL);
	sync_code(D->a2, 0);

	/* a write of b2 by a device of b1: refused by the server and logged,
	 * and a1's chain goes on */
	buf_init(&cs, CHANGESET_MAX_ENCODED);
	rogue_write(D->a1,
		    "INSERT INTO members(id, branch_id, name, status)"
		    " VALUES('intruder', 'b2', 'Intruder', 'active')",
		    &cs);
	buf_release(&cs);
	r = harness_bs("sync", "--db", D->a1, NULL);
	harness_expect_code(&r, 2);
	ck_assert_msg(strstr(r.err, "out of scope"), "%s", r.err);
	harness_run_free(&r);

	/* a2 is revoked */
	harness_server_stop(&srv);
	sodium_bin2hex(a2hex, sizeof a2hex, D->a2_pk, SIGN_PUBLIC_BYTES);
	r = harness_bsd("revoke", "--data", srv.dir, a2hex, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
	harness_server_start(&srv, port);

	harness_put(D->a1, NULL, "members", "--id", D->member, "status=away",
		    "away_city=Shenzhen", NULL);
	sync_code(D->a1, 0);
	harness_path(D->log, sizeof D->log, "log.bin");
	export(D->log);
}

/* ---- fixtures ---- */

static void setup(void)
{
	char dir[HARNESS_PATH];

	harness_tmp_setup();
	ck_assert_int_eq(sign_init(), BS_OK);
	harness_path(dir, sizeof dir, "srv");
	harness_server_init(&srv, dir);
	harness_server_start(&srv, 0);
}

/* harness_tmp_teardown kills the server if a test left it running. */
static void teardown(void)
{
	harness_tmp_teardown();
}

/* ---- an honest district passes ---- */

START_TEST(honest_log_passes)
{
	struct district D;
	struct harness_run r;
	char bad[HARNESS_HEX_KEY + 1];

	district_build(&D);

	r = harness_bs("audit", "--log", D.log, NULL);
	harness_expect_code(&r, 0);
	ck_assert_msg(strstr(r.out, "verified: every check holds") &&
			  strstr(r.out, srv.key) && strstr(r.out, "compare it"),
		      "%s", r.out);
	harness_run_free(&r);

	r = harness_bs("audit", "--log", D.log, "--json", NULL);
	harness_expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"ok\":true"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"failures\":[]"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"equal\":true"));
	ck_assert_int_eq(harness_json_int(r.out, "refused"), 1);
	ck_assert_int_eq(harness_json_int(r.out, "revocations"), 1);
	ck_assert_int_eq(harness_json_int(r.out, "revoked"), 1);
	/* the server, a1, a2, b, d, au */
	ck_assert_int_eq(harness_json_int(r.out, "devices"), 6);
	ck_assert_int_eq(harness_json_int(r.out, "members"), 3);
	ck_assert_int_eq(harness_json_int(r.out, "size"),
			 harness_json_int(r.out, "entries"));
	harness_run_free(&r);

	/* the key the district office published, or another */
	r = harness_bs("audit", "--log", D.log, "--server-key", srv.key, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
	memset(bad, 'a', HARNESS_HEX_KEY);
	bad[HARNESS_HEX_KEY] = '\0';
	r = harness_bs("audit", "--log", D.log, "--server-key", bad, NULL);
	harness_expect_code(&r, 4);
	ck_assert_msg(strstr(r.err, srv.key) != NULL, "%s", r.err);
	harness_run_free(&r);

	/* from the server, by the auditor; the second audit extends the
	 * checkpoint the first stored */
	r = harness_bs("audit", "--db", D.au, NULL);
	harness_expect_code(&r, 0);
	ck_assert_msg(strstr(r.out, "verified: every check holds"), "%s",
		      r.out);
	harness_run_free(&r);
	harness_put(D.b, NULL, "members", "name=Zhao Liu", NULL);
	sync_code(D.b, 0);
	r = harness_bs("audit", "--db", D.au, "--json", NULL);
	harness_expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"extended\":true"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"checkpoint_stored\":true"));
	ck_assert_int_eq(harness_json_int(r.out, "members"), 4);
	harness_run_free(&r);

	/* only an auditor's replica may audit from the server */
	r = harness_bs("audit", "--db", D.a1, NULL);
	harness_expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "auditor"));
	harness_run_free(&r);

	/* usage and unreadable files */
	r = harness_bs("audit", "--log", D.log, "--db", D.au, NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);
	r = harness_bs("audit", "--log", D.log, "--record", "members", NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);
	r = harness_bs("audit", "--log", D.log, "--record", "nosuch", "x",
		       NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);
	r = harness_bs("audit", "--log", D.a1, NULL);
	harness_expect_code(&r, 2);
	harness_run_free(&r);
	{
		char missing[450];

		harness_path(missing, sizeof missing, "missing.bin");
		r = harness_bs("audit", "--log", missing, NULL);
		harness_expect_code(&r, 2);
		harness_run_free(&r);
	}

	/* the server down: unreachable */
	harness_server_stop(&srv);
	r = harness_bs("audit", "--db", D.au, NULL);
	harness_expect_code(&r, 3);
	harness_run_free(&r);
}
END_TEST

START_TEST(record_history)
{
	struct district D;
	struct harness_run r;
	const char *p;

	district_build(&D);
	r = harness_bs("audit", "--log", D.log, "--record", "members", D.member,
		       NULL);
	harness_expect_code(&r, 0);
	p = strstr(r.out, "history of members");
	ck_assert_msg(p != NULL, "%s", r.out);
	ck_assert_ptr_nonnull(strstr(p, "(3 change sets)"));
	ck_assert_ptr_nonnull(strstr(p, "insert in b1"));
	ck_assert_ptr_nonnull(strstr(p, "name: Li Lei"));
	ck_assert_ptr_nonnull(strstr(p, "phone: 13800138000"));
	ck_assert_ptr_nonnull(strstr(p, "away_city: Shenzhen"));
	ck_assert_ptr_nonnull(strstr(p, "(branch b1)"));
	/* the row as the replay left it */
	p = strstr(p, "now, in b1:");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(strstr(p, "status: away"));
	ck_assert_ptr_nonnull(strstr(p, "phone: 13800138000"));
	harness_run_free(&r);

	r = harness_bs("audit", "--log", D.log, "--json", "--record", "members",
		       D.member, NULL);
	harness_expect_code(&r, 0);
	p = strstr(r.out, "\"history\":[");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(strstr(p, "\"op\":\"insert\""));
	ck_assert_ptr_nonnull(strstr(p, "\"op\":\"update\""));
	ck_assert_ptr_nonnull(strstr(p, "\"phone\":\"13800138000\""));
	ck_assert_ptr_nonnull(strstr(p, "\"now\":{\"branch_id\":\"b1\""));
	harness_run_free(&r);

	/* a record nobody wrote */
	r = harness_bs("audit", "--log", D.log, "--record", "members",
		       "nosuchid", NULL);
	harness_expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "no change set wrote it"));
	harness_run_free(&r);
}
END_TEST

/* ---- tampered exports ---- */

/* Writes x with one byte of frame `pos` flipped at `off` into tmp/name. */
static void flipped(const struct xlog *x, size_t pos, size_t off,
		    const char *name, char *out, size_t n)
{
	ck_assert_uint_lt(off, x->f[pos].len);
	harness_path(out, n, name);
	x->f[pos].p[off] ^= 0x20;
	xlog_write(x, out);
	x->f[pos].p[off] ^= 0x20;
}

START_TEST(flipped_bytes_caught)
{
	struct district D;
	struct xlog x;
	struct logentry le;
	struct changeset cs;
	char file[450], at[64];
	size_t pos, off;
	uint64_t index;

	district_build(&D);
	xlog_read(D.log, &x);

	/* in a change set's signature */
	pos = xlog_find(&x, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, D.a1_pk, 0);
	ck_assert_uint_ne(pos, NOT_FOUND);
	off = xlog_entry(&x, pos, &index, &le);
	ck_assert_int_eq(changeset_decode(le.payload, le.payload_len, &cs),
			 BS_OK);
	flipped(&x, pos, off + cs.env_len + 10, "sig.bin", file, sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at),
		      "signature does not verify");

	/* in a body */
	flipped(&x, pos, off + cs.env_len + SIGN_BYTES + cs.body_len / 2,
		"body.bin", file, sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at),
		      "does not match the hash");

	/* in the envelope (its sequence, say: the signature covers it) */
	flipped(&x, pos, off + 5 + 32 + 5, "env.bin", file, sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at), "Merkle root");

	/* in an enrollment */
	pos = xlog_find(&x, LOGENTRY_ENROLLMENT, LOGENTRY_ACCEPTED, D.a1_pk, 0);
	ck_assert_uint_ne(pos, NOT_FOUND);
	off = xlog_entry(&x, pos, &index, &le);
	flipped(&x, pos, off + 12, "enroll.bin", file, sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at),
		      "enrollment does not verify");

	/* in a revocation */
	pos = xlog_find(&x, LOGENTRY_REVOCATION, LOGENTRY_ACCEPTED, D.a2_pk, 0);
	ck_assert_uint_ne(pos, NOT_FOUND);
	off = xlog_entry(&x, pos, &index, &le);
	flipped(&x, pos, off + 8, "revoke.bin", file, sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at),
		      "revocation does not verify");

	/* in an entry's verdict: accepted becomes something else */
	pos = xlog_find(&x, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, D.a1_pk, 1);
	ck_assert_uint_ne(pos, NOT_FOUND);
	xlog_entry(&x, pos, &index, &le);
	flipped(&x, pos, wire_varint_size(index) + 6, "verdict.bin", file,
		sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at), "malformed");

	/* in the checkpoint's root, and in its signature */
	pos = xlog_find_type(&x, FRAME_CHECKPOINT);
	flipped(&x, pos, x.f[pos].len - SIGN_BYTES - 8 - 4, "cproot.bin", file,
		sizeof file);
	expect_caught(file, "checkpoint's signature does not verify",
		      "Merkle root");
	flipped(&x, pos, x.f[pos].len - 3, "cpsig.bin", file, sizeof file);
	expect_caught(file, "checkpoint's signature does not verify", NULL);

	/* in the state digest */
	pos = xlog_find_type(&x, FRAME_DIGEST);
	flipped(&x, pos, x.f[pos].len - SIGN_BYTES - 8 - 4, "digest.bin", file,
		sizeof file);
	expect_caught(file, "state digest does not verify", NULL);

	/* in the server's key */
	flipped(&x, 0, 3, "meta.bin", file, sizeof file);
	expect_caught(file, "entry 0", "does not start with the server's");

	/* the file, untouched, still passes */
	harness_path(file, sizeof file, "same.bin");
	xlog_write(&x, file);
	{
		struct harness_run r = audit_log(file);

		harness_expect_code(&r, 0);
		harness_run_free(&r);
	}
	xlog_free(&x);
}
END_TEST

START_TEST(missing_swapped_and_foreign_entries_caught)
{
	struct district D;
	struct xlog x;
	struct buf cs, fr;
	char file[450], at[64], stray[400];
	size_t pos, end;
	uint64_t index, next;

	district_build(&D);

	/* an entry deleted */
	xlog_read(D.log, &x);
	pos = xlog_find(&x, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, D.a1_pk, 1);
	index = xlog_index(&x, pos);
	xlog_remove(&x, pos);
	harness_path(file, sizeof file, "deleted.bin");
	xlog_write(&x, file);
	expect_caught(file, entry_name(index, at, sizeof at),
		      "this entry is missing");
	xlog_free(&x);

	/* two entries swapped */
	xlog_read(D.log, &x);
	pos = xlog_find(&x, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, NULL, 3);
	{
		struct xframe t = x.f[pos];

		x.f[pos] = x.f[pos + 1];
		x.f[pos + 1] = t;
	}
	index = xlog_index(&x, pos + 1);
	harness_path(file, sizeof file, "swapped.bin");
	xlog_write(&x, file);
	expect_caught(file, entry_name(index, at, sizeof at), "out of order");
	xlog_free(&x);

	/* an entry signed by a key the log never enrolled, added at the end
	 * with the checkpoint left as it was */
	harness_path(stray, sizeof stray, "stray.db");
	harness_device_init(stray, NULL);
	buf_init(&cs, CHANGESET_MAX_ENCODED);
	buf_init(&fr, LOGENTRY_MAX + 16);
	rogue_write(stray,
		    "INSERT INTO members(id, branch_id, name, status)"
		    " VALUES('ghost', 'b1', 'Ghost', 'active')",
		    &cs);
	xlog_read(D.log, &x);
	end = xlog_end(&x, &next);
	entry_frame(next, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, NULL, cs.data,
		    cs.len, &fr);
	xlog_add(&x, end, FRAME_ENTRY, fr.data, fr.len);
	harness_path(file, sizeof file, "foreign.bin");
	xlog_write(&x, file);
	expect_caught(file, entry_name(next, at, sizeof at), "never enrolled");
	expect_caught(file, "beyond the signed checkpoint", NULL);
	xlog_free(&x);

	/* ... or in place of an honest entry, renumbered */
	xlog_read(D.log, &x);
	pos = xlog_find(&x, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, D.a1_pk, 0);
	index = xlog_index(&x, pos);
	entry_frame(index, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, NULL, cs.data,
		    cs.len, &fr);
	xlog_set(&x, pos, fr.data, fr.len);
	harness_path(file, sizeof file, "replaced.bin");
	xlog_write(&x, file);
	expect_caught(file, entry_name(index, at, sizeof at), "never enrolled");
	xlog_free(&x);
	buf_release(&cs);
	buf_release(&fr);
}
END_TEST

START_TEST(enrollment_by_another_key_caught)
{
	struct district D;
	struct xlog x;
	struct logentry le;
	struct enrollment en;
	uint8_t pk[SIGN_PUBLIC_BYTES], sk[SIGN_SECRET_BYTES];
	struct buf b, fr;
	char file[450], at[64];
	size_t pos;
	uint64_t index;

	district_build(&D);
	xlog_read(D.log, &x);
	pos = xlog_find(&x, LOGENTRY_ENROLLMENT, LOGENTRY_ACCEPTED, D.a1_pk, 0);
	ck_assert_uint_ne(pos, NOT_FOUND);
	xlog_entry(&x, pos, &index, &le);
	ck_assert_int_eq(enrollment_open(le.payload, le.payload_len, x.pk, &en),
			 BS_OK);
	/* the same statement, signed by someone else's key */
	crypto_sign_keypair(pk, sk);
	buf_init(&b, ENROLLMENT_SIGNED_MAX);
	buf_init(&fr, 4096);
	ck_assert_int_eq(enrollment_sign(&en, sk, &b), BS_OK);
	entry_frame(index, LOGENTRY_ENROLLMENT, LOGENTRY_ACCEPTED, NULL, b.data,
		    b.len, &fr);
	xlog_set(&x, pos, fr.data, fr.len);
	harness_path(file, sizeof file, "enroll-other.bin");
	xlog_write(&x, file);
	/* the enrollment, then a1's change sets, which then have no
	 * enrolled author */
	expect_caught(file, entry_name(index, at, sizeof at),
		      "enrollment does not verify with the server's key");
	expect_caught(file, "by a device the log never enrolled", NULL);
	buf_release(&b);
	buf_release(&fr);
	xlog_free(&x);
}
END_TEST

/* ---- the server's own records ---- */

/* Runs sql on the server's database with the sqlite3 tool, as someone
 * with access to the server's disk would. */
static void server_sql(const char *dbp, const char *sql)
{
	const char *argv[] = {"sqlite3", dbp, sql, NULL};
	struct harness_run r = harness_run_argv("/usr/bin/sqlite3", argv);

	if (r.code == 127) {
		/* no sqlite3 tool here: the same through the library */
		sqlite3 *h = harness_db_open(dbp, 1);

		ck_assert_int_eq(sqlite3_exec(h, sql, NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_close(h);
	} else {
		harness_expect_code(&r, 0);
	}
	harness_run_free(&r);
}

/* The branch_id of a members row of the server's database. */
static void member_branch(const char *dbp, const char *id, char *out,
			  size_t n)
{
	sqlite3 *h = harness_db_open(dbp, 1);
	sqlite3_stmt *st = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(h, "SELECT branch_id FROM members"
					    " WHERE id = ?1", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
}

START_TEST(changed_record_caught)
{
	struct district D;
	char sql[300], dbp[450], file[450], want[300], branch[80];
	struct harness_run r;
	int port = srv.port;

	district_build(&D);
	harness_server_stop(&srv);
	harness_fmt(dbp, sizeof dbp, "%s/server.db", srv.dir);
	member_branch(dbp, D.member, branch, sizeof branch);
	snprintf(sql, sizeof sql, "UPDATE members SET name='x' WHERE id='%s';",
		 D.member);
	server_sql(dbp, sql);
	ck_assert_int_eq(harness_db_int(dbp,
					"SELECT count(*) FROM members WHERE"
					" name='x'"),
			 1);
	harness_path(file, sizeof file, "changed.bin");
	export(file);
	/* the digest fails, and the row hashes name the one row changed */
	snprintf(want, sizeof want, "table members row %s (branch %s): "
		 "differs from what the log produces", D.member, branch);
	expect_caught(file, "not what its log yields", want);

	/* from the server too, and the log itself is fine */
	harness_server_start(&srv, port);
	r = harness_bs("audit", "--db", D.au, "--json", NULL);
	harness_expect_code(&r, 4);
	ck_assert_int_eq(harness_json_int(r.out, "failures_total"), 2);
	ck_assert_ptr_nonnull(strstr(r.out, "\"verified\":true"));
	ck_assert_ptr_nonnull(strstr(r.out, "not what its log yields"));
	ck_assert_msg(strstr(r.out, want) != NULL, "no '%s' in %s", want,
		      r.out);
	snprintf(want, sizeof want, "\"table\":\"members\",\"row\":\"%s\","
		 "\"branch\":\"%s\"", D.member, branch);
	ck_assert_msg(strstr(r.out, want) != NULL, "no '%s' in %s", want,
		      r.out);
	harness_run_free(&r);
}
END_TEST

/* A row deleted and one added behind the log's back: each is named, and
 * nothing else is. */
START_TEST(deleted_record_caught)
{
	struct district D;
	char dbp[450], file[450], sql[300], gone[300], extra[300],
	    branch[80];
	struct harness_run r;
	int port = srv.port;

	district_build(&D);
	harness_server_stop(&srv);
	harness_fmt(dbp, sizeof dbp, "%s/server.db", srv.dir);
	member_branch(dbp, D.member, branch, sizeof branch);
	snprintf(sql, sizeof sql,
		 "DELETE FROM members WHERE id='%s';"
		 " INSERT INTO members(id, branch_id, name, status)"
		 " VALUES('ghost1', '%s', 'Ghost', 'active');",
		 D.member, branch);
	server_sql(dbp, sql);
	ck_assert_int_eq(harness_db_int(dbp,
					"SELECT count(*) FROM members WHERE"
					" id='ghost1'"),
			 1);
	harness_path(file, sizeof file, "deleted.bin");
	export(file);
	snprintf(gone, sizeof gone, "table members row %s (branch %s): "
		 "produced by the log but missing from the server's records",
		 D.member, branch);
	snprintf(extra, sizeof extra, "table members row ghost1 (branch %s): "
		 "in the server's records but not produced by the log",
		 branch);
	expect_caught(file, gone, extra);
	r = audit_log(file);
	ck_assert_ptr_null(strstr(r.out, "differs from what the log"));
	harness_run_free(&r);

	harness_server_start(&srv, port);
	r = harness_bs("audit", "--db", D.au, "--json", NULL);
	harness_expect_code(&r, 4);
	ck_assert_int_eq(harness_json_int(r.out, "failures_total"), 3);
	ck_assert_msg(strstr(r.out, gone) && strstr(r.out, extra),
		      "report: %s", r.out);
	harness_run_free(&r);
}
END_TEST

/* A revoked device's later write, accepted and applied by a dishonest
 * server that re-signs its checkpoint and digest: the policy rule still
 * fails it. */
START_TEST(revoked_write_resigned_caught)
{
	struct district D;
	struct keystore_key *sk;
	struct xlog x;
	struct buf cs, fr;
	char file[450], at[64], hex[2 * HASH_BYTES + 1];
	uint8_t digest[HASH_BYTES];
	size_t end, got;
	uint64_t next;
	const char *p;
	struct harness_run r;

	district_build(&D);
	/* a2 writes after its revocation; the server takes it */
	buf_init(&cs, CHANGESET_MAX_ENCODED);
	buf_init(&fr, LOGENTRY_MAX + 16);
	rogue_write(D.a2,
		    "INSERT INTO members(id, branch_id, name, status)"
		    " VALUES('late', 'b1', 'Late Entry', 'active')",
		    &cs);
	sk = server_secret();
	xlog_read(D.log, &x);
	end = xlog_end(&x, &next);
	entry_frame(next, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, NULL, cs.data,
		    cs.len, &fr);
	xlog_add(&x, end, FRAME_ENTRY, fr.data, fr.len);
	xlog_resign_checkpoint(&x, sk->sk);
	harness_path(file, sizeof file, "revoked.bin");
	xlog_write(&x, file);

	/* its digest then is that of the replay, re-signed too */
	r = harness_bs("audit", "--log", file, "--json", NULL);
	harness_expect_code(&r, 4);
	p = strstr(r.out, "\"replayed\":\"");
	ck_assert_ptr_nonnull(p);
	memcpy(hex, p + 12, 2 * HASH_BYTES);
	hex[2 * HASH_BYTES] = '\0';
	ck_assert_int_eq(sodium_hex2bin(digest, sizeof digest, hex,
					2 * HASH_BYTES, NULL, &got, NULL),
			 0);
	harness_run_free(&r);
	xlog_resign_digest(&x, sk->sk, next + 1, digest);
	xlog_write(&x, file);

	r = harness_bs("audit", "--log", file, "--json", NULL);
	harness_expect_code(&r, 4);
	ck_assert_int_eq(harness_json_int(r.out, "failures_total"), 1);
	ck_assert_ptr_nonnull(strstr(r.out, "\"verified\":true"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"equal\":true"));
	ck_assert_ptr_nonnull(strstr(r.out, "revoked before it"));
	harness_run_free(&r);
	expect_caught(file, entry_name(next, at, sizeof at),
		      "revoked before it");

	/* the same trick with a refusal the server never makes: an honest
	 * write logged as refused */
	xlog_free(&x);
	xlog_read(D.log, &x);
	{
		size_t pos = xlog_find(&x, LOGENTRY_CHANGESET,
				       LOGENTRY_ACCEPTED, D.a1_pk, 0);
		struct logentry le;
		uint64_t index;

		xlog_entry(&x, pos, &index, &le);
		entry_frame(index, LOGENTRY_CHANGESET, LOGENTRY_REFUSED,
			    "out of scope: made up", le.payload, le.payload_len,
			    &fr);
		xlog_set(&x, pos, fr.data, fr.len);
		xlog_resign_checkpoint(&x, sk->sk);
		harness_path(file, sizeof file, "refused.bin");
		xlog_write(&x, file);
		expect_caught(file, entry_name(index, at, sizeof at),
			      "although its author may write");
	}
	keystore_key_free(sk);
	buf_release(&cs);
	buf_release(&fr);
	xlog_free(&x);
}
END_TEST

/* ---- a server that shows its auditor two histories ---- */

START_TEST(forked_log_caught)
{
	struct district D;
	char backup[450], c[400];
	struct harness_run r;
	int port = srv.port, k;

	district_build(&D);
	/* a copy of the server as it is now */
	harness_server_stop(&srv);
	harness_path(backup, sizeof backup, "backup");
	harness_copy_dir(srv.dir, backup);
	harness_server_start(&srv, port);

	/* the auditor sees the log grow */
	harness_put(D.b, NULL, "members", "name=Zhao Liu", NULL);
	harness_put(D.b, NULL, "members", "name=Qian Qi", NULL);
	sync_code(D.b, 0);
	r = harness_bs("audit", "--db", D.au, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);

	/* the server goes back to its copy: a shorter log */
	harness_server_stop(&srv);
	harness_copy_dir(backup, srv.dir);
	harness_server_start(&srv, port);
	r = harness_bs("audit", "--db", D.au, NULL);
	harness_expect_code(&r, 4);
	ck_assert_msg(strstr(r.out, "forked") && strstr(r.out, "shrank"), "%s",
		      r.out);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(D.au,
					"SELECT count(*) FROM bs_evidence WHERE"
					" kind='fork'"),
			 1);

	/* and writes another history, longer than what the auditor saw */
	device("c", "branch", "b2", c, sizeof c);
	for (k = 0; k < 4; k++)
		harness_put(c, NULL, "members", "name=Other history", NULL);
	sync_code(c, 0);
	r = harness_bs("audit", "--db", D.au, NULL);
	harness_expect_code(&r, 4);
	ck_assert_msg(strstr(r.out, "forked") &&
			  strstr(r.out, "consistency proof fails"),
		      "%s", r.out);
	ck_assert_ptr_nonnull(strstr(r.err, "forked"));
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(D.au,
					"SELECT count(*) FROM bs_evidence WHERE"
					" kind='fork'"),
			 2);
	/* the auditor keeps the checkpoint it verified: still caught */
	r = harness_bs("audit", "--db", D.au, NULL);
	harness_expect_code(&r, 4);
	harness_run_free(&r);
	/* while the exported log on its own is consistent */
	{
		char file[450];

		harness_path(file, sizeof file, "other.bin");
		export(file);
		r = audit_log(file);
		harness_expect_code(&r, 0);
		harness_run_free(&r);
	}
}
END_TEST

/* ---- many change sets: batches and threads ---- */

/* An export being written: the stream, and the tree of its entries. */
struct synth {
	struct buf out, fr;
	struct merkle_compact mc;
	uint64_t index;
};

static void synth_entry(struct synth *y, int kind, const uint8_t *p, size_t len)
{
	uint8_t leaf[HASH_BYTES];
	size_t vlen = wire_varint_size(y->index);

	entry_frame(y->index++, kind, LOGENTRY_ACCEPTED, NULL, p, len, &y->fr);
	logentry_leaf_hash(y->fr.data + vlen, y->fr.len - vlen, leaf);
	ck_assert_int_eq(merkle_compact_append(&y->mc, leaf), BS_OK);
	frame_put(&y->out, FRAME_ENTRY, y->fr.data, y->fr.len);
}

static void synth_enroll(struct synth *y, const uint8_t *ssk, const uint8_t *pk,
			 enum enrollment_role role, const char *scope,
			 struct buf *b)
{
	struct enrollment en;

	memset(&en, 0, sizeof en);
	memcpy(en.device, pk, SIGN_PUBLIC_BYTES);
	en.role = role;
	snprintf(en.scope, sizeof en.scope, "%s", scope);
	buf_reset(b);
	ck_assert_int_eq(enrollment_sign(&en, ssk, b), BS_OK);
	synth_entry(y, LOGENTRY_ENROLLMENT, b->data, b->len);
}

/* The change set device `dev` makes for one new member, into b. */
static void synth_member(struct replica *dev, const struct keystore_key *dk,
			 int i, struct buf *b)
{
	struct capture_signer sg = {dk->pk, dk->sk, "b1", clock_wall_ms()};
	struct capture *c = NULL;
	sqlite3_stmt *st = NULL;
	struct err e;
	char sql[200];
	int count;

	err_init(&e);
	ck_assert_int_eq(capture_begin(dev, &sg, &c, &e), 0);
	snprintf(sql, sizeof sql,
		 "INSERT INTO members(id, branch_id, name,"
		 " status) VALUES('m%d', 'b1', 'Member %d', 'active')",
		 i, i);
	ck_assert_int_eq(sqlite3_exec(dev->db, sql, NULL, NULL, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(capture_commit(c, &count, &e), 0);
	capture_free(c);
	ck_assert_int_eq(sqlite3_prepare_v2(dev->db,
					    "SELECT bytes FROM"
					    " bs_outbox ORDER BY seq DESC"
					    " LIMIT 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	buf_reset(b);
	buf_append(b, sqlite3_column_blob(st, 0),
		   (size_t)sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
}

/* Writes an export of n change sets by one branch device (and the
 * enrollments), signed by a fresh server key, with the digest of the
 * device's own replica (which holds exactly what its sets wrote); the
 * change set at log index `bad` (if not 0) gets a wrong signature. */
static void synthetic_log(const char *path, int n, uint64_t bad)
{
	uint8_t spk[SIGN_PUBLIC_BYTES], ssk[SIGN_SECRET_BYTES];
	struct keystore_key *dk;
	struct replica *dev = NULL;
	struct checkpoint cp;
	struct statedigest sd;
	struct synth y;
	struct buf b;
	struct err e;
	char dbp[HARNESS_PATH], name[64];
	int i;
	FILE *f;

	err_init(&e);
	crypto_sign_keypair(spk, ssk);
	harness_fmt(name, sizeof name, "synthetic-%llu.db",
		    (unsigned long long)bad);
	harness_path(dbp, sizeof dbp, name);
	harness_device_init(dbp, NULL);
	dk = replica_key(dbp);
	ck_assert_int_eq(replica_open(dbp, REPLICA_OPEN, &dev, &e), 0);
	/* a scratch replica: no fsync per change set */
	ck_assert_int_eq(
	    sqlite3_exec(dev->db, "PRAGMA synchronous=OFF", NULL, NULL, NULL),
	    SQLITE_OK);
	memset(&y, 0, sizeof y);
	buf_init(&y.out, 1u << 30);
	buf_init(&y.fr, LOGENTRY_MAX + 16);
	buf_init(&b, CHANGESET_MAX_ENCODED);
	merkle_compact_init(&y.mc);
	frame_stream_begin(&y.out);
	buf_append(&b, spk, SIGN_PUBLIC_BYTES);
	wire_put_blob(&b, "Synthetic", 9);
	frame_put(&y.out, FRAME_META, b.data, b.len);
	synth_enroll(&y, ssk, spk, ROLE_DISTRICT, "district", &b);
	synth_enroll(&y, ssk, dk->pk, ROLE_BRANCH, "b1", &b);
	for (i = 0; i < n; i++) {
		synth_member(dev, dk, i, &b);
		if (y.index == bad) {
			struct changeset cs;

			ck_assert_int_eq(changeset_decode(b.data, b.len, &cs),
					 BS_OK);
			b.data[cs.env_len] ^= 1;
		}
		synth_entry(&y, LOGENTRY_CHANGESET, b.data, b.len);
	}
	memset(&cp, 0, sizeof cp);
	strcpy(cp.origin, "Synthetic");
	cp.size = merkle_compact_size(&y.mc);
	merkle_compact_root(&y.mc, cp.root);
	cp.time_ms = clock_wall_ms();
	buf_reset(&b);
	ck_assert_int_eq(checkpoint_sign(&cp, ssk, &b), BS_OK);
	frame_put(&y.out, FRAME_CHECKPOINT, b.data, b.len);
	memset(&sd, 0, sizeof sd);
	strcpy(sd.origin, "Synthetic");
	sd.log_size = y.index;
	ck_assert_int_eq(digest_compute(dev->db, sd.digest, &e), 0);
	buf_reset(&b);
	ck_assert_int_eq(statedigest_sign(&sd, ssk, &b), BS_OK);
	frame_put(&y.out, FRAME_DIGEST, b.data, b.len);
	frame_stream_end(&y.out);
	ck_assert_int_eq(y.out.status, BS_OK);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(y.out.data, 1, y.out.len, f), y.out.len);
	ck_assert_int_eq(fclose(f), 0);
	buf_release(&y.out);
	buf_release(&y.fr);
	buf_release(&b);
	replica_close(dev);
	keystore_key_free(dk);
}

START_TEST(many_changesets)
{
	char file[450];
	struct harness_run r;
	double t0;
	const int n = 5000;

	harness_path(file, sizeof file, "many.bin");
	synthetic_log(file, n, 0);
	t0 = harness_now();
	r = harness_bs("audit", "--log", file, "--json", NULL);
	harness_expect_code(&r, 0);
	fprintf(stderr, "audit of %d change sets: %.0f per second\n", n,
		n / (harness_now() - t0));
	ck_assert_int_eq(harness_json_int(r.out, "changesets"), n);
	ck_assert_int_eq(harness_json_int(r.out, "members"), n);
	harness_run_free(&r);
	/* the same with one thread */
	r = harness_bs("audit", "--log", file, "--threads", "1", NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);

	/* a bad signature deep in the second batch: named, and the rest
	 * still verified */
	synthetic_log(file, n, 3001);
	r = harness_bs("audit", "--log", file, "--json", NULL);
	harness_expect_code(&r, 4);
	ck_assert_ptr_nonnull(strstr(r.out, "{\"index\":3001,"));
	ck_assert_ptr_nonnull(strstr(r.out, "signature does not verify"));
	/* its set was not replayed, so its chain successor breaks the chain
	 * and the digest differs */
	ck_assert_int_eq(harness_json_int(r.out, "members"), n - 1);
	harness_run_free(&r);
}
END_TEST

/* An export larger than the server gathers in memory at once (1 MiB):
 * written out piece by piece, it is still one whole, auditable file, and
 * no temporary file is left beside it. */
START_TEST(large_export_streams)
{
	char db[HARNESS_PATH], csv[HARNESS_PATH], file[HARNESS_PATH];
	char pattern[HARNESS_PATH + 8];
	struct harness_run r;
	struct stat sb;
	glob_t g;
	FILE *f;
	int i;
	const int n = 12000;

	device("big", "branch", "b1", db, sizeof db);
	harness_path(csv, sizeof csv, "members.csv");
	f = fopen(csv, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "branch_id,name,phone,status,away_city\n");
	for (i = 0; i < n; i++)
		fprintf(f, "b1,Member number %06d of the branch,1380013%04d,"
			"away,Shenzhen district %d\n", i, i % 10000, i % 97);
	ck_assert_int_eq(fclose(f), 0);
	harness_import(db, "members", csv);
	sync_code(db, 0);

	harness_path(file, sizeof file, "big.bin");
	export(file);
	ck_assert_int_eq(stat(file, &sb), 0);
	ck_assert_msg(sb.st_size > 2 * (1 << 20), "export of %lld bytes",
		      (long long)sb.st_size);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	r = harness_bs("audit", "--log", file, "--json", NULL);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "members"), n);
	ck_assert_ptr_nonnull(strstr(r.out, "\"equal\":true"));
	harness_run_free(&r);
	ck_assert_int_eq(snprintf(pattern, sizeof pattern, "%s.tmp*", file) <
			 (int)sizeof pattern, 1);
	ck_assert_int_eq(glob(pattern, 0, NULL, &g), GLOB_NOMATCH);
	globfree(&g);
}
END_TEST

static Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("audit");

	tcase_add_unchecked_fixture(tc, harness_root_setup,
				    harness_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, honest_log_passes);
	tcase_add_test(tc, record_history);
	tcase_add_test(tc, flipped_bytes_caught);
	tcase_add_test(tc, missing_swapped_and_foreign_entries_caught);
	tcase_add_test(tc, enrollment_by_another_key_caught);
	tcase_add_test(tc, changed_record_caught);
	tcase_add_test(tc, deleted_record_caught);
	tcase_add_test(tc, revoked_write_resigned_caught);
	tcase_add_test(tc, forked_log_caught);
	tcase_add_test(tc, many_changesets);
	tcase_add_test(tc, large_export_streams);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(audit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
