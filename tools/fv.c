/*
 * fv.c - the fieldvault command-line client (also the acceptance interface).
 *
 *   fv [--json] GROUP VERB DB [ID] [--option VALUE | --option=VALUE]...
 *
 * Layout: the file is driven by tables.  Each record type has an option
 * table mapping command-line options to catalogue fields (customer_opts,
 * contact_opts, visit_opts); commands that take other options (filters, KDF
 * cost) have their own small tables.  The command table (commands[]) lists
 * every command with its option tables, required options, positional
 * arguments and handler.  main() parses the whole command line against that
 * table before anything is opened, so a usage error (exit 2) never touches a
 * store; then it gets the passphrase (FV_PASSPHRASE, else a no-echo prompt on
 * the terminal), opens the store, runs the handler and closes.  `fv COMMAND
 * --help` is answered by the parser too (the pages, with their examples,
 * are in fv_help.c); fv report's figures are computed in fv_report.c.
 *
 * Output is built in memory (open_memstream) and written to stdout only
 * when the command succeeds: a failure half way through a list prints the
 * error and nothing else, and --json always prints exactly one document
 * (fv_json.c) or nothing.  The buffer may hold protected values, so the
 * final buffer is wiped before it is freed, like every passphrase buffer
 * (copies the stream left behind while growing are not: a limit of
 * open_memstream, accepted for a short-lived process).  Human output
 * neutralises control characters so that a stored value cannot drive the
 * terminal.
 *
 * Exit codes: 0 ok, 1 other failure, 2 usage, 3 wrong passphrase or key,
 * 4 corrupt or tampered store, 5 access denied.
 *
 * Relies on the public API only (include/fieldvault.h), libsodium for
 * guarded memory and wiping, and POSIX (termios, open_memstream).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "fieldvault.h"
#include "fv_csv.h"
#include "fv_dedup_audit.h"
#include "fv_help.h"
#include "fv_json.h"
#include "fv_report.h"
#include "fv_workflows.h"

enum {
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
    EXIT_KEY = 3,
    EXIT_CORRUPT = 4,
    EXIT_ACCESS = 5,
    EXIT_PARTIAL = 6 /* fv sync: the time box ended with work left */
};

/* ---- tables: options ---- */

typedef struct opt_def {
    const char *name;    /* long option, without the dashes */
    const char *field;   /* catalogue field it sets; NULL: read by the handler */
    const char *metavar; /* shown in messages */
} opt_def;

/* Option tables end with an entry whose name is NULL. */
static const opt_def customer_opts[] = {
    {"name", "name", "NAME"},
    {"grade", "grade", "S|A|B"},
    {"stage", "stage", "STAGE"},
    {"industry", "industry", "TEXT"},
    {"region", "region", "TEXT"},
    {"owner", "owner", "USER"},
    {"needs", "needs", "TEXT"},
    {"budget", "budget", "TEXT"},
    {"decision-chain", "decision_chain", "TEXT"},
    {"next-due", "next_due", "YYYY-MM-DD"},
    /* extensions: the rest of the shipped catalogue */
    {"size", "size", "TEXT"},
    {"source", "source", "TEXT"},
    {"intent", "intent", "high|mid|low"},
    {"status", "status", "TEXT"},
    {"team", "team", "TEXT"},
    {"urgency", "urgency", "TEXT"},
    {"since", "since", "YYYY-MM-DD"},
    {NULL, NULL, NULL},
};

static const opt_def contact_opts[] = {
    {"customer", "customer_id", "ID"},
    {"name", "name", "NAME"},
    {"title", "title", "TEXT"},
    {"phone", "phone", "PHONE"},
    {"email", "email", "EMAIL"},
    {"im-handle", "im_handle", "TEXT"},
    {"birthday", "birthday", "MM-DD"},
    {NULL, NULL, NULL},
};

static const opt_def visit_opts[] = {
    {"customer", "customer_id", "ID"},
    {"method", "method", "visit|phone|email|video|other"},
    {"summary", "summary", "TEXT"},
    {"at", "at", "ISO8601"},
    {"feedback", "feedback", "TEXT"},
    {"agreement", "agreement", "TEXT"},
    {"next-action", "next_action", "TEXT"},
    {"next-owner", "next_action_owner", "USER"},
    {"next-due", "next_action_due", "YYYY-MM-DD"},
    {"participants", "participants", "TEXT"},
    {"lat", "lat", "DEGREES"},
    {"lon", "lon", "DEGREES"},
    {NULL, NULL, NULL},
};

static const opt_def init_opts[] = {
    {"kdf-mem", NULL, "MIB"},
    {"kdf-passes", NULL, "N"},
    {NULL, NULL, NULL},
};

static const opt_def customer_filter_opts[] = {
    {"stage", NULL, "STAGE"},
    {"grade", NULL, "GRADE"},
    {"owner", NULL, "USER"},
    {"ids", NULL, NULL},
    {NULL, NULL, NULL},
};

static const opt_def customer_id_opts[] = {
    {"customer", NULL, "ID"},
    {"ids", NULL, NULL},
    {NULL, NULL, NULL},
};

static const opt_def due_opts[] = {
    {"on", NULL, "YYYY-MM-DD"},
    {"days", NULL, "N"},
    {"ids", NULL, NULL},
    {NULL, NULL, NULL},
};

/* A NULL metavar makes a flag: it takes no value. */
static const opt_def export_opts[] = {
    {"all", NULL, NULL},
    {NULL, NULL, NULL},
};

static const opt_def resolve_opts[] = {
    {"keep", NULL, "mine|theirs"},
    {NULL, NULL, NULL},
};

static const opt_def enroll_opts[] = {
    {"server", NULL, "URL"},
    {"code", NULL, "CODE"},
    {NULL, NULL, NULL},
};

static const opt_def sync_opts[] = {
    {"server", NULL, "URL"},
    {"max-seconds", NULL, "N"},
    {NULL, NULL, NULL},
};

static const opt_def conflicts_opts[] = {
    {"all", NULL, NULL},
    {"ids", NULL, NULL},
    {NULL, NULL, NULL},
};

static const opt_def report_opts[] = {
    {"month", NULL, "YYYY-MM"},
    {NULL, NULL, NULL},
};

/* A metavar ending in "..." makes an option repeatable: every value is kept. */
static const opt_def csv_import_opts[] = {
    {"map", NULL, "COL=FIELD..."},
    {"dry-run", NULL, NULL},
    {NULL, NULL, NULL},
};

static const opt_def csv_export_opts[] = {
    {"csv", NULL, NULL},
    {NULL, NULL, NULL},
};

/* ---- workflows (issue 9; output in fv_workflows.c) ---- */

static const opt_def complaint_opts[] = {
    {"customer", "customer_id", "ID"},
    {"summary", "summary", "TEXT"},
    {"urgency", "urgency", "normal|urgent|critical"},
    {"channel", "channel", "TEXT"},
    {"received", "received_at", "ISO8601"},
    {NULL, NULL, NULL},
};

static const opt_def grade_opts[] = {
    {"propose", NULL, "S|A|B"},
    {"approve", NULL, NULL},
    {"reject", NULL, NULL},
    {NULL, NULL, NULL},
};

static const opt_def proposals_opts[] = {
    {"all", NULL, NULL},
    {"ids", NULL, NULL},
    {NULL, NULL, NULL},
};

static const opt_def note_opts[] = {
    {"note", NULL, "TEXT"},
    {NULL, NULL, NULL},
};

static const opt_def complaints_opts[] = {
    {"overdue", NULL, NULL},
    {"all", NULL, NULL},
    {"ids", NULL, NULL},
    {NULL, NULL, NULL},
};

static const opt_def deadlines_opts[] = {
    {"urgency", NULL, "normal|urgent|critical"},
    {"ack", NULL, "DURATION"},
    {"respond", NULL, "DURATION"},
    {"resolve", NULL, "DURATION"},
    {"drop", NULL, NULL},
    {NULL, NULL, NULL},
};

/* ---- tables: list columns (human output) ---- */

/* A column shows a catalogue field, or a computed value named with '@':
 * @id, @due (fv_record_due), @reason (why it is due), @customer (the
 * customer's name). */
typedef struct column {
    const char *title;
    const char *what;
    size_t max_width; /* display cells; 0 = no limit (last column only) */
} column;

static const column customer_cols[] = {
    {"ID", "@id", 0},        {"NAME", "name", 40},   {"GRADE", "grade", 0},
    {"STAGE", "stage", 0},   {"OWNER", "owner", 24}, {"NEXT DUE", "next_due", 0},
    {NULL, NULL, 0},
};

static const column contact_cols[] = {
    {"ID", "@id", 0},        {"NAME", "name", 40},  {"TITLE", "title", 30},
    {"PHONE", "phone", 24},  {"EMAIL", "email", 0}, {NULL, NULL, 0},
};

static const column visit_cols[] = {
    {"ID", "@id", 0},
    {"AT", "at", 0},
    {"METHOD", "method", 0},
    {"CUSTOMER", "@customer", 30},
    {"NEXT DUE", "next_action_due", 0},
    {"SUMMARY", "summary", 60},
    {NULL, NULL, 0},
};

static const column due_cols[] = {
    {"DUE", "@due", 0},      {"ID", "@id", 0},       {"NAME", "name", 40},
    {"GRADE", "grade", 0},   {"STAGE", "stage", 0},  {"OWNER", "owner", 24},
    {"REASON", "@reason", 0}, {NULL, NULL, 0},
};

typedef struct list_kind {
    const char *none;     /* printed when the list is empty */
    const column *cols;
    int with_due;         /* JSON objects carry "due" and "reason" */
} list_kind;

static const list_kind customer_list_kind = {"no customers", customer_cols, 0};
static const list_kind contact_list_kind = {"no contacts", contact_cols, 0};
static const list_kind visit_list_kind = {"no visits", visit_cols, 0};
static const list_kind due_list_kind = {"nothing due", due_cols, 1};

/* ---- tables: commands ---- */

#define GIVEN_MAX 64 /* fv import: a --map per column of a wide sheet */

typedef struct command command;

typedef struct given {
    const opt_def *def;
    const char *value;
} given;

typedef struct args {
    const command *cmd;
    const char *db;
    const char *id;
    const char *id2; /* a second positional (fv customer merge's OTHER_ID) */
    int json;
    size_t ngiven;
    given opts[GIVEN_MAX];
} args;

typedef struct output {
    FILE *f; /* memory stream; copied to stdout on success */
    int json;
    int ids; /* --ids: lists print only their ids, one a line */
    int keep; /* the output stands although the exit is nonzero (fv import: rows rejected) */
    fvj_writer j;
} output;

typedef int (*command_fn)(fv_db *db, const args *a, output *o);

#define CMD_CREATE 0x1u   /* creates the store (fv init) */
#define CMD_NEW_PASS 0x2u /* needs a new passphrase too (fv passwd) */
#define CMD_FIELDS 0x4u   /* at least one field option is needed (update) */
#define CMD_ID_OPTIONAL 0x8u /* the positional after DB may be left out (export's FILE) */

struct command {
    const char *group;       /* "customer", or NULL for a one-word command */
    const char *verb;
    const char *table;       /* record table the handler works on */
    int takes_id;            /* an ID follows DB */
    const opt_def *opts[2];  /* accepted options (besides --json, --help) */
    const char *required[3]; /* options that must be given */
    unsigned flags;
    command_fn run;
    const char *synopsis;    /* after "fv " */
    const char *summary;
};

