import Belay
import BelayAPI
import BelayHTTP
public import BelayStore
public import Foundation
public import HTTPTypes

/// An answer of the management API, ready for any HTTP server to send.
public struct APIAnswer: Sendable {
    /// The status code.
    public var status: Int
    /// The headers (Content-Type included).
    public var headers: HTTPFields
    /// The JSON body.
    public var body: Data

    /// A JSON answer of one of the contract's types (``BelayAPI``), encoded as the CLI decodes it.
    static func json(_ status: Int, _ value: some Encodable, headers: HTTPFields = [:]) -> APIAnswer {
        var headers = headers
        headers[.contentType] = "application/json"
        // The contract's types encode dates, strings and numbers only: this does not throw.
        let body = (try? ManagementJSON.encode(value)) ?? Data()
        return APIAnswer(status: status, headers: headers, body: body)
    }

    /// A problem+json answer.
    static func problem(_ problem: ProblemDetails, headers: HTTPFields = [:]) -> APIAnswer {
        var headers = headers
        headers[.contentType] = ProblemDetails.mediaType
        headers[.belayRequestID] = problem.requestID
        return APIAnswer(status: problem.status, headers: headers, body: problem.json())
    }

    /// `400 invalid-request` naming the query or body `field` at fault.
    static func invalid(_ field: String, _ detail: String, requestID: String) -> APIAnswer {
        .problem(ProblemDetails(.invalidRequest, detail: detail, requestID: requestID, field: field))
    }

    /// `503 store-unavailable` (retry after 1 s) when `store` failed: "the delivery store
    /// failed (busy); nothing was changed".
    static func storeFailure(
        _ error: any Error,
        store: String,
        consequence: String? = nil,
        requestID: String
    ) -> APIAnswer {
        let code = (error as? StoreError)?.code.description ?? "unknown"
        return .problem(
            ProblemDetails(
                .storeUnavailable,
                detail: "the \(store) store failed (\(code))" + (consequence.map { "; \($0)" } ?? ""),
                requestID: requestID
            ),
            headers: [.retryAfter: "1"]
        )
    }
}

/// Who calls the delivery API: deliveries belong to the consumer that created them.
public struct DeliveryCaller: Sendable {
    /// The consumer's name; empty in open mode (and for deliveries Belay makes itself).
    public var consumer: String
    /// Whether it holds `admin`: it sees and manages every consumer's deliveries.
    public var isAdmin: Bool
    /// Whether it may call an upstream (`proxy:<upstream>`).
    public var mayUse: @Sendable (String) -> Bool

    /// Creates a caller.
    public init(consumer: String, isAdmin: Bool, mayUse: @escaping @Sendable (String) -> Bool) {
        self.consumer = consumer
        self.isAdmin = isAdmin
        self.mayUse = mayUse
    }

    /// An operator with every right (open mode, tests, the CLI on loopback).
    public static let admin = DeliveryCaller(consumer: "", isAdmin: true, mayUse: { _ in true })

    /// Whether it may see and manage `delivery`: `admin`, or the consumer that created it while
    /// it may still call its upstream.
    public func owns(_ delivery: Delivery) -> Bool {
        isAdmin || (delivery.consumer == consumer && mayUse(delivery.upstream))
    }
}

/// The durable delivery queue's management API: accept, show, list, retry, cancel and
/// acknowledge. Routes call it and only translate HTTP; the behaviour is here.
///
/// Consumers are tenants: a delivery, its caller key and its management actions belong to
/// the consumer that created it (and need `proxy:<its upstream>`); another consumer's
/// delivery is a `404`, as if it did not exist, and two consumers may use the same key.
public struct DeliveryService<C: Clock>: Sendable where C.Duration == Duration {
    /// The store.
    public let store: any DeliveryStore
    let intake: DeliveryIntake
    let config: GatewayConfig
    let wall: WallClock<C>
    let wake: @Sendable () -> Void
    let pause: @Sendable (String) -> Duration?
    let alert: @Sendable (Alert) -> Void
    /// Keeps credentials out of the deliveries shown.
    let redactor: Redactor

    /// - Parameters:
    ///   - wake: called after an accept, so a worker looks for due work at once.
    ///   - pause: how long an upstream's deliveries are held (its breaker is open), shown
    ///     on its pending deliveries as `waiting`.
    ///   - alert: receives the resolves of a person's actions: a dead delivery retried or
    ///     cancelled resolves its `delivery.dead` alert, an acknowledgement its `delivery.ack_overdue`.
    ///   - redactor: which headers are shown redacted; by default the config's.
    public init(
        store: any DeliveryStore,
        config: GatewayConfig,
        redactor: Redactor? = nil,
        wall: WallClock<C>,
        wake: @escaping @Sendable () -> Void = {},
        pause: @escaping @Sendable (String) -> Duration? = { _ in nil },
        alert: @escaping @Sendable (Alert) -> Void = { _ in }
    ) {
        self.store = store
        self.intake = DeliveryIntake(store: store)
        self.config = config
        self.wall = wall
        self.wake = wake
        self.pause = pause
        self.alert = alert
        self.redactor = redactor ?? Redactor(config: config)
    }

