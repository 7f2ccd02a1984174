/* devices.h - the device registry as people and scripts read it: a text
 * table for `branchsyncd devices`, and the stable JSON shared by
 * `branchsyncd devices --json` and GET /v1/devices. */
#ifndef BS_DEVICES_H
#define BS_DEVICES_H

#include <stdio.h>

#include "buf.h"
#include "store.h"

/* Appends a JSON array: one object per device with "device" (hex key),
 * "name", "role", "scope", "enrolled_at" (log index), "revoked_at" (log
 * index or null), "last_seq", "last_seen_ms". */
int devices_json(struct store *s, struct buf *out, struct err *e);
int devices_text(struct store *s, FILE *out, struct err *e);

#endif
