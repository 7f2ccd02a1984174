/* test_http.c - Check suite for server/http: limits, status codes, bodies,
 * counters, the request log, graceful stop and TLS. Requests are written
 * byte by byte on raw loopback sockets (libcurl only for TLS), so what the
 * server receives is exactly what the test says. */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "http.h"
#include "mem.h"

/* The test's own buffers use malloc, not mem_alloc, so that the allocation
 * seam (mem_fail_after) only ever hits the server. */

static atomic_int handler_calls;
static sem_t unblock; /* /block waits for it */

static void test_handler(void *ctx, const struct http_request *req,
			 struct http_response *resp)
{
	const char *v;

	(void)ctx;
	atomic_fetch_add(&handler_calls, 1);
	if (strcmp(req->path, "/slow") == 0) {
		usleep(500 * 1000);
		http_response_set(resp, 200, "text/plain", "slow done", 9);
		return;
	}
	if (strncmp(req->path, "/echo", 5) == 0) {
		if (http_response_set(resp, 200, "application/octet-stream",
				      req->body, req->body_len))
			return;
		http_response_header(resp, "X-Method", req->method);
		http_response_header(resp, "X-Path", req->path);
		if (strlen(req->url) < HTTP_HEADER_VALUE_MAX)
			http_response_header(resp, "X-Url", req->url);
		http_response_header(resp, "X-Query",
				     req->query ? req->query : "(none)");
		v = http_request_arg(req, "a");
		http_response_header(resp, "X-Arg-A",
				     !v	  ? "(none)"
				     : *v ? v
					  : "(empty)");
		v = http_request_header(req, "x-test");
		http_response_header(resp, "X-Test", v ? v : "(none)");
		http_response_header(resp, "X-Ip", req->client_ip);
		return;
	}
	if (strcmp(req->path, "/block") == 0) {
		while (sem_wait(&unblock) != 0)
			;
		http_response_set(resp, 200, "text/plain", "unblocked", 9);
		return;
	}
	if (strcmp(req->path, "/take") == 0) {
		uint8_t *p = mem_alloc(4);

		memcpy(p, "took", 4);
		http_response_take(resp, 200, "text/plain", p, 4);
		return;
	}
	if (strcmp(req->path, "/nostatus") == 0)
		return;
	if (strcmp(req->path, "/badheader") == 0) {
		/* filled by hand: the layer must refuse it too */
		http_response_set(resp, 200, "text/plain", "x", 1);
		resp->headers[0].name = "X-Bad";
		strcpy(resp->headers[0].value, "a\r\nInjected: 1");
		resp->nheaders = 1;
		return;
	}
	if (strcmp(req->path, "/setlength") == 0) {
		/* libmicrohttpd manages Content-Length itself */
		http_response_set(resp, 200, "text/plain", "x", 1);
		http_response_header(resp, "Content-Length", "1");
		return;
	}
	if (strcmp(req->path, "/nocontent") == 0) {
		http_response_set(resp, 204, "text/plain", "dropped", 7);
		return;
	}
	http_response_set(resp, 404, "text/plain", "not found\n", 10);
}

static struct http_server *start_server(struct http_options *o)
{
	struct http_server *s = NULL;
	struct err e;

	err_init(&e);
	ck_assert_msg(http_server_start(o, test_handler, NULL, &s, &e) == 0,
		      "start: %s", e.msg);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_ne(http_server_port(s), 0);
	return s;
}

static void quiet_options(struct http_options *o)
{
	memset(o, 0, sizeof *o);
	o->quiet = 1;
	o->threads = 2;
}

/* ---- raw HTTP client ---- */

struct reply {
	int status; /* -1: no status line came back */
	char *raw;
	size_t len;
	size_t hdr_len; /* 0 if the header block never completed */
	const char *body;
	size_t body_len;
};

static void reply_free(struct reply *r)
{
	free(r->raw);
	memset(r, 0, sizeof *r);
}

static int dial(uint16_t port)
{
	struct sockaddr_in sin;
	struct timeval tv = {10, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends as much of p as the server takes; errors (the server closed on
 * us) are expected in some tests and not reported. */
static void send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		c += w;
		n -= (size_t)w;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

static const char *find_header(const char *raw, size_t hdr_len,
			       const char *name)
{
	size_t nl = strlen(name);
	const char *p = raw, *end = raw + hdr_len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			break;
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 &&
		    p[nl] == ':')
			return p + nl + 1 + (p[nl + 1] == ' ');
		p = eol + 1;
	}
	return NULL;
}

/* Reads one response (to its Content-Length, or to EOF without one). */
static void read_reply(int fd, int head, struct reply *r)
{
	size_t cap = 1 << 16, want = SIZE_MAX;

	memset(r, 0, sizeof *r);
	r->status = -1;
	r->raw = malloc(cap + 1);
	ck_assert_ptr_nonnull(r->raw);
	for (;;) {
		ssize_t n;

		if (!r->hdr_len) {
			char *e;

			r->raw[r->len] = '\0';
			e = strstr(r->raw, "\r\n\r\n");
			if (e) {
				const char *cl;

				r->hdr_len = (size_t)(e - r->raw) + 4;
				cl = find_header(r->raw, r->hdr_len,
						 "Content-Length");
				if (head)
					want = r->hdr_len;
				else if (cl)
					want =
					    r->hdr_len + strtoul(cl, NULL, 10);
			}
		}
		if (r->len >= want)
			break;
		if (r->len == cap) {
			cap *= 2;
			r->raw = realloc(r->raw, cap + 1);
			ck_assert_ptr_nonnull(r->raw);
		}
		n = recv(fd, r->raw + r->len, cap - r->len, 0);
		if (n <= 0)
			break;
		r->len += (size_t)n;
	}
	r->raw[r->len] = '\0';
	if (r->len >= 12 && strncmp(r->raw, "HTTP/1.", 7) == 0)
		r->status = atoi(r->raw + 9);
	if (r->hdr_len) {
		r->body = r->raw + r->hdr_len;
		r->body_len = (want != SIZE_MAX ? want : r->len) - r->hdr_len;
		if (r->body_len > r->len - r->hdr_len)
			r->body_len = r->len - r->hdr_len;
	}
}

