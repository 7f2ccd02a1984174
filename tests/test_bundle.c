/* test_bundle.c - Check suite 'bundle': a real branchsyncd
 * ($BRANCHSYNCD_BIN) on a loopback port and real branchsync processes
 * ($BRANCHSYNC_BIN) carrying change sets in bundle files (docs/BUNDLE.md):
 * a branch device's bundle relayed by a district device reaches the server
 * with its author's signatures, and the author's own later sync is told
 * "duplicate", nothing doubled; a district device's bundle for a branch
 * brings a fresh device of that branch its scope and the district's, gaps
 * in other devices' chains included, and nothing of other branches; every
 * kind of damage (a flipped byte, a cut, a forged enrollment, another
 * server, frames out of order) is refused with exit 4 and the replica left
 * exactly as it was; a second import changes nothing; a device bundle must
 * chain to what the replica holds; a relay the server refuses does not
 * block the district device's own pushes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "enrollment.h"
#include "frame.h"
#include "harness.h"
#include "sign.h"
#include "wire.h"

#define MAX_FRAMES 64

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

/* sync --json, which must succeed quietly; the caller frees the run. */
static struct harness_run sync_ok(const char *db)
{
	struct harness_run r = harness_bs("sync", "--db", db, "--json", NULL);

	harness_expect_code(&r, 0);
	ck_assert_msg(r.errlen == 0, "sync wrote on stderr: %s", r.err);
	return r;
}

static void sync_quiet(const char *db)
{
	struct harness_run r = sync_ok(db);

	harness_run_free(&r);
}

/* bundle export (--json); must succeed. */
static struct harness_run export_ok(const char *db, const char *out,
				    const char *for_branch)
{
	struct harness_run r =
	    for_branch ? harness_bs("bundle", "export", "--db", db, "--out",
				    out, "--for", for_branch, "--json", NULL)
		       : harness_bs("bundle", "export", "--db", db, "--out",
				    out, "--json", NULL);

	harness_expect_code(&r, 0);
	return r;
}

static struct harness_run import_json(const char *db, const char *file)
{
	return harness_bs("bundle", "import", "--db", db, "--json", file, NULL);
}

/* ---- looking into files ---- */

static long long srv_int(const char *sql)
{
	char path[HARNESS_PATH];

	harness_fmt(path, sizeof path, "%s/server.db", srv.dir);
	return harness_db_int(path, sql);
}

/* The device key of a replica, as 64 hex digits, from `status --json`. */
static void device_key(const char *db, char out[HARNESS_HEX_KEY + 1])
{
	struct harness_run r = harness_bs("status", "--db", db, "--json", NULL);
	const char *p;

	harness_expect_code(&r, 0);
	p = strstr(r.out, "\"device_id\":\"");
	ck_assert_msg(p != NULL, "no device_id in %s", r.out);
	memcpy(out, p + 13, HARNESS_HEX_KEY);
	out[HARNESS_HEX_KEY] = '\0';
	harness_run_free(&r);
}

/* The digest of the server's records as a device of `scope` sees them
 * (NULL: all). The server must be stopped. */
static void server_digest(const char *scope, uint8_t out[HASH_BYTES])
{
	char src[HARNESS_PATH], copy[HARNESS_PATH];

	harness_fmt(src, sizeof src, "%s/server.db", srv.dir);
	if (!scope) {
		harness_digest(src, out);
		return;
	}
	harness_path(copy, sizeof copy, "scope.db");
	harness_digest_scope(src, scope, copy, out);
}

/* Everything an import could change in a replica. */
struct state {
	uint8_t digest[HASH_BYTES];
	long long applied, relay, enrollments, outbox, conflicts, rows, hlc;
};

static void state_of(const char *db, struct state *s)
{
	memset(s, 0, sizeof *s);
	harness_digest(db, s->digest);
	s->applied = harness_db_int(db, "SELECT count(*) FROM bs_applied");
	s->relay = harness_db_int(db, "SELECT count(*) FROM bs_relay");
	s->enrollments =
	    harness_db_int(db, "SELECT count(*) FROM bs_enrollments");
	s->outbox = harness_db_int(db, "SELECT count(*) FROM bs_outbox");
	s->conflicts = harness_db_int(db, "SELECT count(*) FROM bs_conflicts");
	s->rows = harness_db_int(db, "SELECT count(*) FROM bs_rows");
	s->hlc =
	    harness_db_int(db, "SELECT coalesce((SELECT value FROM bs_settings"
			       " WHERE key='hlc'), 0)");
}

