/* faultproxy.c - a fault-injecting TCP relay on loopback for the resilience
 * tests and benchmarks (this kernel has no netem): latency, a bandwidth cap,
 * resets, stalls, and the bytes on the wire counted. Not a general proxy:
 * loopback targets only, and it knows nothing of HTTP. Options: usage(). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 128
#define READ_SIZE 16384
/* read ahead per lane without a rate limit; with one, see lane_cap() */
#define QUEUE_MAX (1 << 20)
#define COUNT_EVERY_MS 1000

enum { UP = 0, DOWN = 1 };        /* lanes, and the index of their source */
enum { CLIENT = 0, TARGET = 1 };  /* the two sockets of a connection */

static const char *const lane_name[2] = { "up", "down" };

struct chunk {
	struct chunk *next;
	int64_t due_ms;   /* when it may leave: read time + delay */
	size_t len, off;  /* off: bytes of it already written on */
	char data[];
};

/* One direction of one connection. Its source is fd[lane], its
 * destination fd[1 - lane]. */
struct lane {
	struct chunk *head, *tail;
	size_t queued;    /* bytes read and not yet written on */
	uint64_t sent;    /* bytes written on, on this connection */
	int64_t end_ms;   /* -1 while the source is open; else when its end
			   * may be passed on (it keeps the delay too) */
	int reset;        /* the source ended with an error: pass a reset on */
	int shut;         /* the end was passed on; nothing more goes */
	int blocked;      /* the destination's buffer is full: wait POLLOUT */
};

struct conn {
	int fd[2];
	int connecting;   /* the connection to the target is not up yet */
	int dead;         /* both sockets closed; freed by conns_reap() */
	unsigned long id;
	struct lane lane[2];
};

/* Bandwidth of one direction, shared by every connection as on one link.
 * Milli-bytes, so that a rate in bytes per second refills exactly per ms. */
struct bucket {
	int64_t mbytes;
	int64_t last_ms;
};

struct options {
	const char *listen, *target, *port_file, *count_file;
	long long delay_ms, rate, cut[2], cut_every_ms, stall_ms, stall_after;
	int cut_once, verbose;
};

static struct options opt;
static struct sockaddr_storage target_addr;
static socklen_t target_len;
static int listen_fd = -1, wake_pipe[2] = { -1, -1 };
static struct conn *conns[MAX_CONNS];
static unsigned long conn_seq;
static uint64_t total[2];      /* bytes written on, per lane, all conns */
static int cut_armed[2];       /* --cut-once: not fired yet */
static struct bucket bucket[2];
static int64_t burst_mbytes;
static int64_t next_cut_ms, next_count_ms, stall_until_ms = -1;
static int stall_done;
static volatile sig_atomic_t stopping;

static void usage(FILE *f)
{
	fputs(
	    "usage: faultproxy --listen 127.0.0.1:PORT --target 127.0.0.1:PORT\n"
	    "                  [--port-file FILE] [--count-file FILE]\n"
	    "                  [--delay-ms N] [--rate BYTES_PER_S]\n"
	    "                  [--cut-up N] [--cut-down N] [--cut-once]\n"
	    "                  [--cut-every-ms N]\n"
	    "                  [--stall-ms N --stall-after N] [--verbose]\n\n"
	    "Relays every connection accepted on --listen to --target. Both\n"
	    "must be loopback addresses (127.0.0.0/8 or [::1]); PORT 0 on\n"
	    "--listen takes a free port, written to --port-file.\n\n"
	    "  --delay-ms N      every byte leaves N ms after it arrived, in\n"
	    "                    each direction (a connection's end too)\n"
	    "  --rate B          at most B bytes/s in each direction, shared\n"
	    "                    by all connections (a token bucket holding\n"
	    "                    max(B/20, 1024) bytes)\n"
	    "  --cut-up N        reset (RST) a connection once N bytes went\n"
	    "                    client to target on it; --cut-down N the\n"
	    "                    same, target to client. Both sockets get the\n"
	    "                    reset; exactly N bytes were passed on.\n"
	    "  --cut-once        count --cut-up/--cut-down over all\n"
	    "                    connections since the start instead, and cut\n"
	    "                    only the connection carrying byte N, once\n"
	    "  --cut-every-ms N  reset every open connection every N ms\n"
	    "  --stall-ms M --stall-after N\n"
	    "                    once N bytes went through (both directions,\n"
	    "                    all connections), nothing moves for M ms\n"
	    "  --count-file F    every second and at exit, F holds\n"
	    "                    \"up B\\ndown B\\nconnections N\\n\": bytes\n"
	    "                    passed on each way (everything on the wire,\n"
	    "                    HTTP headers included) and connections\n"
	    "                    accepted; replaced atomically\n"
	    "  --verbose         log connections and faults on stderr\n\n"
	    "SIGTERM or SIGINT: writes the counts, closes everything, exits 0.\n"
	    "Exit 1: usage; 2: cannot listen or write its files.\n",
	    f);
}

