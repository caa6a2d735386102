package org.fieldvault;

/**
 * A failed fieldvault call: {@link #status()} is the library's status code,
 * the message its explanation (fv_errmsg: "wrong passphrase or key", "page
 * 17 failed authentication", "role service may not write customer.budget").
 * Never carries a key or a protected value.
 */
public class VaultException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** fieldvault.h's fv_status, value for value (codes are only appended). */
    public enum Status {
        OK, INVALID, WRONG_KEY, CORRUPT, ACCESS_DENIED, PROTOCOL, NETWORK, NO_MEMORY, BUSY,
        NOT_FOUND, IO, EXISTS, MISUSE, INTERNAL, UNKNOWN;

        static Status of(int code) {
            Status[] all = values();
            return code >= 0 && code < all.length - 1 ? all[code] : UNKNOWN;
        }
    }

    private final int code;

    public VaultException(int code, String message) {
        super(message);
        this.code = code;
    }

    /** The status (UNKNOWN for a code newer than this binding). */
    public Status status() {
        return Status.of(code);
    }

    /** The raw fv_status value. */
    public int code() {
        return code;
    }

    @Override
    public String toString() {
        return "VaultException(" + status() + "): " + getMessage();
    }
}
