/// `hybridc check`: parameter count, GMAC and GFLOP of a model at an input size, overall and per stage.
import Frontend
import HybridIR

public struct CheckReport {
    public struct Row: Equatable {
        public var stage: String
        public var channels: String
        public var resolution: String
        public var layout: String
        public var parameters: Int
        public var cost: Cost
    }

    public var parameters: Int
    public var cost: Cost
    public var rows: [Row]
    public var input: InputSize
    public var title: String

    /// Counts on the lowered graph, so that every number comes from the same ops the interpreter runs.
    public init(model: LoadedModel, source: String) throws {
        let lowered = try ModelLoader.lower(model.graph, weights: model.weights)
        input = model.input.padded
        var order: [String] = []
        var params: [String: Int] = [:]
        var costs: [String: Cost] = [:]
        var outputType: [String: TensorType] = [:]
        var inputType: [String: TensorType] = [:]
        let types = lowered.valueTypes()
        func root(_ scope: String) -> String {
            let r = String(scope.split(separator: ".").first ?? "")
            if !order.contains(r) { order.append(r) }
            return r
        }
        var seenWeights = Set<String>()
        for op in lowered.ops where op.kind == .weight {
            let name = try op.attributes.string("name")
            guard seenWeights.insert(name).inserted, let t = op.type else { continue }
            params[root(name), default: 0] += t.elementCount
        }
        for (op, c) in Cost.perOp(lowered) {
            let r = root(op.scope)
            costs[r, default: Cost()] += c
            outputType[r] = op.type
            if inputType[r] == nil, let first = op.operands.first { inputType[r] = types[first] }
        }
        parameters = params.values.reduce(0, +)
        cost = costs.values.reduce(Cost(), +)
        let stages = Dictionary(uniqueKeysWithValues: Stage.allCases.map { ($0.moduleName, $0) })
        rows = order.map { name in
            let out = outputType[name]?.shape ?? []
            let inChannels = inputType[name]?.shape.count == 4 ? inputType[name]!.shape[1] : 0
            var channels = out.count == 4 ? "\(out[1])" : "-"
            if out.count == 4, inChannels != out[1], stages[name] == nil { channels = "\(inChannels)→\(out[1])" }
            var layout = "-"
            if let stage = stages[name], let spec = model.spec {
                layout = String(spec.layout[stage.rawValue].map(\.rawValue))
            }
            return Row(stage: name, channels: channels,
                       resolution: out.count == 4 ? "\(out[2])x\(out[3])" : "-",
                       layout: layout.isEmpty ? "(none)" : layout,
                       parameters: params[name] ?? 0, cost: costs[name] ?? Cost())
        }
        title = source
        if let spec = model.spec {
            title += " (\(spec.type.rawValue), dim \(spec.dim), LayerNorm \(spec.layerNormType.rawValue), bias \(spec.bias))"
            if spec.type == .hybridUNet { title += "\nlayout: \(spec.layoutString)" }
        }
    }

    public var text: String {
        var out = "model: \(title)\n"
        out += "input: \(input)\n"
        out += "parameters: \(CheckReport.grouped(parameters))\n"
        out += "GMAC: \(CheckReport.giga(cost.macs))\n"
        out += "GFLOP: \(CheckReport.giga(cost.flops)) (2 x MAC + \(CheckReport.giga(cost.elementwiseFlops)) elementwise)\n\n"
        let header = ["stage", "channels", "resolution", "blocks", "params", "GMAC"]
        var table = [header]
        for r in rows {
            table.append([r.stage, r.channels, r.resolution, r.layout, CheckReport.grouped(r.parameters),
                          CheckReport.giga(r.cost.macs)])
        }
        table.append(["total", "", "", "", CheckReport.grouped(parameters), CheckReport.giga(cost.macs)])
        let widths = (0..<header.count).map { c in table.map { $0[c].count }.max() ?? 0 }
        for (i, row) in table.enumerated() {
            let cells = row.enumerated().map { c, cell -> String in
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return c >= 4 ? pad + cell : cell + pad
            }
            out += cells.joined(separator: "  ").trimmingTrailingSpaces() + "\n"
            if i == 0 || i == table.count - 2 {
                out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
            }
        }
        return out
    }

    /// 26126644 → "26,126,644".
    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// Billions with two decimals.
    public static func giga(_ n: Int) -> String {
        let hundredths = (Double(n) / 1e7).rounded()
        let whole = Int(hundredths) / 100, frac = Int(hundredths) % 100
        return "\(whole).\(frac < 10 ? "0" : "")\(frac)"
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