static int run_init(fv_db *db, const args *a, output *o);
static int run_add(fv_db *db, const args *a, output *o);
static int run_update(fv_db *db, const args *a, output *o);
static int run_show(fv_db *db, const args *a, output *o);
static int run_delete(fv_db *db, const args *a, output *o);
static int run_customer_list(fv_db *db, const args *a, output *o);
static int run_contact_list(fv_db *db, const args *a, output *o);
static int run_visit_list(fv_db *db, const args *a, output *o);
static int run_due(fv_db *db, const args *a, output *o);
static int run_passwd(fv_db *db, const args *a, output *o);
static int run_rekey(fv_db *db, const args *a, output *o);
static int run_check(fv_db *db, const args *a, output *o);
static int run_restore(fv_db *db, const args *a, output *o);
static int run_changes_export(fv_db *db, const args *a, output *o);
static int run_changes_import(fv_db *db, const args *a, output *o);
static int run_conflicts(fv_db *db, const args *a, output *o);
static int run_conflicts_resolve(fv_db *db, const args *a, output *o);
static int run_state_hash(fv_db *db, const args *a, output *o);
static int run_enroll(fv_db *db, const args *a, output *o);
static int run_sync(fv_db *db, const args *a, output *o);
static int run_status(fv_db *db, const args *a, output *o);
static int run_whoami(fv_db *db, const args *a, output *o);
static int run_report(fv_db *db, const args *a, output *o);
static int run_import(fv_db *db, const args *a, output *o);
static int run_export(fv_db *db, const args *a, output *o);
static int run_grade(fv_db *db, const args *a, output *o);
static int run_proposals(fv_db *db, const args *a, output *o);
static int run_complaint_step(fv_db *db, const args *a, output *o);
static int run_complaint_show(fv_db *db, const args *a, output *o);
static int run_complaints(fv_db *db, const args *a, output *o);
static int run_deadlines(fv_db *db, const args *a, output *o);
static int run_merge(fv_db *db, const args *a, output *o);
static int run_audit_list(fv_db *db, const args *a, output *o);
static int run_audit_verify(fv_db *db, const args *a, output *o);

static const command commands[] = {
    {NULL, "init", NULL, 0, {init_opts, NULL}, {NULL}, CMD_CREATE, run_init,
     "init DB [--kdf-mem MIB] [--kdf-passes N]", "create a new encrypted store"},
    {"customer", "add", "customer", 0, {customer_opts, NULL}, {"name", NULL}, 0, run_add,
     "customer add DB --name NAME [--grade S|A|B] [--stage STAGE] [--industry T] [--region T]\n"
     "        [--owner USER] [--needs T] [--budget T] [--decision-chain T] [--next-due YYYY-MM-DD]",
     "record a customer; prints its id"},
    {"customer", "update", "customer", 1, {customer_opts, NULL}, {NULL}, CMD_FIELDS, run_update,
     "customer update DB ID [customer add's options; an empty value clears a field]",
     "change a customer's fields"},
    {"customer", "show", "customer", 1, {NULL, NULL}, {NULL}, 0, run_show,
     "customer show DB ID [--json]", "one customer, field by field"},
    {"customer", "list", "customer", 0, {customer_filter_opts, NULL}, {NULL}, 0,
     run_customer_list, "customer list DB [--stage S] [--grade G] [--owner USER] [--ids] [--json]",
     "customers by name"},
    {"customer", "delete", "customer", 1, {NULL, NULL}, {NULL}, 0, run_delete,
     "customer delete DB ID", "delete a customer"},
    {"contact", "add", "contact", 0, {contact_opts, NULL}, {"customer", "name", NULL}, 0, run_add,
     "contact add DB --customer ID --name NAME [--title T] [--phone P] [--email E]",
     "record a contact person; prints its id"},
    {"contact", "list", "contact", 0, {customer_id_opts, NULL}, {"customer", NULL}, 0,
     run_contact_list, "contact list DB --customer ID [--ids] [--json]", "a customer's contacts"},
    {"visit", "add", "visit", 0, {visit_opts, NULL}, {"customer", "method", "summary"}, 0, run_add,
     "visit add DB --customer ID --method visit|phone|email|video|other --summary TEXT\n"
     "        [--at ISO8601] [--feedback T] [--agreement T] [--next-action T]\n"
     "        [--next-owner USER] [--next-due YYYY-MM-DD]",
     "record a visit or call; prints its id"},
    {"visit", "list", "visit", 0, {customer_id_opts, NULL}, {NULL}, 0, run_visit_list,
     "visit list DB [--customer ID] [--ids] [--json]", "visits, newest first"},
    {NULL, "due", "customer", 0, {due_opts, NULL}, {NULL}, 0, run_due,
     "due DB [--on YYYY-MM-DD] [--ids] [--json]", "customers due for a follow-up (default: today)"},
    {NULL, "passwd", NULL, 0, {NULL, NULL}, {NULL}, CMD_NEW_PASS, run_passwd, "passwd DB",
     "change the passphrase (new one from FV_NEW_PASSPHRASE or a prompt)"},
    {NULL, "rekey", NULL, 0, {NULL, NULL}, {NULL}, 0, run_rekey, "rekey DB",
     "new database key; every page rewritten under it"},
    {NULL, "check", NULL, 0, {NULL, NULL}, {NULL}, 0, run_check, "check DB",
     "authenticate every page and frame, then SQLite's integrity check"},
    {"customer", "restore", "customer", 1, {NULL, NULL}, {NULL}, 0, run_restore,
     "customer restore DB ID", "undo the deletion of a customer"},
    {"contact", "delete", "contact", 1, {NULL, NULL}, {NULL}, 0, run_delete,
     "contact delete DB ID", "delete a contact"},
    {"visit", "delete", "visit", 1, {NULL, NULL}, {NULL}, 0, run_delete,
     "visit delete DB ID", "delete a visit"},
    {"changes", "export", NULL, 1, {export_opts, NULL}, {NULL}, 0, run_changes_export,
     "changes export DB FILE [--all]",
     "write the pending changes (or with --all the full state) as one change set; prints the count"},
    {"changes", "import", NULL, 1, {NULL, NULL}, {NULL}, 0, run_changes_import,
     "changes import DB FILE", "apply a change set; prints applied / already-known / conflicts"},
    {"conflicts", "resolve", NULL, 1, {resolve_opts, NULL}, {"keep", NULL}, 0,
     run_conflicts_resolve, "conflicts resolve DB CONFLICT_ID --keep mine|theirs",
     "settle a conflict: the kept value becomes a new change everywhere"},
    {NULL, "conflicts", NULL, 0, {conflicts_opts, NULL}, {NULL}, 0, run_conflicts,
     "conflicts DB [--all] [--ids] [--json]",
     "concurrent edits that were overwritten (--all: resolved too)"},
    {NULL, "state-hash", NULL, 0, {NULL, NULL}, {NULL}, 0, run_state_hash, "state-hash DB",
     "a hash of every visible record and field: equal on replicas holding the same data"},
    {NULL, "enroll", NULL, 0, {enroll_opts, NULL}, {"server", "code", NULL}, 0, run_enroll,
     "enroll DB --server URL --code CODE", "enrol this store with fvd using a one-time code"},
    {NULL, "sync", NULL, 0, {sync_opts, NULL}, {NULL}, 0, run_sync,
     "sync DB [--server URL] [--max-seconds N] [--json]",
     "push the outbox and pull others' changes; exit 6 if the time box left work"},
    {NULL, "status", NULL, 0, {NULL, NULL}, {NULL}, 0, run_status, "status DB [--json]",
     "enrolment, pending changes, last sync, last error"},
    {NULL, "whoami", NULL, 0, {NULL, NULL}, {NULL}, 0, run_whoami, "whoami DB [--json]",
     "user, role, team, access policy version and field keys held"},
    {NULL, "report", NULL, 0, {report_opts, NULL}, {NULL}, 0, run_report,
     "report DB [--month YYYY-MM] [--json]",
     "a month's pipeline, conversion, churn, visits per week and overdue follow-ups"},
#define IMPORT_ROW(verb, table)                                                                  \
    {"import", verb, table, 1, {csv_import_opts, NULL}, {NULL}, 0, run_import,                   \
     "import " verb " DB FILE.csv [--map COL=field]... [--dry-run] [--json]",                    \
     "add " verb " from a UTF-8 CSV file (header row: field names) in one transaction; "         \
     "reports rejected and duplicate rows"}
#define EXPORT_ROW(verb, table)                                                                  \
    {"export", verb, table, 1, {csv_export_opts, NULL}, {"csv", NULL}, CMD_ID_OPTIONAL,          \
     run_export, "export " verb " DB --csv [FILE]",                                              \
     "write the " verb " you may read as CSV (to stdout without FILE)"}
    IMPORT_ROW("customers", "customer"),
    IMPORT_ROW("contacts", "contact"),
    IMPORT_ROW("visits", "visit"),
    EXPORT_ROW("customers", "customer"),
    EXPORT_ROW("contacts", "contact"),
    EXPORT_ROW("visits", "visit"),
#undef IMPORT_ROW
#undef EXPORT_ROW
    /* workflows (issue 9) */
    {"contact", "update", "contact", 1, {contact_opts, NULL}, {NULL}, CMD_FIELDS, run_update,
     "contact update DB ID [contact add's options, --birthday MM-DD; an empty value clears one]",
     "change a contact's fields"},
    {"contact", "show", "contact", 1, {NULL, NULL}, {NULL}, 0, run_show,
     "contact show DB ID [--json]", "one contact, field by field"},
    {"customer", "grade", "customer", 1, {grade_opts, NULL}, {NULL}, 0, run_grade,
     "customer grade DB ID [--propose S|A|B | --approve | --reject] [--json]",
     "propose a grade, or approve or reject the proposal (lead, director); alone: the review"},
    {"customer", "proposals", "customer", 0, {proposals_opts, NULL}, {NULL}, 0, run_proposals,
     "customer proposals DB [--all] [--ids] [--json]",
     "grade proposals waiting for a decision (--all: decided ones too)"},
    {"complaint", "add", "complaint", 0, {complaint_opts, NULL}, {"customer", "summary", NULL}, 0,
     run_add,
     "complaint add DB --customer ID --summary T [--urgency normal|urgent|critical] [--channel T]\n"
     "        [--received ISO8601] [--json]",
     "register a customer's complaint, with its deadlines; prints its id"},
    {"complaint", "ack", "complaint", 1, {note_opts, NULL}, {NULL}, 0, run_complaint_step,
     "complaint ack DB ID [--note T] [--json]", "acknowledge a complaint"},
    {"complaint", "respond", "complaint", 1, {note_opts, NULL}, {NULL}, 0, run_complaint_step,
     "complaint respond DB ID [--note T] [--json]", "record the response to a complaint"},
    {"complaint", "resolve", "complaint", 1, {note_opts, NULL}, {NULL}, 0, run_complaint_step,
     "complaint resolve DB ID [--note T] [--json]", "close a complaint as resolved"},
    {"complaint", "show", "complaint", 1, {NULL, NULL}, {NULL}, 0, run_complaint_show,
     "complaint show DB ID [--json]", "one complaint: its fields, status and deadlines"},
    {"complaint", "deadlines", NULL, 0, {deadlines_opts, NULL}, {NULL}, 0, run_deadlines,
     "complaint deadlines DB [--urgency U] [--ack D] [--respond D] [--resolve D] [--drop] [--json]",
     "show or set this store's complaint deadlines (D: 30m, 1h, 24h, 2d)"},
    {NULL, "complaints", "complaint", 0, {complaints_opts, NULL}, {NULL}, 0, run_complaints,
     "complaints DB [--overdue] [--all] [--ids] [--json]",
     "complaints not resolved, next deadline first, with the time left or overdue"},
    /* duplicates, merge, the read audit (issue 9; output in fv_dedup_audit.c) */
    {"customer", "merge", "customer", 2, {NULL, NULL}, {NULL}, 0, run_merge,
     "customer merge DB KEEP_ID OTHER_ID [--json]",
     "fold a duplicate customer into another: fields, contacts, visits, complaints; syncs"},
    {"audit", "list", NULL, 0, {NULL, NULL}, {NULL}, 0, run_audit_list, "audit list DB [--json]",
     "the read audit: who read which confidential field of which record, when"},
    {"audit", "verify", NULL, 0, {NULL, NULL}, {NULL}, 0, run_audit_verify,
     "audit verify DB [--json]",
     "recompute every device's audit hash chain; exit 1 naming an edited or removed entry"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* ---- messages and exit codes ---- */

static int exit_for(fv_status st)
{
    switch (st) {
    case FV_OK:
        return 0;
    case FV_EKEY:
        return EXIT_KEY;
    case FV_ECORRUPT:
        return EXIT_CORRUPT;
    case FV_EACCES:
        return EXIT_ACCESS;
    default:
        return EXIT_FAIL;
    }
}

/* Report a failed library call: the handle's message when it belongs to
 * this failure (getters return a status without setting one). */
static int lib_fail(const fv_db *db, fv_status st)
{
    const char *msg = (db != NULL && fv_errcode(db) == st) ? fv_errmsg(db) : fv_status_str(st);
    fprintf(stderr, "fv: %s\n", msg);
    return exit_for(st);
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fv: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_FAIL;
}

static void print_synopsis(FILE *f, const command *c)
{
    fprintf(f, "usage: fv %s\n", c->synopsis);
}

/* A usage error: message, the command's synopsis (or a pointer to --help),
 * exit 2. */
__attribute__((format(printf, 2, 3))) static int usage_error(const command *c, const char *fmt,
                                                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fv: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (c != NULL) print_synopsis(stderr, c);
    else fputs("usage: fv COMMAND DB [OPTIONS]   (fv --help lists the commands)\n", stderr);
    return EXIT_USAGE;
}

/* "customer add" or "init": the words that name c. */
static void command_words(const command *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s", c->group ? c->group : "", c->group ? " " : "", c->verb);
}

/* fv COMMAND --help: the command's page (fv_help.c). */
static void print_command_help(FILE *f, const command *c)
{
    char words[2 * FV_NAME_MAX + 2];
    command_words(c, words, sizeof words);
    (void)fvh_print(f, words, c->synopsis, c->summary);
}

/* fv GROUP --help: the group's commands. */
static void print_group_help(FILE *f, const char *group)
{
    fprintf(f, "fv %s commands (fv %s VERB --help shows one with examples):\n", group, group);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].group != NULL && strcmp(commands[i].group, group) == 0)
            fprintf(f, "  fv %s\n        %s\n", commands[i].synopsis, commands[i].summary);
}

