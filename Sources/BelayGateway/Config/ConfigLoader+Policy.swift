public import BelayHTTP

extension ConfigLoader {
    /// The policy of one upstream written as its `belay.yaml` section (what goes under
    /// `upstreams.<name>:`), for ``ResilientHTTPClient`` and ``ResilienceMiddleware`` inside an
    /// application: the same keys, defaults and checks as the gateway's.
    ///
    /// ```swift
    /// let policy = try ConfigLoader(environment: [:]).upstreamPolicy(named: "payments", yaml: """
    ///     endpoints: ["https://api.pay.example", "https://backup.pay.example"]
    ///     retry: { max_attempts: 3, base: 100ms }
    ///     idempotency: { header: Idempotency-Key }
    ///     """)
    /// ```
    ///
    /// Issues name their key below `upstreams.<name>` and their line in `yaml`. Keys of the
    /// gateway alone (`ack`, `degrade`, `probe`, `slo`…) are read and checked but have no effect
    /// on the policy.
    public func upstreamPolicy(named name: String, yaml section: String) throws(ConfigError) -> UpstreamPolicy {
        let indented = section.split(separator: "\n", omittingEmptySubsequences: false).map { "    \($0)" }
        let wrapped = (["upstreams:", "  \(name):"] + indented).joined(separator: "\n")
        let config: GatewayConfig
        do {
            config = try load(yaml: wrapped)
        } catch {
            // Lines of `section`, not of the wrapper's two first lines.
            throw ConfigError(
                issues: error.issues.map { issue in
                    var issue = issue
                    issue.line = issue.line.map { max($0 - 2, 1) }
                    return issue
                }
            )
        }
        guard let upstream = config.upstream(named: name) else {
            throw ConfigError(issues: [ConfigIssue(path: "upstreams.\(name)", message: "is not a valid upstream name")])
        }
        return upstream.policy
    }
}
