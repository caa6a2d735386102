/*
 * store_scope.c - the two rules both store backends apply when they record
 * the customer scope of a log entry (store.h, "The log's customer scope"):
 * how an owner or team value becomes the key a pull compares, and which
 * customer a customer_id value names.  They reproduce what fvd's pull did
 * when it resolved every row through the store (a "%.64s" copy of the text
 * compared with strcmp; a customer_id read into FV_ID_LEN + 1 bytes and
 * parsed), so that moving the decision into the store changes no result;
 * and fvd_scope_for, the scope an appended entry gets and what it moves.
 */
#include <string.h>

#include "internal.h"
#include "store.h"

size_t fvd_scope_key(const char *text, size_t len)
{
    if (text == NULL) return 0;
    return strnlen(text, len < FVD_NAME_MAX ? len : FVD_NAME_MAX);
}

int fvd_scope_customer(const char *text, size_t len, unsigned char out[FV_ROWID_LEN])
{
    char id[FV_ID_LEN + 1];
    if (text == NULL) return 0;
    size_t n = strnlen(text, len < FV_ID_LEN ? len : FV_ID_LEN);
    memcpy(id, text, n);
    id[n] = '\0';
    return fv__uuid_parse(id, out);
}

static void key_of(const fv__change *c, fvd_skey *k)
{
    k->n = c->kind == FV__VAL_TEXT ? fvd_scope_key((const char *)c->data, c->len) : 0;
    memcpy(k->b, c->data, k->n);
}

static int same_key(const fvd_skey *a, const fvd_skey *b)
{
    return a->n == b->n && memcmp(a->b, b->b, a->n) == 0;
}

static int same_scope(const fvd_row_scope *a, const fvd_row_scope *b)
{
    return a->has_cust == b->has_cust &&
           (!a->has_cust || memcmp(a->cust, b->cust, FV_ROWID_LEN) == 0) &&
           same_key(&a->owner, &b->owner) && same_key(&a->team, &b->team);
}

fv_status fvd_scope_for(const fv__change *c, const fvd_row_scope *cur, int found,
                        fv_status (*customer_keys)(void *ctx,
                                                   const unsigned char cust[FV_ROWID_LEN],
                                                   fvd_skey *owner, fvd_skey *team, char *err,
                                                   size_t errcap),
                        void *ctx, fvd_row_scope *mine, fvd_row_scope *prev, int *moves,
                        char *err, size_t errcap)
{
    *mine = *cur;
    memset(prev, 0, sizeof *prev);
    *moves = FVD_MOVES_NOTHING;
    if (strcmp(c->table, "customer") == 0) {
        /* a customer's scope is its own: every entry carrying its id (its
         * rows' too) has its current owner and team */
        mine->has_cust = 1;
        memcpy(mine->cust, c->row_id, FV_ROWID_LEN);
        int owner = strcmp(c->field, "owner") == 0, team = strcmp(c->field, "team") == 0;
        if (!owner && !team) return FV_OK;
        *prev = *mine;
        fvd_skey *k = owner ? &mine->owner : &mine->team;
        key_of(c, k);
        /* Without an entry of its own, the customer had no owner or team,
         * but its rows may already name it. */
        if (!found || !same_key(owner ? &cur->owner : &cur->team, k))
            *moves = owner ? FVD_MOVES_OWNER : FVD_MOVES_TEAM;
        return FV_OK;
    }
    if (strcmp(c->field, "customer_id") != 0) return FV_OK;
    memset(mine, 0, sizeof *mine);
    mine->has_cust = c->kind == FV__VAL_TEXT &&
                     fvd_scope_customer((const char *)c->data, c->len, mine->cust);
    fv_status st = mine->has_cust
                       ? customer_keys(ctx, mine->cust, &mine->owner, &mine->team, err, errcap)
                       : FV_OK;
    if (st == FV_OK && found && !same_scope(mine, cur)) *moves = FVD_MOVES_ROW;
    return st;
}
