/// Reads a model spec (ARCHITECTURES.md section 5) from YAML into a resolved `ModelSpec`.
///
/// The mapping is the top-level document, or the `network_g` mapping of a BasicSR options file (then every other
/// top-level key is ignored). Every error is a `HybridError` whose location is "FILE:LINE", the line of the offending
/// key or value; warnings are strings of the form "FILE:LINE: warning: ...".
import Foundation
import HybridIR
import Yams

public enum ModelSpecReader {
    /// The keys a spec may hold, in the order of ARCHITECTURES.md section 5.
    public static let knownKeys = [
        "type", "inp_channels", "out_channels", "dim", "num_blocks", "num_refinement_blocks", "heads",
        "ffn_expansion_factor", "bias", "LayerNorm_type", "dual_pixel_task", "mlp_ratio", "d_state", "layout",
    ]

    /// Keys of the upstream constructors that hybridc does not use: accepted with a warning.
    public static let ignoredUpstreamKeys = ["window_size", "interval", "img_range", "upscale"]

    /// Reads and parses the spec file at `path`; `spec.source` is `path`.
    public static func load(path: String) throws -> (spec: ModelSpec, warnings: [String]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw HybridError("cannot read the model spec: no such file", at: path)
        }
        guard !isDirectory.boolValue else {
            throw HybridError("cannot read the model spec: it is a directory", at: path)
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw HybridError("cannot read the model spec: \(error.localizedDescription)", at: path)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
            let bad = lines.firstIndex { String(data: Data($0), encoding: .utf8) == nil } ?? 0
            throw HybridError("malformed YAML: the file is not valid UTF-8 text", at: "\(path):\(bad + 1)")
        }
        return try parse(yaml: text, source: path)
    }

    /// Parses spec text; `source` names it in every location ("SOURCE:LINE") and becomes `spec.source`.
    public static func parse(yaml: String, source: String) throws -> (spec: ModelSpec, warnings: [String]) {
        var reader = Reader(source: source.isEmpty ? "<spec>" : source, yaml: yaml)
        var spec = try reader.read()
        spec.source = source
        return (spec, reader.warnings)
    }

    /// Expands a layout string ("SSSS/SSSSSS/T/...") against the block counts of `spec` (8 groups, stage order).
    /// Throws a `HybridError` located at `location`.
    public static func expandLayout(_ text: String, for spec: ModelSpec, at location: String = "") throws
        -> [[BlockKind]] {
        let layoutHelp = "enc1/enc2/enc3/latent/dec3/dec2/dec1/refinement"
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let groups = trimmed.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard groups.count == Stage.allCases.count else {
            throw HybridError(
                "'layout' must have 8 groups separated by '/' (\(layoutHelp)), got \(groups.count) in '\(trimmed)'",
                at: location)
        }
        var result: [[BlockKind]] = []
        for stage in Stage.allCases {
            let group = groups[stage.rawValue]
            var kinds: [BlockKind] = []
            for letter in group {
                guard let kind = BlockKind(rawValue: letter) else {
                    throw HybridError(
                        "'layout' group \(stage.rawValue + 1) (\(stage.moduleName)) has the invalid letter "
                            + "'\(letter)'; each block is T (transformer) or S (state-space)",
                        at: location)
                }
                kinds.append(kind)
            }
            let count = spec.blockCount(stage)
            if kinds.count == 1 {
                result.append(Array(repeating: kinds[0], count: count))
            } else if kinds.count == count {
                result.append(kinds)
            } else {
                throw HybridError(
                    "'layout' group \(stage.rawValue + 1) (\(stage.moduleName)) has \(kinds.count) "
                        + "\(kinds.count == 1 ? "letter" : "letters") but \(stage.moduleName) has \(count) "
                        + "\(count == 1 ? "block" : "blocks") (a group is one letter per block, or one letter "
                        + "for the whole stage)",
                    at: location)
            }
        }
        return result
    }

    /// A layout of one block kind everywhere, with the block counts of `spec`.
    public static func uniformLayout(_ kind: BlockKind, for spec: ModelSpec) -> [[BlockKind]] {
        Stage.allCases.map { Array(repeating: kind, count: spec.blockCount($0)) }
    }
}

