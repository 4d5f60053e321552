/// Injects latency, errors or chosen outcomes at a rate, to rehearse failure (chaos testing).
///
/// Inert unless ``Configuration/enabled`` is true; a disabled strategy only forwards.
///
/// ```swift
/// let chaos = FaultInjection<Int, ContinuousClock>.Configuration(
///     enabled: true, rate: 0.1, fault: .error { URLError(.timedOut) })
/// ```
public struct FaultInjection<Output: Sendable, C: Clock>: ResilienceStrategy where C.Duration == Duration {
    /// What to inject.
    public enum Fault: Sendable {
        /// Wait this long, then run the call.
        case latency(Duration)
        /// Fail with this error instead of calling.
        case error(@Sendable () -> any Error)
        /// Return this value instead of calling.
        case outcome(@Sendable () -> Output)
    }

    /// Options of fault injection.
    public struct Configuration: Sendable {
        /// The strategy's name in events. Default `fault-injection`.
        public var name: String
        /// Whether faults are injected at all. Default false.
        public var enabled: Bool
        /// The share of calls (`0...1`) that get the fault. Default 0.
        public var rate: Double
        /// The fault.
        public var fault: Fault
        /// A uniform random number in `0..<1`. Default the system generator.
        public var random: @Sendable () -> Double

        /// Creates a configuration.
        public init(
            enabled: Bool = false,
            rate: Double = 0,
            fault: Fault,
            random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
            name: String = "fault-injection"
        ) {
            self.name = name
            self.enabled = enabled
            self.rate = rate
            self.fault = fault
            self.random = random
        }

        func validate() throws(ConfigurationError) {
            var validator = OptionValidator(prefix: name)
            validator.name(name)
            validator.ratio(rate, "rate")
            if case .latency(let latency) = fault {
                validator.nonNegative(latency, "fault.latency")
            }
            try validator.check()
        }
    }

    /// The options in force.
    public let configuration: Configuration
    let clock: C

    /// Creates a fault-injection strategy, validating its options.
    public init(_ configuration: Configuration, clock: C) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
    }

    public func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<
        Output, any Error
    > {
        guard configuration.enabled, configuration.rate > 0, configuration.random() < configuration.rate else {
            return await next(context)
        }
        switch configuration.fault {
        case .latency(let latency):
            context.emit(.faultInjected(.latency), strategy: configuration.name)
            do {
                try await clock.sleep(for: latency)
            } catch {
                return .failure(CancellationError())
            }
            return await next(context)
        case .error(let make):
            context.emit(.faultInjected(.error), strategy: configuration.name)
            return .failure(make())
        case .outcome(let make):
            context.emit(.faultInjected(.outcome), strategy: configuration.name)
            return .success(make())
        }
    }
}
