public import HTTPTypes

/// What a provider's rate-limit headers say: the current IETF form
/// (`RateLimit: "default";r=50;t=30` and `RateLimit-Policy: "default";q=100;w=60`), the
/// older draft (`RateLimit-Limit`, `-Remaining`, `-Reset`) and `X-RateLimit-*`.
public struct RateLimitHeaders: Sendable, Hashable {
    /// The quota, if stated.
    public var limit: Int?
    /// Requests left in the window, if stated.
    public var remaining: Int?
    /// Time until the quota resets, if stated.
    public var resetAfter: Duration?

    /// Reads whichever of the forms are present; the current form wins.
    public init(_ headers: HTTPFields) {
        if let value = headers[HTTPField.Name("RateLimit")!] {
            let parameters = Self.parameters(value)
            remaining = parameters["r"]
            resetAfter = parameters["t"].map { .seconds($0) }
        }
        if let policy = headers[HTTPField.Name("RateLimit-Policy")!] {
            limit = Self.parameters(policy)["q"]
        }
        for prefix in ["RateLimit-", "X-RateLimit-"] {
            if limit == nil, let value = headers[HTTPField.Name(prefix + "Limit")!] {
                limit = Int(Self.firstNumber(value))
            }
            if remaining == nil, let value = headers[HTTPField.Name(prefix + "Remaining")!] {
                remaining = Int(Self.firstNumber(value))
            }
            if resetAfter == nil, let value = headers[HTTPField.Name(prefix + "Reset")!],
                let seconds = Int64(Self.firstNumber(value))
            {
                // X-RateLimit-Reset is sometimes a Unix time: treat huge values as such.
                resetAfter = seconds > 1_000_000_000 ? nil : .seconds(seconds)
            }
        }
    }

    /// `;key=value` integer parameters of the first list member of a structured field.
    static func parameters(_ value: String) -> [String: Int] {
        let member = value.split(separator: ",").first ?? ""
        var result: [String: Int] = [:]
        for part in member.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, let number = Int(pair[1].trimmingSpaces) else { continue }
            result[String(pair[0].trimmingSpaces)] = number
        }
        return result
    }

    static func firstNumber(_ value: String) -> Substring {
        value.split(separator: ",").first?.trimmingSpaces ?? ""
    }
}
