import Synchronization

/// Pipelines, and the circuit breakers and limiters they share, by name: built once, shared
/// by every caller that asks for them, and replaced by name (Polly's
/// `ResiliencePipelineRegistry`, Resilience4j's registries).
///
/// A pipeline is registered under a name with the function that builds it; that function
/// gets the registry's ``Shared`` objects too, and takes them from it by name, so that two
/// pipelines (or two parts of an application) that ask for the breaker `crm` with the same options get
/// the same breaker. Registering a name again replaces its pipeline; the shared objects it
/// asks for again with **unchanged options keep their state** (an open breaker stays open, a
/// learnt concurrency limit stays learnt), while ones asked for with other options start
/// afresh. That is how a reloaded policy is applied: build the same names from the new
/// options. A replacement that fails validation changes nothing.
///
/// ```swift
/// let registry = ResilienceRegistry(clock: ContinuousClock())
/// try registry.register("crm", for: Data.self) { builder, shared in
///     builder
///         .timeout(.seconds(10))
///         .circuitBreaker(try shared.circuitBreaker("crm", .init(name: "crm")))
///         .adaptiveConcurrencyLimit(try shared.adaptiveConcurrencyLimit("crm", .init(name: "crm")))
/// }
/// let pipeline = try registry.pipeline("crm", for: Data.self)
/// ```
///
/// A breaker (or limiter) replaced by other options stays with the pipelines built on it
/// until they are registered again: pipelines that share one should be rebuilt together.
public final class ResilienceRegistry<C: Clock>: Sendable where C.Duration == Duration {
    fileprivate struct PipelineKey: Hashable {
        var name: String
        var output: ObjectIdentifier
    }

    fileprivate struct ComponentKey: Hashable {
        var kind: String
        var name: String
    }

    /// A shared object and the options it was made from (both of a type its kind fixes).
    fileprivate struct Component: Sendable {
        var options: any Sendable
        var object: any Sendable
    }

    fileprivate struct State: Sendable {
        var pipelines: [PipelineKey: any Sendable] = [:]
        var components: [ComponentKey: Component] = [:]
    }

    /// The clock every pipeline and shared object of the registry runs on.
    public let clock: C
    fileprivate let state = Mutex(State())

    /// Creates an empty registry on `clock`.
    public init(clock: C) {
        self.clock = clock
    }

    /// How a pipeline is built: from a fresh builder on the registry's clock, and the shared
    /// objects it takes by name.
    public typealias Build<Output: Sendable> = (Builder<Output>, Shared) throws(ConfigurationError) -> Builder<Output>

    /// A builder of pipelines for `Output` on the registry's clock.
    public typealias Builder<Output: Sendable> = ResiliencePipeline<Output>.Builder<C>

    /// Registers the pipeline `name` for `Output`, or replaces it, building it at once.
    /// - Returns: the pipeline built.
    /// - Throws: ``ConfigurationError`` with every invalid option; the name keeps the pipeline
    ///   it had (if any), and its shared objects keep theirs.
    @discardableResult
    public func register<Output: Sendable>(
        _ name: String,
        for output: Output.Type = Output.self,
        build: Build<Output>
    ) throws(ConfigurationError) -> ResiliencePipeline<Output> {
        // Built outside the lock. A shared object asked for with new options is kept aside
        // and stored only once the whole pipeline is valid.
        let shared = stage()
        let pipeline = try build(ResiliencePipeline<Output>.Builder(clock: clock), shared).build()
        let key = PipelineKey(name: name, output: ObjectIdentifier(Output.self))
        state.withLock { state in
            Self.store(shared, in: &state)
            state.pipelines[key] = pipeline
        }
        return pipeline
    }

    /// Shared objects for building several things at once (a whole policy's pipelines or
    /// clients), stored by ``commit(_:)`` only if they all turn out valid: objects asked for
    /// with the options they were made from are the registry's own, new ones are kept aside.
    /// Dropping it unused changes nothing.
    public func stage() -> Shared {
        Shared(registry: self, staging: true)
    }

    /// Stores the objects `shared` (from ``stage()``) made, replacing those of the same kind
    /// and name.
    public func commit(_ shared: Shared) {
        state.withLock { state in Self.store(shared, in: &state) }
    }

    /// Forgets the shared objects of every kind whose names are not in `names` (what a policy
    /// no longer names): asked for again later, they start afresh. Pipelines built on them
    /// keep them.
    public func removeShared(except names: Set<String>) {
        state.withLock { state in
            state.components = state.components.filter { names.contains($0.key.name) }
        }
    }

    private static func store(_ shared: Shared, in state: inout State) {
        for (key, component) in shared.staged.withLock({ $0 }) {
            state.components[key] = component
        }
    }

    /// The pipeline registered as `name` for `Output`.
    /// - Throws: ``ConfigurationError`` (option `registry.<name>`) if none is.
    public func pipeline<Output: Sendable>(
        _ name: String,
        for output: Output.Type = Output.self
    ) throws(ConfigurationError) -> ResiliencePipeline<Output> {
        let key = PipelineKey(name: name, output: ObjectIdentifier(Output.self))
        let stored = state.withLock { $0.pipelines[key] }
        guard let pipeline = stored as? ResiliencePipeline<Output> else {
            throw ConfigurationError(issues: [
                .init(
                    option: "registry.\(name)",
                    message: "no pipeline is registered under this name for \(Output.self)"
                )
            ])
        }
        return pipeline
    }

    /// Removes the pipeline `name` for `Output`; its shared objects stay for others.
    /// - Returns: whether there was one.
    @discardableResult
    public func remove<Output: Sendable>(_ name: String, for output: Output.Type = Output.self) -> Bool {
        let key = PipelineKey(name: name, output: ObjectIdentifier(Output.self))
        return state.withLock { $0.pipelines.removeValue(forKey: key) != nil }
    }

