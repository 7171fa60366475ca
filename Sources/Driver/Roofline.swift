/// The roofline of a profile as SVG: log-log axes of arithmetic intensity (FLOP/byte) and GFLOP/s, the measured
/// compute roof (vector-FMA peak) and bandwidth roof (copy GB/s x intensity), and each kernel as a point coloured
/// by its kind and labelled with its index.
import Foundation

public enum Roofline {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                          "#bcbd22", "#7f7f7f", "#393b79", "#637939"]

    /// The kernel kind from its C name: `k12_fused_attention_gram` -> `fused_attention_gram`.
    public static func kind(_ name: String) -> String {
        guard name.hasPrefix("k"), let u = name.firstIndex(of: "_") else { return name }
        return String(name[name.index(after: u)...])
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    public static func svg(_ kernels: [ProfileKernel], peaks: ProfilePeaks, title: String) -> String {
        let (width, height) = (900.0, 600.0)
        let (left, right, top, bottom) = (80.0, 230.0, 50.0, 60.0)
        let shown = kernels.filter { $0.flops > 0 && $0.bytes > 0 && $0.totalMs > 0 && $0.gflops > 0 }
        let peakF = max(peaks.fmaGflops, 1e-3), peakB = max(peaks.copyGbps, 1e-3)
        let ridge = peakF / peakB
        // Axis ranges in decades, covering the points and the ridge.
        let xs = shown.map(\.intensity) + [ridge]
        let ys = shown.map(\.gflops) + [peakF]
        let x0 = floor(log10(max(1e-3, xs.min()! / 2))), x1 = ceil(log10(xs.max()! * 2))
        let y0 = floor(log10(max(1e-3, ys.min()! / 2))), y1 = ceil(log10(ys.max()! * 2))
        func px(_ x: Double) -> Double { left + (log10(x) - x0) / max(1e-9, x1 - x0) * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - (log10(y) - y0) / max(1e-9, y1 - y0) * (height - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="11">
        <title>Roofline of \(escape(title))</title>
        <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="white"/>
        <text x="\(f(left))" y="24" font-size="15">Roofline of \(escape(title)): \(String(format: "%.1f", peakF)) GFLOP/s FMA peak, \(String(format: "%.1f", peakB)) GB/s copy</text>

        """
        // Grid and axes.
        for e in stride(from: x0, through: x1, by: 1) {
            let x = px(pow(10, e))
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(height - bottom))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f(x))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\">\(String(format: "%g", pow(10, e)))</text>\n"
        }
        for e in stride(from: y0, through: y1, by: 1) {
            let y = py(pow(10, e))
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(width - right))\" y2=\"\(f(y))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(String(format: "%g", pow(10, e)))</text>\n"
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(width - left - right))\" height=\"\(f(height - top - bottom))\" fill=\"none\" stroke=\"black\"/>\n"
        s += "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(height - 16))\" text-anchor=\"middle\">arithmetic intensity (FLOP/byte, log)</text>\n"
        s += "<text transform=\"translate(22 \(f((top + height - bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">GFLOP/s (log)</text>\n"
        // Roofs: bandwidth up to the ridge, then compute.
        let xa = pow(10, x0), xb = pow(10, x1)
        let bwStart = max(xa, pow(10, y0) / peakB)
        s += "<polyline fill=\"none\" stroke=\"black\" stroke-width=\"2\" points=\"\(f(px(bwStart))),\(f(py(bwStart * peakB))) \(f(px(ridge))),\(f(py(peakF))) \(f(px(xb))),\(f(py(peakF)))\"/>\n"
        s += "<text x=\"\(f(px(xb) - 4))\" y=\"\(f(py(peakF) - 6))\" text-anchor=\"end\">compute roof \(String(format: "%.1f", peakF)) GFLOP/s</text>\n"
        s += "<text x=\"\(f(px(ridge) + 4))\" y=\"\(f(py(peakF) + 14))\">ridge \(String(format: "%.2f", ridge)) FLOP/byte</text>\n"
        let mid = sqrt(bwStart * ridge)
        s += "<text x=\"\(f(px(mid)))\" y=\"\(f(py(mid * peakB) - 8))\" text-anchor=\"end\">bandwidth roof \(String(format: "%.1f", peakB)) GB/s</text>\n"
        // Points, coloured by kind.
        var kinds: [String] = []
        for k in shown where !kinds.contains(kind(k.name)) { kinds.append(kind(k.name)) }
        for k in shown {
            let colour = palette[kinds.firstIndex(of: kind(k.name))! % palette.count]
            let (x, y) = (px(k.intensity), py(k.gflops))
            s += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"4\" fill=\"\(colour)\" fill-opacity=\"0.8\"><title>\(escape(k.name)) (\(escape(k.ops))): \(String(format: "%.2f", k.gflops)) GFLOP/s, \(String(format: "%.2f", k.intensity)) FLOP/byte, \(String(format: "%.3f", k.totalMs)) ms</title></circle>\n"
            s += "<text x=\"\(f(x + 5))\" y=\"\(f(y - 4))\" font-size=\"8\" fill=\"\(colour)\">\(k.index)</text>\n"
        }
        // Legend.
        var ly = top + 10
        s += "<text x=\"\(f(width - right + 14))\" y=\"\(f(ly))\" font-weight=\"bold\">kernel kind</text>\n"
        for (i, kind) in kinds.enumerated() {
            ly += 16
            s += "<circle cx=\"\(f(width - right + 20))\" cy=\"\(f(ly - 4))\" r=\"4\" fill=\"\(palette[i % palette.count])\"/>\n"
            s += "<text x=\"\(f(width - right + 30))\" y=\"\(f(ly))\">\(escape(kind))</text>\n"
        }
        let hidden = kernels.count - shown.count
        if hidden > 0 {
            s += "<text x=\"\(f(width - right + 14))\" y=\"\(f(ly + 22))\" font-size=\"9\">\(hidden) kernel\(hidden == 1 ? "" : "s") without FLOPs or time not drawn</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
