/* http.c - branchsyncd's HTTP layer over libmicrohttpd (see http.h and
 * docs/HTTP.md): it checks and collects requests for one application
 * handler. Routing, authentication and the protocol are not here. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "buf.h"
#include "fsutil.h"
#include "mem.h"

#define HTTP_TLS_FILE_MAX (1u << 20)

/* Where a request stands between libmicrohttpd's calls of http_access. */
enum http_phase {
	HTTP_PHASE_NEW = 0, /* request line and headers in, checks not run */
	HTTP_PHASE_BODY,    /* collecting the body */
	HTTP_PHASE_DISCARD, /* body refused; reading on to answer cleanly */
	HTTP_PHASE_ANSWERED,
};

struct http_server {
	struct MHD_Daemon *daemon;
	http_handler_fn handler;
	void *ctx;
	size_t max_body;
	unsigned stop_grace_s;
	int quiet;
	uint16_t port;
	char *tls_cert; /* kept for the daemon's lifetime; key wiped at stop */
	char *tls_key;
	size_t tls_cert_len, tls_key_len;
	atomic_uint inflight; /* requests begun and not yet ended */
	atomic_int stopping;
	_Atomic uint64_t requests, bytes_in, bytes_out;
	_Atomic uint64_t status_2xx, status_4xx, status_5xx, closed;
};

/* Per-request state: made when libmicrohttpd has parsed the request line
 * (the only moment the target is seen as sent), freed when it ends. */
struct http_req {
	struct http_server *srv;
	struct timespec start;
	char *url;	    /* raw target, at most HTTP_URL_MAX bytes kept */
	size_t url_len;	    /* its full length as sent */
	char *path;	    /* decoded; NULL until the checks passed */
	const char *method; /* libmicrohttpd's, set at the first call */
	char client_ip[INET6_ADDRSTRLEN];
	enum http_phase phase;
	struct buf body;
	int refuse_status; /* 413 or 503 while discarding */
	size_t discarded;
	int status; /* what the layer queued; 0 if nothing */
	uint64_t bytes_in, bytes_out;
};

static const char http_text_plain[] = "text/plain; charset=utf-8";

/* ---- request checks ---- */

static int http_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Rejects "//" and "." or ".." segments, which mean different things to
 * different path normalisers (and so to signatures over the URL). */
static int http_path_segments_ok(const char *p)
{
	while (*p == '/') {
		const char *seg = p + 1;
		size_t len = strcspn(seg, "/");

		if (len == 0 && seg[0] == '/')
			return 0;
		if (len == 1 && seg[0] == '.')
			return 0;
		if (len == 2 && seg[0] == '.' && seg[1] == '.')
			return 0;
		p = seg + len;
	}
	return 1;
}

/* Percent-decodes the path part raw[0..n) of a request target into `out`
 * (room for n + 1 bytes) and checks it: it starts with '/', every byte as
 * sent and as decoded is printable ASCII other than space, escapes are
 * well formed, "%2F" is refused (it would hide a segment boundary), '#' is
 * refused unescaped, and the segments pass http_path_segments_ok. Returns
 * 0, or -1 (nothing allocated either way). */