static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("faultproxy: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define trace(...)                                                         \
	do {                                                               \
		if (opt.verbose)                                           \
			say(__VA_ARGS__);                                  \
	} while (0)

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- files ---- */

/* Replaces path with text: temporary file then rename, so that a reader
 * never sees half of it. Returns 0 or -1 (errno set). */
static int file_replace(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text);
	ssize_t w;
	int fd, rc = -1;

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	w = write(fd, text, len);
	if (close(fd) == 0 && w == (ssize_t)len && rename(tmp, path) == 0)
		rc = 0;
	else
		unlink(tmp);
	return rc;
}

static int counts_write(void)
{
	char text[128];

	if (!opt.count_file)
		return 0;
	snprintf(text, sizeof text, "up %llu\ndown %llu\nconnections %lu\n",
		 (unsigned long long)total[UP],
		 (unsigned long long)total[DOWN], conn_seq);
	if (file_replace(opt.count_file, text) == 0)
		return 0;
	say("cannot write %s: %s", opt.count_file, strerror(errno));
	return -1;
}

/* ---- options ---- */

/* "127.0.0.1:PORT" or "[::1]:PORT", loopback only. Returns 0, or -1 with
 * a message on stderr. */
static int addr_parse(const char *what, const char *s,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hlen = colon ? (size_t)(colon - s) : 0;
	char *end;
	long port;

	memset(ss, 0, sizeof *ss);
	if (!colon || hlen == 0 || hlen >= sizeof host)
		goto bad;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
		goto bad;
	if (host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			goto bad;
		if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
			goto not_loopback;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof *a6;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			goto bad;
		if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
			goto not_loopback;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof *a4;
	}
	return 0;
not_loopback:
	say("%s %s is not a loopback address; only 127.0.0.0/8 and [::1] "
	    "are allowed", what, s);
	return -1;
bad:
	say("%s must be 127.x.y.z:PORT or [::1]:PORT, not \"%s\"", what, s);
	return -1;
}

static int number(const char *name, const char *s, long long min,
		  long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno || end == s || *end || *out < min) {
		say("--%s wants a whole number of at least %lld, not \"%s\"",
		    name, min, s);
		return -1;
	}
	return 0;
}

