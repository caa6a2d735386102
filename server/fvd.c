/*
 * fvd.c - the fvd command: the sync endpoint and its admin commands.
 *
 *   fvd serve (--data DIR | --postgres URL) --listen HOST:PORT
 *             [--store-handles N] [--max-connections N] [--idle-timeout S]
 *   fvd admin (--data DIR | --postgres URL) add-user NAME --role ROLE [--team TEAM]
 *   fvd admin (--data DIR | --postgres URL) revoke-device DEVICE_ID
 *   fvd admin (--data DIR | --postgres URL) list-devices [--json]
 *   fvd admin (--data DIR | --postgres URL --admin-keys FILE) keys init TEAM
 *   fvd admin (--data DIR | --postgres URL --admin-keys FILE) keys grant TEAM
 *   fvd admin (--data DIR | --postgres URL --admin-keys FILE) keys rotate TEAM CLASS
 *   fvd admin (--data DIR | --postgres URL) keys list [--json]
 *   fvd admin (--data DIR | --postgres URL) policy set FILE
 *   fvd admin (--data DIR | --postgres URL) policy show [--json]
 *   fvd admin (--data DIR | --postgres URL) set-user NAME --role ROLE [--team TEAM]
 *
 * serve prints "fvd: listening on HOST:PORT (sqlite DIR)" (or "(postgres)")
 * on stdout once it accepts connections - with the real port when PORT is
 * 0 - and serves until SIGTERM or SIGINT, then stops cleanly: no new
 * connections, requests in progress finish, store handles closed.
 * add-user prints the user's one-time enrolment code, alone, on stdout.
 *
 * Field keys (server/keys.h, server/adminkeys.h): init, grant and rotate
 * open the admin key file - DIR/fvd-admin.keys, or the file --admin-keys
 * names (required with --postgres) - with the admin passphrase
 * (FV_ADMIN_PASSPHRASE, else asked on the terminal; twice when init
 * creates the file) and print one line for the team:
 * "team east: pii v1, confidential v1; 3 grants issued".  list reads only
 * the store.  serve never opens the key file.
 *
 * The access policy (core/policy.h): policy set parses FILE (the text form
 * of fv__policy_parse; an error names the line), refuses a version not
 * above the one in force (the built-in default is version 1 while none is
 * stored), stores it and prints "policy version N stored".  policy show
 * prints the policy in force in that text form (fv__policy_format), or as
 * JSON.  set-user changes a user's role (one of the policy in force) and,
 * with --team, team - without it the team stays - and prints "user NAME:
 * role ROLE, team TEAM" ("-" for no team).  A running fvd (any number of
 * processes on the store) applies both from its next request on: every
 * request reads the policy and the device's user from the store.
 *
 * Exit status: 0 done, 1 failed (message on stderr), 2 usage error.
 *
 * Options may come in any order after the command; "--opt=value" works
 * too.  The PostgreSQL URL is never printed (it may hold a password).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <pthread.h>
#include <sodium.h>

#include "acl.h"
#include "adminkeys.h"
#include "fvd.h"
#include "http.h"
#include "keys.h"

#define EXIT_USAGE 2

static const char USAGE[] =
    "usage:\n"
    "  fvd serve (--data DIR | --postgres URL) --listen HOST:PORT\n"
    "            [--store-handles N] [--max-connections N] [--idle-timeout SECONDS]\n"
    "  fvd admin (--data DIR | --postgres URL) add-user NAME --role ROLE [--team TEAM]\n"
    "  fvd admin (--data DIR | --postgres URL) revoke-device DEVICE_ID\n"
    "  fvd admin (--data DIR | --postgres URL) list-devices [--json]\n"
    "  fvd admin (--data DIR | --postgres URL --admin-keys FILE) keys init TEAM\n"
    "  fvd admin (--data DIR | --postgres URL --admin-keys FILE) keys grant TEAM\n"
    "  fvd admin (--data DIR | --postgres URL --admin-keys FILE) keys rotate TEAM CLASS\n"
    "  fvd admin (--data DIR | --postgres URL) keys list [--json]\n"
    "  fvd admin (--data DIR | --postgres URL) policy set FILE\n"
    "  fvd admin (--data DIR | --postgres URL) policy show [--json]\n"
    "  fvd admin (--data DIR | --postgres URL) set-user NAME --role ROLE [--team TEAM]\n"
    "ROLE is rep, lead, director, service or admin (set-user: a role of the policy\n"
    "in force; without --team the user's team stays); DEVICE_ID is 32 hex digits;\n"
    "CLASS is pii or confidential.  The admin key file is DIR/" FVD_ADMIN_KEYS_FILE
    ", or the FILE\n"
    "of --admin-keys; its passphrase comes from " FVD_ADMIN_PASS_ENV " or the terminal.\n"
    "A policy FILE has a line \"version N\" (N above the version in force) and per\n"
    "role \"ROLE SCOPE CUSTOMER CONTACT VISIT\", e.g. \"service all r-- r-- www\": SCOPE\n"
    "none, own, team or all; per table the public, pii and confidential fields'\n"
    "access, - none, r read, w write (policy show prints the one in force).\n";

FVD_PRINTF(1, 2)
static int usage(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fvd: %s\n%s", msg, USAGE);
    return EXIT_USAGE;
}

/* ---- Arguments ---- */

