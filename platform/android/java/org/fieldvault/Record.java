package org.fieldvault;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * A copy of one customer, contact or visit: its id, table, and field values
 * as text (numbers such as a visit's lat/lon as their decimal text).  An
 * immutable snapshot: change a record with {@link Vault#update}.  A field
 * the user's role may not read is {@link #isRedacted redacted}: it has no
 * value here, never an empty one.
 */
public final class Record {
    private final String table, id, due;
    private final Map<String, String> fields;
    private final Set<String> redacted;

    Record(String table, String id, String due, String[] names, String[] values, boolean[] red) {
        this.table = table;
        this.id = id;
        this.due = due;
        Map<String, String> f = new LinkedHashMap<>();
        Set<String> r = new LinkedHashSet<>();
        for (int i = 0; i < names.length; i++) {
            if (red[i]) r.add(names[i]);
            else if (values[i] != null) f.put(names[i], values[i]);
        }
        this.fields = Collections.unmodifiableMap(f);
        this.redacted = Collections.unmodifiableSet(r);
    }

    public String table() { return table; }
    public String id() { return id; }
    /** For records from {@link Vault#listDue}: the computed due date (YYYY-MM-DD), else null. */
    public String due() { return due; }
    /** The field's value, or null when empty or redacted. */
    public String get(String field) { return fields.get(field); }
    /** Every non-empty, readable field, in catalogue order. */
    public Map<String, String> fields() { return fields; }
    public boolean isRedacted(String field) { return redacted.contains(field); }

    @Override
    public String toString() {
        return table + " " + id + " " + fields;
    }
}
