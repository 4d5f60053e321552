public import Foundation

/// One HTTP POST to an alert sink: the URL, extra headers (their values secrets) and a JSON body.
public struct AlertRequest: Sendable {
    /// A header Belay adds; its value is never logged.
    public struct Header: Sendable, Hashable {
        /// The name.
        public var name: String
        /// The value.
        public var value: Secret
    }

    /// Where to POST.
    public var url: String
    /// Headers besides `Content-Type: application/json` and `User-Agent`.
    public var headers: [Header]
    /// The JSON body.
    public var body: Data

    /// Creates a request.
    public init(url: String, headers: [Header] = [], body: Data) {
        self.url = url
        self.headers = headers
        self.body = body
    }
}
