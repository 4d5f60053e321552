/// A scriptable flaky HTTP upstream (latency, status sequences, error rates, resets,
/// Retry-After, outages) for tests, `belay demo` and benchmarks.
///
/// The server arrives with the gateway issue; this target fixes its place in the layering.
public enum BelayTestUpstream {
    /// The address the test upstream binds to: loopback only.
    public static let host = "127.0.0.1"
}
