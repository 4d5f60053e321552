import Belay
import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Router where Context == GatewayRequestContext {
    /// The failure-drill routes, thin translations to ``DrillService``:
    /// `POST /v1/upstreams/{name}/faults` and `DELETE …/faults` (scope `admin`), and
    /// `GET …/faults` (scope `upstreams:read`).
    func addDrillRoutes(_ drills: DrillService<ContinuousClock>, gateway: Gateway) {
        post("v1/upstreams/:name/faults") { request, context in
            let identity: ConsumerAuth.Identity
            switch gateway.authorize(request, anyOf: ["admin"]) {
            case .success(let caller): identity = caller
            case .failure(let refusal): return refusal.response
            }
            let requestID = Gateway.newRequestID()
            var copy = request
            guard let body = try? await copy.collectBody(upTo: DrillAnswer.maxBody) else {
                return .problem(
                    ProblemDetails(
                        .payloadTooLarge,
                        detail: "a drill's body is at most \(DrillAnswer.maxBody) bytes",
                        requestID: requestID,
                        field: "/"
                    )
                )
            }
            let name = context.parameters.get("name") ?? ""
            return Response(
                DrillAnswer.start(
                    Data(body.readableBytesView),
                    upstream: name,
                    by: identity.name,
                    drills,
                    requestID: requestID
                )
            )
        }
        delete("v1/upstreams/:name/faults") { request, context in
            let identity: ConsumerAuth.Identity
            switch gateway.authorize(request, anyOf: ["admin"]) {
            case .success(let caller): identity = caller
            case .failure(let refusal): return refusal.response
            }
            let name = context.parameters.get("name") ?? ""
            return Response(
                DrillAnswer.stop(upstream: name, by: identity.name, drills, requestID: Gateway.newRequestID())
            )
        }
        get("v1/upstreams/:name/faults") { request, context in
            if let refusal = gateway.authorized(request, scope: "upstreams:read") { return refusal }
            let name = context.parameters.get("name") ?? ""
            return Response(
                DrillAnswer.list(upstream: name, drills, gateway: gateway, requestID: Gateway.newRequestID())
            )
        }
    }
}

/// The answers of the drill routes.
enum DrillAnswer {
    /// The largest body `POST …/faults` reads.
    static let maxBody = 16 << 10

    /// `201` with the drill and `Location`; `400` naming the field at fault; `404` for an
    /// unknown upstream; `409` while another drill runs on it.
    static func start(
        _ body: Data,
        upstream: String,
        by consumer: String,
        _ drills: DrillService<ContinuousClock>,
        requestID: String
    ) -> APIAnswer {
        let request: DrillRequest
        switch DrillRequest.parse(body) {
        case .success(let parsed): request = parsed
        case .failure(let problem):
            return .problem(
                ProblemDetails(.invalidRequest, detail: problem.detail, requestID: requestID, field: problem.field)
            )
        }
        switch drills.start(request, upstream: upstream, by: consumer) {
        case .success(let record):
            return .json(
                201,
                json(record),
                headers: [.location: "/v1/upstreams/\(upstream)/faults", .cacheControl: "no-store"]
            )
        case .failure(.unknownUpstream):
            return .problem(
                ProblemDetails(.notFound, detail: "no upstream named '\(upstream)' is configured", requestID: requestID)
            )
        case .failure(.refusedByLibrary(let error)):
            return .problem(
                ProblemDetails(.invalidRequest, detail: "\(error)", requestID: requestID, field: "/")
            )
        case .failure(.running(let running)):
            return .problem(
                ProblemDetails(
                    .conflict,
                    detail: "drill \(running.drill.id) (\(DrillWords.fault(running.drill))) runs on \(upstream) until "
                        + "\(running.endsAt.iso8601); DELETE /v1/upstreams/\(upstream)/faults ends it",
                    requestID: requestID
                )
            )
        }
    }

    /// `200` with the drill ended; `404` when none runs.
    static func stop(
        upstream: String,
        by consumer: String,
        _ drills: DrillService<ContinuousClock>,
        requestID: String
    ) -> APIAnswer {
        guard let ended = drills.stop(upstream: upstream, by: consumer) else {
            return .problem(
                ProblemDetails(.notFound, detail: "no drill is running on '\(upstream)'", requestID: requestID)
            )
        }
        return .json(200, json(ended), headers: [.cacheControl: "no-store"])
    }

    /// `200` with `active` (the drill in force, or null) and `drills` (it, then the ended ones,
    /// newest first); `404` for an unknown upstream.
    static func list(
        upstream: String,
        _ drills: DrillService<ContinuousClock>,
        gateway: Gateway,
        requestID: String
    ) -> APIAnswer {
        guard gateway.drillSwitch(upstream) != nil else {
            return .problem(
                ProblemDetails(.notFound, detail: "no upstream named '\(upstream)' is configured", requestID: requestID)
            )
        }
        let all = drills.drills(upstream)
        return .json(
            200,
            [
                "upstream": upstream,
                "active": all.first(where: \.active).map { json($0) as Any } ?? NSNull(),
                "drills": all.map(json),
            ] as [String: Any],
            headers: [.cacheControl: "no-store"]
        )
    }

    /// A drill as JSON.
    static func json(_ record: DrillRecord) -> [String: Any] {
        var object: [String: Any] = [
            "id": record.drill.id,
            "upstream": record.upstream,
            "kind": record.drill.kind.rawValue,
            "ratio": record.drill.ratio,
            "summary": DrillWords.fault(record.drill),
            "duration_seconds": record.duration.inSeconds,
            "started_at": record.startedAt.iso8601,
            "started_by": record.startedBy,
            "ends_at": record.endsAt.iso8601,
            "active": record.active,
            "ended_at": record.endedAt.map { $0.iso8601 as Any } ?? NSNull(),
            "ending": record.ending.map { $0.rawValue as Any } ?? NSNull(),
            "ended_by": record.endedBy.map { $0 as Any } ?? NSNull(),
        ]
        if record.drill.kind == .error { object["status"] = record.drill.status }
        if record.drill.kind == .latency { object["latency_ms"] = record.drill.latency.inSeconds * 1_000 }
        return object
    }
}