static void state_same(const char *db, const struct state *before,
		       const char *what)
{
	struct state now;

	state_of(db, &now);
	ck_assert_msg(memcmp(before, &now, sizeof now) == 0,
		      "the replica changed: %s", what);
}

/* ---- bundle files ---- */

static uint8_t *file_read(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	FILE *f = fopen(path, "rb");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fstat(fileno(f), &st), 0);
	*len = (size_t)st.st_size;
	p = malloc(*len + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(fread(p, 1, *len, f), *len);
	fclose(f);
	return p;
}

static void file_write(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* A bundle's frames as the test's own reader sees them. */
struct frames {
	uint8_t *data;
	size_t len, n;
	uint8_t type[MAX_FRAMES];
	size_t off[MAX_FRAMES], plen[MAX_FRAMES]; /* payload in data */
};

static void frames_read(const char *path, struct frames *fs)
{
	struct frame_reader fr;
	struct frame f;
	size_t off = 0, used;

	memset(fs, 0, sizeof *fs);
	fs->data = file_read(path, &fs->len);
	frame_reader_init(&fr, 16u << 20);
	while (off < fs->len) {
		ck_assert_int_eq(frame_reader_feed(&fr, fs->data + off,
						   fs->len - off, &used),
				 BS_OK);
		off += used;
		if (!frame_reader_next(&fr, &f))
			continue;
		ck_assert_uint_lt(fs->n, MAX_FRAMES);
		fs->type[fs->n] = f.type;
		fs->plen[fs->n] = f.len;
		fs->off[fs->n++] = (size_t)fr.consumed - f.len;
	}
	ck_assert_int_eq(frame_reader_finish(&fr), BS_OK);
	frame_reader_release(&fr);
}

/* Writes a stream of the frames of fs in the order `order` (indexes,
 * ending with -1), replacing frame `swap` (if >= 0) by (stype, sp, slen). */
static void frames_write(const struct frames *fs, const int *order, int swap,
			 unsigned stype, const uint8_t *sp, size_t slen,
			 const char *path)
{
	struct buf b;
	size_t i;

	buf_init(&b, 64u << 20);
	frame_stream_begin(&b);
	for (i = 0; order[i] >= 0; i++) {
		int k = order[i];

		if (k == swap)
			frame_put(&b, stype, sp, slen);
		else
			frame_put(&b, fs->type[k], fs->data + fs->off[k],
				  fs->plen[k]);
	}
	frame_stream_end(&b);
	ck_assert_int_eq(b.status, BS_OK);
	file_write(path, b.data, b.len);
	buf_release(&b);
}

/* An import that must fail with `code`, say `needle` and change nothing. */
static void import_refused(const char *db, const char *file, int code,
			   const char *needle, const char *what)
{
	struct state before;
	struct harness_run r;

	state_of(db, &before);
	r = harness_bs("bundle", "import", "--db", db, file, NULL);
	ck_assert_msg(r.code == code, "%s: exit %d, wanted %d; stderr: %s",
		      what, r.code, code, r.err);
	ck_assert_msg(strstr(r.err, needle) != NULL, "%s: message: %s", what,
		      r.err);
	ck_assert_msg(strchr(r.err, '\n') == r.err + r.errlen - 1,
		      "%s: not one line: %s", what, r.err);
	ck_assert_uint_eq(r.outlen, 0);
	harness_run_free(&r);
	state_same(db, &before, what);
}

/* ---- fixtures ---- */

static void setup(void)
{
	char dir[HARNESS_PATH];

	harness_tmp_setup();
	ck_assert_int_ge(sodium_init(), 0);
	harness_path(dir, sizeof dir, "srv");
	harness_server_init(&srv, dir);
	harness_server_start(&srv, 0);
}

/* harness_tmp_teardown kills the server if a test left it running. */
static void teardown(void)
{
	harness_tmp_teardown();
}

/* ---- branch -> district -> server ---- */

START_TEST(relay_through_district)
{
	char a[400], d[400], file[400], akey[HARNESS_HEX_KEY + 1], sql[300];
	uint8_t da[HASH_BYTES], dd[HASH_BYTES], s1[HASH_BYTES],
	    sall[HASH_BYTES];
	struct state before;
	struct harness_run r;

	device("a", "branch", "b1", a, sizeof a);
	device("d", "district", NULL, d, sizeof d);
	device_key(a, akey);
	harness_path(file, sizeof file, "a.bundle");

	/* a branch with no link records three changes */
	harness_put(a, NULL, "members", "name=Li Lei", "phone=13800000001",
		    NULL);
	harness_put(a, NULL, "needs", "category=job", "detail=welder",
		    "status=open", NULL);
	harness_put(a, NULL, "activities", "title=Spring festival",
		    "held_on=2026-01-28", NULL);
	r = export_ok(a, file, NULL);
	ck_assert_ptr_nonnull(strstr(r.out, "\"kind\":\"device\""));
	ck_assert_int_eq(harness_json_int(r.out, "changesets"), 3);
	ck_assert_int_eq(harness_json_int(r.out, "enrollments"), 1);
	ck_assert_int_eq(harness_json_int(r.out, "missing_enrollments"), 0);
	harness_run_free(&r);
	/* exporting sends nothing: the sets stay pending at a */
	ck_assert_int_eq(harness_db_int(a,
					"SELECT count(*) FROM bs_outbox WHERE"
					" acked=0"),
			 3);
	ck_assert_int_eq(harness_db_int(a,
					"SELECT count(*) FROM bs_outbox WHERE"
					" acked=0"),
			 3);
	{
		struct stat st;

		ck_assert_int_eq(stat(file, &st), 0);
		ck_assert_int_eq(st.st_mode & 0777, 0600);
	}

	/* the district laptop, which never synced, takes it in: a's own
	 * enrollment travels with it */
	r = import_json(d, file);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "changesets"), 3);
	ck_assert_int_eq(harness_json_int(r.out, "applied"), 3);
	ck_assert_int_eq(harness_json_int(r.out, "relayed"), 3);
	ck_assert_ptr_nonnull(strstr(r.out, akey));
	harness_run_free(&r);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM bs_applied WHERE"
		 " lower(hex(author))='%s' AND scope='b1' AND bytes IS NOT"
		 " NULL",
		 akey);
	ck_assert_int_eq(harness_db_int(d, sql), 3);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM bs_relay WHERE"
		 " lower(hex(author))='%s' AND acked=0",
		 akey);
	ck_assert_int_eq(harness_db_int(d, sql), 3);
	ck_assert_int_eq(harness_db_int(d, "SELECT count(*) FROM members WHERE"
					   " phone='13800000001'"),
			 1);
	ck_assert_int_eq(harness_db_int(d, "SELECT count(*) FROM needs"), 1);

	/* a second import changes nothing */
	state_of(d, &before);
	r = harness_bs("bundle", "import", "--db", d, file, NULL);
	harness_expect_code(&r, 0);
	ck_assert_msg(strstr(r.err, "0 new change sets") != NULL, "%s", r.err);
	harness_run_free(&r);
	r = import_json(d, file);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "applied"), 0);
	ck_assert_int_eq(harness_json_int(r.out, "duplicates"), 3);
	ck_assert_int_eq(harness_json_int(r.out, "relayed"), 0);
	harness_run_free(&r);
	state_same(d, &before, "second import");

	/* d's sync pushes them with a's signatures */
	r = sync_ok(d);
	ck_assert_int_eq(harness_json_int(r.out, "pushed"), 3);
	ck_assert_int_eq(harness_json_int(r.out, "accepted"), 3);
	ck_assert_int_eq(harness_json_int(r.out, "applied"),
			 2); /* b1, b2 rows */
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(d, "SELECT count(*) FROM bs_relay WHERE"
					   " acked=1 AND push_receipt IS NOT NULL"),
			 3);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM srv_log WHERE kind=1"
		 " AND verdict=0 AND lower(hex(author))='%s' AND scope='b1'",
		 akey);
	ck_assert_int_eq(srv_int(sql), 3);
	snprintf(sql, sizeof sql,
		 "SELECT max(seq) FROM srv_log WHERE kind=1"
		 " AND lower(hex(author))='%s'",
		 akey);
	ck_assert_int_eq(srv_int(sql), 3);
	ck_assert_int_eq(srv_int("SELECT count(*) FROM members WHERE"
				 " phone='13800000001'"),
			 1);

	/* a, back online, is told "duplicate": acknowledged, not doubled */
	r = sync_ok(a);
	ck_assert_int_eq(harness_json_int(r.out, "pushed"), 3);
	ck_assert_int_eq(harness_json_int(r.out, "accepted"), 0);
	ck_assert_int_eq(harness_json_int(r.out, "duplicates"), 3);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a,
					"SELECT count(*) FROM bs_outbox WHERE"
					" acked=1 AND push_receipt IS NOT NULL"),
			 3);
	ck_assert_int_eq(srv_int("SELECT count(*) FROM (SELECT cs_id FROM"
				 " srv_log WHERE kind=1 GROUP BY cs_id"
				 " HAVING count(*) > 1)"),
			 0);
	ck_assert_int_eq(srv_int(sql), 3);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM srv_log WHERE kind=1"
		 " AND lower(hex(author))='%s'",
		 akey);
	ck_assert_int_eq(srv_int(sql), 3);

	/* the next round changes nothing anywhere */
	r = sync_ok(d);
	ck_assert_int_eq(harness_json_int(r.out, "pushed"), 0);
	ck_assert_int_eq(harness_json_int(r.out, "applied"), 0);
	harness_run_free(&r);
	sync_quiet(a);
	harness_server_stop(&srv);
	harness_digest(a, da);
	harness_digest(d, dd);
	server_digest(NULL, sall);
	server_digest("b1", s1);
	harness_digest_eq(dd, sall, "district device and server");
	harness_digest_eq(da, s1, "branch device and the server's b1 view");
}
END_TEST

