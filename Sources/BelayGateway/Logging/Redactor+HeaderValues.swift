/// Finding where a sensitive header's value ends in free text.
///
/// A value is redacted whole: everything a credential may hold (a Digest's quoted, comma
/// separated parameters, a cookie list) goes, and only text that is certainly not part of it
/// is kept. How far that is depends on how the header was printed:
///
/// - a string literal (`"authorization":"…"` in JSON, `["Authorization": "…"]` from Swift,
///   `authorization="…"`): up to its closing quote, escaped quotes inside skipped, at any
///   depth of escaping (`\"…\"` for JSON inside a JSON string);
/// - a header line (`Authorization: Digest username="bob", response="…"`): up to the end of the
///   line; a quoted string inside it is skipped whole;
/// - the same line inside a JSON string (`"message":"Authorization: …"`): up to the end of that
///   string or an escaped line break (`\n`);
/// - an entry of a printed field list (`[Authorization: …, Accept: */*]`, as `HTTPFields` and
///   tracing carriers print): up to `, <name>:` starting the next field, or the bracket closing
///   the list.
extension Redactor {
    /// `text` with the value after each sensitive header name followed by `:` or `=`
    /// replaced by ``placeholder``.
    func redactHeaderValues(in text: String) -> String {
        let bytes = Array(text.utf8)
        // Most log text names no header: nothing to scan without a separator.
        guard bytes.contains(UInt8(ascii: ":")) || bytes.contains(UInt8(ascii: "=")) else { return text }
        let lower = bytes.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 }
        let names = headers.map { Array($0.utf8) }
        var output: [UInt8] = []
        var changed = false
        var index = 0
        scan: while index < bytes.count {
            if index == 0 || !Self.isTokenByte(lower[index - 1]) {
                for name in names where lower[index...].starts(with: name) {
                    guard let value = Self.value(in: bytes, after: index + name.count) else { continue }
                    let end =
                        if let level = value.literalLevel {
                            Self.close(of: bytes, literalFrom: value.start, level: level).end
                        } else {
                            Self.endOfPlainValue(
                                in: bytes,
                                from: value.start,
                                context: Self.context(bytes, before: index)
                            )
                        }
                    output.append(contentsOf: bytes[index..<value.start])
                    if end > value.start {
                        output.append(contentsOf: Self.placeholder.utf8)
                        changed = true
                    }
                    index = end
                    continue scan
                }
            }
            output.append(bytes[index])
            index += 1
        }
        return changed ? String(decoding: output, as: UTF8.self) : text
    }

    /// Where the value after a header name (ending at `cursor`) starts: after an optional quote
    /// closing the name, spaces, `:` or `=`, spaces, and the value's opening quote if it is a
    /// string literal (`literalLevel`: how many backslashes escape that quote). Nil when no
    /// separator follows: the name is only a word.
    private static func value(in bytes: [UInt8], after name: Int) -> (start: Int, literalLevel: Int?)? {
        var cursor = name
        let nameQuote = backslashes(in: bytes, from: cursor)
        if cursor + nameQuote < bytes.count, bytes[cursor + nameQuote] == quote {
            cursor += nameQuote + 1
        } else if nameQuote > 0 {
            return nil
        }
        while cursor < bytes.count, bytes[cursor] == UInt8(ascii: " ") { cursor += 1 }
        guard cursor < bytes.count, bytes[cursor] == UInt8(ascii: ":") || bytes[cursor] == UInt8(ascii: "=")
        else { return nil }
        cursor += 1
        while cursor < bytes.count, bytes[cursor] == UInt8(ascii: " ") { cursor += 1 }
        let valueQuote = backslashes(in: bytes, from: cursor)
        if cursor + valueQuote < bytes.count, bytes[cursor + valueQuote] == quote {
            return (cursor + valueQuote + 1, valueQuote)
        }
        return (cursor, nil)
    }

    /// What surrounds a header name at `index` on its line: whether it sits inside a string
    /// literal (an odd number of unescaped quotes before it) and inside a bracket (`[`, `{`).
    private static func context(_ bytes: [UInt8], before index: Int) -> (inString: Bool, inBrackets: Bool) {
        var quotes = 0
        var brackets = 0
        var cursor = index
        while cursor > 0, !isLineBreak(bytes[cursor - 1]) {
            cursor -= 1
            switch bytes[cursor] {
            case quote where backslashes(in: bytes, before: cursor, notBefore: 0) % 2 == 0: quotes += 1
            case UInt8(ascii: "["), UInt8(ascii: "{"): brackets += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"): brackets -= 1
            default: break
            }
        }
        return (quotes % 2 == 1, brackets > 0)
    }

    /// The end of a value that is not a string literal (see the extension's doc).
    private static func endOfPlainValue(
        in bytes: [UInt8],
        from start: Int,
        context: (inString: Bool, inBrackets: Bool)
    ) -> Int {
        var index = start
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                return index
            case UInt8(ascii: "\\")
            where context.inString && index + 1 < bytes.count
                && (bytes[index + 1] == UInt8(ascii: "n") || bytes[index + 1] == UInt8(ascii: "r"))
                && backslashes(in: bytes, before: index, notBefore: start) % 2 == 0:
                // An escaped line break ends a header line held in a string.
                return index
            case quote:
                let run = backslashes(in: bytes, before: index, notBefore: start)
                if context.inString && run % 2 == 0 {
                    // The string holding the header line ends here.
                    return index
                }
                if context.inString || run % 2 == 0 {
                    // A quoted string inside the value (escaped once more inside a string): skipped whole.
                    let close = close(of: bytes, literalFrom: index + 1, level: run)
                    guard close.closes else { return close.end }
                    index = close.after
                    continue
                }
            case UInt8(ascii: ",") where startsField(bytes, after: index):
                return index
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if context.inBrackets { return index }
            default:
                break
            }
            index += 1
        }
        return bytes.count
    }

    /// The closing quote of a string literal whose content starts at `start` and whose quotes
    /// are escaped by `level` backslashes: `end` where the content ends (the closing quote and
    /// its backslashes are kept), `after` past the quote, and `closes` false when the content
    /// stopped instead at a line break, the end of the text or a quote of an enclosing literal.
    private static func close(
        of bytes: [UInt8],
        literalFrom start: Int,
        level: Int
    ) -> (end: Int, after: Int, closes: Bool) {
        var index = start
        while index < bytes.count {
            if isLineBreak(bytes[index]) { return (index, index, false) }
            if bytes[index] == quote {
                let run = backslashes(in: bytes, before: index, notBefore: start)
                // A quote escaped more deeply than this literal's own is part of its content.
                if run <= level || run % 2 == 0 {
                    return (index - min(run, level), index + 1, run == level)
                }
            }
            index += 1
        }
        return (bytes.count, bytes.count, false)
    }

    /// Whether `, <token>:` starts at the comma at `index`: the next field of a printed list.
    private static func startsField(_ bytes: [UInt8], after index: Int) -> Bool {
        var cursor = index + 1
        while cursor < bytes.count, bytes[cursor] == UInt8(ascii: " ") { cursor += 1 }
        let nameStart = cursor
        while cursor < bytes.count, isFieldNameByte(bytes[cursor]) { cursor += 1 }
        return cursor > nameStart && cursor < bytes.count && bytes[cursor] == UInt8(ascii: ":")
    }

    /// How many backslashes run from `index` onwards.
    private static func backslashes(in bytes: [UInt8], from index: Int) -> Int {
        var cursor = index
        while cursor < bytes.count, bytes[cursor] == UInt8(ascii: "\\") { cursor += 1 }
        return cursor - index
    }

    /// How many backslashes run just before `index`, counting no further back than `floor`.
    private static func backslashes(in bytes: [UInt8], before index: Int, notBefore floor: Int) -> Int {
        var cursor = index
        while cursor > floor, bytes[cursor - 1] == UInt8(ascii: "\\") { cursor -= 1 }
        return index - cursor
    }

    private static let quote = UInt8(ascii: "\"")

    private static func isLineBreak(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    /// A byte of an RFC 9110 token (a field name), any case.
    private static func isFieldNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
