/// The interpreter's chunked selective scan: ARCHITECTURES.md 3.1, evaluated chunk by chunk from its own attributes.
import Foundation

extension Interpreter {
    /// `chunked_selective_scan`: the same operands as `selective_scan`, the sequence cut into chunks of `chunk` steps
    /// (the tail chunk is shorter; nothing is padded). Each channel runs `chunkedChannelScan`.
    static func chunkedSelectiveScan(_ x: [Tensor], _ attributes: Attributes) throws -> Tensor {
        let roles = try ShapeRules.selectiveScanRoles(attributes)
        let (chunk, form) = try ShapeRules.chunkedScanParameters(attributes)
        let softplusDelta = try attributes.bool("delta_softplus")
        func operand(_ role: String) -> Tensor? { roles.firstIndex(of: role).map { x[$0] } }
        let (u, delta, a, bm, cm) = (x[0], x[1], x[2], x[3], x[4])
        let dSkip = operand("D"), z = operand("z"), deltaBias = operand("delta_bias")
        let (batch, channels, length) = (u.shape[0], u.shape[1], u.shape[2])
        let n = a.shape[1]

        let readB = scanInputReader(bm, channels: channels, n: n, length: length)
        let readC = scanInputReader(cm, channels: channels, n: n, length: length)

        var out = [Float](repeating: 0, count: u.count)
        for b in 0..<batch {
            for d in 0..<channels {
                let row = (b * channels + d) * length
                chunkedChannelScan(length: length, chunk: chunk, form: form, a: (0..<n).map { Double(a.data[d * n + $0]) },
                                   dt: { l in
                                       var v = Double(delta.data[row + l])
                                       if let deltaBias { v += Double(deltaBias.data[d]) }
                                       return softplusDelta ? softplus(v) : v
                                   },
                                   u: { Double(u.data[row + $0]) },
                                   b: { s, l in readB(b, d, s, l) }, c: { s, l in readC(b, d, s, l) }) { l, y in
                    // The D skip, then the z gate.
                    let ul = Double(u.data[row + l])
                    var y = y
                    if let dSkip { y += ul * Double(dSkip.data[d]) }
                    if let z {
                        let zv = Double(z.data[row + l])
                        y *= zv / (1 + Foundation.exp(-zv))
                    }
                    out[row + l] = Float(y)
                }
            }
        }
        return Tensor(shape: u.shape, data: out)
    }

    /// One channel's scan over `length` steps in chunks of `chunk` steps, in fp64: with the step's dt(l), u(l),
    /// B(s, l) and C(s, l) and the channel's row of A, calls `emit(l, ⟨h_l, C_l⟩)` once per step (in order for the
    /// recurrent form, chunk by chunk in phase 3 for the carry form).
    ///
    /// - "recurrent": each chunk runs its steps sequentially from the state the previous chunk left.
    /// - "carry": (1) every chunk scans from a zero state, giving its local states hl_t, and S_t = Σ_{s≤t} dt_s·A
    ///   within the chunk (so the cumulative decay P_t = exp(S_t) has an exponent ≤ 0 when dt ≥ 0);
    ///   (2) the chunk-boundary recurrence H_c = P_{T−1}·H_{c−1} + hl_{T−1}, H_{−1} = 0;
    ///   (3) y_t = ⟨hl_t + P_t·H_{c−1}, C_t⟩. Step 3 recomputes hl_t and S_t rather than storing them, as the C
    ///   kernels do.
    static func chunkedChannelScan(length: Int, chunk: Int, form: String, a aRow: [Double],
                                   dt: (Int) -> Double, u: (Int) -> Double,
                                   b readB: (Int, Int) -> Double, c readC: (Int, Int) -> Double,
                                   emit: (Int, Double) -> Void) {
        let n = aRow.count
        let chunks = (length + chunk - 1) / chunk
        /// Runs the steps of chunk c from state `h`, updating `h` and the cumulative exponent `s`;
        /// `visit(l, h, sum)` is called after each step.
        func scanChunk(_ c: Int, _ h: inout [Double], _ sum: inout [Double],
                       visit: (Int, [Double], [Double]) -> Void) {
            for l in (c * chunk)..<min((c + 1) * chunk, length) {
                let dtl = dt(l), ul = u(l)
                for s in 0..<n {
                    sum[s] += dtl * aRow[s]
                    h[s] = Foundation.exp(dtl * aRow[s]) * h[s] + dtl * readB(s, l) * ul
                }
                visit(l, h, sum)
            }
        }

        switch form {
        case "recurrent":
            var h = [Double](repeating: 0, count: n), sum = h
            for c in 0..<chunks {
                scanChunk(c, &h, &sum) { l, h, _ in
                    var y = 0.0
                    for s in 0..<n { y += h[s] * readC(s, l) }
                    emit(l, y)
                }
            }
        default:
            // 1. Local chunk scans from zero: the last local state and the exponent sum of each chunk.
            var lastState = [[Double]](), lastSum = [[Double]]()
            for c in 0..<chunks {
                var h = [Double](repeating: 0, count: n), sum = h
                scanChunk(c, &h, &sum) { _, _, _ in }
                lastState.append(h)
                lastSum.append(sum)
            }
            // 2. The carries: carryIn[c] = H_{c−1}.
            var carry = [Double](repeating: 0, count: n)
            var carryIn = [[Double]]()
            for c in 0..<chunks {
                carryIn.append(carry)
                for s in 0..<n { carry[s] = Foundation.exp(lastSum[c][s]) * carry[s] + lastState[c][s] }
            }
            // 3. Outputs: the local state plus the decayed carry, read out through C.
            for c in 0..<chunks {
                var h = [Double](repeating: 0, count: n), sum = h
                scanChunk(c, &h, &sum) { l, h, sum in
                    var y = 0.0
                    for s in 0..<n { y += (h[s] + Foundation.exp(sum[s]) * carryIn[c][s]) * readC(s, l) }
                    emit(l, y)
                }
            }
        }
    }
}
