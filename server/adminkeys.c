/*
 * adminkeys.c - the admin key file (see adminkeys.h for its format and
 * contract).
 *
 * Layout: the handle; the passphrase (environment or terminal); encoding
 * and decoding of the plaintext; the file (read, derive, seal, write
 * atomically); the accessors.
 *
 * Every buffer that holds a secret - the handle (admin secret key and the
 * derived box key), the field key array, the plaintext, the passphrase -
 * is sodium_malloc'd and freed with sodium_free, which wipes it; stack
 * copies are not made.  Relies on libsodium (crypto_pwhash Argon2id,
 * crypto_secretbox, crypto_sign) and POSIX (termios, mkstemp, fsync,
 * link, rename).
 */
#include "adminkeys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "fvd.h"

#define MAGIC "FVADMIN1"
#define MAGIC_LEN 8
#define SALT_LEN crypto_pwhash_SALTBYTES
#define NONCE_LEN crypto_secretbox_NONCEBYTES
#define BOXKEY_LEN crypto_secretbox_KEYBYTES
#define HEADER_LEN (MAGIC_LEN + 8 + 8 + SALT_LEN + NONCE_LEN)
/* One field key in the plaintext: team length, team, class, version,
 * created_ms, key. */
#define ENTRY_MAX (1 + FVD_NAME_MAX + 1 + 4 + 8 + FV_FKEY_LEN)
#define PLAIN_MAX (FV_ADMIN_SK_LEN + 4 + (size_t)FVD_ADMIN_KEYS_MAX * ENTRY_MAX)
#define FILE_MAX (HEADER_LEN + crypto_secretbox_MACBYTES + PLAIN_MAX)

_Static_assert(SALT_LEN == 16, "salt size in the file format");
_Static_assert(NONCE_LEN == 24, "nonce size in the file format");
_Static_assert(FV_ADMIN_SK_LEN == crypto_sign_SECRETKEYBYTES, "admin secret key size");
_Static_assert(FV_ADMIN_PK_LEN == crypto_sign_PUBLICKEYBYTES, "admin public key size");
_Static_assert(FVD_NAME_MAX <= 255, "a team's length is one byte");

struct fvd_adminkeys {
    char *path;                 /* malloc'd (not secret) */
    int lock_fd;                /* holds the lock on path.lock; -1 when none */
    unsigned long long ops;
    size_t mem;
    unsigned char salt[SALT_LEN];
    unsigned char boxkey[BOXKEY_LEN];
    unsigned char sk[FV_ADMIN_SK_LEN];
    unsigned char pk[FV_ADMIN_PK_LEN];
    fvd_field_key *keys;        /* sodium_malloc'd, cap entries */
    size_t n, cap;
};

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 4, 5)))
#endif
static fv_status fail(char *err, size_t errcap, fv_status st, const char *fmt, ...)
{
    if (err != NULL && errcap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return st;
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xffu);
        v >>= 8;
    }
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* ---- The passphrase ---- */

/* The terminal whose echo is off while a passphrase is typed, so that a
 * SIGINT or SIGTERM then leaves it usable. */
static volatile sig_atomic_t tty_saved_fd = -1;
static struct termios tty_saved;

