import AsyncHTTPClient
import Belay
public import BelayHTTP
public import BelayStore
public import Foundation
import HTTPTypes
import NIOCore

/// Sends one attempt of a delivery to its upstream.
public protocol DeliverySender: Sendable {
    /// Sends `delivery` once through its upstream's policy and says what came of it.
    func send(_ delivery: Delivery) async -> SendResult

    /// How long `upstream` is paused (its breaker is open), if it is: its deliveries wait
    /// without spending attempts.
    func pause(of upstream: String) -> Duration?

    /// Looks `delivery`'s order up at `path` (`ack.poll`, its key in place): one `GET` through
    /// its upstream's policy, its outcome told as a send's.
    func look(_ delivery: Delivery, path: String) async -> SendResult
}

extension DeliverySender {
    /// A sender that cannot look orders up says it could not tell: nothing is resent on its word.
    public func look(_ delivery: Delivery, path: String) async -> SendResult {
        .failed(errorClass: "other", detail: "this sender cannot look orders up", endpoint: nil)
    }
}

/// What one send of a delivery carries, or why there is no send.
public enum DeliveryPreparation: Sendable {
    /// Send with this body, adding these headers (replacing stored ones of the same name).
    case send(body: Data?, headers: [DeliveryHeader])
    /// Do not send: the attempt ends with this result.
    case settled(SendResult)
}

/// Sends deliveries through the gateway's upstream clients, so every attempt gets the
/// upstream's whole policy (timeouts, breaker, bulkhead, pace, failover) and carries the
/// delivery's one idempotency key.
public struct UpstreamDeliverySender: DeliverySender {
    /// The clients by upstream name, as they stand now (a config reload may replace one).
    public var clients: [String: UpstreamClient] { lookup() }
    /// Reads the clients in force.
    private let lookup: @Sendable () -> [String: UpstreamClient]
    /// What each send carries, decided just before it (e.g. a webhook forward's current
    /// state fetched from the provider, and its signature, whose timestamp must be the
    /// send's), or a result that ends the attempt without sending.
    public let prepare: @Sendable (Delivery) async -> DeliveryPreparation

    /// Creates a sender over `clients`.
    public init(
        clients: [String: UpstreamClient],
        prepare: @escaping @Sendable (Delivery) async -> DeliveryPreparation = { .send(body: $0.body, headers: []) }
    ) {
        self.init(lookup: { clients }, prepare: prepare)
    }

    /// Creates a sender over the clients `lookup` reads at each send (the gateway's in force,
    /// so that a send after a config reload runs under the new policy).
    public init(
        lookup: @escaping @Sendable () -> [String: UpstreamClient],
        prepare: @escaping @Sendable (Delivery) async -> DeliveryPreparation = { .send(body: $0.body, headers: []) }
    ) {
        self.lookup = lookup
        self.prepare = prepare
    }

    public func pause(of upstream: String) -> Duration? {
        guard let breaker = clients[upstream]?.breaker else { return nil }
        switch breaker.state {
        case .isolated: return .seconds(5)
        case .open: return breaker.remainingBreak.map { $0 > .zero ? $0 : nil } ?? nil
        case .closed, .halfOpen: return nil
        }
    }

    public func send(_ delivery: Delivery) async -> SendResult {
        let body: Data?
        let added: [DeliveryHeader]
        switch await prepare(delivery) {
        case .send(let prepared, let headers): (body, added) = (prepared, headers)
        case .settled(let result): return result
        }
        // Looked up after the preparation (which may fetch for a while): the client in force now,
        // not one a reload has retired since.
        guard let client = clients[delivery.upstream] else {
            return Self.unconfigured(delivery.upstream)
        }
        var headers = HTTPFields()
        for header in delivery.headers {
            if let name = HTTPField.Name(header.name) { headers.append(HTTPField(name: name, value: header.value)) }
        }
        for header in added {
            if let name = HTTPField.Name(header.name) { headers[name] = header.value }
        }
        // The receiving system acknowledges with this id (POST /v1/deliveries/{id}/ack).
        headers[HTTPField.Name("Belay-Delivery-Id")!] = delivery.id
        let keyHeader = client.policy.idempotencyHeader ?? "Idempotency-Key"
        if let name = HTTPField.Name(keyHeader) { headers[name] = delivery.idempotencyKey }
        let (path, query) = UpstreamRequest.pathAndQuery(of: delivery.path)
        let request = UpstreamRequest(
            method: HTTPRequest.Method(delivery.method) ?? .post,
            path: path,
            query: query,
            headers: headers,
            body: body.map { .buffered(ByteBuffer(bytes: $0)) } ?? .none
        )
        // The answer's body is read and dropped within the attempt, under the policy's
        // deadlines: a trickling answer ends the attempt as a timeout instead of outliving the
        // lease (and a second send of the same delivery).
        let result = await client.send(
            request,
            correlationID: delivery.id,
            idempotencyKey: delivery.idempotencyKey,
            // An optional upstream's fallback is not the provider taking the delivery.
            servingStale: false,
            answer: .discard
        )
        return Self.sendResult(of: result, upstream: delivery.upstream)
    }

