/// The blocking of `matmul {transpose_a}` (y (M, N) = Aᵀ·B for A (K, M), B (K, N): SS2D's x_proj of the four
/// directions as one GEMM writing token-major rows) on the GEMM micro-kernel (Codegen/ProjectionGemmKernel.swift).
///
/// The kernel runs the micro-kernel with the roles of its operands swapped against the convolutions: the register
/// tile is MR tokens (rows of y, broadcast from the packed activation A) × NR outputs (columns of y, vectors of the
/// weights B, prepacked at compile time as [N/NR][K][NR]), so that y is written token-major with vector stores.
/// Per item: a block of `tokens` tokens (GemmTiles.nc rounded down to a multiple of MR) and a group of NR-column
/// slices; per K block (K split into equal blocks of at most KC), the block's rows of A are copied as [kc][rowStride]
/// into the thread's scratch, then every slice of the group runs over every MR-token tile.
public enum ProjectionGemmTiles {
    /// Tokens per block (rows of y of one item): GemmTiles.nc rounded down to a multiple of MR, at least MR.
    public static func tokens(_ t: GemmTiles) -> Int { max(t.mr, t.nc / max(1, t.mr) * t.mr) }

    /// The depth of the K blocks for a GEMM of depth `k`: K split into equal blocks of at most KC.
    public static func depth(_ t: GemmTiles, k: Int) -> Int {
        let kb = (k + t.kc - 1) / max(1, t.kc)
        return kb > 0 ? (k + kb - 1) / kb : 1
    }

    /// Floats between two rows of the copied A block: the tokens rounded up to a whole number of vectors, one vector
    /// more when that is a multiple of 256 floats (rows a multiple of 1 KiB apart would crowd a few L1 sets).
    public static func rowStride(_ t: GemmTiles) -> Int {
        let vw = max(1, t.vectorWidth)
        let s = (tokens(t) + vw - 1) / vw * vw
        return s % 256 == 0 ? s + vw : s
    }

    /// Per-thread floats: the copied A block (depth rows of rowStride) and one B slice (depth × NR), which the kernel
    /// packs at run time when B is not a constant.
    public static func threadFloats(_ t: GemmTiles, k: Int) -> Int {
        let d = depth(t, k: k)
        return rowStride(t) * d + d * t.nr
    }
}
