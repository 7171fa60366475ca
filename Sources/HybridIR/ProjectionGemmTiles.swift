/// The blocking of `matmul {transpose_a}` (y (M, N) = Aᵀ·B for A (K, M), B (K, N): SS2D's x_proj of the four
/// directions as one GEMM writing token-major rows) on the GEMM micro-kernel (Codegen/ProjectionGemmKernel.swift).
///
/// The kernel runs the micro-kernel with the roles of its operands swapped against the convolutions: the register
/// tile is MR tokens (rows of y, broadcast from the packed activation A) × NR outputs (columns of y, vectors of the
/// weights B, prepacked at compile time as [N/NR][K][NR]), so that y is written token-major with vector stores.
/// Per item: a block of `tokens` tokens (GemmTiles.nc rounded down to a multiple of MR) and a group of NR-column
/// slices; per K block (K split into equal blocks of at most KC), the block's columns of A are packed as
/// [tokens/MR][kc][MR] into the thread's scratch, then every slice of the group runs over every MR-token tile.
public enum ProjectionGemmTiles {
    /// Tokens per block (rows of y of one item): GemmTiles.nc rounded down to a multiple of MR, at least MR.
    public static func tokens(_ t: GemmTiles) -> Int { max(t.mr, t.nc / max(1, t.mr) * t.mr) }

    /// The depth of the K blocks for a GEMM of depth `k`: K split into equal blocks of at most KC.
    public static func depth(_ t: GemmTiles, k: Int) -> Int {
        let kb = (k + t.kc - 1) / max(1, t.kc)
        return kb > 0 ? (k + kb - 1) / kb : 1
    }

    /// Per-thread floats: the packed A block (tokens × depth) and one B slice (depth × NR), which the kernel packs
    /// at run time when B is not a constant.
    public static func threadFloats(_ t: GemmTiles, k: Int) -> Int {
        let d = depth(t, k: k)
        return tokens(t) * d + d * t.nr
    }
}
