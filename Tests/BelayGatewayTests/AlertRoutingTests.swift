import BelayTestKit
import BelayTestUpstream
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import BelayGateway

/// Records every request with its headers; answers 202 (as PagerDuty and Opsgenie do).
final class RecordingAlertTransport: AlertTransport {
    private let state = Mutex<(requests: [AlertRequest], waiters: [(Int, CheckedContinuation<Void, Never>)])>(([], []))

    var requests: [AlertRequest] { state.withLock { $0.requests } }

    func post(_ body: Data, to url: String) async throws -> Int {
        try await send(AlertRequest(url: url, body: body))
    }

    func send(_ request: AlertRequest) async throws -> Int {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.requests.append(request)
            let count = state.requests.count
            let ready = state.waiters.filter { $0.0 <= count }.map(\.1)
            state.waiters.removeAll { $0.0 <= count }
            return ready
        }
        for continuation in ready { continuation.resume() }
        return 202
    }

    func waitForRequests(_ count: Int) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.requests.count >= count { return true }
                state.waiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

@Suite struct AlertRoutingTests {
    /// 2027-01-15T22:30:00Z: 23:30 in Berlin (CET, UTC+1), inside 22:00-07:00.
    static let lateEvening = Date(timeIntervalSince1970: 1_800_052_200)
    static let routingKey = Secret("0123456789abcdef0123456789abcdef")  // 32 characters, as PagerDuty's
    static let berlinNights = try! QuietHours(parsing: "22:00-07:00 Europe/Berlin")

    static func alert(
        _ kind: Alert.Kind,
        _ severity: AlertSeverity,
        upstream: String = "payments",
        subject: String? = nil,
        at: Date = lateEvening,
        summary: String? = nil
    ) -> Alert {
        Alert(
            kind: kind,
            severity: severity.rawValue,
            summary: summary ?? "payments: \(kind) \(subject ?? "")",
            upstream: upstream,
            subject: subject,
            since: at,
            lastError: "HTTP 503 from api.pay.example:443",
            attempts: 3,
            link: "/v1/upstreams/\(upstream)",
            at: at
        )
    }