    /// The names pipelines are registered under, sorted.
    public var names: [String] {
        state.withLock { Array(Set($0.pipelines.keys.map(\.name))).sorted() }
    }

    /// The registry's shared objects outside a registration (to read a breaker's state,
    /// `isolate()` it, read a learnt limit): the same objects pipelines were built on, or, if
    /// there is none with the options asked for, one made and stored at once.
    public var shared: Shared { Shared(registry: self, staging: false) }

    // MARK: - Shared objects

    /// The circuit breakers and limiters pipelines share, by name, per kind (the breaker `crm`
    /// and the limit `crm` are two objects). Asked for with the options it was made from, an
    /// object is the one made before, its state kept; with other options, a new one. While a
    /// pipeline is being registered, new ones are kept aside until the pipeline is valid,
    /// then stored.
    public final class Shared: Sendable {
        fileprivate let registry: ResilienceRegistry<C>
        /// Whether this is a registration's, whose new objects are stored once it succeeds.
        fileprivate let isStaging: Bool
        /// Objects made during a registration, stored once it succeeds.
        fileprivate let staged = Mutex<[ComponentKey: Component]>([:])

        fileprivate init(registry: ResilienceRegistry<C>, staging: Bool) {
            self.registry = registry
            self.isStaging = staging
        }

        /// The circuit breaker `name`: the one made before if its options were the same (its
        /// state kept), else a new one, closed, from `configuration` (whose `onStateChange`
        /// callback is not compared).
        public func circuitBreaker(
            _ name: String,
            _ configuration: CircuitBreaker<C>.Configuration
        ) throws(ConfigurationError) -> CircuitBreaker<C> {
            let clock = registry.clock
            return try object(
                "circuit-breaker",
                name,
                configuration,
                same: { $0.hasSameOptions(as: $1) },
                make: { () throws(ConfigurationError) in try CircuitBreaker(configuration, clock: clock) }
            )
        }

        /// The adaptive concurrency limit `name`: the one made before if its options were the
        /// same (its learnt limit, and the calls it holds and queues, kept), else a new one.
        public func adaptiveConcurrencyLimit(
            _ name: String,
            _ configuration: AdaptiveConcurrencyLimit<C>.Configuration
        ) throws(ConfigurationError) -> AdaptiveConcurrencyLimit<C> {
            let clock = registry.clock
            return try object("adaptive-concurrency-limit", name, configuration, same: ==) {
                () throws(ConfigurationError) in try AdaptiveConcurrencyLimit(configuration, clock: clock)
            }
        }

        /// The bulkhead `name`: the one made before if its options were the same, else a new
        /// one.
        public func bulkhead(
            _ name: String,
            _ configuration: Bulkhead.Configuration
        ) throws(ConfigurationError) -> Bulkhead {
            try object("bulkhead", name, configuration, same: ==) { () throws(ConfigurationError) in
                try Bulkhead(configuration)
            }
        }

        /// The rate limiter `name`: the one made before if its options were the same (its
        /// tokens kept), else a new one, full.
        public func rateLimiter(
            _ name: String,
            _ configuration: RateLimiter<C>.Configuration
        ) throws(ConfigurationError) -> RateLimiter<C> {
            let clock = registry.clock
            return try object("rate-limiter", name, configuration, same: ==) { () throws(ConfigurationError) in
                try RateLimiter(configuration, clock: clock)
            }
        }

        /// Finds the object `kind`/`name` made from the same options (among those this
        /// registration set aside, then the registry's), or makes one: set aside during a
        /// registration, stored at once outside one.
        private func object<Options: Sendable, Object: Sendable>(
            _ kind: String,
            _ name: String,
            _ options: Options,
            same: (Options, Options) -> Bool,
            make: () throws(ConfigurationError) -> Object
        ) throws(ConfigurationError) -> Object {
            let key = ComponentKey(kind: kind, name: name)
            func matching(_ component: Component?) -> Object? {
                guard let component, let made = component.options as? Options, same(made, options) else { return nil }
                return component.object as? Object
            }
            guard isStaging else {
                return try registry.state.withLock { (state) throws(ConfigurationError) -> Object in
                    if let object = matching(state.components[key]) { return object }
                    let object = try make()
                    state.components[key] = Component(options: options, object: object)
                    return object
                }
            }
            if let object = matching(staged.withLock({ $0[key] })) { return object }
            if let object = matching(registry.state.withLock({ $0.components[key] })) { return object }
            let object = try make()
            staged.withLock { $0[key] = Component(options: options, object: object) }
            return object
        }
    }
}

extension ResilienceRegistry where C == ContinuousClock {
    /// Creates an empty registry on the continuous clock.
    public convenience init() {
        self.init(clock: ContinuousClock())
    }
}

extension CircuitBreaker.Configuration {
    /// Whether `other` has the same options, its `onStateChange` callback aside (closures
    /// cannot be compared).
    func hasSameOptions(as other: Self) -> Bool {
        name == other.name && failureRatio == other.failureRatio && minimumThroughput == other.minimumThroughput
            && window == other.window && breakDuration == other.breakDuration
            && breakDurationMultiplier == other.breakDurationMultiplier && maxBreakDuration == other.maxBreakDuration
            && consecutiveFailures == other.consecutiveFailures && slowCallDuration == other.slowCallDuration
            && slowCallRatio == other.slowCallRatio && halfOpenProbes == other.halfOpenProbes
            && halfOpenJudgment == other.halfOpenJudgment
    }
}