typedef struct args {
    const char *data, *postgres, *listen, *role, *team, *admin_keys;
    const char *store_handles, *max_connections, *idle_timeout;
    int json;
    const char *pos[8]; /* positional arguments after the command */
    int npos;
} args;

/* Parse argv[from..argc).  0, or an exit status for a usage error. */
static int parse_args(int argc, char **argv, int from, args *a)
{
    static const struct {
        const char *name;
        size_t off;
    } valued[] = {
        {"--data", offsetof(args, data)},
        {"--postgres", offsetof(args, postgres)},
        {"--listen", offsetof(args, listen)},
        {"--role", offsetof(args, role)},
        {"--team", offsetof(args, team)},
        {"--store-handles", offsetof(args, store_handles)},
        {"--max-connections", offsetof(args, max_connections)},
        {"--idle-timeout", offsetof(args, idle_timeout)},
        {"--admin-keys", offsetof(args, admin_keys)},
    };
    memset(a, 0, sizeof *a);
    for (int i = from; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--json") == 0) {
            a->json = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--") == 0) {
            if (strcmp(arg, "--") == 0) {
                if (++i >= argc) break;
                arg = argv[i];
            }
            if (a->npos == (int)(sizeof a->pos / sizeof *a->pos))
                return usage("too many arguments at '%s'", arg);
            a->pos[a->npos++] = arg;
            continue;
        }
        size_t k = 0, nv = sizeof valued / sizeof *valued;
        const char *value = NULL;
        for (; k < nv; k++) {
            size_t n = strlen(valued[k].name);
            if (strncmp(arg, valued[k].name, n) != 0) continue;
            if (arg[n] == '=') {
                value = arg + n + 1;
                break;
            }
            if (arg[n] == '\0') {
                if (i + 1 >= argc) return usage("%s needs a value", valued[k].name);
                value = argv[++i];
                break;
            }
        }
        if (k == nv) return usage("unknown option '%s'", arg);
        const char **slot = (const char **)((char *)a + valued[k].off);
        if (*slot != NULL) return usage("%s given twice", valued[k].name);
        *slot = value;
    }
    return 0;
}

/* A positive count option: 0 (default when NULL) or -1 if malformed. */
static int parse_count(const char *s, unsigned *out)
{
    *out = 0;
    if (s == NULL) return 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || v == 0 || v > 100000) return -1;
    *out = (unsigned)v;
    return 0;
}

/* ---- Stores ---- */

typedef struct store_spec {
    const char *data;
    const char *postgres;
} store_spec;

static fv_status open_store(void *ctx, fvd_store **out, char *err, size_t errcap)
{
    const store_spec *sp = ctx;
    if (sp->data != NULL) return fvd_store_open_sqlite(sp->data, out, err, errcap);
    return fvd_store_open_pg(sp->postgres, out, err, errcap);
}

static int check_store_args(const args *a, store_spec *sp)
{
    if (a->data != NULL && a->postgres != NULL)
        return usage("give --data or --postgres, not both");
    if (a->data == NULL && a->postgres == NULL)
        return usage("the store of record is missing: give --data DIR or --postgres URL");
    if (a->data != NULL && a->data[0] == '\0') return usage("--data is empty");
    if (a->postgres != NULL && a->postgres[0] == '\0') return usage("--postgres is empty");
    sp->data = a->data;
    sp->postgres = a->postgres;
    return 0;
}

/* ---- serve ---- */

