import Foundation

/// A small JSON Schema checker for the keywords the provider schemas under Schemas/ use:
/// `type`, `required`, `properties`, `additionalProperties` (false or a schema), `enum`,
/// `minLength`, `maxLength`, `items`, `maxItems`. `$comment` and unknown keywords are
/// refused, so a schema cannot silently use one this checker ignores.
struct JSONSchemaChecker {
    struct UnsupportedKeyword: Error, CustomStringConvertible {
        var keyword: String
        var path: String
        var description: String { "the schema uses '\(keyword)' at \(path), which this checker does not support" }
    }

    static let supported: Set<String> = [
        "$comment", "type", "required", "properties", "additionalProperties", "enum", "minLength", "maxLength",
        "items", "maxItems",
    ]

    let schema: [String: Any]

    /// The schema in Tests/BelayGatewayTests/Schemas/`name`.json.
    init(named name: String) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Schemas/\(name).json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let schema = object as? [String: Any] else {
            throw UnsupportedKeyword(keyword: "(not an object)", path: name)
        }
        self.schema = schema
    }

    init(schema: [String: Any]) {
        self.schema = schema
    }

    /// Every violation of the schema by `data` (a JSON document), as "path: what"; empty when it conforms.
    func violations(of data: Data) throws -> [String] {
        let value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        var found: [String] = []
        try check(value, against: schema, at: "$", into: &found)
        return found
    }

    private func check(_ value: Any, against schema: [String: Any], at path: String, into found: inout [String]) throws
    {
        if let keyword = schema.keys.first(where: { !Self.supported.contains($0) }) {
            throw UnsupportedKeyword(keyword: keyword, path: path)
        }
        if let type = schema["type"] as? String, !Self.matches(value, type: type) {
            found.append("\(path): is not of type \(type)")
            return
        }
        if let allowed = schema["enum"] as? [Any], !allowed.contains(where: { Self.equal($0, value) }) {
            found.append("\(path): \(value) is not one of \(allowed)")
        }
        if let text = value as? String {
            if let maximum = schema["maxLength"] as? Int, text.count > maximum {
                found.append("\(path): is \(text.count) characters, more than \(maximum)")
            }
            if let minimum = schema["minLength"] as? Int, text.count < minimum {
                found.append("\(path): is \(text.count) characters, fewer than \(minimum)")
            }
        }
        if let array = value as? [Any] {
            if let maximum = schema["maxItems"] as? Int, array.count > maximum {
                found.append("\(path): has \(array.count) items, more than \(maximum)")
            }
            if let items = schema["items"] as? [String: Any] {
                for (index, item) in array.enumerated() {
                    try check(item, against: items, at: "\(path)[\(index)]", into: &found)
                }
            }
        }
        if let object = value as? [String: Any] {
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                found.append("\(path): lacks the required '\(key)'")
            }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for (key, member) in object.sorted(by: { $0.key < $1.key }) {
                if let property = properties[key] as? [String: Any] {
                    try check(member, against: property, at: "\(path).\(key)", into: &found)
                } else if let additional = schema["additionalProperties"] as? [String: Any] {
                    try check(member, against: additional, at: "\(path).\(key)", into: &found)
                } else if let additional = schema["additionalProperties"] as? Bool, !additional {
                    found.append("\(path): has '\(key)', which the schema does not allow")
                }
            }
        }
    }

    private static func isBoolean(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c" || String(cString: number.objCType) == "B"
            || type(of: value) == Bool.self
    }

    private static func matches(_ value: Any, type: String) -> Bool {
        switch type {
        case "object": return value is [String: Any]
        case "array": return value is [Any]
        case "string": return value is String
        case "boolean": return isBoolean(value)
        case "integer":
            guard let number = value as? NSNumber, !(value is String), !isBoolean(value) else { return false }
            return number.doubleValue.rounded() == number.doubleValue
        case "number": return value is NSNumber && !(value is String) && !isBoolean(value)
        case "null": return value is NSNull
        default: return false
        }
    }

    private static func equal(_ lhs: Any, _ rhs: Any) -> Bool {
        if let lhs = lhs as? String, let rhs = rhs as? String { return lhs == rhs }
        if let lhs = lhs as? NSNumber, let rhs = rhs as? NSNumber { return lhs == rhs }
        return false
    }
}
