/// The `Retry-After` response header (RFC 9110 §10.2.3): a delay in seconds or an HTTP-date.
///
/// ```swift
/// RetryAfter.parse("120", now: 0)                                   // 120 s
/// RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: 784_111_700) // 77 s
/// ```
public enum RetryAfter {
    /// The delay a `Retry-After` value asks for, or nil if the value is malformed.
    ///
    /// - Parameters:
    ///   - value: the header's value.
    ///   - now: the current time in Unix seconds, to turn an HTTP-date into a delay.
    /// - Returns: the delay, never negative (a date in the past means "now").
    public static func parse(_ value: some StringProtocol, now: Int64) -> Duration? {
        let trimmed = value.trimmingSpaces
        if let seconds = Int64(trimmed), seconds >= 0 {
            return .seconds(seconds)
        }
        guard let date = HTTPDate.unixSeconds(trimmed) else { return nil }
        return .seconds(max(date - now, 0))
    }
}

/// Parses the preferred HTTP-date form, IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
enum HTTPDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func unixSeconds(_ text: Substring) -> Int64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[0].hasSuffix(","), parts[5] == "GMT",
            let day = Int64(parts[1]), (1...31).contains(day),
            let monthIndex = months.firstIndex(where: { $0 == parts[2] }),
            let year = Int64(parts[3]), parts[3].count == 4
        else { return nil }
        let clock = parts[4].split(separator: ":")
        guard clock.count == 3, let hour = Int64(clock[0]), let minute = Int64(clock[1]),
            let second = Int64(clock[2]), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        let days = daysFromCivil(year: year, month: Int64(monthIndex + 1), day: day)
        return days * 86_400 + hour * 3_600 + minute * 60 + second
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return slice
    }
}