/* Returns 0 to go on, or the exit code. */
static int options_parse(int argc, char **argv)
{
	enum { O_LISTEN = 256, O_TARGET, O_PORT_FILE, O_COUNT_FILE, O_DELAY,
	       O_RATE, O_CUT_UP, O_CUT_DOWN, O_CUT_ONCE, O_CUT_EVERY,
	       O_STALL_MS, O_STALL_AFTER, O_VERBOSE, O_HELP };
	static const struct option longs[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "target", required_argument, NULL, O_TARGET },
		{ "port-file", required_argument, NULL, O_PORT_FILE },
		{ "count-file", required_argument, NULL, O_COUNT_FILE },
		{ "delay-ms", required_argument, NULL, O_DELAY },
		{ "rate", required_argument, NULL, O_RATE },
		{ "cut-up", required_argument, NULL, O_CUT_UP },
		{ "cut-down", required_argument, NULL, O_CUT_DOWN },
		{ "cut-once", no_argument, NULL, O_CUT_ONCE },
		{ "cut-every-ms", required_argument, NULL, O_CUT_EVERY },
		{ "stall-ms", required_argument, NULL, O_STALL_MS },
		{ "stall-after", required_argument, NULL, O_STALL_AFTER },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c, bad = 0;

	opterr = 0;
	while (!bad && (c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case O_LISTEN: opt.listen = optarg; break;
		case O_TARGET: opt.target = optarg; break;
		case O_PORT_FILE: opt.port_file = optarg; break;
		case O_COUNT_FILE: opt.count_file = optarg; break;
		case O_DELAY:
			bad = number("delay-ms", optarg, 0, &opt.delay_ms);
			break;
		case O_RATE: bad = number("rate", optarg, 1, &opt.rate); break;
		case O_CUT_UP:
			bad = number("cut-up", optarg, 1, &opt.cut[UP]);
			break;
		case O_CUT_DOWN:
			bad = number("cut-down", optarg, 1, &opt.cut[DOWN]);
			break;
		case O_CUT_ONCE: opt.cut_once = 1; break;
		case O_CUT_EVERY:
			bad = number("cut-every-ms", optarg, 1,
				     &opt.cut_every_ms);
			break;
		case O_STALL_MS:
			bad = number("stall-ms", optarg, 1, &opt.stall_ms);
			break;
		case O_STALL_AFTER:
			bad = number("stall-after", optarg, 1,
				     &opt.stall_after);
			break;
		case O_VERBOSE: opt.verbose = 1; break;
		case O_HELP: usage(stdout); return -1;
		default:
			say("unknown option or missing value: %s; see --help",
			    argv[optind - 1]);
			return 1;
		}
	}
	if (bad)
		return 1;
	if (optind < argc) {
		say("unexpected argument \"%s\"; see --help", argv[optind]);
		return 1;
	}
	if (!opt.listen || !opt.target) {
		say("--listen and --target are both needed; see --help");
		return 1;
	}
	if (!opt.stall_ms != !opt.stall_after) {
		say("--stall-ms and --stall-after go together");
		return 1;
	}
	return 0;
}

/* ---- connections ---- */

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Small writes go at once: the relay already decides their timing. */
static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void lane_clear(struct lane *l)
{
	while (l->head) {
		struct chunk *next = l->head->next;

		free(l->head);
		l->head = next;
	}
	l->tail = NULL;
	l->queued = 0;
}

