/* hlc.h - hybrid logical clocks (Kulkarni et al. 2014, "Logical Physical
 * Clocks"), packed into one uint64 (protocol/FORMAT.md, section "Hybrid
 * logical clock"). Pure: the caller passes the wall clock in; nothing here
 * reads a clock, and persisting h->last is the caller's job. */
#ifndef BS_HLC_H
#define BS_HLC_H

#include <stdint.h>

#include "bs_status.h"

#define HLC_LOGICAL_BITS 16
#define HLC_LOGICAL_MAX UINT64_C(0xffff)
#define HLC_PHYSICAL_MAX ((UINT64_C(1) << 48) - 1) /* ms; year 10889 */

/* Bytes hlc_format writes, NUL included: "YYYYY-MM-DDTHH:MM:SS.mmmZ+cccc". */
#define HLC_STR_MAX 32

/* A stamp is (physical ms << 16) | logical counter; stamps order exactly as
 * plain uint64 values, so callers compare them with < and ==. physical_ms
 * must be at most HLC_PHYSICAL_MAX: higher bits are shifted out. */
static inline uint64_t hlc_pack(uint64_t physical_ms, uint16_t logical)
{
	return (physical_ms << HLC_LOGICAL_BITS) | logical;
}

static inline uint64_t hlc_physical(uint64_t stamp)
{
	return stamp >> HLC_LOGICAL_BITS;
}

static inline uint16_t hlc_logical(uint64_t stamp)
{
	return (uint16_t)(stamp & HLC_LOGICAL_MAX);
}

void hlc_unpack(uint64_t stamp, uint64_t *physical_ms /* OUT */,
		uint16_t *logical /* OUT */);

struct hlc {
	uint64_t last;          /* the greatest stamp issued; persist it */
	uint64_t max_drift_ms;  /* how far a remote stamp may lead the wall */
};

/* What hlc_receive did with the remote stamp. */
enum hlc_verdict {
	HLC_ADOPTED = 0, /* merged into the local clock (the paper's rule) */
	HLC_SUSPECT,     /* more than max_drift_ms ahead of the wall clock:
			    ignored, the local clock only ticked */
};

/* Starts a clock at stamp 0. max_drift_ms = UINT64_MAX trusts every remote
 * stamp; 0 suspects any remote stamp ahead of the local wall clock. */
void hlc_init(struct hlc *h, uint64_t max_drift_ms);

/* Reloads persisted state: h->last becomes max(h->last, last), so a restore
 * can never move a running clock backwards. */
void hlc_restore(struct hlc *h, uint64_t last);

/* Stamps a local or send event: l' = max(l, pt); c' = c + 1 if l' == l,
 * else 0; a counter past 0xffff carries into l (one millisecond later).
 * *out > every stamp issued before, whatever wall_ms does.
 * Fails, leaving h unchanged: BS_EINVALID if wall_ms > HLC_PHYSICAL_MAX,
 * BS_ELIMIT if the clock has reached the largest stamp. Allocates nothing. */
enum bs_status hlc_now(struct hlc *h, uint64_t wall_ms, uint64_t *out /* OUT */);

/* Stamps the receipt of a message stamped `remote`. If remote's physical
 * part is at most max_drift_ms ahead of wall_ms, applies the paper's receive
 * rule (*out > remote and > every local stamp) and sets *verdict to
 * HLC_ADOPTED; otherwise behaves exactly like hlc_now and sets HLC_SUSPECT.
 * A suspect stamp is not an error: BS_OK is returned and the caller decides.
 * Fails like hlc_now, leaving h and *verdict unchanged. */
enum bs_status hlc_receive(struct hlc *h, uint64_t wall_ms, uint64_t remote,
			   uint64_t *out /* OUT */,
			   enum hlc_verdict *verdict /* OUT */);

/* Writes stamp as UTC ISO-8601 with milliseconds, then '+' and the counter
 * in four lowercase hex digits: "2026-11-26T15:51:14.123Z+0003". Years past
 * 9999 take five digits. Pure arithmetic; always NUL-terminates. */
void hlc_format(uint64_t stamp, char out[HLC_STR_MAX]);

#endif
