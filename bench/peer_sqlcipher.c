/*
 * peer_sqlcipher.c - the SQLCipher peer as its own program.  Debian's
 * SQLCipher 3.4.1 exports the same sqlite3_* symbols as the system SQLite,
 * so it cannot live in fv_bench's process: fv_bench runs this program and
 * reads one result line from its stdout.
 *
 *   peer_sqlcipher --db PATH --schema FILE --mode single|batch --count N
 *                  --seed S [--page-size 4096]
 *
 * Without --page-size SQLCipher runs as it comes (1 KiB pages, PBKDF2
 * 64,000 iterations, AES-256-CBC + HMAC-SHA1 per page).  Prints
 *   result visits=N seconds=S bytes=B version=V
 * or "error: ..." on stderr and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "peer_sql.h"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf != NULL) buf[n] = '\0';
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    const char *db = NULL, *schema = NULL, *mode = "single";
    long count = 1000, page = 0;
    unsigned long seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--db") == 0) db = argv[i + 1];
        else if (strcmp(argv[i], "--schema") == 0) schema = argv[i + 1];
        else if (strcmp(argv[i], "--mode") == 0) mode = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0) count = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0) seed = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--page-size") == 0) page = atol(argv[i + 1]);
        else {
            fprintf(stderr, "error: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (db == NULL || schema == NULL || count <= 0) {
        fprintf(stderr, "usage: peer_sqlcipher --db PATH --schema FILE --mode single|batch "
                        "--count N --seed S [--page-size 4096]\n");
        return 2;
    }
    char *sql = read_file(schema);
    if (sql == NULL) {
        fprintf(stderr, "error: cannot read %s\n", schema);
        return 1;
    }
    peer_opts o;
    memset(&o, 0, sizeof o);
    o.path = db;
    o.schema_sql = sql;
    o.batch = strcmp(mode, "batch") == 0;
    o.count = count;
    o.seed = (unsigned)seed;
    o.key = "correct horse battery staple";
    o.page_size = (int)page;
    peer_result r;
    char err[512] = "";
    int rc = peer_sql_run(&o, &r, err, sizeof err);
    free(sql);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    printf("result visits=%ld seconds=%.9f bytes=%lld version=%s\n", r.visits, r.seconds,
           r.file_bytes, sqlite3_libversion());
    return 0;
}
