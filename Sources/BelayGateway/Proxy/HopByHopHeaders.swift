public import HTTPTypes

/// Header handling between caller, Belay and upstream (RFC 9110 §7.6.1).
public enum HopByHopHeaders {
    /// Headers that apply to one connection only and are never forwarded.
    static let names: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade", "proxy-authenticate",
        "proxy-authorization", "trailer",
    ]

    /// Headers Belay reads itself and does not forward upstream.
    static let belayRequestHeaders: Set<String> = ["belay-timeout", "host", "content-length"]

    /// Removed from requests: hop-by-hop headers and the ones Belay reads itself.
    private static let requestRemoved = names.union(belayRequestHeaders)
    /// The same, and `authorization` (Belay's own credential when consumers are configured).
    private static let requestRemovedWithAuthorization = requestRemoved.union(["authorization"])
    /// Removed from answers: hop-by-hop headers, and `content-length` (Belay sets it).
    private static let responseRemoved = names.union(["content-length"])

    /// `fields` without hop-by-hop headers, without those the `Connection` header names, and
    /// without `also` (lowercased names).
    public static func removing(from fields: HTTPFields, also: Set<String> = []) -> HTTPFields {
        removing(from: fields, names: names.union(also))
    }

    /// `fields` without `names` (lowercased) and without those the `Connection` header names.
    private static func removing(from fields: HTTPFields, names removed: Set<String>) -> HTTPFields {
        var connectionListed: Set<String> = []
        for value in fields[values: .connection] {
            for token in value.split(separator: ",") {
                let name = token.trimmingSpaces
                // `keep-alive` and `close`, the usual tokens, are hop-by-hop anyway.
                if !name.isEmpty, !removed.contains(String(name)) {
                    connectionListed.insert(name.lowercased())
                }
            }
        }
        var result = HTTPFields()
        for field in fields {
            let name = field.name.canonicalName
            if removed.contains(name) || (!connectionListed.isEmpty && connectionListed.contains(name)) { continue }
            result.append(field)
        }
        return result
    }

    /// The request headers to send upstream.
    public static func forRequest(_ fields: HTTPFields, stripAuthorization: Bool) -> HTTPFields {
        removing(from: fields, names: stripAuthorization ? requestRemovedWithAuthorization : requestRemoved)
    }

    /// The response headers to send back to the caller.
    public static func forResponse(_ fields: HTTPFields) -> HTTPFields {
        removing(from: fields, names: responseRemoved)
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (optional whitespace in a header list).
    fileprivate var trimmingSpaces: Substring {
        var slice = self
        while let first = slice.utf8.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            slice = slice.dropFirst()
        }
        while let last = slice.utf8.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
            slice = slice.dropLast()
        }
        return slice
    }
}
