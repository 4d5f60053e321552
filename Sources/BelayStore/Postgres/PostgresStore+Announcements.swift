import Foundation
import Logging
import PostgresNIO

extension PostgresStore: SharedStore {
    /// Listens on the store's channel with one pooled connection (count it in `pool_size`)
    /// and calls `changed` on each announcement, until the calling task is cancelled. A lost
    /// connection is reopened after a pause that doubles from 100 ms to 5 s, and `changed` is
    /// called when listening resumes, since announcements made meanwhile are lost; a worker's
    /// poll covers the pause.
    public func watchDeliveries(_ changed: @escaping @Sendable () -> Void) async {
        var pause = Duration.milliseconds(100)
        var listenedBefore = false
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        if listenedBefore { changed() }
                        listenedBefore = true
                        pause = .milliseconds(100)
                        for try await _ in notifications { changed() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning(
                    "lost the PostgreSQL connection that wakes workers; reconnecting",
                    metadata: ["belay.error": "\(PostgresFailure(error))"]
                )
            }
            do {
                try await Task.sleep(for: pause)
            } catch {
                return
            }
            pause = min(pause * 2, .seconds(5))
        }
    }
}
