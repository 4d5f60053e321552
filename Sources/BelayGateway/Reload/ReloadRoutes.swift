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
        post("v1/admin/reload") { request, _ in
            if let refusal = gateway.authorized(request, scope: "admin") { return refusal }
            let outcome = await reloader.reload(trigger: .api)
            return Response(ReloadAnswer.answer(outcome, requestID: Gateway.newRequestID()))
        }
    }
}

/// The answer of `POST /v1/admin/reload`.
enum ReloadAnswer {
    /// `200` with the outcome, or `422 config-invalid` with every problem.
    static func answer(_ outcome: ReloadOutcome, requestID: String) -> APIAnswer {
        switch outcome.status {
        case .applied:
            return .json(200, outcome.fields, headers: [.cacheControl: "no-store"])
        case .refused:
            let count = outcome.problems.count == 1 ? "1 problem" : "\(outcome.problems.count) problems"
            let problem = ProblemDetails(
                .configInvalid,
                detail: "the config file has \(count); the running config is kept",
                requestID: requestID
            )
            var object = (try? JSONSerialization.jsonObject(with: problem.json())) as? [String: Any] ?? [:]
            for (key, value) in outcome.fields where key != "outcome" { object[key] = value }
            var answer = APIAnswer.json(422, object, headers: [.cacheControl: "no-store"])
            answer.headers[.contentType] = ProblemDetails.mediaType
            answer.headers[.belayRequestID] = requestID
            return answer
        }
    }
}
