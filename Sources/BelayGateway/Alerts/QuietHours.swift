public import Foundation

/// A daily span of local time in one time zone, such as `22:00-07:00 Europe/Berlin`, during
/// which a sink's warnings wait. A span whose end is earlier than its start crosses midnight.
///
/// ```swift
/// let quiet = try QuietHours(parsing: "22:00-07:00 Europe/Berlin")
/// quiet.contains(date)     // is it quiet at `date`?
/// quiet.end(after: date)   // when the quiet hours around `date` end
/// ```
public struct QuietHours: Sendable, Hashable, CustomStringConvertible {
    /// Why a quiet-hours text was refused.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        /// A sentence naming what is wrong.
        public var description: String
    }

    /// The start, in minutes after local midnight.
    public let start: Int
    /// The end, in minutes after local midnight (exclusive).
    public let end: Int
    /// The time zone the times are read in.
    public let timeZone: TimeZone
    /// The zone's name as written (Foundation may spell `UTC` as `GMT`).
    public let timeZoneName: String

    /// Quiet hours from `start` to `end` (minutes after midnight, `0..<1440`, different) in `timeZone`.
    public init(start: Int, end: Int, timeZone: TimeZone) {
        self.init(start: start, end: end, timeZone: timeZone, named: timeZone.identifier)
    }

    private init(start: Int, end: Int, timeZone: TimeZone, named name: String) {
        self.start = start
        self.end = end
        self.timeZone = timeZone
        self.timeZoneName = name
    }

    /// Parses `HH:MM-HH:MM Zone`, the zone an IANA name (`Europe/Berlin`, `UTC`).
    public init(parsing text: String) throws(ParseError) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        let shape = "must be 'HH:MM-HH:MM <IANA time zone>', e.g. '22:00-07:00 Europe/Berlin' (got '\(text)')"
        guard parts.count == 2 else { throw ParseError(description: shape) }
        let times = parts[0].split(separator: "-", omittingEmptySubsequences: false)
        guard times.count == 2, let start = Self.minutes(times[0]), let end = Self.minutes(times[1]) else {
            throw ParseError(description: shape)
        }
        guard start != end else {
            throw ParseError(description: "must not start and end at the same time (got '\(text)')")
        }
        let name = String(parts[1])
        guard TimeZone.knownTimeZoneIdentifiers.contains(name) || name == "UTC", let zone = TimeZone(identifier: name)
        else {
            throw ParseError(description: "names the time zone '\(name)', which is not an IANA time zone name")
        }
        self.init(start: start, end: end, timeZone: zone, named: name)
    }

    /// `HH:MM` (00:00 to 23:59) as minutes after midnight.
    private static func minutes(_ text: Substring) -> Int? {
        let fields = text.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 2, fields.allSatisfy({ $0.count == 2 && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let hour = Int(fields[0]), let minute = Int(fields[1]), (0..<24).contains(hour), (0..<60).contains(minute)
        else { return nil }
        return hour * 60 + minute
    }

    private var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }

    /// Whether `date` falls inside the quiet hours.
    public func contains(_ date: Date) -> Bool {
        let parts = calendar.dateComponents([.hour, .minute], from: date)
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        return start < end ? (start..<end).contains(minute) : minute >= start || minute < end
    }

    /// The first instant after `date` at which the local time is the end time (on a day the
    /// clocks skip it, the first instant after the gap).
    public func end(after date: Date) -> Date {
        let wanted = DateComponents(hour: end / 60, minute: end % 60, second: 0)
        return calendar.nextDate(after: date, matching: wanted, matchingPolicy: .nextTime)
            ?? date.addingTimeInterval(86_400)
    }

    /// `HH:MM-HH:MM Zone`, as written in the config.
    public var description: String {
        func clock(_ minutes: Int) -> String { String(format: "%02d:%02d", minutes / 60, minutes % 60) }
        return "\(clock(start))-\(clock(end)) \(timeZoneName)"
    }
}