static int http_path_decode(const char *raw, size_t n, char *out)
{
	size_t i, o = 0;

	if (n == 0 || raw[0] != '/')
		return -1;
	for (i = 0; i < n; i++) {
		int c = (unsigned char)raw[i];

		if (c == '#')
			return -1;
		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				return -1;
			hi = http_hex((unsigned char)raw[i + 1]);
			lo = http_hex((unsigned char)raw[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			if (c == '/')
				return -1;
			i += 2;
		}
		if (c <= 0x20 || c >= 0x7f)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return http_path_segments_ok(out) ? 0 : -1;
}

/* Whether a Content-Length value declares more than `max` bytes. A value
 * that is not all digits is left to libmicrohttpd, which refuses it. */
static int http_length_over(const char *v, size_t max)
{
	uint64_t n = 0;

	if (!*v)
		return 0;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return 0;
		if (n > (UINT64_MAX - 9) / 10)
			return 1;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	return n > (uint64_t)max;
}

/* ---- answering ---- */

/* Adds "Connection: close" while stopping so that keep-alive clients go
 * away instead of queueing more requests on a server that is leaving. */
static int http_add_common(struct http_server *s, struct MHD_Response *r)
{
	if (atomic_load(&s->stopping) &&
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") !=
		MHD_YES)
		return -1;
	return 0;
}

static int http_is_head(const struct http_req *rq)
{
	return rq->method && strcmp(rq->method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* Answers with a short plain-text message from static storage. Returns
 * libmicrohttpd's verdict: MHD_NO closes the connection. */
static enum MHD_Result http_answer_static(struct MHD_Connection *conn,
					  struct http_req *rq, int status,
					  const char *msg)
{
	struct MHD_Response *r;
	enum MHD_Result ret = MHD_NO;
	size_t n = strlen(msg);

	r = MHD_create_response_from_buffer(n, (void *)msg,
					    MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				    http_text_plain) != MHD_YES)
		goto cleanup;
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
				    "GET, HEAD, POST") != MHD_YES)
		goto cleanup;
	if (rq && http_add_common(rq->srv, r))
		goto cleanup;
	ret = MHD_queue_response(conn, (unsigned)status, r);
	if (ret == MHD_YES && rq) {
		rq->status = status;
		rq->bytes_out = http_is_head(rq) ? 0 : n;
		rq->phase = HTTP_PHASE_ANSWERED;
	}
cleanup:
	MHD_destroy_response(r);
	return ret;
}

/* Turns the handler's answer into a libmicrohttpd response and queues it.
 * Takes ownership of resp->body in every case. */
static enum MHD_Result http_answer(struct MHD_Connection *conn,
				   struct http_req *rq,
				   struct http_response *resp)
{
	struct MHD_Response *r = NULL;
	enum MHD_Result ret = MHD_NO;
	const char *ctype = resp->content_type;
	size_t i;

	if (resp->status < 200 || resp->status > 599 ||
	    resp->nheaders > HTTP_HEADERS_MAX ||
	    (resp->body_len && !resp->body)) {
		mem_free(resp->body);
		return http_answer_static(conn, rq, 500,
					  "internal error: bad response\n");
	}
	if (resp->status == 204 || resp->status == 304 || !resp->body_len) {
		mem_free(resp->body);
		resp->body = NULL;
		resp->body_len = 0;
	}
	if (resp->body) {
		r = MHD_create_response_from_buffer_with_free_callback(
		    resp->body_len, resp->body, mem_free);
		if (!ctype)
			ctype = "application/octet-stream";
	} else {
		r = MHD_create_response_from_buffer(0, NULL,
						    MHD_RESPMEM_PERSISTENT);
	}
	if (!r) {
		mem_free(resp->body);
		return http_answer_static(conn, rq, 503, "out of memory\n");
	}
	if (ctype && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
					     ctype) != MHD_YES)
		goto refused;
	for (i = 0; i < resp->nheaders; i++) {
		const struct http_header *h = &resp->headers[i];

		if (!h->name || memchr(h->value, '\0', sizeof h->value) == NULL)
			goto refused;
		if (MHD_add_response_header(r, h->name, h->value) != MHD_YES)
			goto refused;
	}
	if (http_add_common(rq->srv, r))
		goto refused;
	ret = MHD_queue_response(conn, (unsigned)resp->status, r);
	if (ret == MHD_YES) {
		rq->status = resp->status;
		rq->bytes_out = http_is_head(rq) ? 0 : resp->body_len;
		rq->phase = HTTP_PHASE_ANSWERED;
	}
	MHD_destroy_response(r);
	return ret;
refused:
	MHD_destroy_response(r); /* frees the body through mem_free */
	return http_answer_static(conn, rq, 500,
				  "internal error: bad response header\n");
}

/* Hands a complete, checked request to the application. */
static enum MHD_Result http_dispatch(struct MHD_Connection *conn,
				     struct http_req *rq)
{
	struct http_server *s = rq->srv;
	struct http_request req;
	struct http_response resp;
	const char *q = strchr(rq->url, '?');

