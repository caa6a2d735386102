/*
 * validate.c - see validate.h.  The same rules as a local write
 * (records.c, validate_text), on the shipped catalogue.
 */
#include "validate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

fv_status fv__change_validate_shipped(const fv__change *c, char *err, size_t errcap)
{
#define BAD(...) (snprintf(err, errcap, __VA_ARGS__), FV_EINVAL)
    if (!fv__shipped_table(c->table)) return BAD("no table '%s'", c->table);
    if (strcmp(c->field, FV_FIELD_DELETED) == 0) {
        if (c->kind != FV__VAL_REAL || (c->real != 0.0 && c->real != 1.0))
            return BAD("%s._deleted must be 0 or 1", c->table);
        return FV_OK;
    }
    fv__field f;
    if (!fv__shipped_field(c->table, c->field, &f))
        return BAD("%s has no field '%s'", c->table, c->field);
    switch (c->kind) {
    case FV__VAL_NULL:
        return f.required ? BAD("%s.%s is required: it cannot be cleared", c->table, f.name) : FV_OK;
    case FV__VAL_REAL:
        if (f.type != FV_TYPE_REAL) return BAD("%s.%s holds text, not a number", c->table, f.name);
        return isfinite(c->real) ? FV_OK : BAD("%s.%s must be finite", c->table, f.name);
    case FV__VAL_SEALED:
        if (f.cls == FV_CLASS_PUBLIC)
            return BAD("%s.%s is public: it is never sealed", c->table, f.name);
        return c->len <= FV_SEALED_MAX ? FV_OK : BAD("%s.%s: sealed value too long", c->table, f.name);
    case FV__VAL_TEXT:
        break;
    default:
        return BAD("%s.%s: unknown value kind", c->table, f.name);
    }
    const char *v = (const char *)c->data;
    size_t len = strlen(v);
    if (len != c->len) return BAD("%s.%s contains a NUL byte", c->table, f.name);
    if (!fv__utf8_valid(v, len)) return BAD("%s.%s is not valid UTF-8", c->table, f.name);
    char norm[32];
    unsigned char id[16];
    switch (f.type) {
    case FV_TYPE_TEXT:
        return len <= f.max_len ? FV_OK
                                : BAD("%s.%s is %zu bytes; the limit is %zu", c->table, f.name, len,
                                      f.max_len);
    case FV_TYPE_ENUM:
        return fv__enum_has(f.enum_values, v) ? FV_OK
                                          : BAD("%s.%s must be one of %s", c->table, f.name,
                                                f.enum_values);
    case FV_TYPE_DATE:
        return fv__date_valid(v) ? FV_OK : BAD("%s.%s must be a date YYYY-MM-DD", c->table, f.name);
    case FV_TYPE_TIME:
        return fv__time_normalise(v, norm) ? FV_OK
                                           : BAD("%s.%s must be an ISO 8601 time", c->table, f.name);
    case FV_TYPE_REF:
        return fv__uuid_parse(v, id) ? FV_OK : BAD("%s.%s must be a record id", c->table, f.name);
    case FV_TYPE_REAL:
        return BAD("%s.%s holds a number, not text", c->table, f.name);
    }
    return BAD("%s.%s has an unknown type", c->table, f.name);
#undef BAD
}
