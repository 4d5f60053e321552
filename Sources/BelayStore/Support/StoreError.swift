/// A store operation failed: the database could not be opened, migrated, read or written.
///
/// Switch on ``code``; only `code.description` belongs in metric labels.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure. New codes may be added without breaking users.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case open
            case migration
            case io
            case corrupt
            case refused
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The database could not be opened or created.
        public static let open = Code(.open)
        /// A schema migration failed (the database is left at the last good version).
        public static let migration = Code(.migration)
        /// A read or write failed (disk full, I/O error, locked too long).
        public static let io = Code(.io)
        /// A stored row could not be read back (unknown status, bad JSON).
        public static let corrupt = Code(.corrupt)
        /// The operation was refused because it would mix or lose data: e.g. `belay storage
        /// copy` into a database that holds rows of another instance.
        public static let refused = Code(.refused)

        /// The code as a stable string, e.g. `io`.
        public var description: String { base.rawValue }
    }

    /// What kind of failure.
    public var code: Code
    /// What was being done, without secrets.
    public var message: String
    /// The database's own error, if any.
    public var underlying: (any Error)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        "store \(code): \(message)" + (underlying.map { " (\($0))" } ?? "")
    }
}
