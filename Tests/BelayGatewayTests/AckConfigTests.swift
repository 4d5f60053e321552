import BelayGateway
import Testing

/// `upstreams.<name>.ack` and `deliveries.notify_after` as a duration (issue 13).
@Suite struct AckConfigTests {
    let loader = ConfigLoader(environment: [:])

    private func config(ack: String, notifyAfter: String = "3", webhooks: Bool = true) -> String {
        """
        upstreams:
          pay:
            endpoints: ["http://127.0.0.1:9"]
            ack: \(ack)
        deliveries: { schedule: [0s, 5s, 4h], notify_after: \(notifyAfter) }
        \(webhooks ? "webhooks:\n  warehouse: { verify: { scheme: github, secret: s } }" : "")
        """
    }

    private func issues(_ yaml: String) -> [String] { loader.issues(yaml) }

    @Test func anAckSectionLoadsWithEveryValue() throws {
        let loaded = try loader.load(
            yaml: config(
                ack: "{ webhook: warehouse, match: /data/object/metadata/order_id, timeout: 20m, "
                    + "failure: { pointer: /type, values: [order.rejected, 422] } }"
            )
        )
        let ack = try #require(loaded.upstream(named: "pay")?.ack)
        #expect(ack.timeout == .seconds(1_200))
        #expect(
            ack.webhook
                == .init(
                    source: "warehouse",
                    match: "/data/object/metadata/order_id",
                    failure: .init(pointer: "/type", values: ["order.rejected", "422"])
                )
        )
        // Without a timeout, deliveries.ack_timeout applies.
        let plain = try loader.load(yaml: config(ack: "{ webhook: warehouse, match: /id }"))
        #expect(plain.upstream(named: "pay")?.ack?.timeout == nil)
        #expect(DeliveryPlanner(plain).ackTimeout(for: "pay") == .seconds(3_600))
        #expect(DeliveryPlanner(loaded).ackTimeout(for: "pay") == .seconds(1_200))
        #expect(DeliveryPlanner(loaded).ackTimeout(for: "other") == .seconds(3_600))
    }

    @Test func badAckValuesAreReportedWithTheirKeyPaths() {
        #expect(
            issues(config(ack: "{ webhook: stripe, match: /id }"))
                == [
                    "line 4: upstreams.pay.ack.webhook: names the unknown webhooks source 'stripe' (configured: warehouse)"
                ]
        )
        #expect(
            issues(config(ack: "{ webhook: stripe, match: /id }", webhooks: false))
                == [
                    "line 4: upstreams.pay.ack.webhook: names the unknown webhooks source 'stripe' (no webhooks are configured)"
                ]
        )
        #expect(
            issues(config(ack: "{ webhook: warehouse, match: data/id }"))
                == [
                    "line 4: upstreams.pay.ack.match: must be a JSON pointer starting with / such as /id (got 'data/id')"
                ]
        )
        let badEscape = issues(config(ack: "{ webhook: warehouse, match: /a~2b }"))
        #expect(badEscape.count == 1 && badEscape[0].hasPrefix("line 4: upstreams.pay.ack.match: "))
        #expect(
            issues(config(ack: "{ webhook: warehouse, match: \"\" }"))
                == [
                    "line 4: upstreams.pay.ack.match: must point inside the event, e.g. /data/id (the empty pointer is the whole event)"
                ]
        )
        #expect(
            issues(config(ack: "{ webhook: warehouse, match: /id, timeout: 0s }"))
                == ["line 4: upstreams.pay.ack.timeout: must be greater than zero"]
        )
        #expect(
            issues(config(ack: "{ webhook: warehouse, match: /id, timeout: -5m }")).first?
                .hasPrefix("line 4: upstreams.pay.ack.timeout: must be a duration") == true
        )
        #expect(
            issues(config(ack: "{ match: /id }"))
                == [
                    "line 4: upstreams.pay.ack.webhook: is required: the webhooks source whose verified events confirm this upstream's deliveries (or set poll: { path: \"/v1/orders/{key}\" } to look each order up)"
                ]
        )
        #expect(
            issues(config(ack: "{ webhook: warehouse }"))
                == [
                    "line 4: upstreams.pay.ack.match: is required: the JSON pointer to the delivery's idempotency key in the event, e.g. /data/id"
                ]
        )
        #expect(
            issues(config(ack: "{ webhook: warehouse, match: /id, failure: { pointer: /type, values: [] } }"))
                == ["line 4: upstreams.pay.ack.failure.values: must list at least one value that means rejected"]
        )
        #expect(
            issues(config(ack: "{ webhook: warehouse, match: /id, failure: { pointer: type, values: [x] } }"))
                == [
                    "line 4: upstreams.pay.ack.failure.pointer: must be a JSON pointer starting with / such as /id (got 'type')"
                ]
        )
        let unknown = issues(config(ack: "{ webhook: warehouse, match: /id, tiemout: 1h }"))
        #expect(
            unknown.count == 1 && unknown[0].contains("upstreams.pay.ack.tiemout: unknown key; did you mean 'timeout'?")
        )
    }

    @Test func aPollLoadsAloneOrBesideAWebhookWithItsDefaults() throws {
        let alone = try loader.load(yaml: config(ack: #"{ poll: { path: "/v1/orders/{key}" } }"#, webhooks: false))
        let ack = try #require(alone.upstream(named: "pay")?.ack)
        #expect(ack.webhook == nil)
        #expect(ack.poll == .init(path: "/v1/orders/{key}", every: .seconds(300), until: [200]))
        #expect(DeliveryPlanner(alone).ackPolls["pay"]?.every == .seconds(300))
        let both = try loader.load(
            yaml: config(
                ack:
                    #"{ webhook: warehouse, match: /id, poll: { path: "/orders/{key}?expand=1", every: 30s, until: [200, 204] } }"#
            )
        )
        let poll = try #require(both.upstream(named: "pay")?.ack?.poll)
        #expect(poll.every == .seconds(30) && poll.until == [200, 204])
        #expect(both.upstream(named: "pay")?.ack?.webhook?.source == "warehouse")
        // The key is one path segment whatever it holds.
        #expect(poll.path(forKey: "a/b c?#") == "/orders/a%2Fb%20c%3F%23?expand=1")
        // Nor a dot segment a server would resolve, nor a query's separators.
        #expect(poll.path(forKey: "..") == "/orders/%2E%2E?expand=1")
        #expect(poll.path(forKey: ".") == "/orders/%2E?expand=1")
        #expect(poll.path(forKey: "a&b=c+d;e") == "/orders/a%26b%3Dc%2Bd%3Be?expand=1")
        #expect(poll.path(forKey: "ord_7.v2-x~") == "/orders/ord_7.v2-x~?expand=1")
    }

    @Test func badPollValuesAreReportedWithTheirKeyPaths() {
        func poll(_ section: String) -> [String] { issues(config(ack: "{ poll: \(section) }", webhooks: false)) }
        #expect(
            poll("{ every: 1m }")
                == [
                    "line 4: upstreams.pay.ack.poll.path: is required: the path that answers whether an order is there, with {key} for its idempotency key, e.g. /v1/orders/{key}"
                ]
        )
        #expect(
            poll(#"{ path: "/v1/orders" }"#)
                == [
                    "line 4: upstreams.pay.ack.poll.path: must contain {key}, where each delivery's idempotency key goes (e.g. /v1/orders/{key})"
                ]
        )
        #expect(
            poll(#"{ path: "v1/orders/{key}" }"#)
                == ["line 4: upstreams.pay.ack.poll.path: must start with '/' (it is below the upstream's base path)"]
        )
        #expect(
            poll(#"{ path: "/v1/{id}/{key}" }"#) == [
                "line 4: upstreams.pay.ack.poll.path: knows only the placeholder {key}"
            ]
        )
        #expect(
            poll(#"{ path: "/v1/orders/{key}", every: 500ms }"#)
                == [
                    "line 4: upstreams.pay.ack.poll.every: must be at least 1s: a lookup per delivery that often is a flood"
                ]
        )
        #expect(
            poll(#"{ path: "/v1/orders/{key}", until: [404] }"#).first?
                .hasPrefix("line 4: upstreams.pay.ack.poll.until[0]: must be") == true
        )
        #expect(
            poll(#"{ path: "/v1/orders/{key}", until: [] }"#)
                == [
                    "line 4: upstreams.pay.ack.poll.until: must list at least one 2xx status that means the order is there"
                ]
        )
        // `match` reads a webhook's events: without a webhook it would be ignored.
        #expect(
            issues(config(ack: #"{ match: /id, poll: { path: "/o/{key}" } }"#, webhooks: false))
                == [
                    "line 4: upstreams.pay.ack.match: applies to a webhook confirmation; set upstreams.pay.ack.webhook too, or remove it"
                ]
        )
    }

    @Test func notifyAfterTakesACountADurationOrBoth() throws {
        let ack = "{ webhook: warehouse, match: /id }"
        let count = try loader.load(yaml: config(ack: ack, notifyAfter: "2")).deliveries
        #expect(count.notifyAfter == 2 && count.notifyAge == nil)
        // A duration alone: by age only (the count is the schedule's length, never reached).
        let age = try loader.load(yaml: config(ack: ack, notifyAfter: "20m")).deliveries
        #expect(age.notifyAge == .seconds(1_200) && age.notifyAfter == 3)
        let both = try loader.load(yaml: config(ack: ack, notifyAfter: "{ attempts: 2, after: 20m }")).deliveries
        #expect(both.notifyAfter == 2 && both.notifyAge == .seconds(1_200))
        #expect(
            issues(config(ack: ack, notifyAfter: "soon"))
                == [
                    "line 5: deliveries.notify_after: must be a number of failed attempts such as 3, a duration such as 20m, or { attempts: 3, after: 20m } (got 'soon')"
                ]
        )
        #expect(
            issues(config(ack: ack, notifyAfter: "0s")) == [
                "line 5: deliveries.notify_after: must be greater than zero"
            ]
        )
        #expect(
            issues(config(ack: ack, notifyAfter: "{ attempts: 9 }"))
                == ["deliveries.notify_after: must not exceed the 3 attempts of deliveries.schedule (got 9)"]
        )
        #expect(
            issues(config(ack: ack, notifyAfter: "{ after: 0s }"))
                == ["line 5: deliveries.notify_after.after: must be greater than zero"]
        )
    }
}