/* A device bundle must chain to what the importer holds. */
START_TEST(device_bundle_chains_to_replica)
{
	char a[400], d[400], file[400];
	struct harness_run r;

	device("a", "branch", "b1", a, sizeof a);
	device("d", "district", NULL, d, sizeof d);
	harness_path(file, sizeof file, "a.bundle");
	harness_put(a, NULL, "members", "name=Li Lei", NULL);
	sync_quiet(a);
	harness_put(a, NULL, "members", "name=Han Meimei", NULL);
	harness_put(a, NULL, "members", "name=Wei Wei", NULL);
	r = export_ok(a, file, NULL);
	ck_assert_int_eq(harness_json_int(r.out, "changesets"), 2);
	harness_run_free(&r);

	/* d never saw a's first change set: a gap, refused whole */
	import_refused(d, file, 4,
		       "neither the bundle nor this replica "
		       "holds",
		       "gap before the bundle");
	ck_assert_int_eq(harness_db_int(d, "SELECT count(*) FROM members"), 0);

	/* once d has it, the bundle goes in */
	sync_quiet(d);
	r = import_json(d, file);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "applied"), 2);
	ck_assert_int_eq(harness_json_int(r.out, "relayed"), 2);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(d, "SELECT count(*) FROM members"), 3);
}
END_TEST