static void restore_tty(int sig)
{
    if (tty_saved_fd >= 0) tcsetattr(tty_saved_fd, TCSAFLUSH, &tty_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* One line from the terminal fd, without echo, into buf (cap bytes with
 * the NUL).  0 with *len, or -1 (errno; E2BIG for an over-long line). */
static int read_hidden(int fd, const char *prompt, char *buf, size_t cap, size_t *len)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return -1;
    tty_saved = t;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = restore_tty;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    tty_saved_fd = fd;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    t.c_lflag |= ICANON;
    int rc = tcsetattr(fd, TCSAFLUSH, &t);
    if (rc == 0 && write(fd, prompt, strlen(prompt)) < 0) rc = -1;
    size_t n = 0;
    int too_long = 0;
    while (rc == 0) {
        char c;
        ssize_t k = read(fd, &c, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0 || c == '\n' || c == '\r') break;
        if (n + 1 < cap) buf[n++] = c;
        else too_long = 1;
    }
    buf[n] = '\0';
    int saved = errno;
    tcsetattr(fd, TCSAFLUSH, &tty_saved);
    tty_saved_fd = -1;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (write(fd, "\n", 1) < 0) { /* cosmetic: the Enter was not echoed */
    }
    if (rc != 0) {
        errno = saved;
        return -1;
    }
    if (too_long) {
        errno = E2BIG;
        return -1;
    }
    *len = n;
    return 0;
}

fv_status fvd_admin_passphrase(const char *prompt, int confirm, char **out, char *err,
                               size_t errcap)
{
    if (out == NULL) return fail(err, errcap, FV_EMISUSE, "no output");
    *out = NULL;
    char *p = sodium_malloc(FVD_ADMIN_PASS_MAX + 1);
    if (p == NULL) return fail(err, errcap, FV_ENOMEM, "out of memory");
    const char *env = getenv(FVD_ADMIN_PASS_ENV);
    if (env != NULL) {
        size_t n = strnlen(env, FVD_ADMIN_PASS_MAX + 1);
        if (n == 0 || n > FVD_ADMIN_PASS_MAX) {
            sodium_free(p);
            return fail(err, errcap, FV_EINVAL, "%s is %s (1 to %d bytes)", FVD_ADMIN_PASS_ENV,
                        n == 0 ? "empty" : "too long", FVD_ADMIN_PASS_MAX);
        }
        memcpy(p, env, n + 1);
        *out = p;
        return FV_OK;
    }
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        sodium_free(p);
        return fail(err, errcap, FV_ENOTFOUND, "the admin passphrase is needed: set %s or run "
                    "fvd on a terminal (there is none: %s)", FVD_ADMIN_PASS_ENV,
                    strerror(errno));
    }
    size_t n = 0;
    fv_status st = FV_OK;
    if (read_hidden(fd, prompt, p, FVD_ADMIN_PASS_MAX + 1, &n) != 0)
        st = fail(err, errcap, errno == E2BIG ? FV_EINVAL : FV_EIO,
                  "cannot read the admin passphrase: %s",
                  errno == E2BIG ? "too long" : strerror(errno));
    else if (n == 0)
        st = fail(err, errcap, FV_EINVAL, "the admin passphrase is empty");
    if (st == FV_OK && confirm) {
        char *again = sodium_malloc(FVD_ADMIN_PASS_MAX + 1);
        size_t m = 0;
        if (again == NULL)
            st = fail(err, errcap, FV_ENOMEM, "out of memory");
        else if (read_hidden(fd, "Repeat the admin passphrase: ", again,
                             FVD_ADMIN_PASS_MAX + 1, &m) != 0 || m != n ||
                 sodium_memcmp(p, again, n) != 0)
            st = fail(err, errcap, FV_EINVAL, "the two passphrases differ: nothing was done");
        if (again != NULL) sodium_free(again);
    }
    close(fd);
    if (st != FV_OK) {
        sodium_free(p);
        return st;
    }
    *out = p;
    return FV_OK;
}

void fvd_admin_passphrase_free(char *pass)
{
    if (pass != NULL) sodium_free(pass);
}

/* ---- The handle ---- */

static fvd_adminkeys *handle_new(const char *path)
{
    fvd_adminkeys *k = sodium_malloc(sizeof *k);
    if (k == NULL) return NULL;
    memset(k, 0, sizeof *k);
    k->lock_fd = -1;
    k->path = strdup(path);
    if (k->path == NULL) {
        sodium_free(k);
        return NULL;
    }
    return k;
}

/* One admin command at a time on a key file: two rotations at once would
 * each make "version N+1" with other bytes.  The lock is on path.lock (the
 * key file itself is replaced by rename) and lasts as long as k. */
