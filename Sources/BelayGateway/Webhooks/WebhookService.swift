import Belay
import BelayAPI
import BelayHTTP
public import BelayStore
public import Foundation
public import HTTPTypes
public import Logging

/// The webhook inbox: `POST /webhooks/{source}` verifies the raw body, deduplicates by the
/// provider's event id (and, for `github` and `hmac`, whose signature covers no timestamp,
/// by the signed body within the source's `replay_window`), commits the event with its
/// forward, and only then answers 200. Nothing slow happens in the request path: forwarding
/// is the delivery queue's work.
///
/// A config reload replaces the sources (``reload(_:)``): an event is verified against the
/// sources in force when it arrived.
public struct WebhookService<C: Clock>: Sendable where C.Duration == Duration {
    /// The configured sources and their verifiers; a reload replaces them whole.
    struct Sources: Sendable {
        var byName: [String: GatewayConfig.WebhookSource]
        /// One verifier per source; a source whose options do not build one (impossible for a
        /// config the loader accepted) refuses every event.
        var verifiers: [String: Result<WebhookVerifier, ConfigError>]

        init(_ webhooks: [GatewayConfig.WebhookSource]) {
            byName = Dictionary(webhooks.map { ($0.name, $0) }) { first, _ in first }
            verifiers = [:]
            for source in webhooks {
                verifiers[source.name] = Result { () throws(ConfigError) in try WebhookVerifier(source: source) }
            }
        }
    }

    let intake: WebhookIntake
    let store: any WebhookStore & DeliveryStore
    /// The sources in force.
    let sources: Reloadable<Sources>
    let wall: WallClock<C>
    let wake: @Sendable () -> Void
    /// Told what became of each delivery (metrics): its source if configured, and the result.
    let observe: @Sendable (String?, WebhookIntakeResult) -> Void
    /// Which received headers are never stored (they may carry credentials).
    let redactor: Redactor
    /// Where rejections (`info`) and received events (`debug`) are logged.
    let logger: Logger
    /// The deliveries an event of a source confirms (`upstreams.<name>.ack.webhook`).
    let confirmations: WebhookConfirmations

    /// - Parameters:
    ///   - wake: called after an event with a forward is stored.
    ///   - logger: where rejections (`info`) and received events (`debug`) are logged, with
    ///     `belay.request.id`, `belay.webhook.source` and the reason or event id.
    ///   - observe: told what became of each delivery: the source (nil if none of that name
    ///     is configured) and the result.
    ///   - alert: receives the alert of a delivery the other system rejected (`ack.failure`).
    ///   - redactor: which received headers are never stored; by default the config's.
    public init(
        store: any WebhookStore & DeliveryStore,
        config: GatewayConfig,
        redactor: Redactor? = nil,
        wall: WallClock<C>,
        wake: @escaping @Sendable () -> Void = {},
        logger: Logger,
        observe: @escaping @Sendable (String?, WebhookIntakeResult) -> Void = { _, _ in },
        alert: @escaping @Sendable (Alert) -> Void = { _ in }
    ) {
        self.confirmations = WebhookConfirmations(
            config: config,
            store: store as? any ConfirmationStore,
            alert: alert,
            logger: logger
        )
        self.intake = WebhookIntake(store: store)
        self.store = store
        self.sources = Reloadable(Sources(config.webhooks))
        self.wall = wall
        self.wake = wake
        self.observe = observe
        self.redactor = redactor ?? Redactor(config: config)
        self.logger = logger
    }

    /// Verifies and forwards with `webhooks` from now on (a config reload): a source added is
    /// served, a removed one answers 404, a new secret verifies the next event. Events already
    /// stored keep the forward they were given.
    public func reload(_ webhooks: [GatewayConfig.WebhookSource]) {
        sources.replace(with: Sources(webhooks))
    }

