import Belay
import BelayTestUpstream
import Foundation
import NIOHTTP1
import Testing

@testable import BelayGateway

/// The Chromium (Debian package `chromium`) the page is loaded in, if installed.
let chromiumPath: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// Four upstreams meant to end up healthy, down, stale and degraded, on five test upstreams.
let fourStates = ConfigTemplate.custom { urls in
    """
    server: { listen: "127.0.0.1:0" }
    upstreams:
      payments:
        endpoints: ["\(urls[0])"]
        bulkhead: { adaptive: { algorithm: aimd, initial: 8, min: 2, max: 16 } }
        slo: { availability: 99.9%, latency: { p99: 5s }, window: 7d }
      shipping:
        endpoints: ["\(urls[1])"]
        retry: { max_attempts: 1 }
        circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 2, break: 5m }
        probe: { path: "/health", every: 30s }
      catalog:
        endpoints: ["\(urls[2])"]
        retry: { max_attempts: 1 }
        cache: { stale_if_error: 1h }
      crm:
        endpoints: ["\(urls[3])", "\(urls[4])"]
        retry: { max_attempts: 2, base: 1ms, cap: 2ms, budget: 1 }
        circuit_breaker: { break: 5m }
    webhooks:
      stripe:
        verify: { scheme: stripe, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
        forward_to: "http://127.0.0.1:9/hooks/stripe"
    """
}

