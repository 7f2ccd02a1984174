/* test_pushanswer.c - Check suite 'pushanswer': the client facing a server
 * that answers a push wrongly. A relay thread sits between a real
 * branchsync and a real branchsyncd, forwards every request, and rewrites
 * the push answer: signatures flipped, receipts re-signed with the
 * server's own key (or another) for other counts, ids, origins or
 * checkpoints, truncated or garbage streams, an empty body. Each time the
 * sync must fail with exit 4 and keep nothing: the outbox still pending, no
 * receipt, the data and checkpoint as they were; the next honest sync then
 * converges. Not for the server's side of pushes (test_server, test_sync). */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "buf.h"
#include "checkpoint.h"
#include "frame.h"
#include "harness.h"
#include "keystore.h"
#include "pushreceipt.h"
#include "sign.h"
#include "wire.h"

#define PENDING 3              /* change sets each forged push carries */
#define RELAY_HEAD_MAX 16384
#define RELAY_BODY_MAX (8 << 20)

/* How the relay rewrites the answer to a push. */
enum forge {
	FORGE_NONE,
	FORGE_SIG_FLIP,        /* one bit of the receipt's signature */
	FORGE_COUNT_SHORT,     /* re-signed: one verdict less than sent */
	FORGE_COUNT_LONG,      /* re-signed: one verdict more than sent */
	FORGE_IDS_ORDER,       /* re-signed over the ids in another order */
	FORGE_IDS_OTHER,       /* re-signed over other ids */
	FORGE_OTHER_KEY,       /* checkpoint and receipt by another key */
	FORGE_RECEIPT_KEY,     /* server's checkpoint, receipt by another key */
	FORGE_ORIGIN,          /* re-signed for another log */
	FORGE_ROOT,            /* re-signed checkpoint with another root */
	FORGE_NO_PROOF,        /* the consistency proof left out */
	FORGE_CUT_RECEIPT,     /* the stream cut inside the receipt */
	FORGE_NO_END,          /* the stream without its END */
	FORGE_GARBAGE,         /* not a frame stream at all */
	FORGE_BAD_FRAME,       /* a frame type >= 128 after the receipt */
	FORGE_EXTRA_FRAME,     /* an unexpected frame before END */
	FORGE_EMPTY,           /* 200 with an empty body */
	FORGE_INDEX_BEYOND,    /* accepted at the checkpoint's size */
	FORGE_INDEX_OLD,       /* accepted at an index already known */
	FORGE_INDEX_TWICE,     /* two sets accepted at one index */
	FORGE_HTTP_CUT,        /* the connection closed inside the body */
};

/* The relay: forwards each request to the real server on a connection
 * of its own (one request a connection), rewriting push answers. Set up
 * by the test before the thread starts; only `pushes` changes after. */
struct relay {
	int lfd, port, upstream;
	enum forge mode;
	struct keystore_key *sk;        /* the server's key */
	uint8_t ids[PENDING][HASH_BYTES]; /* the ids pushed, in order */
	pthread_mutex_t lock;
	int pushes;                     /* push answers rewritten */
	uint8_t forged_cp[CHECKPOINT_SIGNED_MAX]; /* last checkpoint forged */
	size_t forged_cp_len;
	pthread_t th;
};

static struct harness_server srv;  /* made and started by setup() */
static struct relay rl;            /* started by relay_start() */
static char dev[HARNESS_PATH], peer[HARNESS_PATH];

/* ---- the server's key and a stranger's ---- */

static struct keystore_key *server_secret(void)
{
	char path[HARNESS_PATH];
	uint8_t buf[4096];
	struct keystore_key *k = NULL;
	FILE *f;
	size_t n;

	harness_fmt(path, sizeof path, "%s/server.key", srv.dir);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	ck_assert_int_eq(keystore_open(buf, n, NULL, &k), BS_OK);
	return k;
}

/* ---- rewriting a push answer ---- */

/* Re-signs pr (its checkpoint with cp_sk, itself with sk) over ids_hash
 * and appends its wire form to out. */