static void print_help(FILE *f)
{
    fputs("fv - the fieldvault command-line client: an encrypted offline store of\n"
          "customers, contacts and visits.\n\nCommands:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  fv %s\n        %s\n", commands[i].synopsis, commands[i].summary);
    fputs("  fv --help | fv help\n  fv COMMAND --help | fv help COMMAND\n"
          "        a command's options and examples\n  fv --version\n\n"
          "Options may come before or after DB and ID, as --opt VALUE or --opt=VALUE;\n"
          "\"--\" ends the options.  --json prints one JSON document on stdout.\n\n"
          "Environment:\n"
          "  FV_PASSPHRASE      the store's passphrase (else a no-echo prompt when stdin\n"
          "                     is a terminal)\n"
          "  FV_NEW_PASSPHRASE  the new passphrase for fv passwd (else prompted twice)\n"
          "  FV_USER            the acting user (default \"local\"); owner of new customers\n\n"
          "Exit status: 0 ok, 1 failure, 2 usage error, 3 wrong passphrase or key,\n"
          "4 corrupt or tampered store, 5 access denied.\n", f);
}

/* ---- command-line parsing ---- */

static const opt_def *find_opt(const command *c, const char *name, size_t len)
{
    for (size_t t = 0; t < 2; t++)
        for (const opt_def *o = c->opts[t]; o != NULL && o->name != NULL; o++)
            if (strlen(o->name) == len && memcmp(o->name, name, len) == 0) return o;
    return NULL;
}

/* The value given for option name, or NULL. */
static const char *arg_get(const args *a, const char *name)
{
    for (size_t i = 0; i < a->ngiven; i++)
        if (strcmp(a->opts[i].def->name, name) == 0) return a->opts[i].value;
    return NULL;
}

static int arg_set(args *a, const opt_def *def, const char *value)
{
    size_t mlen = def->metavar != NULL ? strlen(def->metavar) : 0;
    int repeats = mlen > 3 && strcmp(def->metavar + mlen - 3, "...") == 0;
    for (size_t i = 0; i < a->ngiven && !repeats; i++)
        if (a->opts[i].def == def) { /* repeated: the last one wins */
            a->opts[i].value = value;
            return 0;
        }
    if (a->ngiven == GIVEN_MAX) return -1;
    a->opts[a->ngiven].def = def;
    a->opts[a->ngiven].value = value;
    a->ngiven++;
    return 0;
}

/* Find the command named by argv[*i] (and argv[*i + 1] for two words). */
static int find_command(int argc, char **argv, int *i, const command **out)
{
    const char *w1 = argv[*i];
    int group_known = 0;
    /* two words first: "conflicts resolve" before the one-word "conflicts" */
    for (size_t k = 0; k < NCOMMANDS; k++) {
        const command *c = &commands[k];
        if (c->group != NULL && strcmp(c->group, w1) == 0) {
            group_known = 1;
            if (*i + 1 < argc && strcmp(c->verb, argv[*i + 1]) == 0) {
                *out = c;
                *i += 2;
                return -1;
            }
        }
    }
    for (size_t k = 0; k < NCOMMANDS; k++) {
        const command *c = &commands[k];
        if (c->group == NULL && strcmp(c->verb, w1) == 0) {
            *out = c;
            (*i)++;
            return -1;
        }
    }
    if (!group_known) return usage_error(NULL, "unknown command '%s'", w1);
    if (*i + 1 < argc && (strcmp(argv[*i + 1], "--help") == 0 || strcmp(argv[*i + 1], "-h") == 0)) {
        print_group_help(stdout, w1);
        return 0;
    }
    if (*i + 1 < argc) fprintf(stderr, "fv: unknown command '%s %s'\n", w1, argv[*i + 1]);
    else fprintf(stderr, "fv: '%s' needs a command\n", w1);
    for (size_t k = 0; k < NCOMMANDS; k++)
        if (commands[k].group != NULL && strcmp(commands[k].group, w1) == 0)
            print_synopsis(stderr, &commands[k]);
    return EXIT_USAGE;
}

/* fv help WORDS...: the help of the command (or group) they name. */
static int help_command(int argc, char **argv, int i)
{
    for (size_t k = 0; i + 1 == argc && k < NCOMMANDS; k++)
        if (commands[k].group != NULL && strcmp(commands[k].group, argv[i]) == 0) {
            int one_word = 0; /* "conflicts" is a command and a group */
            for (size_t m = 0; m < NCOMMANDS; m++)
                if (commands[m].group == NULL && strcmp(commands[m].verb, argv[i]) == 0)
                    one_word = 1;
            if (one_word) break;
            print_group_help(stdout, argv[i]);
            return 0;
        }
    const command *c = NULL;
    int rc = find_command(argc, argv, &i, &c);
    if (rc >= 0) return rc;
    if (i < argc) return usage_error(c, "fv help takes a command's words only (got '%s')", argv[i]);
    print_command_help(stdout, c);
    return 0;
}

/* One "--name[=value]" argument at argv[*i]. -1 to go on, else an exit code. */
static int parse_option(int argc, char **argv, int *i, args *a)
{
    const command *c = a->cmd;
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (len == 4 && memcmp(arg, "json", 4) == 0 && eq == NULL) {
        a->json = 1;
        return -1;
    }
    if (len == 4 && memcmp(arg, "help", 4) == 0 && eq == NULL) {
        print_command_help(stdout, c);
        return 0;
    }
    const opt_def *o = find_opt(c, arg, len);
    if (o == NULL)
        return usage_error(c, "unknown option '--%.*s' for fv %s%s%s", (int)len, arg,
                           c->group ? c->group : "", c->group ? " " : "", c->verb);
    const char *value;
    if (o->metavar == NULL) { /* a flag */
        if (eq != NULL) return usage_error(c, "option --%s takes no value", o->name);
        value = "1";
    } else if (eq != NULL) {
        value = eq + 1;
    } else {
        /* A following "--word" is an option, not this one's value: say so
         * rather than swallow it ("--opt=--text" passes such a value). */
        if (*i + 1 >= argc || (strncmp(argv[*i + 1], "--", 2) == 0 && argv[*i + 1][2] != '\0'))
            return usage_error(c, "option --%s needs a value (%s)", o->name, o->metavar);
        value = argv[++*i];
    }
    if (arg_set(a, o, value) != 0) return usage_error(c, "too many options");
    return -1;
}

static int parse_command_args(int argc, char **argv, int i, args *a)
{
    const command *c = a->cmd;
    int npos = 0, only_pos = 0;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (!only_pos && strcmp(s, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && strncmp(s, "--", 2) == 0) {
            int rc = parse_option(argc, argv, &i, a);
            if (rc >= 0) return rc;
            continue;
        }
        if (!only_pos && s[0] == '-' && s[1] != '\0')
            return usage_error(c, "unknown option '%s' (options are --long)", s);
        if (npos == 0) a->db = s;
        else if (npos == 1 && c->takes_id) a->id = s;
        else if (npos == 2 && c->takes_id == 2) a->id2 = s;
        else return usage_error(c, "unexpected argument '%s'", s);
        npos++;
    }
    if (a->db == NULL) return usage_error(c, "missing DB (the store file)");
    if (a->db[0] == '\0') return usage_error(c, "DB is an empty path");
    if (c->takes_id == 2 && a->id2 == NULL) /* takes_id 2: two ids follow DB */
        return usage_error(c, "missing %s", a->id == NULL ? "KEEP_ID and OTHER_ID" : "OTHER_ID");
    if (c->takes_id && a->id == NULL && !(c->flags & CMD_ID_OPTIONAL)) {
        /* the second positional: FILE for change sets, CONFLICT_ID, else ID */
        const char *what = c->group && (strcmp(c->group, "changes") == 0 ||
                                        strcmp(c->group, "import") == 0) ? "FILE"
                           : c->group && strcmp(c->group, "conflicts") == 0 ? "CONFLICT_ID"
                                                                            : "ID";
        return usage_error(c, "missing %s", what);
    }
    for (size_t k = 0; k < 3 && c->required[k] != NULL; k++)
        if (arg_get(a, c->required[k]) == NULL)
            return usage_error(c, "--%s is required", c->required[k]);
    if ((c->flags & CMD_FIELDS) && a->ngiven == 0)
        return usage_error(c, "nothing to change: give at least one field option");
    if (a->json && arg_get(a, "ids") != NULL)
        return usage_error(c, "--ids and --json do not go together");
    return -1;
}

