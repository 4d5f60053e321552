import Foundation

/// Parses the config's duration syntax: a whole number and a unit, `ms`, `s`, `m`, `h` or `d`
/// (`250ms`, `5s`, `20m`, `4h`, `1d`). `0` alone means zero. At most ``maximum`` (36500d,
/// about 100 years): longer values are out of range, never wrapped or trapped on.
public enum ConfigDuration {
    /// Why a text is not a duration.
    public enum Invalid: Error, Sendable, Hashable {
        /// Not a whole number and a unit.
        case malformed
        /// A well-formed duration longer than ``ConfigDuration/maximum``.
        case outOfRange
    }

    /// The longest duration accepted: 36500 days.
    public static let maximum: Duration = .seconds(36_500 * 86_400)

    /// The duration, or nil when the text is not one or is out of range.
    public static func parse(_ text: String) -> Duration? {
        try? read(text).get()
    }

    /// The duration, or why the text is not one.
    public static func read(_ text: String) -> Result<Duration, Invalid> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "0" { return .success(.zero) }
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return .failure(.malformed) }
        let unitSeconds: Int64?
        switch trimmed.dropFirst(digits.count) {
        case "ms": unitSeconds = nil
        case "s": unitSeconds = 1
        case "m": unitSeconds = 60
        case "h": unitSeconds = 3_600
        case "d": unitSeconds = 86_400
        default: return .failure(.malformed)
        }
        // More digits than an Int64 holds is out of range too, not malformed.
        guard let value = Int64(digits) else { return .failure(.outOfRange) }
        let duration: Duration
        if let unitSeconds {
            let (seconds, overflow) = value.multipliedReportingOverflow(by: unitSeconds)
            guard !overflow else { return .failure(.outOfRange) }
            duration = .seconds(seconds)
        } else {
            duration = .milliseconds(value)
        }
        return duration <= maximum ? .success(duration) : .failure(.outOfRange)
    }

    /// The duration in the config's syntax, e.g. `1500ms`, `5m`.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 {
            for (unit, size) in [("d", Int64(86_400)), ("h", 3_600), ("m", 60)]
            where seconds != 0 && seconds % size == 0 {
                return "\(seconds / size)\(unit)"
            }
            return "\(seconds)s"
        }
        return "\(seconds * 1_000 + attoseconds / 1_000_000_000_000_000)ms"
    }
}

/// Parses the config's size syntax: bytes, or a number with `KB`, `MB`, `GB` (powers of
/// 1000) or `KiB`, `MiB`, `GiB` (powers of 1024). A size that does not fit in an `Int` is
/// out of range.
public enum ConfigByteSize {
    /// Why a text is not a size.
    public enum Invalid: Error, Sendable, Hashable {
        /// Not a whole number with an optional unit.
        case malformed
        /// A well-formed size too large to hold.
        case outOfRange
    }

    /// The size in bytes, or nil when the text is not one or is out of range.
    public static func parse(_ text: String) -> Int? {
        try? read(text).get()
    }

    /// The size in bytes, or why the text is not one.
    public static func read(_ text: String) -> Result<Int, Invalid> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return .failure(.malformed) }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        let multiplier: Int
        switch unit {
        case "", "B": multiplier = 1
        case "KB": multiplier = 1_000
        case "MB": multiplier = 1_000_000
        case "GB": multiplier = 1_000_000_000
        case "KiB": multiplier = 1 << 10
        case "MiB": multiplier = 1 << 20
        case "GiB": multiplier = 1 << 30
        default: return .failure(.malformed)
        }
        guard let value = Int(digits) else { return .failure(.outOfRange) }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? .failure(.outOfRange) : .success(bytes)
    }
}

/// A value that must never appear in logs, metrics, audit records or error bodies.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself. Read it only to use it.
    public let value: String

    /// Wraps `value`.
    public init(_ value: String) {
        self.value = value
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