/* ---- district -> branch ---- */

START_TEST(district_to_branch)
{
	char a[400], c[400], d[400], b[400], file[400], file2[400];
	char sql[300];
	uint8_t db_[HASH_BYTES], s1[HASH_BYTES];
	struct harness_run r;

	device("a", "branch", "b1", a, sizeof a);
	device("c", "branch", "b2", c, sizeof c);
	device("d", "district", NULL, d, sizeof d);
	device("b", "branch", "b1", b, sizeof b);
	harness_path(file, sizeof file, "for-b1.bundle");
	harness_path(file2, sizeof file2, "for-b2.bundle");

	harness_put(a, NULL, "members", "name=Li Lei", NULL);
	harness_put(a, NULL, "needs", "category=job", "detail=welder", NULL);
	harness_put(c, NULL, "members", "name=Wang Wu", "phone=13900000009",
		    NULL);
	/* d's chain interleaves scopes: the b1 bundle holds d's sets 1, 3
	 * and 4, not 2 */
	harness_put(d, NULL, "members", "branch_id=b1", "name=Sun Qi", NULL);
	harness_put(d, NULL, "members", "branch_id=b2", "name=Zhou Ba", NULL);
	harness_put(d, NULL, "trainings", "branch_id=district",
		    "title=Evening school", "held_on=2026-02-01", NULL);
	harness_put(d, NULL, "activities", "branch_id=b1", "title=Visit", NULL);
	sync_quiet(a);
	sync_quiet(c);
	sync_quiet(d);
	sync_quiet(d);

	/* only a district device exports for a branch */
	r = harness_bs("bundle", "export", "--db", a, "--out", file, "--for",
		       "b1", NULL);
	harness_expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "only a district device"));
	harness_run_free(&r);
	ck_assert_int_eq(access(file, F_OK), -1);
	r = harness_bs("bundle", "export", "--db", d, "--out", file, "--for",
		       "district", NULL);
	harness_expect_code(&r, 2);
	harness_run_free(&r);

	r = export_ok(d, file, "b1");
	ck_assert_ptr_nonnull(strstr(r.out, "\"kind\":\"branch\""));
	/* the b1 branch row, a's 2, d's 3 */
	ck_assert_int_eq(harness_json_int(r.out, "changesets"), 6);
	/* d's own, the server's, a's */
	ck_assert_int_eq(harness_json_int(r.out, "enrollments"), 3);
	ck_assert_int_eq(harness_json_int(r.out, "missing_enrollments"), 0);
	harness_run_free(&r);

	/* b, enrolled but never synced, takes it in */
	r = import_json(b, file);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "applied"), 6);
	ck_assert_int_eq(harness_json_int(r.out, "relayed"), 0);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM members WHERE"
					   " branch_id='b1'"),
			 2);
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM members WHERE"
					   " branch_id='b2'"),
			 0);
	ck_assert_int_eq(harness_db_int(b,
					"SELECT count(*) FROM bs_applied WHERE"
					" scope='b2'"),
			 0);
	ck_assert_int_eq(harness_db_int(b,
					"SELECT count(*) FROM trainings WHERE"
					" branch_id='district'"),
			 1);
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM branches"), 1);
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM needs"), 1);
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM bs_relay"), 0);

	/* a bundle for b2 is not for b */
	r = export_ok(d, file2, "b2");
	harness_run_free(&r);
	import_refused(b, file2, 2, "is for branch b2", "bundle for b2");
	/* nor is a b2 device's own bundle */
	harness_put(c, NULL, "members", "name=Zhao Liu", NULL);
	r = export_ok(c, file2, NULL);
	ck_assert_int_eq(harness_json_int(r.out, "changesets"), 1);
	harness_run_free(&r);
	import_refused(b, file2, 2, "may not see", "b2 device's bundle");

	/* b's first sync finds nothing new */
	r = sync_ok(b);
	ck_assert_int_eq(harness_json_int(r.out, "applied"), 0);
	harness_run_free(&r);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM bs_applied");
	ck_assert_int_eq(harness_db_int(b, sql), 6);
	harness_server_stop(&srv);
	harness_digest(b, db_);
	server_digest("b1", s1);
	harness_digest_eq(db_, s1, "fresh b1 device and the server's b1 view");
}
END_TEST