static fv_status lock(fvd_adminkeys *k, char *err, size_t errcap)
{
    size_t n = strlen(k->path) + sizeof ".lock";
    char *lp = malloc(n);
    if (lp == NULL) return fail(err, errcap, FV_ENOMEM, "out of memory");
    snprintf(lp, n, "%s.lock", k->path);
    k->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    fv_status st = FV_OK;
    if (k->lock_fd < 0) {
        st = fail(err, errcap, FV_EIO, "cannot open %s: %s", lp, strerror(errno));
    } else {
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(k->lock_fd, F_SETLK, &fl) != 0)
            st = fail(err, errcap, errno == EACCES || errno == EAGAIN ? FV_EBUSY : FV_EIO,
                      "%s is in use by another fvd admin command (%s)", k->path,
                      strerror(errno));
    }
    free(lp);
    return st;
}

void fvd_adminkeys_close(fvd_adminkeys *k)
{
    if (k == NULL) return;
    if (k->lock_fd >= 0) close(k->lock_fd); /* releases the lock */
    free(k->path);
    if (k->keys != NULL) sodium_free(k->keys);
    sodium_free(k); /* wipes the secret key and the box key */
}

/* Room for one more key. */
static int grow(fvd_adminkeys *k)
{
    if (k->n < k->cap) return 0;
    if (k->cap >= FVD_ADMIN_KEYS_MAX) return -1;
    size_t cap = k->cap > 0 ? k->cap * 2 : 16;
    if (cap > FVD_ADMIN_KEYS_MAX) cap = FVD_ADMIN_KEYS_MAX;
    fvd_field_key *v = sodium_allocarray(cap, sizeof *v);
    if (v == NULL) return -1;
    if (k->n > 0) memcpy(v, k->keys, k->n * sizeof *v);
    if (k->keys != NULL) sodium_free(k->keys);
    k->keys = v;
    k->cap = cap;
    return 0;
}

static int key_args_ok(const char *team, int cls, uint32_t version)
{
    return team != NULL && fvd_name_ok(team, FVD_NAME_MAX, 0) &&
           (cls == FV_CLASS_PII || cls == FV_CLASS_CONFIDENTIAL) && version >= 1;
}

static const fvd_field_key *find(const fvd_adminkeys *k, const char *team, int cls,
                                 uint32_t version)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->keys[i].cls == cls && k->keys[i].version == version &&
            strcmp(k->keys[i].team, team) == 0)
            return &k->keys[i];
    return NULL;
}

/* ---- The plaintext ---- */

static size_t plain_len(const fvd_adminkeys *k)
{
    size_t n = FV_ADMIN_SK_LEN + 4;
    for (size_t i = 0; i < k->n; i++) n += ENTRY_MAX - FVD_NAME_MAX + strlen(k->keys[i].team);
    return n;
}

static void encode_plain(const fvd_adminkeys *k, unsigned char *p)
{
    memcpy(p, k->sk, FV_ADMIN_SK_LEN);
    p += FV_ADMIN_SK_LEN;
    put_be(p, k->n, 4);
    p += 4;
    for (size_t i = 0; i < k->n; i++) {
        const fvd_field_key *f = &k->keys[i];
        size_t t = strlen(f->team);
        *p++ = (unsigned char)t;
        memcpy(p, f->team, t);
        p += t;
        *p++ = (unsigned char)f->cls;
        put_be(p, f->version, 4);
        p += 4;
        put_be(p, (uint64_t)f->created_ms, 8);
        p += 8;
        memcpy(p, f->key, FV_FKEY_LEN);
        p += FV_FKEY_LEN;
    }
}

