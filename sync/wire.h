/*
 * wire.h - the sync wire format (sync/fieldvault.proto): a streaming
 * encoder and decoder for the messages that carry changes (ChangeSet,
 * PushRequest, PullResponse), and small whole-message helpers for the
 * others (PushResponse, PullRequest, Error, EnrollRequest, EnrollResponse).
 *
 * Streaming.  Changes come from a change source and go to a change sink one
 * at a time; bytes go to a byte sink and come from a byte source in chunks.
 * A call allocates one fixed-size work area (about 80 KiB: a 64 KiB I/O
 * buffer and room for one change), whatever the number of changes, and
 * frees it before returning.
 *
 * Untrusted input.  The decoders treat every byte as hostile: no length is
 * used before it is checked against a named bound, a whole message is at
 * most FV_CHANGESET_MAX_BYTES, one change at most FV_WIRE_CHANGE_MAX_BYTES,
 * and every change is validated (fv__wire_check_change) before the sink
 * sees it.  Any malformed input is FV_EPROTO with a message saying what and
 * where; a truncated message is detected by its count trailer.  If a
 * decode fails, the sink is not called again: changes already delivered are
 * the caller's to undo (apply runs in a transaction).
 *
 * Errors.  Every function returns an fv_status and, on failure, writes a
 * NUL-terminated message into err (errcap bytes, truncated to fit; err may
 * be NULL when errcap is 0).  The first error wins.  Messages never quote a
 * value (text or sealed), only names, sizes and positions.
 *
 * Threads: no global state; calls on different contexts may run in
 * parallel.
 */
#ifndef FV_WIRE_H
#define FV_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "fieldvault.h"
#include "fieldvault.pb.h"

/* ---- Bounds ---- */

/* Bytes of one encoded ChangeSet, PushRequest or PullResponse.  Both sides
 * check it: the encoder refuses to write more, the decoder to read more. */
#define FV_CHANGESET_MAX_BYTES ((size_t)1 << 30)
/* Bytes of one encoded Change (its largest valid form is
 * fieldvault_v1_Change_size, about 4.3 KiB; the rest is room for fields a
 * later version may add, which this one skips). */
#define FV_WIRE_CHANGE_MAX_BYTES 8192u
/* Bytes of one PushResponse, PullRequest or Error given to the
 * whole-message decoders. */
#define FV_WIRE_MESSAGE_MAX_BYTES ((size_t)512 * 1024)
/* Rejections in one PushResponse; bytes of a message string on the wire
 * (Rejection.message, Error.message), without the NUL. */
#define FV_WIRE_REJECTIONS_MAX 1000
#define FV_WIRE_TEXT_MAX 255
/* Bytes of a batch hash (BLAKE2b-256), PushRequest.prev_batch_hash. */
#define FV_WIRE_HASH_LEN 32
/* Bytes of an Ed25519 public key, EnrollRequest.public_key. */
#define FV_WIRE_PUBKEY_LEN 32
/* Bytes of an enrolment string (code, device name, user, role, team),
 * without the NUL. */
#define FV_WIRE_NAME_MAX 64

/* ---- Callbacks ---- */

/* Produces the changes to encode: fills *out and returns 1, returns 0 at
 * the end, -1 on error (the encoder stops and returns FV_EIO with "the
 * change source failed"; a source that can fail keeps its own status and
 * message in ctx).  *out is the encoder's; the source overwrites it whole. */
typedef int (*fv__change_source)(void *ctx, fv__change *out);

/* Receives each decoded, validated change.  *c is valid only during the
 * call.  Returns 0, or -1 to abort the decode: it then returns FV_EPROTO
 * (the set is refused) with the message the sink wrote into err (errcap
 * bytes; if it wrote none, a generic one).  A sink that fails for other
 * reasons (I/O) keeps its own status in ctx. */
typedef int (*fv__change_sink)(void *ctx, const fv__change *c, char *err, size_t errcap);

/* Takes len encoded bytes; returns 0, or -1 to abort (FV_EIO).  Same shape
 * as the public fv_write_fn. */
typedef int (*fv__byte_sink)(void *ctx, const unsigned char *buf, size_t len);

/* Puts up to cap bytes into buf; returns how many, 0 at the end of the
 * input, -1 on error (FV_EIO).  Same shape as the public fv_read_fn. */
typedef long (*fv__byte_source)(void *ctx, unsigned char *buf, size_t cap);

