import Foundation

/// A Slack incoming-webhook message (https://api.slack.com/messaging/webhooks) in Block Kit
/// (https://api.slack.com/reference/block-kit/blocks): `text` is the notification's fallback;
/// a `section` block (mrkdwn text, at most 3,000 characters) and a `context` block (at most
/// 10 elements) carry the alert.
struct SlackMessage: Encodable, Sendable {
    struct Text: Encodable, Sendable {
        var type = "mrkdwn"
        var text: String
    }

    struct Block: Encodable, Sendable {
        var type: String
        var text: Text?
        var elements: [Text]?
    }

    var text: String
    var blocks: [Block]
}

extension AlertFormatter {
    /// A Slack message: the severity and headline in a section, the kind, upstream, subject,
    /// time and link in a context line. Text is escaped for mrkdwn (`&`, `<`, `>`).
    func slack(_ dispatch: AlertDispatch) -> SlackMessage {
        let alert = dispatch.alert
        let mark = dispatch.action == .resolve ? ":white_check_mark: *resolved*" : Self.slackMark(alert.level)
        let headline = Self.escapeMrkdwn(headline(dispatch))
        var context = ["`\(Self.escapeMrkdwn(alert.kind.rawValue))`"]
        if let upstream = alert.upstream { context.append("upstream *\(Self.escapeMrkdwn(upstream))*") }
        if let subject = alert.subject { context.append(Self.escapeMrkdwn(subject)) }
        if let lastError = alert.lastError, dispatch.action == .trigger {
            context.append("last error: \(Self.escapeMrkdwn(Self.truncate(lastError, 500)))")
        }
        context.append("at \(alert.at.iso8601)")
        if let link = alert.link { context.append(Self.escapeMrkdwn(link)) }
        return SlackMessage(
            text: Self.truncate(
                "\(dispatch.action == .resolve ? "[resolved]" : "[\(alert.level)]") \(headline)",
                3_000
            ),
            blocks: [
                .init(type: "section", text: .init(text: Self.truncate("\(mark) \(headline)", 3_000))),
                .init(type: "context", elements: context.prefix(10).map { .init(text: Self.truncate($0, 2_000)) }),
            ]
        )
    }

    static func slackMark(_ severity: AlertSeverity) -> String {
        switch severity {
        case .critical: ":red_circle: *critical*"
        case .warning: ":warning: *warning*"
        case .info: ":information_source: *info*"
        }
    }

    /// `text` with Slack's control characters escaped, as its formatting guide asks.
    static func escapeMrkdwn(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
