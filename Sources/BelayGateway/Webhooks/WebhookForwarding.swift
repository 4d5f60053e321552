import Belay
import BelayHTTP
import BelayStore
import Foundation
import HTTPTypes
import NIOCore

/// Prepares each send of a webhook forward (a delivery to `webhook:<source>`): for a source
/// with verify-then-act, fetches the resource's current state from the provider and
/// attaches it; then signs what is sent with Belay's forward secret (Standard Webhooks),
/// the `webhook-id` being the forward's idempotency key: the event's stable identity
/// (``WebhookIdentity``).
///
/// Both happen at each send, in the delivery worker, never in the inbox's request path:
/// the state is as fresh as the send, and the signature's timestamp is the send's.
struct WebhookForwarding: Sendable {
    /// What one source's forwards need.
    struct Source: Sendable {
        var signer: StandardWebhooksSigner?
        var currentState: (client: UpstreamClient, upstream: String, path: PathTemplate)?
        /// Why the current state the source asks for cannot be fetched (its upstream is not
        /// running), if so: its forwards wait rather than go out unverified.
        var unverifiable: String?
    }

    /// How long a forward that cannot be prepared now waits before it is tried again.
    static let holdFor: Duration = .seconds(60)

    /// The sources, by their delivery upstream name (`webhook:<source>`); a reload replaces them.
    let sources: Reloadable<[String: Source]>
    /// The calendar time now.
    let now: @Sendable () -> Date
    /// The proxy's clients in force (a config reload may replace one).
    let clients: @Sendable () -> [String: UpstreamClient]

    /// The largest current state carried with an event.
    static let stateLimit = 1 << 20

    /// Gathers every forwarding source of `config`, with the proxy's `clients` to fetch through.
    init(
        config: GatewayConfig,
        clients lookup: @escaping @Sendable () -> [String: UpstreamClient],
        now: @escaping @Sendable () -> Date
    ) {
        self.sources = Reloadable(Self.entries(of: config.webhooks, clients: lookup()))
        self.now = now
        self.clients = lookup
    }

    /// Prepares forwards with `webhooks` from now on (a config reload): a new forward secret
    /// signs the next send, a new `verify_current_state` fetches from the next.
    func reload(_ webhooks: [GatewayConfig.WebhookSource]) {
        sources.replace(with: Self.entries(of: webhooks, clients: clients()))
    }

    /// What each forwarding source of `webhooks` needs, by its delivery upstream name.
    private static func entries(
        of webhooks: [GatewayConfig.WebhookSource],
        clients: [String: UpstreamClient]
    ) -> [String: Source] {
        var sources: [String: Source] = [:]
        for source in webhooks where source.forwardTo != nil {
            var entry = Source(signer: source.forwardSecret.flatMap(StandardWebhooksSigner.init(secret:)))
            if let state = source.currentState {
                if let client = clients[state.upstream], let path = try? PathTemplate(state.path) {
                    entry.currentState = (client, state.upstream, path)
                } else {
                    entry.unverifiable =
                        "webhook source \(source.name): its current state cannot be fetched from "
                        + "'\(state.upstream)', which is not running; the forward waits"
                }
            }
            sources[Gateway.forwardUpstream(source.name)] = entry
        }
        return sources
    }

    /// What this send of `delivery` carries; deliveries that are not webhook forwards are
    /// sent as stored. A forward whose source is no longer configured (a reload removed it),
    /// or whose current state cannot be fetched, is held, never sent unsigned or unverified.
    func prepare(_ delivery: Delivery) async -> DeliveryPreparation {
        guard let source = sources.value[delivery.upstream] else {
            guard let name = Gateway.webhookSource(ofForward: delivery.upstream) else {
                return .send(body: delivery.body, headers: [])
            }
            return .settled(
                .held(
                    reason: "webhook source \(name) is not configured with a forward_to; the forward waits",
                    retryAfter: Self.holdFor
                )
            )
        }
        if let unverifiable = source.unverifiable {
            return .settled(.held(reason: unverifiable, retryAfter: Self.holdFor))
        }
        var body = delivery.body ?? Data()
        if var state = source.currentState {
            // The upstream's client in force now: a reload may have replaced its policy.
            if let current = clients()[state.upstream] { state.client = current }
            switch await Self.attachCurrentState(to: body, from: state, delivery: delivery, now: now()) {
            case .success(let attached): body = attached
            case .failure(let result): return .settled(result.result)
            }
        }
        let headers =
            source.signer?.sign(id: delivery.idempotencyKey, timestamp: now(), body: body)
            .map { DeliveryHeader(name: $0.name.canonicalName, value: $0.value) } ?? []
        return .send(body: body, headers: headers)
    }

