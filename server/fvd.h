/*
 * fvd.h - what the files of server/ share: bounds, the reply a request
 * handler produces, the four endpoint handlers, small helpers.
 *
 * The handlers (enroll.c, push.c, pull.c, grants.c) are written against
 * the store interface (store.h) and know nothing of HTTP: each gets a
 * complete, already size-checked request body (and, for the signed
 * endpoints, the device that auth.c authenticated) and fills an fvd_reply,
 * which http.c turns into the HTTP answer: a 200 with the response
 * message, or a refusal (HTTP status + protobuf Error) as docs/protocol.md
 * lists them.
 *
 * Threads: a handler uses the store handle it is given and nothing else
 * shared; any number may run at once on different handles.
 */
#ifndef FVD_FVD_H
#define FVD_FVD_H

#include <stddef.h>
#include <stdint.h>

#include "sign.h"
#include "store.h"
#include "wire.h"

/* ---- Bounds ---- */

/* Bytes of a request body: a push carries one bounded batch of the outbox;
 * enrolment and pull requests are a few dozen bytes. */
#define FVD_PUSH_BODY_MAX ((size_t)16 << 20)
#define FVD_SMALL_BODY_MAX ((size_t)64 << 10)
/* Changes in one pull response: the default and the maximum. */
#define FVD_PULL_MAX 1000u
/* How long a nonce is remembered.  A request is accepted while its
 * timestamp is within FV_SIGN_WINDOW_MS of the server clock, and that
 * timestamp may be up to one window ahead when the nonce is first seen:
 * two windows cover every moment a replay could pass the time check. */
#define FVD_NONCE_KEEP_MS (2 * FV_SIGN_WINDOW_MS)

/* ---- Replies ---- */

typedef struct fvd_reply {
    unsigned status;               /* HTTP status; 200 = success */
    fieldvault_v1_ErrorCode code;  /* refusals: Error.code */
    char message[FV_WIRE_TEXT_MAX + 1]; /* refusals: Error.message (UTF-8) */
    fv__membuf body;               /* 200: the encoded response message */
} fvd_reply;

/* Empty reply (status 0: not decided yet); body's cap is
 * FVD_PUSH_BODY_MAX (a pull response of FVD_PULL_MAX changes fits). */
void fvd_reply_init(fvd_reply *r);
void fvd_reply_free(fvd_reply *r);

#if defined(__GNUC__) || defined(__clang__)
#define FVD_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FVD_PRINTF(fmt, args)
#endif

/* Make r a refusal: status, code and a message (cut to fit, on a UTF-8
 * boundary).  Drops any body.  Returns -1 so callers can `return
 * fvd_refuse(...)`. */
FVD_PRINTF(4, 5)
int fvd_refuse(fvd_reply *r, unsigned status, fieldvault_v1_ErrorCode code, const char *fmt,
               ...);
/* A store failure as a refusal: FV_EBUSY is 503 UNAVAILABLE, anything else
 * 500 INTERNAL; the store's message goes to the log, the client gets only
 * `what` failed.  Returns -1. */
int fvd_refuse_store(fvd_reply *r, fv_status st, const char *what, const char *store_err);

/* Make s valid UTF-8 in place: every byte that does not start a valid
 * sequence (a sequence cut by truncation, a quoted stray byte) becomes
 * '?'.  For messages that go on the wire. */
void fvd_utf8_fix(char *s);

/* One line on stderr: "fvd: " + the text.  Thread-safe (one fprintf). */
FVD_PRINTF(1, 2)
void fvd_log(const char *fmt, ...);

/* A name an admin gives (user, team): at most max bytes of valid UTF-8,
 * no control character; empty only if allow_empty.  1 if so, else 0. */
int fvd_name_ok(const char *s, size_t max, int allow_empty);

/* n bytes as 2n lowercase hex digits + NUL. */
void fvd_hex(const unsigned char *b, size_t n, char *out);
/* Exactly 2n hex digits (either case) into n bytes: 0, or -1. */
int fvd_unhex(const char *s, unsigned char *out, size_t n);

/* ---- Endpoint handlers ---- */

/* POST /v1/enroll: body is an EnrollRequest. */
void fvd_enroll(fvd_store *s, const unsigned char *body, size_t len, int64_t now_ms,
                fvd_reply *r);

/* POST /v1/push, from the authenticated device dev; body_hash is the
 * BLAKE2b-256 of the body (auth.c computed it for the signature). */
void fvd_push(fvd_store *s, const fvd_device *dev, const unsigned char *body, size_t len,
              const unsigned char body_hash[32], int64_t now_ms, fvd_reply *r);

/* POST /v1/pull, from the authenticated device dev. */
void fvd_pull(fvd_store *s, const fvd_device *dev, const unsigned char *body, size_t len,
              fvd_reply *r);

/* POST /v1/keys, from the authenticated device dev: its field-key grants
 * after KeysRequest.after (grants.c). */
void fvd_keys(fvd_store *s, const fvd_device *dev, const unsigned char *body, size_t len,
              fvd_reply *r);

/* ---- Enrolment codes (enroll.c; admin add-user makes them) ---- */

/* Characters of a code, without separators; printed in groups of 4. */
#define FVD_CODE_CHARS 20
/* Bytes of a printed code with its dashes and NUL. */
#define FVD_CODE_TEXT (FVD_CODE_CHARS + FVD_CODE_CHARS / 4)

/* A new random code, printed "XXXX-XXXX-XXXX-XXXX-XXXX" (Crockford base32:
 * 100 bits), and its hash. */
void fvd_code_new(char out[FVD_CODE_TEXT], unsigned char hash[32]);
/* The hash of a code as a person may type it: separators ('-', spaces)
 * dropped, letters upper-cased, then BLAKE2b-256 of what remains.  -1 if
 * nothing remains or a character is not a letter, digit or separator. */
int fvd_code_hash(const char *code, unsigned char hash[32]);

#endif /* FVD_FVD_H */