static void forge_sign(struct pushreceipt *pr, const uint8_t *cp_sk,
		       const uint8_t *sk, const uint8_t ids_hash[HASH_BYTES],
		       struct buf *out)
{
	struct buf cpb, sg;

	buf_init(&cpb, CHECKPOINT_SIGNED_MAX);
	buf_init(&sg, PUSHRECEIPT_SIGNED_MAX);
	ck_assert_int_eq(checkpoint_sign(&pr->checkpoint, cp_sk, &cpb), BS_OK);
	memcpy(pr->ids_hash, ids_hash, HASH_BYTES);
	ck_assert_int_eq(pushreceipt_sign(pr, sk, &sg), BS_OK);
	ck_assert_int_eq(pushreceipt_wire_pack(sg.data, sg.len, out), BS_OK);
	pthread_mutex_lock(&rl.lock);
	memcpy(rl.forged_cp, cpb.data, cpb.len);
	rl.forged_cp_len = cpb.len;
	pthread_mutex_unlock(&rl.lock);
	buf_release(&cpb);
	buf_release(&sg);
}

/* Signs pr honestly, then sets its first item's index to `index`, which
 * the signer refuses (outside the tree), and signs those bytes by hand. */
static void forge_index(struct pushreceipt *pr, uint64_t index,
			const uint8_t ids_hash[HASH_BYTES], struct buf *out)
{
	struct buf cpb, sg;
	struct wire_reader r;
	const uint8_t *blob;
	size_t bloblen, at;
	uint64_t count;

	buf_init(&cpb, CHECKPOINT_SIGNED_MAX);
	buf_init(&sg, PUSHRECEIPT_SIGNED_MAX);
	ck_assert_int_eq(checkpoint_sign(&pr->checkpoint, rl.sk->sk, &cpb),
			 BS_OK);
	memcpy(pr->ids_hash, ids_hash, HASH_BYTES);
	ck_assert(pr->items[0].logged);
	pr->items[0].index = 0;
	ck_assert_int_eq(pushreceipt_sign(pr, rl.sk->sk, &sg), BS_OK);
	wire_reader_init(&r, sg.data + 5, sg.len - 5);
	ck_assert_int_eq(wire_get_blob(&r, CHECKPOINT_SIGNED_MAX, &blob,
				       &bloblen), BS_OK);
	ck_assert_int_eq(wire_get_varint(&r, &count), BS_OK);
	at = sg.len - wire_remaining(&r) + HASH_BYTES + 1;
	/* the honest index 0 is one byte; the forged one must be too */
	ck_assert_uint_eq(sg.data[at], 0);
	ck_assert_uint_lt(index, 128);
	sg.data[at] = (uint8_t)index;
	ck_assert_int_eq(sign_detached(SIGN_PUSHRECEIPT, sg.data,
				       sg.len - SIGN_BYTES, rl.sk->sk,
				       sg.data + sg.len - SIGN_BYTES), BS_OK);
	ck_assert_int_eq(pushreceipt_wire_pack(sg.data, sg.len, out), BS_OK);
	buf_release(&cpb);
	buf_release(&sg);
}

/* The frames of an answer: up to 4, copied. */
struct frames {
	size_t n;
	uint8_t type[4];
	struct buf payload[4];
};

static void frames_read(const uint8_t *p, size_t len, struct frames *fs)
{
	struct frame_reader r;
	struct frame f;
	size_t used;

	fs->n = 0;
	frame_reader_init(&r, RELAY_BODY_MAX);
	while (len > 0) {
		ck_assert_int_eq(frame_reader_feed(&r, p, len, &used), BS_OK);
		p += used;
		len -= used;
		if (frame_reader_next(&r, &f)) {
			ck_assert_uint_lt(fs->n, 4);
			fs->type[fs->n] = f.type;
			buf_init(&fs->payload[fs->n], RELAY_BODY_MAX);
			buf_append(&fs->payload[fs->n], f.payload, f.len);
			fs->n++;
		}
	}
	ck_assert_int_eq(frame_reader_finish(&r), BS_OK);
	frame_reader_release(&r);
}

static void frames_release(struct frames *fs)
{
	size_t i;

	for (i = 0; i < fs->n; i++)
		buf_release(&fs->payload[i]);
}