    /// Carries a ``SendResult`` through `Result`'s failure.
    struct Settled: Error {
        var result: SendResult
    }

    /// `{"event": <the event>, "current": <the state>, "verified": {upstream, path, status, fetched_at}}`,
    /// or the result that ends this attempt when the state cannot be had.
    static func attachCurrentState(
        to event: Data,
        from state: (client: UpstreamClient, upstream: String, path: PathTemplate),
        delivery: Delivery,
        now: Date
    ) async -> Result<Data, Settled> {
        let path: String
        do {
            path = try state.path.render(with: event)
        } catch {
            return .failure(
                Settled(
                    result: .refused(
                        reason: "verify-then-act: \(error.message), so it cannot be checked; not forwarded",
                        errorClass: "verify",
                        endpoint: nil
                    )
                )
            )
        }
        let target = "\(state.upstream)\(path)"
        let split = UpstreamRequest.pathAndQuery(of: path)
        let result = await state.client.send(
            UpstreamRequest(method: .get, path: split.path, query: split.query, headers: [.accept: "application/json"]),
            correlationID: delivery.id,
            // A cached answer is an old state: it must never be forwarded as the current one.
            servingStale: false,
            // Read within the attempt's deadline: a trickling answer cannot hold the forward.
            answer: .hold
        )
        let endpoint = result.attempts.last?.endpoint.description
        switch result.outcome {
        case .success(let response):
            let status = response.status.code
            var bytes: ByteBuffer
            switch response.body {
            case .buffered(let held): bytes = held
            case .stream(let stream):
                do {
                    bytes = try await stream.collect(upTo: stateLimit)
                } catch {
                    return .failure(
                        Settled(
                            result: .failed(
                                errorClass: "verify",
                                detail: "the current state from \(target) could not be read (over 1 MiB, or cut short)",
                                endpoint: endpoint
                            )
                        )
                    )
                }
            }
            if status == 404 || status == 410 {
                return .failure(
                    Settled(
                        result: .refused(
                            reason:
                                "verify-then-act: \(target) answered HTTP \(status): the resource does not exist, so the event is not forwarded",
                            errorClass: "verify",
                            endpoint: endpoint
                        )
                    )
                )
            }
            guard (200..<300).contains(status) else {
                return .failure(
                    Settled(
                        result: .failed(
                            errorClass: "verify",
                            detail: "fetching the current state from \(target) answered HTTP \(status)",
                            endpoint: endpoint
                        )
                    )
                )
            }
            let current = Data(bytes.readableBytesView)
            var body = Data(#"{"event":"#.utf8)
            body += json(event)
            body += Data(#","current":"#.utf8)
            body += json(current)
            let verified: [String: Any] = [
                "upstream": state.upstream, "path": path, "status": status, "fetched_at": now.iso8601,
            ]
            body += Data(#","verified":"#.utf8)
            body +=
                (try? JSONSerialization.data(withJSONObject: verified, options: [.sortedKeys, .withoutEscapingSlashes]))
                ?? Data("{}".utf8)
            body += Data("}".utf8)
            return .success(body)
        case .failure(let error as ResilienceError)
        where result.attempts.isEmpty
            && [.circuitOpen, .circuitIsolated, .bulkheadFull, .concurrencyLimited, .rateLimited].contains(error.code):
            return .failure(
                Settled(
                    result: .held(
                        reason: "verify-then-act: \(state.upstream): \(error.message)",
                        retryAfter: error.retryAfter
                    )
                )
            )
        case .failure(let error):
            return .failure(
                Settled(
                    result: .failed(
                        errorClass: "verify",
                        detail:
                            "fetching the current state from \(target) failed: \(UpstreamProblem.describe(error, upstream: state.upstream).detail)",
                        endpoint: endpoint
                    )
                )
            )
        }
    }

    /// `bytes` as they are when they are JSON, else as a JSON string.
    private static func json(_ bytes: Data) -> Data {
        if (try? JSONSerialization.jsonObject(with: bytes, options: .fragmentsAllowed)) != nil { return bytes }
        let text = String(decoding: bytes, as: UTF8.self)
        return (try? JSONSerialization.data(withJSONObject: text, options: .fragmentsAllowed)) ?? Data("null".utf8)
    }
}