    /// `POST /webhooks/{source}`.
    public func receive(source name: String, body: Data, headers: HTTPFields, requestID: String) async -> APIAnswer {
        let sources = self.sources.value
        guard let source = sources.byName[name], let verifier = try? sources.verifiers[name]?.get() else {
            let known = sources.byName[name] != nil
            observe(known ? name : nil, .rejected(reason: known ? "invalid-config" : "unknown-source"))
            return .problem(
                ProblemDetails(
                    .notFound,
                    detail: "no webhook source named '\(name)' is configured",
                    requestID: requestID,
                    field: "source"
                )
            )
        }
        let now = wall.now()
        let verified: VerifiedWebhook
        switch verifier.verify(body: body, headers: headers, now: now) {
        case .success(let value):
            verified = value
        case .failure(let rejection):
            // An unusable event id or body is the sender's bad input; anything else about
            // the signature is 401 and nothing is stored.
            let badInput: Set<WebhookRejection.Code> = [.missingEventID, .invalidEventID, .bodyNotJSON]
            let code: ProblemCode = badInput.contains(rejection.code) ? .invalidRequest : .signatureInvalid
            observe(name, .rejected(reason: rejection.code.description))
            // At debug: anyone can send a forged webhook, one per request (the metrics count them).
            logger.debug(
                "webhook rejected",
                metadata: [
                    "belay.request.id": .string(requestID),
                    "belay.webhook.source": .string(name),
                    "belay.reason": .string(rejection.code.description),
                ]
            )
            return .problem(ProblemDetails(code, detail: rejection.message, requestID: requestID))
        }
        let id = Self.newEventID(at: now)
        let contentType = headers[.contentType] ?? "application/json"
        var forward = Self.forward(id, of: source, body: body, contentType: contentType, at: now)
        forward?.orderingKey = Self.orderingKey(of: body, by: source.orderBy)
        let digest = WebhookIdentity.bodyDigest(of: body, source: source, at: now)
        var stored = headers.map { DeliveryHeader(name: $0.name.canonicalName, value: $0.value) }
        stored.removeAll { redactor.isSensitive(header: $0.name) }
        let event = NewWebhookEvent(
            id: id,
            source: name,
            eventID: verified.eventID,
            headers: stored,
            body: body,
            receivedAt: now,
            forward: forward,
            bodyDigest: digest
        )
        do {
            let ingested = try await intake.ingest(event)
            // Committed: now it may confirm deliveries (again, harmlessly, for an event received again).
            if case .stored(let stored) = ingested, confirmations.confirms(name) {
                _ = try await confirmations.apply(
                    source: name,
                    event: stored.id,
                    body: body,
                    at: now,
                    requestID: requestID
                )
            } else if case .repeated(let first) = ingested, confirmations.confirms(name) {
                _ = try await confirmations.apply(
                    source: name,
                    event: first.id,
                    body: first.body,
                    at: first.receivedAt,
                    requestID: requestID
                )
            }
            switch ingested {
            case .stored(let event):
                if event.deliveryID != nil { wake() }
                observe(name, .stored)
                var metadata: Logger.Metadata = [
                    "belay.request.id": .string(requestID),
                    "belay.webhook.source": .string(name),
                    "belay.webhook.event_id": .string(event.eventID),
                ]
                if let delivery = event.deliveryID { metadata["belay.delivery.id"] = .string(delivery) }
                logger.debug("webhook received", metadata: metadata)
                return .json(200, WebhookReceipt(id: event.id, eventID: event.eventID, duplicate: false))
            case .repeated(let event):
                observe(name, .duplicate)
                return .json(200, WebhookReceipt(id: event.id, eventID: event.eventID, duplicate: true))
            }
        } catch {
            observe(name, .rejected(reason: "store-unavailable"))
            return .problem(
                ProblemDetails(
                    .storeUnavailable,
                    detail: "the event could not be stored (\(error.code)); send it again",
                    requestID: requestID
                ),
                headers: [.retryAfter: "1"]
            )
        }
    }

