/*
 * hlc.c - the hybrid logical clock of a store.
 *
 * An hlc is (wall-clock milliseconds << 16) | counter: it follows real time
 * when clocks are sane, stays strictly increasing when the wall clock stalls
 * or steps back, and moves past every change this store has received, so a
 * local edit made after seeing a remote one always sorts after it.  A
 * received hlc more than a bound ahead of the local wall clock is refused
 * rather than adopted: one device with a clock years ahead must not drag
 * every replica's clock (and every later edit) into the future.
 *
 * The latest value is kept in fv_meta ('hlc') inside the writing
 * transaction, so it survives restarts even if the wall clock goes back.
 */
#include "internal.h"

#include "platform.h"

#define COUNTER_MASK 0xFFFFu

uint64_t fv__hlc_tick(uint64_t last, int64_t wall_ms)
{
    uint64_t wall = wall_ms > 0 ? (uint64_t)wall_ms << 16 : 0;
    if (wall > last) return wall;
    /* same or earlier millisecond: count; a full counter borrows the next
     * millisecond (the clock runs a little ahead, never backwards) */
    return last + 1;
}

int fv__hlc_merge(uint64_t *last, uint64_t remote, int64_t wall_ms, int64_t max_drift_ms)
{
    if (FV_HLC_MS(remote) > wall_ms + max_drift_ms) return -1;
    if (remote > *last) *last = remote;
    return 0;
}

fv_status fv__hlc_save(fv_db *db)
{
    sqlite3_stmt *s = fv__stmt(db, "INSERT OR REPLACE INTO fv_meta(key, value) VALUES('hlc', ?1)");
    if (s == NULL) return db->err;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)db->hlc_last);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "saving the clock");
}

fv_status fv__hlc_next(fv_db *db, uint64_t *out)
{
    uint64_t prev = db->hlc_last;
    db->hlc_last = fv__hlc_tick(db->hlc_last, fv_platform_now_ms());
    fv_status st = fv__hlc_save(db);
    if (st != FV_OK) {
        db->hlc_last = prev;
        return st;
    }
    *out = db->hlc_last;
    return FV_OK;
}

fv_status fv__hlc_observe(fv_db *db, uint64_t remote)
{
    /* A pulled batch is judged by the server's clock as this device last
     * learnt it (fvd already refused anything beyond the bound by its own):
     * a device whose clock is behind must still receive others' changes. */
    int64_t now = fv_platform_now_ms() + (db->observe_offset > 0 ? db->observe_offset : 0);
    if (fv__hlc_merge(&db->hlc_last, remote, now, FV_HLC_MAX_DRIFT_MS) != 0) {
        char when[21];
        fv__time_format_ms(FV_HLC_MS(remote), when);
        return fv__err(db, FV_EPROTO,
                       "a change is dated %s, more than %lld hours ahead of this device's clock "
                       "(a clock far in the future is refused, not adopted)",
                       when, (long long)(FV_HLC_MAX_DRIFT_MS / 3600000));
    }
    return FV_OK;
}
