/// The model spec: the `network_g` mapping of a BasicSR options file, resolved to every key's value (ARCHITECTURES.md section 5).
import HybridIR

public enum ModelType: String, CaseIterable {
    case restormer = "Restormer"
    case mambaIRUNet = "MambaIRUNet"
    case hybridUNet = "HybridUNet"
}

/// The two block kinds a U-Net position can hold.
public enum BlockKind: Character, CaseIterable {
    case transformer = "T"
    case ssm = "S"
}

public enum LayerNormType: String, CaseIterable {
    case withBias = "WithBias"
    case biasFree = "BiasFree"
}

/// The eight block stages of the U-Net, in layout order.
public enum Stage: Int, CaseIterable {
    case encoder1, encoder2, encoder3, latent, decoder3, decoder2, decoder1, refinement

    /// The PyTorch module name of the stage (its weight-key prefix).
    public var moduleName: String {
        ["encoder_level1", "encoder_level2", "encoder_level3", "latent",
         "decoder_level3", "decoder_level2", "decoder_level1", "refinement"][rawValue]
    }

    /// The U-Net level (0 = full resolution) whose resolution the stage runs at.
    public var level: Int { [0, 1, 2, 3, 2, 1, 0, 0][rawValue] }
}

public struct ModelSpec: Equatable {
    public var type: ModelType
    public var inpChannels = 3
    public var outChannels = 3
    public var dim = 48
    public var numBlocks = [4, 6, 6, 8]
    public var numRefinementBlocks = 4
    public var heads = [1, 2, 4, 8]
    public var ffnExpansionFactor = 2.66
    public var bias = false
    public var layerNormType = LayerNormType.withBias
    public var dualPixelTask = false
    public var mlpRatio = 2.0
    public var dState = [4, 8, 16, 32, 16, 8, 8, 8]
    /// One entry per stage (8), one block kind per block; already expanded (a one-letter group fills its stage).
    public var layout: [[BlockKind]]
    /// The file the spec came from, for messages.
    public var source = ""

    public init(type: ModelType, layout: [[BlockKind]]) {
        self.type = type
        self.layout = layout
    }

    /// Blocks in each stage: encoder levels 1-3 and latent from num_blocks, decoders mirror, then refinement.
    public func blockCount(_ stage: Stage) -> Int {
        switch stage {
        case .encoder1, .decoder1: return numBlocks[0]
        case .encoder2, .decoder2: return numBlocks[1]
        case .encoder3, .decoder3: return numBlocks[2]
        case .latent: return numBlocks[3]
        case .refinement: return numRefinementBlocks
        }
    }

    /// Channels of a stage: dim·2^level on the encoder side; decoder level 1 and refinement work at 2·dim.
    public func channels(_ stage: Stage) -> Int {
        switch stage {
        case .encoder1: return dim
        case .encoder2, .decoder2: return dim * 2
        case .encoder3, .decoder3: return dim * 4
        case .latent: return dim * 8
        case .decoder1, .refinement: return dim * 2
        }
    }

    /// Attention heads of a T block at the stage (decoder level 1 and refinement use heads[0]).
    public func heads(_ stage: Stage) -> Int {
        switch stage {
        case .encoder1, .decoder1, .refinement: return heads[0]
        case .encoder2, .decoder2: return heads[1]
        case .encoder3, .decoder3: return heads[2]
        case .latent: return heads[3]
        }
    }

    /// GDFN hidden width: int(C * ffn_expansion_factor), truncating like Python's int().
    public func ffnHidden(_ stage: Stage) -> Int { Int(Double(channels(stage)) * ffnExpansionFactor) }

    /// SS2D inner width: int(mlp_ratio * C).
    public func ssmExpand(_ stage: Stage) -> Int { Int(mlpRatio * Double(channels(stage))) }

    public func dState(_ stage: Stage) -> Int { dState[stage.rawValue] }

    /// dt_rank = ceil(C / 16).
    public func dtRank(_ stage: Stage) -> Int { (channels(stage) + 15) / 16 }

    /// The layout in the spec's own notation, e.g. `SSSS/SSSSSS/TTTTTT/...`.
    public var layoutString: String {
        layout.map { String($0.map(\.rawValue)) }.joined(separator: "/")
    }
}
