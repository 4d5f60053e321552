import BelayAPI
import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird

extension Router where Context == GatewayRequestContext {
    /// `POST /v1/admin/reload` (scope `admin`): re-reads the config as SIGHUP does, a thin
    /// translation of ``ConfigReloader/reload(trigger:)``. Applied: `200` with the outcome's
    /// fields (``ReloadOutcome/fields``). Refused: `422 config-invalid` problem+json whose
    /// `problems` lists every problem with its key path; the running config is kept.
    func addReloadRoute(_ reloader: ConfigReloader<some Clock<Duration>>, gateway: Gateway) {
        requiring("admin", of: gateway).post("v1/admin/reload") { _, context in
            let outcome = await reloader.reload(trigger: .api)
            return Response(ReloadAnswer.answer(outcome, requestID: context.requestID))
        }
    }
}

/// The answer of `POST /v1/admin/reload`.
enum ReloadAnswer {
    /// `200` with the outcome, or `422 config-invalid` with every problem.
    static func answer(_ outcome: ReloadOutcome, requestID: String) -> APIAnswer {
        switch outcome.status {
        case .applied:
            return .json(200, outcome.view, headers: [.cacheControl: "no-store"])
        case .refused:
            let count = outcome.problems.count == 1 ? "1 problem" : "\(outcome.problems.count) problems"
            let problem = ProblemDetails(
                .configInvalid,
                detail: "the config file has \(count); the running config is kept",
                requestID: requestID
            )
            var answer = APIAnswer.json(
                422,
                Refused(problem: problem, outcome: outcome.view),
                headers: [.cacheControl: "no-store"]
            )
            answer.headers[.contentType] = ProblemDetails.mediaType
            answer.headers[.belayRequestID] = requestID
            return answer
        }
    }

    /// The problem's fields, then the outcome's (all but `outcome`).
    struct Refused: Encodable {
        var problem: ProblemDetails
        var outcome: ReloadOutcomeView

        enum CodingKeys: String, CodingKey {
            case trigger, at, applied, problems
            case needsRestart = "needs_restart"
        }

        func encode(to encoder: any Encoder) throws {
            try problem.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(outcome.trigger, forKey: .trigger)
            try container.encode(outcome.at, forKey: .at)
            try container.encode(outcome.applied, forKey: .applied)
            try container.encode(outcome.needsRestart, forKey: .needsRestart)
            try container.encode(outcome.problems, forKey: .problems)
        }
    }
}