/* Parse argv into a.  -1 to go on and run a->cmd; else the exit code. */
static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    int i = 1;
    for (; i < argc && strncmp(argv[i], "-", 1) == 0; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            print_help(stdout);
            return 0;
        }
        if (strcmp(s, "--version") == 0 || strcmp(s, "-V") == 0) {
            printf("fv %s (fieldvault library %s, schema version %d)\n", fv_version(),
                   fv_version(), fv_schema_version());
            return 0;
        }
        if (strcmp(s, "--json") == 0) {
            a->json = 1;
            continue;
        }
        return usage_error(NULL, "unknown option '%s'", s);
    }
    if (i >= argc) return usage_error(NULL, "no command given");
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 >= argc) {
            print_help(stdout);
            return 0;
        }
        return help_command(argc, argv, i + 1);
    }
    int rc = find_command(argc, argv, &i, &a->cmd);
    if (rc >= 0) return rc;
    return parse_command_args(argc, argv, i, a);
}

/* ---- passphrases ---- */

/* A passphrase in guarded memory (sodium_malloc: locked, wiped on free). */
typedef struct secret {
    char *buf; /* FV_PASSPHRASE_MAX + 1 bytes */
    size_t len;
} secret;

static int secret_alloc(secret *s)
{
    s->len = 0;
    s->buf = sodium_malloc(FV_PASSPHRASE_MAX + 1);
    if (s->buf == NULL) return fail("out of memory for the passphrase");
    return 0;
}

static void secret_free(secret *s)
{
    if (s->buf != NULL) sodium_free(s->buf); /* wipes */
    s->buf = NULL;
    s->len = 0;
}

/* 1 if env var holds a passphrase (copied to s), 0 if unset or empty, or an
 * exit code (> 1) via *rc. */
static int secret_from_env(const char *var, secret *s, int *rc)
{
    const char *v = getenv(var);
    *rc = 0;
    if (v == NULL || v[0] == '\0') return 0;
    size_t n = strlen(v);
    if (n > FV_PASSPHRASE_MAX) {
        *rc = fail("%s is longer than %d bytes", var, FV_PASSPHRASE_MAX);
        return 0;
    }
    memcpy(s->buf, v, n);
    s->len = n;
    return 1;
}

/* The terminal state to restore if a signal arrives during a prompt. */
static int prompt_fd = -1;
static struct termios prompt_saved;

static void prompt_signal(int sig)
{
    if (prompt_fd >= 0) (void)tcsetattr(prompt_fd, TCSAFLUSH, &prompt_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int env_set(const char *var)
{
    const char *v = getenv(var);
    return v != NULL && v[0] != '\0';
}

static int have_tty(void)
{
    return isatty(STDIN_FILENO);
}

/* Read one line with echo off from the controlling terminal. */
static int prompt_secret(const char *prompt, secret *s)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction sa, old[4];
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return fail("cannot open the terminal for a passphrase prompt: %s", strerror(errno));
    struct termios t;
    if (tcgetattr(fd, &prompt_saved) != 0) {
        close(fd);
        return fail("cannot read the terminal settings: %s", strerror(errno));
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prompt_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < 4; i++) sigaction(sigs[i], &sa, &old[i]);
    prompt_fd = fd;
    t = prompt_saved;
    t.c_lflag &= ~(tcflag_t)ECHO;
    t.c_lflag |= (tcflag_t)ICANON;
    int rc = 0;
    if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &t) != 0)
        rc = fail("cannot prompt on the terminal: %s", strerror(errno));
    size_t n = 0;
    int too_long = 0, got_eol = 0;
    while (rc == 0) {
        char ch;
        ssize_t k = read(fd, &ch, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) rc = fail("cannot read the passphrase: %s", strerror(errno));
        if (k <= 0 || ch == '\n') {
            got_eol = k > 0;
            break;
        }
        if (n < FV_PASSPHRASE_MAX) s->buf[n++] = ch;
        else too_long = 1;
    }
    sodium_memzero(&t, sizeof t);
    (void)tcsetattr(fd, TCSAFLUSH, &prompt_saved);
    prompt_fd = -1;
    for (size_t i = 0; i < 4; i++) sigaction(sigs[i], &old[i], NULL);
    if (write(fd, "\n", 1) < 0) { /* cosmetic only */ }
    close(fd);
    if (n > 0 && s->buf[n - 1] == '\r') n--;
    s->len = n;
    if (rc != 0) return rc;
    if (!got_eol && n == 0) return fail("no passphrase entered");
    if (too_long) return fail("the passphrase is longer than %d bytes", FV_PASSPHRASE_MAX);
    if (n == 0) return fail("the passphrase is empty");
    return 0;
}

/* Prompt, and with confirm, prompt again and compare. */
static int prompt_checked(const char *prompt, int confirm, secret *s)
{
    int rc = prompt_secret(prompt, s);
    if (rc != 0 || !confirm) return rc;
    secret again;
    rc = secret_alloc(&again);
    if (rc == 0) rc = prompt_secret("Repeat the passphrase: ", &again);
    if (rc == 0 && (again.len != s->len || sodium_memcmp(again.buf, s->buf, s->len) != 0))
        rc = fail("the passphrases do not match");
    secret_free(&again);
    return rc;
}

/* The passphrase from env var, else a prompt when stdin is a terminal, else
 * a usage error (exit 2): fv never blocks on a terminal a script did not
 * give it. */
static int get_secret(const command *c, const char *var, const char *prompt, int confirm,
                      secret *s)
{
    int rc = secret_alloc(s);
    if (rc != 0) return rc;
    if (secret_from_env(var, s, &rc) || rc != 0) return rc;
    if (!have_tty())
        return usage_error(c, "no passphrase: set %s or run fv on a terminal", var);
    return prompt_checked(prompt, confirm, s);
}

/* ---- opening ---- */

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    unsigned long long v = 0;
    if (s[0] == '\0') return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (unsigned)(*p - '0');
        if (v > hi) return -1;
    }
    if (v < lo) return -1;
    *out = (uint32_t)v;
    return 0;
}

static int open_store(const args *a, fv_db **db)
{
    const command *c = a->cmd;
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = a->db;
    const char *user = getenv("FV_USER");
    cfg.user = (user != NULL && user[0] != '\0') ? user : NULL;
    if (c->flags & CMD_CREATE) {
        const char *mem = arg_get(a, "kdf-mem"), *passes = arg_get(a, "kdf-passes");
        uint32_t mib = 0;
        if (mem != NULL && parse_u32(mem, 8, 1024, &mib) != 0)
            return usage_error(c, "--kdf-mem is a number of MiB from 8 to 1024");
        if (passes != NULL && parse_u32(passes, 1, 16, &cfg.kdf_passes) != 0)
            return usage_error(c, "--kdf-passes is a number from 1 to 16");
        cfg.kdf_mem_kib = mib * 1024u;
        cfg.flags = FV_OPEN_CREATE | FV_OPEN_EXCL;
    }
    /* Cheap checks first: no prompt for a store that cannot be opened. */
    struct stat sb;
    int exists = stat(a->db, &sb) == 0;
    if ((c->flags & CMD_CREATE) && exists) return fail("%s already exists", a->db);
    if (!(c->flags & CMD_CREATE) && !exists && errno == ENOENT)
        return fail("no store at %s", a->db);
    if ((c->flags & CMD_NEW_PASS) && !env_set("FV_NEW_PASSPHRASE") && !have_tty())
        return usage_error(c, "no new passphrase: set FV_NEW_PASSPHRASE or run fv on a terminal");

    char prompt[128];
    snprintf(prompt, sizeof prompt, "%s for %.80s: ",
             (c->flags & CMD_CREATE) ? "New passphrase" : "Passphrase", a->db);
    secret pass;
    int rc = get_secret(c, "FV_PASSPHRASE", prompt, (c->flags & CMD_CREATE) != 0, &pass);
    if (rc == 0) {
        cfg.passphrase = pass.buf;
        cfg.passphrase_len = pass.len;
        fv_status st = fv_open(db, &cfg);
        if (st != FV_OK) {
            rc = lib_fail(*db, st);
            fv_close(*db);
            *db = NULL;
        }
    }
    secret_free(&pass);
    return rc;
}

/* ---- display helpers ---- */

/* Decode one UTF-8 sequence; invalid bytes decode as U+FFFD, length 1. */
static uint32_t utf8_next(const unsigned char *s, size_t *len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    *len = 1;
    if (c < 0x80) return c;
    if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1fu; }
    else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0fu; }
    else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07u; }
    else return 0xfffd;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0xfffd;
        cp = cp << 6 | (s[k] & 0x3fu);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0xfffd;
    *len = n;
    return cp;
}

/* Terminal cells taken by a code point: 0 for combining marks, 2 for East
 * Asian wide characters (customer names are often CJK), else 1. */
static size_t cp_width(uint32_t cp)
{
    if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || cp == 0xfeff)
        return 0;
    if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf && cp != 0x303f) ||
        (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
        (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
        (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
        (cp >= 0x20000 && cp <= 0x3fffd))
        return 2;
    return 1;
}

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Cells taken by s on a terminal, controls counted as one (a space). */
static size_t text_width(const char *s)
{
    size_t w = 0, len;
    for (size_t i = 0; s[i] != '\0'; i += len) {
        uint32_t cp = utf8_next((const unsigned char *)s + i, &len);
        w += is_control(cp) ? 1 : cp_width(cp);
    }
    return w;
}

/* A copy of s fit for one table cell: controls become spaces, invalid bytes
 * U+FFFD, and when wider than max cells (0 = no limit) it is cut to fit
 * with an ellipsis.  Malloc'd; NULL when out of memory.  *width gets the
 * cells used. */
static char *cell_text(const char *s, size_t max, size_t *width)
{
    size_t n = strlen(s);
    size_t limit = (max > 0 && text_width(s) > max) ? max - 1 : SIZE_MAX;
    char *out = malloc(n * 3 + 4); /* U+FFFD for every byte at worst */
    if (out == NULL) return NULL;
    size_t o = 0, w = 0, len;
    for (size_t i = 0; i < n; i += len) {
        uint32_t cp = utf8_next((const unsigned char *)s + i, &len);
        size_t cw = is_control(cp) ? 1 : cp_width(cp);
        if (w + cw > limit) {
            memcpy(out + o, "\xe2\x80\xa6", 3); /* U+2026 */
            o += 3;
            w += 1;
            break;
        }
        if (is_control(cp)) {
            out[o++] = ' ';
        } else if (cp == 0xfffd && len == 1) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
        } else {
            memcpy(out + o, s + i, len);
            o += len;
        }
        w += cw;
    }
    out[o] = '\0';
    *width = w;
    return out;
}

/* A value on "field: value" lines: a newline continues on the next line,
 * indented; other control characters become spaces. */
static void put_value(FILE *f, const char *s, size_t indent)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t cp = utf8_next((const unsigned char *)s + i, &len);
        if (cp == '\n') fprintf(f, "\n%*s", (int)indent, "");
        else if (cp == '\r' && s[i + 1] == '\n') { /* CRLF: one line break */ }
        else if (is_control(cp)) fputc(' ', f);
        else if (cp == 0xfffd && len == 1) fputs("\xef\xbf\xbd", f);
        else fwrite(s + i, 1, len, f);
        i += len;
    }
}

/* ---- records ---- */

static fv_status field_type_of(const fv_record *r, const char *field, fv_field_type *type)
{
    const char *name;
    fv_status st;
    for (size_t i = 0; (st = fv_record_field(r, i, &name, type)) == FV_OK; i++)
        if (strcmp(name, field) == 0) return FV_OK;
    return st;
}

