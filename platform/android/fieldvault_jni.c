/*
 * fieldvault_jni.c - the JNI glue under the Java API (org.fieldvault.*,
 * platform/android/java/): Android apps through the NDK, and the host JVM
 * in the tests.
 *
 * Layout: JNI_OnLoad caches the Java classes and registers the natives of
 * org.fieldvault.Native (RegisterNatives: no exported mangled names; only
 * JNI_OnLoad is visible).  Then one function per native: open/close,
 * records, lists, sync, status, conflicts; and the two bridges the C
 * library calls back through, the key store (fv_keystore over a Java
 * KeyWrapper) and the HTTP transport (fv_http_post_fn over a Java
 * HttpTransport).
 *
 * Handles: an fv_db * travels to Java as a jlong that only
 * org.fieldvault.Vault's private state holds; Java serialises the calls on
 * one handle (fieldvault.h's thread contract) and frees it exactly once
 * (close, or its cleaner).  Callbacks run on the thread that called into
 * the library (fv_open, fv_enroll and fv_sync call their hooks
 * synchronously), so the JNIEnv they use is the caller's.
 *
 * Errors: every failure throws org.fieldvault.VaultException(code,
 * fv_errmsg) and returns; a Java exception inside a callback is cleared
 * there, turned into the hook's failure, and its message kept for the
 * VaultException.  Key bytes handed to Java are wiped after the call.
 */
#include <jni.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fieldvault.h"

#define PKG "org/fieldvault/"

static struct {
    jclass vault_exception; /* (ILjava/lang/String;)V */
    jmethodID vault_exception_init;
    jclass record;          /* (String table, String id, String due, String[] names, String[] values, boolean[] redacted) */
    jmethodID record_init;
    jclass string;
    jclass sync_result;     /* (JJJZZZ)V */
    jmethodID sync_result_init;
    jclass sync_status;
    jmethodID sync_status_init;
    jclass conflict;
    jmethodID conflict_init;
    jclass key_wrapper;
    jmethodID kw_wrap, kw_unwrap;         /* byte[] wrap(byte[]), byte[] unwrap(byte[]) */
    jclass http_transport;
    jmethodID ht_post;                    /* HttpResponse post(String, String[], byte[], long, long) */
    jclass http_response;
    jfieldID hr_status, hr_body, hr_server_time;
} J;

/* ---- errors ---------------------------------------------------------------- */

static jstring new_jstring(JNIEnv *env, const char *s);

static void throw_vault(JNIEnv *env, int code, const char *msg)
{
    if ((*env)->ExceptionCheck(env)) return; /* the first error wins */
    jstring m = new_jstring(env, msg ? msg : fv_status_str((fv_status)code));
    if (m == NULL) return; /* OutOfMemoryError pending */
    jobject e = (*env)->NewObject(env, J.vault_exception, J.vault_exception_init, (jint)code, m);
    if (e != NULL) (*env)->Throw(env, (jthrowable)e);
}

/* Throw for st on db: the handle's message, or the code's fixed text. */
static void throw_db(JNIEnv *env, fv_db *db, fv_status st)
{
    throw_vault(env, (int)st, db != NULL ? fv_errmsg(db) : fv_status_str(st));
}

static fv_db *handle(JNIEnv *env, jlong h)
{
    fv_db *db = (fv_db *)(intptr_t)h;
    if (db == NULL) throw_vault(env, FV_EMISUSE, "the vault is closed");
    return db;
}

/* Java strings cross as standard UTF-8, converted here from and to
 * UTF-16: JNI's own *StringUTF* calls use "modified UTF-8", which encodes a
 * character outside the BMP (an emoji in a visit summary) as two 3-byte
 * surrogates, which the library rightly refuses as invalid UTF-8, and
 * which NewStringUTF would need for the way back.  NULL stays NULL. */
typedef struct jstr {
    JNIEnv *env;
    jstring s;
    char *c; /* malloc'd UTF-8; wiped and freed by jstr_release (may hold a value) */
    size_t n;
} jstr;

/* UTF-16 -> UTF-8 into a malloc'd string; NULL on an unpaired surrogate or
 * no memory. */
