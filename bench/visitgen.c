/*
 * visitgen.c - deterministic visit data and UUIDv7 ids for the benchmarks
 * (see visitgen.h).  Text is built from small word lists with a splitmix64
 * stream keyed by (seed, visit number), so visit i is the same in every
 * process and peer without storing the data set.
 */
#define _GNU_SOURCE
#include "visitgen.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned pick(uint64_t *s, unsigned n)
{
    return (unsigned)(mix(s) % n);
}

static const char *const words[] = {
    "line",     "trial",    "quote",    "plant",    "manager",  "pricing",  "delivery",
    "contract", "volume",   "sample",   "packaging", "schedule", "budget",  "approval",
    "install",  "service",  "warranty", "discount", "order",    "quarter",  "renewal",
    "training", "spare",    "parts",    "capacity", "shift",    "quality",  "audit",
    "forklift", "conveyor", "pallet",   "demo",     "tender",   "competitor", "feedback",
    "interest", "follow",   "up",       "next",     "week",     "decision", "board",
    "purchasing", "logistics", "on",    "site",     "the",      "and",      "for",
    "with",     "agreed",   "asked",    "about",    "new",      "current",  "supplier",
    "they",     "we",       "will",     "send",     "check",    "call",     "visit",
    "monthly",  "report",   "costs",    "savings",  "safety",   "upgrade",  "maintenance"};
#define NWORDS (sizeof words / sizeof words[0])

static const char *const people[] = {"Li Wei",     "Ana Costa",  "Ben Okafor", "Lea Martin",
                                     "Omar Haddad", "Mia Novak", "Raj Patel",  "Sofia Rossi",
                                     "Tom Becker", "Yuki Sato"};
#define NPEOPLE (sizeof people / sizeof people[0])

static const char *const methods[] = {"visit", "visit", "visit", "phone", "email", "video", "other"};

/* nwords random words, as a sentence, into out (cap bytes). */
static void sentence(uint64_t *s, unsigned nwords, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (unsigned w = 0; w < nwords; w++) {
        const char *word = words[pick(s, NWORDS)];
        size_t len = strlen(word);
        if (n + len + 4 >= cap) break;
        if (w > 0) {
            if (pick(s, 9) == 0) out[n++] = ',';
            out[n++] = ' ';
        }
        memcpy(out + n, word, len);
        if (w == 0) out[n] = (char)(out[n] - 'a' + 'A');
        n += len;
    }
    if (n + 1 < cap) out[n++] = '.';
    out[n] = '\0';
}

void vg_visit_make(unsigned seed, uint64_t i, vg_visit *v)
{
    uint64_t s = ((uint64_t)seed << 40) ^ (i * 0x2545f4914f6cdd1dull) ^ 0x5eedull;
    (void)mix(&s);
    unsigned day = 1 + pick(&s, 28), hour = 7 + pick(&s, 11), minute = 5 * pick(&s, 12);
    snprintf(v->at, sizeof v->at, "2026-03-%02uT%02u:%02u:00Z", day, hour, minute);
    v->method = methods[pick(&s, sizeof methods / sizeof methods[0])];
    unsigned np = 1 + pick(&s, 3);
    size_t n = 0;
    v->participants[0] = '\0';
    for (unsigned k = 0; k < np; k++)
        n += (size_t)snprintf(v->participants + n, sizeof v->participants - n, "%s%s",
                              k ? ", " : "", people[pick(&s, NPEOPLE)]);
    sentence(&s, 20 + pick(&s, 50), v->summary, sizeof v->summary);
    sentence(&s, 8 + pick(&s, 30), v->feedback, sizeof v->feedback);
    sentence(&s, 4 + pick(&s, 16), v->agreement, sizeof v->agreement);
    sentence(&s, 3 + pick(&s, 9), v->next_action, sizeof v->next_action);
    snprintf(v->next_action_owner, sizeof v->next_action_owner, "%s",
             pick(&s, 3) == 0 ? "me" : people[pick(&s, NPEOPLE)]);
    snprintf(v->next_action_due, sizeof v->next_action_due, "2026-04-%02u", 1 + pick(&s, 28));
    v->lat = 30.0 + (double)pick(&s, 2000000) / 100000.0;
    v->lon = 100.0 + (double)pick(&s, 2000000) / 100000.0;
}

size_t vg_visit_bytes(const vg_visit *v)
{
    return strlen(v->at) + strlen(v->method) + strlen(v->participants) + strlen(v->summary) +
           strlen(v->feedback) + strlen(v->agreement) + strlen(v->next_action) +
           strlen(v->next_action_owner) + strlen(v->next_action_due) + 16;
}

void vg_customer_name(unsigned seed, uint64_t i, char *out, size_t cap)
{
    uint64_t s = ((uint64_t)seed << 32) ^ i ^ 0xc0ffeeull;
    static const char *const kinds[] = {"Foods", "Metals", "Plastics", "Logistics", "Textiles",
                                        "Motors", "Pharma", "Paper"};
    snprintf(out, cap, "%s %s %llu", people[pick(&s, NPEOPLE)], kinds[pick(&s, 8)],
             (unsigned long long)i);
}

int64_t vg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vg_uuid7(vg_uuid *g, unsigned char out[16])
{
    int64_t ms = vg_now_ms();
    if (ms <= g->last_ms) {
        ms = g->last_ms;
        if (++g->seq > 0x0fff) {
            ms++;
            g->seq = 0;
        }
    } else {
        g->seq = 0;
    }
    g->last_ms = ms;
    for (int i = 0; i < 6; i++) out[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    if (getrandom(out + 6, 10, 0) != 10) memset(out + 6, 0x5a, 10);
    out[6] = (unsigned char)(0x70 | ((g->seq >> 8) & 0x0f));
    out[7] = (unsigned char)(g->seq & 0xff);
    out[8] = (unsigned char)(0x80 | (out[8] & 0x3f));
}

void vg_uuid_text(const unsigned char in[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[in[i] >> 4];
        out[o++] = hex[in[i] & 15];
    }
    out[o] = '\0';
}