/* ---- damage ---- */

/* Makes a replica bundle of a's three change sets for d (never synced)
 * and returns its frames. */
static void damaged_setup(char *a, char *d, size_t n, char *file,
			  struct frames *fs)
{
	struct harness_run r;

	device("a", "branch", "b1", a, n);
	device("d", "district", NULL, d, n);
	harness_path(file, n, "a.bundle");
	harness_put(a, NULL, "members", "name=Li Lei", "phone=13800000001",
		    NULL);
	harness_put(a, NULL, "members", "name=Han Meimei", NULL);
	harness_put(a, NULL, "needs", "category=training", "detail=computers",
		    NULL);
	r = export_ok(a, file, NULL);
	harness_run_free(&r);
	frames_read(file, fs);
	/* META, a's enrollment, three change sets */
	ck_assert_uint_eq(fs->n, 5);
	ck_assert_int_eq(fs->type[0], FRAME_META);
	ck_assert_int_eq(fs->type[1], FRAME_ENROLLMENT);
	ck_assert_int_eq(fs->type[2], FRAME_CHANGESET);
}

/* A copy of the bundle with one byte of frame k's payload flipped. */
static void flip(const struct frames *fs, int k, size_t at, const char *path)
{
	uint8_t *copy = malloc(fs->len);

	ck_assert_ptr_nonnull(copy);
	ck_assert_uint_lt(at, fs->plen[k]);
	memcpy(copy, fs->data, fs->len);
	copy[fs->off[k] + at] ^= 0x01;
	file_write(path, copy, fs->len);
	free(copy);
}