static char *utf16_to_utf8(const jchar *u, jsize len, size_t *out_len)
{
    char *o = malloc((size_t)len * 3 + 1);
    if (o == NULL) return NULL;
    size_t n = 0;
    for (jsize i = 0; i < len; i++) {
        uint32_t c = u[i];
        if (c >= 0xD800 && c <= 0xDBFF) {
            if (i + 1 >= len || u[i + 1] < 0xDC00 || u[i + 1] > 0xDFFF) goto bad;
            c = 0x10000 + ((c - 0xD800) << 10) + (uint32_t)(u[++i] - 0xDC00);
        } else if (c >= 0xDC00 && c <= 0xDFFF) {
            goto bad;
        }
        if (c < 0x80) {
            o[n++] = (char)c;
        } else if (c < 0x800) {
            o[n++] = (char)(0xC0 | c >> 6);
            o[n++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            o[n++] = (char)(0xE0 | c >> 12);
            o[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
            o[n++] = (char)(0x80 | (c & 0x3F));
        } else {
            o[n++] = (char)(0xF0 | c >> 18);
            o[n++] = (char)(0x80 | ((c >> 12) & 0x3F));
            o[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
            o[n++] = (char)(0x80 | (c & 0x3F));
        }
    }
    o[n] = '\0';
    *out_len = n;
    return o;
bad:
    free(o);
    return NULL;
}

static int jstr_get(JNIEnv *env, jstring s, jstr *out)
{
    out->env = env;
    out->s = s;
    out->c = NULL;
    out->n = 0;
    if (s == NULL) return 0;
    jsize len = (*env)->GetStringLength(env, s);
    const jchar *u = (*env)->GetStringChars(env, s, NULL);
    if (u == NULL) return -1;
    out->c = utf16_to_utf8(u, len, &out->n);
    (*env)->ReleaseStringChars(env, s, u);
    if (out->c == NULL) /* (no memory for a few KiB is the rarer cause) */
        throw_vault(env, FV_EINVAL, "a string is not valid UTF-16 (an unpaired surrogate)");
    return out->c == NULL ? -1 : 0;
}

static void jstr_release(jstr *j)
{
    if (j->c != NULL) {
        volatile char *p = j->c;
        for (size_t i = 0; i < j->n; i++) p[i] = 0;
        free(j->c);
    }
    j->c = NULL;
}

/* A Java string from the library's UTF-8 (valid by construction; a
 * malformed byte becomes U+FFFD rather than an exception).  NULL on no
 * memory (a Java exception is then pending). */
static jstring new_jstring(JNIEnv *env, const char *s)
{
    size_t n = strlen(s);
    jchar *u = malloc((n > 0 ? n : 1) * sizeof(jchar));
    if (u == NULL) return NULL;
    jsize k = 0;
    const unsigned char *b = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t c = b[i];
        size_t need = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
                                   : (c & 0xF8) == 0xF0 ? 3 : 99;
        if (need == 99 || i + need >= n) {
            u[k++] = 0xFFFD;
            i++;
            continue;
        }
        if (need > 0) c &= 0x3F >> need;
        int ok = 1;
        for (size_t t = 1; t <= need; t++) {
            if ((b[i + t] & 0xC0) != 0x80) ok = 0;
            c = c << 6 | (b[i + t] & 0x3F);
        }
        if (!ok) {
            u[k++] = 0xFFFD;
            i++;
            continue;
        }
        i += need + 1;
        if (c >= 0x10000) {
            c -= 0x10000;
            u[k++] = (jchar)(0xD800 + (c >> 10));
            u[k++] = (jchar)(0xDC00 + (c & 0x3FF));
        } else {
            u[k++] = (jchar)c;
        }
    }
    jstring r = (*env)->NewString(env, u, k);
    free(u);
    return r;
}

/* The message of a pending Java exception (cleared), into buf. */
static void take_exception(JNIEnv *env, char *buf, size_t cap)
{
    jthrowable t = (*env)->ExceptionOccurred(env);
    (*env)->ExceptionClear(env);
    snprintf(buf, cap, "Java exception");
    if (t == NULL) return;
    jclass c = (*env)->GetObjectClass(env, t);
    jmethodID m = (*env)->GetMethodID(env, c, "toString", "()Ljava/lang/String;");
    if (m != NULL) {
        jstring s = (jstring)(*env)->CallObjectMethod(env, t, m);
        if ((*env)->ExceptionCheck(env)) (*env)->ExceptionClear(env);
        else if (s != NULL) {
            const char *c8 = (*env)->GetStringUTFChars(env, s, NULL);
            if (c8 != NULL) {
                snprintf(buf, cap, "%s", c8);
                (*env)->ReleaseStringUTFChars(env, s, c8);
            }
            (*env)->DeleteLocalRef(env, s);
        }
    }
    (*env)->DeleteLocalRef(env, c);
    (*env)->DeleteLocalRef(env, t);
}

/* ---- the key store bridge ------------------------------------------------------ */

typedef struct ks_bridge {
    JNIEnv *env;
    jobject wrapper;      /* org.fieldvault.KeyWrapper */
    char why[256];        /* a Java failure, for the exception */
} ks_bridge;

static jbyteArray bytes_to_java(JNIEnv *env, const unsigned char *p, size_t n)
{
    jbyteArray a = (*env)->NewByteArray(env, (jsize)n);
    if (a != NULL) (*env)->SetByteArrayRegion(env, a, 0, (jsize)n, (const jbyte *)p);
    return a;
}

static void wipe_java(JNIEnv *env, jbyteArray a)
{
    if (a == NULL) return;
    jsize n = (*env)->GetArrayLength(env, a);
    jbyte *p = (*env)->GetByteArrayElements(env, a, NULL);
    if (p != NULL) {
        sodium_memzero(p, (size_t)n);
        (*env)->ReleaseByteArrayElements(env, a, p, 0); /* copy back the zeros */
    }
}

/* Call wrap/unwrap(in) and copy the answer to out (at most cap bytes; an
 * exact length when exact is nonzero).  0 or -1. */
static int ks_call(ks_bridge *b, jmethodID m, const unsigned char *in, size_t in_len,
                   unsigned char *out, size_t cap, size_t *out_len, int exact)
{
    JNIEnv *env = b->env;
    jbyteArray jin = bytes_to_java(env, in, in_len);
    if (jin == NULL) {
        take_exception(env, b->why, sizeof b->why);
        return -1;
    }
    jbyteArray jout = (jbyteArray)(*env)->CallObjectMethod(env, b->wrapper, m, jin);
    int rc = -1;
    if ((*env)->ExceptionCheck(env)) {
        take_exception(env, b->why, sizeof b->why);
    } else if (jout == NULL) {
        snprintf(b->why, sizeof b->why, "the key wrapper returned null");
    } else {
        jsize n = (*env)->GetArrayLength(env, jout);
        if (n <= 0 || (size_t)n > cap || (exact && (size_t)n != cap)) {
            snprintf(b->why, sizeof b->why, "the key wrapper returned %d bytes", (int)n);
        } else {
            (*env)->GetByteArrayRegion(env, jout, 0, n, (jbyte *)out);
            *out_len = (size_t)n;
            rc = 0;
        }
    }
    /* the plaintext key was in one of the two arrays: wipe both */
    wipe_java(env, jin);
    wipe_java(env, jout);
    (*env)->DeleteLocalRef(env, jin);
    if (jout != NULL) (*env)->DeleteLocalRef(env, jout);
    return rc;
}

static int ks_wrap(void *ctx, const unsigned char key[32], unsigned char *out, size_t *out_len)
{
    ks_bridge *b = ctx;
    return ks_call(b, J.kw_wrap, key, 32, out, FV_WRAPPED_KEY_MAX, out_len, 0);
}

static int ks_unwrap(void *ctx, const unsigned char *in, size_t in_len, unsigned char key[32])
{
    ks_bridge *b = ctx;
    size_t n = 0;
    return ks_call(b, J.kw_unwrap, in, in_len, key, 32, &n, 1);
}

/* ---- open / close ------------------------------------------------------------- */

static jlong JNICALL n_open(JNIEnv *env, jclass cls, jstring jpath, jbyteArray jpass,
                            jobject jwrapper, jstring juser, jint flags, jint kdf_mem_kib,
                            jint kdf_passes)
{
    (void)cls;
    if (jpath == NULL || (jpass == NULL) == (jwrapper == NULL)) {
        throw_vault(env, FV_EINVAL, "open needs a path and exactly one of a passphrase or a key wrapper");
        return 0;
    }
    jstr path, user;
    if (jstr_get(env, jpath, &path) != 0) return 0;
    if (jstr_get(env, juser, &user) != 0) {
        jstr_release(&path);
        return 0;
    }
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path.c;
    cfg.user = user.c;
    cfg.flags = (unsigned)flags;
    cfg.kdf_mem_kib = (uint32_t)(kdf_mem_kib > 0 ? kdf_mem_kib : 0);
    cfg.kdf_passes = (uint32_t)(kdf_passes > 0 ? kdf_passes : 0);
    jbyte *pass = NULL;
    jsize pass_len = 0;
    ks_bridge bridge = {env, jwrapper, ""};
    fv_keystore ks = {sizeof ks, &bridge, ks_wrap, ks_unwrap};
    if (jpass != NULL) {
        pass_len = (*env)->GetArrayLength(env, jpass);
        pass = (*env)->GetByteArrayElements(env, jpass, NULL);
        if (pass == NULL) goto out;
        cfg.passphrase = (const char *)pass;
        cfg.passphrase_len = (size_t)pass_len;
    } else {
        cfg.keystore = &ks;
    }
    fv_db *db = NULL;
    fv_status st = fv_open(&db, &cfg);
    if (st != FV_OK) {
        if (bridge.why[0] != '\0') {
            char msg[512];
            snprintf(msg, sizeof msg, "%s (key wrapper: %s)", db ? fv_errmsg(db) : fv_status_str(st),
                     bridge.why);
            throw_vault(env, (int)st, msg);
        } else {
            throw_db(env, db, st);
        }
        fv_close(db);
        db = NULL;
    }
    if (pass != NULL) {
        /* a copy (or the array itself): wiped either way; Java wipes its own */
        sodium_memzero(pass, (size_t)pass_len);
        (*env)->ReleaseByteArrayElements(env, jpass, pass, JNI_ABORT);
    }
    jstr_release(&path);
    jstr_release(&user);
    return (jlong)(intptr_t)db;
out:
    jstr_release(&path);
    jstr_release(&user);
    return 0;
}

static void JNICALL n_close(JNIEnv *env, jclass cls, jlong h)
{
    (void)env;
    (void)cls;
    fv_close((fv_db *)(intptr_t)h); /* NULL-safe; never throws: cleaners call it */
}

static void JNICALL n_cancel(JNIEnv *env, jclass cls, jlong h)
{
    (void)env;
    (void)cls;
    if (h != 0) fv_sync_cancel((fv_db *)(intptr_t)h);
}

/* ---- records -------------------------------------------------------------------- */

/* A Java Record from a C record (local reference), NULL with an exception. */
static jobject record_to_java_frame(JNIEnv *env, const fv_record *rec);

static jobject record_to_java(JNIEnv *env, fv_db *db, const fv_record *rec)
{
    (void)db;
    /* one frame per record: lists make many */
    if ((*env)->PushLocalFrame(env, 24) != 0) return NULL;
    jobject r = record_to_java_frame(env, rec);
    return (*env)->PopLocalFrame(env, r);
}

static jobject record_to_java_frame(JNIEnv *env, const fv_record *rec)
{
    size_t n = 0;
    const char *name;
    fv_field_type type;
    while (fv_record_field(rec, n, &name, &type) == FV_OK) n++;
    jobjectArray names = (*env)->NewObjectArray(env, (jsize)n, J.string, NULL);
    jobjectArray values = names ? (*env)->NewObjectArray(env, (jsize)n, J.string, NULL) : NULL;
    jbooleanArray redacted = values ? (*env)->NewBooleanArray(env, (jsize)n) : NULL;
    jobject out = NULL;
    if (redacted == NULL) goto done;
    for (size_t i = 0; i < n; i++) {
        if (fv_record_field(rec, i, &name, &type) != FV_OK) break;
        jstring jn = new_jstring(env, name);
        if (jn == NULL) goto done;
        (*env)->SetObjectArrayElement(env, names, (jsize)i, jn);
        (*env)->DeleteLocalRef(env, jn);
        int red = 0;
        if (fv_record_redacted(rec, name, &red) == FV_OK && red) {
            jboolean t = JNI_TRUE;
            (*env)->SetBooleanArrayRegion(env, redacted, (jsize)i, 1, &t);
            continue;
        }
        char num[40];
        const char *v = NULL;
        if (type == FV_TYPE_REAL) {
            double d;
            int set = 0;
            if (fv_record_get_real(rec, name, &d, &set) == FV_OK && set) {
                snprintf(num, sizeof num, "%.17g", d);
                v = num;
            }
        } else if (fv_record_get_text(rec, name, &v) != FV_OK) {
            v = NULL;
        }
        if (v != NULL) {
            jstring jv = new_jstring(env, v);
            if (jv == NULL) goto done;
            (*env)->SetObjectArrayElement(env, values, (jsize)i, jv);
            (*env)->DeleteLocalRef(env, jv);
        }
    }
    jstring table = new_jstring(env, fv_record_table(rec));
    jstring id = fv_record_id(rec) ? new_jstring(env, fv_record_id(rec)) : NULL;
    jstring due = fv_record_due(rec) ? new_jstring(env, fv_record_due(rec)) : NULL;
    if (!(*env)->ExceptionCheck(env))
        out = (*env)->NewObject(env, J.record, J.record_init, table, id, due, names, values,
                                redacted);
done:
    return out;
}

/* Set the fields of a String[] names / String[] values pair on rec (a null
 * value clears the field; a REAL field takes the number's text). */
static fv_status set_fields(JNIEnv *env, fv_db *db, fv_record *rec, jobjectArray jnames,
                            jobjectArray jvalues)
{
    jsize n = jnames ? (*env)->GetArrayLength(env, jnames) : 0;
    if (jvalues == NULL || (*env)->GetArrayLength(env, jvalues) != n) {
        throw_vault(env, FV_EINVAL, "names and values differ in length");
        return FV_EINVAL;
    }
    for (jsize i = 0; i < n; i++) {
        jstring jn = (jstring)(*env)->GetObjectArrayElement(env, jnames, i);
        jstring jv = (jstring)(*env)->GetObjectArrayElement(env, jvalues, i);
        jstr name, value;
        if (jn == NULL) {
            throw_vault(env, FV_EINVAL, "a field name is null");
            return FV_EINVAL;
        }
        if (jstr_get(env, jn, &name) != 0) return FV_ENOMEM;
        if (jstr_get(env, jv, &value) != 0) {
            jstr_release(&name);
            return FV_ENOMEM;
        }
        /* the field's type decides the setter */
        fv_field_type type = FV_TYPE_TEXT;
        const char *fname;
        fv_field_type t;
        for (size_t k = 0; fv_record_field(rec, k, &fname, &t) == FV_OK; k++)
            if (strcmp(fname, name.c) == 0) {
                type = t;
                break;
            }
        fv_status st;
        if (type == FV_TYPE_REAL && value.c != NULL) {
            char *end = NULL;
            double d = strtod(value.c, &end);
            if (end == value.c || *end != '\0') {
                char msg[160];
                snprintf(msg, sizeof msg, "%.64s is a number field: \"%.40s\" is not a number",
                         name.c, value.c);
                jstr_release(&name);
                jstr_release(&value);
                throw_vault(env, FV_EINVAL, msg);
                return FV_EINVAL;
            }
            st = fv_record_set_real(rec, name.c, d);
        } else {
            st = fv_record_set_text(rec, name.c, value.c);
        }
        jstr_release(&name);
        jstr_release(&value);
        (*env)->DeleteLocalRef(env, jn);
        if (jv != NULL) (*env)->DeleteLocalRef(env, jv);
        if (st != FV_OK) {
            throw_db(env, db, st);
            return st;
        }
    }
    return FV_OK;
}

static jstring JNICALL n_insert(JNIEnv *env, jclass cls, jlong h, jstring jtable,
                                jobjectArray names, jobjectArray values)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return NULL;
    jstr table;
    if (jstr_get(env, jtable, &table) != 0) return NULL;
    fv_record *rec = NULL;
    jstring id = NULL;
    fv_status st = table.c ? fv_record_new(db, table.c, &rec) : FV_EINVAL;
    if (st != FV_OK) throw_db(env, db, st);
    else if (set_fields(env, db, rec, names, values) == FV_OK) {
        st = fv_insert(db, rec);
        if (st != FV_OK) throw_db(env, db, st);
        else id = new_jstring(env, fv_record_id(rec));
    }
    fv_record_free(rec);
    jstr_release(&table);
    return id;
}

static void JNICALL n_update(JNIEnv *env, jclass cls, jlong h, jstring jtable, jstring jid,
                             jobjectArray names, jobjectArray values)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return;
    jstr table, id;
    if (jstr_get(env, jtable, &table) != 0) return;
    if (jstr_get(env, jid, &id) != 0) {
        jstr_release(&table);
        return;
    }
    fv_record *rec = NULL;
    fv_status st = table.c && id.c ? fv_get(db, table.c, id.c, &rec) : FV_EINVAL;
    if (st != FV_OK) throw_db(env, db, st);
    else if (set_fields(env, db, rec, names, values) == FV_OK) {
        st = fv_update(db, rec);
        if (st != FV_OK) throw_db(env, db, st);
    }
    fv_record_free(rec);
    jstr_release(&table);
    jstr_release(&id);
}

