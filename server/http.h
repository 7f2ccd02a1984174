/* http.h - branchsyncd's HTTP layer over libmicrohttpd: listening, TLS,
 * limits, bodies, request log, counters, graceful stop (docs/HTTP.md). It
 * knows nothing of branchsync's protocol: the application gives one handler. */
#ifndef BS_HTTP_H
#define BS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "err.h"

#define HTTP_URL_MAX		       2048 /* request-target bytes; over: 414 */
#define HTTP_HEADERS_MAX	       8    /* extra response headers */
#define HTTP_HEADER_VALUE_MAX	       256  /* incl. the terminating NUL */
#define HTTP_DEFAULT_MAX_BODY	       (16u << 20)
#define HTTP_DEFAULT_CONNECTION_LIMIT  1024
#define HTTP_DEFAULT_PER_IP_LIMIT      32
#define HTTP_DEFAULT_TIMEOUT_S	       120
#define HTTP_DEFAULT_CONNECTION_MEMORY (64u << 10)
#define HTTP_DEFAULT_STOP_GRACE_S      30
/* After a body outgrew max_body, at most this much more is read and thrown
 * away so that the client still gets its 413; past it the connection is
 * closed without an answer. */
#define HTTP_DISCARD_MAX (1u << 20)

/* One request as the handler sees it. Everything points into memory the
 * layer owns and that stays valid until the handler returns. Only requests
 * that passed the layer's checks (method, target, framing, body size)
 * get here. */
struct http_request {
	const char *method;  /* "GET", "HEAD" or "POST" */
	const char *url;     /* request-target exactly as sent (for
			      * signatures): raw path, '?', raw query */
	const char *path;    /* percent-decoded path: starts with '/',
			      * printable ASCII, no "//", "." or ".." */
	const char *query;   /* raw bytes after '?', or NULL if no '?' */
	const uint8_t *body; /* NULL when body_len is 0 */
	size_t body_len;
	const char *client_ip; /* numeric, e.g. "127.0.0.1" or "::1" */
	void *conn_internal;   /* the layer's; do not touch */
};

/* Value of a request header (name case-insensitive), or NULL if absent.
 * The string lives as long as the request. */
const char *http_request_header(const struct http_request *r, const char *name);
/* Value of a query argument, percent-decoded by libmicrohttpd, or NULL if
 * absent. "?a" gives "" for "a". The string lives as long as the request. */
const char *http_request_arg(const struct http_request *r, const char *name);

struct http_header {
	const char *name; /* must outlive the handler call (a literal) */
	char value[HTTP_HEADER_VALUE_MAX]; /* NUL-terminated, not empty */
};

/* What the handler fills in. The layer hands the handler a zeroed struct.
 * `body` is owned: allocated with mem_alloc and freed by the layer, also
 * when the response is refused. A status outside 200..599, an extra header
 * that libmicrohttpd refuses (CR or LF in it, say) or a body_len without a
 * body turn the answer into a 500. No body goes out for HEAD, 204 or 304. */
struct http_response {
	int status;
	const char *content_type; /* must outlive the handler call; NULL:
				   * application/octet-stream if a body */
	uint8_t *body;
	size_t body_len;
	struct http_header headers[HTTP_HEADERS_MAX];
	size_t nheaders;
};

/* Sets status and content type and copies `n` bytes into a fresh body
 * (freeing any previous one). Returns BS_OK, or BS_ENOMEM with the response
 * turned into a 500 without a body. */
enum bs_status http_response_set(struct http_response *resp, int status,
				 const char *content_type, const void *p,
				 size_t n);
/* Like http_response_set, but takes `body` (mem_alloc'd; the layer frees
 * it whatever happens, NULL with n 0 for none) instead of copying it:
 * answers of hundreds of kilobytes are not copied again. */
void http_response_take(struct http_response *resp, int status,
			const char *content_type, uint8_t *body, size_t n);
/* Adds an extra header. Returns BS_OK; BS_EINVALID for an empty name or
 * value, a name with space, tab, ':', CR or LF, or a value with CR or LF;
 * BS_ELIMIT when all HTTP_HEADERS_MAX slots are taken or the value does not
 * fit. On failure the response is left unchanged. */
enum bs_status http_response_header(struct http_response *resp,
				    const char *name, const char *value);

/* Called once per request that passed the checks, with the whole body.
 * Thread safety: the handler runs on libmicrohttpd's threads, several at
 * once (up to `threads`, or one per connection), so everything it touches
 * through `ctx` must be safe for concurrent use. It may block (in a pool, a
 * slow handler occupies one pool thread and delays the other connections
 * that thread serves). It must not call http_server_stop. */
typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
				struct http_response *resp);

/* A zeroed struct means every default. */
struct http_options {
	const char *host;	   /* IPv4 or IPv6 literal (brackets optional),
				    * "localhost", or "*" (all IPv4); NULL:
				    * 127.0.0.1. No name resolution. */
	uint16_t port;		   /* 0: any free port (see http_server_port) */
	size_t max_body;	   /* 0: HTTP_DEFAULT_MAX_BODY */
	unsigned threads;	   /* 0: number of online CPUs */
	int thread_per_connection; /* instead of a pool (threads must be 0):
				    * for handlers that wait, such as for a
				    * group commit */
	unsigned connection_limit; /* 0: HTTP_DEFAULT_CONNECTION_LIMIT */
	unsigned per_ip_limit;	   /* 0: HTTP_DEFAULT_PER_IP_LIMIT */
	unsigned timeout_s;	   /* idle seconds; 0: HTTP_DEFAULT_TIMEOUT_S */
	size_t connection_memory;  /* 0: HTTP_DEFAULT_CONNECTION_MEMORY; bounds
				    * the request line and headers */
	unsigned stop_grace_s;	   /* 0: HTTP_DEFAULT_STOP_GRACE_S */
	const char *tls_cert_file; /* both or neither: PEM files */
	const char *tls_key_file;
	int quiet; /* no request log, no libmicrohttpd log */
};

struct http_server;

/* Starts listening and serving on libmicrohttpd's threads. On success
 * returns 0 and a server in *out (stop it with http_server_stop). On
 * failure returns -1 with `e` set (ERR_INVALID: bad options, unreadable
 * TLS files, address in use...) and *out NULL. */
int http_server_start(const struct http_options *o, http_handler_fn h,
		      void *ctx, struct http_server **out /* OUT */,
		      struct err *e);

/* The port actually bound (useful after asking for port 0). */
uint16_t http_server_port(const struct http_server *s);

/* Stops accepting connections at once, waits up to stop_grace_s for
 * requests already begun to be answered (responses sent while stopping
 * carry "Connection: close"), then closes every connection, waits for the
 * pool threads and frees the server. A request still unanswered at the
 * deadline is cut off. NULL is a no-op. */
void http_server_stop(struct http_server *s);

/* Counters since start, each read atomically (not a consistent snapshot).
 * A request counts in `requests` when it ends, if libmicrohttpd got as far
 * as its request line. status_* count the answers queued for them (by the
 * handler, by the layer, or by libmicrohttpd itself, e.g. its 431); `closed`
 * counts those that did not end normally (timeout, client gone, body far
 * over the limit, stop, or libmicrohttpd closing after its own error
 * answer), so one request may count in both. bytes_in is request body bytes
 * received, bytes_out response body bytes queued by the handler or the
 * layer (0 for HEAD). */
struct http_stats {
	uint64_t requests, bytes_in, bytes_out;
	uint64_t status_2xx, status_4xx, status_5xx, closed;
};

void http_server_stats(const struct http_server *s,
		       struct http_stats *st /* OUT */);

#endif
