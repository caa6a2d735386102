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
 * The clock survives restarts even if the wall clock goes back: on open
 * (outbox.c, fv__sync_state_load) it is the larger of fv_meta 'hlc' and the
 * hlc of the last outbox entry.  A local write puts its hlc in the outbox,
 * so fv_meta need not be written per write: just before every commit
 * (store.c) fv__hlc_persist writes it only if what an open would load is
 * behind the clock - after a clock merge, or when the outbox entries that
 * carried the clock were deleted (an acknowledged push).  So every commit
 * leaves a store whose loaded clock is at least every hlc handed out.
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

/* The clock is persisted at commit (fv__hlc_persist), not here: a write
 * that ticks it also writes an outbox entry at that hlc, which a restart
 * reads back.  Saving fv_meta on every write cost a page write per commit. */
fv_status fv__hlc_next(fv_db *db, uint64_t *out)
{
    db->hlc_last = fv__hlc_tick(db->hlc_last, fv_platform_now_ms());
    *out = db->hlc_last;
    return FV_OK;
}

fv_status fv__hlc_persist(fv_db *db, uint64_t *saved)
{
    *saved = db->hlc_saved;
    if (db->hlc_last <= db->hlc_saved) return FV_OK; /* fv_meta holds it already */
    /* what fv__sync_state_load would load, part by part */
    sqlite3_stmt *s = fv__stmt(db, "SELECT coalesce((SELECT value FROM fv_meta WHERE key = 'hlc'), 0),"
                                   " coalesce((SELECT hlc FROM fv_outbox ORDER BY seq DESC LIMIT 1), 0)");
    if (s == NULL) return db->err;
    int rc = sqlite3_step(s);
    sqlite3_int64 meta = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_int64 tail = rc == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return fv__sqlerr(db, rc, "reading the clock");
    if (meta > 0 && (uint64_t)meta >= db->hlc_last) { /* saved by sync (changes.c) */
        *saved = (uint64_t)meta;
        return FV_OK;
    }
    /* the outbox's last entry carries the clock: enough until a push
     * deletes it, and that push's commit comes back here */
    if (tail > 0 && (uint64_t)tail >= db->hlc_last) return FV_OK;
    fv_status st = fv__hlc_save(db);
    if (st == FV_OK) *saved = db->hlc_last;
    return st;
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