    /// Why a pending delivery is not being sent now, if its upstream holds it.
    private func waiting(_ delivery: Delivery) -> String? {
        guard delivery.status == .pending, let held = pause(delivery.upstream) else { return nil }
        return "\(delivery.upstream)'s circuit breaker is open; attempts resume in about "
            + "\(max(Int(held.inSeconds.rounded(.up)), 1)) s, without spending this delivery's attempts"
    }

    /// `POST /v1/deliveries`: 202 once the delivery is durable. The caller must be allowed to
    /// call the upstream (a delivery is sent with the upstream's credentials, so it needs the
    /// same `proxy:<upstream>` scope as a proxied call); the delivery is the caller's.
    ///
    /// The scope is checked before the name: an upstream the caller may not use and one that
    /// does not exist are both `403 forbidden`, and an unknown name (for a caller with
    /// `proxy:*` or `admin`) is answered with only the upstreams the caller may use.
    public func accept(
        _ body: Data,
        headers: HTTPFields,
        requestID: String,
        caller: DeliveryCaller = .admin
    ) async -> APIAnswer {
        let now = wall.now()
        let parsed = DeliveryRequest.parse(
            body,
            keyHeader: headers[HTTPField.Name("Idempotency-Key")!],
            config: config,
            now: now,
            id: DeliveryRequest.newID(at: now),
            mayUse: caller.mayUse
        )
        var delivery: NewDelivery
        switch parsed {
        case .success(let value): delivery = value
        case .failure(let problem):
            return .problem(
                ProblemDetails(problem.code, detail: problem.detail, requestID: requestID, field: problem.field)
            )
        }
        delivery.consumer = caller.consumer
        let outcome: AcceptOutcome
        do {
            outcome = try await intake.accept(delivery)
        } catch {
            return storeFailure(error, requestID: requestID)
        }
        switch outcome {
        case .accepted(let stored):
            wake()
            return accepted(stored, replayed: false)
        case .repeated(let stored):
            return accepted(stored, replayed: true)
        case .keyReused(let existing):
            return .problem(
                ProblemDetails(
                    .idempotencyKeyReused,
                    detail: "this Idempotency-Key was used for delivery \(existing) with another payload",
                    requestID: requestID,
                    field: "Idempotency-Key"
                )
            )
        case .keyInFlight:
            return .problem(
                ProblemDetails(
                    .idempotencyKeyInFlight,
                    detail: "a request with this Idempotency-Key is still being accepted; retry shortly",
                    requestID: requestID,
                    field: "Idempotency-Key"
                ),
                headers: [.retryAfter: "1"]
            )
        }
    }

    /// Accepts a delivery the gateway made itself (a write queued by `degrade: { writes:
    /// queue }`), and wakes a worker for it.
    public func queue(_ delivery: NewDelivery) async throws -> AcceptOutcome {
        let outcome = try await intake.accept(delivery)
        if case .accepted = outcome { wake() }
        return outcome
    }

    private func accepted(_ delivery: Delivery, replayed: Bool) -> APIAnswer {
        let location = "/v1/deliveries/\(delivery.id)"
        var headers: HTTPFields = [.location: location]
        if replayed { headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
        return .json(202, DeliveryAccepted(id: delivery.id, status: delivery.status.rawValue), headers: headers)
    }

    /// `GET /v1/deliveries/{id}`: the delivery with every attempt.
    public func show(_ id: String, requestID: String, caller: DeliveryCaller = .admin) async -> APIAnswer {
        do {
            guard let (delivery, attempts) = try await store.delivery(id: id), caller.owns(delivery) else {
                return notFound(id, requestID: requestID)
            }
            var view = DeliveryView.full(delivery, attempts: attempts, redactor: redactor)
            view.summary.waiting = waiting(delivery)
            return .json(200, view)
        } catch {
            return storeFailure(error, requestID: requestID)
        }
    }

    /// `GET /v1/deliveries?status=&upstream=&cursor=&limit=`: a page, newest first.
    public func list(
        _ parameters: [String: String],
        requestID: String,
        caller: DeliveryCaller = .admin
    ) async -> APIAnswer {
        var query = DeliveryQuery()
        if !caller.isAdmin {
            query.consumer = caller.consumer
            query.upstreams = Set(config.upstreams.map(\.name).filter(caller.mayUse))
        }
        if let status = parameters["status"] {
            guard let value = DeliveryStatus(rawValue: status) else {
                let names = DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", ")
                return invalid("status", "unknown status '\(status)'; use one of \(names)", requestID: requestID)
            }
            query.status = value
        }
        query.upstream = parameters["upstream"]
        query.cursor = parameters["cursor"]
        if let limit = parameters["limit"] {
            guard let value = Int(limit), (1...500).contains(value) else {
                return invalid(
                    "limit",
                    "limit must be a whole number from 1 to 500 (got '\(limit)')",
                    requestID: requestID
                )
            }
            query.limit = value
        }
        do {
            let page = try await store.deliveries(query)
            let views = page.deliveries.map { delivery in
                var view = DeliveryView.summary(delivery)
                view.waiting = waiting(delivery)
                return view
            }
            return .json(200, DeliveryPage(deliveries: views, nextCursor: page.nextCursor))
        } catch {
            return storeFailure(error, requestID: requestID)
        }
    }

