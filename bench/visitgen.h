/*
 * visitgen.h - the benchmark's data: deterministic, realistic visits (the
 * same bytes for every peer, whatever process it runs in) and time-ordered
 * UUIDv7 ids made the way fieldvault makes them (48-bit milliseconds, a
 * 12-bit counter within a millisecond, random bits from the OS).
 *
 * Depends on libc only, so that it links into peer_sqlcipher, which must
 * not see the system SQLite or libsodium.
 */
#ifndef FV_BENCH_VISITGEN_H
#define FV_BENCH_VISITGEN_H

#include <stddef.h>
#include <stdint.h>

/* One visit as a field-sales app records it (the `visit` table of the
 * shipped catalogue).  Text is NUL-terminated. */
typedef struct vg_visit {
    char at[24];                  /* 2026-03-14T09:30:00Z */
    const char *method;           /* visit|phone|email|video|other (static) */
    char participants[96];
    char summary[640];
    char feedback[384];
    char agreement[256];
    char next_action[160];
    char next_action_owner[32];
    char next_action_due[12];     /* 2026-04-02 */
    double lat, lon;
} vg_visit;

/* Fill *out with visit number i of the data set `seed`.  Pure. */
void vg_visit_make(unsigned seed, uint64_t i, vg_visit *out);

/* Bytes of text in a visit (for reporting). */
size_t vg_visit_bytes(const vg_visit *v);

/* A short company name for customer number i. */
void vg_customer_name(unsigned seed, uint64_t i, char *out, size_t cap);

/* UUIDv7 generator state (one per writer, as fieldvault keeps one per
 * handle). */
typedef struct vg_uuid {
    int64_t last_ms;
    uint16_t seq;
} vg_uuid;

/* Next id, 16 bytes, big-endian time first.  Random bits from getrandom(2),
 * one call per id, like fieldvault's randombytes_buf. */
void vg_uuid7(vg_uuid *g, unsigned char out[16]);

/* Wall-clock milliseconds since the epoch. */
int64_t vg_now_ms(void);

/* 36-character text form (8-4-4-4-12) + NUL. */
void vg_uuid_text(const unsigned char id[16], char out[37]);

#endif
