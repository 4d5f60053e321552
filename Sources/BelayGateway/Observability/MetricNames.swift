import Prometheus

/// The name, unit and help of every metric the gateway exports (docs/metrics.md lists them).
enum Names {
    private static func name(
        _ subsystem: String,
        _ metric: String,
        _ unit: String,
        _ help: String
    )
        -> MetricNameDescriptor
    {
        MetricNameDescriptor(
            namespace: "belay",
            subsystem: subsystem,
            metricName: metric,
            unitName: unit,
            helpText: help
        )
    }

    // Proxied requests, per upstream.
    static var requests: MetricNameDescriptor {
        name("proxy", "requests", "total", "Proxied requests by upstream and outcome.")
    }
    static var requestDuration: MetricNameDescriptor {
        name("proxy", "request_duration", "seconds", "Time until a proxied request's answer head was ready.")
    }
    static var retries: MetricNameDescriptor {
        name("proxy", "retries", "total", "Retries scheduled for proxied requests.")
    }
    static var budgetExhausted: MetricNameDescriptor {
        name("proxy", "retry_budget_exhausted", "total", "Retries not made because the retry budget was spent.")
    }
    static var rejections: MetricNameDescriptor {
        name("proxy", "rejections", "total", "Proxied requests a strategy refused, by reason.")
    }
    static var stale: MetricNameDescriptor {
        name("proxy", "stale_responses", "total", "Answers served from the stale-if-error cache.")
    }

    // Attempts and endpoints.
    static var attempts: MetricNameDescriptor {
        name("upstream", "attempts", "total", "Attempts sent to an endpoint, by result.")
    }
    static var attemptDuration: MetricNameDescriptor {
        name("upstream", "attempt_duration", "seconds", "Time one attempt took until its answer head or failure.")
    }
    static var ejected: MetricNameDescriptor {
        name("upstream", "endpoint_ejected", "", "1 while the endpoint is ejected as an outlier, else 0.")
    }
    static var ejections: MetricNameDescriptor {
        name("upstream", "endpoint_ejections", "total", "Times the endpoint was ejected as an outlier.")
    }

    // The health model.
    static var health: MetricNameDescriptor {
        name("upstream", "health", "", "Upstream health: 0 healthy, 1 degraded, 2 stale, 3 down.")
    }
    static var probeFailures: MetricNameDescriptor {
        name("upstream", "probe_consecutive_failures", "", "Probes of the upstream failed in a row; 0 while passing.")
    }

    // Service level objectives.
    static var sloObjective: MetricNameDescriptor {
        name("slo", "objective", "ratio", "The objective's target: the share of calls that must be good.")
    }
    static var sloBudgetRemaining: MetricNameDescriptor {
        name(
            "slo",
            "error_budget_remaining",
            "ratio",
            "The share of the error budget over the SLO's window still unspent (below 0: overspent)."
        )
    }
    static var sloBurnRate: MetricNameDescriptor {
        name("slo", "burn_rate", "", "How many times the sustainable rate the error budget burns over the window.")
    }

    // Circuit breakers.
    static var breakerState: MetricNameDescriptor {
        name("circuit_breaker", "state", "", "Breaker state: 0 closed, 1 half-open, 2 open, 3 isolated.")
    }
    static var transitions: MetricNameDescriptor {
        name("circuit_breaker", "transitions", "total", "Breaker state changes, by from and to state.")
    }

    // The delivery queue.
    static var queueDepth: MetricNameDescriptor {
        name("delivery", "queue_depth", "", "Deliveries in the store, by status.")
    }
    static var oldestPendingAge: MetricNameDescriptor {
        name("delivery", "oldest_pending_age", "seconds", "Age of the oldest delivery pending or in flight; 0 if none.")
    }
    static var auditDropped: MetricNameDescriptor {
        name("audit", "dropped", "total", "Proxied requests not recorded: the audit buffer was full.")
    }
    static var auditFailed: MetricNameDescriptor {
        name("audit", "write_failures", "total", "Proxied requests not recorded: their batch could not be written.")
    }
    static var configReloads: MetricNameDescriptor {
        name("config", "reloads", "total", "Config reloads (SIGHUP or POST /v1/admin/reload), by outcome.")
    }
    static var configLastReload: MetricNameDescriptor {
        name(
            "config",
            "last_reload_success",
            "timestamp_seconds",
            "When the config was last reloaded successfully, Unix time; 0 if never."
        )
    }
    static var storeUp: MetricNameDescriptor {
        name("delivery", "store_up", "", "1 if the last scrape could read the store, else 0.")
    }
    static var deliveryAttempts: MetricNameDescriptor {
        name("delivery", "attempts", "total", "Delivery attempts recorded, by upstream and outcome.")
    }
    static var deliveriesDead: MetricNameDescriptor {
        name("delivery", "dead", "total", "Deliveries that went dead, by upstream.")
    }

    // The webhook inbox.
    static var webhooksReceived: MetricNameDescriptor {
        name("webhooks", "received", "total", "Webhook deliveries received for a configured source.")
    }
    static var webhooksRejected: MetricNameDescriptor {
        name("webhooks", "rejected", "total", "Webhook deliveries refused, by source and reason.")
    }
    static var webhooksDuplicates: MetricNameDescriptor {
        name("webhooks", "duplicates", "total", "Webhook deliveries already stored under their event id.")
    }
    static var webhooksForwarded: MetricNameDescriptor {
        name("webhooks", "forwarded", "total", "Webhook events forwarded to the application.")
    }
    static var webhooksDead: MetricNameDescriptor {
        name("webhooks", "dead", "total", "Webhook event forwards that went dead.")
    }
}
