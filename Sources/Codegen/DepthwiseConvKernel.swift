/// The C kernel of a depthwise 3x3 `conv2d` (groups = input = output channels, stride 1, padding 1): GDFN's and
/// SS2D's depthwise convs, with the fused activation.
///
/// Work items are tiles of TOY output rows of one plane (schedule tile "oy"), so the tile and its three-row
/// input window stay in L1 and any thread count gets many items. Each output row is computed in vectors along
/// the row: the interior columns [1, OW - 1) read the three input rows at offsets -1, 0, +1 with unaligned loads
/// (nine FMAs per vector, taps in row-major order from the bias; when the interior is not a whole number of
/// vectors, the last vector ends at column OW - 2 and overlaps the one before, storing the same values), and only
/// the two edge columns (and every column of rows narrower than a vector plus two) are computed one by one in the
/// same tap order with fmaf (the same rounding as the vector lanes). SiLU, sigmoid and ReLU are applied to a vector before it is stored (hc_vsilu, hc_vsigmoid; the
/// scalar columns use hc_siluf, hc_sigmoidf); GELU is applied to the finished row with hc_geluf.
import HybridIR

extension KernelEmitter {
    /// Whether `k` is a conv2d this kernel computes.
    static func isDepthwise3x3(_ k: Kernel) -> Bool {
        guard k.op.kind == .conv2d, let groups = try? k.op.attributes.int("groups"),
              (try? k.op.attributes.int("padding")) == 1, (try? k.op.attributes.int("stride", default: 1)) == 1 else {
            return false
        }
        let w = k.operands[1].shape.map(\.coefficient), x = k.operands[0].shape
        return w == [groups, 1, 3, 3] && x.count == 4 && x[1].coefficient == groups && k.result.shape[1].coefficient == groups
    }

    static func depthwiseConv3x3(_ k: Kernel) -> String {
        let act = (try? Epilogue.activation(k.op.attributes)) ?? nil
        let vector: (String) -> String = { v in
            switch act {
            case .silu?: return "hc_vsilu(\(v))"
            case .sigmoid?: return "hc_vsigmoid(\(v))"
            case .relu?: return "hc_vmax(\(v), hc_vzero())"
            default: return v
            }
        }
        let scalarActivation: String
        switch act {
        case .silu?: scalarActivation = "s = hc_siluf(s);"
        case .sigmoid?: scalarActivation = "s = hc_sigmoidf(s);"
        case .relu?: scalarActivation = "s = s > 0.0f ? s : 0.0f;"
        default: scalarActivation = ""
        }
        let gelu = act == .gelu ? "\n            for (long ox = 0; ox < OW; ox++) yr[ox] = hc_geluf(yr[ox]);" : ""
        let bias = k.operands.count == 3 ? "x2[c]" : "0.0f"
        let tile = max(1, k.schedule.tile("oy"))
        // One vector of output columns from column `ox`: the nine taps in row-major order from the bias.
        let body = { (ox: String) in
            [
                "hc_vf s = hc_vset1(bv);",
                "for (int ky = 0; ky < 3; ky++) {",
                "    if (!rows[ky]) continue;",
                "    const float *xr = rows[ky] + \(ox) - 1;",
                "    s = hc_vfma(wv[3 * ky], hc_vld(xr), s);",
                "    s = hc_vfma(wv[3 * ky + 1], hc_vld(xr + 1), s);",
                "    s = hc_vfma(wv[3 * ky + 2], hc_vld(xr + 2), s);",
                "}",
                "hc_vst(yr + \(ox), \(vector("s")));",
            ].joined(separator: "\n                ")
        }
        return """
            const long N = x0_d0, C = x0_d1, H = x0_d2, W = x0_d3, OH = y_d2, OW = y_d3, TOY = \(tile);
            const long ntiles = (OH + TOY - 1) / TOY;
            long b, e;
            (void)N;
            hc_split(N * C * ntiles, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long plane = item / ntiles, c = plane % C, oy0 = (item % ntiles) * TOY;
                const long oy1 = oy0 + TOY < OH ? oy0 + TOY : OH;
                const float *xp = x0 + plane * H * W, *wk = x1 + c * 9;
                const float bv = \(bias);
                hc_vf wv[9];
                for (int i = 0; i < 9; i++) wv[i] = hc_vset1(wk[i]);
                for (long oy = oy0; oy < oy1; oy++) {
                    float *yr = y + (plane * OH + oy) * OW;
                    /* The input rows oy - 1, oy, oy + 1; rows outside the image contribute nothing. */
                    const float *rows[3];
                    for (int ky = 0; ky < 3; ky++) {
                        const long iy = oy + ky - 1;
                        rows[ky] = iy >= 0 && iy < H ? xp + iy * W : 0;
                    }
                    /* Columns [1, OW - 1) in whole vectors; the last vector ends at column OW - 2, overlapping the
                       one before it (it stores the same values), when the interior is at least a vector wide. */
                    long ox = 1;
                    for (; ox + HC_VLEN <= OW - 1; ox += HC_VLEN) {
                        \(body("ox"))
                    }
                    if (ox < OW - 1 && OW - 2 >= HC_VLEN) {
                        const long ov = OW - 1 - HC_VLEN;
                        \(body("ov"))
                        ox = OW - 1;
                    }
                    /* Column 0, the columns left after the vectors (all of them for narrow rows), and column OW - 1, one at a time. */
                    for (long j = -1; j < OW - ox; j++) {
                        const long px = j < 0 ? 0 : ox + j;
                        float s = bv;
                        for (int ky = 0; ky < 3; ky++) {
                            if (!rows[ky]) continue;
                            for (int kx = 0; kx < 3; kx++) {
                                const long ix = px + kx - 1;
                                if (ix >= 0 && ix < W) s = fmaf(wk[3 * ky + kx], rows[ky][ix], s);
                            }
                        }
                        \(scalarActivation)
                        yr[px] = s;
                    }\(gelu)
                }
            }

        """
    }
}
