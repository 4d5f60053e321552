public import Foundation

/// The audit trail of proxied requests. SQLite and PostgreSQL implement it alike.
///
/// Written in batches by one background writer (the gateway's `AuditRecorder`), read by the
/// management API, and kept within an age and a size budget by ``pruneAudit(olderThan:maxBytes:)``.
public protocol AuditStore: Sendable {
    /// Stores a batch of records in one transaction.
    func insertAudit(_ batch: [AuditRecord]) async throws(StoreError)

    /// The newest record whose request id is `requestID`, if any.
    func auditRecord(requestID: String) async throws(StoreError) -> AuditRecord?

    /// A page of records, newest first (in the order they were written).
    func auditRecords(_ query: AuditQuery) async throws(StoreError) -> AuditPage

    /// Deletes records received before `date`, then the oldest records until the audit
    /// trail's estimated size (``auditBytes()``) is at most `maxBytes`. Works in bounded
    /// transactions, so other writers wait for one chunk at most.
    func pruneAudit(olderThan date: Date, maxBytes: Int64) async throws(StoreError) -> AuditPruning

    /// The audit trail's estimated size in bytes: the sum of each record's estimated
    /// footprint (its text, its attempts and decisions, and a fixed allowance per row for
    /// numbers, row headers and index entries), kept as a running total.
    func auditBytes() async throws(StoreError) -> Int64
}
