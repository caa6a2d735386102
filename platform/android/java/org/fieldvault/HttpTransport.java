package org.fieldvault;

/**
 * An app-supplied HTTP stack for enrolment and sync (OkHttp,
 * HttpURLConnection), fieldvault.h's fv_http_post_fn.  Without one the
 * library uses its own libcurl transport.
 *
 * <p>{@code post} performs one POST of {@code body} (protobuf) to the
 * absolute {@code url} with the given headers ({@code headers} holds name,
 * value, name, value...) within {@code timeoutMs}, and returns any HTTP
 * answer, whatever its status.  It must refuse a response body longer than
 * {@code maxResponse} bytes, and throw (an IOException) on a network
 * failure: the library retries with backoff.  Called on the thread that
 * called {@link Vault#sync} or {@link Vault#enroll}.
 */
public interface HttpTransport {
    HttpResponse post(String url, String[] headers, byte[] body, long timeoutMs, long maxResponse)
            throws java.io.IOException;
}