/* ---- Message headers (the fields around the stream of changes) ---- */

typedef struct fv__changeset_info {
    uint32_t version;                    /* FV_WIRE_VERSION */
    unsigned char origin[FV_DEVICE_LEN]; /* the device that wrote the set */
    uint64_t count;                      /* changes in the set */
} fv__changeset_info;

typedef struct fv__push_info {
    unsigned char device_id[FV_DEVICE_LEN];
    uint64_t batch_seq;
    /* BLAKE2b-256 of the previous acknowledged batch's body (zeros for
     * batch 1); always encoded, required by the decoder. */
    unsigned char prev_batch_hash[FV_WIRE_HASH_LEN];
    uint64_t count; /* decode: changes in the batch; ignored by encode */
} fv__push_info;

typedef struct fv__pull_info {
    uint64_t cursor;
    int more;       /* 0 or 1 */
    uint64_t count; /* decode: changes in the response; ignored by encode */
} fv__pull_info;

/* ---- Streaming encoders ---- */

/*
 * Encode a ChangeSet: version FV_WIRE_VERSION, origin, every change the
 * source produces, then the count trailer, written to sink in chunks of at
 * most 64 KiB.  Each change is checked with fv__wire_check_change first: an
 * invalid one stops the encode with FV_EINVAL ("change #N: ...").  A set
 * that would exceed FV_CHANGESET_MAX_BYTES is FV_EINVAL.  On FV_OK
 * *count_out (may be NULL) is the number of changes written.  On failure
 * the sink may have received part of the set: the caller discards it.
 * Returns FV_OK, FV_EINVAL, FV_EIO (source or sink failed), FV_ENOMEM,
 * FV_EMISUSE (NULL argument), FV_EINTERNAL (nanopb failed unexpectedly).
 */
FV_NODISCARD fv_status fv__wire_encode_changeset(const unsigned char origin[FV_DEVICE_LEN],
                                                 fv__change_source src, void *src_ctx,
                                                 fv__byte_sink sink, void *sink_ctx,
                                                 uint64_t *count_out, char *err, size_t errcap);

/* The same for a PushRequest (hdr->device_id, hdr->batch_seq,
 * hdr->prev_batch_hash; hdr->count is ignored) and a PullResponse
 * (hdr->cursor, hdr->more).  A PushRequest is written header first:
 * device_id, batch_seq, prev_batch_hash, then the changes, then the
 * trailer (see fieldvault.proto). */
FV_NODISCARD fv_status fv__wire_encode_push_request(const fv__push_info *hdr,
                                                    fv__change_source src, void *src_ctx,
                                                    fv__byte_sink sink, void *sink_ctx,
                                                    uint64_t *count_out, char *err,
                                                    size_t errcap);
FV_NODISCARD fv_status fv__wire_encode_pull_response(const fv__pull_info *hdr,
                                                     fv__change_source src, void *src_ctx,
                                                     fv__byte_sink sink, void *sink_ctx,
                                                     uint64_t *count_out, char *err,
                                                     size_t errcap);

/* ---- Streaming decoders ---- */

/*
 * Decode a ChangeSet read from src, handing each change to sink in order.
 * Requires: version == FV_WIRE_VERSION and a 16-byte origin, both before
 * the first change; every change valid; the count trailer present, equal
 * to the number of changes, and the last thing in the input; at most
 * FV_CHANGESET_MAX_BYTES in all.  Unknown fields (from a later minor
 * revision) are skipped.  On FV_OK *info (may be NULL) holds the header and
 * the count; on failure its contents are unspecified.
 * Returns FV_OK, FV_EPROTO (malformed input or the sink refused a change;
 * err says which), FV_EIO (src failed), FV_ENOMEM, FV_EMISUSE (NULL src or
 * sink).
 */
FV_NODISCARD fv_status fv__wire_decode_changeset(fv__byte_source src, void *src_ctx,
                                                 fv__change_sink sink, void *sink_ctx,
                                                 fv__changeset_info *info, char *err,
                                                 size_t errcap);

/* The same for a PushRequest (requires a 16-byte device_id and a 32-byte
 * prev_batch_hash before the first change; batch_seq, if present, too) and
 * a PullResponse. */
FV_NODISCARD fv_status fv__wire_decode_push_request(fv__byte_source src, void *src_ctx,
                                                    fv__change_sink sink, void *sink_ctx,
                                                    fv__push_info *info, char *err,
                                                    size_t errcap);
