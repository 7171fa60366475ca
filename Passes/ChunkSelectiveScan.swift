/// Cuts each selective scan into chunks (ARCHITECTURES.md 3.1) and picks, by a stated cost rule, whether the
/// chunks run one after another per channel ("recurrent") or in parallel joined by a carry pass ("carry").
///
/// Name: `chunk-selective-scan`. Requires: a typed graph of primitive ops (after `expand-blocks`, `infer-shapes`).
/// Produces: `chunked_selective_scan` in place of every `selective_scan`, same operands and result type, with
/// the attributes `chunk` (steps per chunk) and `form`; the context's `threads`, `vectorWidth` and `l1dBytes`
/// describe the target.
///
/// Algorithm:
///  1. For each `selective_scan` read batch·D (channels), L (length) and N (d_state) from its operand types.
///  2. Chunk T: the largest power of two in [16, 256] with T·(2N + 3)·4 bytes ≤ L1/2, i.e. one chunk of B and C
///     (2N·T floats) plus one channel's u, dt and y (3T floats) fill at most half of L1, so a tile of channels
///     reads the chunk of B and C from L1. The rule depends on N and the target only, never on L, so the same
///     graph built at different image sizes gets the same attributes.
///  3. Form: "recurrent" (parallel over channels, state in registers, chunks in order) when
///     batch·D ≥ 2 · threads · vectorWidth, i.e. every thread gets at least two vectors' worth of channels, or
///     when the sequence is a single chunk (L ≤ T, nothing to run in parallel); otherwise "carry" (local chunk
///     scans in parallel over (channel, chunk), a sequential pass over the L/T chunk carries, and a parallel
///     correction), which trades about twice the arithmetic for parallelism over the sequence.
///  4. Rewrite the op in place as `chunked_selective_scan` with `chunk` and `form` added; record how many scans
///     were chunked, how many got each form, and how many got each chunk size, and note for each scan its scope,
///     its form and the rule's numbers (channels against 2 · threads · vector width, length, chunk).
import HybridIR

public struct ChunkSelectiveScan: Pass {
    public static let name = "chunk-selective-scan"
    public static let summary = "cut each selective scan into cache-sized chunks; choose the recurrent or carry form"

    public init() {}

    /// Steps per chunk for d_state `n` and an L1 data cache of `l1Bytes` (step 2).
    public static func chunk(stateSize n: Int, l1Bytes: Int) -> Int {
        var t = 256
        while t > 16 && t * (2 * n + 3) * 4 > l1Bytes / 2 { t /= 2 }
        return t
    }

    /// The form for `channels` (batch · D) of `length` steps in chunks of `chunk` (step 3).
    public static func form(channels: Int, length: Int, chunk: Int, threads: Int, vectorWidth: Int) -> String {
        channels >= 2 * max(1, threads) * max(1, vectorWidth) || length <= chunk ? "recurrent" : "carry"
    }

    /// The cost rule's numbers behind `form` (step 3), for `--stats`: "recurrent: channels 96 >= 2*threads 2*vector 8 = 32".
    public static func formReason(channels: Int, length: Int, chunk: Int, threads: Int, vectorWidth: Int) -> String {
        let need = 2 * max(1, threads) * max(1, vectorWidth)
        let form = form(channels: channels, length: length, chunk: chunk, threads: threads, vectorWidth: vectorWidth)
        let rule = "channels \(channels) \(channels >= need ? ">=" : "<") 2*threads \(max(1, threads))*vector \(max(1, vectorWidth)) = \(need)"
        let chunks = (length + chunk - 1) / chunk
        return "\(form): \(rule); length \(length), chunk \(chunk), \(chunks) chunk\(chunks == 1 ? "" : "s")"
    }

    /// One `--stats` line: where the scan is (scope, else its result) and the form with its numbers.
    public static func formNote(_ op: Operation, _ reason: String) -> String {
        "scan form at \(op.scope.isEmpty ? "%\(op.result)" : op.scope) (%\(op.result)): \(reason)"
    }

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        let types = graph.valueTypes()
        var chunked = 0, recurrent = 0, carry = 0
        var chunkCounts: [Int: Int] = [:]
        for i in graph.ops.indices where graph.ops[i].kind == .selectiveScan {
            let op = graph.ops[i]
            guard op.operands.count >= 3, let u = types[op.operands[0]], let a = types[op.operands[2]],
                  u.rank == 3, a.rank == 2 else {
                throw HybridError("the selective scan has no operand types; run infer-shapes first", at: op.label)
            }
            let chunk = Self.chunk(stateSize: a.shape[1], l1Bytes: context.l1dBytes)
            let form = Self.form(channels: u.shape[0] * u.shape[1], length: u.shape[2], chunk: chunk,
                                 threads: context.threads, vectorWidth: context.vectorWidth)
            context.note(Self.formNote(op, Self.formReason(channels: u.shape[0] * u.shape[1], length: u.shape[2], chunk: chunk,
                                                           threads: context.threads, vectorWidth: context.vectorWidth)))
            graph.ops[i].kind = .chunkedSelectiveScan
            graph.ops[i].attributes["chunk"] = .int(chunk)
            graph.ops[i].attributes["form"] = .string(form)
            chunked += 1
            if form == "recurrent" { recurrent += 1 } else { carry += 1 }
            chunkCounts[chunk, default: 0] += 1
        }
        context.record("scans chunked", chunked)
        context.record("recurrent form", recurrent)
        context.record("carry form", carry)
        for chunk in chunkCounts.keys.sorted() { context.record("scans with chunk \(chunk)", chunkCounts[chunk]!) }
    }
}