    /// `POST /v1/deliveries/{id}/retry`: replays a dead (or cancelled) delivery now.
    public func retry(_ id: String, requestID: String, caller: DeliveryCaller = .admin) async -> APIAnswer {
        await transition(id, "retry", requestID: requestID, caller: caller) {
            try await store.retry(id: id, now: $0)
        } done: {
            wake()
            alert(Self.resolved(.dead, of: $0, "was retried by hand", at: wall.now()))
        }
    }

    /// `POST /v1/deliveries/{id}/cancel`: cancels a pending or dead delivery.
    public func cancel(_ id: String, requestID: String, caller: DeliveryCaller = .admin) async -> APIAnswer {
        await transition(id, "cancel", requestID: requestID, caller: caller) {
            try await store.cancel(id: id, now: $0)
        } done: {
            alert(Self.resolved(.dead, of: $0, "was cancelled by hand", at: wall.now()))
        }
    }

    /// `POST /v1/deliveries/{id}/ack`: the receiving system acknowledges it. Before any 2xx
    /// has been recorded (the first attempt still in flight) the ack is noted and takes effect
    /// with that 2xx; it never stops a delivery whose attempt then fails.
    public func acknowledge(_ id: String, requestID: String, caller: DeliveryCaller = .admin) async -> APIAnswer {
        await transition(id, "acknowledge", requestID: requestID, caller: caller) {
            try await store.acknowledge(id: id, now: $0)
        } done: {
            alert(Self.resolved(.ackOverdue, of: $0, "was acknowledged", at: wall.now()))
        }
    }

    private func transition(
        _ id: String,
        _ verb: String,
        requestID: String,
        caller: DeliveryCaller,
        _ change: (Date) async throws -> TransitionOutcome,
        done: (Delivery) -> Void
    ) async -> APIAnswer {
        do {
            // Another consumer's delivery is not found: nothing about it is revealed or changed.
            if !caller.isAdmin {
                guard let (delivery, _) = try await store.delivery(id: id), caller.owns(delivery) else {
                    return notFound(id, requestID: requestID)
                }
            }
            switch try await change(wall.now()) {
            case .changed(let delivery):
                done(delivery)
                return .json(200, DeliveryView.summary(delivery))
            case .notFound:
                return notFound(id, requestID: requestID)
            case .conflict(let status):
                let why =
                    verb == "acknowledge"
                    ? " (only a delivery queued with require_ack can be acknowledged, once it has been sent)" : ""
                return .problem(
                    ProblemDetails(
                        .conflict,
                        detail: "cannot \(verb) delivery \(id) while it is \(status.rawValue)\(why)",
                        requestID: requestID,
                        field: "status"
                    )
                )
            }
        } catch {
            return storeFailure(error, requestID: requestID)
        }
    }

    /// The resolve of `delivery`'s alert of `kind` after a person's action (`what` it was). The
    /// alerter sends it only where that alert was sent, so a delivery never alerted sends nothing.
    static func resolved(_ kind: Alert.Kind, of delivery: Delivery, _ what: String, at now: Date) -> Alert {
        Alert(
            kind: Alert.Kind(rawValue: "\(kind.rawValue).resolved"),
            severity: AlertSeverity.info.rawValue,
            summary: "\(delivery.upstream) delivery \(delivery.id) \(what)",
            upstream: delivery.upstream,
            subject: delivery.id,
            link: "/v1/deliveries/\(delivery.id)",
            at: now,
            resolves: kind
        )
    }

    private func notFound(_ id: String, requestID: String) -> APIAnswer {
        .problem(ProblemDetails(.notFound, detail: "no delivery has the id '\(id)'", requestID: requestID))
    }

    private func invalid(_ field: String, _ detail: String, requestID: String) -> APIAnswer {
        .invalid(field, detail, requestID: requestID)
    }

    private func storeFailure(_ error: any Error, requestID: String) -> APIAnswer {
        .storeFailure(error, store: "delivery", consequence: "nothing was changed", requestID: requestID)
    }
}
