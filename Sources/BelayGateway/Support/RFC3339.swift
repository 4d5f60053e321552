import Foundation

/// RFC 3339 `date-time`, checked strictly before Foundation parses it: Foundation's
/// ISO 8601 parsers take `2026-02-31`, hour 25, a missing zone or trailing text, which the
/// OpenAPI document (and a caller reading it) calls invalid.
enum RFC3339 {
    /// The moment `text` names, if it is `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with a
    /// real day of its month (`T` and `Z` in either case, as RFC 3339 §5.6 allows).
    static func date(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[from..<from + count] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        func byte(_ at: Int, _ allowed: String) -> Bool { at < bytes.count && allowed.utf8.contains(bytes[at]) }
        guard let year = number(0, 4), byte(4, "-"), let month = number(5, 2), byte(7, "-"), let day = number(8, 2),
            byte(10, "Tt"), let hour = number(11, 2), byte(13, ":"), let minute = number(14, 2), byte(16, ":"),
            let second = number(17, 2), (1...12).contains(month), (1...daysIn(month, of: year)).contains(day),
            hour <= 23, minute <= 59, second <= 59
        else { return nil }
        var index = 19
        if byte(index, ".") {
            index += 1
            let start = index
            while number(index, 1) != nil { index += 1 }
            guard index > start else { return nil }
        }
        if byte(index, "Zz") {
            index += 1
        } else if byte(index, "+-"), let offsetHours = number(index + 1, 2), byte(index + 3, ":"),
            let offsetMinutes = number(index + 4, 2), offsetHours <= 23, offsetMinutes <= 59
        {
            index += 6
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        return DeliveryRequest.date(text.uppercased())
    }

    private static func daysIn(_ month: Int, of year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
