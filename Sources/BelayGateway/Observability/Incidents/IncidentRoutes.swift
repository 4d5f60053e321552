import BelayAPI
import BelayHTTP
import BelayStore
import Foundation
import HTTPTypes
import Hummingbird

/// The answers of `GET /v1/incidents[/{id}]`: reads of the store, whichever instance opened
/// the incidents.
struct IncidentService: Sendable {
    let store: any IncidentStore

    /// `GET /v1/incidents?upstream=&status=open|closed&cursor=&limit=`: a page, newest first.
    func list(_ parameters: [String: String], requestID: String) async -> APIAnswer {
        var query = IncidentQuery()
        query.upstream = parameters["upstream"]
        if let status = parameters["status"] {
            guard let value = IncidentStatus(rawValue: status) else {
                return .invalid("status", "status must be open or closed (got '\(status)')", requestID: requestID)
            }
            query.status = value
        }
        if let cursor = parameters["cursor"] {
            guard cursor.hasPrefix("inc_"), cursor.count <= 64 else {
                return .invalid(
                    "cursor",
                    "cursor must be the next_cursor of a previous page (got '\(cursor.prefix(64))')",
                    requestID: requestID
                )
            }
            query.cursor = cursor
        }
        if let limit = parameters["limit"] {
            guard let value = Int(limit), (1...200).contains(value) else {
                return .invalid(
                    "limit",
                    "limit must be a whole number from 1 to 200 (got '\(limit.prefix(32))')",
                    requestID: requestID
                )
            }
            query.limit = value
        }
        do {
            let page = try await store.incidents(query)
            let body = IncidentListJSON(incidents: page.incidents.map(IncidentJSON.init), nextCursor: page.nextCursor)
            return Self.encoded(body)
        } catch {
            return .storeFailure(error, store: "incident", requestID: requestID)
        }
    }

    /// `GET /v1/incidents/{id}`: the incident as JSON, or as a Markdown postmortem draft.
    func show(_ id: String, markdown: Bool, requestID: String) async -> APIAnswer {
        do {
            guard let incident = try await store.incident(id: id) else {
                return .problem(
                    ProblemDetails(.notFound, detail: "no incident '\(id.prefix(64))' is kept", requestID: requestID)
                )
            }
            let json = IncidentJSON(incident)
            guard markdown else { return Self.encoded(json) }
            return APIAnswer(
                status: 200,
                headers: [.contentType: "text/markdown; charset=utf-8", .cacheControl: "no-store"],
                body: Data(Postmortem.markdown(json).utf8)
            )
        } catch {
            return .storeFailure(error, store: "incident", requestID: requestID)
        }
    }

    /// Whether an `Accept` header asks for Markdown before JSON.
    static func wantsMarkdown(_ accept: String?) -> Bool {
        guard let accept else { return false }
        var best: (markdown: Double, json: Double) = (0, 0)
        for part in accept.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let type = pieces.first else { continue }
            var quality = 1.0
            for parameter in pieces.dropFirst() where parameter.hasPrefix("q=") {
                quality = Double(parameter.dropFirst(2)) ?? 0
            }
            switch type {
            case "text/markdown": best.markdown = max(best.markdown, quality)
            case "application/json", "application/*", "*/*": best.json = max(best.json, quality)
            default: break
            }
        }
        return best.markdown > 0 && best.markdown >= best.json
    }

    private static func encoded(_ value: some Encodable) -> APIAnswer {
        let body = (try? ManagementJSON.encode(value)) ?? Data()
        return APIAnswer(
            status: 200,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: body
        )
    }
}

extension Router where Context == GatewayRequestContext {
    /// `GET /v1/incidents` and `GET /v1/incidents/{id}` (scope `upstreams:read`): thin
    /// translations to ``IncidentService``.
    func addIncidentRoutes(_ incidents: IncidentService, gateway: Gateway) {
        let read = requiring("upstreams:read", of: gateway)
        read.get("v1/incidents") { request, context in
            let parameters = request.uri.queryDictionary
            return Response(await incidents.list(parameters, requestID: context.requestID))
        }
        read.get("v1/incidents/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            let markdown = IncidentService.wantsMarkdown(request.headers[.accept])
            return Response(await incidents.show(id, markdown: markdown, requestID: context.requestID))
        }
    }
}