    /// `GET /v1/webhooks/events?source=&status=&cursor=&limit=`: events newest first, each
    /// with its forward's status and attempts.
    public func list(_ parameters: [String: String], requestID: String) async -> APIAnswer {
        var query = WebhookEventQuery(source: parameters["source"], cursor: parameters["cursor"])
        if let status = parameters["status"] {
            guard let value = DeliveryStatus(rawValue: status) else {
                let names = DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", ")
                return .problem(
                    ProblemDetails(
                        .invalidRequest,
                        detail: "unknown forward status '\(status)'; use one of \(names)",
                        requestID: requestID,
                        field: "status"
                    )
                )
            }
            query.forwardStatus = value
        }
        if let limit = parameters["limit"] {
            guard let value = Int(limit), (1...500).contains(value) else {
                return .problem(
                    ProblemDetails(
                        .invalidRequest,
                        detail: "limit must be a whole number from 1 to 500 (got '\(limit)')",
                        requestID: requestID,
                        field: "limit"
                    )
                )
            }
            query.limit = value
        }
        do {
            let page = try await store.events(query)
            var views: [WebhookEventView] = []
            for (event, forward) in page.events {
                views.append(try await view(event, forward: forward))
            }
            return .json(200, WebhookEventPage(events: views, nextCursor: page.nextCursor))
        } catch {
            return .problem(
                ProblemDetails(.storeUnavailable, detail: "the events could not be read", requestID: requestID),
                headers: [.retryAfter: "1"]
            )
        }
    }

    /// `GET /v1/webhooks/events/{id}`: one event with its latest forward and that forward's
    /// attempts; `404` for an id no event has.
    public func show(_ id: String, requestID: String) async -> APIAnswer {
        do {
            guard let event = try await store.event(id: id) else {
                return .problem(
                    ProblemDetails(.notFound, detail: "no webhook event has the id '\(id)'", requestID: requestID)
                )
            }
            var forward: Delivery?
            if let deliveryID = event.deliveryID { forward = try await store.delivery(id: deliveryID)?.0 }
            return .json(200, try await view(event, forward: forward))
        } catch {
            return .problem(
                ProblemDetails(.storeUnavailable, detail: "the event could not be read", requestID: requestID),
                headers: [.retryAfter: "1"]
            )
        }
    }

    /// An event as the API shows it: with its forward and the forward's attempts.
    private func view(_ event: WebhookEvent, forward: Delivery?) async throws(StoreError) -> WebhookEventView {
        var view = WebhookEventView(
            id: event.id,
            source: event.source,
            eventID: event.eventID,
            receivedAt: event.receivedAt,
            bytes: event.body.count,
            forward: nil
        )
        if let forward {
            let attempts = try await store.delivery(id: forward.id).map { DeliveryView.attempts($0.1) }
            view.forward = WebhookForward(delivery: DeliveryView.summary(forward), attempts: attempts)
        }
        return view
    }

    /// `POST /v1/webhooks/events/{id}/replay`: forwards the event again, now, with the
    /// same `webhook-id` (so an application that saw it deduplicates; see ``WebhookIdentity``).
    public func replay(_ id: String, requestID: String) async -> APIAnswer {
        do {
            guard let event = try await store.event(id: id) else {
                return .problem(
                    ProblemDetails(.notFound, detail: "no webhook event has the id '\(id)'", requestID: requestID)
                )
            }
            guard let source = sources.value.byName[event.source], Gateway.forwardPolicy(for: source) != nil else {
                return .problem(
                    ProblemDetails(
                        .conflict,
                        detail: "the source '\(event.source)' has no forward_to; there is nothing to replay to",
                        requestID: requestID
                    )
                )
            }
            let now = wall.now()
            let contentType = event.headers.first { $0.name.lowercased() == "content-type" }?.value
            guard
                let delivery = Self.forward(
                    event.id,
                    of: source,
                    body: event.body,
                    contentType: contentType ?? "application/json",
                    at: now
                )
            else { return .problem(ProblemDetails(.conflict, detail: "nothing to forward to", requestID: requestID)) }
            // The "still forwarding" check is the store's, in the replay's own transaction: two
            // replays at once cannot both pass it.
            switch try await store.reforward(eventID: id, as: delivery) {
            case .notFound:
                return .problem(
                    ProblemDetails(.notFound, detail: "no webhook event has the id '\(id)'", requestID: requestID)
                )
            case .stillForwarding(let forward):
                return .problem(
                    ProblemDetails(
                        .conflict,
                        detail: "event \(id) is still being forwarded (\(forward.status.rawValue)); replay it once it "
                            + "is delivered or dead",
                        requestID: requestID
                    )
                )
            case .reforwarded(let forward):
                wake()
                return .json(202, WebhookReplay(id: event.id, forward: DeliveryView.summary(forward)))
            }
        } catch {
            return .problem(
                ProblemDetails(.storeUnavailable, detail: "the replay could not be stored", requestID: requestID),
                headers: [.retryAfter: "1"]
            )
        }
    }

    /// The delivery that forwards event `id` to the source's `forward_to` (nil without
    /// one): its exact bytes, `POST`, made at `now`, keyed by the event's stable identity
    /// (``WebhookIdentity/webhookID(eventID:body:source:)``: the forwards' `webhook-id` and
    /// `Idempotency-Key`), with the event id in `Belay-Webhook-Event`.
    static func forward(
        _ id: String,
        of source: GatewayConfig.WebhookSource,
        body: Data,
        contentType: String,
        at now: Date
    ) -> NewDelivery? {
        guard let policy = Gateway.forwardPolicy(for: source) else { return nil }
        return NewDelivery(
            id: DeliveryRequest.newID(at: now),
            upstream: policy.name,
            method: "POST",
            path: "",
            headers: [
                DeliveryHeader(name: "Content-Type", value: contentType),
                DeliveryHeader(name: "Belay-Webhook-Source", value: source.name),
                DeliveryHeader(name: WebhookIdentity.eventHeader, value: id),
            ],
            body: body,
            idempotencyKey: WebhookIdentity.webhookID(eventID: id, body: body, source: source),
            keyFromCaller: false,
            fingerprint: id,
            notBefore: now,
            createdAt: now
        )
    }

    /// The value at the source's `order_by` pointer, if it names a string or a number.
    static func orderingKey(of body: Data, by pointer: String?) -> String? {
        guard let pointer, let parsed = try? JSONPointer(pointer), let target = try? parsed.evaluate(in: body)
        else { return nil }
        switch target {
        case .string(let value), .integer(let value): return value
        case .otherValue, .missing: return nil
        }
    }

    /// A new event id: `evt_` + the time in milliseconds (12 hex digits) + 16 random hex digits.
    static func newEventID(at date: Date) -> String {
        "evt_" + DeliveryRequest.newID(at: date).dropFirst("dlv_".count)
    }
}