/* Parse an authenticated plaintext into k: 0, or -1 if malformed. */
static int decode_plain(fvd_adminkeys *k, const unsigned char *p, size_t n)
{
    if (n < FV_ADMIN_SK_LEN + 4) return -1;
    memcpy(k->sk, p, FV_ADMIN_SK_LEN);
    if (crypto_sign_ed25519_sk_to_pk(k->pk, k->sk) != 0) return -1;
    uint64_t count = get_be(p + FV_ADMIN_SK_LEN, 4);
    if (count > FVD_ADMIN_KEYS_MAX) return -1;
    size_t at = FV_ADMIN_SK_LEN + 4;
    for (uint64_t i = 0; i < count; i++) {
        if (at >= n) return -1;
        size_t t = p[at++];
        if (t == 0 || t > FVD_NAME_MAX || n - at < t + 1 + 4 + 8 + FV_FKEY_LEN) return -1;
        if (grow(k) != 0) return -1;
        fvd_field_key *f = &k->keys[k->n];
        memset(f, 0, sizeof *f);
        memcpy(f->team, p + at, t);
        f->team[t] = '\0';
        at += t;
        f->cls = p[at++];
        f->version = (uint32_t)get_be(p + at, 4);
        at += 4;
        f->created_ms = (int64_t)get_be(p + at, 8);
        at += 8;
        memcpy(f->key, p + at, FV_FKEY_LEN);
        at += FV_FKEY_LEN;
        if (!key_args_ok(f->team, f->cls, f->version) || find(k, f->team, f->cls, f->version))
            return -1;
        k->n++;
    }
    return at == n ? 0 : -1;
}

/* ---- The file ---- */

