extension StatusPage {
    /// The page's stylesheet: system fonts, one colour per state, light and dark schemes.
    static let style = #"""
        :root { color-scheme: light dark; --fg: #1d2330; --muted: #5b6475; --bg: #f6f7f9; --card: #fff;
          --line: #dde1e8; --healthy: #1f8a4c; --degraded: #b7791f; --stale: #6b46c1; --down: #c53030; }
        @media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #9aa3b2; --bg: #14171c; --card: #1c2027;
          --line: #2c323c; } }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
          background: var(--bg); }
        header { display: flex; align-items: baseline; gap: 1em; padding: 14px 24px; border-bottom: 1px solid var(--line);
          background: var(--card); }
        header h1 { margin: 0; font-size: 22px; } header p { margin: 0; color: var(--muted); }
        main { max-width: 1180px; margin: 0 auto; padding: 12px 24px 40px; }
        h2 { font-size: 17px; margin: 22px 0 10px; }
        .updated { color: var(--muted); margin: 4px 0; font-size: 13px; }
        .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 12px; }
        .upstream { background: var(--card); border: 1px solid var(--line); border-left: 6px solid var(--muted);
          border-radius: 8px; padding: 10px 16px; margin: 0; }
        .upstream h3 { margin: 0 0 4px; font-size: 15px; font-weight: 600; }
        .state-healthy { border-left-color: var(--healthy); } .state-degraded { border-left-color: var(--degraded); }
        .state-stale { border-left-color: var(--stale); } .state-down { border-left-color: var(--down); }
        .badge { display: inline-block; min-width: 76px; text-align: center; padding: 1px 8px; border-radius: 10px;
          color: #fff; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; background: var(--muted); }
        .state-healthy .badge { background: var(--healthy); } .state-degraded .badge { background: var(--degraded); }
        .state-stale .badge { background: var(--stale); } .state-down .badge { background: var(--down); }
        .degradation { margin: 4px 0; font-size: 14px; }
        .meta, .history, .probe, .links, .legend { margin: 4px 0; color: var(--muted); font-size: 13px; }
        .spark { display: block; width: 100%; max-width: 480px; height: 40px; margin: 2px 0;
          border-bottom: 1px solid var(--line); }
        .spark polyline { fill: none; stroke-width: 1.5; stroke-linejoin: round; }
        .spark .limit, .key-limit { stroke: var(--stale); color: var(--stale); }
        .spark .in-flight, .key-in-flight { stroke: var(--healthy); color: var(--healthy); }
        table { border-collapse: collapse; margin: 6px 0; font-size: 13px; font-variant-numeric: tabular-nums; }
        th, td { text-align: right; padding: 2px 12px 2px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
        th:first-child, td:first-child { text-align: left; }
        th { color: var(--muted); font-weight: 500; }
        .counts { display: flex; flex-wrap: wrap; gap: 8px; list-style: none; padding: 0; margin: 0; }
        .counts li { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 4px 12px; }
        .counts .dead { border-color: var(--down); }
        ul, ol { padding-left: 20px; } li { margin: 3px 0; }
        .sev-critical .kind { color: var(--down); } .sev-warning .kind { color: var(--degraded); }
        .sev-info .kind { color: var(--healthy); }
        .kind { font-family: ui-monospace, monospace; font-size: 13px; }
        time { color: var(--muted); font-variant-numeric: tabular-nums; }
        a { color: inherit; }
        """#

    /// The page's script: fetches `v1/status` now and every ``refreshSeconds`` and re-renders
    /// `<main>` with the same markup as ``main(_:)``.
    static let script = #"""
        (function () {
          'use strict';
          var main = document.getElementById('status');
          var every = Number('\#(refreshSeconds)') * 1000;
          function esc(s) {
            return String(s).replace(/[&<>"']/g, function (c) {
              return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
            });
          }
          function hm(iso) { return iso ? new Date(iso).toISOString().slice(11, 16) + ' UTC' : ''; }
          function hms(iso) { return new Date(iso).toISOString().slice(11, 19) + ' UTC'; }
          function ms(v) { return v === null || v === undefined ? '\u2014' : v + ' ms'; }
          function pct(r) {
            var v = r * 100;
            return (v >= 10 || v === Math.round(v)) ? Math.round(v) + '%' : (Math.round(v * 10) / 10) + '%';
          }
          function sparkline(limits, inFlight) {
            var n = limits.length === 1 ? 2 : limits.length;
            var at = function (values, i) { return values[Math.min(i, values.length - 1)]; };
            var peak = Math.max(1, Math.max.apply(null, limits.concat(inFlight)));
            function line(values) {
              var p = [];
              for (var i = 0; i < n; i++) { p.push((i * 4) + ',' + (38 - Math.round(at(values, i) * 36 / peak))); }
              return p.join(' ');
            }
            return '<svg class="spark" viewBox="0 0 ' + (Math.max(n - 1, 1) * 4) + ' 40" preserveAspectRatio="none" ' +
              'role="img" aria-label="concurrency limit and in flight over recent time, peak ' + peak + '">' +
              '<polyline class="limit" vector-effect="non-scaling-stroke" points="' + line(limits) + '"/>' +
              '<polyline class="in-flight" vector-effect="non-scaling-stroke" points="' + line(inFlight) + '"/></svg>';
          }
          function concurrency(c, name) {
            var h = '<div class="concurrency" id="concurrency-' + esc(name) + '"><p class="meta">Concurrency limit (' +
              esc(c.algorithm) + ') <b>' + c.limit + '</b> of ' + c.min + '\u2013' + c.max + ' \u00b7 in flight ' +
              c.in_flight + ' \u00b7 queued ' + c.queued + ' \u00b7 rejected ' + c.rejected + '</p>';
            h += sparkline(c.history.limit, c.history.in_flight);
            h += '<p class="legend"><span class="key-limit">limit</span> and <span class="key-in-flight">in flight</span>: ' +
              c.history.limit.length + ' samples, one every ' + c.history.every_seconds + ' s, the last now</p></div>';
            return h;
          }
          function upstream(u) {
            var h = '<article class="upstream state-' + esc(u.state) + '" id="upstream-' + esc(u.name) + '">';
            h += '<h3><span class="badge">' + esc(u.state) + '</span> <span class="words">' + esc(u.name) + ': ' +
              esc(u.reason) + '</span></h3>';
            if (u.degradation) {
              h += '<p class="degradation level-' + esc(u.degradation.level) + '">' + esc(u.degradation.summary) + '</p>';
            }
            var endpoints = u.endpoints.map(function (e) { return e.url + (e.ejected ? ' (ejected)' : ''); });
            h += '<p class="meta">' + esc(u.state) + ' since ' + esc(hm(u.since)) + ' \u00b7 breaker ' + esc(u.breaker) +
              ' \u00b7 endpoints: ' + esc(endpoints.join(', ')) + '</p>';
            h += '<table><thead><tr><th>window</th><th>requests</th><th>p50</th><th>p95</th><th>p99</th>' +
              '<th>errors</th><th>retries/req</th><th>stale</th></tr></thead><tbody>';
            Object.keys(u.windows).sort(function (a, b) { return parseInt(a, 10) - parseInt(b, 10); })
              .forEach(function (label) {
                var w = u.windows[label];
                h += '<tr><td>' + esc(label) + '</td><td>' + w.requests + '</td><td>' + ms(w.latency_ms.p50) +
                  '</td><td>' + ms(w.latency_ms.p95) + '</td><td>' + ms(w.latency_ms.p99) + '</td><td>' +
                  pct(w.error_rate) + '</td><td>' + w.retry_rate.toFixed(2) + '</td><td>' + w.stale + '</td></tr>';
              });
            h += '</tbody></table><p class="history">Breaker history: ';
            h += u.breaker_history.length === 0 ? 'no transitions' : u.breaker_history.map(function (c) {
              return esc(hm(c.at) + ' ' + c.from + ' \u2192 ' + c.to);
            }).join('; ');
            h += '</p>';
            if (u.drill) {
              h += '<p class="drill">Drill ' + esc(u.drill.id) + ' in progress: ' + esc(u.drill.summary) + ' until ' +
                esc(hm(u.drill.ends_at)) + ', started by ' + esc(u.drill.started_by) +
                '; what this upstream shows is a rehearsal</p>';
            }
            if (u.slo) { h += '<p class="slo">Objectives: ' + esc(u.slo.summary) + '</p>'; }
            if (u.concurrency) { h += concurrency(u.concurrency, u.name); }
            if (u.probe) {
              h += '<p class="probe">Probe GET ' + esc(u.probe.path) + ': ' + esc(u.probe.last_result || 'not run yet');
              if (u.probe.last_at) { h += ' at ' + esc(hm(u.probe.last_at)); }
              h += '</p>';
            }
            h += '<p class="links"><a href="/v1/upstreams/' + esc(u.name) + '">details (JSON)</a></p></article>';
            return h;
          }
          function render(d) {
            var h = '<p class="updated" id="updated">Updated ' + esc(hms(d.generated_at)) + '; refreshes every ' +
              (every / 1000) + ' seconds.</p>';
            h += '<section id="upstreams"><h2>Upstreams</h2>';
            if (d.upstreams.length === 0) { h += '<p>No upstreams configured.</p>'; }
            h += '<div class="grid">';
            d.upstreams.forEach(function (u) { h += upstream(u); });
            h += '</div></section><section id="deliveries"><h2>Deliveries</h2>';
            if (d.deliveries.available) {
              h += '<ul class="counts">';
              ['pending', 'in_flight', 'delivered', 'acknowledged', 'cancelled'].forEach(function (s) {
                h += '<li>' + esc(s.replace('_', ' ')) + ' <b>' + (d.deliveries.counts[s] || 0) + '</b></li>';
              });
              h += '<li class="dead"><a href="' + esc(d.deliveries.dead_letter.link) + '">dead-letter queue <b>' +
                d.deliveries.dead_letter.count + '</b></a></li></ul>';
            } else {
              h += '<p>The delivery store could not be read.</p>';
            }
            h += '</section><section id="webhooks"><h2>Webhook sources</h2>';
            if (d.webhooks.length === 0) { h += '<p>No webhook sources configured.</p>'; } else { h += '<ul>'; }
            d.webhooks.forEach(function (w) {
              h += '<li><b>' + esc(w.source) + '</b> (' + esc(w.scheme) + ')' +
                (w.forwards_to ? ' forwards to ' + esc(w.forwards_to) : ' stores events without forwarding') +
                ' \u00b7 <a href="' + esc(w.link) + '">events</a></li>';
            });
            if (d.webhooks.length !== 0) { h += '</ul>'; }
            h += '</section><section id="alerts"><h2>Recent alerts</h2>';
            if (d.alerts.length === 0) { h += '<p>No alerts raised.</p>'; } else { h += '<ol>'; }
            d.alerts.forEach(function (a) {
              h += '<li class="sev-' + esc(a.severity) + '"><time>' + esc(hm(a.last_at)) + '</time> <span class="kind">' +
                esc(a.kind) + '</span> ' + esc(a.summary);
              if (a.repeats > 0) { h += ' <span class="repeats">(raised ' + (a.repeats + 1) + ' times)</span>'; }
              if (a.link) { h += ' <a href="' + esc(a.link) + '">details</a>'; }
              h += '</li>';
            });
            if (d.alerts.length !== 0) { h += '</ol>'; }
            h += '</section>';
            main.innerHTML = h;
            main.setAttribute('data-rendered', 'live');
          }
          function refresh() {
            fetch('v1/status', { cache: 'no-store', headers: { 'Accept': 'application/json' } })
              .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.json(); })
              .then(render)
              .catch(function (e) {
                var u = document.getElementById('updated');
                if (u) { u.textContent = 'Could not refresh (' + e.message + '); showing the last figures.'; }
              });
          }
          refresh();
          setInterval(refresh, every);
        })();
        """#
}
