// Example.swift - fieldvault from Swift through module.modulemap: open a
// store whose key is wrapped by the Keychain, record a customer and a visit,
// list visits, sync.  Usage sketch, not compiled here (no Apple toolchain on
// the build machines).
import FieldVault
import Foundation

enum VaultError: Error {
    case failed(status: fv_status, message: String)
}

/// One open store.  A handle is used by one thread at a time (fieldvault.h):
/// keep it on one actor.
actor Vault {
    private var db: OpaquePointer?
    private var keychain = fv_keychain()

    init(path: String, bundleID: String) throws {
        withUnsafeMutableBytes(of: &keychain.service) { _ = strlcpy($0.baseAddress!, bundleID, $0.count) }
        withUnsafeMutableBytes(of: &keychain.account) { _ = strlcpy($0.baseAddress!, "fieldvault:main", $0.count) }
        var ks = fv_keystore()
        guard fv_keychain_keystore(&keychain, &ks) == FV_OK else {
            throw VaultError.failed(status: FV_EINVAL, message: "keychain names")
        }
        var cfg = fv_open_config()
        cfg.size = MemoryLayout<fv_open_config>.size
        cfg.flags = FV_OPEN_CREATE
        let st = path.withCString { p -> fv_status in
            cfg.path = p
            return withUnsafePointer(to: &ks) { ksp in
                cfg.keystore = ksp
                return fv_open(&db, &cfg)
            }
        }
        if st != FV_OK {
            let msg = String(cString: fv_errmsg(db))
            fv_close(db)
            db = nil
            throw VaultError.failed(status: st, message: msg)
        }
    }

    deinit { fv_close(db) }

    private func check(_ st: fv_status) throws {
        if st != FV_OK { throw VaultError.failed(status: st, message: String(cString: fv_errmsg(db))) }
    }

    /// Insert a record of table with text fields; returns its id.
    func insert(_ table: String, _ fields: [String: String]) throws -> String {
        var rec: OpaquePointer?
        try check(fv_record_new(db, table, &rec))
        defer { fv_record_free(rec) }
        for (k, v) in fields { try check(fv_record_set_text(rec, k, v)) }
        try check(fv_insert(db, rec))
        return String(cString: fv_record_id(rec))
    }

    func visits(of customer: String) throws -> [String] {
        var list: OpaquePointer?
        try check(fv_list_visits(db, customer, &list))
        defer { fv_list_free(list) }
        var out: [String] = []
        var rec: OpaquePointer?
        while fv_list_next(list, &rec) == FV_OK, let r = rec {
            var summary: UnsafePointer<CChar>?
            if fv_record_get_text(r, "summary", &summary) == FV_OK, let s = summary {
                out.append(String(cString: s))
            }
        }
        return out
    }

    /// Sync in a background window (BGProcessingTask): at most 25 s.
    func sync() throws -> fv_sync_result {
        var cfg = fv_sync_config()
        cfg.size = MemoryLayout<fv_sync_config>.size
        cfg.max_ms = 25_000
        var res = fv_sync_result()
        res.size = MemoryLayout<fv_sync_result>.size
        try check(fv_sync(db, &cfg, &res))
        return res
    }
}

// let v = try Vault(path: docs.appendingPathComponent("visits.fv").path, bundleID: "com.example.sales")
// let c = try await v.insert("customer", ["name": "Acme Foods", "grade": "A"])
// _ = try await v.insert("visit", ["customer_id": c, "method": "visit", "summary": "Trial of line 3"])
// print(try await v.visits(of: c)); print(try await v.sync())
