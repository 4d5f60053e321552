import NIOCore

/// A `TaskExecutor` that runs jobs on one NIO event loop.
///
/// The proxy runs each call with its connection's event loop as the preferred executor:
/// the pipeline, AsyncHTTPClient's request (whose pool prefers a connection on the calling
/// loop) and the answer then stay on one thread, instead of hopping between Swift's
/// cooperative pool and the event loops at every await.
final class EventLoopExecutor: TaskExecutor {
    /// The loop jobs run on.
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    /// One executor for each loop of `group`, by the loop's identity.
    static func table(for group: any EventLoopGroup) -> [ObjectIdentifier: EventLoopExecutor] {
        var table: [ObjectIdentifier: EventLoopExecutor] = [:]
        for loop in group.makeIterator() {
            table[ObjectIdentifier(loop)] = EventLoopExecutor(loop)
        }
        return table
    }
}