static int cmd_serve(const args *a)
{
    store_spec sp;
    int rc = check_store_args(a, &sp);
    if (rc != 0) return rc;
    if (a->listen == NULL) return usage("serve needs --listen HOST:PORT");
    if (a->npos > 0) return usage("unexpected argument '%s'", a->pos[0]);
    if (a->role != NULL || a->team != NULL || a->json || a->admin_keys != NULL)
        return usage("--role, --team, --json and --admin-keys are admin options");
    fvd_http_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = a->listen;
    cfg.open_store = open_store;
    cfg.open_ctx = &sp;
    if (parse_count(a->store_handles, &cfg.store_handles) != 0)
        return usage("--store-handles takes a positive number, not '%s'", a->store_handles);
    if (parse_count(a->max_connections, &cfg.max_connections) != 0)
        return usage("--max-connections takes a positive number, not '%s'", a->max_connections);
    if (parse_count(a->idle_timeout, &cfg.idle_timeout_s) != 0)
        return usage("--idle-timeout takes a positive number of seconds, not '%s'",
                     a->idle_timeout);

    /* Signals: SIGINT and SIGTERM are taken with sigwait by this thread
     * only (blocked before any thread starts, so every thread inherits the
     * mask); a peer closing its socket must not kill the process. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512] = "";
    fvd_http *h = NULL;
    fv_status st = fvd_http_start(&cfg, &h, err, sizeof err);
    if (st == FV_EINVAL) return usage("%s", err);
    if (st != FV_OK) {
        fprintf(stderr, "fvd: cannot serve: %s\n", err);
        return 1;
    }
    const char *colon = strrchr(a->listen, ':');
    int hostlen = (int)(colon - a->listen);
    if (sp.data != NULL)
        printf("fvd: listening on %.*s:%u (sqlite %s)\n", hostlen, a->listen,
               (unsigned)fvd_http_port(h), sp.data);
    else
        printf("fvd: listening on %.*s:%u (postgres)\n", hostlen, a->listen,
               (unsigned)fvd_http_port(h));
    fflush(stdout);
    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {
    }
    fvd_log("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fvd_http_stop(h);
    fvd_log("stopped");
    return 0;
}

/* ---- admin ---- */

static int is_role(const char *r)
{
    static const char *const roles[] = {"rep", "lead", "director", "service", "admin"};
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
        if (strcmp(r, roles[i]) == 0) return 1;
    return 0;
}

static int admin_add_user(fvd_store *s, const args *a)
{
    if (a->npos != 2) return usage("add-user takes one NAME");
    const char *name = a->pos[1];
    if (!fvd_name_ok(name, FVD_NAME_MAX, 0))
        return usage("bad user name '%s': 1 to 64 bytes of UTF-8, no control characters",
                     name);
    if (a->role == NULL) return usage("add-user needs --role rep|lead|director|service|admin");
    if (!is_role(a->role))
        return usage("unknown role '%s': rep, lead, director, service or admin", a->role);
    const char *team = a->team != NULL ? a->team : "";
    if (!fvd_name_ok(team, FVD_NAME_MAX, 1))
        return usage("bad team '%s': at most 64 bytes of UTF-8, no control characters", team);
    fvd_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.role, sizeof u.role, "%s", a->role);
    snprintf(u.team, sizeof u.team, "%s", team);
    char code[FVD_CODE_TEXT];
    unsigned char hash[32];
    fvd_code_new(code, hash);
    char err[512] = "";
    fv_status st = s->ops->add_user(s, &u, hash, err, sizeof err);
    if (st != FV_OK) {
        sodium_memzero(code, sizeof code);
        fprintf(stderr, "fvd: cannot add user %s: %s\n", name, err);
        return 1;
    }
    printf("%s\n", code);
    fflush(stdout);
    sodium_memzero(code, sizeof code);
    fprintf(stderr, "fvd: user %s added (role %s%s%s); the code above enrols one device, "
            "once\n", name, u.role, team[0] != '\0' ? ", team " : "", team);
    return 0;
}

static int admin_revoke(fvd_store *s, const args *a)
{
    if (a->npos != 2) return usage("revoke-device takes one DEVICE_ID");
    unsigned char id[FV_DEVICE_LEN];
    if (fvd_unhex(a->pos[1], id, sizeof id) != 0)
        return usage("bad device id '%s': 32 hex digits", a->pos[1]);
    char err[512] = "";
    fv_status st = s->ops->revoke_device(s, id, err, sizeof err);
    if (st == FV_ENOTFOUND) {
        fprintf(stderr, "fvd: no device %s\n", a->pos[1]);
        return 1;
    }
    if (st != FV_OK) {
        fprintf(stderr, "fvd: cannot revoke %s: %s\n", a->pos[1], err);
        return 1;
    }
    char hex[2 * FV_DEVICE_LEN + 1];
    fvd_hex(id, sizeof id, hex);
    printf("revoked %s\n", hex);
    return 0;
}