FV_NODISCARD fv_status fv__wire_decode_pull_response(fv__byte_source src, void *src_ctx,
                                                     fv__change_sink sink, void *sink_ctx,
                                                     fv__pull_info *info, char *err,
                                                     size_t errcap);

/*
 * Check one change against the format's rules, the same on both sides:
 * table and field names match [a-z_][a-z0-9_]* and are 1..FV_NAME_MAX
 * bytes; kind is known; text is at most FV_FIELD_MAX bytes of valid UTF-8
 * without NUL; sealed is at most FV_SEALED_MAX bytes; a real is finite;
 * the "_deleted" field holds real 0 or 1.  (Whether the table and field
 * exist is the catalogue's business, not the format's.)
 * Returns FV_OK or FV_EINVAL with a message that names the problem.
 */
FV_NODISCARD fv_status fv__wire_check_change(const fv__change *c, char *err, size_t errcap);

/* ---- Whole-message helpers (small, bounded messages) ---- */

/*
 * A PushResponse as a plain struct.  rejections is the caller's array (the
 * struct does not own it): encode writes rejections[0..nrejections);
 * decode fills it up to rejections_cap entries and sets nrejections.  At
 * most FV_WIRE_REJECTIONS_MAX either way.  reason is a
 * fieldvault_v1_Reason; a value this build does not know is kept as it is
 * (proto3 open enums): treat it as REASON_UNSPECIFIED.
 */
typedef struct fv__push_response {
    uint64_t batch_seq;
    uint32_t accepted;
    uint64_t server_seq;
    int duplicate; /* 0 or 1 */
    fieldvault_v1_Rejection *rejections;
    size_t nrejections;
    size_t rejections_cap; /* decode only */
} fv__push_response;

/*
 * Encode one message to sink in a single write.  Strings must be
 * NUL-terminated valid UTF-8 (FV_EINVAL otherwise).
 * Returns FV_OK, FV_EINVAL, FV_EIO (sink failed), FV_ENOMEM, FV_EMISUSE.
 */
FV_NODISCARD fv_status fv__wire_encode_push_response(const fv__push_response *m,
                                                     fv__byte_sink sink, void *sink_ctx,
                                                     char *err, size_t errcap);
FV_NODISCARD fv_status fv__wire_encode_pull_request(const fieldvault_v1_PullRequest *m,
                                                    fv__byte_sink sink, void *sink_ctx,
                                                    char *err, size_t errcap);
FV_NODISCARD fv_status fv__wire_encode_error(const fieldvault_v1_Error *m, fv__byte_sink sink,
                                             void *sink_ctx, char *err, size_t errcap);

/*
 * Decode one message from buf[0..len) (len at most
 * FV_WIRE_MESSAGE_MAX_BYTES) into *out, whose fields are overwritten (for a
 * push response: all but rejections and rejections_cap).  Strings are
 * checked to be UTF-8; a PullRequest needs a non-zero device_id; unknown
 * enum values are kept (see above); nothing may follow the message.
 * Returns FV_OK, FV_EPROTO, FV_EMISUSE.
 */
FV_NODISCARD fv_status fv__wire_decode_push_response(const unsigned char *buf, size_t len,
                                                     fv__push_response *out, char *err,
                                                     size_t errcap);
FV_NODISCARD fv_status fv__wire_decode_pull_request(const unsigned char *buf, size_t len,
                                                    fieldvault_v1_PullRequest *out, char *err,
                                                    size_t errcap);
FV_NODISCARD fv_status fv__wire_decode_error(const unsigned char *buf, size_t len,
                                             fieldvault_v1_Error *out, char *err, size_t errcap);

/*
 * Enrolment messages, whole.  Both directions check the same rules:
 * strings NUL-terminated within their arrays (so at most FV_WIRE_NAME_MAX
 * bytes), valid UTF-8, no NUL byte inside; device_id present and not all
 * zeros.  An EnrollRequest needs a non-empty code and a public_key
 * (exactly FV_WIRE_PUBKEY_LEN bytes on the wire); device_name may be
 * empty.  An EnrollResponse needs a non-empty user and role; team may be
 * empty.  The decoders also refuse a bytes field of any other length than
 * its own (16 or 32), a field with the wrong wire type and anything after
 * the message, and name the field in the message.  Decode overwrites *out.
 * Returns as the other whole-message helpers: encode FV_OK, FV_EINVAL,
 * FV_EIO, FV_ENOMEM, FV_EMISUSE; decode FV_OK, FV_EPROTO, FV_EMISUSE.
 */