    static func object(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func conforms(_ data: Data, to schema: String) throws {
        let violations = try JSONSchemaChecker(named: schema).violations(of: data)
        #expect(violations.isEmpty, "\(schema): \(violations) in \(String(decoding: data, as: UTF8.self))")
    }

    // MARK: Quiet hours

    @Test func quietHoursCrossMidnightInTheirOwnTimeZone() throws {
        let quiet = Self.berlinNights
        func utc(_ text: String) throws -> Date { try #require(ISO8601DateFormatter().date(from: text)) }
        // Winter: Berlin is UTC+1.
        #expect(!quiet.contains(try utc("2027-01-15T20:59:00Z")))  // 21:59
        #expect(quiet.contains(try utc("2027-01-15T21:00:00Z")))  // 22:00
        #expect(quiet.contains(try utc("2027-01-16T05:59:00Z")))  // 06:59 the next day
        #expect(!quiet.contains(try utc("2027-01-16T06:00:00Z")))  // 07:00
        #expect(quiet.end(after: Self.lateEvening) == (try utc("2027-01-16T06:00:00Z")))
        // Summer: UTC+2, so the same local end is an hour earlier in UTC.
        #expect(quiet.contains(try utc("2027-07-15T20:00:00Z")))  // 22:00
        #expect(quiet.end(after: try utc("2027-07-15T20:00:00Z")) == (try utc("2027-07-16T05:00:00Z")))
        // A span inside one day.
        let lunch = try QuietHours(parsing: "12:00-13:30 UTC")
        #expect(lunch.contains(try utc("2027-01-15T13:29:00Z")))
        #expect(!lunch.contains(try utc("2027-01-15T13:30:00Z")))
        #expect(lunch.description == "12:00-13:30 UTC")
    }

    @Test func badQuietHoursSayWhatIsWrong() {
        for (text, words) in [
            ("22:00-07:00", "must be 'HH:MM-HH:MM <IANA time zone>'"),
            ("22-07 Europe/Berlin", "must be 'HH:MM-HH:MM"),
            ("24:00-07:00 UTC", "must be 'HH:MM-HH:MM"),
            ("22:00-22:00 UTC", "must not start and end at the same time"),
            ("22:00-07:00 Mars/Olympus", "'Mars/Olympus', which is not an IANA time zone name"),
        ] {
            #expect(throws: QuietHours.ParseError.self) { try QuietHours(parsing: text) }
            do {
                _ = try QuietHours(parsing: text)
            } catch {
                #expect(error.description.contains(words), "\(text): \(error.description)")
            }
        }
    }

    @Test func warningsWaitForTheEndOfQuietHoursCollapsedPerConditionAndCriticalsStillGo() throws {
        var router = AlertRouter(routes: [
            AlertRoute(url: "https://hooks.example/s", format: .slack, quietHours: Self.berlinNights)
        ])
        let ejected = Self.alert(.endpointEjected, .warning, subject: "b.example:443")
        #expect(router.receive(ejected, at: Self.lateEvening).isEmpty)
        // Raised again (the throttle let it through): still one waiting, counted twice.
        var again = ejected
        again.at = Self.lateEvening.addingTimeInterval(1_800)
        #expect(router.receive(again, at: again.at).isEmpty)
        #expect(router.held(at: 0).count == 1)
        // A critical goes at once.
        let opened = Self.alert(.breakerOpened, .critical, at: Self.lateEvening.addingTimeInterval(3_600))
        #expect(router.receive(opened, at: opened.at).map(\.alert.kind) == [.breakerOpened])
        // The critical's group window ends first (nothing more came: no follow-up).
        #expect(router.nextDeadline == opened.at.addingTimeInterval(300))
        #expect(router.tick(at: opened.at.addingTimeInterval(300)).isEmpty)
        // 07:00 in Berlin is 06:00 UTC the next morning.
        let morning = Self.lateEvening.addingTimeInterval(7.5 * 3_600)
        #expect(router.nextDeadline == morning)
        #expect(router.tick(at: morning.addingTimeInterval(-1)).isEmpty)
        let released = router.tick(at: morning)
        #expect(released.map(\.alert.kind) == [.endpointEjected])
        #expect(released.first?.count == 2 && released.first?.alert.at == again.at)
        #expect(router.held(at: 0).isEmpty && router.nextDeadline == morning.addingTimeInterval(300))
    }

    @Test func aWarningThatClearsDuringQuietHoursIsNeverSent() {
        var router = AlertRouter(routes: [
            AlertRoute(url: "https://hooks.example/s", format: .slack, quietHours: Self.berlinNights)
        ])
        #expect(router.receive(Self.alert(.endpointEjected, .warning, subject: "b:443"), at: Self.lateEvening).isEmpty)
        let readmitted = Self.alert(
            .endpointReadmitted,
            .info,
            subject: "b:443",
            at: Self.lateEvening.addingTimeInterval(60)
        )
        #expect(router.receive(readmitted, at: readmitted.at).isEmpty)
        #expect(router.nextDeadline == nil)
        #expect(router.tick(at: Self.lateEvening.addingTimeInterval(86_400)).isEmpty)
    }

    // MARK: Severity, resolves, grouping

    @Test func eachSinkGetsOnlyWhatReachesItsMinSeverity() {
        let routes = [
            AlertRoute(url: "http://a.example/all"),
            AlertRoute(url: "http://a.example/warn", minSeverity: .warning),
            AlertRoute(
                url: AlertRoute.pagerDutyURL,
                format: .pagerduty,
                minSeverity: .critical,
                routingKey: Self.routingKey
            ),
        ]
        var router = AlertRouter(routes: routes)
        #expect(router.receive(Self.alert(.init(rawValue: "note"), .info), at: Self.lateEvening).map(\.sink) == [0])
        #expect(
            router.receive(Self.alert(.stillTrying, .warning, subject: "d1"), at: Self.lateEvening).map(\.sink) == [
                0, 1,
            ]
        )
        #expect(
            router.receive(Self.alert(.dead, .critical, subject: "d1"), at: Self.lateEvening).map(\.sink) == [0, 1, 2]
        )
    }

