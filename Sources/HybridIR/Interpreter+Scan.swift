/// The interpreter's selective scan: Mamba-1's `selective_scan_ref`, the plain sequential recurrence.
import Foundation

extension Interpreter {
    /// ARCHITECTURES.md section 3, real A:
    /// dt = softplus(delta + delta_bias); h_l = exp(dt·A)·h_{l-1} + dt·B_l·u_l; y_l = ⟨h_l, C_l⟩ + D·u_l; y·silu(z).
    static func selectiveScan(_ x: [Tensor], _ attributes: Attributes) throws -> Tensor {
        let roles = try ShapeRules.selectiveScanRoles(attributes)
        let softplusDelta = try attributes.bool("delta_softplus")
        func operand(_ role: String) -> Tensor? { roles.firstIndex(of: role).map { x[$0] } }
        let (u, delta, a, bm, cm) = (x[0], x[1], x[2], x[3], x[4])
        let dSkip = operand("D"), z = operand("z"), deltaBias = operand("delta_bias")
        let (batch, channels, length) = (u.shape[0], u.shape[1], u.shape[2])
        let n = a.shape[1]

        let readB = scanInputReader(bm, channels: channels, n: n, length: length)
        let readC = scanInputReader(cm, channels: channels, n: n, length: length)

        var out = [Float](repeating: 0, count: u.count)
        var h = [Double](repeating: 0, count: n)
        for b in 0..<batch {
            for d in 0..<channels {
                for s in 0..<n { h[s] = 0 }
                let row = (b * channels + d) * length
                for l in 0..<length {
                    var dt = Double(delta.data[row + l])
                    if let deltaBias { dt += Double(deltaBias.data[d]) }
                    if softplusDelta { dt = softplus(dt) }
                    let ul = Double(u.data[row + l])
                    var y = 0.0
                    for s in 0..<n {
                        let decay = Foundation.exp(dt * Double(a.data[d * n + s]))
                        h[s] = decay * h[s] + dt * readB(b, d, s, l) * ul
                        y += h[s] * readC(b, d, s, l)
                    }
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

    /// Element (batch b, channel d, state s, step l) of a scan's B or C, which come as (D, N) fixed,
    /// (batch, N, L) shared, or (batch, G, N, L) grouped by channel.
    static func scanInputReader(_ t: Tensor, channels: Int, n: Int, length: Int) -> (Int, Int, Int, Int) -> Double {
        if t.rank == 2 { return { _, d, s, _ in Double(t.data[d * n + s]) } }
        if t.rank == 3 { return { b, _, s, l in Double(t.data[(b * n + s) * length + l]) } }
        let groups = t.shape[1], perGroup = channels / groups
        return { b, d, s, l in Double(t.data[((b * groups + d / perGroup) * n + s) * length + l]) }
    }
}