/* Rewrites the receipt frame (fs->payload[0]) as the mode says. */
static void forge_receipt(struct frames *fs, enum forge mode)
{
	uint8_t ids[PENDING][HASH_BYTES], hash[HASH_BYTES], other[HASH_BYTES];
	uint8_t pk[SIGN_PUBLIC_BYTES], sk[SIGN_SECRET_BYTES];
	struct buf full, wire;
	struct pushreceipt pr;
	struct buf *p = &fs->payload[0];
	size_t i;

	memset(&pr, 0, sizeof pr);
	buf_init(&full, PUSHRECEIPT_SIGNED_MAX);
	buf_init(&wire, PUSHRECEIPT_SIGNED_MAX);
	pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])rl.ids, PENDING,
			     hash);
	ck_assert_int_eq(pushreceipt_wire_unpack(p->data, p->len, hash, &full),
			 BS_OK);
	ck_assert_int_eq(pushreceipt_decode(full.data, full.len, &pr), BS_OK);
	ck_assert_int_eq(pushreceipt_verify(&pr, rl.sk->pk), BS_OK);
	ck_assert_uint_eq(pr.count, PENDING);
	crypto_sign_keypair(pk, sk);
	switch (mode) {
	case FORGE_SIG_FLIP:
		p->data[p->len - 1] ^= 0x01;
		goto cleanup;
	case FORGE_COUNT_SHORT:
		pr.count--;
		forge_sign(&pr, rl.sk->sk, rl.sk->sk, hash, &wire);
		pr.count++;
		break;
	case FORGE_COUNT_LONG: {
		struct pushreceipt_item *items = calloc(PENDING + 1,
							sizeof *items);
		struct pushreceipt_item *keep = pr.items;

		ck_assert_ptr_nonnull(items);
		memcpy(items, pr.items, PENDING * sizeof *items);
		items[PENDING] = items[PENDING - 1];
		items[PENDING].status = VERDICT_DUPLICATE;
		pr.items = items;
		pr.count = PENDING + 1;
		forge_sign(&pr, rl.sk->sk, rl.sk->sk, hash, &wire);
		pr.items = keep;
		pr.count = PENDING;
		free(items);
		break;
	}
	case FORGE_IDS_ORDER:
		for (i = 0; i < PENDING; i++)
			memcpy(ids[i], rl.ids[PENDING - 1 - i], HASH_BYTES);
		pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])ids,
				     PENDING, other);
		forge_sign(&pr, rl.sk->sk, rl.sk->sk, other, &wire);
		break;
	case FORGE_IDS_OTHER:
		memcpy(ids, rl.ids, sizeof ids);
		ids[1][0] ^= 0x80;
		pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])ids,
				     PENDING, other);
		forge_sign(&pr, rl.sk->sk, rl.sk->sk, other, &wire);
		break;
	case FORGE_OTHER_KEY:
		forge_sign(&pr, sk, sk, hash, &wire);
		break;
	case FORGE_RECEIPT_KEY:
		forge_sign(&pr, rl.sk->sk, sk, hash, &wire);
		break;
	case FORGE_ORIGIN:
		snprintf(pr.checkpoint.origin, sizeof pr.checkpoint.origin,
			 "Elsewhere");
		forge_sign(&pr, rl.sk->sk, rl.sk->sk, hash, &wire);
		break;
	case FORGE_ROOT:
		pr.checkpoint.root[7] ^= 0x10;
		forge_sign(&pr, rl.sk->sk, rl.sk->sk, hash, &wire);
		break;
	case FORGE_INDEX_BEYOND:
		forge_index(&pr, pr.checkpoint.size, hash, &wire);
		break;
	case FORGE_INDEX_OLD:
		/* index 0 is the first enrollment: logged long before */
		ck_assert_int_eq(pr.items[0].status, VERDICT_ACCEPTED);
		pr.items[0].index = 0;
		forge_sign(&pr, rl.sk->sk, rl.sk->sk, hash, &wire);
		break;
	case FORGE_INDEX_TWICE:
		ck_assert_int_eq(pr.items[1].status, VERDICT_ACCEPTED);
		pr.items[1].index = pr.items[0].index;
		forge_sign(&pr, rl.sk->sk, rl.sk->sk, hash, &wire);
		break;
	default:
		ck_abort_msg("mode %d is not a receipt's", (int)mode);
	}
	buf_reset(p);
	buf_append(p, wire.data, wire.len);
