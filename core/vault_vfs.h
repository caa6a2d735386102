/*
 * vault_vfs.h - internal interface of the encrypting SQLite VFS shim.
 *
 * On-disk layout of a store file "X":
 *   X       [vault header: FV_VAULT_HDR_SIZE bytes, two slots]
 *           [page 1][page 2]...  each FV_PAGE_SIZE bytes, encrypted
 *   X-wal   SQLite's WAL; every frame's page image encrypted, frame
 *           checksums masked with a keyed hash
 *   X-journal (only ever during creation) page images encrypted
 * The last FV_PAGE_RESERVE bytes of every page (SQLite's reserved bytes) hold
 * nonce(24) | tag(16) | key epoch (u32 LE) | check (u32 LE).
 *
 * One fv__vfs per open store: it is registered with SQLite under a unique
 * name (never as the default VFS) and holds that store's page keys, so no
 * key is ever global or in a URI.  It wraps the default ("unix") VFS.
 */
#ifndef FV_VAULT_VFS_H
#define FV_VAULT_VFS_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#define FV_VAULT_HDR_SIZE 4096
#define FV_VAULT_SLOT_SIZE 2048
#define FV_PAGE_SIZE 4096
#define FV_PAGE_RESERVE 48
#define FV_DBKEY_LEN 32

typedef struct fv__vfs fv__vfs;

/* Create and register a VFS instance reading and writing pages under key
 * (epoch).  The key is copied (and wiped on destroy). SQLITE_OK or an
 * SQLite error code. */
int fv__vfs_create(fv__vfs **out, const unsigned char key[FV_DBKEY_LEN],
                   uint32_t epoch);

/* Unregister, wipe the keys, free.  The store must be closed first. NULL-safe. */
void fv__vfs_destroy(fv__vfs *vfs);

/* Name to pass to sqlite3_open_v2(). Owned by vfs. */
const char *fv__vfs_name(const fv__vfs *vfs);

/* Add a second key (rekey).  make_current != 0: pages are written under it
 * from now on; pages sealed under either key are read.  At most 2 keys. */
int fv__vfs_add_key(fv__vfs *vfs, const unsigned char key[FV_DBKEY_LEN],
                    uint32_t epoch, int make_current);
/* Forget the key of epoch (after every page was rewritten). */
int fv__vfs_drop_key(fv__vfs *vfs, uint32_t epoch);

/* Describes the last authentication failure ("database page 17", "WAL frame
 * 3 (page 5)"); empty string if none.  Owned by vfs. */
const char *fv__vfs_last_failure(const fv__vfs *vfs);

/* ---- Vault header I/O (raw, outside SQLite; through the default VFS so
 * SQLite's POSIX-lock bookkeeping stays right) ---- */

/* Read the whole header region of path into buf.  SQLITE_CANTOPEN if the
 * file does not exist, SQLITE_NOTADB if shorter than the header. */
int fv__vault_header_read(const char *path,
                          unsigned char buf[FV_VAULT_HDR_SIZE]);
/* Write one slot (0 or 1) of the header region of path and fsync it.
 * Creates the file if missing (the other slot then reads as zeros). */
int fv__vault_header_write_slot(const char *path, int slot,
                                const unsigned char data[FV_VAULT_SLOT_SIZE]);

/* ---- Verification (fv check) ---- */

/* Custom file-control opcode, sent with
 *   sqlite3_file_control(db, "main", FV_FCNTL_VERIFY, &result)
 * where result is an int: authenticates every page of the database file and
 * every frame of the current WAL generation.  Sets result to SQLITE_OK or
 * SQLITE_IOERR_DATA (then fv__vfs_last_failure names the page). */
#define FV_FCNTL_VERIFY 0x46560001
/* int result: number of pages in the db file whose epoch != the current
 * write epoch (0 after a completed rekey). */
#define FV_FCNTL_COUNT_OLD_EPOCH 0x46560002

#endif /* FV_VAULT_VFS_H */
