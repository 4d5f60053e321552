public import Foundation

/// How the management API writes and reads its JSON: keys sorted, slashes as they are, and
/// every date-time in RFC 3339 with milliseconds (`2026-11-23T10:00:00.480Z`).
///
/// The gateway encodes its answers with ``encoder()`` and the CLI decodes them with
/// ``decoder()``, over the same types, so the two cannot disagree on a shape.
public enum ManagementJSON {
    /// The encoder of the gateway's answers.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(format(date))
        }
        return encoder
    }

    /// The decoder of the gateway's answers: takes a date-time with or without its fraction.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parse(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container,
                    debugDescription: "'\(text)' is not an RFC 3339 date-time"
                )
            }
            return date
        }
        return decoder
    }

    /// `value` as the gateway sends it.
    public static func encode(_ value: some Encodable) throws -> Data {
        try encoder().encode(value)
    }

    /// A date-time as the API writes it, to the nearest millisecond.
    ///
    /// Not `ISO8601FormatStyle(includingFractionalSeconds:)` alone: it truncates, and a date
    /// read from `…00.012Z` is a hair below it as a binary fraction, so it wrote `…00.011Z`.
    /// The whole seconds are formatted (exact in binary) and the milliseconds rounded apart.
    public static func format(_ date: Date) -> String {
        let milliseconds = (date.timeIntervalSince1970 * 1_000).rounded()
        let seconds = (milliseconds / 1_000).rounded(.down)
        let fraction = Int(milliseconds - seconds * 1_000)
        let whole = Date(timeIntervalSince1970: seconds).formatted(Date.ISO8601FormatStyle())
        let digits = String(fraction)
        return whole.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// A date-time as the API writes it, or without the fraction; nil for anything else.
    public static func parse(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
    }
}