START_TEST(damage_changes_nothing)
{
	char a[400], d[400], file[400], bad[400];
	struct frames fs;
	struct harness_run r;
	int cs = 3; /* the second change set */
	const int swapped[] = {0, 1, 3, 2, 4, -1};
	const int repeated[] = {0, 1, 2, 3, 4, 3, -1};
	const int dropped[] = {0, 1, 2, 4, -1};
	const int extra_end[] = {0, 1, 2, 3, 4, 1, -1};

	damaged_setup(a, d, sizeof a, file, &fs);
	harness_path(bad, sizeof bad, "bad.bundle");

	/* a flipped byte in the body, the signature, the envelope */
	flip(&fs, cs, fs.plen[cs] - 1, bad);
	import_refused(d, bad, 4,
		       "frame 4 is a change set that does not "
		       "verify",
		       "body byte");
	flip(&fs, cs, fs.plen[cs] / 2, bad);
	import_refused(d, bad, 4, "frame 4", "middle byte");
	flip(&fs, cs, 140, bad);
	import_refused(d, bad, 4, "frame 4", "signature byte");
	flip(&fs, cs, 10, bad);
	import_refused(d, bad, 4, "frame 4", "author byte");
	flip(&fs, cs, 50, bad);
	import_refused(d, bad, 4, "frame 4", "prev byte");

	/* cut short */
	file_write(bad, fs.data, fs.len - 10);
	import_refused(d, bad, 4, "truncated", "last 10 bytes cut");
	file_write(bad, fs.data, fs.len - 2);
	import_refused(d, bad, 4, "truncated", "END cut");
	file_write(bad, fs.data, 3);
	import_refused(d, bad, 4, "truncated", "3 bytes");
	file_write(bad, (const uint8_t *)"", 0);
	import_refused(d, bad, 4, "truncated", "empty file");
	file_write(bad, (const uint8_t *)"id,name\n1,x\n", 12);
	import_refused(d, bad, 4, "not a bundle", "not a bundle");
	{
		uint8_t *more = malloc(fs.len + 1);

		ck_assert_ptr_nonnull(more);
		memcpy(more, fs.data, fs.len);
		more[fs.len] = 0;
		file_write(bad, more, fs.len + 1);
		free(more);
		import_refused(d, bad, 4, "malformed at byte", "after END");
	}

	/* frames out of their order: a's sequence 2 first (a gap), a set
	 * repeated after a later one, a set left out */
	frames_write(&fs, swapped, -1, 0, NULL, 0, bad);
	import_refused(d, bad, 4, "frame 3: device", "swapped sets");
	frames_write(&fs, repeated, -1, 0, NULL, 0, bad);
	import_refused(d, bad, 4, "sequence order", "repeated set");
	frames_write(&fs, dropped, -1, 0, NULL, 0, bad);
	import_refused(d, bad, 4, "neither the bundle nor this replica",
		       "a set left out");
	frames_write(&fs, extra_end, -1, 0, NULL, 0, bad);
	import_refused(d, bad, 4, "frame 6", "enrollment after the sets");
	{
		static const int meta_late[] = {1, 0, 2, 3, 4, -1};

		frames_write(&fs, meta_late, -1, 0, NULL, 0, bad);
		import_refused(d, bad, 4, "frame 1", "META not first");
	}

	/* and the bundle itself goes in */
	r = import_json(d, file);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "applied"), 3);
	harness_run_free(&r);
	free(fs.data);
}
END_TEST

/* A device bundle's META, written here from protocol/FORMAT.md alone. */
static void meta_bytes(struct buf *b, const uint8_t server_pk[32],
		       const uint8_t exporter[32], uint64_t time_ms)
{
	/* protocol/FORMAT.md, "Bundles": magic, version, kind, origin,
	 * server key, exporter, scope, time */
	buf_append(b, "BSBN", 4);
	buf_append_u8(b, 1);
	buf_append_u8(b, 1);
	wire_put_blob(b, "Test", 4);
	buf_append(b, server_pk, 32);
	buf_append(b, exporter, 32);
	wire_put_blob(b, "b1", 2);
	wire_put_u64be(b, time_ms);
}