static jobject JNICALL n_get(JNIEnv *env, jclass cls, jlong h, jstring jtable, jstring jid)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return NULL;
    jstr table, id;
    if (jstr_get(env, jtable, &table) != 0) return NULL;
    if (jstr_get(env, jid, &id) != 0) {
        jstr_release(&table);
        return NULL;
    }
    fv_record *rec = NULL;
    jobject out = NULL;
    fv_status st = table.c && id.c ? fv_get(db, table.c, id.c, &rec) : FV_EINVAL;
    if (st == FV_ENOTFOUND) out = NULL; /* Java: null, not an exception */
    else if (st != FV_OK) throw_db(env, db, st);
    else out = record_to_java(env, db, rec);
    fv_record_free(rec);
    jstr_release(&table);
    jstr_release(&id);
    return out;
}

static void JNICALL n_delete(JNIEnv *env, jclass cls, jlong h, jstring jtable, jstring jid,
                             jboolean restore)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return;
    jstr table, id;
    if (jstr_get(env, jtable, &table) != 0) return;
    if (jstr_get(env, jid, &id) != 0) {
        jstr_release(&table);
        return;
    }
    fv_status st = !(table.c && id.c) ? FV_EINVAL
                   : restore          ? fv_restore(db, table.c, id.c)
                                      : fv_delete(db, table.c, id.c);
    if (st != FV_OK) throw_db(env, db, st);
    jstr_release(&table);
    jstr_release(&id);
}

