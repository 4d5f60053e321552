import Foundation
import Testing

@testable import BelayStore

/// Incidents (issue 15), on SQLite and on PostgreSQL.
@Suite struct IncidentStoreTests {
    private func incident(_ id: String, upstream: String = "pay", at: Date = t0, drill: Bool = false) -> Incident {
        Incident(
            id: id,
            upstream: upstream,
            cause: "circuit open",
            drill: drill,
            openedAt: at,
            detectedAt: at.addingTimeInterval(2),
            timeline: [
                IncidentEvent(at: at, event: "first_failure", detail: "HTTP 503"),
                IncidentEvent(at: at.addingTimeInterval(2), event: "detected", detail: "down"),
            ]
        )
    }

    private func incidents(_ store: AnyStore) throws -> any IncidentStore {
        try #require(store as? any IncidentStore)
    }

    @Test(arguments: StoreBackend.available)
    func anOpenedIncidentReadsBackWholeAndIsTheUpstreamsOpenOne(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let store = try incidents(store)
            let (stored, opened) = try await store.openIncident(incident("inc_1", drill: true))
            #expect(opened)
            #expect(stored.status == .open)
            let read = try #require(try await store.incident(id: "inc_1"))
            #expect(read == incident("inc_1", drill: true))
            #expect(read.timeToDetect == 2)
            #expect(read.timeToRecover == nil)
            #expect(try await store.openIncident(upstream: "pay") == read)
            #expect(try await store.openIncident(upstream: "crm") == nil)
            #expect(try await store.incident(id: "inc_missing") == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func aSecondOpenForTheSameUpstreamGetsTheFirstOne(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let store = try incidents(store)
            _ = try await store.openIncident(incident("inc_1"))
            let (second, opened) = try await store.openIncident(incident("inc_2", at: t0.addingTimeInterval(5)))
            #expect(!opened)
            #expect(second.id == "inc_1")
            #expect(try await store.incident(id: "inc_2") == nil)
            // Another upstream has its own.
            #expect(try await store.openIncident(incident("inc_3", upstream: "crm")).opened)
        }
    }

    @Test(arguments: StoreBackend.available)
    func concurrentOpensOfOneUpstreamStoreOneIncident(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let store = try incidents(store)
            let ids = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let result = try await store.openIncident(incident("inc_\(index)"))
                        return (result.incident.id, result.opened)
                    }
                }
                var results: [(String, Bool)] = []
                for try await result in group { results.append(result) }
                return results
            }
            #expect(ids.count(where: \.1) == 1)
            #expect(Set(ids.map(\.0)).count == 1)
            #expect(try await store.incidents(IncidentQuery()).incidents.count == 1)
        }
    }

    @Test(arguments: StoreBackend.available)
    func changesAddImpactAppendTheTimelineNoteRecoveryAndClose(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let store = try incidents(store)
            _ = try await store.openIncident(incident("inc_1"))
            #expect(
                try await store.updateIncident(
                    id: "inc_1",
                    IncidentChange(impact: IncidentImpact(failed: 3, stale: 1, longestDelayMilliseconds: 900))
                )
            )
            try await store.updateIncident(
                id: "inc_1",
                IncidentChange(
                    events: [IncidentEvent(at: t0.addingTimeInterval(1), event: "breaker.opened", detail: "open")],
                    impact: IncidentImpact(failed: 2, deliveriesDelayed: 1, longestDelayMilliseconds: 400),
                    recovery: .recovered(t0.addingTimeInterval(30))
                )
            )
            // A later recovery does not move the first; a relapse clears it.
            try await store.updateIncident(id: "inc_1", IncidentChange(recovery: .recovered(t0.addingTimeInterval(40))))
            var read = try #require(try await store.incident(id: "inc_1"))
            #expect(
                read.impact == IncidentImpact(failed: 5, stale: 1, deliveriesDelayed: 1, longestDelayMilliseconds: 900)
            )
            #expect(read.recoveredAt == t0.addingTimeInterval(30))
            #expect(read.timeToRecover == 30)
            // Entries come in time order, whenever they were written.
            #expect(read.timeline.map(\.event) == ["first_failure", "breaker.opened", "detected"])
            try await store.updateIncident(id: "inc_1", IncidentChange(recovery: .relapsed))
            #expect(try await store.incident(id: "inc_1")?.recoveredAt == nil)
            try await store.updateIncident(
                id: "inc_1",
                IncidentChange(recovery: .recovered(t0.addingTimeInterval(60)), closedAt: t0.addingTimeInterval(360))
            )
            read = try #require(try await store.incident(id: "inc_1"))
            #expect(read.status == .closed)
            #expect(read.closedAt == t0.addingTimeInterval(360))
            #expect(read.recoveredAt == t0.addingTimeInterval(60))
            #expect(try await store.openIncident(upstream: "pay") == nil)
            // Closed: a late change only adds; it neither reopens, nor moves the recovery or the close.
            try await store.updateIncident(
                id: "inc_1",
                IncidentChange(
                    impact: IncidentImpact(failed: 1),
                    recovery: .relapsed,
                    closedAt: t0.addingTimeInterval(999)
                )
            )
            read = try #require(try await store.incident(id: "inc_1"))
            #expect(read.status == .closed && read.impact.failed == 6)
            #expect(read.closedAt == t0.addingTimeInterval(360) && read.recoveredAt == t0.addingTimeInterval(60))
            #expect(!(try await store.updateIncident(id: "inc_missing", IncidentChange(impact: .init(failed: 1)))))
            // The upstream can open a new one now.
            #expect(try await store.openIncident(incident("inc_2", at: t0.addingTimeInterval(400))).opened)
        }
    }

    @Test(arguments: StoreBackend.available)
    func concurrentImpactFromSeveralWritersAddsUp(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let store = try incidents(store)
            _ = try await store.openIncident(incident("inc_1"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        try await store.updateIncident(id: "inc_1", IncidentChange(impact: IncidentImpact(failed: 2)))
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.incident(id: "inc_1")?.impact.failed == 20)
        }
    }

    @Test(arguments: StoreBackend.available)
    func listsPageNewestFirstAndFilter(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let store = try incidents(store)
            for index in 1...5 {
                let id = "inc_\(index)"
                _ = try await store.openIncident(incident(id, upstream: index.isMultiple(of: 2) ? "crm" : "pay"))
                if index < 4 { try await store.updateIncident(id: id, IncidentChange(closedAt: t0)) }
            }
            let first = try await store.incidents(IncidentQuery(limit: 2))
            #expect(first.incidents.map(\.id) == ["inc_5", "inc_4"])
            #expect(first.nextCursor == "inc_4")
            let second = try await store.incidents(IncidentQuery(cursor: first.nextCursor, limit: 2))
            #expect(second.incidents.map(\.id) == ["inc_3", "inc_2"])
            let last = try await store.incidents(IncidentQuery(cursor: second.nextCursor, limit: 2))
            #expect(last.incidents.map(\.id) == ["inc_1"] && last.nextCursor == nil)
            #expect(
                try await store.incidents(IncidentQuery(upstream: "crm")).incidents.map(\.id) == ["inc_4", "inc_2"]
            )
            #expect(try await store.incidents(IncidentQuery(status: .open)).incidents.map(\.id) == ["inc_5", "inc_4"])
            #expect(
                try await store.incidents(IncidentQuery(upstream: "pay", status: .closed)).incidents.map(\.id)
                    == ["inc_3", "inc_1"]
            )
            #expect(try await store.incidents(IncidentQuery(upstream: "pay")).incidents.first?.timeline.count == 2)
        }
    }

    @Test(arguments: StoreBackend.available)
    func purgeDeletesOnlyIncidentsClosedBeforeTheDateWithTheirTimelines(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let store = try incidents(store)
            for (index, closed) in [t0, t0.addingTimeInterval(100), nil].enumerated() {
                _ = try await store.openIncident(incident("inc_\(index)", upstream: "u\(index)"))
                if let closed { try await store.updateIncident(id: "inc_\(index)", IncidentChange(closedAt: closed)) }
            }
            #expect(try await store.purgeIncidents(closedBefore: t0.addingTimeInterval(50), limit: 10) == 1)
            #expect(try await store.incident(id: "inc_0") == nil)
            #expect(try await store.incident(id: "inc_1") != nil)
            #expect(try await store.purgeIncidents(closedBefore: t0.addingTimeInterval(1_000), limit: 10) == 1)
            // The open one stays, however old.
            #expect(try await store.incidents(IncidentQuery()).incidents.map(\.id) == ["inc_2"])
            // A new incident with a purged one's id starts with an empty timeline of its own.
            _ = try await store.openIncident(
                Incident(id: "inc_0", upstream: "u0", cause: "x", openedAt: t0, detectedAt: t0)
            )
            #expect(try await store.incident(id: "inc_0")?.timeline.isEmpty == true)
        }
    }
}