	memset(&req, 0, sizeof req);
	memset(&resp, 0, sizeof resp);
	req.method = rq->method;
	req.url = rq->url;
	req.path = rq->path;
	req.query = q ? q + 1 : NULL;
	req.body = rq->body.len ? rq->body.data : NULL;
	req.body_len = rq->body.len;
	req.client_ip = rq->client_ip;
	req.conn_internal = conn;
	s->handler(s->ctx, &req, &resp);
	buf_release(&rq->body); /* not needed while the answer is sent */
	return http_answer(conn, rq, &resp);
}

/* First call for a request: the checks that need no body. */
static enum MHD_Result http_begin(struct MHD_Connection *conn,
				  struct http_req *rq, const char *method)
{
	const char *cl, *te;
	size_t path_len;

	rq->method = method;
	if (strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) &&
	    strcmp(method, MHD_HTTP_METHOD_POST))
		return http_answer_static(conn, rq, MHD_HTTP_METHOD_NOT_ALLOWED,
					  "method not allowed\n");
	if (rq->url_len > HTTP_URL_MAX)
		return http_answer_static(conn, rq, MHD_HTTP_URI_TOO_LONG,
					  "request target too long\n");
	path_len = strcspn(rq->url, "?");
	rq->path = mem_alloc(path_len + 1);
	if (!rq->path)
		return http_answer_static(conn, rq, 503, "out of memory\n");
	if (http_path_decode(rq->url, path_len, rq->path)) {
		mem_free(rq->path);
		rq->path = NULL;
		return http_answer_static(conn, rq, MHD_HTTP_BAD_REQUEST,
					  "bad request path\n");
	}
	/* Both framings at once is how requests are smuggled past proxies;
	 * a coding other than chunked would be read to the end of the
	 * connection by libmicrohttpd. */
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_CONTENT_LENGTH);
	te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (te && cl)
		return http_answer_static(conn, rq, MHD_HTTP_BAD_REQUEST,
					  "both Content-Length and "
					  "Transfer-Encoding\n");
	if (te && strcasecmp(te, "chunked") != 0)
		return http_answer_static(conn, rq, MHD_HTTP_NOT_IMPLEMENTED,
					  "transfer coding not supported\n");
	/* Answering now, before the body, makes libmicrohttpd skip the
	 * "100 Continue", not read the body and close afterwards. */
	if (cl && http_length_over(cl, rq->srv->max_body))
		return http_answer_static(conn, rq, MHD_HTTP_CONTENT_TOO_LARGE,
					  "request body too large\n");
	rq->phase = HTTP_PHASE_BODY;
	return MHD_YES;
}

/* libmicrohttpd cannot queue an answer while a body is arriving (0.9.75
 * refuses it), so an oversized body is read on and thrown away, up to
 * HTTP_DISCARD_MAX, to answer at its end; past that, MHD_NO closes. */
static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn,
				   const char *url, const char *method,
				   const char *version, const char *upload_data,
				   size_t *upload_data_size, void **req_cls)
{
	struct http_req *rq = *req_cls;
	size_t n = *upload_data_size;

	(void)cls;
	(void)url; /* decoded by libmicrohttpd; we use our own copy */
	(void)version;
	if (!rq) /* the state could not be allocated */
		return http_answer_static(conn, NULL, 503, "out of memory\n");
	switch (rq->phase) {
	case HTTP_PHASE_NEW:
		return http_begin(conn, rq, method);
	case HTTP_PHASE_BODY:
		if (!n)
			return http_dispatch(conn, rq);
		*upload_data_size = 0;
		rq->bytes_in += n;
		buf_append(&rq->body, upload_data, n);
		if (rq->body.status) {
			rq->refuse_status =
			    rq->body.status == BS_ELIMIT ? 413 : 503;
			buf_release(&rq->body);
			rq->phase = HTTP_PHASE_DISCARD;
		}
		return MHD_YES;
	case HTTP_PHASE_DISCARD:
		if (!n)
			return http_answer_static(
			    conn, rq, rq->refuse_status,
			    rq->refuse_status == 413
				? "request body too large\n"
				: "out of memory\n");
		*upload_data_size = 0;
		rq->bytes_in += n;
		if (n > HTTP_DISCARD_MAX - rq->discarded)
			return MHD_NO;
		rq->discarded += n;
		return MHD_YES;
	case HTTP_PHASE_ANSWERED:
		break;
	}
	return MHD_NO;
}

