package org.fieldvault;

/** What an {@link HttpTransport} received: status, body, and the server's
 *  X-FV-Server-Time header (milliseconds; 0 if absent). */
public final class HttpResponse {
    final int status;
    final byte[] body;
    final long serverTimeMs;

    public HttpResponse(int status, byte[] body, long serverTimeMs) {
        this.status = status;
        this.body = body != null ? body : new byte[0];
        this.serverTimeMs = serverTimeMs;
    }
}
