import Belay
import BelayHTTP
import BelayStore
import Foundation

/// The live status page (`GET /`): one self-contained HTML document (inline CSS and script, no
/// external resources, so it works offline), rendered on the server so it reads without
/// JavaScript, then re-rendered by its script from `/v1/status` every few seconds.
///
/// The markup is made twice, here and in ``script``, from the same figures; the plain words of
/// each state come from the health model in both cases (`reason`), so they cannot disagree.
enum StatusPage {
    /// How often the page refreshes itself.
    static let refreshSeconds = 5

    /// The whole document for `snapshot`.
    static func render(_ snapshot: StatusSnapshot) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Belay status</title>
        <style>\(style)</style>
        </head>
        <body>
        <header><h1>Belay</h1><p>Gateway status</p></header>
        <main id="status" data-rendered="server">\(main(snapshot))</main>
        <script>\(script)</script>
        </body>
        </html>

        """
    }

    /// The `<main>` element's content (what the script replaces).
    static func main(_ snapshot: StatusSnapshot) -> String {
        var html = "<p class=\"updated\" id=\"updated\">Updated \(escape(clockSeconds(snapshot.generatedAt)));"
        html += " refreshes every \(refreshSeconds) seconds.</p>"
        html += "<section id=\"upstreams\"><h2>Upstreams</h2>"
        if snapshot.upstreams.isEmpty { html += "<p>No upstreams configured.</p>" }
        html += "<div class=\"grid\">"
        for upstream in snapshot.upstreams { html += self.upstream(upstream) }
        html += "</div></section><section id=\"deliveries\"><h2>Deliveries</h2>"
        if let counts = snapshot.deliveries {
            html += "<ul class=\"counts\">"
            for status in DeliveryStatus.allCases where status != .dead {
                html += "<li>\(escape(status.rawValue.replacingOccurrences(of: "_", with: " "))) "
                html += "<b>\(counts[status, default: 0])</b></li>"
            }
            html += "<li class=\"dead\"><a href=\"/v1/deliveries?status=dead\">dead-letter queue "
            html += "<b>\(counts[.dead, default: 0])</b></a></li></ul>"
        } else {
            html += "<p>The delivery store could not be read.</p>"
        }
        html += "</section><section id=\"webhooks\"><h2>Webhook sources</h2>"
        if snapshot.webhooks.isEmpty { html += "<p>No webhook sources configured.</p>" } else { html += "<ul>" }
        for source in snapshot.webhooks {
            html += "<li><b>\(escape(source.name))</b> (\(escape(source.scheme)))"
            html += source.forwardsTo.map { " forwards to \(escape($0))" } ?? " stores events without forwarding"
            html += " · <a href=\"/v1/webhooks/events?source=\(escape(source.name))\">events</a></li>"
        }
        if !snapshot.webhooks.isEmpty { html += "</ul>" }
        html += "</section><section id=\"alerts\"><h2>Recent alerts</h2>"
        if snapshot.alerts.isEmpty { html += "<p>No alerts raised.</p>" } else { html += "<ol>" }
        for recent in snapshot.alerts {
            let alert = recent.alert
            html += "<li class=\"sev-\(escape(alert.severity))\"><time>\(escape(HealthWords.clockTime(recent.lastAt)))"
            html += "</time> <span class=\"kind\">\(escape(alert.kind.rawValue))</span> \(escape(alert.summary))"
            if recent.repeats > 0 { html += " <span class=\"repeats\">(raised \(recent.repeats + 1) times)</span>" }
            if let link = alert.link { html += " <a href=\"\(escape(link))\">details</a>" }
            html += "</li>"
        }
        if !snapshot.alerts.isEmpty { html += "</ol>" }
        html += "</section>"
        return html
    }

    static func upstream(_ upstream: StatusSnapshot.Upstream) -> String {
        let report = upstream.report
        let state = report.state.rawValue
        var html = "<article class=\"upstream state-\(state)\" id=\"upstream-\(escape(report.name))\">"
        html += "<h3><span class=\"badge\">\(state)</span> <span class=\"words\">"
        html += "\(escape(report.name)): \(escape(report.reason))</span></h3>"
        let degradation = Degradation.of(report, config: upstream.config)
        html += "<p class=\"degradation level-\(degradation.level.rawValue)\">\(escape(degradation.summary))</p>"
        let endpoints = zip(upstream.endpointURLs, upstream.live.endpoints).map { url, endpoint in
            "\(url)\(endpoint.ejected ? " (ejected)" : "")"
        }
        html += "<p class=\"meta\">\(state) since \(escape(HealthWords.clockTime(report.since))) · breaker "
        html +=
            "\(escape(upstream.live.breaker.rawValue)) · endpoints: \(escape(endpoints.joined(separator: ", ")))</p>"
        html += "<table><thead><tr><th>window</th><th>requests</th><th>p50</th><th>p95</th><th>p99</th>"
        html += "<th>errors</th><th>retries/req</th><th>stale</th></tr></thead><tbody>"
        for window in report.windows {
            html += "<tr><td>\(escape(window.label))</td><td>\(window.requests)</td>"
            html += "<td>\(milliseconds(window.p50))</td><td>\(milliseconds(window.p95))</td>"
            html += "<td>\(milliseconds(window.p99))</td><td>\(HealthWords.percent(window.errorRate))</td>"
            html += "<td>\(String(format: "%.2f", window.retryRate))</td><td>\(window.stale)</td></tr>"
        }
        html += "</tbody></table><p class=\"history\">Breaker history: "
        if report.breakerHistory.isEmpty {
            html += "no transitions"
        } else {
            html += report.breakerHistory.map { change in
                "\(HealthWords.clockTime(change.at)) \(change.from.rawValue) → \(change.to.rawValue)"
            }.map(escape).joined(separator: "; ")
        }
        html += "</p>"
        if let drill = upstream.drill {
            html += "<p class=\"drill\">Drill \(escape(drill.drill.id)) in progress: "
            html += "\(escape(DrillWords.fault(drill.drill))) until \(escape(HealthWords.clockTime(drill.endsAt))), "
            html += "started by \(escape(drill.startedBy)); what this upstream shows is a rehearsal</p>"
        }
        if let slo = report.slo { html += "<p class=\"slo\">Objectives: \(escape(slo.summary))</p>" }
        if let concurrency = upstream.concurrency { html += self.concurrency(concurrency, upstream: report.name) }
        if let probe = report.probe {
            html += "<p class=\"probe\">Probe GET \(escape(probe.path)): "
            html += escape(probe.lastResult ?? "not run yet")
            if let last = probe.lastAt { html += " at \(escape(HealthWords.clockTime(last)))" }
            html += "</p>"
        }
        html += "<p class=\"links\"><a href=\"/v1/upstreams/\(escape(report.name))\">details (JSON)</a></p></article>"
        return html
    }

    /// An adaptive concurrency limit: its figures now, and its limit and in-flight over recent
    /// time as a sparkline (``sparkline(_:)``).
    static func concurrency(_ state: StatusSnapshot.ConcurrencyState, upstream: String) -> String {
        var html = "<div class=\"concurrency\" id=\"concurrency-\(escape(upstream))\"><p class=\"meta\">"
        html += "Concurrency limit (\(escape(state.algorithm))) <b>\(state.limit)</b> of \(state.minimum)–"
        html +=
            "\(state.maximum) · in flight \(state.inFlight) · queued \(state.queued) · rejected \(state.rejected)</p>"
        html += sparkline(state.history)
        let every = StatusJSON.rounded(state.historyEvery.inSeconds, places: 3)
        html += "<p class=\"legend\"><span class=\"key-limit\">limit</span> and <span class=\"key-in-flight\">"
        html += "in flight</span>: \(state.history.count) samples, one every "
        html += "\(every == every.rounded() ? "\(Int(every))" : "\(every)") s, the last now</p></div>"
        return html
    }

    /// An inline SVG of `samples` (oldest first): the limit and the calls in flight, scaled to the
    /// highest value shown. Integer coordinates, 4 units per sample, so the script draws the same.
    static func sparkline(_ samples: [ConcurrencyHistory<ContinuousClock>.Sample]) -> String {
        let points = samples.count == 1 ? [samples[0], samples[0]] : samples
        let width = max(points.count - 1, 1) * 4
        let peak = max(points.map { max($0.limit, $0.inFlight) }.max() ?? 1, 1)
        func line(_ value: (ConcurrencyHistory<ContinuousClock>.Sample) -> Int) -> String {
            points.enumerated().map { index, sample in
                "\(index * 4),\(38 - Int((Double(value(sample)) * 36 / Double(peak)).rounded()))"
            }.joined(separator: " ")
        }
        var html = "<svg class=\"spark\" viewBox=\"0 0 \(width) 40\" preserveAspectRatio=\"none\" role=\"img\" "
        html += "aria-label=\"concurrency limit and in flight over recent time, peak \(peak)\">"
        html += "<polyline class=\"limit\" vector-effect=\"non-scaling-stroke\" points=\"\(line(\.limit))\"/>"
        html += "<polyline class=\"in-flight\" vector-effect=\"non-scaling-stroke\" points=\"\(line(\.inFlight))\"/>"
        html += "</svg>"
        return html
    }

    /// `12.3 ms`, `—` for none.
    static func milliseconds(_ duration: Duration?) -> String {
        guard let duration else { return "—" }
        let value = StatusJSON.rounded(duration.inSeconds * 1_000, places: 1)
        return value == value.rounded() ? "\(Int(value)) ms" : "\(value) ms"
    }

    /// `12:03:04 UTC`.
    static func clockSeconds(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let second = ((seconds % 60) + 60) % 60
        let minute = HealthWords.clockTime(date).dropLast(" UTC".count)
        return "\(minute):\(second < 10 ? "0" : "")\(second) UTC"
    }

    /// `text` safe inside HTML text and attribute values.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