/* ---- lists ------------------------------------------------------------------------ */

#define LIST_CUSTOMERS 0
#define LIST_VISITS 1
#define LIST_CONTACTS 2
#define LIST_DUE 3

/* kind: LIST_*; a, b, c: the filter strings (customers: stage, grade,
 * owner; visits/contacts: customer id; due: date). */
static jobjectArray JNICALL n_list(JNIEnv *env, jclass cls, jlong h, jint kind, jstring ja,
                                   jstring jb, jstring jc)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return NULL;
    jstr a, b, c;
    jobjectArray out = NULL;
    fv_list *l = NULL;
    if (jstr_get(env, ja, &a) != 0) return NULL;
    if (jstr_get(env, jb, &b) != 0) {
        jstr_release(&a);
        return NULL;
    }
    if (jstr_get(env, jc, &c) != 0) {
        jstr_release(&a);
        jstr_release(&b);
        return NULL;
    }
    fv_status st;
    switch (kind) {
    case LIST_CUSTOMERS: {
        fv_customer_filter f = {sizeof f, a.c, b.c, c.c};
        st = fv_list_customers(db, &f, &l);
        break;
    }
    case LIST_VISITS: st = fv_list_visits(db, a.c, &l); break;
    case LIST_CONTACTS: st = fv_list_contacts(db, a.c, &l); break;
    case LIST_DUE: st = fv_list_due(db, a.c, &l); break;
    default: st = FV_EINVAL; break;
    }
    if (st != FV_OK) {
        throw_db(env, db, st);
        goto done;
    }
    /* two passes would run the query twice: collect local refs in a
     * growing Java array instead (lists are what a screen shows) */
    size_t cap = 16, n = 0;
    jobject *items = malloc(cap * sizeof *items);
    if (items == NULL) {
        throw_vault(env, FV_ENOMEM, "out of memory");
        goto done;
    }
    const fv_record *rec;
    while ((st = fv_list_next(l, &rec)) == FV_OK && rec != NULL) {
        jobject r = record_to_java(env, db, rec);
        if (r == NULL) break;
        jobject g = (*env)->NewGlobalRef(env, r); /* local refs are few */
        (*env)->DeleteLocalRef(env, r);
        if (g == NULL) break;
        if (n == cap) {
            jobject *more = realloc(items, 2 * cap * sizeof *items);
            if (more == NULL) {
                (*env)->DeleteGlobalRef(env, g);
                throw_vault(env, FV_ENOMEM, "out of memory");
                break;
            }
            items = more;
            cap *= 2;
        }
        items[n++] = g;
    }
    if (st != FV_OK) throw_db(env, db, st);
    if (!(*env)->ExceptionCheck(env)) {
        out = (*env)->NewObjectArray(env, (jsize)n, J.record, NULL);
        for (size_t i = 0; out != NULL && i < n; i++)
            (*env)->SetObjectArrayElement(env, out, (jsize)i, items[i]);
    }
    for (size_t i = 0; i < n; i++) (*env)->DeleteGlobalRef(env, items[i]);
    free(items);
