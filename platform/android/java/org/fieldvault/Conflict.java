package org.fieldvault;

/**
 * Two concurrent edits of one field: both values kept.  "mine" is the value
 * this store held when the conflict was found, "theirs" the one that
 * arrived; one of them is current ({@link #winnerIsMine}).  Settle it with
 * {@link Vault#resolveConflict}.
 */
public final class Conflict {
    public final String id, table, rowId, field;
    /** Values (null = empty). */
    public final String mine, theirs;
    public final boolean winnerIsMine, resolved;

    Conflict(String id, String table, String rowId, String field, String mine, String theirs,
             boolean winnerIsMine, boolean resolved) {
        this.id = id;
        this.table = table;
        this.rowId = rowId;
        this.field = field;
        this.mine = mine;
        this.theirs = theirs;
        this.winnerIsMine = winnerIsMine;
        this.resolved = resolved;
    }

    @Override
    public String toString() {
        return table + "." + field + " of " + rowId + ": mine=" + mine + " theirs=" + theirs
                + (resolved ? " (resolved)" : "");
    }
}