/* The known answer of protocol/FORMAT.md, "Bundles". */
static void meta_known_answer(void)
{
	static const char want[] =
	    "4253424e01010454657374"
	    "1111111111111111111111111111111111111111111111111111111111111111"
	    "2222222222222222222222222222222222222222222222222222222222222222"
	    "0262310000019ac0e4a000";
	uint8_t k1[32], k2[32];
	char hex[2 * 86 + 1];
	struct buf b;

	memset(k1, 0x11, sizeof k1);
	memset(k2, 0x22, sizeof k2);
	buf_init(&b, 512);
	meta_bytes(&b, k1, k2, UINT64_C(1764172800000));
	ck_assert_int_eq(b.status, BS_OK);
	ck_assert_uint_eq(b.len, 86);
	sodium_bin2hex(hex, sizeof hex, b.data, b.len);
	ck_assert_str_eq(hex, want);
	buf_release(&b);
}

static void hex_key(const char *hex, uint8_t out[32])
{
	size_t got = 0;

	ck_assert_int_eq(
	    sodium_hex2bin(out, 32, hex, HARNESS_HEX_KEY, NULL, &got, NULL), 0);
	ck_assert_uint_eq(got, 32);
}

START_TEST(foreign_signatures_refused)
{
	char a[400], d[400], file[400], bad[400], akey[HARNESS_HEX_KEY + 1];
	uint8_t other_pk[32], other_sk[64], apk[32], spk[32];
	const int all[] = {0, 1, 2, 3, 4, -1};
	struct enrollment en;
	struct frames fs;
	struct buf b;
	struct harness_run r;

	damaged_setup(a, d, sizeof a, file, &fs);
	harness_path(bad, sizeof bad, "bad.bundle");
	device_key(a, akey);
	hex_key(akey, apk);
	hex_key(srv.key, spk);
	crypto_sign_keypair(other_pk, other_sk);

	/* an enrollment of a's key, signed by another server */
	memset(&en, 0, sizeof en);
	memcpy(en.device, apk, 32);
	en.role = ROLE_BRANCH;
	strcpy(en.scope, "b1");
	strcpy(en.name, "a");
	buf_init(&b, 4096);
	ck_assert_int_eq(enrollment_sign(&en, other_sk, &b), BS_OK);
	frames_write(&fs, all, 1, FRAME_ENROLLMENT, b.data, b.len, bad);
	import_refused(d, bad, 4,
		       "frame 2: the enrollment is not one signed "
		       "by this device's district server",
		       "forged enrollment");
	buf_release(&b);

	/* a's real enrollment, as district: the server never signed that */
	en.role = ROLE_DISTRICT;
	strcpy(en.scope, "district");
	ck_assert_int_eq(enrollment_sign(&en, other_sk, &b), BS_OK);
	frames_write(&fs, all, 1, FRAME_ENROLLMENT, b.data, b.len, bad);
	import_refused(d, bad, 4, "frame 2", "forged district enrollment");
	buf_release(&b);

	/* made for another server */
	meta_bytes(&b, other_pk, apk, 0);
	frames_write(&fs, all, 0, FRAME_META, b.data, b.len, bad);
	import_refused(d, bad, 4, "made for the server with key",
		       "another server's META");
	buf_release(&b);

	/* the same META for this server is accepted: the format is as
	 * written */
	meta_known_answer();
	meta_bytes(&b, spk, apk, UINT64_C(1764172800000));
	frames_write(&fs, all, 0, FRAME_META, b.data, b.len, bad);
	buf_release(&b);
	r = import_json(d, bad);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "applied"), 3);
	harness_run_free(&r);
	free(fs.data);
}
END_TEST

/* ---- the relay and refusals ---- */