done:
    fv_list_free(l);
    jstr_release(&a);
    jstr_release(&b);
    jstr_release(&c);
    return out;
}

/* ---- the HTTP bridge ------------------------------------------------------------------ */

typedef struct http_bridge {
    JNIEnv *env;
    jobject transport; /* org.fieldvault.HttpTransport */
} http_bridge;

static int java_post(void *ctx, const fv_http_request *req, fv_http_response *resp, char *err,
                     size_t errcap)
{
    http_bridge *b = ctx;
    JNIEnv *env = b->env;
    memset(resp, 0, sizeof *resp);
    if ((*env)->PushLocalFrame(env, 16) != 0) {
        take_exception(env, err, errcap);
        return -1;
    }
    int rc = -1;
    jstring url = new_jstring(env, req->url);
    jobjectArray hdrs = url ? (*env)->NewObjectArray(env, (jsize)(2 * req->nheaders), J.string, NULL)
                            : NULL;
    for (size_t i = 0; hdrs != NULL && i < req->nheaders; i++) {
        jstring n = new_jstring(env, req->headers[i].name);
        jstring v = n ? new_jstring(env, req->headers[i].value) : NULL;
        if (v == NULL) {
            hdrs = NULL;
            break;
        }
        (*env)->SetObjectArrayElement(env, hdrs, (jsize)(2 * i), n);
        (*env)->SetObjectArrayElement(env, hdrs, (jsize)(2 * i + 1), v);
        (*env)->DeleteLocalRef(env, n);
        (*env)->DeleteLocalRef(env, v);
    }
    jbyteArray body = hdrs ? bytes_to_java(env, req->body, req->body_len) : NULL;
    if (body == NULL) {
        take_exception(env, err, errcap);
        goto done;
    }
    jobject r = (*env)->CallObjectMethod(env, b->transport, J.ht_post, url, hdrs, body,
                                         (jlong)req->timeout_ms, (jlong)req->max_response);
    if ((*env)->ExceptionCheck(env)) {
        take_exception(env, err, errcap);
        goto done;
    }
    if (r == NULL) {
        snprintf(err, errcap, "the HTTP transport returned null");
        goto done;
    }
    jbyteArray rb = (jbyteArray)(*env)->GetObjectField(env, r, J.hr_body);
    jsize n = rb ? (*env)->GetArrayLength(env, rb) : 0;
    if ((size_t)n > req->max_response) {
        snprintf(err, errcap, "the response is larger than %zu bytes", req->max_response);
        goto done;
    }
    resp->status = (long)(*env)->GetIntField(env, r, J.hr_status);
    resp->server_time_ms = (int64_t)(*env)->GetLongField(env, r, J.hr_server_time);
    resp->body = malloc(n > 0 ? (size_t)n : 1);
    if (resp->body == NULL) {
        snprintf(err, errcap, "out of memory");
        goto done;
    }
    if (n > 0) (*env)->GetByteArrayRegion(env, rb, 0, n, (jbyte *)resp->body);
    resp->body_len = (size_t)n;
    rc = 0;
done:
    (*env)->PopLocalFrame(env, NULL);
    return rc;
}