static void iso_time(int64_t ms, char out[32])
{
    if (ms <= 0) {
        snprintf(out, 32, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "?");
}

/* s as a JSON string (quotes included). */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* s for a table cell: control characters as '?', "-" when empty. */
static void cell(FILE *f, const char *s, int width)
{
    int n = 0;
    if (*s == '\0') {
        fputc('-', f);
        n = 1;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
        if ((*p & 0xC0) != 0x80) n++; /* count characters, not bytes */
    }
    for (; n < width; n++) fputc(' ', f);
    fputc(' ', f);
}

typedef struct list_ctx {
    int json;
    size_t n;
} list_ctx;

static int list_one(void *ctx, const fvd_device *d)
{
    list_ctx *l = ctx;
    char hex[2 * FV_DEVICE_LEN + 1], enrolled[32], seen[32];
    fvd_hex(d->id, sizeof d->id, hex);
    iso_time(d->enrolled_ms, enrolled);
    iso_time(d->last_seen_ms, seen);
    if (l->json) {
        printf("%s\n  {\"device_id\": \"%s\", \"user\": ", l->n > 0 ? "," : "", hex);
        json_str(stdout, d->user);
        printf(", \"role\": ");
        json_str(stdout, d->role);
        printf(", \"team\": ");
        json_str(stdout, d->team);
        printf(", \"name\": ");
        json_str(stdout, d->name);
        printf(", \"revoked\": %s, \"enrolled_ms\": %lld, \"last_seen_ms\": %lld, "
               "\"last_batch_seq\": %llu}",
               d->revoked ? "true" : "false", (long long)d->enrolled_ms,
               (long long)d->last_seen_ms, (unsigned long long)d->last_batch_seq);
    } else {
        printf("%s ", hex);
        cell(stdout, d->user, 16);
        cell(stdout, d->role, 8);
        cell(stdout, d->team, 12);
        cell(stdout, d->revoked ? "revoked" : "active", 7);
        printf("%-20s %-20s %-10llu ", enrolled, seen, (unsigned long long)d->last_batch_seq);
        cell(stdout, d->name, 0);
        printf("\n");
    }
    l->n++;
    return 0;
}

static int admin_list(fvd_store *s, const args *a)
{
    if (a->npos != 1) return usage("list-devices takes no argument");
    list_ctx l = {a->json, 0};
    if (l.json) printf("[");
    else
        printf("%-32s %-16s %-8s %-12s %-7s %-20s %-20s %-10s %s\n", "DEVICE", "USER", "ROLE",
               "TEAM", "STATUS", "ENROLLED", "LAST_SEEN", "LAST_BATCH", "NAME");
    char err[512] = "";
    fv_status st = s->ops->list_devices(s, list_one, &l, err, sizeof err);
    if (l.json) printf("%s]\n", l.n > 0 ? "\n" : "");
    fflush(stdout);
    if (st != FV_OK) {
        fprintf(stderr, "fvd: cannot list devices: %s\n", err);
        return 1;
    }
    return 0;
}

/* ---- admin keys ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "team east: pii v1, confidential v1; 3 grants issued" */
static void print_result(const char *team, const fvd_keys_result *res)
{
    printf("team %s:", team);
    const char *sep = " ";
    for (int cls = FV_CLASS_PII; cls <= FV_CLASS_CONFIDENTIAL; cls++) {
        if (res->version[cls] == 0) continue;
        printf("%s%s v%u", sep, fvd_class_name(cls), (unsigned)res->version[cls]);
        sep = ", ";
    }
    printf("; %llu grants issued\n", (unsigned long long)res->issued);
    fflush(stdout);
    for (int cls = FV_CLASS_PII; cls <= FV_CLASS_CONFIDENTIAL; cls++)
        if (res->created[cls] > 0)
            fprintf(stderr, "fvd: made team %s's %s key v%u\n", team, fvd_class_name(cls),
                    (unsigned)res->created[cls]);
    if (res->skipped > 0)
        fprintf(stderr, "fvd: %llu device(s) skipped: their enrolled public key is not usable\n",
                (unsigned long long)res->skipped);
}

/* Open the admin key file at path (or, for init, create it if absent).
 * 0 with *out, or an exit status. */
static int open_keyfile(fvd_store *s, const char *path, int may_create, fvd_adminkeys **out)
{
    char err[512] = "";
    char *pass = NULL;
    struct stat sb;
    fv_status st;
    int absent = lstat(path, &sb) != 0 && errno == ENOENT;
    if (absent && !may_create) {
        fprintf(stderr, "fvd: no admin key file at %s: run fvd admin keys init TEAM first (or "
                "give --admin-keys)\n", path);
        return 1;
    }
    if (absent) {
        unsigned char pk[32];
        int found = 0;
        st = s->ops->get_admin_key(s, pk, &found, err, sizeof err);
        if (st != FV_OK) {
            fprintf(stderr, "fvd: cannot read the store's admin key: %s\n", err);
            return 1;
        }
        if (found) {
            fprintf(stderr, "fvd: there is no admin key file at %s, but the store of record has "
                    "an admin key: give --admin-keys with the file its field keys were made "
                    "with\n", path);
            return 1;
        }
        st = fvd_admin_passphrase("New admin passphrase (protects the admin key file): ", 1,
                                  &pass, err, sizeof err);
        if (st == FV_OK) st = fvd_adminkeys_create(path, pass, out, err, sizeof err);
        fvd_admin_passphrase_free(pass);
        if (st != FV_OK) {
            fprintf(stderr, "fvd: cannot create the admin key file: %s\n", err);
            return 1;
        }
        fprintf(stderr, "fvd: created the admin key file %s: keep it and its passphrase safe; "
                "without them no new device can read protected fields\n", path);
        return 0;
    }
    st = fvd_admin_passphrase("Admin passphrase: ", 0, &pass, err, sizeof err);
    if (st == FV_OK) st = fvd_adminkeys_open(path, pass, out, err, sizeof err);
    fvd_admin_passphrase_free(pass);
    if (st != FV_OK) {
        fprintf(stderr, "fvd: %s\n", err);
        return 1;
    }
    return 0;
}

typedef struct keys_list_ctx {
    int json;
    size_t n;
} keys_list_ctx;

static int list_key(void *ctx, const fvd_team_key *k)
{
    keys_list_ctx *l = ctx;
    char id[2 * 8 + 1], created[32];
    fvd_hex(k->key_id, sizeof k->key_id, id);
    if (l->json) {
        printf("%s\n    {\"team\": ", l->n > 0 ? "," : "");
        json_str(stdout, k->team);
        printf(", \"class\": \"%s\", \"version\": %u, \"key_id\": \"%s\", "
               "\"created_ms\": %lld, \"grants\": %llu}",
               fvd_class_name(k->cls), (unsigned)k->version, id, (long long)k->created_ms,
               (unsigned long long)k->grants);
    } else {
        iso_time(k->created_ms, created);
        cell(stdout, k->team, 16);
        printf("%-12s %-7u %-16s %-20s %llu\n", fvd_class_name(k->cls), (unsigned)k->version,
               id, created, (unsigned long long)k->grants);
    }
    l->n++;
    return 0;
}

static int keys_list(fvd_store *s, const args *a)
{
    char err[512] = "";
    unsigned char pk[32];
    int found = 0;
    fv_status st = s->ops->get_admin_key(s, pk, &found, err, sizeof err);
    if (st != FV_OK) {
        fprintf(stderr, "fvd: cannot read the admin key: %s\n", err);
        return 1;
    }
    char pkhex[65] = "";
    if (found) fvd_hex(pk, sizeof pk, pkhex);
    keys_list_ctx l = {a->json, 0};
    if (l.json) {
        printf("{\"admin_public_key\": ");
        if (found) printf("\"%s\"", pkhex);
        else printf("null");
        printf(", \"keys\": [");
    } else {
        printf("admin key: %s\n", found ? pkhex : "- (no field keys yet)");
        printf("%-16s %-12s %-7s %-16s %-20s %s\n", "TEAM", "CLASS", "VERSION", "KEY_ID",
               "CREATED", "GRANTS");
    }
    st = s->ops->list_team_keys(s, list_key, &l, err, sizeof err);
    if (l.json) printf("%s]}\n", l.n > 0 ? "\n  " : "");
    fflush(stdout);
    if (st != FV_OK) {
        fprintf(stderr, "fvd: cannot list the field keys: %s\n", err);
        return 1;
    }
    return 0;
}

/* keys init|grant|rotate: the command line is checked (cmd_admin). */
static int keys_change(fvd_store *s, const args *a, const char *keyfile)
{
    const char *sub = a->pos[1], *team = a->pos[2];
    int init = strcmp(sub, "init") == 0, rotate = strcmp(sub, "rotate") == 0;
    fvd_adminkeys *ak = NULL;
    int rc = open_keyfile(s, keyfile, init, &ak);
    if (rc != 0) return rc;
    fvd_keys_result res;
    memset(&res, 0, sizeof res);
    char err[512] = "";
    fv_status st;
    if (init) st = fvd_keys_init(s, ak, team, wall_ms(), &res, err, sizeof err);
    else if (rotate)
        st = fvd_keys_rotate(s, ak, team, fvd_class_parse(a->pos[3]), wall_ms(), &res, err,
                             sizeof err);
    else st = fvd_keys_grant(s, ak, team, &res, err, sizeof err);
    fvd_adminkeys_close(ak);
    if (st != FV_OK) {
        fprintf(stderr, "fvd: keys %s %s: %s\n", sub, team, err);
        if (res.issued > 0)
            fprintf(stderr, "fvd: (%llu grants were issued before that)\n",
                    (unsigned long long)res.issued);
        return 1;
    }
    print_result(team, &res);
    return 0;
}

/* Check `keys ...` (a->pos[0] is "keys"): 0, or a usage exit status;
 * *keyfile gets the admin key file's path (malloc'd) for init, grant and
 * rotate. */
static int check_keys_args(const args *a, char **keyfile)
{
    *keyfile = NULL;
    if (a->npos < 2) return usage("keys needs a command: init, grant, rotate or list");
    const char *sub = a->pos[1];
    int list = strcmp(sub, "list") == 0, rotate = strcmp(sub, "rotate") == 0;
    if (!list && !rotate && strcmp(sub, "init") != 0 && strcmp(sub, "grant") != 0)
        return usage("unknown keys command '%s': init, grant, rotate or list", sub);
    if (list) {
        if (a->npos != 2) return usage("keys list takes no argument");
        return 0;
    }
    if (a->json) return usage("--json belongs to keys list");
    if (a->npos != (rotate ? 4 : 3))
        return usage(rotate ? "keys rotate takes TEAM and CLASS" : "keys %s takes one TEAM",
                     sub);
    if (!fvd_name_ok(a->pos[2], FVD_NAME_MAX, 0))
        return usage("bad team '%s': 1 to 64 bytes of UTF-8, no control characters", a->pos[2]);
    if (rotate && fvd_class_parse(a->pos[3]) < 0)
        return usage("unknown class '%s': pii or confidential", a->pos[3]);
    if (a->admin_keys != NULL) {
        if (a->admin_keys[0] == '\0') return usage("--admin-keys is empty");
        *keyfile = strdup(a->admin_keys);
    } else if (a->data != NULL) {
        size_t n = strlen(a->data) + sizeof "/" FVD_ADMIN_KEYS_FILE;
        *keyfile = malloc(n);
        if (*keyfile != NULL) snprintf(*keyfile, n, "%s/%s", a->data, FVD_ADMIN_KEYS_FILE);
    } else {
        return usage("with --postgres, keys %s needs --admin-keys FILE (the admin key file)",
                     sub);
    }
    if (*keyfile == NULL) {
        fprintf(stderr, "fvd: out of memory\n");
        return 1;
    }
    return 0;
}

/* ---- admin policy and set-user ---- */

/* A policy file is a few lines; anything much larger is not one. */
#define POLICY_FILE_MAX ((size_t)64 << 10)

static const char *const SCOPE_NAMES[] = {"none", "own", "team", "all"};

static const char *scope_name(fv__scope sc)
{
    return (unsigned)sc <= FV__SCOPE_ALL ? SCOPE_NAMES[sc] : "?";
}

/* A role's access to one table as "rw-" (public, pii, confidential). */
static void access_text(const fv__policy_role *r, int table, char out[4])
{
    static const char chars[] = "-rw";
    for (int c = 0; c < 3; c++) {
        unsigned a = r->access[table][c];
        out[c] = a <= 2 ? chars[a] : '?';
    }
    out[3] = '\0';
}

static const fv__policy_role *policy_role(const fv__policy *p, const char *name)
{
    for (size_t i = 0; i < p->nroles && i < FV_POLICY_ROLES_MAX; i++)
        if (strcmp(p->roles[i].name, name) == 0) return &p->roles[i];
    return NULL;
}

/* "rep, lead, director" */
static void role_list(const fv__policy *p, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->nroles && i < FV_POLICY_ROLES_MAX && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i > 0 ? ", " : "", p->roles[i].name);
}

