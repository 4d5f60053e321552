import HTTPTypes
import Hummingbird
import NIOCore
import Yams

/// The management API's contract: one OpenAPI 3.1 document (`Contract/openapi.yaml`,
/// compiled into the binary), served at `GET /v1/openapi.yaml`.
///
/// It cannot drift from the routes: ``check(served:)`` runs when the application is built
/// and refuses a route the document does not describe, or an operation no route serves.
public enum ManagementContract {
    /// The document, as served.
    public static var document: [UInt8] { PackageResources.openapi_yaml }

    /// Its media type (RFC 9512).
    public static let mediaType = "application/yaml"

    /// One operation: a method and a path in OpenAPI's templating (`/v1/deliveries/{id}`).
    public struct Operation: Hashable, Sendable, Comparable, CustomStringConvertible {
        public var method: String
        public var path: String

        public init(method: String, path: String) {
            self.method = method.uppercased()
            self.path = path
        }

        public var description: String { "\(method) \(path)" }

        public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.path, lhs.method) < (rhs.path, rhs.method) }
    }

    /// The document and the routes disagree: a programming error, found when the
    /// application is built (every test that starts a gateway fails with it).
    public struct Drift: Error, CustomStringConvertible {
        /// Served, but not in the document.
        public var undocumented: [Operation]
        /// In the document (and not marked `x-belay-optional`), but served by no route.
        public var unserved: [Operation]

        public var description: String {
            var lines = ["the routes and Sources/BelayGateway/Contract/openapi.yaml disagree:"]
            lines += undocumented.map { "  \($0) is served but not in the document" }
            lines += unserved.map { "  \($0) is in the document but no route serves it" }
            return lines.joined(separator: "\n")
        }
    }

    /// The document's operations; `optional` are those marked `x-belay-optional` (served only
    /// when the config turns them on, as `/metrics` is).
    /// Parsed once per process: every application built checks its routes against it, and
    /// parsing the document costs a third of a second of CPU in a debug build.
    public static func operations() throws -> (all: Set<Operation>, optional: Set<Operation>) {
        try parsed.get()
    }

    private static let parsed = Result { () throws(ContractError) in try parse() }

    private static func parse() throws(ContractError) -> (all: Set<Operation>, optional: Set<Operation>) {
        let yaml = String(decoding: document, as: UTF8.self)
        let root: Any?
        do { root = try Yams.load(yaml: yaml) } catch { throw ContractError(description: "openapi.yaml: \(error)") }
        guard let root = root as? [String: Any], let paths = root["paths"] as? [String: Any]
        else { throw ContractError(description: "openapi.yaml has no paths") }
        var all: Set<Operation> = []
        var optional: Set<Operation> = []
        for (path, item) in paths {
            guard let item = item as? [String: Any] else { continue }
            for (method, operation) in item where methods.contains(method) {
                let found = Operation(method: method, path: path)
                all.insert(found)
                if (operation as? [String: Any])?["x-belay-optional"] != nil { optional.insert(found) }
            }
        }
        return (all, optional)
    }

    /// Throws ``Drift`` unless every served route is documented and every documented
    /// operation (but the optional ones) is served.
    public static func check(served: [Operation]) throws {
        let documented = try operations()
        let served = Set(served)
        let drift = Drift(
            undocumented: served.subtracting(documented.all).sorted(),
            unserved: documented.all.subtracting(documented.optional).subtracting(served).sorted()
        )
        if !drift.undocumented.isEmpty || !drift.unserved.isEmpty { throw drift }
    }

    private static let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    struct ContractError: Error, CustomStringConvertible {
        var description: String
    }
}

extension Router {
    /// `GET /v1/openapi.yaml`: the contract, to anyone (it names no secret).
    func addContractRoute() {
        get("v1/openapi.yaml") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: ManagementContract.mediaType, .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(bytes: ManagementContract.document))
            )
        }
    }

    /// Every route added so far, as contract operations.
    var contractOperations: [ManagementContract.Operation] {
        routes.map { .init(method: $0.method.rawValue, path: $0.path.description) }
    }
}