/* Closes both sockets with SO_LINGER 0: each peer gets a reset. */
static void conn_abort(struct conn *c, const char *why)
{
	struct linger lg = { 1, 0 };
	int i;

	if (c->dead)
		return;
	trace("conn %lu: reset (%s) after %llu up, %llu down", c->id, why,
	      (unsigned long long)c->lane[UP].sent,
	      (unsigned long long)c->lane[DOWN].sent);
	for (i = 0; i < 2; i++) {
		setsockopt(c->fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(c->fd[i]);
		lane_clear(&c->lane[i]);
	}
	c->dead = 1;
}

static void conn_close(struct conn *c)
{
	int i;

	trace("conn %lu: closed after %llu up, %llu down", c->id,
	      (unsigned long long)c->lane[UP].sent,
	      (unsigned long long)c->lane[DOWN].sent);
	for (i = 0; i < 2; i++) {
		close(c->fd[i]);
		lane_clear(&c->lane[i]);
	}
	c->dead = 1;
}

static void conns_reap(void)
{
	int i;

	for (i = 0; i < MAX_CONNS; i++) {
		if (conns[i] && conns[i]->dead) {
			free(conns[i]);
			conns[i] = NULL;
		}
	}
}

static int conns_free_slot(void)
{
	int i;

	for (i = 0; i < MAX_CONNS; i++)
		if (!conns[i])
			return i;
	return -1;
}

/* Takes the accepted client socket cfd into a free slot and starts the
 * connection to the target. On failure the client gets a reset. */
static void conn_open(int cfd, int slot)
{
	struct linger lg = { 1, 0 };
	struct conn *c = calloc(1, sizeof *c);
	int tfd = -1;

	conn_seq++;
	set_nonblock(cfd);
	set_nodelay(cfd);
	if (c)
		tfd = socket(target_addr.ss_family, SOCK_STREAM, 0);
	if (tfd >= 0) {
		set_nonblock(tfd);
		set_nodelay(tfd);
		if (connect(tfd, (struct sockaddr *)&target_addr,
			    target_len) == 0 || errno == EINPROGRESS) {
			c->fd[CLIENT] = cfd;
			c->fd[TARGET] = tfd;
			c->connecting = 1;
			c->id = conn_seq;
			c->lane[UP].end_ms = c->lane[DOWN].end_ms = -1;
			conns[slot] = c;
			trace("conn %lu: accepted", c->id);
			return;
		}
		close(tfd);
	}
	say("conn %lu: cannot reach the target: %s", conn_seq,
	    strerror(errno));
	free(c);
	setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(cfd);
}

/* Read-ahead per lane: with a rate, about what the link moves in a
 * delay plus 250 ms, so a sender sees the link's pace rather than filling
 * a large buffer at once. */
static size_t lane_cap(void)
{
	long long cap;

	if (!opt.rate)
		return QUEUE_MAX;
	cap = opt.rate * (opt.delay_ms + 250) / 1000;
	if (cap < READ_SIZE)
		cap = READ_SIZE;
	return cap > QUEUE_MAX ? QUEUE_MAX : (size_t)cap;
}

static void lane_read(struct conn *c, int d, int64_t now)
{
	struct lane *l = &c->lane[d];
	char buf[READ_SIZE];
	struct chunk *ch;
	ssize_t n = recv(c->fd[d], buf, sizeof buf, 0);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR))
		return;
	if (n <= 0) {
		/* what the source sent before its end still goes, then the
		 * end itself; the other lane can no longer reach it */
		l->end_ms = now + opt.delay_ms;
		if (n < 0) {
			trace("conn %lu: %s source: %s", c->id, lane_name[d],
			      strerror(errno));
			l->reset = 1;
			lane_clear(&c->lane[1 - d]);
			c->lane[1 - d].shut = 1;
		}
		return;
	}
	ch = malloc(sizeof *ch + (size_t)n);
	if (!ch) {
		conn_abort(c, "out of memory");
		return;
	}
	ch->next = NULL;
	ch->due_ms = now + opt.delay_ms;
	ch->len = (size_t)n;
	ch->off = 0;
	memcpy(ch->data, buf, (size_t)n);
	if (l->tail)
		l->tail->next = ch;
	else
		l->head = ch;
	l->tail = ch;
	l->queued += (size_t)n;
}

static int stalled(int64_t now)
{
	return stall_until_ms >= 0 && now < stall_until_ms;
}

/* How many of n bytes lane d of c may write now: the token bucket, the
 * cut and the stall each bound it. *cut_at is set when writing all of
 * the result reaches the cut. */
