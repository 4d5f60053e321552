import ArgumentParser
import BelayGateway
import BelayStore
import Foundation

/// Which store a `belay storage` command works on: `--storage`, else `$BELAY_STORAGE_URL`,
/// else the `storage.url` of the config file.
struct StoreSelection: ParsableArguments {
    @Option(name: .shortAndLong, help: "The gateway's config file; its storage.url names the store.")
    var config: String = "belay.yaml"

    @Option(
        help: """
            The store as storage.url names it, sqlite:<path> or postgres://…, instead of the config's \
            (default: $BELAY_STORAGE_URL).
            """
    )
    var storage: String?

    /// A store named on the command line or in the environment (``storage``, then `BELAY_STORAGE_URL`).
    private var named: String? {
        if let storage { return storage }
        guard let variable = ProcessInfo.processInfo.environment["BELAY_STORAGE_URL"], !variable.isEmpty else {
            return nil
        }
        return variable
    }

    /// The store to use; prints what is wrong and exits 2 when it cannot be told (a URL Belay
    /// cannot use, a config with problems).
    func resolve(_ command: String) throws -> GatewayConfig.Storage {
        if let named {
            if named.hasPrefix("sqlite:"), named.count > "sqlite:".count {
                return .sqlite(path: String(named.dropFirst("sqlite:".count)))
            }
            guard named.hasPrefix("postgres://") || named.hasPrefix("postgresql://") else {
                printError("belay \(command): --storage must be sqlite:<path> or postgres://… (as storage.url)")
                throw ExitCode(2)
            }
            do {
                _ = try PostgresLocation(url: named)
            } catch {
                // The message names the URL with its password replaced.
                printError("belay \(command): --storage: \(error.message)")
                throw ExitCode(2)
            }
            return .postgres(url: Secret(named))
        }
        do {
            return try ConfigLoader(environment: ProcessInfo.processInfo.environment).load(contentsOf: config).storage
        } catch {
            printError("belay \(command): \(config): \(error.issues.count) problem(s); name the store with --storage")
            for issue in error.issues {
                let location = issue.line.map { "\(config):\($0): " } ?? "\(config): "
                printError("  \(location)\(issue.path.isEmpty ? "(root)" : issue.path): \(issue.message)")
            }
            throw ExitCode(2)
        }
    }
}
