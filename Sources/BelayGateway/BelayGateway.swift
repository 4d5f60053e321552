/// The gateway application: config model and validation, the Hummingbird application,
/// routes, services (delivery workers, webhook forwarder, prober, alerter), auth and the
/// status page.
///
/// The HTTP server arrives with the gateway issue. Until then this layer hosts the
/// library demonstration that `belay demo` runs.
public enum BelayGateway {
    /// The gateway's version, as `belay --version` prints it.
    public static let version = "0.1.0"
}