cleanup:
	pushreceipt_release(&pr);
	buf_release(&full);
	buf_release(&wire);
}

/* The push answer `body` rewritten as rl.mode says, into out. */
static void forge_answer(const uint8_t *body, size_t len, struct buf *out)
{
	static const uint8_t bad[] = "<html>502 Bad Gateway</html>";
	struct frames fs;
	size_t i;

	frames_read(body, len, &fs);
	ck_assert_uint_ge(fs.n, 2); /* the log grew: receipt and proof */
	ck_assert_int_eq(fs.type[0], FRAME_PUSHRECEIPT);
	ck_assert_int_eq(fs.type[1], FRAME_PROOF);
	switch (rl.mode) {
	case FORGE_NONE:
		break;
	case FORGE_NO_PROOF:
		buf_release(&fs.payload[1]);
		fs.n = 1;
		break;
	case FORGE_HTTP_CUT:
	case FORGE_CUT_RECEIPT:
	case FORGE_NO_END:
	case FORGE_GARBAGE:
	case FORGE_BAD_FRAME:
	case FORGE_EXTRA_FRAME:
	case FORGE_EMPTY:
		break;
	default:
		forge_receipt(&fs, rl.mode);
	}
	frame_stream_begin(out);
	for (i = 0; i < fs.n; i++) {
		frame_put(out, fs.type[i], fs.payload[i].data,
			  fs.payload[i].len);
		if (i == 0 && rl.mode == FORGE_BAD_FRAME)
			buf_append(out, "\x90\x01\x00", 3);
	}
	if (rl.mode == FORGE_EXTRA_FRAME)
		frame_put(out, FRAME_CHECKPOINT, "x", 1);
	frame_stream_end(out);
	ck_assert_int_eq(out->status, BS_OK);
	if (rl.mode == FORGE_CUT_RECEIPT)
		out->len = 5 + fs.payload[0].len / 2;
	else if (rl.mode == FORGE_NO_END)
		out->len -= 2;
	else if (rl.mode == FORGE_EMPTY)
		out->len = 0;
	else if (rl.mode == FORGE_GARBAGE) {
		buf_reset(out);
		buf_append(out, bad, sizeof bad - 1);
	}
	frames_release(&fs);
}

/* ---- the relay: plain HTTP/1.1, one request a connection ---- */

static void relay_write(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w <= 0)
			return; /* the client went away: its problem */
		c += w;
		n -= (size_t)w;
	}
}

/* Reads a message's head (through the blank line) and, when it says
 * Content-Length, its body; to EOF when it does not (answers). */
static int relay_read(int fd, struct buf *msg, size_t *head, int to_eof)
{
	uint8_t tmp[16384];
	long clen = -1;
	char *p, *end;

	*head = 0;
	for (;;) {
		ssize_t n;

		if (*head == 0 && msg->len > 0 && (end = memmem(msg->data,
					msg->len, "\r\n\r\n", 4))) {
			*head = (size_t)(end - (char *)msg->data) + 4;
			p = strcasestr((char *)msg->data, "\r\ncontent-length:");
			if (p && p < end)
				clen = strtol(p + 17, NULL, 10);
		}
		if (*head && !to_eof && msg->len >= *head + (size_t)(clen < 0
							? 0 : clen))
			return 0;
		n = read(fd, tmp, sizeof tmp);
		if (n < 0)
			return -1;
		if (n == 0)
			return *head ? 0 : -1;
		buf_append(msg, tmp, (size_t)n);
		buf_append(msg, "", 1); /* a NUL after it, for strcasestr */
		msg->len--;
		if (msg->status != BS_OK)
			return -1;
	}
}

/* Appends the head's lines except those named in `drop` (each ends with
 * ':'), then `extra`. */
