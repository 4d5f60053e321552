import BelayHTTP
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import NIOSSL

/// Guards one HTTP/1.1 connection, between the HTTP decoder and Hummingbird's handling:
///
/// - closes it when its client is too slow (``ConnectionDeadlines``: `server.header_timeout`,
///   `server.body_timeout`, `server.idle_timeout`); a body cut short this way reaches its
///   route as an error, never as a shorter body;
/// - once the server stops (the listener closed and the connection told to quiesce, after
///   which Hummingbird closes it when its answers are written), closes it if it is still open
///   `inFlightBound` later;
/// - refuses a request whose framing RFC 9112 forbids (``RequestFraming``) before it is
///   routed, and a request the HTTP decoder cannot parse, with a `400 invalid-request`
///   problem naming the field and `Connection: close`; then closes the connection.
///
/// A refusal is written once the answers before it are written, and, while the answer to the
/// request at fault has not begun, in place of that answer. After it nothing more is read or
/// written: the output is closed, the input read and dropped until the client closes or
/// ``lingerTime`` passes (so that unread input does not reset the connection before the
/// client reads the refusal), then the connection is closed.
///
/// Every method runs on the channel's event loop.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// How long a refused connection's input is still read, at most.
    static let lingerTime = TimeAmount.seconds(1)
    /// Reads of a head are kept (to explain a decoding error) until they hold this many bytes.
    static let keptHeadBytes = 16 << 10

    /// Thrown to the route reading a body that did not arrive in time.
    struct BodyTimeout: Error, CustomStringConvertible {
        var description: String { "the request body did not arrive within server.body_timeout" }
    }

    private let logger: Logger
    /// How long the answers in progress may take once the server stops.
    private let inFlightBound: TimeAmount
    /// Closes the connection `inFlightBound` after the server began to stop.
    private var stopTimer: Scheduled<Void>?
    private var deadlines: ConnectionDeadlines<ContinuousClock.Instant>
    private let clock = ContinuousClock()
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var timerAt: ContinuousClock.Instant?
    /// The first reads of the head being read (not copied), to name the field of a decoding error.
    private var headParts: [ByteBuffer] = []
    private var headBytes = 0
    /// Whether the oldest owed request's answer has begun.
    private var answerStarted = false
    /// A refusal waiting for the answers before it.
    private var pending: ProblemDetails?
    /// Whether a refusal is decided: nothing more goes to the application.
    private var refusing = false
    /// Whether the refusal went out in place of the application's answer: its writes are dropped.
    private var answeredInstead = false
    /// Whether to close once the answer in progress ends.
    private var closeAfterAnswer = false

    init(timeouts: ConnectionDeadlines<ContinuousClock.Instant>.Timeouts, inFlightBound: Duration, logger: Logger) {
        self.logger = logger
        self.inFlightBound = TimeAmount(inFlightBound)
        self.deadlines = ConnectionDeadlines(timeouts: timeouts, openedAt: ContinuousClock.now)
    }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The raw bytes, before the decoder (after TLS, if any: the plain bytes): a head is
        // timed from its first byte.
        let operations = context.pipeline.syncOperations
        if let tls = try? operations.handler(type: NIOSSLServerHandler.self) {
            try? operations.addHandler(ByteObserver(owner: self), position: .after(tls))
        } else {
            try? operations.addHandler(ByteObserver(owner: self), position: .first)
        }
        deadlines = ConnectionDeadlines(timeouts: deadlines.timeouts, openedAt: clock.now)
        reschedule()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        stopTimer?.cancel()
        stopTimer = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        stopTimer?.cancel()
        stopTimer = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, stopTimer == nil {
            // The server stops: what is in flight has inFlightBound to finish.
            stopTimer = context.eventLoop.assumeIsolated().scheduleTask(in: inFlightBound) { [self] in
                self.stopTimer = nil
                self.logger.debug(
                    "connection closed",
                    metadata: ["belay.timeout": "stop", "belay.in_flight_bound": .string("\(self.inFlightBound)")]
                )
                context.close(promise: nil)
            }
        }
        if refusing, let event = event as? ChannelEvent, event == .inputClosed {
            // The client has read the refusal and closed its side.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: inbound

    /// Raw bytes arrived (called by ``ByteObserver`` before the decoder sees them).
    fileprivate func received(_ bytes: ByteBuffer) {
        guard !refusing else { return }
        deadlines.received(at: clock.now)
        if !deadlines.readingBody, headBytes < Self.keptHeadBytes {
            headParts.append(bytes)
            headBytes += bytes.readableBytes
        }
        reschedule()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing else { return }
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let request):
            headParts.removeAll(keepingCapacity: true)
            headBytes = 0
            if let refusal = RequestFraming.refusal(for: request.headerFields) {
                refuse(refusal, requestID: Gateway.newRequestID())
                return
            }
            deadlines.headRead(at: clock.now)
        case .body:
            break
        case .end:
            deadlines.endRead(at: clock.now)
        }
        reschedule()
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !refusing else { return }
        let readingBody = deadlines.readingBody
        let headText = readingBody ? nil : String(decoding: headParts.flatMap { $0.readableBytesView }, as: UTF8.self)
        guard let refusal = RequestFraming.refusal(forDecoding: error, head: headText) else {
            context.fireErrorCaught(error)
            return
        }
        guard readingBody else {
            refuse(refusal, requestID: Gateway.newRequestID())
            return
        }
        // The route reading this body must fail, not take what came as the whole body.
        context.fireErrorCaught(error)
        if deadlines.owed == 1 && !answerStarted {
            refuse(refusal, requestID: Gateway.newRequestID(), inPlaceOfAnswer: true)
        } else {
            // An answer is being written: the connection closes after it.
            refusing = true
            closeAfterAnswer = true
        }
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !answeredInstead else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head:
            answerStarted = true
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            answerStarted = false
            deadlines.answerEnded(at: clock.now)
            context.write(data, promise: promise)
            if deadlines.owed == 0, let problem = pending {
                pending = nil
                writeRefusal(problem, context: context)
            } else if closeAfterAnswer {
                closeAfterAnswer = false
                context.flush()
                context.close(promise: nil)
            } else {
                reschedule()
            }
        }
    }

    // MARK: refusing

    /// Refuses a request: the refusal is written now if no answer is owed before it (or it
    /// goes `inPlaceOfAnswer` of one not yet begun), else once the answers owed are written.
    private func refuse(_ refusal: RequestFraming.Refusal, requestID: String, inPlaceOfAnswer: Bool = false) {
        refusing = true
        timer?.cancel()
        timer = nil
        logger.debug(
            "request refused",
            metadata: [
                "belay.request.id": .string(requestID),
                "belay.problem": .string(ProblemCode.invalidRequest.name),
                "belay.field": .string(refusal.field),
            ]
        )
        let problem = ProblemDetails(
            .invalidRequest,
            detail: refusal.detail,
            requestID: requestID,
            field: refusal.field
        )
        guard let context else { return }
        if !inPlaceOfAnswer && deadlines.owed > 0 {
            pending = problem
            return
        }
        writeRefusal(problem, context: context)
    }

    private func writeRefusal(_ problem: ProblemDetails, context: ChannelHandlerContext) {
        answeredInstead = true
        let body = ByteBuffer(bytes: problem.json())
        let head = HTTPResponse(
            status: .init(code: problem.status),
            headerFields: [
                .contentType: ProblemDetails.mediaType,
                .contentLength: String(body.readableBytes),
                .connection: "close",
                .cacheControl: "no-store",
                .belayRequestID: problem.requestID,
            ]
        )
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        written.assumeIsolated().whenComplete { _ in
            context.close(mode: .output).assumeIsolated().whenFailure { _ in context.close(promise: nil) }
            context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTime) { context.close(promise: nil) }
        }
    }

    // MARK: timing

    /// Makes sure a timer fires by the next deadline.
    private func reschedule() {
        guard !refusing, let context, let deadline = deadlines.deadline else { return }
        if let timerAt, timerAt <= deadline.at { return }
        timer?.cancel()
        timerAt = deadline.at
        let wait = TimeAmount(max(deadline.at - clock.now, .zero))
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: wait) { [self] in
            self.timer = nil
            self.timerAt = nil
            self.fire()
        }
    }

    private func fire() {
        guard !refusing, let context else { return }
        guard let expiry = deadlines.expiry(at: clock.now) else {
            reschedule()
            return
        }
        refusing = true
        logger.debug("connection closed", metadata: ["belay.timeout": .string("\(expiry)")])
        if expiry == .body { context.fireErrorCaught(BodyTimeout()) }
        context.close(promise: nil)
    }
}

/// Tells a ``ConnectionGuard`` of the raw bytes read, before the HTTP decoder.
private final class ByteObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Both handlers run on the channel's event loop (weak: the pipeline owns the guard).
    weak var owner: ConnectionGuard?

    init(owner: ConnectionGuard) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner?.received(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension ConnectionGuard: Sendable {}

@available(*, unavailable)
extension ByteObserver: Sendable {}