/* ---- request lifetime, log and counters ---- */

static void *http_uri_log(void *cls, const char *uri,
			  struct MHD_Connection *conn)
{
	struct http_server *s = cls;
	struct http_req *rq = mem_calloc(1, sizeof *rq);
	const union MHD_ConnectionInfo *ci;

	if (!rq)
		return NULL;
	rq->srv = s;
	clock_gettime(CLOCK_MONOTONIC, &rq->start);
	rq->url_len = strlen(uri);
	rq->url = mem_strndup(uri, HTTP_URL_MAX);
	if (!rq->url) {
		mem_free(rq);
		return NULL;
	}
	buf_init(&rq->body, s->max_body);
	strcpy(rq->client_ip, "-");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		const void *a = NULL;

		if (sa->sa_family == AF_INET)
			a = &((const struct sockaddr_in *)(const void *)sa)
				 ->sin_addr;
		else if (sa->sa_family == AF_INET6)
			a = &((const struct sockaddr_in6 *)(const void *)sa)
				 ->sin6_addr;
		if (a && !inet_ntop(sa->sa_family, a, rq->client_ip,
				    sizeof rq->client_ip))
			strcpy(rq->client_ip, "-");
	}
	atomic_fetch_add(&s->inflight, 1);
	return rq;
}

static const char *http_end_name(enum MHD_RequestTerminationCode toe)
{
	switch (toe) {
	case MHD_REQUEST_TERMINATED_COMPLETED_OK:
		return NULL;
	case MHD_REQUEST_TERMINATED_WITH_ERROR:
		return "error";
	case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
		return "timeout";
	case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
		return "shutdown";
	case MHD_REQUEST_TERMINATED_READ_ERROR:
		return "read-error";
	case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
		return "client-abort";
	}
	return "other";
}

/* Copies at most n bytes of s into out, with anything but printable ASCII
 * replaced, so a hostile target cannot forge or split log lines. */
static void http_log_field(char *out, size_t outsz, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i] && i + 1 < outsz; i++)
		out[i] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : '~';
	out[i] = '\0';
	if (i == 0 && outsz > 1)
		strcpy(out, "-");
}

static void http_log(const struct http_req *rq, int status,
		     enum MHD_RequestTerminationCode toe)
{
	struct timespec now, mono;
	struct tm tm;
	char when[32], method[24], path[160], st[8];
	const char *end = http_end_name(toe);
	int64_t ms;

	clock_gettime(CLOCK_REALTIME, &now);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	ms = (int64_t)(mono.tv_sec - rq->start.tv_sec) * 1000 +
	     (mono.tv_nsec - rq->start.tv_nsec) / 1000000;
	if (!gmtime_r(&now.tv_sec, &tm) ||
	    !strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm))
		strcpy(when, "-");
	http_log_field(method, sizeof method, rq->method ? rq->method : "-",
		       SIZE_MAX);
	if (rq->path)
		http_log_field(path, sizeof path, rq->path, SIZE_MAX);
	else
		http_log_field(path, sizeof path, rq->url,
			       strcspn(rq->url, "?"));
	if (status > 0 && status < 1000)
		snprintf(st, sizeof st, "%d", status);
	else
		strcpy(st, "-");
	/* One call, so that lines from pool threads do not interleave. */
	fprintf(stderr, "%s.%03ldZ %s %s %s %s in=%llu out=%llu ms=%lld%s%s\n",
		when, now.tv_nsec / 1000000, rq->client_ip, method, path, st,
		(unsigned long long)rq->bytes_in,
		(unsigned long long)rq->bytes_out, (long long)ms,
		end ? " end=" : "", end ? end : "");
}

