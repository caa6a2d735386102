package org.fieldvault;

/** What one {@link Vault#sync} did (fieldvault.h's fv_sync_result). */
public final class SyncResult {
    /** Changes pushed, pulled, and new conflict-log entries. */
    public final long pushed, pulled, conflicts;
    /** Nothing left to push or pull. */
    public final boolean drained;
    /** Stopped by the time box or {@link Vault#cancelSync}; the next sync resumes. */
    public final boolean stopped;
    /** The device was revoked: the store is erased; close the vault. */
    public final boolean wiped;

    SyncResult(long pushed, long pulled, long conflicts, boolean drained, boolean stopped,
               boolean wiped) {
        this.pushed = pushed;
        this.pulled = pulled;
        this.conflicts = conflicts;
        this.drained = drained;
        this.stopped = stopped;
        this.wiped = wiped;
    }

    @Override
    public String toString() {
        return "pushed " + pushed + ", pulled " + pulled + ", conflicts " + conflicts
                + (drained ? ", drained" : "") + (stopped ? ", stopped" : "") + (wiped ? ", wiped" : "");
    }
}