/* ---- sync ------------------------------------------------------------------------------ */

static void JNICALL n_enroll(JNIEnv *env, jclass cls, jlong h, jstring jserver, jstring jcode,
                             jobject transport)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return;
    jstr server, code;
    if (jstr_get(env, jserver, &server) != 0) return;
    if (jstr_get(env, jcode, &code) != 0) {
        jstr_release(&server);
        return;
    }
    http_bridge hb = {env, transport};
    fv_sync_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    if (transport != NULL) {
        cfg.http = java_post;
        cfg.http_ctx = &hb;
    }
    fv_status st = server.c && code.c ? fv_enroll(db, server.c, code.c, &cfg) : FV_EINVAL;
    if (st != FV_OK) throw_db(env, db, st);
    jstr_release(&server);
    jstr_release(&code);
}

static jobject JNICALL n_sync(JNIEnv *env, jclass cls, jlong h, jstring jserver, jlong max_ms,
                              jint batch, jlong timeout_ms, jint attempts, jobject transport)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return NULL;
    jstr server;
    if (jstr_get(env, jserver, &server) != 0) return NULL;
    http_bridge hb = {env, transport};
    fv_sync_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.server = server.c;
    cfg.max_ms = (int64_t)max_ms;
    cfg.batch_changes = batch > 0 ? (uint32_t)batch : 0;
    cfg.request_timeout_ms = (long)timeout_ms;
    cfg.max_attempts = attempts;
    if (transport != NULL) {
        cfg.http = java_post;
        cfg.http_ctx = &hb;
    }
    fv_sync_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    fv_status st = fv_sync(db, &cfg, &r);
    jstr_release(&server);
    if (st != FV_OK && !(st == FV_EACCES && r.wiped)) {
        throw_db(env, db, st);
        return NULL;
    }
    return (*env)->NewObject(env, J.sync_result, J.sync_result_init, (jlong)r.pushed,
                             (jlong)r.pulled, (jlong)r.conflicts, (jboolean)(r.drained != 0),
                             (jboolean)(r.stopped != 0), (jboolean)(r.wiped != 0));
}

