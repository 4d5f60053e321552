import Foundation
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

    /// `fields` without hop-by-hop headers, without those the `Connection` header names, and
    /// without `also` (lowercased names).
    public static func removing(from fields: HTTPFields, also: Set<String> = []) -> HTTPFields {
        var connectionListed: Set<String> = []
        for value in fields[values: .connection] {
            for token in value.split(separator: ",") {
                connectionListed.insert(token.trimmingCharacters(in: .whitespaces).lowercased())
            }
        }
        var result = HTTPFields()
        for field in fields {
            let name = field.name.canonicalName
            if names.contains(name) || connectionListed.contains(name) || also.contains(name) { continue }
            result.append(field)
        }
        return result
    }

    /// The request headers to send upstream.
    public static func forRequest(_ fields: HTTPFields, stripAuthorization: Bool) -> HTTPFields {
        var also = belayRequestHeaders
        if stripAuthorization { also.insert("authorization") }
        return removing(from: fields, also: also)
    }

    /// The response headers to send back to the caller.
    public static func forResponse(_ fields: HTTPFields) -> HTTPFields {
        removing(from: fields, also: ["content-length"])
    }
}