/* Set every field option given on the command line.  An empty value clears
 * the field.  Returns an exit code. */
static int apply_fields(fv_db *db, fv_record *r, const args *a)
{
    for (size_t i = 0; i < a->ngiven; i++) {
        const opt_def *o = a->opts[i].def;
        const char *v = a->opts[i].value;
        if (o->field == NULL) continue;
        fv_field_type type = FV_TYPE_TEXT;
        fv_status st = field_type_of(r, o->field, &type);
        if (st != FV_OK) return fail("%s has no field %s", fv_record_table(r), o->field);
        if (type == FV_TYPE_REAL && v[0] != '\0') {
            char *end;
            errno = 0;
            double d = strtod(v, &end);
            if (*end != '\0' || errno != 0)
                return fail("%s.%s must be a number (got '%.40s')", fv_record_table(r), o->field, v);
            st = fv_record_set_real(r, o->field, d);
        } else {
            st = fv_record_set_text(r, o->field, v[0] != '\0' ? v : NULL);
        }
        if (st != FV_OK) return lib_fail(db, st);
    }
    return 0;
}

static fv_status get_text(const fv_record *r, const char *field, const char **v)
{
    fv_status st = fv_record_get_text(r, field, v);
    if (st == FV_ENOTFOUND) { /* a field this catalogue lacks: show it as empty */
        *v = NULL;
        return FV_OK;
    }
    if (st == FV_EACCES) { /* redacted for this user's role */
        *v = "[redacted]";
        return FV_OK;
    }
    return st;
}

static void json_record(fvj_writer *j, const fv_record *r)
{
    const char *name;
    fv_field_type type;
    fvj_member_string(j, "id", fv_record_id(r));
    size_t nred = 0;
    for (size_t i = 0; fv_record_field(r, i, &name, &type) == FV_OK; i++) {
        int red = 0;
        if (fv_record_redacted(r, name, &red) == FV_OK && red) { /* listed below, not shown */
            nred++;
            continue;
        }
        fvj_key(j, name);
        if (type == FV_TYPE_REAL) {
            double d;
            int set;
            if (fv_record_get_real(r, name, &d, &set) == FV_OK && set) fvj_number(j, d);
            else fvj_null(j);
        } else {
            const char *v = NULL;
            if (fv_record_get_text(r, name, &v) != FV_OK) v = NULL;
            fvj_string(j, v);
        }
    }
    if (nred > 0) { /* fields the user may not read: named, never as empty values */
        fvj_key(j, "redacted");
        fvj_begin_array(j);
        for (size_t i = 0; fv_record_field(r, i, &name, &type) == FV_OK; i++) {
            int red = 0;
            if (fv_record_redacted(r, name, &red) == FV_OK && red) fvj_string(j, name);
        }
        fvj_end_array(j);
    }
}

static void text_record(FILE *f, const fv_record *r)
{
    const char *name;
    fv_field_type type;
    fprintf(f, "id: %s\n", fv_record_id(r));
    for (size_t i = 0; fv_record_field(r, i, &name, &type) == FV_OK; i++) {
        int red = 0;
        if (fv_record_redacted(r, name, &red) == FV_OK && red) {
            fprintf(f, "%s: [redacted]\n", name);
            continue;
        }
        if (type == FV_TYPE_REAL) {
            double d;
            int set;
            if (fv_record_get_real(r, name, &d, &set) == FV_OK && set)
                fprintf(f, "%s: %.15g\n", name, d);
            continue;
        }
        const char *v = NULL;
        if (fv_record_get_text(r, name, &v) != FV_OK || v == NULL) continue;
        fprintf(f, "%s: ", name);
        put_value(f, v, strlen(name) + 2);
        fputc('\n', f);
    }
}

/* Why a customer from fv_list_due is due: its set follow-up date, or the
 * grade cadence counted from the last visit (or from creation). */
static fv_status due_reason(fv_db *db, const fv_record *r, char *buf, size_t cap)
{
    const char *next_due = NULL, *grade = NULL;
    fv_status st = get_text(r, "next_due", &next_due);
    if (st == FV_OK) st = get_text(r, "grade", &grade);
    if (st != FV_OK) return st;
    if (next_due != NULL) {
        snprintf(buf, cap, "follow-up date set");
        return FV_OK;
    }
    int days = 30;
    if (grade != NULL && strcmp(grade, "S") == 0) days = 7;
    else if (grade != NULL && strcmp(grade, "A") == 0) days = 14;
    fv_list *visits = NULL;
    const fv_record *last = NULL;
    const char *at = NULL;
    st = fv_list_visits(db, fv_record_id(r), &visits);
    if (st == FV_OK) st = fv_list_next(visits, &last); /* newest first */
    if (st == FV_OK && last != NULL) st = get_text(last, "at", &at);
    if (st == FV_OK) {
        char gtext[16];
        snprintf(gtext, sizeof gtext, "%s%s", grade ? "grade " : "no grade", grade ? grade : "");
        if (at != NULL)
            snprintf(buf, cap, "%s: %d days after the last visit (%.10s)", gtext, days, at);
        else
            snprintf(buf, cap, "%s: %d days after it was recorded", gtext, days);
    }
    fv_list_free(visits);
    return st;
}

/* The value of a list column (or a JSON extra) for r: malloc'd in *out. */
static fv_status column_value(fv_db *db, const fv_record *r, const char *what, char **out)
{
    char buf[160];
    const char *v = NULL;
    fv_record *cust = NULL;
    fv_status st = FV_OK;
    *out = NULL;
    if (strcmp(what, "@id") == 0) {
        v = fv_record_id(r);
    } else if (strcmp(what, "@due") == 0) {
        v = fv_record_due(r);
    } else if (strcmp(what, "@reason") == 0) {
        st = due_reason(db, r, buf, sizeof buf);
        v = buf;
    } else if (strcmp(what, "@customer") == 0) {
        st = get_text(r, "customer_id", &v);
        if (st == FV_OK && v != NULL) {
            st = fv_get(db, "customer", v, &cust);
            if (st == FV_OK) st = get_text(cust, "name", &v);
            else if (st == FV_ENOTFOUND) st = FV_OK; /* deleted: show the id */
        }
    } else {
        st = get_text(r, what, &v);
    }
    if (st == FV_OK) {
        size_t n = strlen(v ? v : "-") + 1;
        *out = malloc(n);
        if (*out != NULL) memcpy(*out, v ? v : "-", n);
        else st = FV_ENOMEM;
    }
    fv_record_free(cust);
    return st;
}

/* ---- tables ---- */

typedef struct table {
    const column *cols;
    size_t ncols, nrows, cap;
    char **cells;       /* nrows x ncols, display-safe */
    size_t *cell_width; /* nrows x ncols, terminal cells */
    size_t widths[16];  /* per column */
} table;

static void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    free(t->cell_width);
    t->cells = NULL;
    t->cell_width = NULL;
    t->nrows = 0;
}

static int table_init(table *t, const column *cols)
{
    memset(t, 0, sizeof *t);
    t->cols = cols;
    while (cols[t->ncols].title != NULL) t->ncols++;
    if (t->ncols > sizeof t->widths / sizeof t->widths[0]) return -1;
    for (size_t c = 0; c < t->ncols; c++) t->widths[c] = strlen(cols[c].title);
    return 0;
}

static fv_status table_add(table *t, fv_db *db, const fv_record *r)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **cells = realloc(t->cells, cap * t->ncols * sizeof *cells);
        if (cells == NULL) return FV_ENOMEM;
        t->cells = cells;
        size_t *cw = realloc(t->cell_width, cap * t->ncols * sizeof *cw);
        if (cw == NULL) return FV_ENOMEM;
        t->cell_width = cw;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    size_t *row_width = t->cell_width + t->nrows * t->ncols;
    fv_status st = FV_OK;
    size_t c = 0;
    for (; c < t->ncols && st == FV_OK; c++) {
        char *raw = NULL;
        size_t w = 0;
        st = column_value(db, r, t->cols[c].what, &raw);
        row[c] = st == FV_OK ? cell_text(raw, t->cols[c].max_width, &w) : NULL;
        if (st == FV_OK && row[c] == NULL) st = FV_ENOMEM;
        if (raw != NULL) sodium_memzero(raw, strlen(raw));
        free(raw);
        row_width[c] = w;
        if (w > t->widths[c]) t->widths[c] = w;
    }
    if (st != FV_OK) {
        for (size_t k = 0; k < c; k++) free(row[k]);
        return st;
    }
    t->nrows++;
    return FV_OK;
}

static void table_print(const table *t, FILE *f)
{
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            size_t k = r == 0 ? 0 : (r - 1) * t->ncols + c;
            const char *s = r == 0 ? t->cols[c].title : t->cells[k];
            fputs(s, f);
            if (c + 1 == t->ncols) break;
            size_t w = r == 0 ? strlen(s) : t->cell_width[k];
            fprintf(f, "%*s", (int)(t->widths[c] - w + 2), "");
        }
        fputc('\n', f);
    }
}

/* What comes after a list's rows (fv due's important dates): text after
 * the table, JSON objects before the array closes; not with --ids. */
typedef fv_status (*list_extra_fn)(fv_db *db, output *o, void *ctx);

/* Write a whole list to o, as a table or a JSON array, then extra (may be
 * NULL).  Frees the list. */
static int emit_list_then(fv_db *db, fv_list *l, const list_kind *kind, output *o,
                          list_extra_fn extra, void *ctx)
{
    table t;
    fv_status st = FV_OK;
    const fv_record *r;
    if (table_init(&t, kind->cols) != 0) st = FV_EINTERNAL;
    if (o->json) fvj_begin_array(&o->j);
    while (st == FV_OK && (st = fv_list_next(l, &r)) == FV_OK && r != NULL) {
        if (o->ids) { /* --ids: one id a line, nothing else (even for an empty list) */
            fprintf(o->f, "%s\n", fv_record_id(r));
            continue;
        }
        if (!o->json) {
            st = table_add(&t, db, r);
            continue;
        }
        fvj_begin_object(&o->j);
        json_record(&o->j, r);
        if (kind->with_due) {
            char *reason = NULL;
            st = column_value(db, r, "@reason", &reason);
            fvj_member_string(&o->j, "kind", "follow-up"); /* beside fv due's dates */
            fvj_member_string(&o->j, "due", fv_record_due(r));
            fvj_member_string(&o->j, "reason", reason);
            free(reason);
        }
        fvj_end_object(&o->j);
    }
    if (o->json && st == FV_OK && extra != NULL) st = extra(db, o, ctx);
    if (o->json) fvj_end_array(&o->j);
    else if (o->ids) { /* printed as they came */ }
    else if (st == FV_OK && t.nrows == 0) fprintf(o->f, "%s\n", kind->none);
    else if (st == FV_OK) table_print(&t, o->f);
    if (!o->json && !o->ids && st == FV_OK && extra != NULL) st = extra(db, o, ctx);
    table_free(&t);
    fv_list_free(l);
    return st == FV_OK ? 0 : lib_fail(db, st);
}

static int emit_list(fv_db *db, fv_list *l, const list_kind *kind, output *o)
{
    return emit_list_then(db, l, kind, o, NULL, NULL);
}

/* ---- command handlers ---- */

