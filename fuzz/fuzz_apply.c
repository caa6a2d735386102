/*
 * fuzz_apply.c - applying a hostile change set to a store: fv_changes_apply
 * reading the set from memory (in chunks of the size byte 0 gives: 1..255,
 * 0 = 64 KiB) into a store that already holds a fixed set of customers,
 * contacts and visits written by fixed devices (fz_base_next), so that
 * mutated seeds hit existing rows: merges, conflicts, tombstones, restores.
 *
 * The contract checked, beyond "no crash":
 *  - a refused set (any status but FV_OK) changes nothing: the state hash
 *    and the conflict log are as before;
 *  - an accepted set leaves a store every read works on (fz_read_all);
 *  - applying an accepted set a second time changes nothing: FV_OK, no
 *    change applied, no new conflict, the same state hash.
 * After an accepted set the store is put back (closed, its file rewritten
 * from the template, reopened) so every input starts from the same state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "wire.h"

static char path[512], wal_path[600];
static unsigned char *tpl;
static size_t tpl_len;
static fv_db *db;
static char base_hash[65];
static size_t base_conflicts;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_apply: %s: %s\n", what, db != NULL ? fv_errmsg(db) : "");
    abort();
}

static size_t conflict_count(void)
{
    fv_conflict_list *l;
    if (fv_conflicts_list(db, 1, &l) != FV_OK) die("conflicts");
    size_t n = 0;
    const fv_conflict *c;
    while (fv_conflicts_next(l, &c) == FV_OK && c != NULL) n++;
    fv_conflicts_free(l);
    return n;
}

static void reopen(void)
{
    if (db != NULL) fv_close(db);
    db = NULL;
    fz_remove(wal_path);
    fz_write_file(path, tpl, tpl_len);
    if (fz_open(path, 0, &db) != FV_OK) die("reopening the template");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    fz_path(path, sizeof path, "apply.fv");
    snprintf(wal_path, sizeof wal_path, "%s-wal", path);
    if (fz_open(path, FV_OPEN_CREATE, &db) != FV_OK) die("create");
    fv__membuf set;
    fv__membuf_init(&set, 0);
    fz_base_src src = {0};
    unsigned char origin[FV_DEVICE_LEN];
    fz_device_id(0, origin);
    char err[256];
    if (fv__wire_encode_changeset(origin, fz_base_next, &src, fv__membuf_write, &set, NULL, err,
                                  sizeof err) != FV_OK)
        die(err);
    fz_src s;
    fz_src_init(&s, fv__membuf_bytes(&set), set.len, set.len);
    if (fv_changes_apply(db, fz_src_read, &s, NULL) != FV_OK) die("applying the base");
    fv__membuf_free(&set);
    if (fv_close(db) != FV_OK) die("close");
    db = NULL;
    tpl = fz_read_file(path, &tpl_len);
    if (tpl == NULL) die("reading the template");
    reopen();
    if (fv_state_hash(db, base_hash) != FV_OK) die("hash");
    base_conflicts = conflict_count();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t c = fz_u8(&in);
    size_t chunk = c == 0 ? (size_t)64 << 10 : c;
    fz_src src;
    fz_src_init(&src, in.p, in.n, chunk);
    fv_apply_stats st1;
    memset(&st1, 0, sizeof st1);
    st1.size = sizeof st1;
    fv_status st = fv_changes_apply(db, fz_src_read, &src, &st1);
    char h[65];
    if (st != FV_OK) {
        FZ_CHECK(st == FV_EPROTO || st == FV_ENOMEM, "apply returned %d: %s", (int)st,
                 fv_errmsg(db));
        FZ_CHECK(fv_state_hash(db, h) == FV_OK, "hash after a refused set: %s", fv_errmsg(db));
        FZ_CHECK(strcmp(h, base_hash) == 0, "a refused set changed the store (%s)",
                 fv_errmsg(db));
        FZ_CHECK(conflict_count() == base_conflicts, "a refused set logged a conflict");
        return 0;
    }
    FZ_CHECK(st1.received == st1.applied + st1.known,
             "received %llu = applied %llu + known %llu?", (unsigned long long)st1.received,
             (unsigned long long)st1.applied, (unsigned long long)st1.known);
    fv_status rs = fz_read_all(db);
    FZ_CHECK(rs == FV_OK, "reading an applied store: %d %s", (int)rs, fv_errmsg(db));
    FZ_CHECK(fv_state_hash(db, h) == FV_OK, "hash: %s", fv_errmsg(db));
    size_t conflicts = conflict_count();

    fz_src_init(&src, in.p, in.n, chunk);
    fv_apply_stats st2;
    memset(&st2, 0, sizeof st2);
    st2.size = sizeof st2;
    st = fv_changes_apply(db, fz_src_read, &src, &st2);
    FZ_CHECK(st == FV_OK, "an accepted set is refused the second time: %s", fv_errmsg(db));
    FZ_CHECK(st2.applied == 0 && st2.conflicts == 0,
             "applying a set twice: %llu applied, %llu conflicts the second time",
             (unsigned long long)st2.applied, (unsigned long long)st2.conflicts);
    char h2[65];
    FZ_CHECK(fv_state_hash(db, h2) == FV_OK && strcmp(h, h2) == 0,
             "applying a set twice changed the state");
    FZ_CHECK(conflict_count() == conflicts, "applying a set twice logged a conflict");
    reopen();
    return 0;
}
