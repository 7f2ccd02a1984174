/* hlc.c - hybrid logical clocks on packed uint64 stamps (see hlc.h and
 * protocol/FORMAT.md, section "Hybrid logical clock"). Not a clock source:
 * the wall time always comes from the caller. */
#include "hlc.h"

void hlc_unpack(uint64_t stamp, uint64_t *physical_ms, uint16_t *logical)
{
	*physical_ms = hlc_physical(stamp);
	*logical = hlc_logical(stamp);
}

void hlc_init(struct hlc *h, uint64_t max_drift_ms)
{
	h->last = 0;
	h->max_drift_ms = max_drift_ms;
}

void hlc_restore(struct hlc *h, uint64_t last)
{
	if (last > h->last)
		h->last = last;
}

/*
 * The paper's rules, written on packed stamps. With l the physical part and
 * c the counter of `base`, max(base + 1, pack(pt, 0)) is:
 *   pt > l:  pack(pt, 0), since base + 1 <= pack(l + 1, 0) <= pack(pt, 0);
 *   pt <= l: base + 1, i.e. (l, c + 1), or (l + 1, 0) when c was 0xffff.
 * The send rule takes base = last. The receive rule takes base =
 * max(last, remote): its three counter cases (l == l_m: max(c, c_m) + 1;
 * l > l_m: c + 1; l_m > l: c_m + 1) are all "the larger stamp plus one".
 * The carry into l on counter overflow is our addition: the paper bounds c
 * in theory, we bound it in 16 bits without breaking monotonicity.
 */
static enum bs_status hlc_advance(struct hlc *h, uint64_t wall_ms,
				  uint64_t base, uint64_t *out)
{
	enum bs_status rc = BS_OK;
	uint64_t next, wall;

	if (wall_ms > HLC_PHYSICAL_MAX) {
		rc = BS_EINVALID;
		goto cleanup;
	}
	if (base == UINT64_MAX) {
		rc = BS_ELIMIT; /* (HLC_PHYSICAL_MAX, 0xffff) has no successor */
		goto cleanup;
	}
	next = base + 1;
	wall = hlc_pack(wall_ms, 0);
	if (wall > next)
		next = wall;
	h->last = next;
	*out = next;
cleanup:
	return rc;
}

enum bs_status hlc_now(struct hlc *h, uint64_t wall_ms, uint64_t *out)
{
	return hlc_advance(h, wall_ms, h->last, out);
}

enum bs_status hlc_receive(struct hlc *h, uint64_t wall_ms, uint64_t remote,
			   uint64_t *out, enum hlc_verdict *verdict)
{
	uint64_t remote_ms = hlc_physical(remote);
	uint64_t base = h->last;
	enum hlc_verdict v = HLC_ADOPTED;
	enum bs_status rc;

	/* Subtract rather than add: wall_ms + max_drift_ms may overflow. */
	if (remote_ms > wall_ms && remote_ms - wall_ms > h->max_drift_ms)
		v = HLC_SUSPECT;
	else if (remote > base)
		base = remote;
	rc = hlc_advance(h, wall_ms, base, out);
	if (rc)
		goto cleanup;
	*verdict = v;
cleanup:
	return rc;
}

/* Days since 1970-01-01 to a proleptic Gregorian date, by 400-year eras
 * (the method of Howard Hinnant's "chrono-compatible low-level date
 * algorithms"); days is never negative here. */
static void hlc_civil(uint64_t days, unsigned *year, unsigned *month,
		      unsigned *day)
{
	uint64_t z = days + 719468; /* days since 0000-03-01 */
	uint64_t era = z / 146097;
	uint64_t doe = z - era * 146097;
	uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	uint64_t mp = (5 * doy + 2) / 153; /* March = 0 */
	uint64_t y = yoe + era * 400;

	*day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*year = (unsigned)(y + (*month <= 2));
}

/* Writes v in decimal, zero-padded to width digits, and returns the end. */
static char *hlc_digits(char *p, unsigned v, int width)
{
	int i;

	for (i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

void hlc_format(uint64_t stamp, char out[HLC_STR_MAX])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t ms = hlc_physical(stamp);
	uint64_t secs = ms / 1000;
	unsigned sod = (unsigned)(secs % 86400);
	unsigned year, month, day, logical = hlc_logical(stamp);
	char *p = out;

	/* By hand rather than strftime/printf: no locale, no time zone, and
	 * the length is known (year <= 10889, so at most five digits). */
	hlc_civil(secs / 86400, &year, &month, &day);
	p = hlc_digits(p, year, year > 9999 ? 5 : 4);
	*p++ = '-';
	p = hlc_digits(p, month, 2);
	*p++ = '-';
	p = hlc_digits(p, day, 2);
	*p++ = 'T';
	p = hlc_digits(p, sod / 3600, 2);
	*p++ = ':';
	p = hlc_digits(p, sod / 60 % 60, 2);
	*p++ = ':';
	p = hlc_digits(p, sod % 60, 2);
	*p++ = '.';
	p = hlc_digits(p, (unsigned)(ms % 1000), 3);
	*p++ = 'Z';
	*p++ = '+';
	*p++ = hex[logical >> 12 & 0xf];
	*p++ = hex[logical >> 8 & 0xf];
	*p++ = hex[logical >> 4 & 0xf];
	*p++ = hex[logical & 0xf];
	*p = '\0';
}
