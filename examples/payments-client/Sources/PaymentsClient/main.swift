import BelayHTTP
import BelayTestUpstream
import Foundation
import Logging
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime

// The pretend provider, on 127.0.0.1: its first charge answers 503, as a provider under load does.
var quiet = Logger(label: "provider")
quiet.logLevel = .critical
let provider = TestUpstream(logger: quiet)
let charge = #"{"id":"ch_1","amount":1250,"currency":"eur","status":"succeeded"}"#
let json = ["Content-Type": "application/json"]
provider.setBehavior(UpstreamBehavior(statuses: [503], status: 201, body: charge, headers: json), for: "/v1/charges")
provider.setBehavior(UpstreamBehavior(status: 200, body: charge, headers: json), for: "/v1/charges/")
let running = Task { try await provider.run() }
let serverURL = URL(string: await provider.baseURL())!

// The one line that makes the generated client resilient: the gateway's policy, in code.
var policy = UpstreamPolicy(name: "payments", endpoints: [])  // none: the client's server URL
policy.idempotencyHeader = "Idempotency-Key"  // the provider honours keys: a POST may be retried
policy.retryBase = .milliseconds(20)
let client = Client(
    serverURL: serverURL,
    transport: AsyncHTTPClientTransport(),
    middlewares: [try ResilienceMiddleware(policy: policy)]
)

let created = try await client.createCharge(body: .json(.init(amount: 1250, currency: "eur")))
guard case .created(let answer) = created, case .json(let made) = answer.body else {
    print("error: the charge was not created: \(created)")
    exit(1)
}
let fetched = try await client.getCharge(path: .init(id: made.id))
guard case .ok(let found) = fetched, case .json(let read) = found.body else {
    print("error: the charge could not be read back: \(fetched)")
    exit(1)
}
let posts = provider.requests.filter { $0.method == "POST" }
let keys = Set(posts.compactMap { $0.header("Idempotency-Key") })
print("created \(made.id) (\(made.amount) \(made.currency), \(read.status)) after \(posts.count) POSTs to the provider")
print(
    "the provider answered \(posts.map { String($0.status) }.joined(separator: ", ")); every POST carried one idempotency key: \(keys.count == 1)"
)
running.cancel()
// Retried once, with one key: the application saw one charge, the provider one effect.
exit(posts.count == 2 && keys.count == 1 ? 0 : 1)
