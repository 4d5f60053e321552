public import Foundation

/// An RFC 6901 JSON pointer such as `/data/object/id`, and its evaluation against a JSON
/// document given as raw bytes.
///
/// Each `/`-separated token names an object member or an array index; `~1` stands for `/`
/// and `~0` for `~` inside a token (`/a~1b` is the member `a/b`). The empty pointer is the
/// whole document.
struct JSONPointer: Sendable, Hashable, CustomStringConvertible {
    /// Why a text is not a JSON pointer.
    struct Invalid: Error, Sendable, Hashable {
        /// What is wrong, e.g. `must start with / (got 'id')`.
        var message: String
    }

    /// What a pointer found in a document.
    enum Target: Sendable, Hashable {
        /// A string.
        case string(String)
        /// An integer, in its decimal form.
        case integer(String)
        /// A value of another kind: an object, array, boolean, null or fraction.
        case otherValue
        /// Nothing: a member or index the document does not have.
        case missing
    }

    /// The unescaped reference tokens.
    let tokens: [String]
    /// The pointer as written.
    let description: String

    /// Parses `text`; throws when it is neither empty nor starts with `/`, or when a `~`
    /// is not followed by `0` or `1`.
    init(_ text: String) throws(Invalid) {
        guard text.isEmpty || text.hasPrefix("/") else {
            throw Invalid(message: "must be a JSON pointer starting with / such as /id (got '\(text)')")
        }
        var tokens: [String] = []
        for raw in text.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            var token = ""
            var escaping = false
            for character in raw {
                if escaping {
                    switch character {
                    case "0": token.append("~")
                    case "1": token.append("/")
                    default:
                        throw Invalid(
                            message: "has '~\(character)' in '\(text)': only ~0 (for ~) and ~1 (for /) are escapes"
                        )
                    }
                    escaping = false
                } else if character == "~" {
                    escaping = true
                } else {
                    token.append(character)
                }
            }
            if escaping {
                throw Invalid(message: "ends a token with a lone ~ in '\(text)': write ~0 for ~")
            }
            tokens.append(token)
        }
        self.tokens = tokens
        self.description = text
    }

    /// What the pointer refers to in the JSON document `body`; throws when `body` is not
    /// JSON (UTF-8, UTF-16 or UTF-32, any top-level value).
    func evaluate(in body: Data) throws -> Target {
        let decoder = JSONDecoder()
        decoder.userInfo[Walker.tokensKey] = tokens
        return try decoder.decode(Walker.self, from: body).target
    }

    /// Descends the document along the tokens, materialising only the values on the path.
    ///
    /// `JSONDecoder` checks that the whole document is JSON before decoding begins, so a
    /// syntax error anywhere fails the evaluation, not only one on the path.
    private struct Walker: Decodable {
        static let tokensKey = CodingUserInfoKey(rawValue: "belay.jsonPointer.tokens")!

        var target: Target

        init(from decoder: any Decoder) throws {
            let tokens = decoder.userInfo[Self.tokensKey] as? [String] ?? []
            let depth = decoder.codingPath.count
            guard depth < tokens.count else {
                target = Self.leaf(decoder)
                return
            }
            let token = tokens[depth]
            if let object = try? decoder.container(keyedBy: Key.self) {
                let key = Key(stringValue: token)
                target = object.contains(key) ? try object.decode(Walker.self, forKey: key).target : .missing
            } else if var array = try? decoder.unkeyedContainer() {
                guard let index = Self.arrayIndex(token), index < array.count ?? 0 else {
                    target = .missing
                    return
                }
                for _ in 0..<index {
                    _ = try array.decode(Skip.self)
                }
                target = try array.decode(Walker.self).target
            } else {
                target = .missing
            }
        }

        private static func leaf(_ decoder: any Decoder) -> Target {
            guard let value = try? decoder.singleValueContainer() else { return .otherValue }
            if let text = try? value.decode(String.self) { return .string(text) }
            if let number = try? value.decode(Int64.self) { return .integer(String(number)) }
            if let number = try? value.decode(UInt64.self) { return .integer(String(number)) }
            return .otherValue
        }

        /// An array index token: `0`, or digits without a leading zero (RFC 6901 §4).
        private static func arrayIndex(_ token: String) -> Int? {
            guard let first = token.utf8.first, token.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                first != UInt8(ascii: "0") || token.utf8.count == 1
            else { return nil }
            return Int(token)
        }
    }

    /// An array element passed over on the way to the one the pointer names.
    private struct Skip: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }

        init(stringValue: String) {
            self.stringValue = stringValue
        }

        init?(intValue: Int) {
            nil
        }
    }
}

/// The JSON pointer parser and evaluator as the fuzz targets in `Fuzz/` drive them. Not API:
/// `@_spi(Fuzzing)`, so ``JSONPointer`` itself stays internal.
@_spi(Fuzzing) public enum JSONPointerFuzzing {
    /// Parses `text` as a JSON pointer and, when it is one, evaluates it in the JSON document
    /// `body`: what it found (`string`, `integer`, `other`, `missing`), `invalid pointer`, or
    /// `not JSON`.
    public static func evaluate(_ text: String, in body: Data) -> String {
        guard let pointer = try? JSONPointer(text) else { return "invalid pointer" }
        switch try? pointer.evaluate(in: body) {
        case .string: return "string"
        case .integer: return "integer"
        case .otherValue: return "other"
        case .missing: return "missing"
        case nil: return "not JSON"
        }
    }
}