START_TEST(refused_relay_does_not_block)
{
	char a[400], d[400], file[400], file2[400], akey[HARNESS_HEX_KEY + 1];
	struct harness_run r;
	int port;

	device("a", "branch", "b1", a, sizeof a);
	device("d", "district", NULL, d, sizeof d);
	device_key(a, akey);
	harness_path(file, sizeof file, "a.bundle");
	harness_path(file2, sizeof file2, "a2.bundle");
	sync_quiet(d);
	harness_put(a, NULL, "members", "name=Li Lei", NULL);
	harness_put(a, NULL, "members", "name=Han Meimei", NULL);
	r = export_ok(a, file, NULL);
	harness_run_free(&r);

	/* a is revoked; d does not know yet */
	port = srv.port;
	harness_server_stop(&srv);
	r = harness_bsd("revoke", "--data", srv.dir, akey, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
	harness_server_start(&srv, port);
	r = import_json(d, file);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "relayed"), 2);
	harness_run_free(&r);
	harness_put(d, NULL, "trainings", "branch_id=district",
		    "title=Evening school", NULL);

	/* the server refuses the relay without logging it; d's own change
	 * goes through all the same, and the relay stays queued */
	r = harness_bs("sync", "--db", d, "--json", NULL);
	harness_expect_code(&r, 0);
	ck_assert_msg(strstr(r.err, "relayed for another device") &&
			  strstr(r.err, "revoked"),
		      "stderr: %s", r.err);
	ck_assert_int_eq(harness_json_int(r.out, "accepted"), 1);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(d,
					"SELECT count(*) FROM bs_outbox WHERE"
					" acked=1"),
			 1);
	ck_assert_int_eq(
	    harness_db_int(d, "SELECT count(*) FROM bs_relay WHERE"
			      " acked=0 AND verdict LIKE '%revoked%'"),
	    2);
	{
		char sql[200];

		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM srv_log WHERE"
			 " kind=1 AND lower(hex(author))='%s'",
			 akey);
		ck_assert_int_eq(srv_int(sql), 0);
	}

	/* now that d knows of the revocation, a new set of a is refused;
	 * the ones it holds are still a no-op */
	harness_put(a, NULL, "members", "name=Wei Wei", NULL);
	r = export_ok(a, file2, NULL);
	harness_run_free(&r);
	import_refused(d, file2, 4, "which the server revoked",
		       "revoked author");
	r = import_json(d, file);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "applied"), 0);
	harness_run_free(&r);
}
END_TEST

/* ---- the command line ---- */

START_TEST(usage_and_refusals)
{
	char a[400], n[400], file[400], missing[400];
	struct harness_run r;

	device("a", "branch", "b1", a, sizeof a);
	harness_path(n, sizeof n, "new.db");
	harness_path(file, sizeof file, "x.bundle");
	harness_path(missing, sizeof missing, "missing.bundle");
	harness_device_init(n, NULL);

	r = harness_bs("bundle", NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);
	r = harness_bs("bundle", "frob", "--db", a, NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);
	r = harness_bs("bundle", "export", "--db", a, NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);
	r = harness_bs("bundle", "import", "--db", a, NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);
	r = harness_bs("bundle", "import", "--db", a, file, file, NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);
	r = harness_bs("bundle", "export", "--help", NULL);
	harness_expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "bundle import"));
	harness_run_free(&r);

	/* a device that is not enrolled has no server to bundle for */
	r = harness_bs("bundle", "export", "--db", n, "--out", file, NULL);
	harness_expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "not enrolled"));
	harness_run_free(&r);
	ck_assert_int_eq(access(file, F_OK), -1);

	/* nothing pending: a valid bundle with no change sets */
	r = harness_bs("bundle", "export", "--db", a, "--out", file, NULL);
	harness_expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "no change sets"));
	harness_run_free(&r);
	r = harness_bs("bundle", "import", "--db", n, file, NULL);
	harness_expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "not enrolled"));
	harness_run_free(&r);
	r = harness_bs("bundle", "import", "--db", a, file, NULL);
	harness_expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "0 new change sets"));
	harness_run_free(&r);
	import_refused(a, missing, 2, "cannot read", "missing file");
}
END_TEST

static Suite *bundle_suite(void)
{
	Suite *s = suite_create("bundle");
	TCase *tc = tcase_create("bundle");

	tcase_add_unchecked_fixture(tc, harness_root_setup,
				    harness_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, relay_through_district);
	tcase_add_test(tc, device_bundle_chains_to_replica);
	tcase_add_test(tc, district_to_branch);
	tcase_add_test(tc, damage_changes_nothing);
	tcase_add_test(tc, foreign_signatures_refused);
	tcase_add_test(tc, refused_relay_does_not_block);
	tcase_add_test(tc, usage_and_refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bundle_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