/* The policy in force: 0, or 1 with a message. */
static int current_policy(fvd_store *s, fv__policy *p, int *stored)
{
    char err[512] = "";
    fv_status st = fvd_policy_current(s, p, stored, err, sizeof err);
    if (st != FV_OK) {
        fprintf(stderr, "fvd: cannot read the access policy: %s\n", err);
        return 1;
    }
    return 0;
}

/* path's text (NUL-terminated, malloc'd), or NULL with a message. */
static char *read_policy_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fvd: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(POLICY_FILE_MAX + 1);
    size_t n = text != NULL ? fread(text, 1, POLICY_FILE_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (text == NULL) {
        fprintf(stderr, "fvd: out of memory\n");
        return NULL;
    }
    const char *why = bad ? "cannot read it" : n > POLICY_FILE_MAX ? "too large for a policy"
                      : memchr(text, '\0', n) != NULL ? "not a text file (a NUL byte)" : NULL;
    if (why != NULL) {
        fprintf(stderr, "fvd: %s: %s\n", path, why);
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

typedef struct role_check {
    const fv__policy *p;
    char warned[8][FVD_NAME_MAX + 1];
    size_t nwarned;
} role_check;

/* Say so once per user whose devices' role the new policy lacks. */
static int warn_role(void *ctx, const fvd_device *d)
{
    role_check *c = ctx;
    if (d->revoked || policy_role(c->p, d->role) != NULL) return 0;
    for (size_t i = 0; i < c->nwarned; i++)
        if (strcmp(c->warned[i], d->user) == 0) return 0;
    if (c->nwarned < sizeof c->warned / sizeof *c->warned)
        snprintf(c->warned[c->nwarned++], sizeof *c->warned, "%s", d->user);
    fprintf(stderr, "fvd: warning: user %s has role %s, which policy version %u does not "
            "have: their devices may do and see nothing (fvd admin set-user)\n", d->user,
            d->role, (unsigned)c->p->version);
    return 0;
}

static int policy_set(fvd_store *s, const char *path)
{
    char *text = read_policy_file(path);
    if (text == NULL) return 1;
    fv__policy p;
    char why[256] = "";
    int ok = fv__policy_parse(text, &p, why, sizeof why);
    free(text);
    if (!ok) {
        fprintf(stderr, "fvd: %s: %s\n", path, why);
        return 1;
    }
    fv__policy cur;
    int stored = 0;
    if (current_policy(s, &cur, &stored) != 0) return 1;
    if (p.version <= cur.version) {
        fprintf(stderr, "fvd: %s has version %u: the policy in force is version %u%s; a new "
                "policy needs a higher version\n", path, (unsigned)p.version,
                (unsigned)cur.version, stored ? "" : " (the built-in one)");
        return 1;
    }
    unsigned char b[FV_POLICY_BYTES_MAX];
    size_t n = fv__policy_encode(&p, b, sizeof b);
    char err[512] = "";
    fv_status st = n > 0 ? s->ops->set_policy(s, b, n, err, sizeof err) : FV_EINTERNAL;
    if (st == FV_EEXIST) {
        fprintf(stderr, "fvd: policy version %u was not stored: another one with that version "
                "or a higher one was stored meanwhile\n", (unsigned)p.version);
        return 1;
    }
    if (st != FV_OK) {
        fprintf(stderr, "fvd: cannot store the policy: %s\n", n > 0 ? err : "cannot encode it");
        return 1;
    }
    printf("policy version %u stored\n", (unsigned)p.version);
    fflush(stdout);
    role_check rc;
    memset(&rc, 0, sizeof rc);
    rc.p = &p;
    if (s->ops->list_devices(s, warn_role, &rc, err, sizeof err) != FV_OK)
        fprintf(stderr, "fvd: (cannot list the devices to check their roles: %s)\n", err);
    return 0;
}

static int policy_show(fvd_store *s, int json)
{
    fv__policy p;
    int stored = 0;
    if (current_policy(s, &p, &stored) != 0) return 1;
    if (!json) {
        char text[4096];
        size_t n = fv__policy_format(&p, text, sizeof text);
        if (n >= sizeof text) {
            fprintf(stderr, "fvd: the policy does not fit the output buffer\n");
            return 1;
        }
        fputs(text, stdout);
    } else {
        static const char *const tables[FV_POLICY_TABLES] = {"customer", "contact", "visit"};
        printf("{\"version\":%u,\"roles\":[", (unsigned)p.version);
        for (size_t i = 0; i < p.nroles && i < FV_POLICY_ROLES_MAX; i++) {
            const fv__policy_role *r = &p.roles[i];
            printf("%s{\"name\":", i > 0 ? "," : "");
            json_str(stdout, r->name);
            printf(",\"scope\":\"%s\"", scope_name(r->scope));
            for (int t = 0; t < FV_POLICY_TABLES; t++) {
                char a[4];
                access_text(r, t, a);
                printf(",\"%s\":\"%s\"", tables[t], a);
            }
            printf("}");
        }
        printf("]}\n");
    }
    fflush(stdout);
    if (!stored)
        fprintf(stderr, "fvd: no policy stored: this is the built-in version %u\n",
                (unsigned)p.version);
    return 0;
}

static int count_key(void *ctx, const fvd_team_key *k)
{
    (void)k;
    (*(size_t *)ctx)++;
    return 1; /* one is enough */
}

static int admin_set_user(fvd_store *s, const args *a)
{
    const char *name = a->pos[1];
    fv__policy p;
    if (current_policy(s, &p, NULL) != 0) return 1;
    if (policy_role(&p, a->role) == NULL) {
        char roles[256];
        role_list(&p, roles, sizeof roles);
        fprintf(stderr, "fvd: role '%s' is not in the access policy in force (version %u): %s\n",
                a->role, (unsigned)p.version, roles);
        return 1;
    }
    fvd_user u;
    char err[512] = "";
    fv_status st = s->ops->update_user(s, name, a->role, a->team, &u, err, sizeof err);
    if (st == FV_ENOTFOUND) {
        fprintf(stderr, "fvd: no user %s\n", name);
        return 1;
    }
    if (st != FV_OK) {
        fprintf(stderr, "fvd: cannot change user %s: %s\n", name, err);
        return 1;
    }
    printf("user %s: role %s, team %s\n", u.name, u.role, u.team[0] != '\0' ? u.team : "-");
    fflush(stdout);
    /* Field keys cannot follow by themselves: granting needs the admin key
     * file. */
    size_t nkeys = 0;
    if (s->ops->list_team_keys(s, count_key, &nkeys, err, sizeof err) == FV_OK && nkeys > 0)
        fprintf(stderr, "fvd: %s's devices get the field keys of the teams they now see at the "
                "next fvd admin keys grant TEAM\n", u.name);
    return 0;
}

static int cmd_admin(const args *a)
{
    store_spec sp;
    int rc = check_store_args(a, &sp);
    if (rc != 0) return rc;
    if (a->npos == 0) return usage("admin needs a command: add-user, revoke-device, "
                                   "list-devices, keys, policy, set-user");
    const char *cmd = a->pos[0];
    int add = strcmp(cmd, "add-user") == 0, revoke = strcmp(cmd, "revoke-device") == 0,
        list = strcmp(cmd, "list-devices") == 0, keys = strcmp(cmd, "keys") == 0,
        policy = strcmp(cmd, "policy") == 0, setu = strcmp(cmd, "set-user") == 0;
    if (!add && !revoke && !list && !keys && !policy && !setu)
        return usage("unknown admin command '%s'", cmd);
    if (!add && !setu && (a->role != NULL || a->team != NULL))
        return usage("--role and --team belong to add-user and set-user");
    if (!list && !keys && !policy && a->json)
        return usage("--json belongs to list-devices, keys list and policy show");
    if (!keys && a->admin_keys != NULL) return usage("--admin-keys belongs to keys");
    if (a->listen != NULL || a->store_handles != NULL || a->max_connections != NULL ||
        a->idle_timeout != NULL)
        return usage("--listen and the other serve options belong to serve");
    if (add && a->npos != 2) return usage("add-user takes one NAME");
    if (revoke && a->npos != 2) return usage("revoke-device takes one DEVICE_ID");
    if (list && a->npos != 1) return usage("list-devices takes no argument");
    int pset = 0;
    if (policy) {
        const char *sub = a->npos >= 2 ? a->pos[1] : "";
        pset = strcmp(sub, "set") == 0;
        if (!pset && strcmp(sub, "show") != 0)
            return usage(a->npos < 2 ? "policy needs a command: set or show"
                                     : "unknown policy command '%s': set or show", sub);
        if (pset && a->npos != 3) return usage("policy set takes one FILE");
        if (pset && a->json) return usage("--json belongs to policy show");
        if (!pset && a->npos != 2) return usage("policy show takes no argument");
    }
    if (setu) {
        if (a->npos != 2) return usage("set-user takes one NAME");
        if (!fvd_name_ok(a->pos[1], FVD_NAME_MAX, 0))
            return usage("bad user name '%s': 1 to 64 bytes of UTF-8, no control characters",
                         a->pos[1]);
        if (a->role == NULL) return usage("set-user needs --role ROLE");
        if (!fvd_name_ok(a->role, FVD_ROLE_MAX, 0))
            return usage("bad role '%s': a role name of the policy in force", a->role);
        if (a->team != NULL && !fvd_name_ok(a->team, FVD_NAME_MAX, 1))
            return usage("bad team '%s': at most 64 bytes of UTF-8, no control characters",
                         a->team);
    }
    char *keyfile = NULL;
    if (keys && (rc = check_keys_args(a, &keyfile)) != 0) return rc;

    fvd_store *s = NULL;
    char err[512] = "";
    fv_status st = open_store(&sp, &s, err, sizeof err);
    if (st != FV_OK) {
        free(keyfile);
        fprintf(stderr, "fvd: cannot open the store of record: %s\n", err);
        return 1;
    }
    if (keys) rc = keyfile != NULL ? keys_change(s, a, keyfile) : keys_list(s, a);
    else if (policy) rc = pset ? policy_set(s, a->pos[2]) : policy_show(s, a->json);
    else if (setu) rc = admin_set_user(s, a);
    else rc = add ? admin_add_user(s, a) : revoke ? admin_revoke(s, a) : admin_list(s, a);
    s->ops->close(s);
    free(keyfile);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage("no command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(USAGE, stdout);
        return 0;
    }
    int serve = strcmp(cmd, "serve") == 0, admin = strcmp(cmd, "admin") == 0;
    if (!serve && !admin) return usage("unknown command '%s'", cmd);
    args a;
    int rc = parse_args(argc, argv, 2, &a);
    if (rc != 0) return rc;
    if (sodium_init() < 0) {
        fprintf(stderr, "fvd: cannot initialise libsodium\n");
        return 1;
    }
    return serve ? cmd_serve(&a) : cmd_admin(&a);
}