static fv_status derive(fvd_adminkeys *k, const char *pass, char *err, size_t errcap)
{
    if (crypto_pwhash(k->boxkey, sizeof k->boxkey, pass, strlen(pass), k->salt, k->ops, k->mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return fail(err, errcap, FV_ENOMEM, "cannot derive the key file's key (Argon2id needs "
                    "%zu MiB of memory)", k->mem >> 20);
    return FV_OK;
}

/* The directory part of path ("." if none), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d == NULL) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

static int write_all(int fd, const unsigned char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write b to path atomically: a temporary file in its directory, fsync,
 * then rename over path (replace) or link to it (a new file: FV_EEXIST if
 * path exists), then fsync the directory. */
static fv_status write_atomic(const char *path, const unsigned char *b, size_t n, int replace,
                              char *err, size_t errcap)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmp-XXXXXX");
    char *dir = dir_of(path);
    if (tmp == NULL || dir == NULL) {
        free(tmp);
        free(dir);
        return fail(err, errcap, FV_ENOMEM, "out of memory");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
    fv_status st = FV_OK;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = fail(err, errcap, FV_EIO, "cannot create a file beside %s: %s", path,
                  strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, b, n) != 0 || fsync(fd) != 0) {
        st = fail(err, errcap, FV_EIO, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0) {
        st = fail(err, errcap, FV_EIO, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (replace) {
        if (rename(tmp, path) != 0) {
            st = fail(err, errcap, FV_EIO, "cannot replace %s: %s", path, strerror(errno));
            unlink(tmp);
            goto out;
        }
    } else {
        int rc = link(tmp, path), e = errno;
        unlink(tmp);
        if (rc != 0) {
            st = fail(err, errcap, e == EEXIST ? FV_EEXIST : FV_EIO, "cannot create %s: %s",
                      path, strerror(e));
            goto out;
        }
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        st = fail(err, errcap, FV_EIO, "cannot sync the directory %s: %s", dir, strerror(errno));
    if (dfd >= 0) close(dfd);
out:
    free(tmp);
    free(dir);
    return st;
}

/* Seal k's contents and write them to k->path. */
static fv_status save(fvd_adminkeys *k, int replace, char *err, size_t errcap)
{
    size_t plen = plain_len(k);
    size_t flen = HEADER_LEN + crypto_secretbox_MACBYTES + plen;
    unsigned char *plain = sodium_malloc(plen);
    unsigned char *file = malloc(flen); /* ciphertext only: not secret */
    if (plain == NULL || file == NULL) {
        if (plain != NULL) sodium_free(plain);
        free(file);
        return fail(err, errcap, FV_ENOMEM, "out of memory");
    }
    encode_plain(k, plain);
    unsigned char *p = file;
    memcpy(p, MAGIC, MAGIC_LEN);
    p += MAGIC_LEN;
    put_be(p, k->ops, 8);
    p += 8;
    put_be(p, k->mem, 8);
    p += 8;
    memcpy(p, k->salt, SALT_LEN);
    p += SALT_LEN;
    randombytes_buf(p, NONCE_LEN); /* a new nonce for every write */
    crypto_secretbox_easy(p + NONCE_LEN, plain, plen, p, k->boxkey);
    sodium_free(plain);
    fv_status st = write_atomic(k->path, file, flen, replace, err, errcap);
    free(file);
    return st;
}

fv_status fvd_adminkeys_save(fvd_adminkeys *k, char *err, size_t errcap)
{
    if (k == NULL) return fail(err, errcap, FV_EMISUSE, "no key file");
    return save(k, 1, err, errcap);
}

fv_status fvd_adminkeys_create(const char *path, const char *pass, fvd_adminkeys **out,
                               char *err, size_t errcap)
{
    if (path == NULL || pass == NULL || out == NULL || pass[0] == '\0')
        return fail(err, errcap, FV_EMISUSE, "create key file: missing argument");
    *out = NULL;
    fvd_adminkeys *k = handle_new(path);
    if (k == NULL) return fail(err, errcap, FV_ENOMEM, "out of memory");
    fv_status st = lock(k, err, errcap);
    struct stat sb;
    if (st == FV_OK && lstat(path, &sb) == 0)
        st = fail(err, errcap, FV_EEXIST, "%s exists already", path);
    if (st != FV_OK) {
        fvd_adminkeys_close(k);
        return st;
    }
    k->ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    k->mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    randombytes_buf(k->salt, sizeof k->salt);
    crypto_sign_keypair(k->pk, k->sk);
    st = derive(k, pass, err, errcap);
    if (st == FV_OK) st = save(k, 0, err, errcap);
    if (st != FV_OK) {
        fvd_adminkeys_close(k);
        return st;
    }
    *out = k;
    return FV_OK;
}

/* The whole file into a malloc'd buffer (its bytes are ciphertext). */
static fv_status read_file(const char *path, unsigned char **out, size_t *len, char *err,
                           size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errcap, errno == ENOENT ? FV_ENOTFOUND : FV_EIO, "cannot open %s: %s",
                    path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fail(err, errcap, FV_EIO, "%s is not a regular file", path);
    }
    if (sb.st_size < (off_t)(HEADER_LEN + crypto_secretbox_MACBYTES) ||
        (uint64_t)sb.st_size > (uint64_t)FILE_MAX) {
        close(fd);
        return fail(err, errcap, FV_ECORRUPT, "%s is not an fvd admin key file (wrong size)",
                    path);
    }
    size_t n = (size_t)sb.st_size, got = 0;
    unsigned char *b = malloc(n);
    if (b == NULL) {
        close(fd);
        return fail(err, errcap, FV_ENOMEM, "out of memory");
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(b);
        return fail(err, errcap, FV_EIO, "cannot read %s", path);
    }
    *out = b;
    *len = n;
    return FV_OK;
}

fv_status fvd_adminkeys_open(const char *path, const char *pass, fvd_adminkeys **out,
                             char *err, size_t errcap)
{
    if (path == NULL || pass == NULL || out == NULL)
        return fail(err, errcap, FV_EMISUSE, "open key file: missing argument");
    *out = NULL;
    fvd_adminkeys *k = handle_new(path);
    if (k == NULL) return fail(err, errcap, FV_ENOMEM, "out of memory");
    unsigned char *file = NULL;
    size_t flen = 0;
    fv_status st = lock(k, err, errcap);
    if (st == FV_OK) st = read_file(path, &file, &flen, err, errcap);
    if (st != FV_OK) {
        fvd_adminkeys_close(k);
        return st;
    }
    unsigned char *plain = NULL;
    size_t plen = flen - HEADER_LEN - crypto_secretbox_MACBYTES;
    const unsigned char *p = file + MAGIC_LEN;
    uint64_t ops = get_be(p, 8), mem = get_be(p + 8, 8);
    if (memcmp(file, MAGIC, MAGIC_LEN) != 0) {
        st = fail(err, errcap, FV_ECORRUPT, "%s is not an fvd admin key file", path);
    } else if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_SENSITIVE ||
               mem < crypto_pwhash_MEMLIMIT_MIN || mem > crypto_pwhash_MEMLIMIT_SENSITIVE) {
        st = fail(err, errcap, FV_EKEY, "wrong admin passphrase or damaged key file "
                  "(%s: its key derivation limits are out of range)", path);
    } else if ((plain = sodium_malloc(plen + 1)) == NULL) {
        st = fail(err, errcap, FV_ENOMEM, "out of memory");
    } else {
        k->ops = (unsigned long long)ops;
        k->mem = (size_t)mem;
        memcpy(k->salt, p + 16, SALT_LEN);
        st = derive(k, pass, err, errcap);
        const unsigned char *nonce = p + 16 + SALT_LEN;
        if (st == FV_OK && crypto_secretbox_open_easy(plain, nonce + NONCE_LEN,
                                                      flen - HEADER_LEN, nonce,
                                                      k->boxkey) != 0)
            st = fail(err, errcap, FV_EKEY, "wrong admin passphrase or damaged key file (%s)",
                      path);
        if (st == FV_OK && decode_plain(k, plain, plen) != 0)
            st = fail(err, errcap, FV_ECORRUPT, "%s is damaged: it decrypts but its contents "
                      "are malformed", path);
    }
    if (plain != NULL) sodium_free(plain);
    free(file);
    if (st != FV_OK) {
        fvd_adminkeys_close(k);
        return st;
    }
    *out = k;
    return FV_OK;
}

/* ---- Accessors ---- */

const unsigned char *fvd_adminkeys_public(const fvd_adminkeys *k)
{
    return k->pk;
}

const unsigned char *fvd_adminkeys_secret(const fvd_adminkeys *k)
{
    return k->sk;
}

size_t fvd_adminkeys_count(const fvd_adminkeys *k)
{
    return k->n;
}

const fvd_field_key *fvd_adminkeys_key(const fvd_adminkeys *k, size_t i)
{
    return i < k->n ? &k->keys[i] : NULL;
}

uint32_t fvd_adminkeys_latest(const fvd_adminkeys *k, const char *team, int cls)
{
    uint32_t v = 0;
    for (size_t i = 0; i < k->n; i++)
        if (k->keys[i].cls == cls && k->keys[i].version > v && strcmp(k->keys[i].team, team) == 0)
            v = k->keys[i].version;
    return v;
}

fv_status fvd_adminkeys_add(fvd_adminkeys *k, const char *team, int cls, uint32_t version,
                            int64_t created_ms, char *err, size_t errcap)
{
    if (k == NULL || !key_args_ok(team, cls, version))
        return fail(err, errcap, FV_EINVAL, "add key: bad team, class or version");
    if (find(k, team, cls, version) != NULL)
        return fail(err, errcap, FV_EEXIST, "team %s has key version %u of class %d already",
                    team, (unsigned)version, cls);
    if (grow(k) != 0)
        return fail(err, errcap, FV_ENOMEM, "no room for another field key (at most %d)",
                    FVD_ADMIN_KEYS_MAX);
    fvd_field_key *f = &k->keys[k->n];
    memset(f, 0, sizeof *f);
    snprintf(f->team, sizeof f->team, "%s", team);
    f->cls = cls;
    f->version = version;
    f->created_ms = created_ms;
    crypto_aead_xchacha20poly1305_ietf_keygen(f->key);
    k->n++;
    return FV_OK;
}