static void http_req_free(struct http_req *rq)
{
	buf_release(&rq->body);
	mem_free(rq->url);
	mem_free(rq->path);
	mem_free(rq);
}

static void http_completed(void *cls, struct MHD_Connection *conn,
			   void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_req *rq = *req_cls;
	int status;

	if (!rq)
		return;
	*req_cls = NULL;
	status = rq->status;
	if (!status) { /* answered by libmicrohttpd itself, if at all */
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		    conn, MHD_CONNECTION_INFO_HTTP_STATUS);

		if (ci)
			status = (int)ci->http_status;
	}
	atomic_fetch_add(&s->requests, 1);
	atomic_fetch_add(&s->bytes_in, rq->bytes_in);
	atomic_fetch_add(&s->bytes_out, rq->bytes_out);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		atomic_fetch_add(&s->closed, 1);
	if (status >= 200 && status < 300)
		atomic_fetch_add(&s->status_2xx, 1);
	else if (status >= 400 && status < 500)
		atomic_fetch_add(&s->status_4xx, 1);
	else if (status >= 500 && status < 600)
		atomic_fetch_add(&s->status_5xx, 1);
	if (!s->quiet)
		http_log(rq, status, toe);
	http_req_free(rq);
	atomic_fetch_sub(&s->inflight, 1);
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	fprintf(stderr, "http: libmicrohttpd: %s\n", msg);
}

/* ---- start and stop ---- */

/* Fills `ss` from a host literal; sets *v6 for IPv6. Returns 0 or -1. */
static int http_parse_host(const char *host, uint16_t port,
			   struct sockaddr_storage *ss, int *v6)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;
	char tmp[INET6_ADDRSTRLEN + 2];
	size_t n;

	memset(ss, 0, sizeof *ss);
	*v6 = 0;
	if (!host || strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	else if (strcmp(host, "*") == 0)
		host = "0.0.0.0";
	n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' &&
	    n - 2 < sizeof tmp) {
		memcpy(tmp, host + 1, n - 2);
		tmp[n - 2] = '\0';
		host = tmp;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*v6 = 1;
		return 0;
	}
	return -1;
}

static int http_load_tls(struct http_server *s, const struct http_options *o,
			 struct err *e)
{
	uint8_t *p;
	size_t n;

	if (!o->tls_cert_file && !o->tls_key_file)
		return 0;
	if (!o->tls_cert_file || !o->tls_key_file) {
		err_set(
		    e, ERR_USAGE,
		    "give both a TLS certificate and a TLS key, or neither");
		return -1;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		err_set(e, ERR_INVALID,
			"this libmicrohttpd was built without TLS support");
		return -1;
	}
	/* fsutil_read_all NUL-terminates, as libmicrohttpd wants PEM text */
	if (fsutil_read_all(o->tls_cert_file, HTTP_TLS_FILE_MAX, &p, &n)) {
		err_set(e, ERR_INVALID, "cannot read TLS certificate %s: %s",
			o->tls_cert_file, strerror(errno));
		return -1;
	}
	s->tls_cert = (char *)p;
	s->tls_cert_len = n;
	if (fsutil_read_all(o->tls_key_file, HTTP_TLS_FILE_MAX, &p, &n)) {
		err_set(e, ERR_INVALID, "cannot read TLS key %s: %s",
			o->tls_key_file, strerror(errno));
		return -1;
	}
	s->tls_key = (char *)p;
	s->tls_key_len = n;
	if (!s->tls_cert_len || !s->tls_key_len) {
		err_set(e, ERR_INVALID, "TLS certificate or key file is empty");
		return -1;
	}
	return 0;
}

static void http_server_free(struct http_server *s)
{
	if (s->tls_key) {
		sodium_memzero(s->tls_key, s->tls_key_len);
		mem_free(s->tls_key);
	}
	mem_free(s->tls_cert);
	mem_free(s);
}

static unsigned http_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > 256 ? 256u : (unsigned)n;
}

