package org.fieldvault;

/** Options of one {@link Vault#sync}; every field has a default (0/null). */
public final class SyncOptions {
    /** The server URL; null = the one given at enrolment. */
    public String server;
    /** Time box in milliseconds (a background job's window); 0 = none. */
    public long maxMs;
    /** Push batch size; 0 = 500. */
    public int batchChanges;
    /** Per-request timeout; 0 = 30000 ms. */
    public long requestTimeoutMs;
    /** Attempts per request on network errors and 5xx; 0 = 4. */
    public int maxAttempts;
    /** The app's HTTP stack; null = the library's (libcurl). */
    public HttpTransport http;

    public SyncOptions server(String s) { server = s; return this; }
    public SyncOptions maxMs(long ms) { maxMs = ms; return this; }
    public SyncOptions batchChanges(int n) { batchChanges = n; return this; }
    public SyncOptions requestTimeoutMs(long ms) { requestTimeoutMs = ms; return this; }
    public SyncOptions maxAttempts(int n) { maxAttempts = n; return this; }
    public SyncOptions http(HttpTransport t) { http = t; return this; }
}