static void relay_head(struct buf *out, const uint8_t *head, size_t len,
		       const char *const *drop, const char *extra)
{
	const char *p = (const char *)head, *end = p + len - 2;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		size_t i, keep = 1;

		for (i = 0; drop[i]; i++)
			if (strncasecmp(p, drop[i], strlen(drop[i])) == 0)
				keep = 0;
		if (keep)
			buf_append(out, p, (size_t)(eol - p) + 2);
		p = eol + 2;
	}
	buf_append(out, extra, strlen(extra));
	buf_append(out, "\r\n", 2);
}

static int relay_connect(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

static void relay_one(int cfd)
{
	static const char *const req_drop[] = {
		"connection:", "keep-alive:", "accept-encoding:", NULL,
	};
	static const char *const ans_drop[] = {
		"connection:", "keep-alive:", "content-length:",
		"transfer-encoding:", NULL,
	};
	struct buf req, up, ans, body, out;
	size_t head, ahead;
	int ufd, push;
	char extra[64];

	buf_init(&req, RELAY_BODY_MAX);
	buf_init(&up, RELAY_BODY_MAX);
	buf_init(&ans, RELAY_BODY_MAX);
	buf_init(&body, RELAY_BODY_MAX);
	buf_init(&out, RELAY_BODY_MAX);
	if (relay_read(cfd, &req, &head, 0))
		goto cleanup;
	push = req.len > 14 && memcmp(req.data, "POST /v1/push?", 14) == 0;
	/* the answer comes uncompressed, so that it can be rewritten */
	relay_head(&up, req.data, head, req_drop, "Connection: close\r\n");
	buf_append(&up, req.data + head, req.len - head);
	ufd = relay_connect(rl.upstream);
	relay_write(ufd, up.data, up.len);
	ck_assert_int_eq(relay_read(ufd, &ans, &ahead, 1), 0);
	close(ufd);
	ck_assert_ptr_null(strcasestr((char *)ans.data, "\r\ncontent-encoding:"));
	if (push && memcmp(ans.data, "HTTP/1.1 200", 12) == 0) {
		forge_answer(ans.data + ahead, ans.len - ahead, &body);
		pthread_mutex_lock(&rl.lock);
		rl.pushes++;
		pthread_mutex_unlock(&rl.lock);
	} else {
		buf_append(&body, ans.data + ahead, ans.len - ahead);
	}
	snprintf(extra, sizeof extra, "Content-Length: %zu\r\n"
		 "Connection: close\r\n", body.len);
	relay_head(&out, ans.data, ahead, ans_drop, extra);
	buf_append(&out, body.data, body.len);
	ck_assert_int_eq(out.status, BS_OK);
	if (push && rl.mode == FORGE_HTTP_CUT)
		out.len -= body.len / 2; /* Content-Length promised it all */
	relay_write(cfd, out.data, out.len);
cleanup:
	buf_release(&req);
	buf_release(&up);
	buf_release(&ans);
	buf_release(&body);
	buf_release(&out);
}

static void *relay_main(void *arg)
{
	int cfd;

	(void)arg;
	while ((cfd = accept(rl.lfd, NULL, NULL)) >= 0) {
		relay_one(cfd);
		shutdown(cfd, SHUT_WR);
		close(cfd);
	}
	return NULL;
}

/* Starts the relay in front of srv, rewriting pushes as `mode`. The
 * thread lives until the test's process ends. */
static void relay_start(enum forge mode)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof a;

	rl.mode = mode;
	rl.upstream = srv.port;
	rl.pushes = 0;
	rl.forged_cp_len = 0;
	rl.sk = server_secret();
	pthread_mutex_init(&rl.lock, NULL);
	rl.lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(rl.lfd, 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(rl.lfd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(rl.lfd, 16), 0);
	ck_assert_int_eq(getsockname(rl.lfd, (struct sockaddr *)&a, &alen), 0);
	rl.port = ntohs(a.sin_port);
	ck_assert_int_eq(pthread_create(&rl.th, NULL, relay_main, NULL), 0);
}

static void relay_mode(enum forge mode)
{
	pthread_mutex_lock(&rl.lock);
	rl.mode = mode;
	rl.pushes = 0;
	pthread_mutex_unlock(&rl.lock);
}

static int relay_pushes(void)
{
	int n;

	pthread_mutex_lock(&rl.lock);
	n = rl.pushes;
	pthread_mutex_unlock(&rl.lock);
	return n;
}

/* ---- what the replica holds ---- */

/* The blob of the first row of sql into out (cap n); returns its size,
 * or -1 for no row. */
static long db_blob(const char *path, const char *sql, uint8_t *out,
		    size_t n)
{
	sqlite3 *db = harness_db_open(path, 0);
	sqlite3_stmt *st = NULL;
	long len = -1;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
			 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW) {
		len = sqlite3_column_bytes(st, 0);
		ck_assert_uint_le((size_t)len, n);
		memcpy(out, sqlite3_column_blob(st, 0), (size_t)len);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return len;
}

/* What a failed sync must leave as it was. */
struct kept {
	uint8_t digest[HASH_BYTES];
	uint8_t cp[CHECKPOINT_SIGNED_MAX];
	long cp_len;
	long long cursor, receipts, evidence, pending, answered;
};

static void kept_read(const char *db, struct kept *k)
{
	harness_digest(db, k->digest);
	k->cp_len = db_blob(db, "SELECT value FROM bs_settings WHERE"
			    " key='checkpoint'", k->cp, sizeof k->cp);
	k->cursor = harness_db_int(db, "SELECT coalesce((SELECT value FROM"
				   " bs_settings WHERE key='cursor'), -1)");
	k->receipts = harness_db_int(db, "SELECT count(*) FROM bs_receipts");
	k->evidence = harness_db_int(db, "SELECT count(*) FROM bs_evidence");
	k->pending = harness_db_int(db, "SELECT count(*) FROM bs_outbox"
				    " WHERE acked=0 AND push_receipt IS NULL"
				    " AND verdict IS NULL");
	k->answered = harness_db_int(db, "SELECT count(*) FROM bs_outbox"
				     " WHERE acked<>0");
}

static void kept_same(const struct kept *a, const struct kept *b,
		      long long more_evidence)
{
	harness_digest_eq(a->digest, b->digest, "the replica's records");
	ck_assert_int_eq(a->cp_len, b->cp_len);
	ck_assert_msg(memcmp(a->cp, b->cp, (size_t)a->cp_len) == 0,
		      "the stored checkpoint changed");
	ck_assert_int_eq(a->cursor, b->cursor);
	ck_assert_int_eq(a->receipts, b->receipts);
	ck_assert_int_eq(a->evidence + more_evidence, b->evidence);
	ck_assert_int_eq(a->pending, b->pending);
	ck_assert_int_eq(a->answered, b->answered);
}

/* ---- fixtures ---- */

static void setup(void)
{
	char dir[HARNESS_PATH];

	harness_tmp_setup();
	harness_path(dir, sizeof dir, "srv");
	harness_server_init(&srv, dir);
	harness_server_start(&srv, 0);
	harness_path(dev, sizeof dev, "dev.db");
	harness_path(peer, sizeof peer, "peer.db");
	harness_device(&srv, dev, "branch", "b1", NULL);
	harness_device(&srv, peer, "branch", "b1", NULL);
}

static void teardown(void)
{
	harness_tmp_teardown();
}

/* One row synced honestly (so the stored checkpoint is past the
 * enrollments), then PENDING rows left in the outbox, whose ids go to the
 * relay, which the device now syncs through. */
static void prepare(enum forge mode)
{
	struct harness_run r;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	char name[32];
	int i;

	harness_put(dev, NULL, "members", "name=First", NULL);
	r = harness_bs("sync", "--db", dev, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
	for (i = 0; i < PENDING; i++) {
		snprintf(name, sizeof name, "name=Pending %d", i);
		harness_put(dev, NULL, "members", name, NULL);
	}
	relay_start(mode);
	db = harness_db_open(dev, 0);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT id FROM bs_outbox"
					    " WHERE acked=0 ORDER BY seq", -1,
					    &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		ck_assert_uint_lt(n, PENDING);
		ck_assert_int_eq(sqlite3_column_bytes(st, 0), HASH_BYTES);
		memcpy(rl.ids[n++], sqlite3_column_blob(st, 0), HASH_BYTES);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	ck_assert_uint_eq(n, PENDING);
	harness_point_at(dev, rl.port);
}

/* ---- the cases ---- */

struct answer_case {
	enum forge mode;
	const char *name;
	const char *needle;      /* in the one sentence on stderr */
	int fork;                /* kept as evidence of a fork */
};

#define SIGFAIL "push receipt does not verify (signature does not verify)"
#define STREAMFAIL "not a valid frame stream"

static const struct answer_case cases[] = {
	{FORGE_SIG_FLIP, "signature flipped", SIGFAIL, 0},
	{FORGE_COUNT_SHORT, "one verdict less",
	 "push receipt is not for the 3 change sets sent", 0},
	{FORGE_COUNT_LONG, "one verdict more",
	 "push receipt is not for the 3 change sets sent", 0},
	{FORGE_IDS_ORDER, "ids in another order", SIGFAIL, 0},
	{FORGE_IDS_OTHER, "other ids", SIGFAIL, 0},
	{FORGE_OTHER_KEY, "another key", SIGFAIL, 0},
	{FORGE_RECEIPT_KEY, "receipt by another key", SIGFAIL, 0},
	{FORGE_ORIGIN, "another log",
	 "push receipt is not for the 3 change sets sent to log Test", 0},
	{FORGE_ROOT, "checkpoint off the known log",
	 "log forked (the consistency proof fails)", 1},
	{FORGE_NO_PROOF, "no consistency proof",
	 "lacks the consistency proof", 0},
	{FORGE_CUT_RECEIPT, "cut inside the receipt",
	 STREAMFAIL " (input is truncated", 0},
	{FORGE_NO_END, "no END", STREAMFAIL " (input is truncated", 0},
	{FORGE_GARBAGE, "not frames", STREAMFAIL " (wrong magic bytes", 0},
	{FORGE_BAD_FRAME, "frame type 144", STREAMFAIL " (invalid", 0},
	{FORGE_EXTRA_FRAME, "an extra checkpoint frame",
	 "unexpected frame of type 3", 0},
	{FORGE_EMPTY, "empty body", STREAMFAIL " (input is truncated", 0},
	{FORGE_INDEX_BEYOND, "accepted beyond the checkpoint",
	 "push receipt does not verify (invalid field value)", 0},
	{FORGE_INDEX_OLD, "accepted inside the known log",
	 "was accepted at log index 0, which the checkpoint of", 0},
	{FORGE_INDEX_TWICE, "two accepted at one index",
	 "change set 2 of the batch was accepted at log index", 0},
};

/* Each case: exit 4 with its sentence, nothing kept, the fork (if any)
 * kept as evidence; then the honest server's answer through the same
 * relay is taken, and the device and its peer converge. */
START_TEST(forged_answer_refused)
{
	const struct answer_case *c = &cases[_i];
	struct kept before, after;
	struct harness_run r;
	uint8_t a[CHECKPOINT_SIGNED_MAX], b[CHECKPOINT_SIGNED_MAX];
	uint8_t d1[HASH_BYTES], d2[HASH_BYTES];
	long alen, blen;

	prepare(c->mode);
	kept_read(dev, &before);
	ck_assert_int_eq(before.pending, PENDING);

	r = harness_bs("sync", "--db", dev, NULL);
	ck_assert_msg(r.code == 4, "%s: exit %d, stderr: %s", c->name, r.code,
		      r.err);
	ck_assert_msg(strstr(r.err, c->needle) != NULL,
		      "%s: stderr lacks '%s': %s", c->name, c->needle, r.err);
	/* one sentence, not a crash */
	ck_assert_msg(strchr(r.err, '\n') == r.err + r.errlen - 1,
		      "%s: %s", c->name, r.err);
	harness_run_free(&r);
	ck_assert_int_eq(relay_pushes(), 1);
	harness_integrity_ok(dev);
	kept_read(dev, &after);
	kept_same(&before, &after, c->fork);
	if (c->fork) {
		alen = db_blob(dev, "SELECT a FROM bs_evidence WHERE"
			       " kind='fork'", a, sizeof a);
		blen = db_blob(dev, "SELECT b FROM bs_evidence WHERE"
			       " kind='fork'", b, sizeof b);
		ck_assert_int_eq(alen, before.cp_len);
		ck_assert(memcmp(a, before.cp, (size_t)alen) == 0);
		ck_assert_int_eq(blen, (long)rl.forged_cp_len);
		ck_assert(memcmp(b, rl.forged_cp, (size_t)blen) == 0);
	}

	/* the same relay, honest now: the server logged the sets the
	 * first time, so they come back as duplicates */
	relay_mode(FORGE_NONE);
	r = harness_bs("sync", "--db", dev, "--json", NULL);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "pushed"), PENDING);
	ck_assert_int_eq(harness_json_int(r.out, "duplicates"), PENDING);
	ck_assert_int_eq(harness_json_int(r.out, "accepted"), 0);
	harness_run_free(&r);
	ck_assert_int_eq(relay_pushes(), 1);
	ck_assert_int_eq(harness_db_int(dev, "SELECT count(*) FROM bs_outbox"
					" WHERE acked<>1"), 0);
	ck_assert_int_eq(harness_db_int(dev, "SELECT count(*) FROM"
					" bs_receipts"), before.receipts + 1);
	r = harness_bs("sync", "--db", peer, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
	r = harness_bs("sync", "--db", dev, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
	harness_digest(dev, d1);
	harness_digest(peer, d2);
	harness_digest_eq(d1, d2, "device and peer");
	ck_assert_int_eq(harness_db_int(peer, "SELECT count(*) FROM members"
					" WHERE name LIKE 'Pending %'"),
			 PENDING);
	keystore_key_free(rl.sk);
}
END_TEST

/* The relay itself changes nothing: an honest answer through it is
 * taken, so the failures above are the forgeries'. */
START_TEST(honest_relay_passes)
{
	struct harness_run r;

	prepare(FORGE_NONE);
	r = harness_bs("sync", "--db", dev, "--json", NULL);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "accepted"), PENDING);
	harness_run_free(&r);
	ck_assert_int_eq(relay_pushes(), 1);
	ck_assert_int_eq(harness_db_int(dev, "SELECT count(*) FROM bs_outbox"
					" WHERE acked<>1"), 0);
	keystore_key_free(rl.sk);
}
END_TEST