/* A one-line result: the text alone, or {"key": value, ...extra}. */
static void emit_result(output *o, const char *key, const char *value, const char *text)
{
    if (o->json) {
        fvj_set_layout(&o->j, FVJ_LINE);
        fvj_begin_object(&o->j);
        fvj_member_string(&o->j, key, value);
        fvj_key(&o->j, "ok");
        fvj_bool(&o->j, 1);
        fvj_end_object(&o->j);
    } else {
        fprintf(o->f, "%s\n", text);
    }
}

static int run_init(fv_db *db, const args *a, output *o)
{
    (void)db;
    char text[64 + 4096];
    snprintf(text, sizeof text, "created %s", a->db);
    emit_result(o, "path", a->db, text);
    return 0;
}

static int run_add(fv_db *db, const args *a, output *o)
{
    fv_record *r = NULL;
    fv_status st = fv_record_new(db, a->cmd->table, &r);
    if (st != FV_OK) return lib_fail(db, st);
    int rc = apply_fields(db, r, a);
    /* customers and contacts: a possible duplicate is a warning, not a
     * refusal (the record is added); --json lists the candidates */
    int dedup = strcmp(a->cmd->table, "customer") == 0 || strcmp(a->cmd->table, "contact") == 0;
    fvda_dups dups;
    memset(&dups, 0, sizeof dups);
    if (rc == 0 && dedup && (st = fvda_dups_find(db, r, &dups)) != FV_OK) rc = lib_fail(db, st);
    if (rc == 0 && (st = fv_insert(db, r)) != FV_OK) rc = lib_fail(db, st);
    if (rc == 0 && dedup) {
        fvda_dups_warn(stderr, &dups);
        if (o->json) {
            fvj_set_layout(&o->j, FVJ_LINE);
            fvj_begin_object(&o->j);
            fvj_member_string(&o->j, "id", fv_record_id(r));
            fvj_key(&o->j, "ok");
            fvj_bool(&o->j, 1);
            fvj_key(&o->j, "duplicates");
            fvda_dups_json(&o->j, &dups);
            fvj_end_object(&o->j);
        } else {
            fprintf(o->f, "%s\n", fv_record_id(r));
        }
    } else if (rc == 0) {
        emit_result(o, "id", fv_record_id(r), fv_record_id(r));
    }
    fvda_dups_free(&dups);
    fv_record_free(r);
    return rc;
}

static int run_update(fv_db *db, const args *a, output *o)
{
    fv_record *r = NULL;
    fv_status st = fv_get(db, a->cmd->table, a->id, &r);
    if (st != FV_OK) return lib_fail(db, st);
    int rc = apply_fields(db, r, a);
    if (rc == 0 && (st = fv_update(db, r)) != FV_OK) rc = lib_fail(db, st);
    if (rc == 0) {
        char text[96];
        snprintf(text, sizeof text, "updated %s %s", a->cmd->table, fv_record_id(r));
        emit_result(o, "id", fv_record_id(r), text);
    }
    fv_record_free(r);
    return rc;
}

static int run_show(fv_db *db, const args *a, output *o)
{
    fv_record *r = NULL;
    fv_status st = fv_get(db, a->cmd->table, a->id, &r);
    if (st != FV_OK) return lib_fail(db, st);
    /* a sealed value that fails authentication: say which, show nothing */
    const char *name;
    fv_field_type type;
    for (size_t i = 0; fv_record_field(r, i, &name, &type) == FV_OK; i++) {
        const char *v;
        double d;
        int set;
        fv_status gst = type == FV_TYPE_REAL ? fv_record_get_real(r, name, &d, &set)
                                             : fv_record_get_text(r, name, &v);
        if (gst == FV_ECORRUPT) {
            fprintf(stderr, "fv: %s.%s of %s fails authentication: its sealed value was moved "
                            "from another record or field, or altered\n",
                    a->cmd->table, name, fv_record_id(r));
            fv_record_free(r);
            return exit_for(FV_ECORRUPT);
        }
    }
    if (o->json) {
        fvj_begin_object(&o->j);
        json_record(&o->j, r);
        fvj_end_object(&o->j);
    } else {
        text_record(o->f, r);
    }
    fv_record_free(r);
    return 0;
}

static int run_delete(fv_db *db, const args *a, output *o)
{
    fv_status st = fv_delete(db, a->cmd->table, a->id);
    if (st != FV_OK) return lib_fail(db, st);
    char text[96];
    snprintf(text, sizeof text, "deleted %s %.40s", a->cmd->table, a->id);
    emit_result(o, "id", a->id, text);
    return 0;
}

static int run_customer_list(fv_db *db, const args *a, output *o)
{
    fv_customer_filter f;
    memset(&f, 0, sizeof f);
    f.size = sizeof f;
    f.stage = arg_get(a, "stage");
    f.grade = arg_get(a, "grade");
    f.owner = arg_get(a, "owner");
    fv_list *l = NULL;
    fv_status st = fv_list_customers(db, &f, &l);
    if (st != FV_OK) return lib_fail(db, st);
    return emit_list(db, l, &customer_list_kind, o);
}

static int run_contact_list(fv_db *db, const args *a, output *o)
{
    fv_list *l = NULL;
    fv_status st = fv_list_contacts(db, arg_get(a, "customer"), &l);
    if (st != FV_OK) return lib_fail(db, st);
    return emit_list(db, l, &contact_list_kind, o);
}

static int run_visit_list(fv_db *db, const args *a, output *o)
{
    fv_list *l = NULL;
    fv_status st = fv_list_visits(db, arg_get(a, "customer"), &l);
    if (st != FV_OK) return lib_fail(db, st);
    return emit_list(db, l, &visit_list_kind, o);
}

/* fv due's second part: birthdays and anniversaries from --on (today)
 * over --days (3) days. */
typedef struct due_dates {
    const char *from;
    int days;
} due_dates;

static fv_status emit_due_dates(fv_db *db, output *o, void *ctx)
{
    const due_dates *d = ctx;
    return fvw_dates(db, d->from, d->days, o->f, o->json ? &o->j : NULL);
}

static int run_due(fv_db *db, const args *a, output *o)
{
    due_dates dates = {arg_get(a, "on"), 3};
    const char *days = arg_get(a, "days");
    uint32_t n;
    if (days != NULL) {
        if (parse_u32(days, 0, 366, &n) != 0)
            return usage_error(a->cmd, "--days is a number of days from 0 to 366");
        dates.days = (int)n;
    }
    fv_list *l = NULL;
    fv_status st = fv_list_due(db, dates.from, &l);
    if (st != FV_OK) return lib_fail(db, st);
    return emit_list_then(db, l, &due_list_kind, o, emit_due_dates, &dates);
}

static int run_passwd(fv_db *db, const args *a, output *o)
{
    (void)a;
    secret s;
    int rc = get_secret(a->cmd, "FV_NEW_PASSPHRASE", "New passphrase: ", 1, &s);
    if (rc == 0) {
        fv_status st = fv_change_passphrase(db, s.buf, s.len);
        if (st != FV_OK) rc = lib_fail(db, st);
    }
    secret_free(&s);
    if (rc == 0) emit_result(o, "path", a->db, "passphrase changed");
    return rc;
}

static int run_rekey(fv_db *db, const args *a, output *o)
{
    fv_status st = fv_rekey(db);
    if (st != FV_OK) return lib_fail(db, st);
    emit_result(o, "path", a->db, "rekeyed: every page rewritten under a new key");
    return 0;
}

static int run_check(fv_db *db, const args *a, output *o)
{
    fv_status st = fv_check(db);
    if (st != FV_OK) return lib_fail(db, st);
    emit_result(o, "path", a->db, "ok");
    return 0;
}

static int run_restore(fv_db *db, const args *a, output *o)
{
    fv_status st = fv_restore(db, a->cmd->table, a->id);
    if (st != FV_OK) return lib_fail(db, st);
    char text[96];
    snprintf(text, sizeof text, "restored %s %.40s", a->cmd->table, a->id);
    emit_result(o, "id", a->id, text);
    return 0;
}

/* ---- sync: change sets, conflicts ---- */

static int run_changes_export(fv_db *db, const args *a, output *o)
{
    fv_export_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    unsigned flags = arg_get(a, "all") ? FV_EXPORT_ALL : 0;
    fv_status st = fv_changes_export_file(db, a->id, flags, &info);
    if (st != FV_OK) return lib_fail(db, st);
    if (o->json) {
        fvj_set_layout(&o->j, FVJ_LINE);
        fvj_begin_object(&o->j);
        fvj_member_string(&o->j, "file", a->id);
        fvj_key(&o->j, "count");
        fvj_int(&o->j, (int64_t)info.count);
        fvj_end_object(&o->j);
    } else {
        fprintf(o->f, "%llu\n", (unsigned long long)info.count);
    }
    return 0;
}

static int run_changes_import(fv_db *db, const args *a, output *o)
{
    fv_apply_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    fv_status st = fv_changes_apply_file(db, a->id, &s);
    if (st != FV_OK) return lib_fail(db, st);
    if (o->json) {
        fvj_set_layout(&o->j, FVJ_LINE);
        fvj_begin_object(&o->j);
        fvj_key(&o->j, "received");
        fvj_int(&o->j, (int64_t)s.received);
        fvj_key(&o->j, "applied");
        fvj_int(&o->j, (int64_t)s.applied);
        fvj_key(&o->j, "known");
        fvj_int(&o->j, (int64_t)s.known);
        fvj_key(&o->j, "conflicts");
        fvj_int(&o->j, (int64_t)s.conflicts);
        fvj_end_object(&o->j);
    } else {
        fprintf(o->f, "applied %llu, already known %llu, conflicts %llu\n",
                (unsigned long long)s.applied, (unsigned long long)s.known,
                (unsigned long long)s.conflicts);
    }
    return 0;
}

static void json_conflict(fvj_writer *j, const fv_conflict *c)
{
    fvj_begin_object(j);
    fvj_member_string(j, "id", c->id);
    fvj_member_string(j, "table", c->table);
    fvj_member_string(j, "row_id", c->row_id);
    fvj_member_string(j, "field", c->field);
    fvj_key(j, "mine");
    if (c->mine) fvj_string(j, c->mine); else fvj_null(j);
    fvj_key(j, "theirs");
    if (c->theirs) fvj_string(j, c->theirs); else fvj_null(j);
    fvj_key(j, "mine_hlc");
    fvj_int(j, (int64_t)c->mine_hlc);
    fvj_key(j, "theirs_hlc");
    fvj_int(j, (int64_t)c->theirs_hlc);
    fvj_member_string(j, "mine_device", c->mine_device);
    fvj_member_string(j, "theirs_device", c->theirs_device);
    fvj_member_string(j, "winner", c->winner_is_mine ? "mine" : "theirs");
    fvj_key(j, "resolved");
    fvj_bool(j, c->resolved);
    fvj_end_object(j);
}

static int run_conflicts(fv_db *db, const args *a, output *o)
{
    fv_conflict_list *l = NULL;
    fv_status st = fv_conflicts_list(db, arg_get(a, "all") != NULL, &l);
    if (st != FV_OK) return lib_fail(db, st);
    const fv_conflict *c;
    size_t n = 0;
    if (o->json) fvj_begin_array(&o->j);
    while ((st = fv_conflicts_next(l, &c)) == FV_OK && c != NULL) {
        n++;
        if (o->json) {
            json_conflict(&o->j, c);
            continue;
        }
        if (o->ids) {
            fprintf(o->f, "%s\n", c->id);
            continue;
        }
        size_t w;
        char *mine = cell_text(c->mine ? c->mine : "(empty)", 40, &w);
        char *theirs = cell_text(c->theirs ? c->theirs : "(empty)", 40, &w);
        fprintf(o->f, "%s  %s.%s of %s%s\n    mine:   %s%s\n    theirs: %s%s\n", c->id, c->table,
                c->field, c->row_id, c->resolved ? "  (resolved)" : "", mine ? mine : "",
                c->winner_is_mine ? "  <- current" : "", theirs ? theirs : "",
                c->winner_is_mine ? "" : "  <- current");
        free(mine);
        free(theirs);
    }
    if (o->json) fvj_end_array(&o->j);
    else if (st == FV_OK && n == 0 && !o->ids) fprintf(o->f, "no conflicts\n");
    fv_conflicts_free(l);
    return st == FV_OK ? 0 : lib_fail(db, st);
}

