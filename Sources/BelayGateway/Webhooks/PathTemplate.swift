import Foundation

/// A request path with JSON pointers into an event in braces, such as
/// `/v1/charges/{/data/object/id}`: verify-then-act's way of naming the resource an event
/// is about.
///
/// Rendering replaces each `{pointer}` with the string or integer it finds in the event,
/// percent-encoded as one path segment, `.` and `..` included (so an id cannot climb to
/// another path).
struct PathTemplate: Sendable, Hashable, CustomStringConvertible {
    /// Why a text is not a template, or why an event does not fill one.
    struct Invalid: Error, Sendable, Hashable {
        /// What is wrong, in a sentence.
        var message: String
    }

    private enum Part: Sendable, Hashable {
        case literal(String)
        case pointer(JSONPointer)
    }

    private let parts: [Part]
    /// The template as written.
    let description: String

    /// Parses `text`; throws unless it starts with `/` and every brace holds a JSON pointer.
    init(_ text: String) throws(Invalid) {
        guard text.hasPrefix("/") else {
            throw Invalid(message: "must start with / (got '\(text)')")
        }
        var parts: [Part] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            if open > rest.startIndex { parts.append(.literal(String(rest[..<open]))) }
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw Invalid(message: "has a { without its } in '\(text)'")
            }
            let inner = String(rest[rest.index(after: open)..<close])
            do {
                let pointer = try JSONPointer(inner)
                guard !pointer.tokens.isEmpty else { throw JSONPointer.Invalid(message: "") }
                parts.append(.pointer(pointer))
            } catch {
                throw Invalid(
                    message:
                        "'{\(inner)}' in '\(text)' must hold a JSON pointer into the event, such as {/data/object/id}"
                )
            }
            rest = rest[rest.index(after: close)...]
        }
        if rest.contains("}") { throw Invalid(message: "has a } without its { in '\(text)'") }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
        self.description = text
    }

    /// The path for the event `body`; throws when the body is not JSON or a pointer finds
    /// no string or integer in it.
    func render(with body: Data) throws(Invalid) -> String {
        var path = ""
        for part in parts {
            switch part {
            case .literal(let text):
                path += text
            case .pointer(let pointer):
                let target: JSONPointer.Target
                do {
                    target = try pointer.evaluate(in: body)
                } catch {
                    throw Invalid(message: "the event is not JSON, so \(pointer) cannot be read from it")
                }
                switch target {
                case .string(let value) where !value.isEmpty, .integer(let value):
                    let encoded = value.addingPercentEncoding(withAllowedCharacters: Self.segment) ?? value
                    // `.` and `..` are unreserved but would name this path or its parent.
                    path += encoded == "." ? "%2E" : encoded == ".." ? "%2E%2E" : encoded
                case .string, .otherValue, .missing:
                    throw Invalid(message: "the event has no string or integer at \(pointer)")
                }
            }
        }
        return path
    }

    /// RFC 3986 unreserved characters: everything else in a value is percent-encoded.
    private static let segment = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
}
