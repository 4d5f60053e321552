import Belay
import BelayAPI
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
        let admin = requiring("admin", of: gateway)
        admin.post("v1/upstreams/:name/faults") { request, context in
            let requestID = context.requestID
            var copy = request
            guard let body = try? await copy.collectBody(upTo: DrillAnswer.maxBody) else {
                return Response.problem(
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
                    by: context.identity.name,
                    drills,
                    requestID: requestID
                )
            )
        }
        admin.delete("v1/upstreams/:name/faults") { _, context in
            let name = context.parameters.get("name") ?? ""
            return Response(
                DrillAnswer.stop(upstream: name, by: context.identity.name, drills, requestID: context.requestID)
            )
        }
        requiring("upstreams:read", of: gateway).get("v1/upstreams/:name/faults") { _, context in
            let name = context.parameters.get("name") ?? ""
            return Response(
                DrillAnswer.list(upstream: name, drills, gateway: gateway, requestID: context.requestID)
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
                view(record),
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
        return .json(200, view(ended), headers: [.cacheControl: "no-store"])
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
            DrillList(upstream: upstream, active: all.first(where: \.active).map(view), drills: all.map(view)),
            headers: [.cacheControl: "no-store"]
        )
    }

    /// A drill as the API shows it.
    static func view(_ record: DrillRecord) -> DrillView {
        var view = DrillView(
            id: record.drill.id,
            upstream: record.upstream,
            kind: record.drill.kind.rawValue,
            ratio: record.drill.ratio,
            summary: DrillWords.fault(record.drill),
            durationSeconds: record.duration.inSeconds,
            startedAt: record.startedAt,
            startedBy: record.startedBy,
            endsAt: record.endsAt,
            active: record.active
        )
        view.endedAt = record.endedAt
        view.ending = record.ending?.rawValue
        view.endedBy = record.endedBy
        if record.drill.kind == .error { view.status = record.drill.status }
        if record.drill.kind == .latency { view.latencyMs = record.drill.latency.inSeconds * 1_000 }
        return view
    }
}
