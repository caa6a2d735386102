/*
 * fuzz_common.h - what the fuzz harnesses share: a scratch directory, a
 * cheap key store (so opening a store costs no Argon2id), a cursor over the
 * fuzzer's input, a byte source that hands the input out in small chunks
 * (to exercise the decoders' buffer refills), the fixed change sets the
 * apply harness starts from, and a check that aborts with a message.
 *
 * Every harness is a libFuzzer target (LLVMFuzzerTestOneInput, and
 * LLVMFuzzerInitialize) and is also linked with replay_main.c into a plain
 * program that runs each file given on its command line once: the normal
 * test build replays the committed corpora that way (fuzz/replay.cmake).
 *
 * Nothing here is thread-safe; a harness process runs one input at a time.
 */
#ifndef FV_FUZZ_COMMON_H
#define FV_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "fieldvault.h"

/* The libFuzzer entry points each harness defines. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the code under test must keep: abort (a finding) with the
 * message when cond is false.  Used for invariants, never for inputs. */
#define FZ_CHECK(cond, ...)                                                                    \
    do {                                                                                       \
        if (!(cond)) fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                          \
    } while (0)
__attribute__((noreturn, format(printf, 4, 5))) void fz_fail(const char *file, int line,
                                                             const char *cond, const char *fmt,
                                                             ...);

/* A status deliberately not looked at (warn_unused_result wants a use). */
static inline void fz_ignore(fv_status st)
{
    (void)st;
}

/* Initialise libsodium (once) and silence the library's callers' output:
 * stdout and stderr (the FILE streams, not fds 1 and 2, which the
 * sanitizers keep writing their reports to) go to /dev/null unless
 * FV_FUZZ_VERBOSE is set. */
void fz_init(void);

/* This process's scratch directory (tmpfs when /dev/shm is writable, else
 * $TMPDIR or /tmp), created on first use and removed at exit.  Static
 * storage. */
const char *fz_tmpdir(void);
/* tmpdir/name into buf (cap bytes). */
void fz_path(char *buf, size_t cap, const char *name);
/* Write a whole file (created or truncated); remove a file (absent is
 * fine).  Abort on an I/O failure: that is the harness's problem, not a
 * finding in the code under test. */
void fz_write_file(const char *path, const unsigned char *b, size_t n);
void fz_remove(const char *path);
/* A whole file, malloc'd (NULL if absent). */
unsigned char *fz_read_file(const char *path, size_t *n);

/* A key store whose wrapping is an XOR with a constant: the "wrapped" key
 * in a store's header is the key itself, so a store made with it opens in
 * any process, and opening costs no key derivation.  Test use only. */
extern const fv_keystore fz_keystore;
/* Open (flags FV_OPEN_*) the store at path with fz_keystore.  *db as
 * fv_open leaves it. */
fv_status fz_open(const char *path, unsigned flags, fv_db **db);

/* The fuzzer's input, consumed from the front.  Reading past the end gives
 * zeros. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;
uint8_t fz_u8(fz_in *in);
uint16_t fz_u16(fz_in *in);
uint32_t fz_u32(fz_in *in);
/* Up to n bytes (fewer at the end): returns how many, *out points at them. */
size_t fz_take(fz_in *in, size_t n, const uint8_t **out);

/* A byte source (fv_read_fn / fv__byte_source shape) handing out at most
 * chunk bytes per call. */
typedef struct fz_src {
    const uint8_t *p;
    size_t n, pos, chunk;
} fz_src;
void fz_src_init(fz_src *s, const uint8_t *p, size_t n, size_t chunk);
long fz_src_read(void *ctx, unsigned char *buf, size_t cap);

/* List every customer, visit and contact (reading every field, fv_get on
 * the first few), the due list, the state hash and the conflict log: the
 * first failure's status, or FV_OK.  Aborts if an API call breaks its
 * contract (FV_OK without a result). */
fv_status fz_read_all(fv_db *db);

/* ---- the apply harness's fixed world (also used by gen_corpus.c) ---- */

/* A fixed time ("now" for the fvd harness, the clock in every generated
 * change): 2025-06-15T12:00:00Z. */
#define FZ_NOW_MS 1749988800000LL
#define FZ_HLC(ms_after, counter) ((((uint64_t)(FZ_NOW_MS + (ms_after))) << 16) | (counter))

/* The base state the apply harness's store holds: customers, a contact and
 * visits with fixed row ids written by fixed devices (device ids
 * fz_device_id(0..2)).  fz_base_next is an fv__change_source over it. */
void fz_device_id(int i, unsigned char out[FV_DEVICE_LEN]);
void fz_row_id(int i, unsigned char out[FV_ROWID_LEN]);
typedef struct fz_base_src {
    size_t i;
} fz_base_src;
int fz_base_next(void *ctx, fv__change *out);

/* Build one change (value NULL: a cleared field). */
void fz_change_text(fv__change *c, const char *table, int row, const char *field,
                    const char *value, int device, uint64_t hlc, uint64_t base_hlc);
void fz_change_real(fv__change *c, const char *table, int row, const char *field, double v,
                    int device, uint64_t hlc, uint64_t base_hlc);

#endif