FV_NODISCARD fv_status fv__wire_encode_enroll_request(const fieldvault_v1_EnrollRequest *m,
                                                      fv__byte_sink sink, void *sink_ctx,
                                                      char *err, size_t errcap);
FV_NODISCARD fv_status fv__wire_encode_enroll_response(const fieldvault_v1_EnrollResponse *m,
                                                       fv__byte_sink sink, void *sink_ctx,
                                                       char *err, size_t errcap);
FV_NODISCARD fv_status fv__wire_decode_enroll_request(const unsigned char *buf, size_t len,
                                                      fieldvault_v1_EnrollRequest *out,
                                                      char *err, size_t errcap);
FV_NODISCARD fv_status fv__wire_decode_enroll_response(const unsigned char *buf, size_t len,
                                                       fieldvault_v1_EnrollResponse *out,
                                                       char *err, size_t errcap);

/*
 * Field-key messages, whole (POST /v1/keys).  A KeysRequest needs a
 * device_id.  A KeysResponse's admin_public_key is empty or 32 bytes (and
 * present when there are grants); each grant has a non-empty UTF-8 team,
 * field_class 1 or 2, version >= 1, seq strictly increasing, sealed_key
 * and signature present.  Signatures are checked by the caller
 * (fv__fc_grant_open), not here.  Returns as the enrolment helpers.
 */
#define FV_WIRE_KEYS_MAX 32
FV_NODISCARD fv_status fv__wire_encode_keys_request(const fieldvault_v1_KeysRequest *m,
                                                    fv__byte_sink sink, void *sink_ctx,
                                                    char *err, size_t errcap);
FV_NODISCARD fv_status fv__wire_decode_keys_request(const unsigned char *buf, size_t len,
                                                    fieldvault_v1_KeysRequest *out, char *err,
                                                    size_t errcap);
FV_NODISCARD fv_status fv__wire_encode_keys_response(const fieldvault_v1_KeysResponse *m,
                                                     fv__byte_sink sink, void *sink_ctx,
                                                     char *err, size_t errcap);
FV_NODISCARD fv_status fv__wire_decode_keys_response(const unsigned char *buf, size_t len,
                                                     fieldvault_v1_KeysResponse *out,
                                                     char *err, size_t errcap);

/* The access policy to and from its message.  _in checks it
 * (fv__policy_check): 1, or 0 with why. */
struct fv__policy;
void fv__wire_policy_out(const struct fv__policy *p, fieldvault_v1_Policy *m);
int fv__wire_policy_in(const fieldvault_v1_Policy *m, struct fv__policy *p, char *why,
                       size_t why_cap);

/* ---- Memory buffers as byte sink and source ---- */

/*
 * A growable byte buffer with a required cap, usable as an fv__byte_sink
 * (fv__membuf_write appends) and as an fv__byte_source (fv__membuf_read
 * reads from pos onwards).  Initialise with fv__membuf_init (empty, owns
 * its memory; a write that would grow it beyond max bytes fails; max 0
 * means FV_CHANGESET_MAX_BYTES) or fv__membuf_init_read
 * (reads borrowed bytes, which must outlive it; writes fail).  Free with
 * fv__membuf_free (NULL-safe, idempotent).  data is owned by the membuf
 * and valid until the next write or fv__membuf_free.
 */
typedef struct fv__membuf {
    unsigned char *data;           /* owned bytes (writable membuf)       */
    size_t len;                    /* bytes held                          */
    size_t cap;                    /* bytes allocated                     */
    size_t max;                    /* writes may not grow len beyond this */
    size_t pos;                    /* read position                       */
    const unsigned char *borrowed; /* read-only membuf: its bytes         */
} fv__membuf;

void fv__membuf_init(fv__membuf *m, size_t max);
void fv__membuf_init_read(fv__membuf *m, const unsigned char *data, size_t len);
void fv__membuf_free(fv__membuf *m);
/* The bytes held (borrowed or owned). */
const unsigned char *fv__membuf_bytes(const fv__membuf *m);
int fv__membuf_write(void *membuf, const unsigned char *buf, size_t len);
long fv__membuf_read(void *membuf, unsigned char *buf, size_t cap);

#endif /* FV_WIRE_H */