    @Test func aResolveGoesWhereTheTriggerWentWhateverItsOwnSeverity() {
        let routes = [
            AlertRoute(
                url: AlertRoute.pagerDutyURL,
                format: .pagerduty,
                minSeverity: .critical,
                routingKey: Self.routingKey
            ),
            AlertRoute(url: "http://a.example/warn", minSeverity: .warning),
        ]
        var router = AlertRouter(routes: routes)
        // Never raised here: nothing to resolve.
        #expect(router.receive(Self.alert(.breakerClosed, .info), at: Self.lateEvening).isEmpty)
        let trigger = router.receive(Self.alert(.breakerOpened, .critical), at: Self.lateEvening)
        #expect(trigger.map(\.action) == [.trigger, .trigger])
        let resolve = router.receive(Self.alert(.breakerClosed, .info), at: Self.lateEvening.addingTimeInterval(90))
        #expect(resolve.map(\.action) == [.resolve, .resolve] && resolve.map(\.sink) == [0, 1])
        #expect(resolve[0].dedupKey == trigger[0].dedupKey && resolve[0].dedupKey == "belay:breaker.opened:payments")
        #expect(resolve[1].dedupKey == "belay:breaker.opened:payments:-")  // json: per condition
        // Resolved once: a second clear sends nothing.
        #expect(router.receive(Self.alert(.breakerClosed, .info), at: Self.lateEvening.addingTimeInterval(91)).isEmpty)
    }

    @Test func oneOutageIsOnePagePerSinkWithItsCountAndOneResolve() {
        let routes = [
            AlertRoute(url: AlertRoute.pagerDutyURL, format: .pagerduty, routingKey: Self.routingKey),
            AlertRoute(url: "http://a.example/json"),
        ]
        var router = AlertRouter(routes: routes)
        var sent: [AlertDispatch] = []
        for index in 0..<50 {
            let at = Self.lateEvening.addingTimeInterval(Double(index))
            sent += router.receive(Self.alert(.stillTrying, .warning, subject: "dlv_\(index)", at: at), at: at)
        }
        #expect(sent.filter { $0.sink == 0 }.count == 1)  // one page…
        #expect(sent.filter { $0.sink == 1 }.count == 50)  // json sinks group only when asked
        #expect(sent.first?.dedupKey == "belay:delivery.still_trying:payments")
        // Another upstream is another group.
        let other = router.receive(
            Self.alert(.stillTrying, .warning, upstream: "ledger", subject: "x"),
            at: Self.lateEvening
        )
        #expect(other.map(\.sink) == [0, 1])
        // At the end of the window, one follow-up with the count of the collapsed ones.
        let windowEnd = Self.lateEvening.addingTimeInterval(300)
        #expect(router.nextDeadline == windowEnd)
        let followUp = router.tick(at: windowEnd)
        #expect(followUp.count == 1)
        #expect(followUp.first?.count == 49 && followUp.first?.open == 50 && followUp.first?.alert.subject == "dlv_49")
        // Quiet until more come; after the window the next goes at once.
        #expect(router.tick(at: windowEnd.addingTimeInterval(300)).isEmpty)
        // Resolving 49 of the 50 sends no page resolve; the last one does.
        var resolves: [AlertDispatch] = []
        for index in 0..<50 {
            var delivered = Self.alert(.delivered, .info, subject: "dlv_\(index)", at: windowEnd)
            delivered.resolves = .stillTrying
            resolves += router.receive(delivered, at: windowEnd)
        }
        #expect(resolves.filter { $0.sink == 0 }.map(\.action) == [.resolve])
        #expect(resolves.filter { $0.sink == 0 }.first?.alert.subject == "dlv_49")
        #expect(resolves.filter { $0.sink == 1 }.count == 50)
    }