static int run_conflicts_resolve(fv_db *db, const args *a, output *o)
{
    const char *keep = arg_get(a, "keep");
    fv_keep k;
    if (strcmp(keep, "mine") == 0) k = FV_KEEP_MINE;
    else if (strcmp(keep, "theirs") == 0) k = FV_KEEP_THEIRS;
    else return usage_error(a->cmd, "--keep must be mine or theirs (got '%.40s')", keep);
    fv_status st = fv_conflict_resolve(db, a->id, k);
    if (st != FV_OK) return lib_fail(db, st);
    char text[96];
    snprintf(text, sizeof text, "resolved %.40s: kept %s", a->id, keep);
    emit_result(o, "id", a->id, text);
    return 0;
}

static int run_state_hash(fv_db *db, const args *a, output *o)
{
    char h[65];
    fv_status st = fv_state_hash(db, h);
    if (st != FV_OK) return lib_fail(db, st);
    emit_result(o, "state_hash", h, h);
    (void)a;
    return 0;
}

/* ---- networked sync ---- */

static int run_enroll(fv_db *db, const args *a, output *o)
{
    fv_status st = fv_enroll(db, arg_get(a, "server"), arg_get(a, "code"), NULL);
    if (st != FV_OK) return lib_fail(db, st);
    fv_sync_status ss;
    memset(&ss, 0, sizeof ss);
    ss.size = sizeof ss;
    if ((st = fv_sync_status_get(db, &ss)) != FV_OK) return lib_fail(db, st);
    if (o->json) {
        fvj_set_layout(&o->j, FVJ_LINE);
        fvj_begin_object(&o->j);
        fvj_member_string(&o->j, "server", ss.server);
        fvj_member_string(&o->j, "device_id", ss.device_id);
        fvj_member_string(&o->j, "user", ss.user);
        fvj_member_string(&o->j, "role", ss.role);
        fvj_member_string(&o->j, "team", ss.team);
        fvj_end_object(&o->j);
    } else {
        fprintf(o->f, "enrolled with %s as %s (%s, team %s); device %s\n", ss.server, ss.user,
                ss.role, ss.team, ss.device_id);
    }
    return 0;
}

/* fv sync's progress: the latest figures (for the summary line) and, when
 * stderr is a terminal, one status line redrawn in place: a bar for the
 * push (its total is the outbox when the sync began) and running counts
 * for the pull (whose total nobody knows in advance). */
typedef struct sync_progress {
    int draw;               /* stderr is a terminal */
    uint64_t push_total;    /* changes waiting when the sync began */
    fv_sync_progress last;  /* the latest figures reported */
    int64_t drawn_ms;       /* when the line was last drawn (monotonic) */
    unsigned frame;         /* spinner frame */
} sync_progress;

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "812 B", "12.3 KiB", "4.1 MiB" */
static void format_bytes(uint64_t n, char *buf, size_t cap)
{
    if (n < 1024) snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else if (n < 1024 * 1024) snprintf(buf, cap, "%.1f KiB", (double)n / 1024.0);
    else snprintf(buf, cap, "%.1f MiB", (double)n / (1024.0 * 1024.0));
}

static void draw_progress(sync_progress *sp, int force)
{
    static const char *const spin[] = {"\u280b", "\u2819", "\u2839", "\u2838", "\u283c",
                                       "\u2834", "\u2826", "\u2827", "\u2807", "\u280f"};
    int64_t now = monotonic_ms();
    if (!sp->draw || (!force && now - sp->drawn_ms < 80)) return;
    sp->drawn_ms = now;
    const fv_sync_progress *p = &sp->last;
    char sent[32], received[32], bar[128], line[512];
    format_bytes(p->bytes_sent, sent, sizeof sent);
    format_bytes(p->bytes_received, received, sizeof received);
    uint64_t total = sp->push_total > p->pushed ? sp->push_total : p->pushed;
    fvr_bar(p->pushed, total, 16, bar, sizeof bar);
    snprintf(line, sizeof line, "sync %s \u2191 push [%s] %llu/%llu, %s  \u2193 pull %llu, %s",
             force ? " " : spin[sp->frame++ % 10], bar, (unsigned long long)p->pushed,
             (unsigned long long)total, sent, (unsigned long long)p->pulled, received);
    struct winsize ws;
    size_t cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    if (text_width(line) >= cols) /* no room for the bar: the figures alone */
        snprintf(line, sizeof line, "sync \u2191 %llu/%llu %s \u2193 %llu %s",
                 (unsigned long long)p->pushed, (unsigned long long)total, sent,
                 (unsigned long long)p->pulled, received);
    if (text_width(line) >= cols) line[0] = '\0';
    fprintf(stderr, "\r%s\x1b[K", line);
    fflush(stderr);
}

static void on_progress(void *ctx, const fv_sync_progress *p)
{
    sync_progress *sp = ctx;
    sp->last = *p;
    draw_progress(sp, 0);
}

static int run_sync(fv_db *db, const args *a, output *o)
{
    fv_sync_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.server = arg_get(a, "server");
    const char *ms = arg_get(a, "max-seconds");
    if (ms != NULL) {
        uint32_t secs;
        if (parse_u32(ms, 1, 86400, &secs) != 0)
            return usage_error(a->cmd, "--max-seconds must be a whole number from 1 to 86400");
        cfg.max_ms = (int64_t)secs * 1000;
    }
    sync_progress sp;
    memset(&sp, 0, sizeof sp);
    sp.draw = isatty(STDERR_FILENO) && !o->json;
    if (sp.draw) {
        fv_sync_status ss;
        memset(&ss, 0, sizeof ss);
        ss.size = sizeof ss;
        if (fv_sync_status_get(db, &ss) == FV_OK) sp.push_total = ss.pending_changes;
        draw_progress(&sp, 1);
    }
    cfg.progress = on_progress;
    cfg.progress_ctx = &sp;
    fv_sync_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    fv_status st = fv_sync(db, &cfg, &r);
    if (sp.draw) {
        draw_progress(&sp, 1);
        fputc('\n', stderr);
    }
    if (st != FV_OK) return lib_fail(db, st);
    if (o->json) {
        fvj_begin_object(&o->j);
        fvj_key(&o->j, "pushed");
        fvj_int(&o->j, (int64_t)r.pushed);
        fvj_key(&o->j, "pulled");
        fvj_int(&o->j, (int64_t)r.pulled);
        fvj_key(&o->j, "conflicts");
        fvj_int(&o->j, (int64_t)r.conflicts);
        fvj_key(&o->j, "rejected");
        fvj_int(&o->j, (int64_t)r.rejected);
        fvj_key(&o->j, "drained");
        fvj_bool(&o->j, r.drained);
        fvj_end_object(&o->j);
    } else {
        char sent[32], received[32];
        format_bytes(sp.last.bytes_sent, sent, sizeof sent);
        format_bytes(sp.last.bytes_received, received, sizeof received);
        fprintf(o->f, "pushed %llu, pulled %llu, conflicts %llu (%s sent, %s received)%s\n",
                (unsigned long long)r.pushed, (unsigned long long)r.pulled,
                (unsigned long long)r.conflicts, sent, received,
                r.drained ? "" : " (stopped by the time limit: run fv sync again)");
        if (r.rejected > 0)
            fprintf(o->f, "refused by the server: %llu change(s) this user may not make "
                          "(fv status shows why)\n", (unsigned long long)r.rejected);
    }
    return r.drained ? 0 : EXIT_PARTIAL;
}