static jobject JNICALL n_status(JNIEnv *env, jclass cls, jlong h)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return NULL;
    fv_sync_status s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    fv_status st = fv_sync_status_get(db, &s);
    if (st != FV_OK) {
        throw_db(env, db, st);
        return NULL;
    }
    jstring server = new_jstring(env, s.server);
    jstring user = server ? new_jstring(env, s.user) : NULL;
    jstring role = user ? new_jstring(env, s.role) : NULL;
    jstring team = role ? new_jstring(env, s.team) : NULL;
    jstring dev = team ? new_jstring(env, s.device_id) : NULL;
    jstring err = dev ? new_jstring(env, s.last_error) : NULL;
    if (err == NULL) return NULL;
    return (*env)->NewObject(env, J.sync_status, J.sync_status_init, (jboolean)(s.enrolled != 0),
                             server, user, role, team, dev, (jlong)s.pending_changes,
                             (jlong)s.pull_cursor, (jlong)s.last_sync_ms, err);
}

static jobjectArray JNICALL n_conflicts(JNIEnv *env, jclass cls, jlong h, jboolean all)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return NULL;
    /* twice through the list: count, then fill (conflicts are few) */
    jobjectArray out = NULL;
    for (int pass = 0; pass < 2; pass++) {
        fv_conflict_list *l = NULL;
        fv_status st = fv_conflicts_list(db, all ? 1 : 0, &l);
        if (st != FV_OK) {
            throw_db(env, db, st);
            return NULL;
        }
        const fv_conflict *c;
        jsize n = 0;
        jsize len = out ? (*env)->GetArrayLength(env, out) : 0;
        while ((st = fv_conflicts_next(l, &c)) == FV_OK && c != NULL) {
            if (pass == 1 && n < len) {
                if ((*env)->PushLocalFrame(env, 12) != 0) break;
                jobject o = (*env)->NewObject(
                    env, J.conflict, J.conflict_init, new_jstring(env, c->id),
                    new_jstring(env, c->table), new_jstring(env, c->row_id),
                    new_jstring(env, c->field),
                    c->mine ? new_jstring(env, c->mine) : NULL,
                    c->theirs ? new_jstring(env, c->theirs) : NULL,
                    (jboolean)(c->winner_is_mine != 0), (jboolean)(c->resolved != 0));
                o = (*env)->PopLocalFrame(env, o);
                if (o == NULL) break;
                (*env)->SetObjectArrayElement(env, out, n, o);
                (*env)->DeleteLocalRef(env, o);
            }
            n++;
        }
        fv_conflicts_free(l);
        if (st != FV_OK) {
            throw_db(env, db, st);
            return NULL;
        }
        if ((*env)->ExceptionCheck(env)) return NULL;
        if (pass == 0) {
            out = (*env)->NewObjectArray(env, n, J.conflict, NULL);
            if (out == NULL) return NULL;
        }
    }
    return out;
}

static void JNICALL n_resolve(JNIEnv *env, jclass cls, jlong h, jstring jid, jboolean keep_mine)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return;
    jstr id;
    if (jstr_get(env, jid, &id) != 0) return;
    fv_status st = id.c ? fv_conflict_resolve(db, id.c, keep_mine ? FV_KEEP_MINE : FV_KEEP_THEIRS)
                        : FV_EINVAL;
    if (st != FV_OK) throw_db(env, db, st);
    jstr_release(&id);
}

