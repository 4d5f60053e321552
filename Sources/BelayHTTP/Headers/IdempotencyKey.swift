import Foundation

/// The `Idempotency-Key` header (IETF httpapi draft): its value is a Structured Field
/// string, so clients may send it quoted (`"8e03…"`) or bare; both mean the same key.
public enum IdempotencyKey {
    /// The key in a header value: without surrounding spaces, and without the quotes of a
    /// Structured Field string.
    public static func unquote(_ value: String) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard trimmed.count >= 2, trimmed.hasPrefix("\""), trimmed.hasSuffix("\"") else { return trimmed }
        return String(trimmed.dropFirst().dropLast())
    }
}