// MARK: - Implementation

/// The resolved tag of a scalar (`Node.Scalar.tag` itself is the unresolved one).
private func kind(_ scalar: Node.Scalar) -> Tag.Name {
    Tag.Name(rawValue: Node.scalar(scalar).tag.rawValue)
}

private struct Entry {
    let key: String
    let keyNode: Node
    let value: Node
}

private struct Reader {
    let source: String
    let yaml: String
    var warnings: [String] = []
    var entries: [String: Entry] = [:]
    /// Line of the spec mapping (for a missing `type`).
    var mappingLine = 1

    init(source: String, yaml: String) {
        self.source = source
        self.yaml = yaml
    }

    // MARK: Locations and descriptions

    func location(line: Int) -> String { "\(source):\(line)" }

    func location(_ node: Node) -> String { location(line: node.mark?.line ?? 1) }

    /// The location of a key's line (its value's line when the key carries no mark).
    func location(_ entry: Entry) -> String { location(entry.keyNode.mark != nil ? entry.keyNode : entry.value) }

    /// The location of the first present key among `keys`, else of the mapping.
    func location(firstOf keys: [String]) -> String {
        for key in keys { if let entry = entries[key] { return location(entry) } }
        return location(line: mappingLine)
    }

    /// A short description of a node's value for messages.
    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            if kind(scalar) == .null { return "no value" }
            if kind(scalar) == .str && scalar.style != .plain && scalar.style != .any {
                return "the string \"\(scalar.string)\""
            }
            return "'\(scalar.string)'"
        case .sequence(let sequence): return "a list of \(sequence.count)"
        case .mapping: return "a mapping"
        case .alias: return "an alias"
        }
    }

    // MARK: YAML

    func compose() throws -> Node? {
        do {
            return try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw malformed(error)
        }
    }

    func malformed(_ error: YamlError) -> HybridError {
        func contextText(_ context: YamlError.Context?) -> String {
            guard let context else { return "" }
            return " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
        }
        func problemText(_ problem: String) -> String {
            problem.hasPrefix("but ") ? String(problem.dropFirst(4)) : problem
        }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return HybridError(
                "malformed YAML at column \(mark.column): \(problemText(problem))\(contextText(context))",
                at: location(line: mark.line))
        case let .reader(problem, offset, value, _):
            let valueText = value >= 0 ? String(format: " (#x%X)", value) : ""
            if let offset, let (line, column) = lineAndColumn(ofCharacterOffset: offset) {
                return HybridError("malformed YAML at column \(column): \(problem)\(valueText)",
                                   at: location(line: line))
            }
            return HybridError("malformed YAML: \(problem)\(valueText)", at: location(line: 1))
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return HybridError(
                "malformed YAML at column \(context.mark.column): duplicate key \(keys) in a mapping",
                at: location(line: max(context.mark.line, 1)))
        default:
            return HybridError("malformed YAML: \(error)", at: location(line: 1))
        }
    }

    /// 1-based line and column of a Character offset into the YAML text.
    func lineAndColumn(ofCharacterOffset offset: Int) -> (Int, Int)? {
        guard offset >= 0, offset <= yaml.count else { return nil }
        var line = 1, column = 1
        for character in yaml.prefix(offset) {
            if character == "\n" || character == "\r\n" || character == "\r" {
                line += 1
                column = 1
            } else {
                column += character.unicodeScalars.count
            }
        }
        return (line, column)
    }

    // MARK: Mapping

    /// The pairs of a mapping, with YAML merge keys (`<<: *anchor`) applied; explicit keys win over merged ones.
    func pairs(of mapping: Node.Mapping) throws -> [(Node, Node)] {
        var explicit: [(Node, Node)] = []
        var merged: [(Node, Node)] = []
        for (key, value) in mapping {
            if case .scalar(let scalar) = key, kind(scalar) == .merge {
                let sources: [Node]
                switch value {
                case .mapping: sources = [value]
                case .sequence(let sequence): sources = Array(sequence)
                default: sources = []
                }
                for source in sources {
                    guard case .mapping(let inner) = source else {
                        throw HybridError("the merge key '<<' must name a mapping or a list of mappings",
                                          at: location(key))
                    }
                    merged += try pairs(of: inner)
                }
                if sources.isEmpty {
                    throw HybridError("the merge key '<<' must name a mapping or a list of mappings",
                                      at: location(key))
                }
            } else {
                explicit.append((key, value))
            }
        }
        let explicitKeys = Set(explicit.compactMap { $0.0.scalar?.string })
        var seenMerged = Set<String>()
        var result = explicit
        for (key, value) in merged {
            guard let name = key.scalar?.string else { result.append((key, value)); continue }
            if explicitKeys.contains(name) || seenMerged.contains(name) { continue }
            seenMerged.insert(name)
            result.append((key, value))
        }
        return result
    }

    /// The spec mapping: the document, or its `network_g` mapping.
    func specMapping(_ root: Node) throws -> Node.Mapping {
        guard case .mapping(let top) = root else {
            throw HybridError(
                "the model spec must be a YAML mapping of keys to values (with at least 'type'), got \(describe(root))",
                at: location(root))
        }
        for (key, value) in try pairs(of: top) where key.scalar?.string == "network_g" {
            guard case .mapping(let inner) = value else {
                throw HybridError("'network_g' must be a mapping of keys to values, got \(describe(value))",
                                  at: location(key))
            }
            return inner
        }
        return top
    }

    mutating func collect(_ mapping: Node.Mapping) throws {
        mappingLine = mapping.mark?.line ?? 1
        for (keyNode, value) in try pairs(of: mapping) {
            guard case .scalar(let keyScalar) = keyNode else {
                throw HybridError("a model spec key must be a plain name, got \(describe(keyNode))",
                                  at: location(keyNode))
            }
            let key = keyScalar.string
            if ModelSpecReader.knownKeys.contains(key) {
                entries[key] = Entry(key: key, keyNode: keyNode, value: value)
            } else if ModelSpecReader.ignoredUpstreamKeys.contains(key) {
                warnings.append(
                    "\(location(keyNode)): warning: key '\(key)' is an upstream option hybridc does not use; ignored")
            } else {
                var message = "unknown key '\(key)'"
                if let suggestion = Self.suggestion(for: key) { message += " (did you mean '\(suggestion)'?)" }
                message += "; known keys: " + ModelSpecReader.knownKeys.joined(separator: ", ")
                throw HybridError(message, at: location(keyNode))
            }
        }
    }

    static func suggestion(for key: String) -> String? {
        let lowered = key.lowercased()
        var best: (String, Int)?
        for known in ModelSpecReader.knownKeys {
            let distance = editDistance(Array(lowered), Array(known.lowercased()))
            if distance <= 2, distance < (best?.1 ?? Int.max) { best = (known, distance) }
        }
        return best?.0
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    // MARK: Typed values

    enum Bound { case any, nonNegative, positive }

    func integer(_ node: Node, named name: String, bound: Bound, at location: String) throws -> Int {
        guard case .scalar(let scalar) = node, kind(scalar) == .int else {
            throw HybridError("'\(name)' must be \(Self.article(bound))integer, got \(describe(node))", at: location)
        }
        guard let value = Int.construct(from: scalar) else {
            throw HybridError("'\(name)' is out of range: \(scalar.string)", at: location)
        }
        switch bound {
        case .positive where value < 1:
            throw HybridError("'\(name)' must be a positive integer, got \(value)", at: location)
        case .nonNegative where value < 0:
            throw HybridError("'\(name)' must be a non-negative integer, got \(value)", at: location)
        default:
            return value
        }
    }

    static func article(_ bound: Bound) -> String {
        switch bound {
        case .any: return "an "
        case .nonNegative: return "a non-negative "
        case .positive: return "a positive "
        }
    }

    func integer(_ key: String, bound: Bound) throws -> Int? {
        guard let entry = entries[key] else { return nil }
        return try integer(entry.value, named: key, bound: bound, at: location(entry))
    }

    func integerList(_ key: String, count: Int, bound: Bound) throws -> [Int]? {
        guard let entry = entries[key] else { return nil }
        guard case .sequence(let sequence) = entry.value else {
            throw HybridError("'\(key)' must be a list of \(count) integers, got \(describe(entry.value))",
                              at: location(entry))
        }
        guard sequence.count == count else {
            throw HybridError(
                "'\(key)' must be a list of \(count) integers, got \(sequence.count) "
                    + "\(sequence.count == 1 ? "entry" : "entries")",
                at: location(entry))
        }
        return try sequence.enumerated().map { index, item in
            try integer(item, named: "\(key)[\(index)]", bound: bound,
                        at: item.mark != nil ? location(item) : location(entry))
        }
    }

    func number(_ key: String) throws -> Double? {
        guard let entry = entries[key] else { return nil }
        let node = entry.value
        guard case .scalar(let scalar) = node, kind(scalar) == .int || kind(scalar) == .float,
              let value = Double.construct(from: scalar) ?? Int.construct(from: scalar).map(Double.init) else {
            throw HybridError("'\(key)' must be a number, got \(describe(node))", at: location(entry))
        }
        guard value.isFinite, value > 0 else {
            throw HybridError("'\(key)' must be a positive number, got \(scalar.string)", at: location(entry))
        }
        return value
    }

    func boolean(_ key: String) throws -> Bool? {
        guard let entry = entries[key] else { return nil }
        guard case .scalar(let scalar) = entry.value, kind(scalar) == .bool,
              let value = Bool.construct(from: scalar) else {
            throw HybridError("'\(key)' must be true or false, got \(describe(entry.value))", at: location(entry))
        }
        return value
    }

    /// A scalar's text; a null, list or mapping is refused with `expected` in the message.
    func text(_ entry: Entry, expected: String) throws -> String {
        guard case .scalar(let scalar) = entry.value, kind(scalar) != .null else {
            throw HybridError("'\(entry.key)' must be \(expected), got \(describe(entry.value))",
                              at: location(entry))
        }
        return scalar.string
    }

    // MARK: The spec

    mutating func read() throws -> ModelSpec {
        guard let root = try compose() else {
            throw HybridError("the model spec is empty; it needs at least a 'type' key", at: location(line: 1))
        }
        try collect(try specMapping(root))

        let typeNames = ModelType.allCases.map(\.rawValue).joined(separator: ", ")
        guard let typeEntry = entries["type"] else {
            throw HybridError("missing the required key 'type' (one of \(typeNames))", at: location(line: mappingLine))
        }
        let typeName = try text(typeEntry, expected: "one of \(typeNames)")
        guard let type = ModelType(rawValue: typeName) else {
            throw HybridError("unknown model type '\(typeName)'; known types: \(typeNames)", at: location(typeEntry))
        }

        var spec = ModelSpec(type: type, layout: [])
        if let value = try integer("inp_channels", bound: .positive) { spec.inpChannels = value }
        if let value = try integer("out_channels", bound: .positive) { spec.outChannels = value }
        if let value = try integer("dim", bound: .positive) { spec.dim = value }
        if let value = try integerList("num_blocks", count: 4, bound: .positive) { spec.numBlocks = value }
        if let value = try integer("num_refinement_blocks", bound: .nonNegative) { spec.numRefinementBlocks = value }
        if let value = try integerList("heads", count: 4, bound: .positive) { spec.heads = value }
        if let value = try number("ffn_expansion_factor") { spec.ffnExpansionFactor = value }
        if let value = try boolean("bias") { spec.bias = value }
        if let entry = entries["LayerNorm_type"] {
            let names = LayerNormType.allCases.map(\.rawValue).joined(separator: ", ")
            let name = try text(entry, expected: "one of \(names)")
            guard let value = LayerNormType(rawValue: name) else {
                throw HybridError("'LayerNorm_type' must be one of \(names), got '\(name)'", at: location(entry))
            }
            spec.layerNormType = value
        }
        if let value = try boolean("dual_pixel_task") { spec.dualPixelTask = value }
        if let value = try number("mlp_ratio") { spec.mlpRatio = value }
        if let value = try integerList("d_state", count: 8, bound: .positive) { spec.dState = value }

        switch type {
        case .restormer, .mambaIRUNet:
            let kind: BlockKind = type == .restormer ? .transformer : .ssm
            if let entry = entries["layout"] {
                warnings.append(
                    "\(location(entry)): warning: 'layout' is ignored for type \(type.rawValue) "
                        + "(every block is \(kind.rawValue)); use type HybridUNet for a per-position layout")
            }
            spec.layout = ModelSpecReader.uniformLayout(kind, for: spec)
        case .hybridUNet:
            guard let entry = entries["layout"] else {
                throw HybridError(
                    "'layout' is required for type HybridUNet: 8 groups of T/S letters separated by '/' "
                        + "(enc1/enc2/enc3/latent/dec3/dec2/dec1/refinement), "
                        + "e.g. SSSS/SSSSSS/TTTTTT/TTTTTTTT/TTTTTT/SSSSSS/SSSS/SSSS",
                    at: location(typeEntry))
            }
            let layoutText = try text(entry, expected: "a string of 8 groups of T/S letters separated by '/'")
            spec.layout = try ModelSpecReader.expandLayout(layoutText, for: spec, at: location(entry))
        }

        try check(spec)
        return spec
    }

    /// Checks that need the whole spec: the shapes every block at every stage must be buildable with.
    func check(_ spec: ModelSpec) throws {
        if spec.dim % 2 != 0 {
            throw HybridError(
                "'dim' must be even (each Downsample halves the channels before its pixel-unshuffle), got \(spec.dim)",
                at: location(firstOf: ["dim", "type"]))
        }
        let structureLocation = spec.type == .hybridUNet
            ? location(firstOf: ["layout", "dim", "type"]) : location(firstOf: ["dim", "type"])
        for stage in Stage.allCases {
            let kinds = Set(spec.layout[stage.rawValue])
            let channels = spec.channels(stage)
            if kinds.contains(.ssm) {
                if channels < 30 {
                    throw HybridError(
                        "an S block at \(stage.moduleName) needs at least 30 channels, but \(stage.moduleName) has "
                            + "\(channels): its channel attention squeezes C to C // 30 = \(channels / 30) channels",
                        at: structureLocation)
                }
                let expand = spec.ssmExpand(stage)
                if expand < 1 {
                    throw HybridError(
                        "the S blocks at \(stage.moduleName) would have SS2D width E = int(mlp_ratio * C) = "
                            + "int(\(Self.format(spec.mlpRatio)) * \(channels)) = \(expand); it must be at least 1",
                        at: location(firstOf: ["mlp_ratio", "dim", "type"]))
                }
            }
            if kinds.contains(.transformer) {
                let heads = spec.heads(stage)
                if channels % heads != 0 {
                    let index = Self.headsIndex(stage)
                    var headsLocation = location(firstOf: ["heads", "dim", "type"])
                    if let entry = entries["heads"], case .sequence(let sequence) = entry.value,
                       sequence.count == 4, sequence[index].mark != nil {
                        headsLocation = location(sequence[index])
                    }
                    throw HybridError(
                        "the T blocks at \(stage.moduleName) have \(channels) channels, not divisible by their "
                            + "\(heads) heads (heads[\(index)]): attention splits the channels evenly across heads",
                        at: headsLocation)
                }
                let hidden = spec.ffnHidden(stage)
                if hidden < 1 {
                    throw HybridError(
                        "the T blocks at \(stage.moduleName) would have GDFN hidden width int(C * ffn_expansion_factor) "
                            + "= int(\(channels) * \(Self.format(spec.ffnExpansionFactor))) = \(hidden); "
                            + "it must be at least 1",
                        at: location(firstOf: ["ffn_expansion_factor", "dim", "type"]))
                }
            }
        }
    }

    static func headsIndex(_ stage: Stage) -> Int {
        switch stage {
        case .encoder1, .decoder1, .refinement: return 0
        case .encoder2, .decoder2: return 1
        case .encoder3, .decoder3: return 2
        case .latent: return 3
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
