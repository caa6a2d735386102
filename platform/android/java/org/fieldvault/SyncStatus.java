package org.fieldvault;

/** The store's sync state (fieldvault.h's fv_sync_status). */
public final class SyncStatus {
    public final boolean enrolled;
    public final String server, user, role, team, deviceId;
    public final long pendingChanges, pullCursor;
    /** Last sync that drained both ways (ms since the epoch); 0 = never. */
    public final long lastSyncMs;
    /** The last sync's error; empty when it succeeded. */
    public final String lastError;

    SyncStatus(boolean enrolled, String server, String user, String role, String team,
               String deviceId, long pendingChanges, long pullCursor, long lastSyncMs,
               String lastError) {
        this.enrolled = enrolled;
        this.server = server;
        this.user = user;
        this.role = role;
        this.team = team;
        this.deviceId = deviceId;
        this.pendingChanges = pendingChanges;
        this.pullCursor = pullCursor;
        this.lastSyncMs = lastSyncMs;
        this.lastError = lastError;
    }
}