static size_t lane_allowance(const struct conn *c, int d, size_t n,
			     int *cut_at)
{
	*cut_at = 0;
	if (opt.rate) {
		int64_t avail = bucket[d].mbytes / 1000;

		if (avail <= 0)
			return 0;
		if ((uint64_t)avail < n)
			n = (size_t)avail;
	}
	if (opt.cut[d] && (!opt.cut_once || cut_armed[d])) {
		uint64_t done = opt.cut_once ? total[d] : c->lane[d].sent;
		uint64_t left = (uint64_t)opt.cut[d] - done;

		if (left <= n) {
			n = (size_t)left;
			*cut_at = 1;
		}
	}
	if (opt.stall_after && !stall_done) {
		uint64_t left = (uint64_t)opt.stall_after - total[UP] -
				total[DOWN];

		if (left < n)
			n = (size_t)left;
	}
	return n;
}

/* Counts w bytes written by lane d; starts the stall when they reach
 * its mark. */
static void lane_account(struct conn *c, int d, size_t w, int64_t now)
{
	c->lane[d].sent += w;
	c->lane[d].queued -= w;
	total[d] += w;
	if (opt.rate)
		bucket[d].mbytes -= (int64_t)w * 1000;
	if (opt.stall_after && !stall_done &&
	    total[UP] + total[DOWN] >= (uint64_t)opt.stall_after) {
		stall_done = 1;
		stall_until_ms = now + opt.stall_ms;
		trace("stall for %lld ms after %llu bytes", opt.stall_ms,
		      (unsigned long long)(total[UP] + total[DOWN]));
	}
}

/* Passes on what lane d holds that is due, as far as rate, cut and
 * stall allow, then its end. */
static void lane_flush(struct conn *c, int d, int64_t now)
{
	struct lane *l = &c->lane[d];
	int dst = c->fd[1 - d];

	if (c->dead || c->connecting || l->blocked || l->shut)
		return;
	while (l->head && l->head->due_ms <= now && !stalled(now)) {
		struct chunk *ch = l->head;
		int cut_at;
		size_t n = lane_allowance(c, d, ch->len - ch->off, &cut_at);
		ssize_t w = 0;

		if (n > 0)
			w = send(dst, ch->data + ch->off, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			l->blocked = 1;
			return;
		}
		if (w < 0) {
			conn_abort(c, strerror(errno));
			return;
		}
		lane_account(c, d, (size_t)w, now);
		ch->off += (size_t)w;
		if (ch->off == ch->len) {
			l->head = ch->next;
			if (!l->head)
				l->tail = NULL;
			free(ch);
		}
		if (cut_at && (size_t)w == n) {
			if (opt.cut_once)
				cut_armed[d] = 0;
			conn_abort(c, d == UP ? "--cut-up" : "--cut-down");
			return;
		}
		if (n == 0 || (size_t)w < n)
			return; /* out of tokens, or a partial write */
	}
	if (!l->head && l->end_ms >= 0 && l->end_ms <= now &&
	    !stalled(now)) {
		if (l->reset) {
			conn_abort(c, "the other side reset");
			return;
		}
		shutdown(dst, SHUT_WR);
		l->shut = 1;
		if (c->lane[1 - d].shut)
			conn_close(c);
	}
}

/* ---- the loop ---- */

static void buckets_refill(int64_t now)
{
	int d;

	for (d = 0; d < 2 && opt.rate; d++) {
		bucket[d].mbytes += (now - bucket[d].last_ms) * opt.rate;
		if (bucket[d].mbytes > burst_mbytes)
			bucket[d].mbytes = burst_mbytes;
		bucket[d].last_ms = now;
	}
}

static void cuts_tick(int64_t now)
{
	int i;

	if (!opt.cut_every_ms || now < next_cut_ms)
		return;
	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i])
			conn_abort(conns[i], "--cut-every-ms");
	while (next_cut_ms <= now)
		next_cut_ms += opt.cut_every_ms;
}

static int64_t earliest(int64_t a, int64_t b)
{
	return b < a ? b : a;
}

/* When lane d of c next has something to do, on its own (not waiting for
 * a socket). */
