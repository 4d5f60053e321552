public import BelayHTTP
public import HTTPTypes
public import Hummingbird
import NIOCore

extension Response {
    /// An `application/problem+json` response for `problem`, with extra headers.
    public static func problem(_ problem: ProblemDetails, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = ProblemDetails.mediaType
        headers[.belayRequestID] = problem.requestID
        headers[.cacheControl] = "no-store"
        return Response(
            status: HTTPResponse.Status(code: problem.status),
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: problem.json()))
        )
    }

    /// A JSON response from already-encoded bytes.
    static func json(_ bytes: some Sequence<UInt8>, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: Array(bytes)))
        )
    }
}