/// Drives the upstreams of ``fourStates`` into their states through the proxy.
func driveIntoFourStates(_ gateway: GatewayHarness) async throws {
    for _ in 1...2 { #expect(try await gateway.send(.GET, "/proxy/payments/v1/balance").status == 200) }
    gateway.upstreams[1].setBehavior(.always(503))
    for _ in 1...3 { _ = try await gateway.send(.GET, "/proxy/shipping/v1/rates") }
    #expect(try await gateway.send(.GET, "/proxy/catalog/v1/items").status == 200)
    gateway.upstreams[2].setBehavior(.always(503))
    let stale = try await gateway.send(.GET, "/proxy/catalog/v1/items")
    #expect(stale.header("Belay-Degraded")?.hasPrefix("stale") == true)
    gateway.upstreams[3].setBehavior(.always(503))
    for _ in 1...4 { #expect(try await gateway.send(.GET, "/proxy/crm/v1/contacts").status == 200) }
}

@Suite(.timeLimit(.minutes(2))) struct StatusPageTests {
    /// What each state must read like on the page.
    static let expectedWords = [
        "payments: healthy — answering normally",
        "shipping: down — circuit open since",
        "catalog: serving cached responses from",
        "crm: degraded — 1 of 2 endpoints ejected (127.0.0.1:",
        "Objectives: availability: 100% of calls answered over the last 7 days against 99.9%; 100% of the "
            + "error budget left; latency: 100% of answered calls within 5s over the last 7 days against p99 ≤ 5s",
    ]

    @Test(.enabled(if: chromiumPath != nil, "needs the Debian package chromium (apt-get install chromium)"))
    func chromiumShowsEveryStateAfterTheScriptRan() async throws {
        let chromium = try #require(chromiumPath)
        try await GatewayHarness.run(upstreams: 5, config: fourStates) { gateway in
            try await driveIntoFourStates(gateway)
            let url = "http://127.0.0.1:\(gateway.port)/"
            let dom = try await runChromium(
                chromium,
                ["--dump-dom", "--virtual-time-budget=2000", url]
            )
            // The script replaced the server's rendering with one made from /v1/status.
            #expect(dom.contains(#"data-rendered="live""#))
            for words in Self.expectedWords {
                #expect(dom.contains(words), "the page lacks '\(words)'")
            }
            for state in ["healthy", "down", "stale", "degraded"] {
                #expect(dom.contains("upstream state-\(state)"))
            }
            #expect(dom.contains("breaker.opened"))
            #expect(dom.contains("endpoint.ejected"))
            #expect(dom.contains(#"href="/v1/deliveries?status=dead""#))
            #expect(dom.contains("forwards to 127.0.0.1:9/hooks/stripe"))
            #expect(dom.contains("closed → open"))
            // The adaptive limit of payments, drawn over time from /v1/status's history.
            #expect(dom.contains(#"<div class="concurrency" id="concurrency-payments">"#))
            #expect(dom.contains("Concurrency limit (aimd) <b>8</b> of 2–16 · in flight 0"))
            #expect(dom.contains(#"<polyline class="limit" vector-effect="non-scaling-stroke" points="0,2 4,2"#))
            #expect(dom.contains(#"<polyline class="in-flight""#))
            for name in ["shipping", "catalog", "crm"] {  // only payments has an adaptive limit
                #expect(!dom.contains(#"id="concurrency-\#(name)""#))
            }

            if let target = ProcessInfo.processInfo.environment["BELAY_STATUS_SCREENSHOT"] {
                _ = try await runChromium(
                    chromium,
                    ["--screenshot=\(target)", "--window-size=1280,1000", "--virtual-time-budget=2000", url]
                )
                #expect(FileManager.default.fileExists(atPath: target))
            }
        }
    }

    @Test func thePageIsRenderedOnTheServerAndLoadsNothingFromElsewhere() async throws {
        try await GatewayHarness.run(upstreams: 5, config: fourStates) { gateway in
            try await driveIntoFourStates(gateway)
            let page = try await gateway.send(.GET, "/")
            #expect(page.status == 200)
            #expect(page.header("Content-Type") == "text/html; charset=utf-8")
            #expect(page.header("Content-Security-Policy")?.hasPrefix("default-src 'none'") == true)
            #expect(page.body.contains(#"data-rendered="server""#))
            for words in Self.expectedWords {
                #expect(page.body.contains(words), "the page lacks '\(words)'")
            }
            #expect(!page.body.contains("<link"))
            #expect(!page.body.contains(" src="))
            #expect(!page.body.contains("https://"))

            let status = try await gateway.send(.GET, "/v1/status")
            let json = try #require(status.problem)
            let upstreams = try #require(json["upstreams"] as? [[String: Any]])
            #expect(upstreams.compactMap { $0["state"] as? String } == ["healthy", "down", "stale", "degraded"])
            let deliveries = try #require(json["deliveries"] as? [String: Any])
            #expect((deliveries["dead_letter"] as? [String: Any])?["link"] as? String == "/v1/deliveries?status=dead")
            #expect((json["webhooks"] as? [[String: Any]])?.first?["source"] as? String == "stripe")
            let alerts = try #require(json["alerts"] as? [[String: Any]])
            let kinds = Set(alerts.compactMap { $0["kind"] as? String })
            #expect(kinds.isSuperset(of: ["breaker.opened", "endpoint.ejected"]))
            let opened = try #require(alerts.first { $0["kind"] as? String == "breaker.opened" })
            #expect(opened["link"] as? String == "/v1/upstreams/shipping")
            let summary = try #require(opened["summary"] as? String)
            #expect(summary.hasPrefix("shipping: circuit opened at "))
            #expect(summary.contains("the breaker opens when 50% or more of at least 2 calls in "))

            let shipping = try #require(try await gateway.send(.GET, "/v1/upstreams/shipping").problem)
            #expect(shipping["breaker"] as? String == "open")
            #expect(shipping["error_rate"] as? Double ?? 0 > 0.5)
            let history = try #require(shipping["breaker_history"] as? [[String: Any]])
            #expect(history.last?["to"] as? String == "open")
            let windows = try #require(shipping["windows"] as? [String: Any])
            #expect(Set(windows.keys) == ["1m", "5m"])
            let payments = try #require(try await gateway.send(.GET, "/v1/upstreams/payments").problem)
            let latency = try #require(payments["latency_ms"] as? [String: Any])
            #expect(latency["p50"] as? Double ?? 0 > 0)
            #expect(payments["retry_budget"] is [String: Any])
            // The limit over recent time: samples every 5 s, the last being now.
            let concurrency = try #require(payments["concurrency"] as? [String: Any])
            let limitHistory = try #require(concurrency["history"] as? [String: Any])
            #expect(limitHistory["every_seconds"] as? Double == 5)
            let limits = try #require(limitHistory["limit"] as? [Int])
            let inFlight = try #require(limitHistory["in_flight"] as? [Int])
            #expect(!limits.isEmpty && limits.allSatisfy { $0 == 8 })
            #expect(inFlight.count == limits.count && inFlight.last == 0)
            #expect(shipping["concurrency"] == nil)
            // The objectives: two calls, both answered in time, nothing burnt.
            let slo = try #require(payments["slo"] as? [String: Any])
            #expect(slo["window_seconds"] as? Int == 7 * 86_400)
            let objectives = try #require(slo["objectives"] as? [[String: Any]])
            #expect(objectives.compactMap { $0["name"] as? String } == ["availability", "latency"])
            #expect(objectives.first?["target"] as? Double == 0.999)
            #expect(objectives.first?["calls"] as? Int == 2)
            #expect(objectives.first?["budget_remaining"] as? Double == 1)
            #expect(objectives.last?["bound_ms"] as? Double == 5_000)
            #expect((objectives.first?["burn_rates"] as? [String: Any])?.keys.sorted() == ["1h", "30m", "5m", "6h"])
            #expect(shipping["slo"] == nil)
            let metrics = try await gateway.send(.GET, "/metrics").body
            #expect(metrics.contains(#"belay_slo_objective_ratio{upstream="payments",objective="availability"} 0.999"#))
            #expect(
                metrics.contains(#"belay_slo_error_budget_remaining_ratio{upstream="payments",objective="latency"} 1"#)
            )
            #expect(
                metrics.contains(#"belay_slo_burn_rate{upstream="payments",objective="availability",window="1h"} 0"#)
            )
            #expect(page.body.contains(#"<div class="concurrency" id="concurrency-payments">"#))
            #expect(page.body.contains(#"<polyline class="limit""#))
            #expect((try await gateway.send(.GET, "/v1/upstreams/nobody")).code == "not-found")
        }
    }

    @Test func withConsumersThePageNeedsTheStatusScope() async throws {
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              ops: { key_sha256: "\(sha256Hex("ops-key"))", scopes: ["status:read"] }
              app: { key_sha256: "\(sha256Hex("app-key"))", scopes: ["proxy:*"] }
            upstreams:
              pay: { endpoints: ["\(urls[0])"] }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            let anonymous = try await gateway.send(.GET, "/")
            #expect(anonymous.status == 401)
            // A browser is asked for the key, and sends it as a Basic password (any user name).
            #expect(anonymous.header("WWW-Authenticate") == #"Basic realm="belay status", charset="UTF-8""#)
            func basic(_ credentials: String) -> [(String, String)] {
                [("Authorization", "Basic " + Data(credentials.utf8).base64EncodedString())]
            }
            let browser = try await gateway.send(.GET, "/", headers: basic("ops:ops-key"))
            #expect(browser.status == 200 && browser.body.contains("pay: healthy"))
            #expect(try await gateway.send(.GET, "/v1/status", headers: basic(":ops-key")).status == 200)
            #expect(try await gateway.send(.GET, "/", headers: basic("ops:wrong")).status == 401)
            #expect(try await gateway.send(.GET, "/", headers: basic("app:app-key")).status == 403)
            // Elsewhere the key is a bearer token only.
            let api = try await gateway.send(.GET, "/v1/upstreams", headers: basic("ops:ops-key"))
            #expect(api.status == 401 && api.header("WWW-Authenticate") == "Bearer")
            #expect(try await gateway.send(.GET, "/", headers: [("Authorization", "Bearer app-key")]).status == 403)
            let page = try await gateway.send(.GET, "/", headers: [("Authorization", "Bearer ops-key")])
            #expect(page.status == 200)
            #expect(page.body.contains("pay: healthy"))
            #expect(
                try await gateway.send(.GET, "/v1/status", headers: [("Authorization", "Bearer ops-key")]).status == 200
            )
        }
    }
}

/// Runs Chromium headless on `arguments`; returns what it printed (the DOM for `--dump-dom`).
func runChromium(_ path: String, _ arguments: [String]) async throws -> String {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-chromium-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let output = folder.appendingPathComponent("out.html")
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    let handle = try FileHandle(forWritingTo: output)
    defer { try? handle.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments =
        ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(folder.path)/profile"]
        + arguments
    process.currentDirectoryURL = folder
    process.standardOutput = handle
    process.standardError = FileHandle.nullDevice
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        process.terminationHandler = { _ in continuation.resume() }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume()
        }
    }
    return (try? String(contentsOf: output, encoding: .utf8)) ?? ""
}