static int64_t lane_wake(const struct conn *c, int d, int64_t now)
{
	const struct lane *l = &c->lane[d];
	int64_t t = INT64_MAX;

	if (c->connecting || l->blocked || l->shut)
		return t;
	if (stalled(now) && (l->head || l->end_ms >= 0))
		return stall_until_ms;
	if (l->head) {
		size_t want = l->head->len - l->head->off;

		if (l->head->due_ms > now)
			return l->head->due_ms;
		if (opt.rate) {
			/* until a useful amount of tokens is there */
			int64_t need;

			if (want > 1024)
				want = 1024;
			need = (int64_t)want * 1000 - bucket[d].mbytes;
			if (need > 0)
				return now + (need + opt.rate - 1) / opt.rate;
		}
		return now;
	}
	if (l->end_ms >= 0)
		t = l->end_ms;
	return t;
}

static int poll_timeout(int64_t now)
{
	int64_t t = next_count_ms;
	int i, d;

	if (opt.cut_every_ms)
		t = earliest(t, next_cut_ms);
	for (i = 0; i < MAX_CONNS; i++)
		for (d = 0; conns[i] && d < 2; d++)
			t = earliest(t, lane_wake(conns[i], d, now));
	/* "now" here means an allowance of 0 (a cut or stall mark exactly
	 * reached is handled at once), so never spin */
	return t <= now ? 1 : (int)(t - now > 1000 ? 1000 : t - now);
}

static short fd_events(const struct conn *c, int side)
{
	const struct lane *in = &c->lane[side], *out = &c->lane[1 - side];
	short ev = 0;

	if (side == TARGET && c->connecting)
		return POLLOUT;
	if (in->end_ms < 0 && in->queued < lane_cap())
		ev |= POLLIN;
	if (out->blocked)
		ev |= POLLOUT;
	return ev;
}

static void conn_events(struct conn *c, int side, short rev, int64_t now)
{
	if (c->dead)
		return;
	if (side == TARGET && c->connecting) {
		int err = 0;
		socklen_t len = sizeof err;

		if (getsockopt(c->fd[TARGET], SOL_SOCKET, SO_ERROR, &err,
			       &len) < 0)
			err = errno;
		if (err) {
			conn_abort(c, strerror(err));
			return;
		}
		c->connecting = 0;
		return;
	}
	/* an error or hang-up shows up when writing: retry the write */
	if (rev & (POLLOUT | POLLERR | POLLHUP))
		c->lane[1 - side].blocked = 0;
	if ((rev & (POLLIN | POLLERR | POLLHUP)) && c->lane[side].end_ms < 0)
		lane_read(c, side, now);
}

static void accept_all(void)
{
	for (;;) {
		int slot = conns_free_slot(), cfd;

		if (slot < 0)
			return;
		cfd = accept(listen_fd, NULL, NULL);
		if (cfd < 0)
			return;
		conn_open(cfd, slot);
	}
}

static void on_signal(int sig)
{
	int saved = errno;
	char b = 0;

	(void)sig;
	stopping = 1;
	if (write(wake_pipe[1], &b, 1) < 0) {
		/* the flag alone stops the loop within a second */
	}
	errno = saved;
}

/* One thread, one poll(). Each accepted connection gets its own
 * connection to the target; each direction of it (a lane: up is client to
 * target, down is target to client) queues what it read with the time it
 * may leave (read time + delay), and writes it on once that time has come,
 * the direction's token bucket allows and no stall is on. */