static jstring JNICALL n_state_hash(JNIEnv *env, jclass cls, jlong h)
{
    (void)cls;
    fv_db *db = handle(env, h);
    if (db == NULL) return NULL;
    char out[65];
    fv_status st = fv_state_hash(db, out);
    if (st != FV_OK) {
        throw_db(env, db, st);
        return NULL;
    }
    return new_jstring(env, out);
}

static jstring JNICALL n_version(JNIEnv *env, jclass cls)
{
    (void)cls;
    return new_jstring(env, fv_version());
}

/* ---- registration ---------------------------------------------------------------------- */

#define S "Ljava/lang/String;"
static const JNINativeMethod natives[] = {
    {"open", "(" S "[B" "L" PKG "KeyWrapper;" S "III)J", (void *)n_open},
    {"close", "(J)V", (void *)n_close},
    {"cancelSync", "(J)V", (void *)n_cancel},
    {"insert", "(J" S "[" S "[" S ")" S, (void *)n_insert},
    {"update", "(J" S S "[" S "[" S ")V", (void *)n_update},
    {"get", "(J" S S ")L" PKG "Record;", (void *)n_get},
    {"delete", "(J" S S "Z)V", (void *)n_delete},
    {"list", "(JI" S S S ")[L" PKG "Record;", (void *)n_list},
    {"enroll", "(J" S S "L" PKG "HttpTransport;)V", (void *)n_enroll},
    {"sync", "(J" S "JIJIL" PKG "HttpTransport;)L" PKG "SyncResult;", (void *)n_sync},
    {"status", "(J)L" PKG "SyncStatus;", (void *)n_status},
    {"conflicts", "(JZ)[L" PKG "Conflict;", (void *)n_conflicts},
    {"resolveConflict", "(J" S "Z)V", (void *)n_resolve},
    {"stateHash", "(J)" S, (void *)n_state_hash},
    {"version", "()" S, (void *)n_version},
};

static jclass global_class(JNIEnv *env, const char *name)
{
    jclass c = (*env)->FindClass(env, name);
    if (c == NULL) return NULL;
    jclass g = (jclass)(*env)->NewGlobalRef(env, c);
    (*env)->DeleteLocalRef(env, c);
    return g;
}

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved)
{
    (void)reserved;
    JNIEnv *env;
    if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_6) != JNI_OK) return JNI_ERR;
    if (sodium_init() < 0) return JNI_ERR;
    if (!(J.vault_exception = global_class(env, PKG "VaultException")) ||
        !(J.vault_exception_init = (*env)->GetMethodID(env, J.vault_exception, "<init>", "(I" S ")V")) ||
        !(J.record = global_class(env, PKG "Record")) ||
        !(J.record_init = (*env)->GetMethodID(env, J.record, "<init>",
                                              "(" S S S "[" S "[" S "[Z)V")) ||
        !(J.string = global_class(env, "java/lang/String")) ||
        !(J.sync_result = global_class(env, PKG "SyncResult")) ||
        !(J.sync_result_init = (*env)->GetMethodID(env, J.sync_result, "<init>", "(JJJZZZ)V")) ||
        !(J.sync_status = global_class(env, PKG "SyncStatus")) ||
        !(J.sync_status_init = (*env)->GetMethodID(env, J.sync_status, "<init>",
                                                   "(Z" S S S S S "JJJ" S ")V")) ||
        !(J.conflict = global_class(env, PKG "Conflict")) ||
        !(J.conflict_init = (*env)->GetMethodID(env, J.conflict, "<init>", "(" S S S S S S "ZZ)V")) ||
        !(J.key_wrapper = global_class(env, PKG "KeyWrapper")) ||
        !(J.kw_wrap = (*env)->GetMethodID(env, J.key_wrapper, "wrap", "([B)[B")) ||
        !(J.kw_unwrap = (*env)->GetMethodID(env, J.key_wrapper, "unwrap", "([B)[B")) ||
        !(J.http_transport = global_class(env, PKG "HttpTransport")) ||
        !(J.ht_post = (*env)->GetMethodID(env, J.http_transport, "post",
                                          "(" S "[" S "[BJJ)L" PKG "HttpResponse;")) ||
        !(J.http_response = global_class(env, PKG "HttpResponse")) ||
        !(J.hr_status = (*env)->GetFieldID(env, J.http_response, "status", "I")) ||
        !(J.hr_body = (*env)->GetFieldID(env, J.http_response, "body", "[B")) ||
        !(J.hr_server_time = (*env)->GetFieldID(env, J.http_response, "serverTimeMs", "J")))
        return JNI_ERR;
    jclass native = (*env)->FindClass(env, PKG "Native");
    if (native == NULL) return JNI_ERR;
    if ((*env)->RegisterNatives(env, native, natives,
                                (jint)(sizeof natives / sizeof natives[0])) != 0)
        return JNI_ERR;
    (*env)->DeleteLocalRef(env, native);
    return JNI_VERSION_1_6;
}
#undef S