int http_server_start(const struct http_options *o, http_handler_fn h,
		      void *ctx, struct http_server **out, struct err *e)
{
	struct http_server *s = NULL;
	struct sockaddr_storage ss;
	struct MHD_OptionItem opts[12];
	const union MHD_DaemonInfo *di;
	unsigned flags, threads, limit;
	size_t nopt = 0;
	int v6, rc = -1;

	*out = NULL;
	if (!o || !h) {
		err_set(e, ERR_USAGE,
			"http server needs options and a handler");
		goto cleanup;
	}
	if (http_parse_host(o->host, o->port, &ss, &v6)) {
		err_set(e, ERR_USAGE,
			"cannot listen on '%s': give an IPv4 or IPv6 address "
			"or localhost",
			o->host);
		goto cleanup;
	}
	threads = o->threads ? o->threads : http_default_threads();
	limit = o->connection_limit ? o->connection_limit
				    : HTTP_DEFAULT_CONNECTION_LIMIT;
	if (o->thread_per_connection && o->threads) {
		err_set(e, ERR_USAGE,
			"a thread per connection, or a pool of threads: "
			"not both");
		goto cleanup;
	}
	if (!o->thread_per_connection && threads > limit) {
		err_set(e, ERR_USAGE,
			"more threads (%u) than connections allowed (%u)",
			threads, limit);
		goto cleanup;
	}
	s = mem_calloc(1, sizeof *s);
	if (!s) {
		err_set(e, ERR_INVALID, "out of memory starting http server");
		goto cleanup;
	}
	s->handler = h;
	s->ctx = ctx;
	s->max_body = o->max_body ? o->max_body : HTTP_DEFAULT_MAX_BODY;
	s->stop_grace_s =
	    o->stop_grace_s ? o->stop_grace_s : HTTP_DEFAULT_STOP_GRACE_S;
	s->quiet = o->quiet;
	atomic_init(&s->inflight, 0);
	atomic_init(&s->stopping, 0);
	if (http_load_tls(s, o, e))
		goto cleanup;

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
	if (o->thread_per_connection)
		/* epoll is for pools; poll has no FD_SETSIZE limit */
		flags |= MHD_USE_THREAD_PER_CONNECTION |
			 (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES
				  ? MHD_USE_POLL
				  : MHD_USE_AUTO);
	else
		flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
			     ? MHD_USE_EPOLL
			     : MHD_USE_AUTO;
	if (!o->quiet)
		flags |= MHD_USE_ERROR_LOG;
	if (v6) /* "::" serves IPv4 too (mapped addresses) */
		flags |= IN6_IS_ADDR_UNSPECIFIED(
			     &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr)
			     ? MHD_USE_DUAL_STACK
			     : MHD_USE_IPv6;
	if (s->tls_cert)
		flags |= MHD_USE_TLS;

	opts[nopt++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
					       (intptr_t)limit, NULL};
	opts[nopt++] = (struct MHD_OptionItem){
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (intptr_t)(o->per_ip_limit ? o->per_ip_limit
				       : HTTP_DEFAULT_PER_IP_LIMIT),
	    NULL};
	opts[nopt++] = (struct MHD_OptionItem){
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    (intptr_t)(o->timeout_s ? o->timeout_s : HTTP_DEFAULT_TIMEOUT_S),
	    NULL};
	opts[nopt++] = (struct MHD_OptionItem){
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (intptr_t)(o->connection_memory ? o->connection_memory
					    : HTTP_DEFAULT_CONNECTION_MEMORY),
	    NULL};
	opts[nopt++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
	/* HTTP/1.1 without Host and spaces in the target are refused. */
	opts[nopt++] =
	    (struct MHD_OptionItem){MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL};
	if (threads > 1 && !o->thread_per_connection)
		opts[nopt++] = (struct MHD_OptionItem){
		    MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL};
	if (s->tls_cert) {
		opts[nopt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY,
						       0, s->tls_key};
		opts[nopt++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
	}
	opts[nopt++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	/* the logger goes first, or libmicrohttpd complains about it */
	s->daemon = MHD_start_daemon(
	    flags, o->port, NULL, NULL, http_access, s,
	    MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, s, MHD_OPTION_ARRAY, opts,
	    MHD_OPTION_URI_LOG_CALLBACK, http_uri_log, s,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed, s, MHD_OPTION_END);
	if (!s->daemon) {
		err_set(e, ERR_INVALID,
			"cannot listen on %s port %u: address in use, not "
			"allowed, or a bad TLS key or certificate",
			o->host ? o->host : "127.0.0.1", (unsigned)o->port);
		goto cleanup;
	}
	di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di && di->port ? di->port : o->port;
	*out = s;
	s = NULL;
	rc = 0;
cleanup:
	if (s)
		http_server_free(s);
	return rc;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->port;
}

static int64_t http_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* MHD_stop_daemon alone would wait for running handlers but then drop
 * their answers (the request ends as DAEMON_SHUTDOWN), hence the drain. */
void http_server_stop(struct http_server *s)
{
	MHD_socket fd;
	int64_t deadline;

	if (!s)
		return;
	atomic_store(&s->stopping, 1);
	fd = MHD_quiesce_daemon(s->daemon);
	deadline = http_mono_ms() + (int64_t)s->stop_grace_s * 1000;
	while (atomic_load(&s->inflight) > 0 && http_mono_ms() < deadline) {
		struct timespec ts = {0, 10 * 1000000L};

		nanosleep(&ts, NULL);
	}
	MHD_stop_daemon(s->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	http_server_free(s);
}

void http_server_stats(const struct http_server *s, struct http_stats *st)
{
	st->requests = atomic_load(&s->requests);
	st->bytes_in = atomic_load(&s->bytes_in);
	st->bytes_out = atomic_load(&s->bytes_out);
	st->status_2xx = atomic_load(&s->status_2xx);
	st->status_4xx = atomic_load(&s->status_4xx);
	st->status_5xx = atomic_load(&s->status_5xx);
	st->closed = atomic_load(&s->closed);
}

/* ---- request and response helpers for handlers ---- */

const char *http_request_header(const struct http_request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn_internal, MHD_HEADER_KIND,
					   name);
}

const char *http_request_arg(const struct http_request *r, const char *name)
{
	const char *v = NULL;

	/* a bare "?name" is present with a NULL value: report it as "" */
	if (MHD_lookup_connection_value_n(r->conn_internal,
					  MHD_GET_ARGUMENT_KIND, name,
					  strlen(name), &v, NULL) != MHD_YES)
		return NULL;
	return v ? v : "";
}

enum bs_status http_response_set(struct http_response *resp, int status,
				 const char *content_type, const void *p,
				 size_t n)
{
	uint8_t *copy = NULL;

	if (n) {
		copy = mem_alloc(n);
		if (!copy) {
			mem_free(resp->body);
			resp->body = NULL;
			resp->body_len = 0;
			resp->status = 500;
			resp->content_type = NULL;
			return BS_ENOMEM;
		}
		memcpy(copy, p, n);
	}
	mem_free(resp->body);
	resp->body = copy;
	resp->body_len = n;
	resp->status = status;
	resp->content_type = content_type;
	return BS_OK;
}

void http_response_take(struct http_response *resp, int status,
			const char *content_type, uint8_t *body, size_t n)
{
	mem_free(resp->body);
	resp->body = body;
	resp->body_len = body ? n : 0;
	resp->status = status;
	resp->content_type = content_type;
}

enum bs_status http_response_header(struct http_response *resp,
				    const char *name, const char *value)
{
	struct http_header *h;
	size_t n = strlen(value);

	if (!name || !*name || strpbrk(name, " \t\r\n:") || !n ||
	    strpbrk(value, "\r\n"))
		return BS_EINVALID;
	if (resp->nheaders >= HTTP_HEADERS_MAX || n >= sizeof h->value)
		return BS_ELIMIT;
	h = &resp->headers[resp->nheaders++];
	h->name = name;
	memcpy(h->value, value, n + 1);
	return BS_OK;
}
