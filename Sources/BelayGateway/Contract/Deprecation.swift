public import Foundation
public import HTTPTypes
public import Hummingbird

/// Marks the operations of a route group as on their way out, as DESIGN.md asks of `/v1/`
/// (a breaking change goes to `/v2/`; the old operation keeps working until its sunset):
///
/// - `Deprecation: @<unix seconds>` (RFC 9745), when it was deprecated;
/// - `Sunset: <HTTP-date>` (RFC 8594), when it may stop answering, if decided;
/// - `Link: <…>; rel="deprecation"` to the page that says what to use instead, if given.
///
/// ```swift
/// router.group("v1/old").add(middleware: DeprecationMiddleware(since: date, sunset: later, link: "/docs/api-changes.md#v2"))
/// ```
/// Mark the operation `deprecated: true` in `Contract/openapi.yaml` too, and list it in
/// docs/api-changes.md.
public struct DeprecationMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The header fields every answer of the group carries.
    public let fields: HTTPFields

    public init(since: Date, sunset: Date? = nil, link: String? = nil) {
        var fields = HTTPFields()
        fields[.deprecation] = "@\(Int64(since.timeIntervalSince1970.rounded(.down)))"
        if let sunset { fields[.sunset] = Self.httpDate(sunset) }
        if let link { fields.append(HTTPField(name: .link, value: "<\(link)>; rel=\"deprecation\"")) }
        self.fields = fields
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        for field in fields where response.headers[field.name] == nil || field.name == .link {
            response.headers.append(field)
        }
        return response
    }

    /// IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}

extension HTTPField.Name {
    /// RFC 9745.
    static let deprecation = HTTPField.Name("Deprecation")!
    /// RFC 8594.
    static let sunset = HTTPField.Name("Sunset")!
    /// RFC 8288.
    static let link = HTTPField.Name("Link")!
}