static int run_status(fv_db *db, const args *a, output *o)
{
    (void)a;
    fv_sync_status ss;
    memset(&ss, 0, sizeof ss);
    ss.size = sizeof ss;
    fv_status st = fv_sync_status_get(db, &ss);
    if (st != FV_OK) return lib_fail(db, st);
    char when[32] = "never";
    if (ss.last_sync_ms > 0) {
        time_t t = (time_t)(ss.last_sync_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if (o->json) {
        fvj_begin_object(&o->j);
        fvj_key(&o->j, "enrolled");
        fvj_bool(&o->j, ss.enrolled);
        fvj_member_string(&o->j, "server", ss.server);
        fvj_member_string(&o->j, "device_id", ss.device_id);
        fvj_member_string(&o->j, "user", ss.user);
        fvj_member_string(&o->j, "role", ss.role);
        fvj_member_string(&o->j, "team", ss.team);
        fvj_key(&o->j, "pending_changes");
        fvj_int(&o->j, (int64_t)ss.pending_changes);
        fvj_key(&o->j, "pull_cursor");
        fvj_int(&o->j, (int64_t)ss.pull_cursor);
        fvj_key(&o->j, "last_sync");
        if (ss.last_sync_ms > 0) fvj_string(&o->j, when); else fvj_null(&o->j);
        fvj_key(&o->j, "last_error");
        if (ss.last_error[0]) fvj_string(&o->j, ss.last_error); else fvj_null(&o->j);
        fvj_end_object(&o->j);
    } else {
        fprintf(o->f, "device:          %s\n", ss.device_id);
        if (ss.enrolled)
            fprintf(o->f, "server:          %s\nuser:            %s (%s, team %s)\n", ss.server,
                    ss.user, ss.role, ss.team);
        else
            fprintf(o->f, "server:          (not enrolled)\n");
        fprintf(o->f, "pending changes: %llu\nlast sync:       %s\n",
                (unsigned long long)ss.pending_changes, when);
        if (ss.last_error[0]) fprintf(o->f, "last error:      %s\n", ss.last_error);
    }
    return 0;
}

static int run_whoami(fv_db *db, const args *a, output *o)
{
    (void)a;
    fv_sync_status ss;
    memset(&ss, 0, sizeof ss);
    ss.size = sizeof ss;
    fv_status st = fv_sync_status_get(db, &ss);
    if (st != FV_OK) return lib_fail(db, st);
    fv_field_key_info keys[64];
    size_t nkeys = 0;
    if ((st = fv_field_keys(db, keys, 64, &nkeys)) != FV_OK) return lib_fail(db, st);
    if (nkeys > 64) nkeys = 64;
    static const char *const cls[] = {"public", "pii", "confidential"};
    if (o->json) {
        fvj_begin_object(&o->j);
        fvj_key(&o->j, "enrolled");
        fvj_bool(&o->j, ss.enrolled);
        fvj_member_string(&o->j, "user", ss.user);
        fvj_member_string(&o->j, "role", ss.role);
        fvj_member_string(&o->j, "team", ss.team);
        fvj_key(&o->j, "policy_version");
        fvj_int(&o->j, ss.policy_version);
        fvj_key(&o->j, "field_keys"); /* ids only, never key material */
        fvj_begin_array(&o->j);
        for (size_t i = 0; i < nkeys; i++) {
            fvj_begin_object(&o->j);
            fvj_member_string(&o->j, "id", keys[i].key_id);
            fvj_member_string(&o->j, "team", keys[i].team);
            fvj_member_string(&o->j, "class", cls[keys[i].cls <= 2 ? keys[i].cls : 0]);
            fvj_key(&o->j, "version");
            fvj_int(&o->j, keys[i].version);
            fvj_end_object(&o->j);
        }
        fvj_end_array(&o->j);
        fvj_end_object(&o->j);
    } else if (!ss.enrolled) {
        fprintf(o->f, "not enrolled: full rights over this store's own data\n");
    } else {
        fprintf(o->f, "user:           %s\nrole:           %s\nteam:           %s\n"
                      "policy version: %u\nfield keys:     %s\n",
                ss.user, ss.role, ss.team, (unsigned)ss.policy_version,
                nkeys == 0 ? "(none yet: protected fields show as [redacted])" : "");
        for (size_t i = 0; i < nkeys; i++)
            fprintf(o->f, "  %s  %s %s v%u\n", keys[i].key_id, keys[i].team,
                    cls[keys[i].cls <= 2 ? keys[i].cls : 0], (unsigned)keys[i].version);
    }
    return 0;
}

/* ---- spreadsheets: fv import, fv export --csv (fv_csv.c) ---- */

static int run_import(fv_db *db, const args *a, output *o)
{
    const char *maps[GIVEN_MAX];
    fvcsv_alias aliases[FV_RECORD_FIELDS_MAX];
    fvcsv_import_args ia;
    memset(&ia, 0, sizeof ia);
    for (size_t i = 0; i < a->ngiven; i++)
        if (strcmp(a->opts[i].def->name, "map") == 0) maps[ia.nmaps++] = a->opts[i].value;
    /* a column may be named like fv's option for the field: the add command's */
    for (size_t k = 0; k < NCOMMANDS; k++) {
        const command *c = &commands[k];
        if (c->group == NULL || strcmp(c->group, a->cmd->table) != 0 || strcmp(c->verb, "add") != 0)
            continue;
        for (const opt_def *d = c->opts[0]; d != NULL && d->name != NULL; d++)
            if (d->field != NULL && ia.naliases < FV_RECORD_FIELDS_MAX)
                aliases[ia.naliases++] = (fvcsv_alias){d->name, d->field};
    }
    ia.table = a->cmd->table;
    ia.path = a->id;
    ia.maps = maps;
    ia.aliases = aliases;
    ia.dry_run = arg_get(a, "dry-run") != NULL;
    int reported = 0;
    int rc = fvcsv_import(db, &ia, o->f, o->json ? &o->j : NULL, &reported);
    if (rc == EXIT_USAGE) print_synopsis(stderr, a->cmd);
    o->keep = reported; /* exit 1 with the report: some rows were rejected */
    return rc;
}

static int run_export(fv_db *db, const args *a, output *o)
{
    if (o->json && a->id == NULL)
        return usage_error(a->cmd, "--json needs FILE (without it the CSV itself goes to stdout)");
    return fvcsv_export(db, a->cmd->table, a->id, o->f, o->json ? &o->j : NULL);
}

/* ---- workflows: grade review, complaints (fv_workflows.c) ---- */

static int run_grade(fv_db *db, const args *a, output *o)
{
    const char *propose = arg_get(a, "propose");
    int approve = arg_get(a, "approve") != NULL, reject = arg_get(a, "reject") != NULL;
    if ((propose != NULL) + approve + reject > 1)
        return usage_error(a->cmd, "give one of --propose, --approve and --reject");
    int action = propose != NULL ? FVW_GRADE_PROPOSE
                 : approve       ? FVW_GRADE_APPROVE
                 : reject        ? FVW_GRADE_REJECT
                                 : FVW_GRADE_SHOW;
    fv_status st = fvw_grade(db, a->id, action, propose, o->f, o->json ? &o->j : NULL);
    return st == FV_OK ? 0 : lib_fail(db, st);
}

static int run_proposals(fv_db *db, const args *a, output *o)
{
    fv_status st = fvw_proposals(db, arg_get(a, "all") != NULL, o->ids, o->f,
                                 o->json ? &o->j : NULL);
    return st == FV_OK ? 0 : lib_fail(db, st);
}

static int run_complaint_step(fv_db *db, const args *a, output *o)
{
    const char *verb = a->cmd->verb;
    fv_complaint_status to = strcmp(verb, "ack") == 0       ? FV_COMPLAINT_ACKNOWLEDGED
                             : strcmp(verb, "respond") == 0 ? FV_COMPLAINT_RESPONDED
                                                            : FV_COMPLAINT_RESOLVED;
    fv_status st = fvw_complaint_step(db, a->id, to, arg_get(a, "note"), o->f,
                                      o->json ? &o->j : NULL);
    return st == FV_OK ? 0 : lib_fail(db, st);
}

static int run_complaint_show(fv_db *db, const args *a, output *o)
{
    fv_record *r = NULL;
    fv_status st = fv_get(db, "complaint", a->id, &r);
    if (st != FV_OK) return lib_fail(db, st);
    if (o->json) {
        fvj_begin_object(&o->j);
        json_record(&o->j, r);
        st = fvw_complaint_state(db, r, NULL, &o->j);
        fvj_end_object(&o->j);
    } else {
        text_record(o->f, r);
        st = fvw_complaint_state(db, r, o->f, NULL);
    }
    fv_record_free(r);
    return st == FV_OK ? 0 : lib_fail(db, st);
}

static int run_complaints(fv_db *db, const args *a, output *o)
{
    unsigned flags = (arg_get(a, "overdue") ? FV_COMPLAINTS_OVERDUE : 0u) |
                     (arg_get(a, "all") ? FV_COMPLAINTS_ALL : 0u);
    fv_status st = fvw_complaints(db, flags, o->ids, o->f, o->json ? &o->j : NULL, json_record);
    return st == FV_OK ? 0 : lib_fail(db, st);
}

static int run_deadlines(fv_db *db, const args *a, output *o)
{
    static const char *const steps[] = {"ack", "respond", "resolve"};
    int64_t set[3] = {-1, -1, -1};
    for (size_t i = 0; i < 3; i++) {
        const char *v = arg_get(a, steps[i]);
        if (v != NULL && fvw_duration_parse(v, &set[i]) != 0)
            return usage_error(a->cmd,
                               "--%s takes a duration such as 30m, 1h, 24h or 2d (got '%.20s')",
                               steps[i], v);
    }
    int drop = arg_get(a, "drop") != NULL;
    const char *urgency = arg_get(a, "urgency");
    if (drop && (urgency == NULL || set[0] >= 0 || set[1] >= 0 || set[2] >= 0))
        return usage_error(a->cmd, "--drop takes --urgency alone: it drops that urgency's own "
                                   "deadlines");
    fv_status st = fvw_deadlines(db, urgency, set, drop, o->f, o->json ? &o->j : NULL);
    return st == FV_OK ? 0 : lib_fail(db, st);
}

/* ---- duplicates, merge, the read audit (fv_dedup_audit.c) ---- */

static int run_merge(fv_db *db, const args *a, output *o)
{
    fv_status st = fvda_merge(db, a->id, a->id2, o->f, o->json ? &o->j : NULL);
    return st == FV_OK ? 0 : lib_fail(db, st);
}

static int run_audit_list(fv_db *db, const args *a, output *o)
{
    (void)a;
    fv_status st = fvda_audit_list(db, o->f, o->json ? &o->j : NULL);
    return st == FV_OK ? 0 : lib_fail(db, st);
}

static int run_audit_verify(fv_db *db, const args *a, output *o)
{
    (void)a;
    uint64_t problems = 0;
    char first[512];
    fv_status st = fvda_audit_verify(db, o->f, o->json ? &o->j : NULL, &problems, first,
                                     sizeof first);
    if (st != FV_OK) return lib_fail(db, st);
    if (problems == 0) return 0;
    /* the findings stand (stdout), and the exit says the log fails */
    o->keep = 1;
    fprintf(stderr, "fv: the audit log does not verify (%llu problem%s): %s\n",
            (unsigned long long)problems, problems == 1 ? "" : "s", first);
    return EXIT_FAIL;
}

/* ---- report ---- */

static int run_report(fv_db *db, const args *a, output *o)
{
    const char *m = arg_get(a, "month");
    int year, month;
    time_t now = time(NULL);
    if (m != NULL) {
        if (fvr_month_parse(m, &year, &month) != 0)
            return usage_error(a->cmd, "--month must be YYYY-MM (got '%.20s')", m);
    } else { /* the current month, UTC */
        struct tm tm;
        gmtime_r(&now, &tm);
        year = tm.tm_year + 1900;
        month = tm.tm_mon + 1;
    }
    fv_status st = fvr_report(db, year, month, (int64_t)now * 1000, o->f, o->json ? &o->j : NULL,
                              isatty(STDOUT_FILENO));
    return st == FV_OK ? 0 : lib_fail(db, st);
}

/* ---- main ---- */

/* Copy the buffered output to stdout; an output error is a failure. */
static int flush_output(const char *buf, size_t len)
{
    if (len > 0 && fwrite(buf, 1, len, stdout) != len) return fail("writing the output failed");
    if (fflush(stdout) != 0) return fail("writing the output failed: %s", strerror(errno));
    return 0;
}

static int run(const args *a)
{
    fv_db *db = NULL;
    int rc = open_store(a, &db);
    if (rc != 0) return rc;
    char *buf = NULL;
    size_t len = 0;
    output o;
    memset(&o, 0, sizeof o);
    o.json = a->json;
    o.ids = arg_get(a, "ids") != NULL;
    o.f = open_memstream(&buf, &len);
    if (o.f == NULL) rc = fail("out of memory");
    if (rc == 0) {
        fvj_init(&o.j, o.f, 1);
        rc = a->cmd->run(db, a, &o);
        if ((rc == 0 || rc == EXIT_PARTIAL || o.keep) && o.json && fvj_finish(&o.j) != 0)
            rc = fail("internal error writing JSON");
    }
    fv_status st = fv_close(db);
    if ((rc == 0 || rc == EXIT_PARTIAL) && st != FV_OK)
        rc = fail("closing the store: %s", fv_status_str(st));
    if (o.f != NULL) {
        if (fclose(o.f) != 0 && rc == 0) rc = fail("out of memory");
        /* a partial sync still reports what it did */
        if (rc == 0 || rc == EXIT_PARTIAL || o.keep) {
            int frc = flush_output(buf, len);
            if (frc != 0) rc = frc;
        }
        if (buf != NULL) sodium_memzero(buf, len); /* may hold protected values */
        free(buf);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) return fail("cannot initialise libsodium");
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) {
        if (rc == 0 && fflush(stdout) != 0) rc = fail("writing the output failed");
        return rc;
    }
    return run(&a);
}

#ifdef FV_FUZZ_PARSER
/* Only for fuzz/fuzz_fv_args.c, never in the fv binary: fuzz/fuzz.cmake and
 * fuzz/replay.cmake compile this file with -DFV_FUZZ_PARSER, -Dmain=fv_cli_main
 * and -include tools/fv_fuzz.h.  The parser alone, on any argv. */
int fv_fuzz_parse_args(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc < 0 && (a.cmd == NULL || a.db == NULL || a.db[0] == '\0' ||
                   (a.cmd->takes_id && a.id == NULL && !(a.cmd->flags & CMD_ID_OPTIONAL)) ||
                   (a.cmd->takes_id == 2 && a.id2 == NULL)))
        abort(); /* "go on and run" with an incomplete command line */
    return rc;
}
#endif