/* One request on a fresh connection; returns the status (-1: none). */
static int exchange(uint16_t port, const void *req, size_t n, struct reply *r)
{
	int fd = dial(port);

	ck_assert_int_ge(fd, 0);
	send_all(fd, req, n);
	read_reply(fd, n >= 5 && memcmp(req, "HEAD ", 5) == 0, r);
	close(fd);
	return r->status;
}

static int exchange_str(uint16_t port, const char *req, struct reply *r)
{
	return exchange(port, req, strlen(req), r);
}

static int simple_status(uint16_t port, const char *req)
{
	struct reply r;
	int st = exchange_str(port, req, &r);

	reply_free(&r);
	return st;
}

static void assert_header(const struct reply *r, const char *name,
			  const char *want)
{
	const char *v = find_header(r->raw, r->hdr_len, name);
	size_t n = strlen(want);

	ck_assert_msg(v != NULL, "no %s header in %s", name, r->raw);
	ck_assert_msg(strncmp(v, want, n) == 0 && v[n] == '\r',
		      "%s: want '%s' in %.*s", name, want, (int)r->hdr_len,
		      r->raw);
}

static uint8_t *pattern(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	size_t i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < n; i++) {
		seed = seed * 1664525u + 1013904223u;
		p[i] = (uint8_t)(seed >> 24);
	}
	return p;
}

/* A POST with the given body, with Content-Length or (if chunk > 0)
 * chunked in pieces of varying size up to `chunk`. Caller frees. */
static char *make_post(const char *path, const uint8_t *body, size_t n,
		       size_t chunk, const char *extra, size_t *len)
{
	size_t cap = n * 2 + 4096, off = 0, i = 0, k = 0;
	char *req = malloc(cap);

	ck_assert_ptr_nonnull(req);
	if (!chunk)
		off = (size_t)snprintf(req, cap,
				       "POST %s HTTP/1.1\r\nHost: t\r\n%s"
				       "Content-Length: %zu\r\n\r\n",
				       path, extra ? extra : "", n);
	else
		off = (size_t)snprintf(req, cap,
				       "POST %s HTTP/1.1\r\nHost: t\r\n%s"
				       "Transfer-Encoding: chunked\r\n\r\n",
				       path, extra ? extra : "");
	if (!chunk) {
		memcpy(req + off, body, n);
		*len = off + n;
		return req;
	}
	while (i < n) {
		size_t c = 1 + (k++ * 7919) % chunk;

		if (c > n - i)
			c = n - i;
		if (off + c + 32 > cap) {
			cap = cap * 2 + c;
			req = realloc(req, cap);
			ck_assert_ptr_nonnull(req);
		}
		off += (size_t)snprintf(req + off, cap - off, "%zx\r\n", c);
		memcpy(req + off, body + i, c);
		off += c;
		memcpy(req + off, "\r\n", 2);
		off += 2;
		i += c;
	}
	memcpy(req + off, "0\r\n\r\n", 5);
	*len = off + 5;
	return req;
}

static void wait_requests(struct http_server *s, uint64_t n)
{
	struct http_stats st;
	int i;

	for (i = 0; i < 200; i++) {
		http_server_stats(s, &st);
		if (st.requests >= n)
			return;
		usleep(10 * 1000);
	}
}

/* ---- tests ---- */

