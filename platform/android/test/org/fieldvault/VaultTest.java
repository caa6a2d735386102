package org.fieldvault;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The Java API on the host JVM against the host-built JNI library, and a
 * real fvd on loopback: open with a passphrase or a key wrapper, records
 * and lists, exceptions with the library's messages, sync through the
 * default transport and a Java one, status, conflicts, the cleaner, and
 * threads.  Plain Java (no test framework): one method per case, a summary
 * line "N passed, M failed", exit status 1 on any failure.
 *
 * System properties: org.fieldvault.library (the JNI library),
 * org.fieldvault.fvd (the fvd binary; the sync cases need it),
 * org.fieldvault.tmp (a scratch directory).
 */
public final class VaultTest {
    private static int passed, failed;
    private static Path tmp;
    private static String fvd;

    // ---- a tiny harness ----

    interface Case { void run() throws Exception; }

    private static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    private static void eq(Object want, Object got, String what) {
        if (want == null ? got != null : !want.equals(got))
            throw new AssertionError(what + ": want " + want + ", got " + got);
    }

    private static VaultException expect(VaultException.Status st, Case c) throws Exception {
        try {
            c.run();
        } catch (VaultException e) {
            eq(st, e.status(), "status of " + e);
            check(e.getMessage() != null && !e.getMessage().isEmpty(), "a message");
            return e;
        }
        throw new AssertionError("no VaultException (" + st + ")");
    }

    private static void run(String name, Case c) {
        try {
            c.run();
            passed++;
            System.out.println("[ OK ] " + name);
        } catch (Throwable t) {
            failed++;
            System.out.println("[FAIL] " + name + ": " + t);
            t.printStackTrace(System.out);
        }
    }

    private static int n;

    private static String path(String tag) {
        return tmp.resolve(tag + "-" + (++n) + ".fv").toString();
    }

    private static final char[] PW = "correct horse".toCharArray();

    private static Vault create(String p, String user) {
        return Vault.open(p, PW, new Vault.Options().flags(Vault.CREATE).user(user).kdf(8192, 1));
    }

