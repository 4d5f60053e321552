import Foundation

/// Parses the config's duration syntax: a whole number and a unit, `ms`, `s`, `m`, `h` or `d`
/// (`250ms`, `5s`, `20m`, `4h`, `1d`). `0` alone means zero.
public enum ConfigDuration {
    /// The duration, or nil when the text is not one.
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "0" { return .zero }
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let value = Int64(digits) else { return nil }
        switch trimmed.dropFirst(digits.count) {
        case "ms": return .milliseconds(value)
        case "s": return .seconds(value)
        case "m": return .seconds(value * 60)
        case "h": return .seconds(value * 3_600)
        case "d": return .seconds(value * 86_400)
        default: return nil
        }
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
/// 1000) or `KiB`, `MiB`, `GiB` (powers of 1024).
public enum ConfigByteSize {
    /// The size in bytes, or nil when the text is not one.
    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let value = Int(digits) else { return nil }
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
        default: return nil
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
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