    /// A send or lookup to an upstream a reload removed.
    static func unconfigured(_ upstream: String) -> SendResult {
        .failed(errorClass: "other", detail: "the upstream '\(upstream)' is no longer configured", endpoint: nil)
    }

    /// What a call of a delivery (a send, or a lookup) came to, as the planner needs it.
    static func sendResult(of result: UpstreamResult, upstream: String) -> SendResult {
        let endpoint = result.attempts.last?.endpoint.description
        switch result.outcome {
        case .success(let response):
            return .answered(
                status: response.status.code,
                retryAfter: UpstreamClient.delayHint(.success(response)),
                endpoint: response.endpoint.description
            )
        case .failure(let error as ResilienceError):
            switch error.code {
            case .circuitOpen, .circuitIsolated, .bulkheadFull, .concurrencyLimited, .rateLimited:
                guard let last = result.attempts.last else {
                    // Refused before anything was sent: not an attempt.
                    return .held(reason: "\(upstream): \(error.message)", retryAfter: error.retryAfter)
                }
                // The policy sent it and then refused a retry: the last real try counts.
                if let status = last.status {
                    return .answered(status: status, retryAfter: error.retryAfter, endpoint: endpoint ?? "")
                }
                return .failed(
                    errorClass: last.failure?.rawValue ?? "other",
                    detail: "\(error.message) after \(result.attempts.count) tries",
                    endpoint: endpoint
                )
            case .timeout:
                return .failed(errorClass: "timeout", detail: error.message, endpoint: endpoint)
            default:
                let underlying = error.underlying.map { "\($0)" } ?? error.message
                return .failed(errorClass: error.code.description, detail: underlying, endpoint: endpoint)
            }
        case .failure(let failure as UpstreamFailure):
            return .failed(errorClass: failure.kind.rawValue, detail: failure.detail, endpoint: endpoint)
        case .failure(let refusal as RequestRefusal):
            // It can never be sent as it is: dead at once, not retried for days.
            return .refused(reason: "\(refusal)", errorClass: "invalid-request", endpoint: endpoint)
        case .failure(let error):
            return .failed(errorClass: "other", detail: "\(type(of: error))", endpoint: endpoint)
        }
    }

    public func look(_ delivery: Delivery, path: String) async -> SendResult {
        guard let client = clients[delivery.upstream] else {
            return Self.unconfigured(delivery.upstream)
        }
        var headers = HTTPFields()
        // The stored headers a lookup shares with the send (however the provider is told who asks:
        // Authorization, an API key header, a cookie), but those that describe the send's body or
        // its key: a GET has neither.
        let keyHeader = client.policy.idempotencyHeader?.lowercased()
        for header in delivery.headers {
            let lowered = header.name.lowercased()
            guard !Self.sendOnlyHeaders.contains(lowered), !lowered.hasPrefix("content-"), lowered != keyHeader
            else { continue }
            if let name = HTTPField.Name(header.name) { headers.append(HTTPField(name: name, value: header.value)) }
        }
        headers[HTTPField.Name("Belay-Delivery-Id")!] = delivery.id
        let (target, query) = UpstreamRequest.pathAndQuery(of: path)
        let result = await client.send(
            UpstreamRequest(method: .get, path: target, query: query, headers: headers, body: .none),
            correlationID: delivery.id,
            idempotencyKey: nil,
            servingStale: false,
            answer: .discard
        )
        return Self.sendResult(of: result, upstream: delivery.upstream)
    }

    /// Stored headers a lookup leaves out (and any `Content-*`): they belong to the send's body,
    /// its framing or its key.
    static let sendOnlyHeaders: Set<String> = [
        "idempotency-key", "transfer-encoding", "expect", "prefer", "digest", "repr-digest", "content-digest",
        "belay-delivery-id",
    ]
}