/* An answer cut inside its body by a closed connection is a lost link,
 * not a lie: the push is retried (it is idempotent) and, when every try
 * is cut, the sync is exit 3 with the sets pending; then it converges. */
START_TEST(cut_answer_is_unreachable)
{
	struct kept before, after;
	struct harness_run r;

	prepare(FORGE_HTTP_CUT);
	kept_read(dev, &before);
	r = harness_bs("sync", "--db", dev, NULL);
	harness_expect_code(&r, 3);
	ck_assert_msg(strstr(r.err, "server unreachable: 3 change sets wait "
			     "in the outbox; nothing is lost") != NULL, "%s",
		      r.err);
	harness_run_free(&r);
	ck_assert_int_eq(relay_pushes(), 5); /* TRANSPORT_ATTEMPTS */
	kept_read(dev, &after);
	kept_same(&before, &after, 0);
	relay_mode(FORGE_NONE);
	r = harness_bs("sync", "--db", dev, "--json", NULL);
	harness_expect_code(&r, 0);
	ck_assert_int_eq(harness_json_int(r.out, "duplicates"), PENDING);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(dev, "SELECT count(*) FROM bs_outbox"
					" WHERE acked<>1"), 0);
	keystore_key_free(rl.sk);
}
END_TEST

static Suite *pushanswer_suite(void)
{
	Suite *s = suite_create("pushanswer");
	TCase *tc = tcase_create("pushanswer");

	tcase_add_unchecked_fixture(tc, harness_root_setup,
				    harness_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, honest_relay_passes);
	tcase_add_test(tc, cut_answer_is_unreachable);
	tcase_add_loop_test(tc, forged_answer_refused, 0,
			    (int)(sizeof cases / sizeof cases[0]));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pushanswer_suite());
	int failed;

	if (sign_init() != BS_OK)
		return 1;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
