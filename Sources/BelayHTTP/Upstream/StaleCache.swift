import Foundation
import HTTPTypes
import NIOCore
import Synchronization

/// The last good GET answers of one upstream, served with `Belay-Degraded` while it fails.
///
/// Keys name the consumer as well as the path and query (see ``UpstreamClient``), so one
/// consumer's answer is never served to another; answers that set cookies or are marked
/// `private` or `no-store` are never kept.
///
/// Bounded by entry count and total size; the least recently stored entries go first.
final class StaleCache<C: Clock>: Sendable where C.Duration == Duration {
    struct Entry: Sendable {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: ByteBuffer
        var storedAt: C.Instant
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var order: [String] = []
        var bytes = 0
    }

    let maxAge: Duration
    let maxEntryBytes: Int
    private let maxEntries: Int
    private let maxTotalBytes: Int
    private let clock: C
    private let state = Mutex(State())

    init(
        maxAge: Duration,
        clock: C,
        maxEntries: Int = 1_000,
        maxEntryBytes: Int = 1 << 20,
        maxTotalBytes: Int = 64 << 20
    ) {
        self.maxAge = maxAge
        self.clock = clock
        self.maxEntries = maxEntries
        self.maxEntryBytes = maxEntryBytes
        self.maxTotalBytes = maxTotalBytes
    }

    /// Whether an answer with these headers may be kept: not one that sets a cookie or that
    /// `Cache-Control` marks `private` or `no-store`.
    static func mayStore(_ headers: HTTPFields) -> Bool {
        if headers[.setCookie] != nil { return false }
        for value in headers[values: .cacheControl] {
            for directive in value.split(separator: ",") {
                let name = directive.split(separator: "=", maxSplits: 1).first ?? ""
                switch name.trimmingCharacters(in: .whitespaces).lowercased() {
                case "private", "no-store": return false
                default: continue
                }
            }
        }
        return true
    }

    func store(key: String, status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer) {
        guard body.readableBytes <= maxEntryBytes, Self.mayStore(headers) else { return }
        let entry = Entry(status: status, headers: headers, body: body, storedAt: clock.now)
        state.withLock { state in
            if let old = state.entries.updateValue(entry, forKey: key) {
                state.bytes -= old.body.readableBytes
                state.order.removeAll { $0 == key }
            }
            state.order.append(key)
            state.bytes += body.readableBytes
            while state.entries.count > maxEntries || state.bytes > maxTotalBytes, !state.order.isEmpty {
                let evicted = state.order.removeFirst()
                if let gone = state.entries.removeValue(forKey: evicted) { state.bytes -= gone.body.readableBytes }
            }
        }
    }

    /// The entry for `key` with its age, if it is not older than `maxAge`.
    func lookup(key: String) -> (entry: Entry, age: Duration)? {
        let now = clock.now
        return state.withLock { state in
            guard let entry = state.entries[key] else { return nil }
            let age = entry.storedAt.duration(to: now)
            return age <= maxAge ? (entry, age) : nil
        }
    }
}