START_TEST(get_echo)
{
	struct http_options o;
	struct http_server *s;
	struct reply r;
	uint16_t port;

	quiet_options(&o);
	s = start_server(&o);
	port = http_server_port(s);

	ck_assert_int_eq(
	    exchange_str(port,
			 "GET /echo/%41b?x=1&a=%41 HTTP/1.1\r\nHost: t\r\n"
			 "X-Test: hello\r\n\r\n",
			 &r),
	    200);
	assert_header(&r, "X-Method", "GET");
	assert_header(&r, "X-Path", "/echo/Ab");
	assert_header(&r, "X-Url", "/echo/%41b?x=1&a=%41");
	assert_header(&r, "X-Query", "x=1&a=%41");
	assert_header(&r, "X-Arg-A", "A");
	assert_header(&r, "X-Test", "hello");
	assert_header(&r, "X-Ip", "127.0.0.1");
	assert_header(&r, "Content-Length", "0");
	ck_assert_uint_eq(r.body_len, 0);
	reply_free(&r);

	ck_assert_int_eq(
	    exchange_str(port, "GET /echo?a HTTP/1.1\r\nHost: t\r\n\r\n", &r),
	    200);
	assert_header(&r, "X-Arg-A", "(empty)");
	assert_header(&r, "X-Query", "a");
	reply_free(&r);

	ck_assert_int_eq(
	    exchange_str(port, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", &r),
	    200);
	assert_header(&r, "X-Query", "(none)");
	assert_header(&r, "X-Test", "(none)");
	reply_free(&r);

	/* HEAD: same headers, no body */
	ck_assert_int_eq(exchange_str(port,
				      "HEAD /echo HTTP/1.1\r\nHost: t\r\n"
				      "Connection: close\r\n\r\n",
				      &r),
			 200);
	assert_header(&r, "X-Method", "HEAD");
	ck_assert_uint_eq(r.len, r.hdr_len);
	reply_free(&r);

	/* "/" is a fine path; the handler answers 404 */
	ck_assert_int_eq(
	    simple_status(port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"), 404);
	/* HTTP/1.1 without Host is refused by libmicrohttpd (strict) */
	ck_assert_int_eq(simple_status(port, "GET /echo HTTP/1.1\r\n\r\n"),
			 400);
	http_server_stop(s);
}
END_TEST

START_TEST(keep_alive)
{
	struct http_options o;
	struct http_server *s;
	struct reply r;
	int fd, i;

	quiet_options(&o);
	s = start_server(&o);
	fd = dial(http_server_port(s));
	ck_assert_int_ge(fd, 0);
	for (i = 0; i < 3; i++) {
		send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\n"
			     "Content-Length: 3\r\n\r\nabc");
		read_reply(fd, 0, &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert_uint_eq(r.body_len, 3);
		ck_assert_mem_eq(r.body, "abc", 3);
		reply_free(&r);
	}
	close(fd);
	http_server_stop(s);
}
END_TEST

static void post_and_compare(uint16_t port, size_t n, size_t chunk)
{
	uint8_t *body = pattern(n, (uint32_t)(n + chunk));
	size_t len;
	char *req = make_post("/echo", body, n, chunk, NULL, &len);
	struct reply r;

	ck_assert_int_eq(exchange(port, req, len, &r), 200);
	ck_assert_uint_eq(r.body_len, n);
	ck_assert(memcmp(r.body, body, n) == 0);
	reply_free(&r);
	free(req);
	free(body);
}

START_TEST(post_echo_1mib)
{
	struct http_options o;
	struct http_server *s;
	uint16_t port;

	quiet_options(&o);
	s = start_server(&o);
	port = http_server_port(s);
	post_and_compare(port, 1u << 20, 0);	/* Content-Length */
	post_and_compare(port, 1u << 20, 8192); /* many uneven chunks */
	post_and_compare(port, 1, 0);
	http_server_stop(s);
}
END_TEST

START_TEST(body_limits)
{
	struct http_options o;
	struct http_server *s;
	struct reply r;
	uint16_t port;
	uint8_t *body = pattern(4096 + 2000, 7);
	size_t len;
	char *req;
	int before;

	quiet_options(&o);
	o.max_body = 4096;
	s = start_server(&o);
	port = http_server_port(s);

	/* exactly at the limit: fine, either way of framing */
	post_and_compare(port, 4096, 0);
	post_and_compare(port, 4096, 1000);

	before = atomic_load(&handler_calls);
	/* declared one over: 413 from the headers alone, body never sent */
	ck_assert_int_eq(simple_status(port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Content-Length: 4097\r\n\r\n"),
			 413);
	ck_assert_int_eq(simple_status(port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Content-Length: 99999999999999999999999"
				       "\r\n\r\n"),
			 413);
	/* with Expect: 100-continue the 413 comes instead of the 100 */
	ck_assert_int_eq(exchange_str(port,
				      "POST /echo HTTP/1.1\r\nHost: t\r\n"
				      "Expect: 100-continue\r\n"
				      "Content-Length: 1000000\r\n\r\n",
				      &r),
			 413);
	ck_assert_ptr_null(strstr(r.raw, "100 Continue"));
	reply_free(&r);

	/* chunked, no length declared, grows past the limit */
	req = make_post("/echo", body, 4096 + 2000, 1500, NULL, &len);
	ck_assert_int_eq(exchange(port, req, len, &r), 413);
	reply_free(&r);
	free(req);
	req = make_post("/echo", body, 4097, 4097, NULL, &len);
	ck_assert_int_eq(exchange(port, req, len, &r), 413);
	reply_free(&r);
	free(req);
	ck_assert_int_eq(atomic_load(&handler_calls), before);
	free(body);

	/* far past the limit: the connection is cut, no answer... */
	body = pattern(HTTP_DISCARD_MAX + (1u << 20), 9);
	req = make_post("/echo", body, HTTP_DISCARD_MAX + (1u << 20), 60000,
			NULL, &len);
	ck_assert_int_eq(exchange(port, req, len, &r), -1);
	reply_free(&r);
	free(req);
	free(body);
	ck_assert_int_eq(atomic_load(&handler_calls), before);
	/* ...and the server goes on */
	post_and_compare(port, 100, 0);
	http_server_stop(s);
}
END_TEST

START_TEST(framing)
{
	struct http_options o;
	struct http_server *s;
	uint16_t port;
	int before;

	quiet_options(&o);
	s = start_server(&o);
	port = http_server_port(s);
	before = atomic_load(&handler_calls);
	ck_assert_int_eq(simple_status(port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Content-Length: 5\r\n"
				       "Transfer-Encoding: chunked\r\n"
				       "\r\n0\r\n\r\n"),
			 400);
	ck_assert_int_eq(simple_status(port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Transfer-Encoding: gzip\r\n"
				       "\r\nxxxxx"),
			 501);
	ck_assert_int_eq(simple_status(port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Transfer-Encoding: gzip, chunked"
				       "\r\n\r\n0\r\n\r\n"),
			 501);
	/* libmicrohttpd's own refusals */
	ck_assert_int_eq(simple_status(port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Content-Length: abc\r\n\r\n"),
			 400);
	ck_assert_int_eq(simple_status(port, "GET /echo HTTP/2.0\r\nHost: t"
					     "\r\n\r\n"),
			 505);
	ck_assert_int_eq(simple_status(port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Transfer-Encoding: chunked\r\n"
				       "\r\nzz\r\nabc\r\n0\r\n\r\n"),
			 400);
	ck_assert_int_eq(atomic_load(&handler_calls), before);
	/* chunked is case-insensitive; an empty chunked body is fine */
	ck_assert_int_eq(simple_status(port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Transfer-Encoding: Chunked\r\n"
				       "\r\n0\r\n\r\n"),
			 200);
	http_server_stop(s);
}
END_TEST

START_TEST(methods)
{
	static const char *const bad[] = {"PUT",  "DELETE", "OPTIONS",
					  "BREW", "get",    "PATCH"};
	struct http_options o;
	struct http_server *s;
	struct reply r;
	char req[128];
	size_t i;
	int before;

	quiet_options(&o);
	s = start_server(&o);
	before = atomic_load(&handler_calls);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(req, sizeof req,
			 "%s /echo HTTP/1.1\r\nHost: t\r\n\r\n", bad[i]);
		ck_assert_msg(exchange_str(http_server_port(s), req, &r) == 405,
			      "%s gave %d", bad[i], r.status);
		assert_header(&r, "Allow", "GET, HEAD, POST");
		reply_free(&r);
	}
	/* a PUT with a body: refused before the body is read */
	ck_assert_int_eq(simple_status(http_server_port(s),
				       "PUT /echo HTTP/1.1\r\nHost: t\r\n"
				       "Content-Length: 5\r\n\r\nhello"),
			 405);
	ck_assert_int_eq(atomic_load(&handler_calls), before);
	http_server_stop(s);
}
END_TEST

START_TEST(bad_paths)
{
	static const char *const bad[] = {
	    "/a/../b",	     "//x",	"/%00",
	    "/x/..",	     "/./x",	"/a/./b",
	    "/%2e%2e/x",     "/%2E./x", "/a%2Fb",
	    "/a%2fb",	     "/%zz",	"/%4",
	    "/a%",	     "x",	"*",
	    "/a#b",	     "/\x7f",	"/a\x01",
	    "/caf\xc3\xa9",  "/%7f",	"/%c3%a9",
	    "/%20",	     "/x//",	"/a/..?q=1",
	    "http://t/echo",
	};
	struct http_options o;
	struct http_server *s;
	char *req, *path;
	size_t i;
	uint16_t port;
	int before;

	quiet_options(&o);
	s = start_server(&o);
	port = http_server_port(s);
	req = malloc(8192);
	path = malloc(4096);
	ck_assert_ptr_nonnull(req);
	ck_assert_ptr_nonnull(path);
	before = atomic_load(&handler_calls);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int st;

		snprintf(req, 8192, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n",
			 bad[i]);
		st = simple_status(port, req);
		ck_assert_msg(st == 400, "path '%s' gave %d", bad[i], st);
	}
	/* 3000-byte path: 414 */
	memset(path, 'a', 3000);
	path[0] = '/';
	path[3000] = '\0';
	snprintf(req, 8192, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
	ck_assert_int_eq(simple_status(port, req), 414);
	/* target of 2049 bytes: 414 even when the path alone is short */
	memset(path, 'q', 2049);
	memcpy(path, "/echo?a=", 8);
	path[2049] = '\0';
	snprintf(req, 8192, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
	ck_assert_int_eq(simple_status(port, req), 414);
	ck_assert_int_eq(atomic_load(&handler_calls), before);
	/* exactly HTTP_URL_MAX bytes: served */
	path[HTTP_URL_MAX] = '\0';
	snprintf(req, 8192, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
	ck_assert_int_eq(simple_status(port, req), 200);
	/* unusual but fine paths pass */
	ck_assert_int_eq(simple_status(port, "GET /echo/..a/.b/a.. HTTP/1.1\r\n"
					     "Host: t\r\n\r\n"),
			 200);
	ck_assert_int_eq(simple_status(port, "GET /echo/ HTTP/1.1\r\n"
					     "Host: t\r\n\r\n"),
			 200);
	free(req);
	free(path);
	http_server_stop(s);
}
END_TEST

START_TEST(huge_headers)
{
	struct http_options o;
	struct http_server *s;
	struct reply r;
	struct http_stats stats;
	size_t n = 100 * 1024, off;
	char *req = malloc(n + 256);
	uint16_t port;
	int st;

	ck_assert_ptr_nonnull(req);
	quiet_options(&o);
	s = start_server(&o);
	port = http_server_port(s);
	off = (size_t)sprintf(req, "GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: ");
	memset(req + off, 'b', n);
	off += n;
	off += (size_t)sprintf(req + off, "\r\n\r\n");
	st = exchange(port, req, off, &r);
	/* libmicrohttpd 0.9.75 answers 431 and closes; a reset that beats
	 * the answer to the client is also acceptable */
	ck_assert_msg(st == 431 || st == -1, "huge header gave %d", st);
	reply_free(&r);
	wait_requests(s, 1);
	http_server_stats(s, &stats);
	ck_assert_uint_eq(stats.requests, 1);
	ck_assert_uint_eq(stats.closed, 1);
	ck_assert_uint_eq(stats.status_4xx, 1); /* libmicrohttpd's 431 */
	ck_assert_uint_eq(stats.status_2xx, 0);

	/* many small headers over the memory limit in total */
	off = (size_t)sprintf(req, "GET /echo HTTP/1.1\r\nHost: t\r\n");
	while (off < n)
		off += (size_t)sprintf(req + off, "X-H%zu: %064d\r\n", off, 0);
	off += (size_t)sprintf(req + off, "\r\n");
	st = exchange(port, req, off, &r);
	ck_assert_msg(st == 431 || st == -1, "many headers gave %d", st);
	reply_free(&r);

	/* headers well under the limit are fine */
	off = (size_t)sprintf(req, "GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: ");
	memset(req + off, 'b', 16 * 1024);
	off += 16 * 1024;
	off += (size_t)sprintf(req + off, "\r\n\r\n");
	ck_assert_int_eq(exchange(port, req, off, &r), 200);
	reply_free(&r);
	free(req);
	ck_assert_int_eq(simple_status(port, "GET /echo HTTP/1.1\r\n"
					     "Host: t\r\n\r\n"),
			 200);
	http_server_stop(s);
}
END_TEST

START_TEST(response_helpers)
{
	struct http_response resp;
	char big[HTTP_HEADER_VALUE_MAX + 1];
	size_t i;

	memset(&resp, 0, sizeof resp);
	ck_assert_int_eq(http_response_set(&resp, 201, "text/plain", "abc", 3),
			 BS_OK);
	ck_assert_int_eq(resp.status, 201);
	ck_assert_uint_eq(resp.body_len, 3);
	ck_assert_mem_eq(resp.body, "abc", 3);
	/* replacing frees the old body (ASan would see a leak) */
	ck_assert_int_eq(http_response_set(&resp, 200, NULL, NULL, 0), BS_OK);
	ck_assert_ptr_null(resp.body);
	ck_assert_int_eq(http_response_set(&resp, 200, NULL, "x", 1), BS_OK);
	mem_fail_after(0);
	ck_assert_int_eq(http_response_set(&resp, 200, NULL, "y", 1),
			 BS_ENOMEM);
	mem_fail_reset();
	ck_assert_int_eq(resp.status, 500);
	ck_assert_ptr_null(resp.body);
	ck_assert_uint_eq(resp.body_len, 0);

	ck_assert_int_eq(http_response_header(&resp, "X-A", ""), BS_EINVALID);
	ck_assert_int_eq(http_response_header(&resp, "X-A", "a\nb"),
			 BS_EINVALID);
	ck_assert_int_eq(http_response_header(&resp, "X-A", "a\rb"),
			 BS_EINVALID);
	ck_assert_int_eq(http_response_header(&resp, "X A", "v"), BS_EINVALID);
	ck_assert_int_eq(http_response_header(&resp, "X:A", "v"), BS_EINVALID);
	ck_assert_int_eq(http_response_header(&resp, "", "v"), BS_EINVALID);
	memset(big, 'v', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ck_assert_int_eq(http_response_header(&resp, "X-A", big), BS_ELIMIT);
	big[HTTP_HEADER_VALUE_MAX - 1] = '\0';
	ck_assert_int_eq(http_response_header(&resp, "X-A", big), BS_OK);
	for (i = 1; i < HTTP_HEADERS_MAX; i++)
		ck_assert_int_eq(http_response_header(&resp, "X-B", "b"),
				 BS_OK);
	ck_assert_int_eq(http_response_header(&resp, "X-C", "c"), BS_ELIMIT);
	ck_assert_uint_eq(resp.nheaders, HTTP_HEADERS_MAX);
	ck_assert_str_eq(resp.headers[0].value, big);
	mem_free(resp.body);

	/* take: the body is the one given, the one before is freed */
	memset(&resp, 0, sizeof resp);
	ck_assert_int_eq(http_response_set(&resp, 201, "text/plain", "abc", 3),
			 BS_OK);
	{
		uint8_t *p = mem_alloc(5);

		memcpy(p, "given", 5);
		http_response_take(&resp, 202, "text/x", p, 5);
		ck_assert_ptr_eq(resp.body, p);
	}
	ck_assert_int_eq(resp.status, 202);
	ck_assert_str_eq(resp.content_type, "text/x");
	ck_assert_uint_eq(resp.body_len, 5);
	http_response_take(&resp, 200, NULL, NULL, 0);
	ck_assert_ptr_null(resp.body);
	ck_assert_uint_eq(resp.body_len, 0);
}
END_TEST

START_TEST(handler_answers)
{
	struct http_options o;
	struct http_server *s;
	struct reply r;
	uint16_t port;

	quiet_options(&o);
	s = start_server(&o);
	port = http_server_port(s);
	ck_assert_int_eq(simple_status(port, "GET /nostatus HTTP/1.1\r\n"
					     "Host: t\r\n\r\n"),
			 500);
	ck_assert_int_eq(exchange_str(port,
				      "GET /badheader HTTP/1.1\r\n"
				      "Host: t\r\n\r\n",
				      &r),
			 500);
	ck_assert_ptr_null(strstr(r.raw, "Injected"));
	reply_free(&r);
	ck_assert_int_eq(simple_status(port, "GET /setlength HTTP/1.1\r\n"
					     "Host: t\r\n\r\n"),
			 500);
	ck_assert_int_eq(exchange_str(port,
				      "GET /nocontent HTTP/1.1\r\n"
				      "Host: t\r\nConnection: close\r\n"
				      "\r\n",
				      &r),
			 204);
	ck_assert_ptr_null(strstr(r.raw, "dropped"));
	reply_free(&r);
	http_server_stop(s);
}
END_TEST

START_TEST(stats_move)
{
	struct http_options o;
	struct http_server *s;
	struct http_stats st;
	uint16_t port;

	quiet_options(&o);
	s = start_server(&o);
	port = http_server_port(s);
	http_server_stats(s, &st);
	ck_assert_uint_eq(st.requests, 0);
	ck_assert_int_eq(simple_status(port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Content-Length: 10\r\n\r\n"
				       "0123456789"),
			 200);
	ck_assert_int_eq(simple_status(port, "GET /nope HTTP/1.1\r\n"
					     "Host: t\r\n\r\n"),
			 404);
	ck_assert_int_eq(simple_status(port, "PUT /x HTTP/1.1\r\n"
					     "Host: t\r\n\r\n"),
			 405);
	ck_assert_int_eq(simple_status(port, "GET /nostatus HTTP/1.1\r\n"
					     "Host: t\r\n\r\n"),
			 500);
	ck_assert_int_eq(simple_status(port, "GET /echo HTTP/1.1\r\n"
					     "Host: t\r\n\r\n"),
			 200);
	wait_requests(s, 5);
	http_server_stats(s, &st);
	ck_assert_uint_eq(st.requests, 5);
	ck_assert_uint_eq(st.status_2xx, 2);
	ck_assert_uint_eq(st.status_4xx, 2);
	ck_assert_uint_eq(st.status_5xx, 1);
	ck_assert_uint_eq(st.closed, 0);
	ck_assert_uint_eq(st.bytes_in, 10);
	/* 10 echoed + "not found\n" + "method not allowed\n" + the 500's */
	ck_assert_uint_ge(st.bytes_out, 10 + 10 + 19);
	http_server_stop(s);
}
END_TEST

struct slow_call {
	uint16_t port;
	struct reply r;
};

static void *slow_client(void *arg)
{
	struct slow_call *c = arg;

	exchange_str(c->port, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", &c->r);
	return NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct burst {
	uint16_t port;
	int ok;
	uint32_t seed;
};

static void *burst_client(void *arg)
{
	struct burst *b = arg;
	int i;

	for (i = 0; i < 20; i++) {
		size_t n = 1 + (b->seed + (uint32_t)i * 7919u) % 50000;
		uint8_t *body = pattern(n, b->seed + (uint32_t)i);
		size_t len;
		char *req =
		    make_post("/echo", body, n, i % 2 ? 3000 : 0, NULL, &len);
		struct reply r;

		if (exchange(b->port, req, len, &r) == 200 && r.body_len == n &&
		    memcmp(r.body, body, n) == 0)
			b->ok++;
		reply_free(&r);
		free(req);
		free(body);
	}
	return NULL;
}

/* Many clients at once on a small pool, or a thread each: every body
 * comes back intact to its own sender and the counters add up. */
START_TEST(concurrent_clients)
{
	struct http_options o;
	struct http_server *s;
	struct http_stats st;
	struct burst b[8];
	pthread_t t[8];
	int i;

	quiet_options(&o);
	o.threads = _i == 0 ? 3 : 0;
	o.thread_per_connection = _i == 1;
	s = start_server(&o);
	for (i = 0; i < 8; i++) {
		b[i].port = http_server_port(s);
		b[i].ok = 0;
		b[i].seed = (uint32_t)i * 1000003u;
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, burst_client, &b[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(b[i].ok, 20);
	}
	wait_requests(s, 160);
	http_server_stats(s, &st);
	ck_assert_uint_eq(st.requests, 160);
	ck_assert_uint_eq(st.status_2xx, 160);
	ck_assert_uint_eq(st.bytes_in, st.bytes_out);
	http_server_stop(s);
}
END_TEST

struct block_call {
	uint16_t port;
	struct reply r;
};

static void *block_client(void *arg)
{
	struct block_call *c = arg;

	exchange_str(c->port, "GET /block HTTP/1.1\r\nHost: t\r\n\r\n", &c->r);
	return NULL;
}

/* A thread per connection: while a handler waits (as a push waits for its
 * group commit), other connections are served; with a pool of one thread
 * this test would never end. */
START_TEST(handler_waits_alone)
{
	struct http_options o;
	struct http_server *s;
	struct block_call c;
	struct reply r;
	pthread_t t;
	int before, i;

	quiet_options(&o);
	o.threads = 0;
	o.thread_per_connection = 1;
	s = start_server(&o);
	memset(&c, 0, sizeof c);
	c.port = http_server_port(s);
	before = atomic_load(&handler_calls);
	ck_assert_int_eq(pthread_create(&t, NULL, block_client, &c), 0);
	for (i = 0; i < 3000 && atomic_load(&handler_calls) == before; i++)
		usleep(10 * 1000);
	ck_assert_int_gt(atomic_load(&handler_calls), before);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(exchange_str(c.port, "GET /take HTTP/1.1\r\n"
					      "Host: t\r\n\r\n", &r),
				 200);
		ck_assert_uint_eq(r.body_len, 4);
		ck_assert_mem_eq(r.body, "took", 4);
		reply_free(&r);
	}
	ck_assert_int_eq(sem_post(&unblock), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(c.r.status, 200);
	ck_assert_mem_eq(c.r.body, "unblocked", 9);
	reply_free(&c.r);
	http_server_stop(s);
}
END_TEST

START_TEST(graceful_stop)
{
	struct http_options o;
	struct http_server *s;
	struct slow_call c;
	pthread_t t;
	int64_t t0, took;
	int before, i;

	quiet_options(&o);
	s = start_server(&o);
	memset(&c, 0, sizeof c);
	c.port = http_server_port(s);
	before = atomic_load(&handler_calls);
	ck_assert_int_eq(pthread_create(&t, NULL, slow_client, &c), 0);
	for (i = 0; i < 500 && atomic_load(&handler_calls) == before; i++)
		usleep(10 * 1000);
	ck_assert_int_gt(atomic_load(&handler_calls), before);
	usleep(50 * 1000); /* the handler is sleeping now */
	t0 = now_ms();
	http_server_stop(s);
	took = now_ms() - t0;
	pthread_join(t, NULL);
	ck_assert_int_eq(c.r.status, 200);
	ck_assert_uint_eq(c.r.body_len, 9);
	ck_assert_mem_eq(c.r.body, "slow done", 9);
	assert_header(&c.r, "Connection", "close");
	reply_free(&c.r);
	ck_assert_int_ge(took, 250);
	/* nothing listens any more */
	ck_assert_int_eq(dial(c.port), -1);
}
END_TEST

START_TEST(stop_grace_deadline)
{
	struct http_options o;
	struct http_server *s;
	struct reply r;
	int64_t t0, took;
	int fd;

	quiet_options(&o);
	o.stop_grace_s = 1;
	s = start_server(&o);
	fd = dial(http_server_port(s));
	ck_assert_int_ge(fd, 0);
	/* a body that never finishes */
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n"
		     "\r\n0123456789");
	usleep(500 * 1000); /* so that the request line has been parsed */
	t0 = now_ms();
	http_server_stop(s);
	took = now_ms() - t0;
	ck_assert_int_ge(took, 900);
	ck_assert_int_lt(took, 5000);
	read_reply(fd, 0, &r);
	ck_assert_int_eq(r.status, -1);
	reply_free(&r);
	close(fd);
}
END_TEST

START_TEST(idle_timeout_and_per_ip_limit)
{
	struct http_options o;
	struct http_server *s;
	struct reply r;
	uint16_t port;
	int a, b, c;

	quiet_options(&o);
	o.timeout_s = 1;
	o.per_ip_limit = 2;
	s = start_server(&o);
	port = http_server_port(s);
	a = dial(port);
	b = dial(port);
	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	send_str(a, "GET /ec"); /* a request that never completes */
	usleep(100 * 1000);
	/* a third connection from the same address is closed at once */
	c = dial(port);
	ck_assert_int_ge(c, 0);
	send_str(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	read_reply(c, 0, &r);
	ck_assert_int_eq(r.status, -1);
	reply_free(&r);
	close(c);
	/* the idle ones are closed after timeout_s */
	read_reply(a, 0, &r);
	ck_assert_int_eq(r.status, -1);
	ck_assert_uint_eq(r.len, 0);
	reply_free(&r);
	close(a);
	close(b);
	usleep(100 * 1000);
	ck_assert_int_eq(simple_status(port, "GET /echo HTTP/1.1\r\n"
					     "Host: t\r\n\r\n"),
			 200);
	http_server_stop(s);
}
END_TEST

static int read_file(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return -1;
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
	return 0;
}

START_TEST(log_line)
{
	struct http_options o;
	struct http_server *s;
	char path[] = "/tmp/bs-http-log-XXXXXX", text[4096], ip[64], m[16],
	     p[64];
	int fd, saved, y, mo, d, h, mi, sec, msec, status;
	unsigned long long in, out;
	long long ms;
	const char *line;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, 2), 0);

	memset(&o, 0, sizeof o);
	o.threads = 2;
	s = start_server(&o);
	ck_assert_int_eq(simple_status(http_server_port(s),
				       "POST /echo?cursor=SECRETCURSOR HTTP/1.1"
				       "\r\nHost: t\r\nAuthorization: Bearer "
				       "SECRETTOKEN\r\nContent-Length: 10\r\n"
				       "\r\nSECRETBODY"),
			 200);
	wait_requests(s, 1); /* logged in order of ending, not of answers */
	ck_assert_int_eq(
	    simple_status(http_server_port(s),
			  "GET /a/../b HTTP/1.1\r\nHost: t\r\n\r\n"),
	    400);
	http_server_stop(s);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	ck_assert_int_eq(read_file(path, text, sizeof text), 0);
	unlink(path);

	ck_assert_msg(strstr(text, "SECRET") == NULL, "leaked: %s", text);
	line = text;
	ck_assert_int_eq(
	    sscanf(line,
		   "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %63s %15s %63s %d "
		   "in=%llu out=%llu ms=%lld",
		   &y, &mo, &d, &h, &mi, &sec, &msec, ip, m, p, &status, &in,
		   &out, &ms),
	    14);
	ck_assert_int_ge(y, 2000);
	ck_assert_str_eq(ip, "127.0.0.1");
	ck_assert_str_eq(m, "POST");
	ck_assert_str_eq(p, "/echo");
	ck_assert_int_eq(status, 200);
	ck_assert_uint_eq(in, 10);
	ck_assert_uint_eq(out, 10);
	ck_assert_int_ge(ms, 0);
	line = strchr(line, '\n');
	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(
	    sscanf(line + 1, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %63s %15s %63s %d",
		   &y, &mo, &d, &h, &mi, &sec, &msec, ip, m, p, &status),
	    11);
	ck_assert_str_eq(m, "GET");
	ck_assert_str_eq(p, "/a/../b"); /* as sent, for the operator */
	ck_assert_int_eq(status, 400);
}
END_TEST

START_TEST(out_of_memory)
{
	struct http_options o;
	struct http_server *s;
	uint16_t port;
	long n;

	quiet_options(&o);
	s = start_server(&o);
	port = http_server_port(s);
	/* one request at a time, so the seam's countdown is not raced */
	for (n = 0; n < 16; n++) {
		int st;

		mem_fail_after(n);
		st = simple_status(port, "POST /echo HTTP/1.1\r\nHost: t\r\n"
					 "Content-Length: 5\r\n\r\nhello");
		mem_fail_reset();
		ck_assert_msg(st == 200 || st == 500 || st == 503,
			      "fail after %ld: %d", n, st);
	}
	ck_assert_int_eq(simple_status(port,
				       "POST /echo HTTP/1.1\r\nHost: t\r\n"
				       "Content-Length: 5\r\n\r\nhello"),
			 200);
	http_server_stop(s);
}
END_TEST

START_TEST(start_errors)
{
	struct http_options o;
	struct http_server *s = NULL, *s2 = NULL;
	struct err e;

	quiet_options(&o);
	err_init(&e);
	o.host = "example.org";
	ck_assert_int_eq(http_server_start(&o, test_handler, NULL, &s, &e), -1);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(e.kind, ERR_USAGE);

	o.host = "localhost";
	s = start_server(&o);
	err_init(&e);
	o.port = http_server_port(s);
	ck_assert_int_eq(http_server_start(&o, test_handler, NULL, &s2, &e),
			 -1);
	ck_assert_ptr_null(s2);
	ck_assert_int_eq(e.kind, ERR_INVALID);
	http_server_stop(s);

	o.port = 0;
	o.threads = 8;
	o.connection_limit = 4;
	err_init(&e);
	ck_assert_int_eq(http_server_start(&o, test_handler, NULL, &s2, &e),
			 -1);
	ck_assert_int_eq(e.kind, ERR_USAGE);
	/* a thread per connection, or a pool: not both */
	o.threads = 2;
	o.connection_limit = 0;
	o.thread_per_connection = 1;
	err_init(&e);
	ck_assert_int_eq(http_server_start(&o, test_handler, NULL, &s2, &e),
			 -1);
	ck_assert_int_eq(e.kind, ERR_USAGE);
	ck_assert_ptr_null(s2);

	quiet_options(&o);
	o.tls_cert_file = "/nonexistent/cert.pem";
	err_init(&e);
	ck_assert_int_eq(http_server_start(&o, test_handler, NULL, &s2, &e),
			 -1);
	ck_assert_int_eq(e.kind, ERR_USAGE);
	o.tls_key_file = "/nonexistent/key.pem";
	err_init(&e);
	ck_assert_int_eq(http_server_start(&o, test_handler, NULL, &s2, &e),
			 -1);
	ck_assert_int_eq(e.kind, ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/cert.pem"));
}
END_TEST

START_TEST(ipv6_literal)
{
	struct http_options o;
	struct http_server *s = NULL;
	struct sockaddr_in6 sin6;
	struct err e;
	int probe = socket(AF_INET6, SOCK_STREAM, 0), fd;
	struct reply r;

	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	if (probe < 0 || bind(probe, (struct sockaddr *)&sin6, sizeof sin6)) {
		if (probe >= 0)
			close(probe);
		return; /* no IPv6 loopback here: nothing to test */
	}
	close(probe);
	quiet_options(&o);
	o.host = "[::1]";
	err_init(&e);
	ck_assert_msg(http_server_start(&o, test_handler, NULL, &s, &e) == 0,
		      "%s", e.msg);
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	sin6.sin6_port = htons(http_server_port(s));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin6, sizeof sin6), 0);
	send_str(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	read_reply(fd, 0, &r);
	ck_assert_int_eq(r.status, 200);
	assert_header(&r, "X-Ip", "::1");
	reply_free(&r);
	close(fd);
	http_server_stop(s);

	/* "::" is dual stack: IPv4 clients come in as mapped addresses */
	o.host = "::";
	err_init(&e);
	ck_assert_msg(http_server_start(&o, test_handler, NULL, &s, &e) == 0,
		      "%s", e.msg);
	ck_assert_int_eq(exchange_str(http_server_port(s),
				      "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n",
				      &r),
			 200);
	assert_header(&r, "X-Ip", "::ffff:127.0.0.1");
	reply_free(&r);
	http_server_stop(s);
}
END_TEST

struct sink {
	char data[256];
	size_t len;
};

static size_t sink_write(char *p, size_t size, size_t n, void *arg)
{
	struct sink *k = arg;
	size_t take = size * n;

	if (take > sizeof k->data - 1 - k->len)
		take = sizeof k->data - 1 - k->len;
	memcpy(k->data + k->len, p, take);
	k->len += take;
	k->data[k->len] = '\0';
	return size * n;
}

START_TEST(tls_request)
{
	char dir[] = "/tmp/bs-http-tls-XXXXXX", cert[128], key[128], cmd[512],
	     url[128];
	struct http_options o;
	struct http_server *s;
	struct sink k;
	CURL *c;
	long code = 0;
	CURLcode rc;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	snprintf(cmd, sizeof cmd,
		 "openssl req -x509 -newkey ec -pkeyopt "
		 "ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 "
		 "-addext subjectAltName=IP:127.0.0.1 -days 1 -keyout %s "
		 "-out %s >/dev/null 2>&1",
		 key, cert);
	ck_assert_msg(system(cmd) == 0,
		      "openssl failed (install it: apt-get install openssl)");

	quiet_options(&o);
	o.tls_cert_file = cert;
	o.tls_key_file = key;
	s = start_server(&o);

	c = curl_easy_init();
	ck_assert_ptr_nonnull(c);
	memset(&k, 0, sizeof k);
	snprintf(url, sizeof url, "https://127.0.0.1:%u/echo?a=tls",
		 (unsigned)http_server_port(s));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, cert);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "over tls");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &k);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	rc = curl_easy_perform(c);
	ck_assert_msg(rc == CURLE_OK, "curl: %s", curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	ck_assert_int_eq(code, 200);
	ck_assert_str_eq(k.data, "over tls");
	curl_easy_cleanup(c);

	/* plain HTTP to the TLS port gets no HTTP answer */
	ck_assert_int_ne(simple_status(http_server_port(s),
				       "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n"),
			 200);
	http_server_stop(s);
	unlink(cert);
	unlink(key);
	rmdir(dir);
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, get_echo);
	tcase_add_test(tc, keep_alive);
	tcase_add_test(tc, post_echo_1mib);
	tcase_add_test(tc, body_limits);
	tcase_add_test(tc, framing);
	tcase_add_test(tc, methods);
	tcase_add_test(tc, bad_paths);
	tcase_add_test(tc, huge_headers);
	tcase_add_test(tc, response_helpers);
	tcase_add_test(tc, handler_answers);
	tcase_add_test(tc, stats_move);
	tcase_add_loop_test(tc, concurrent_clients, 0, 2);
	tcase_add_test(tc, handler_waits_alone);
	tcase_add_test(tc, graceful_stop);
	tcase_add_test(tc, stop_grace_deadline);
	tcase_add_test(tc, idle_timeout_and_per_ip_limit);
	tcase_add_test(tc, log_line);
	tcase_add_test(tc, out_of_memory);
	tcase_add_test(tc, start_errors);
	tcase_add_test(tc, ipv6_literal);
	tcase_add_test(tc, tls_request);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sem_init(&unblock, 0, 0) != 0)
		return EXIT_FAILURE;
	sr = srunner_create(http_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
