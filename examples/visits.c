/*
 * visits.c - the fieldvault C API in one program: open (or create) an
 * encrypted store, record a customer, a contact and a visit in one
 * transaction, list the customers, ask who is due for a follow-up, and
 * write the pending changes as a change set another store can import.
 * Every call returns an fv_status; fv_errmsg() says what went wrong.
 *
 *   cc visits.c -lfieldvault ...   (built by CMake as build/example_visits)
 *   FV_PASSPHRASE=... ./example_visits STORE [CHANGESET]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fieldvault.h"

/* Print the handle's message for a failed call and return 1. */
static int failed(fv_db *db, fv_status st, const char *what)
{
    fprintf(stderr, "%s: %s\n", what, db ? fv_errmsg(db) : fv_status_str(st));
    return 1;
}

/* Insert a record of table with the given field=value pairs; its id (a
 * copy) into id_out when not NULL. */
static fv_status add(fv_db *db, const char *table, const char *const kv[], char *id_out)
{
    fv_record *r = NULL;
    fv_status st = fv_record_new(db, table, &r);
    for (size_t i = 0; st == FV_OK && kv[i] != NULL; i += 2)
        st = fv_record_set_text(r, kv[i], kv[i + 1]);
    if (st == FV_OK) st = fv_insert(db, r);
    if (st == FV_OK && id_out != NULL) snprintf(id_out, FV_ID_LEN + 1, "%s", fv_record_id(r));
    fv_record_free(r);
    return st;
}

int main(int argc, char **argv)
{
    const char *pass = getenv("FV_PASSPHRASE");
    if (argc < 2 || pass == NULL || *pass == '\0') {
        fprintf(stderr, "usage: FV_PASSPHRASE=... %s STORE [CHANGESET]\n", argv[0]);
        return 2;
    }
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = argv[1];
    cfg.passphrase = pass;
    cfg.passphrase_len = strlen(pass);
    cfg.flags = FV_OPEN_CREATE; /* create it if it does not exist */
    cfg.user = "ana";           /* the acting user: owner of new customers */
    fv_db *db = NULL;
    fv_status st = fv_open(&db, &cfg);
    if (st != FV_OK) {
        int rc = failed(db, st, "open");
        fv_close(db);
        return rc;
    }

    /* One transaction: all three records or none. */
    char customer[FV_ID_LEN + 1];
    st = fv_begin(db);
    if (st == FV_OK)
        st = add(db, "customer",
                 (const char *const[]){"name", "Acme Foods", "grade", "A", "stage", "intent",
                                       "budget", "120k EUR", NULL},
                 customer);
    if (st == FV_OK)
        st = add(db, "contact",
                 (const char *const[]){"customer_id", customer, "name", "Li Wei", "phone",
                                       "+86 138 0000 0000", NULL},
                 NULL);
    if (st == FV_OK)
        st = add(db, "visit",
                 (const char *const[]){"customer_id", customer, "method", "visit", "summary",
                                       "Walked line 3 with the plant manager", "next_action",
                                       "Send the trial quote", NULL},
                 NULL);
    if (st == FV_OK) st = fv_commit(db);
    else (void)fv_rollback(db);
    if (st != FV_OK) {
        int rc = failed(db, st, "recording the visit");
        fv_close(db);
        return rc;
    }
    printf("recorded customer %s with a contact and a visit\n", customer);

    /* Lists are cursors: fv_list_next until it gives NULL. */
    fv_list *l = NULL;
    const fv_record *r;
    st = fv_list_customers(db, NULL, &l);
    while (st == FV_OK && (st = fv_list_next(l, &r)) == FV_OK && r != NULL) {
        const char *name = NULL, *grade = NULL;
        if (fv_record_get_text(r, "name", &name) != FV_OK) name = NULL;
        if (fv_record_get_text(r, "grade", &grade) != FV_OK) grade = NULL;
        printf("customer %s  %-20s grade %s\n", fv_record_id(r), name ? name : "?",
               grade ? grade : "-");
    }
    fv_list_free(l);
    if (st != FV_OK) {
        int rc = failed(db, st, "listing");
        fv_close(db);
        return rc;
    }

    /* Who is due for a follow-up a month from the grade cadence. */
    st = fv_list_due(db, "2099-01-01", &l);
    size_t due = 0;
    while (st == FV_OK && (st = fv_list_next(l, &r)) == FV_OK && r != NULL) due++;
    fv_list_free(l);
    if (st != FV_OK) {
        int rc = failed(db, st, "due");
        fv_close(db);
        return rc;
    }
    printf("%zu customer(s) due by 2099-01-01\n", due);

    /* The pending changes as a change set (sync without a network). */
    if (argc > 2) {
        fv_export_info info;
        memset(&info, 0, sizeof info);
        info.size = sizeof info;
        st = fv_changes_export_file(db, argv[2], 0, &info);
        if (st != FV_OK) {
            int rc = failed(db, st, "export");
            fv_close(db);
            return rc;
        }
        printf("wrote %llu change(s) to %s\n", (unsigned long long)info.count, argv[2]);
    }
    return fv_close(db) == FV_OK ? 0 : 1;
}