    @Test func aLongSubjectStillGivesAStableDedupKeyPagerDutyTakes() {
        let route = AlertRoute(url: "http://a.example/json")
        let condition = AlertCondition(
            kind: .probeFailing,
            upstream: "payments",
            subject: String(repeating: "x", count: 400)
        )
        let key = AlertRouter.dedupKey(condition, route: route)
        #expect(key.count <= 255 && key == AlertRouter.dedupKey(condition, route: route))
        #expect(
            key
                != AlertRouter.dedupKey(
                    AlertCondition(kind: .probeFailing, upstream: "payments", subject: "y"),
                    route: route
                )
        )
    }

    // MARK: Formats against the providers' documented shapes

    static func dispatch(_ action: AlertDispatch.Action, _ alert: Alert, count: Int = 1, open: Int = 1) -> AlertDispatch
    {
        AlertDispatch(
            sink: 0,
            action: action,
            alert: alert,
            condition: alert.condition,
            dedupKey: "belay:\(alert.condition.kind):payments",
            count: count,
            open: open
        )
    }

    @Test func theSchemaCheckerFindsWhatIsWrong() throws {
        let bad = Data(
            #"{"routing_key":"short","event_action":"page","payload":{"summary":"","severity":"fatal","x":1}}"#.utf8
        )
        let found = try JSONSchemaChecker(named: "pagerduty-trigger").violations(of: bad)
        #expect(found.contains("$.routing_key: is 5 characters, fewer than 32"))
        #expect(found.contains { $0.hasPrefix("$.event_action: page is not one of") })
        #expect(found.contains("$.payload: lacks the required 'source'"))
        #expect(found.contains { $0.hasPrefix("$.payload.severity: fatal is not one of") })
        #expect(found.contains("$.payload: has 'x', which the schema does not allow"))
        #expect(found.contains("$.payload.summary: is 0 characters, fewer than 1"))
        let long = Data(#"{"message":"\#(String(repeating: "m", count: 131))","tags":[1]}"#.utf8)
        let opsgenie = try JSONSchemaChecker(named: "opsgenie-create-alert").violations(of: long)
        #expect(opsgenie == ["$.message: is 131 characters, more than 130", "$.tags[0]: is not of type string"])
        #expect(throws: JSONSchemaChecker.UnsupportedKeyword.self) {
            try JSONSchemaChecker(schema: ["oneOf": [String]()]).violations(of: Data("{}".utf8))
        }
    }

    @Test func pagerDutyEventsMatchTheEventsAPIv2() throws {
        let formatter = AlertFormatter(source: "belay-1")
        let route = AlertRoute(url: AlertRoute.pagerDutyURL, format: .pagerduty, routingKey: Self.routingKey)
        let long = Self.alert(.breakerOpened, .critical, summary: String(repeating: "s", count: 2_000))
        let trigger = formatter.request(for: Self.dispatch(.trigger, long, count: 3, open: 2), route: route)
        #expect(trigger.url == "https://events.pagerduty.com/v2/enqueue" && trigger.headers.isEmpty)
        try Self.conforms(trigger.body, to: "pagerduty-trigger")
        let event = try Self.object(trigger.body)
        #expect(event["routing_key"] as? String == Self.routingKey.value)
        #expect(event["event_action"] as? String == "trigger")
        #expect(event["dedup_key"] as? String == "belay:breaker.opened:payments")
        let payload = try #require(event["payload"] as? [String: Any])
        #expect(payload["severity"] as? String == "critical" && payload["source"] as? String == "belay-1")
        #expect(payload["component"] as? String == "payments" && payload["class"] as? String == "breaker.opened")
        #expect((payload["summary"] as? String)?.count == 1_024)
        let details = try #require(payload["custom_details"] as? [String: String])
        #expect(
            details["count"] == "3" && details["open"] == "2"
                && details["last_error"] == "HTTP 503 from api.pay.example:443"
        )

        let resolve = formatter.request(for: Self.dispatch(.resolve, Self.alert(.breakerClosed, .info)), route: route)
        try Self.conforms(resolve.body, to: "pagerduty-resolve")
        #expect(try Self.object(resolve.body)["dedup_key"] as? String == "belay:breaker.opened:payments")
        #expect(try Self.object(resolve.body)["event_action"] as? String == "resolve")
    }

    @Test func opsgenieRequestsMatchTheAlertAPI() throws {
        let formatter = AlertFormatter(source: "belay-1")
        let route = AlertRoute(url: "https://api.eu.opsgenie.com/", format: .opsgenie, apiKey: Secret("og-key-123456"))
        let create = formatter.request(
            for: Self.dispatch(.trigger, Self.alert(.dead, .critical, subject: "dlv_1")),
            route: route
        )
        #expect(create.url == "https://api.eu.opsgenie.com/v2/alerts")
        #expect(create.headers == [.init(name: "Authorization", value: Secret("GenieKey og-key-123456"))])
        try Self.conforms(create.body, to: "opsgenie-create-alert")
        let body = try Self.object(create.body)
        #expect(body["alias"] as? String == "belay:delivery.dead:payments")
        #expect(body["priority"] as? String == "P1" && body["entity"] as? String == "payments")
        #expect((body["message"] as? String)?.count ?? 0 <= 130)
        let warning = formatter.request(for: Self.dispatch(.trigger, Self.alert(.stillTrying, .warning)), route: route)
        #expect(try Self.object(warning.body)["priority"] as? String == "P3")

        var retried = Self.alert(.init(rawValue: "delivery.dead.resolved"), .info, subject: "dlv_1")
        retried.resolves = .dead
        let close = formatter.request(for: Self.dispatch(.resolve, retried), route: route)
        #expect(
            close.url == "https://api.eu.opsgenie.com/v2/alerts/belay:delivery.dead:payments/close?identifierType=alias"
        )
        #expect(close.headers.first?.value.value == "GenieKey og-key-123456")
        try Self.conforms(close.body, to: "opsgenie-close-alert")
        // An alias with a slash is one path segment.
        var odd = Self.dispatch(.resolve, Self.alert(.probeRecovered, .info, subject: "/health"))
        odd.dedupKey = "belay:probe.failing:payments:/health"
        #expect(
            formatter.request(for: odd, route: route).url.contains(
                "/v2/alerts/belay:probe.failing:payments:%2Fhealth/close"
            )
        )
    }

    @Test func slackMessagesHaveFallbackTextAndBlocks() throws {
        let formatter = AlertFormatter(source: "belay-1")
        let route = AlertRoute(url: "https://hooks.slack.com/services/T0/B0/XYZ", format: .slack)
        let alert = Self.alert(.breakerOpened, .critical, summary: "payments: circuit opened because <5xx> & timeouts")
        let trigger = formatter.request(for: Self.dispatch(.trigger, alert), route: route)
        #expect(trigger.url == route.url)
        try Self.conforms(trigger.body, to: "slack-incoming-webhook")
        let message = try Self.object(trigger.body)
        #expect(message["text"] as? String == "[critical] payments: circuit opened because &lt;5xx&gt; &amp; timeouts")
        let blocks = try #require(message["blocks"] as? [[String: Any]])
        #expect(blocks.map { $0["type"] as? String } == ["section", "context"])
        let section = try #require(blocks[0]["text"] as? [String: Any])
        #expect((section["text"] as? String)?.hasPrefix(":red_circle: *critical* payments") == true)
        let context = try #require(blocks[1]["elements"] as? [[String: Any]])
        #expect(context.compactMap { $0["text"] as? String }.contains("upstream *payments*"))

        let resolved = formatter.request(for: Self.dispatch(.resolve, Self.alert(.breakerClosed, .info)), route: route)
        try Self.conforms(resolved.body, to: "slack-incoming-webhook")
        #expect((try Self.object(resolved.body)["text"] as? String)?.hasPrefix("[resolved] Resolved: payments") == true)
        let many = formatter.request(for: Self.dispatch(.trigger, alert, count: 12, open: 13), route: route)
        #expect(
            (try Self.object(many.body)["text"] as? String)?.contains(
                "(12 breaker.opened alerts for payments collapsed; 13 open)"
            ) == true
        )
    }

    @Test func jsonIsTodaysPayloadAndAResolveNamesWhatItClears() throws {
        let formatter = AlertFormatter(source: "belay-1")
        let route = AlertRoute(url: "http://a.example/hook")
        let alert = Self.alert(.breakerOpened, .critical)
        let trigger = formatter.request(for: Self.dispatch(.trigger, alert), route: route)
        #expect(trigger.body == alert.json())
        #expect(try Self.object(trigger.body)["resolves"] == nil)
        try Self.conforms(trigger.body, to: "belay-alert")
        let resolve = formatter.request(for: Self.dispatch(.resolve, Self.alert(.breakerClosed, .info)), route: route)
        try Self.conforms(resolve.body, to: "belay-alert")
        #expect(try Self.object(resolve.body)["resolves"] as? String == "breaker.opened")
        #expect(try Self.object(resolve.body)["kind"] as? String == "breaker.closed")
        let counted = formatter.request(for: Self.dispatch(.trigger, alert, count: 4), route: route)
        try Self.conforms(counted.body, to: "belay-alert")
        #expect(try Self.object(counted.body)["count"] as? Int == 4)
    }

    // MARK: Config

    static var loader: ConfigLoader {
        ConfigLoader(environment: [
            "PD_KEY": routingKey.value, "OG_KEY": "og-secret-key",
            "SLACK_URL": "https://hooks.slack.com/services/T0/B0/s3cr3tpath",
        ])
    }

    static func issues(_ yaml: String) -> [String] {
        do {
            _ = try loader.load(yaml: yaml)
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func alertSinksReadFormatSeverityQuietHoursKeysAndWindow() throws {
        let config = try Self.loader.load(
            yaml: """
                alerts:
                  - { url: "http://127.0.0.1:9000/alerts" }
                  - { format: pagerduty, routing_key: "${PD_KEY}", min_severity: critical }
                  - format: opsgenie
                    api_key: ${OG_KEY}
                    url: https://api.eu.opsgenie.com
                    group_window: 0s
                  - format: slack
                    url: ${SLACK_URL}
                    min_severity: warning
                    quiet_hours: "22:00-07:00 Europe/Berlin"
                    group_window: 10m
                """
        )
        let sinks = config.alerts
        #expect(sinks.map(\.format) == [.json, .pagerduty, .opsgenie, .slack])
        #expect(sinks[0].minSeverity == .info && sinks[0].groupWindow == .zero && sinks[0].quietHours == nil)
        #expect(sinks[1].url == AlertRoute.pagerDutyURL && sinks[1].routingKey == Self.routingKey)
        #expect(sinks[1].minSeverity == .critical && sinks[1].groupWindow == .seconds(300))
        #expect(sinks[2].apiKey?.value == "og-secret-key" && sinks[2].url == "https://api.eu.opsgenie.com")
        #expect(sinks[2].groupWindow == .zero)
        #expect(sinks[3].quietHours == Self.berlinNights && sinks[3].groupWindow == .seconds(600))
        // Every key, and the Slack webhook URL, is redacted wherever it shows up in a log line.
        let redactor = Redactor(config: config)
        let line =
            "sent to https://hooks.slack.com/services/T0/B0/s3cr3tpath with \(Self.routingKey.value) og-secret-key"
        #expect(redactor.redact(line) == "sent to <redacted> with <redacted> <redacted>")
    }

    @Test func badAlertSinksNameTheirKeyPath() {
        let found = Self.issues(
            """
            alerts:
              - { format: teams, url: "http://a.example/x" }
              - { format: pagerduty }
              - { format: opsgenie, routing_key: "${PD_KEY}" }
              - { url: "http://a.example/x", quiet_hours: "22:00 to 07:00" }
              - { url: "http://a.example/x", quiet_hours: "22:00-07:00 Europe/Atlantis", min_severity: page }
              - { format: slack }
              - { url: "http://a.example/x", routing_key: "${PD_KEY}", group_window: soon, colour: red }
            """
        )
        let expected = [
            "alerts[0].format: must be one of json, slack, pagerduty, opsgenie (got 'teams')",
            "alerts[1].routing_key: is required for format pagerduty (the integration key)",
            "alerts[2].api_key: is required for format opsgenie (an API integration's key)",
            "alerts[2].routing_key: is only for format pagerduty (this sink is opsgenie)",
            "alerts[3].quiet_hours: must be 'HH:MM-HH:MM <IANA time zone>', e.g. '22:00-07:00 Europe/Berlin' (got '22:00 to 07:00')",
            "alerts[4].quiet_hours: names the time zone 'Europe/Atlantis', which is not an IANA time zone name",
            "alerts[4].min_severity: must be one of info, warning, critical (got 'page')",
            "alerts[5].url: is required for format slack",
            "alerts[6].routing_key: is only for format pagerduty (this sink is json)",
        ]
        for issue in expected {
            #expect(found.contains { $0.hasSuffix(issue) }, "missing \(issue) in \(found)")
        }
        #expect(found.contains { $0.contains("alerts[6].group_window") })
        #expect(found.contains { $0.contains("alerts[6].colour: unknown key") })
        // The routing key's value is never echoed.
        #expect(!found.joined().contains(Self.routingKey.value))
    }

    // MARK: Through the alerter

    @Test func theAlerterSendsEachFormatResolvesAndRaisesAgainAfterAClear() async throws {
        let transport = RecordingAlertTransport()
        let alerter = Alerter(
            routes: [
                AlertRoute(url: AlertRoute.pagerDutyURL, format: .pagerduty, routingKey: Self.routingKey),
                AlertRoute(url: AlertRoute.opsgenieURL, format: .opsgenie, apiKey: Secret("og-key-123456")),
            ],
            transport: transport,
            wall: WallClock(clock: ManualClock(), origin: Self.lateEvening),
            logger: Logger(label: "test")
        )
        await alerter.send(Self.alert(.breakerOpened, .critical))
        await alerter.send(Self.alert(.breakerClosed, .info))
        // Cleared, so the throttle does not hold back the next outage.
        await alerter.send(Self.alert(.breakerOpened, .critical))
        let requests = transport.requests
        #expect(
            requests.map(\.url) == [
                AlertRoute.pagerDutyURL, "https://api.opsgenie.com/v2/alerts",
                AlertRoute.pagerDutyURL,
                "https://api.opsgenie.com/v2/alerts/belay:breaker.opened:payments/close?identifierType=alias",
                AlertRoute.pagerDutyURL, "https://api.opsgenie.com/v2/alerts",
            ]
        )
        #expect(
            try requests.filter { $0.url == AlertRoute.pagerDutyURL }.map {
                try Self.object($0.body)["event_action"] as? String
            } == ["trigger", "resolve", "trigger"]
        )
        #expect(requests[1].headers.map(\.name) == ["Authorization"])
        // resolve(_:summary:at:) for a condition that was never raised sends nothing.
        alerter.resolve(
            AlertCondition(kind: .dead, upstream: "payments", subject: "dlv_9"),
            summary: "retried",
            at: Self.lateEvening
        )
        #expect(alerter.recentAlerts.first?.alert.resolves == .dead)
    }

    @Test func theServiceReleasesHeldWarningsAtTheEndOfQuietHoursOnTheManualClock() async throws {
        let clock = ManualClock()
        let transport = RecordingAlertTransport()
        let alerter = Alerter(
            routes: [AlertRoute(url: "https://hooks.example/s", format: .slack, quietHours: Self.berlinNights)],
            transport: transport,
            wall: WallClock(clock: clock, origin: Self.lateEvening),
            tickEvery: .seconds(86_400),
            logger: Logger(label: "test")
        )
        await alerter.send(Self.alert(.endpointEjected, .warning, subject: "b:443"))
        #expect(transport.requests.isEmpty && alerter.heldCount == 1)
        let running = Task { try await alerter.run() }
        // The service sleeps exactly until 07:00 Berlin (7.5 hours on).
        #expect(await clock.nextSleepScheduled() == .init(offset: .seconds(27_000)))
        clock.advance(to: .init(offset: .seconds(27_000)))
        await transport.waitForRequests(1)
        running.cancel()
        _ = try? await running.value
        #expect(alerter.heldCount == 0)
        let text = try Self.object(transport.requests[0].body)["text"] as? String
        #expect(text?.hasPrefix("[warning] payments: endpoint.ejected") == true)
    }

    @Test func aRealHTTPSinkReceivesPagerDutyAndOpsgenieRequests() async throws {
        var logger = Logger(label: "alert-sink")
        logger.logLevel = .critical
        let upstream = TestUpstream(logger: logger)
        let services = ServiceGroup(
            configuration: .init(services: [.init(service: upstream)], gracefulShutdownSignals: [], logger: logger)
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            let base = await upstream.baseURL()
            let alerter = Alerter(
                routes: [
                    AlertRoute(url: base + "/v2/enqueue", format: .pagerduty, routingKey: Self.routingKey),
                    AlertRoute(url: base, format: .opsgenie, apiKey: Secret("og-key-123456")),
                ],
                wall: .system(ContinuousClock()),
                logger: logger
            )
            await alerter.send(Self.alert(.dead, .critical, subject: "dlv_1"))
            await upstream.waitForArrivals(2)
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        let requests = upstream.requests
        #expect(requests.map(\.path) == ["/v2/enqueue", "/v2/alerts"])
        #expect(requests.map { $0.header("content-type") } == ["application/json", "application/json"])
        #expect(requests.last?.header("authorization") == "GenieKey og-key-123456")
        try Self.conforms(Data((requests.first?.body ?? "").utf8), to: "pagerduty-trigger")
        try Self.conforms(Data((requests.last?.body ?? "").utf8), to: "opsgenie-create-alert")
    }

    // MARK: a config reload

    @Test func aReloadKeepsWhatASinkThatStaysKnowsAndStartsANewOneAfresh() {
        let pager = AlertRoute(url: AlertRoute.pagerDutyURL, format: .pagerduty, routingKey: Self.routingKey)
        let quiet = AlertRoute(url: "http://a.example/json", quietHours: Self.berlinNights)
        var router = AlertRouter(routes: [pager, quiet])
        #expect(router.receive(Self.alert(.breakerOpened, .critical), at: Self.lateEvening).map(\.sink) == [0, 1])
        #expect(
            router.receive(Self.alert(.endpointEjected, .warning, subject: "b:443"), at: Self.lateEvening)
                .map(\.sink) == [0]
        )
        #expect(router.held(at: 1).count == 1)

        // The PagerDuty sink moves to second place with a new min_severity; the JSON sink loses
        // its quiet hours; a Slack sink is added; another PagerDuty key is another destination.
        var stricter = pager
        stricter.minSeverity = .critical
        let slack = AlertRoute(url: "https://hooks.slack.example/T000/B000/XXXX", format: .slack)
        let otherKey = AlertRoute(
            url: AlertRoute.pagerDutyURL,
            format: .pagerduty,
            routingKey: Secret("fedcba9876543210fedcba9876543210")
        )
        #expect(router.replace(routes: [AlertRoute(url: "http://a.example/json"), stricter, slack, otherKey]) == 0)
        #expect(router.routes.map(\.format) == [.json, .pagerduty, .slack, .pagerduty])
        // The warning held for the JSON sink's quiet hours is due at once; the others hold nothing.
        #expect(router.nextDeadline.map { $0 <= Self.lateEvening } == true)
        let released = router.tick(at: Self.lateEvening.addingTimeInterval(1))
        #expect(released.map(\.sink) == [0] && released.first?.alert.kind == .endpointEjected)
        // The breaker opened before the reload is resolved where it was triggered, at their new places.
        let resolve = router.receive(Self.alert(.breakerClosed, .info), at: Self.lateEvening.addingTimeInterval(90))
        #expect(resolve.map(\.action) == [.resolve, .resolve])
        #expect(resolve.map(\.sink) == [0, 1])
        #expect(resolve.last?.dedupKey == "belay:breaker.opened:payments")
    }

    @Test func aSinkARemovedReloadDropsTakesItsHeldWarningsWithIt() {
        let quiet = AlertRoute(url: "http://a.example/json", quietHours: Self.berlinNights)
        var router = AlertRouter(routes: [quiet])
        for subject in ["a:443", "b:443"] {
            #expect(
                router.receive(Self.alert(.endpointEjected, .warning, subject: subject), at: Self.lateEvening)
                    .isEmpty
            )
        }
        #expect(router.replace(routes: [AlertRoute(url: "http://b.example/json")]) == 2)
        #expect(router.nextDeadline == nil)
        #expect(router.tick(at: Self.lateEvening.addingTimeInterval(86_400)).isEmpty)
    }

    @Test func aConditionPagedBeforeAReloadChangedItsSinksGroupingIsResolvedUnderItsKey() {
        let single = AlertRoute(
            url: AlertRoute.pagerDutyURL,
            format: .pagerduty,
            routingKey: Self.routingKey,
            groupWindow: .zero
        )
        var router = AlertRouter(routes: [single])
        let trigger = router.receive(Self.alert(.breakerOpened, .critical), at: Self.lateEvening)
        #expect(trigger.map(\.dedupKey) == ["belay:breaker.opened:payments:-"])
        var grouped = single
        grouped.groupWindow = .seconds(300)
        _ = router.replace(routes: [grouped])
        let resolve = router.receive(Self.alert(.breakerClosed, .info), at: Self.lateEvening.addingTimeInterval(60))
        #expect(resolve.map(\.action) == [.resolve])
        #expect(resolve.map(\.dedupKey) == ["belay:breaker.opened:payments:-"])
    }
}