    private static Map<String, String> m(String... kv) {
        Map<String, String> r = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) r.put(kv[i], kv[i + 1]);
        return r;
    }

    // ---- a key wrapper as an app builds one (AES-GCM; on Android the key
    //      would live in the AndroidKeyStore) ----

    static final class AesWrapper implements KeyWrapper {
        final byte[] kek = new byte[32];
        final AtomicInteger wraps = new AtomicInteger(), unwraps = new AtomicInteger();

        AesWrapper() { new SecureRandom().nextBytes(kek); }

        @Override
        public byte[] wrap(byte[] key) throws Exception {
            wraps.incrementAndGet();
            byte[] iv = new byte[12];
            new SecureRandom().nextBytes(iv);
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(kek, "AES"), new GCMParameterSpec(128, iv));
            byte[] ct = c.doFinal(key);
            byte[] out = new byte[12 + ct.length];
            System.arraycopy(iv, 0, out, 0, 12);
            System.arraycopy(ct, 0, out, 12, ct.length);
            return out;
        }

        @Override
        public byte[] unwrap(byte[] w) throws Exception {
            unwraps.incrementAndGet();
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(kek, "AES"), new GCMParameterSpec(128, w, 0, 12));
            return c.doFinal(w, 12, w.length - 12);
        }
    }

    // ---- a Java HTTP transport (what OkHttp would be in an app) ----

    static class UrlTransport implements HttpTransport {
        final AtomicInteger requests = new AtomicInteger();
        volatile int failFirst;

        @Override
        public HttpResponse post(String url, String[] headers, byte[] body, long timeoutMs,
                                 long maxResponse) throws IOException {
            requests.incrementAndGet();
            if (failFirst > 0) {
                failFirst--;
                throw new IOException("injected: no route to host");
            }
            HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
            c.setRequestMethod("POST");
            c.setDoOutput(true);
            c.setConnectTimeout((int) timeoutMs);
            c.setReadTimeout((int) timeoutMs);
            for (int i = 0; i + 1 < headers.length; i += 2) c.setRequestProperty(headers[i], headers[i + 1]);
            c.setFixedLengthStreamingMode(body.length);
            try (OutputStream o = c.getOutputStream()) {
                o.write(body);
            }
            int status = c.getResponseCode();
            InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            if (in != null) {
                try (InputStream i = in) {
                    byte[] buf = new byte[16384];
                    int k;
                    while ((k = i.read(buf)) > 0) {
                        b.write(buf, 0, k);
                        if (b.size() > maxResponse) throw new IOException("response too large");
                    }
                }
            }
            String t = c.getHeaderField("X-FV-Server-Time");
            return new HttpResponse(status, b.toByteArray(), t != null ? Long.parseLong(t.trim()) : 0);
        }
    }

    // ---- fvd ----

    static final class Fvd implements AutoCloseable {
        final Process p;
        final String data, url;

        Fvd() throws IOException {
            data = tmp.resolve("fvd-" + (++n)).toString();
            p = new ProcessBuilder(fvd, "serve", "--data", data, "--listen", "127.0.0.1:0")
                    .redirectErrorStream(true).start();
            BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            String line, u = null;
            while ((line = r.readLine()) != null) {
                int at = line.indexOf("listening on 127.0.0.1:");
                if (at >= 0) {
                    String port = line.substring(at + "listening on 127.0.0.1:".length()).split("[^0-9]")[0];
                    u = "http://127.0.0.1:" + port;
                    break;
                }
            }
            if (u == null) throw new IOException("fvd did not start");
            url = u;
            Thread drain = new Thread(() -> {
                try { while (r.readLine() != null) { } } catch (IOException e) { }
            });
            drain.setDaemon(true);
            drain.start();
        }

        String addUser(String name, String role) throws Exception {
            Process a = new ProcessBuilder(fvd, "admin", "--data", data, "add-user", name, "--role", role,
                                           "--team", "north").redirectError(ProcessBuilder.Redirect.INHERIT).start();
            String out = new String(a.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            eq(0, a.waitFor(), "fvd admin add-user");
            return out;
        }

        @Override
        public void close() {
            p.destroy();
            try {
                p.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    // ---- the cases ----

    static void recordsAndLists() {
        try (Vault v = create(path("rec"), "ana")) {
            String acme = v.addCustomer(m("name", "Acme Foods", "grade", "A", "stage", "intent",
                                          "budget", "120k EUR"));
            String beta = v.addCustomer(m("name", "Beta Steel", "grade", "S", "stage", "lead"));
            eq(36, acme.length(), "UUIDv7 text");
            String visit = v.addVisit(acme, m("method", "visit", "summary", "Trial of line 3",
                                              "lat", "48.8566", "lon", "2.3522"));
            v.addVisit(acme, m("method", "phone", "summary", "Quote follow-up"));
            v.insert("contact", m("customer_id", acme, "name", "Li Wei", "phone", "+86 138 0000 0000"));

            List<Record> all = v.listCustomers();
            eq(2, all.size(), "customers");
            eq("Acme Foods", all.get(0).get("name"), "by name");
            eq(1, v.listCustomers("lead", null, null).size(), "filter by stage");
            eq(beta, v.listCustomers(null, "S", null).get(0).id(), "filter by grade");
            eq(2, v.listVisits(acme).size(), "visits of acme");
            eq(0, v.listVisits(beta).size(), "visits of beta");
            eq(1, v.listContacts(acme).size(), "contacts");

            /* text outside the BMP (an emoji, a rare CJK ideograph) crosses
             * JNI as standard UTF-8 and comes back as the same String */
            String rich = "Signed \uD83D\uDE80 at \u5DE5\u5382 \uD840\uDC0B, caf\u00E9";
            String emo = v.addVisit(acme, m("method", "visit", "summary", rich));
            eq(rich, v.get("visit", emo).get("summary"), "supplementary characters round trip");
            v.delete("visit", emo);
            try {
                v.addVisit(acme, m("method", "visit", "summary", "half a pair \uD83D"));
                check(false, "an unpaired surrogate is refused");
            } catch (VaultException e) {
                check(e.getMessage() != null, "an unpaired surrogate is refused: " + e.getMessage());
            }

            Record r = v.get("visit", visit);
            eq("Trial of line 3", r.get("summary"), "summary");
            eq(48.8566, Double.parseDouble(r.get("lat")), "lat round trip");
            eq("visit", r.table(), "table");

            v.updateCustomer(acme, m("stage", "negotiation", "budget", null));
            Record a = v.get("customer", acme);
            eq("negotiation", a.get("stage"), "updated");
            eq(null, a.get("budget"), "cleared");
            eq("Acme Foods", a.get("name"), "untouched");
            v.updateVisit(visit, m("agreement", "Quote by Friday"));
            eq("Quote by Friday", v.get("visit", visit).get("agreement"), "visit updated");

            v.delete("customer", beta);
            eq(null, v.get("customer", beta), "deleted");
            eq(1, v.listCustomers().size(), "hidden from lists");
            v.restore("customer", beta);
            check(v.get("customer", beta) != null, "restored");

            List<Record> due = v.listDue("2100-01-01");
            eq(2, due.size(), "both due by 2100");
            check(due.get(0).due() != null, "due date computed");
        }
    }

    static void errorsCarryMessages() throws Exception {
        String p = path("err");
        try (Vault v = create(p, "ana")) {
            VaultException e = expect(VaultException.Status.INVALID,
                                      () -> v.addCustomer(m("name", "X", "grade", "Z")));
            check(e.getMessage().contains("grade"), "message names the field: " + e.getMessage());
            expect(VaultException.Status.INVALID, () -> v.addCustomer(m("no_such_field", "x")));
            expect(VaultException.Status.INVALID, () -> v.addVisit(
                    "x", m("method", "visit", "lat", "north-ish")));
            expect(VaultException.Status.NOT_FOUND, () -> v.update("customer",
                    "0190f0e0-0000-7000-8000-000000000000", m("stage", "won")));
            // the store is held: a second handle is refused
            expect(VaultException.Status.BUSY, () -> create(p, "ana").close());
        }
        VaultException e = expect(VaultException.Status.WRONG_KEY,
                () -> Vault.open(p, "wrong".toCharArray(), 0).close());
        check(!e.getMessage().contains("wrong".repeat(2)), "no secret in the message");
        Vault v = Vault.open(p, PW, 0);
        v.close();
        v.close(); // idempotent
        check(v.isClosed(), "closed");
        expect(VaultException.Status.MISUSE, () -> v.listCustomers());
        v.cancelSync(); // harmless after close
    }

    static void keyWrapper() throws Exception {
        String p = path("ks");
        AesWrapper w = new AesWrapper();
        String id;
        try (Vault v = Vault.open(p, w, Vault.CREATE)) {
            id = v.addCustomer(m("name", "Keystore Ltd"));
        }
        eq(1, w.wraps.get(), "wrapped once at creation");
        try (Vault v = Vault.open(p, w, 0)) {
            eq("Keystore Ltd", v.get("customer", id).get("name"), "reopened");
        }
        check(w.unwraps.get() >= 1, "unwrapped on open");
        VaultException e = expect(VaultException.Status.WRONG_KEY,
                                  () -> Vault.open(p, new AesWrapper(), 0).close());
        check(e.getMessage().contains("key wrapper"), "the wrapper's failure is named: " + e.getMessage());
        expect(VaultException.Status.WRONG_KEY, () -> Vault.open(p, new KeyWrapper() {
            public byte[] wrap(byte[] k) { return k; }
            public byte[] unwrap(byte[] k) { throw new IllegalStateException("keystore locked"); }
        }, 0).close());
        try (Vault v = Vault.open(p, w, 0)) {
            check(v.get("customer", id) != null, "still opens with the right key");
        }
    }

    static void cleanerFreesForgottenHandles() throws Exception {
        String p = path("gc");
        openAndForget(p);
        // the forgotten vault holds the store until the cleaner frees it
        long deadline = System.currentTimeMillis() + 20000;
        for (;;) {
            System.gc();
            try (Vault v = Vault.open(p, PW, 0)) {
                eq(1, v.listCustomers().size(), "data survived");
                break;
            } catch (VaultException e) {
                if (e.status() != VaultException.Status.BUSY || System.currentTimeMillis() > deadline)
                    throw e;
                Thread.sleep(50);
            }
        }
    }

    private static void openAndForget(String p) {
        Vault v = create(p, "ana");
        v.addCustomer(m("name", "Forgotten"));
        // no close()
    }

    static void threadsShareOneVault() throws Exception {
        try (Vault v = create(path("thr"), "ana")) {
            List<Thread> ts = new ArrayList<>();
            AtomicInteger errors = new AtomicInteger();
            for (int t = 0; t < 4; t++) {
                final int k = t;
                Thread th = new Thread(() -> {
                    try {
                        for (int i = 0; i < 25; i++) {
                            String c = v.addCustomer(m("name", "t" + k + "-" + i));
                            v.addVisit(c, m("method", "visit", "summary", "s"));
                            v.listVisits(c);
                        }
                    } catch (Throwable e) {
                        errors.incrementAndGet();
                        e.printStackTrace(System.out);
                    }
                });
                ts.add(th);
                th.start();
            }
            for (Thread th : ts) th.join();
            eq(0, errors.get(), "errors in threads");
            eq(100, v.listCustomers().size(), "all inserted");
            eq(100, v.listVisits(null).size(), "all visits");
        }
    }

    static void syncConflictsStatus() throws Exception {
        if (fvd == null) throw new AssertionError("org.fieldvault.fvd not set");
        try (Fvd s = new Fvd();
             Vault a = create(path("a"), "ana");
             Vault b = create(path("b"), "ben")) {
            UrlTransport http = new UrlTransport();
            a.enroll(s.url, s.addUser("ana", "lead"), http); // the app's HTTP stack
            b.enroll(s.url, s.addUser("ben", "lead"), null); // the library's (libcurl)
            check(http.requests.get() >= 1, "enrolment went through the Java transport");
            SyncStatus st = a.status();
            check(st.enrolled, "enrolled");
            eq("ana", st.user, "user");
            eq(s.url, st.server, "server");
            eq(32, st.deviceId.length(), "device id");

            String cust = a.addCustomer(m("name", "Shared Co", "stage", "lead"));
            a.addVisit(cust, m("method", "visit", "summary", "first meeting"));
            check(a.status().pendingChanges >= 2, "pending: " + a.status().pendingChanges);
            int before = http.requests.get();
            SyncResult r = a.sync(new SyncOptions().http(http));
            check(r.drained && r.pushed >= 2, "a pushed: " + r);
            check(http.requests.get() > before, "sync went through the Java transport");
            eq(0L, a.status().pendingChanges, "nothing pending");
            check(a.status().lastSyncMs > 0, "last sync");
            r = b.sync(null);
            check(r.drained && r.pulled >= 2, "b pulled: " + r);
            eq("Shared Co", b.get("customer", cust).get("name"), "b has it");
            eq(a.stateHash(), b.stateHash(), "converged");

            // the same field edited on both sides, offline: one winner, a conflict
            a.updateCustomer(cust, m("stage", "intent"));
            b.updateCustomer(cust, m("stage", "negotiation"));
            a.sync(new SyncOptions().http(http));
            b.sync(null);
            a.sync(new SyncOptions().http(http));
            eq(a.stateHash(), b.stateHash(), "converged after the conflict");
            List<Conflict> cs = new ArrayList<>(a.conflicts(false));
            cs.addAll(b.conflicts(false));
            check(!cs.isEmpty(), "a conflict was logged");
            Conflict c = cs.get(0);
            eq("customer", c.table, "conflict table");
            eq("stage", c.field, "conflict field");
            check(("intent".equals(c.mine) && "negotiation".equals(c.theirs))
                  || ("negotiation".equals(c.mine) && "intent".equals(c.theirs)), "both values: " + c);
            Vault owner = a.conflicts(false).isEmpty() ? b : a;
            Conflict oc = owner.conflicts(false).get(0);
            owner.resolveConflict(oc.id, true);
            check(owner.conflicts(false).isEmpty(), "resolved");
            eq(1, owner.conflicts(true).size(), "kept in the log");
            a.sync(new SyncOptions().http(http));
            b.sync(null);
            a.sync(new SyncOptions().http(http));
            eq(a.stateHash(), b.stateHash(), "converged after resolving");
            eq(oc.mine, a.get("customer", cust).get("stage"), "the kept value everywhere");

            // a failing Java transport: retried, then NETWORK with its message
            a.addCustomer(m("name", "Offline Inc"));
            http.failFirst = 1;
            r = a.sync(new SyncOptions().http(http).maxAttempts(3));
            check(r.drained, "retried past one failure");
            a.addCustomer(m("name", "Offline Again"));
            http.failFirst = 100;
            VaultException e = expect(VaultException.Status.NETWORK,
                                      () -> a.sync(new SyncOptions().http(http).maxAttempts(2)));
            check(e.getMessage().contains("no route to host"), "the transport's message: " + e.getMessage());
            http.failFirst = 0;
            check(a.status().pendingChanges >= 1, "outbox kept");
            check(!a.status().lastError.isEmpty(), "last error recorded");
            check(a.sync(new SyncOptions().http(http)).drained, "and then it goes");
        }
    }

    static void cancelFromAnotherThread() throws Exception {
        if (fvd == null) throw new AssertionError("org.fieldvault.fvd not set");
        try (Fvd s = new Fvd(); Vault a = create(path("cancel"), "cy")) {
            UrlTransport slow = new UrlTransport() {
                @Override
                public HttpResponse post(String url, String[] h, byte[] body, long t, long max) throws IOException {
                    try { Thread.sleep(40); } catch (InterruptedException e) { }
                    return super.post(url, h, body, t, max);
                }
            };
            a.enroll(s.url, s.addUser("cy", "rep"), slow);
            for (int i = 0; i < 100; i++) a.addCustomer(m("name", "c" + i));
            int base = slow.requests.get();
            Thread canceller = new Thread(() -> {
                while (slow.requests.get() < base + 2) Thread.onSpinWait();
                a.cancelSync();
            });
            canceller.start();
            SyncResult r = a.sync(new SyncOptions().http(slow).batchChanges(10));
            canceller.join();
            check(r.stopped && !r.drained, "stopped early: " + r);
            check(a.sync(new SyncOptions().batchChanges(0)).drained, "resumed to the end");
            eq(0L, a.status().pendingChanges, "all pushed");
        }
    }

    public static void main(String[] args) throws Exception {
        String t = System.getProperty("org.fieldvault.tmp");
        tmp = t != null ? Files.createDirectories(Path.of(t)) : Files.createTempDirectory("fvjava");
        tmp = Files.createTempDirectory(tmp, "vaulttest");
        fvd = System.getProperty("org.fieldvault.fvd");
        if (fvd != null && (fvd.isEmpty() || !new File(fvd).canExecute())) fvd = null;
        System.out.println("fieldvault " + Vault.version() + " on " + System.getProperty("java.vm.name")
                           + " " + System.getProperty("java.version"));
        run("records and lists", VaultTest::recordsAndLists);
        run("errors carry fv_errmsg", VaultTest::errorsCarryMessages);
        run("key wrapper (platform key store)", VaultTest::keyWrapper);
        run("cleaner frees a forgotten handle", VaultTest::cleanerFreesForgottenHandles);
        run("threads share one vault", VaultTest::threadsShareOneVault);
        run("sync, status, conflicts (Java and libcurl transports)", VaultTest::syncConflictsStatus);
        run("cancelSync from another thread", VaultTest::cancelFromAnotherThread);
        try (Stream<Path> w = Files.walk(tmp)) {
            w.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