static int loop(void)
{
	struct pollfd pfd[2 + 2 * MAX_CONNS];
	struct conn *owner[2 + 2 * MAX_CONNS];

	while (!stopping) {
		int64_t now = now_ms();
		nfds_t n = 0, k;
		int i, d, timeout;

		buckets_refill(now);
		cuts_tick(now);
		for (i = 0; i < MAX_CONNS; i++)
			for (d = 0; conns[i] && d < 2; d++)
				lane_flush(conns[i], d, now);
		conns_reap();
		if (now >= next_count_ms) {
			if (counts_write() < 0)
				return 2;
			next_count_ms = now + COUNT_EVERY_MS;
		}

		pfd[n].fd = wake_pipe[0];
		pfd[n].events = POLLIN;
		owner[n++] = NULL;
		pfd[n].fd = conns_free_slot() >= 0 ? listen_fd : -1;
		pfd[n].events = POLLIN;
		owner[n++] = NULL;
		for (i = 0; i < MAX_CONNS; i++) {
			for (d = 0; conns[i] && d < 2; d++) {
				short ev = fd_events(conns[i], d);

				/* an fd polled for nothing would still
				 * report POLLHUP, again and again */
				pfd[n].fd = ev ? conns[i]->fd[d] : -1;
				pfd[n].events = ev;
				owner[n++] = conns[i];
			}
		}
		timeout = poll_timeout(now);
		if (poll(pfd, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			say("poll: %s", strerror(errno));
			return 2;
		}
		now = now_ms();
		buckets_refill(now);
		if (pfd[0].revents) {
			char b[16];

			if (read(wake_pipe[0], b, sizeof b) < 0) {
				/* nothing to drain */
			}
		}
		if (pfd[1].revents)
			accept_all();
		for (k = 2; k < n; k++)
			if (pfd[k].revents)
				conn_events(owner[k], (int)(k % 2),
					    pfd[k].revents, now);
	}
	return 0;
}

/* ---- start and end ---- */

static int listen_start(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char port[16];
	int one = 1;

	if (addr_parse("--listen", opt.listen, &ss, &len) < 0)
		return 1;
	listen_fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (listen_fd < 0 ||
	    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
		       sizeof one) < 0 ||
	    bind(listen_fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(listen_fd, 64) < 0) {
		say("cannot listen on %s: %s", opt.listen, strerror(errno));
		return 2;
	}
	set_nonblock(listen_fd);
	len = sizeof ss;
	if (getsockname(listen_fd, (struct sockaddr *)&ss, &len) < 0) {
		say("getsockname: %s", strerror(errno));
		return 2;
	}
	snprintf(port, sizeof port, "%u\n",
		 ntohs(ss.ss_family == AF_INET
			   ? ((struct sockaddr_in *)&ss)->sin_port
			   : ((struct sockaddr_in6 *)&ss)->sin6_port));
	if (opt.port_file && file_replace(opt.port_file, port) < 0) {
		say("cannot write %s: %s", opt.port_file, strerror(errno));
		return 2;
	}
	trace("listening on port %.*s", (int)strcspn(port, "\n"), port);
	return 0;
}

static int signals_start(void)
{
	struct sigaction sa;

	if (pipe(wake_pipe) < 0) {
		say("pipe: %s", strerror(errno));
		return 2;
	}
	set_nonblock(wake_pipe[0]);
	set_nonblock(wake_pipe[1]);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	int64_t start;
	int rc, i;

	rc = options_parse(argc, argv);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (addr_parse("--target", opt.target, &target_addr, &target_len) < 0)
		return 1;
	rc = signals_start();
	if (!rc)
		rc = listen_start();
	if (rc)
		return rc;
	start = now_ms();
	burst_mbytes = (opt.rate / 20 > 1024 ? opt.rate / 20 : 1024) * 1000;
	for (i = 0; i < 2; i++) {
		bucket[i].mbytes = burst_mbytes;
		bucket[i].last_ms = start;
		cut_armed[i] = 1;
	}
	next_cut_ms = start + opt.cut_every_ms;
	next_count_ms = start;
	rc = loop();
	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i])
			conn_close(conns[i]);
	conns_reap();
	if (counts_write() < 0 && !rc)
		rc = 2;
	trace("%llu bytes up, %llu down, %lu connections",
	      (unsigned long long)total[UP], (unsigned long long)total[DOWN],
	      conn_seq);
	return rc;
}
