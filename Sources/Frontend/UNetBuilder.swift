/// Builds the graph of a model spec: the U-Net glue as primitive ops, each block as one block op.
import HybridIR

public enum UNetBuilder {
    /// SS2D's channel-attention squeeze and CAB's compression (MambaIRUNet's values).
    public static let squeezeFactor = 30
    public static let compressRatio = 3

    /// The graph of `spec` for one image of `channels`×`height`×`width` (height and width multiples of 8).
    public static func build(_ spec: ModelSpec, height: Int, width: Int, name: String = "model") throws -> Graph {
        guard height > 0, width > 0, height % 8 == 0, width % 8 == 0 else {
            throw HybridError("the network needs height and width that are multiples of 8, got \(height)x\(width)")
        }
        if !spec.dualPixelTask && spec.inpChannels != spec.outChannels {
            throw HybridError("the global residual adds the input to the output, so out_channels (\(spec.outChannels)) must equal inp_channels (\(spec.inpChannels)) unless dual_pixel_task is set",
                              at: spec.source)
        }
        var b = Builder(name: name)
        let dim = spec.dim
        let image = b.input(TensorType(.f32, [1, spec.inpChannels, height, width]))

        func conv(_ x: ValueID, _ module: String, out: Int, kernel: Int, bias: Bool) throws -> ValueID {
            let cin = b.shape(of: x)[1]
            b.scope = module
            var operands = [x, try b.weight("\(module).weight", [out, cin, kernel, kernel])]
            if bias { operands.append(try b.weight("\(module).bias", [out])) }
            return try b.add(.conv2d, operands, ["groups": .int(1), "padding": .int(kernel / 2)])
        }
        func resample(_ x: ValueID, _ module: String, _ kind: OpKind) throws -> ValueID {
            let c = b.shape(of: x)[1]
            b.scope = module
            let out = kind == .downsample ? c / 2 : c * 2
            let w = try b.weight("\(module).body.0.weight", [out, c, 3, 3])
            return try b.add(kind, [x, w])
        }
        func stage(_ x: ValueID, _ stage: Stage) throws -> ValueID {
            var x = x
            for (i, kind) in spec.layout[stage.rawValue].enumerated() {
                let prefix = "\(stage.moduleName).\(i)"
                let c = spec.channels(stage)
                b.scope = prefix
                let attributes: Attributes
                let params: [BlockParameter]
                let opKind: OpKind
                switch kind {
                case .transformer:
                    opKind = .transformerBlock
                    attributes = ["heads": .int(spec.heads(stage)), "hidden": .int(spec.ffnHidden(stage)),
                                  "bias": .bool(spec.bias), "layer_norm": .string(spec.layerNormType.rawValue)]
                    params = BlockParameters.transformer(channels: c, heads: spec.heads(stage),
                                                         hidden: spec.ffnHidden(stage), bias: spec.bias,
                                                         biasFree: spec.layerNormType == .biasFree)
                case .ssm:
                    opKind = .ssmBlock
                    attributes = ["inner": .int(spec.ssmExpand(stage)), "d_state": .int(spec.dState(stage)),
                                  "dt_rank": .int(spec.dtRank(stage)), "compress_ratio": .int(compressRatio),
                                  "squeeze_factor": .int(squeezeFactor)]
                    params = BlockParameters.ssm(channels: c, inner: spec.ssmExpand(stage), dState: spec.dState(stage),
                                                 dtRank: spec.dtRank(stage), compressRatio: compressRatio,
                                                 squeezeFactor: squeezeFactor)
                }
                var operands = [x]
                for p in params { operands.append(try b.weight("\(prefix).\(p.key)", p.shape)) }
                x = try b.add(opKind, operands, attributes)
            }
            return x
        }

        let embedded = try conv(image, "patch_embed.proj", out: dim, kernel: 3, bias: false)
        let enc1 = try stage(embedded, .encoder1)
        let enc2 = try stage(try resample(enc1, "down1_2", .downsample), .encoder2)
        let enc3 = try stage(try resample(enc2, "down2_3", .downsample), .encoder3)
        let latent = try stage(try resample(enc3, "down3_4", .downsample), .latent)

        func merge(_ up: ValueID, _ skip: ValueID, _ module: String) throws -> ValueID {
            b.scope = module
            return try b.add(.concat, [up, skip], ["axis": .int(1)])
        }
        var x = try merge(try resample(latent, "up4_3", .upsample), enc3, "up4_3")
        x = try conv(x, "reduce_chan_level3", out: dim * 4, kernel: 1, bias: spec.bias)
        let dec3 = try stage(x, .decoder3)
        x = try merge(try resample(dec3, "up3_2", .upsample), enc2, "up3_2")
        x = try conv(x, "reduce_chan_level2", out: dim * 2, kernel: 1, bias: spec.bias)
        let dec2 = try stage(x, .decoder2)
        x = try merge(try resample(dec2, "up2_1", .upsample), enc1, "up2_1")
        let dec1 = try stage(x, .decoder1)
        var refined = try stage(dec1, .refinement)

        let output: ValueID
        if spec.dualPixelTask {
            let skip = try conv(embedded, "skip_conv", out: dim * 2, kernel: 1, bias: spec.bias)
            b.scope = "skip_conv"
            refined = try b.add(.add, [refined, skip])
            output = try conv(refined, "output", out: spec.outChannels, kernel: 3, bias: spec.bias)
        } else {
            let restored = try conv(refined, "output", out: spec.outChannels, kernel: 3, bias: spec.bias)
            b.scope = "output"
            output = try b.add(.add, [restored, image])
        }
        b.output(output)
        return b.graph
    }
}
