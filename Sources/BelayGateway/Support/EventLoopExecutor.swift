import NIOCore

/// A `TaskExecutor` that runs jobs on one NIO event loop.
///
/// A task that prefers it (`withTaskExecutorPreference`) runs on the loop's thread, and so do
/// its child tasks: an await that resumes after I/O on that loop needs no thread switch.
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
