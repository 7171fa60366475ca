/// Writes a kernel plan as C: `model.h` (the library API), `model.c` (kernels and the run sequence), the weights
/// blob, and `weights.S`, which links the blob into a program.
import Foundation
import HybridIR

public struct GeneratedModel {
    public var header: String
    public var source: String
    public var blob: [UInt8]
    public var assembly: String
}

public enum ModelEmitter {
    public static let blobMagic = "HCWB"
    public static let blobVersion: UInt32 = 1

    public static func emit(_ plan: KernelPlan, source: String) throws -> GeneratedModel {
        let blob = makeBlob(plan)
        let hash = blobHash(plan)
        return GeneratedModel(header: header(plan, source: source), source: try model(plan, source: source, hash: hash),
                              blob: blob, assembly: assembly)
    }

    /// FNV-1a over constant names, shapes and offsets: the blob and the code must come from the same compile.
    static func blobHash(_ plan: KernelPlan) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ s: String) { for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 } }
        for c in plan.constants { mix("\(c.name)|\(c.tensor.shape)|\(c.offset);") }
        mix("\(plan.blobBytes)")
        return h
    }

    static func makeBlob(_ plan: KernelPlan) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: plan.blobBytes)
        func put32(_ v: UInt32, at o: Int) { for i in 0..<4 { bytes[o + i] = UInt8((v >> (8 * UInt32(i))) & 0xff) } }
        func put64(_ v: UInt64, at o: Int) { for i in 0..<8 { bytes[o + i] = UInt8((v >> (8 * UInt64(i))) & 0xff) } }
        for (i, b) in blobMagic.utf8.enumerated() { bytes[i] = b }
        put32(blobVersion, at: 4)
        put64(blobHash(plan), at: 8)
        put64(UInt64(plan.blobBytes), at: 16)
        put64(UInt64(plan.constants.count), at: 24)
        for c in plan.constants {
            for (i, v) in c.tensor.data.enumerated() { put32(v.bitPattern, at: c.offset + 4 * i) }
        }
        return bytes
    }

    static let assembly = """
        /* The weights blob, linked into the program (the bytes of model.weights). */
            .section .rodata
            .balign 64
            .globl model_weights_blob
        model_weights_blob:
            .incbin "model.weights"
            .globl model_weights_blob_end
        model_weights_blob_end:
            .section .note.GNU-stack,"",%progbits

        """

    static func header(_ plan: KernelPlan, source: String) -> String {
        """
        /* model.h: the C API of the model compiled by hybridc from \(source).
         *
         * Usage: model_create() from the weights blob (in memory, e.g. model_weights_blob when weights.S is linked,
         * or model_create_from_file() to mmap model.weights), allocate model_workspace_size(ctx, H, W) bytes once,
         * then model_run() as often as needed. run() allocates nothing, creates no threads and does no I/O.
         * Images are planar float (C, H, W); any H x W up to the compiled maximum is accepted (reflect-padded to a
         * multiple of 8 inside and cropped back). All functions return HC_OK (0) or an HC_ERR_* code.
         */
        #ifndef HYBRIDC_MODEL_H
        #define HYBRIDC_MODEL_H
        #include <stddef.h>
        #include "hc_runtime.h"

        #define MODEL_IN_CHANNELS \(plan.imageMode ? plan.inputShape[1].coefficient : 0)
        #define MODEL_OUT_CHANNELS \(plan.imageMode ? plan.outputShape[1].coefficient : 0)
        #define MODEL_MAX_HEIGHT \(plan.imageMode ? plan.maxH8 * 8 : 0)
        #define MODEL_MAX_WIDTH \(plan.imageMode ? plan.maxW8 * 8 : 0)

        typedef struct model_ctx model_ctx;

        void   model_get_info(hc_model_info *info);
        int    model_create(const void *blob, size_t size, int nthreads, model_ctx **out);
        int    model_create_from_file(const char *path, int nthreads, model_ctx **out);
        size_t model_workspace_size(const model_ctx *ctx, int height, int width);
        int    model_run(model_ctx *ctx, const float *in, float *out, int height, int width, void *workspace);
        void   model_destroy(model_ctx *ctx);
        const char *model_error_message(int code);

        void   model_set_profiling(model_ctx *ctx, int on);
        int    model_kernel_count(void);
        const char *model_kernel_name(int i);
        const char *model_kernel_ops(int i);
        double model_kernel_seconds(const model_ctx *ctx, int i);
        long   model_kernel_calls(const model_ctx *ctx, int i);
        /* Profile model (KernelCostModel.swift): FLOPs and bytes moved by one call of kernel i at height x width,
         * the totals over the calls profiled so far, the kernel's IR scope, and a per-thread trace of pool runs
         * (events tagged with the kernel index; see hc_pool_set_trace). */
        const char *model_kernel_scope(int i);
        double model_kernel_flops(int i, int height, int width);
        double model_kernel_bytes(int i, int height, int width);
        double model_kernel_flop_total(const model_ctx *ctx, int i);
        double model_kernel_byte_total(const model_ctx *ctx, int i);
        void   model_set_trace(model_ctx *ctx, hc_trace_event *events, long capacity);
        long   model_trace_count(const model_ctx *ctx);

        extern const unsigned char model_weights_blob[];
        extern const unsigned char model_weights_blob_end[];

        #endif

        """
    }

    static func pointer(_ s: Storage) -> String {
        switch s {
        case .workspace(let off): return "ws + \(off)"
        case .workspaceView(let base, let shift): return "ws + \(base) + \(shift.c)"
        case .constant(let off): return "(const float *)(ctx->blob + \(off))"
        }
    }

    /// (C, H, W) view of a tensor for the copy-in and copy-out kernels: leading axes folded into C.
    static func planes(_ shape: SymbolicShape) -> (c: String, h: String, w: String) {
        let dims = shape.map(\.c)
        switch dims.count {
        case 0: return ("1", "1", "1")
        case 1: return ("1", "1", dims[0])
        default: return (dims.dropLast(2).isEmpty ? "1" : dims.dropLast(2).joined(separator: " * "), dims[dims.count - 2], dims[dims.count - 1])
        }
    }

    /// Emitted only when some kernel has several phases (an unused static function would fail -Werror).
    static let runPhases = """
        /* A kernel of several phases: each phase is one pool run, so every phase sees all of the previous one. */
        static void run_phases(model_ctx *ctx, int i, const hc_task_fn *fns, int n, void *args) {
            if (ctx->profiling) hc_pool_set_tag(ctx->pool, i);
            const double t0 = ctx->profiling ? hc_now() : 0.0;
            for (int p = 0; p < n; p++) hc_pool_run(ctx->pool, fns[p], args);
            if (ctx->profiling) {
                ctx->seconds[i] += hc_now() - t0;
                ctx->calls[i] += 1;
                profile_counts(ctx, i);
            }
        }


        """

    static func model(_ plan: KernelPlan, source: String, hash: UInt64) throws -> String {
        let nk = plan.kernels.count + 2
        var names = ["k0_copy_in"] + plan.kernels.map(\.name) + ["k\(nk - 1)_copy_out"]
        var ops = [plan.imageMode ? "reflect_pad" : "copy"] + plan.kernels.map { $0.ops.joined(separator: "+") }
            + [plan.imageMode ? "crop" : "copy"]
        names = names.map { "\"\($0)\"" }
        let scopes = ["\"\""] + plan.kernels.map { "\"\($0.op.scope.replacingOccurrences(of: "\\", with: "").replacingOccurrences(of: "\"", with: ""))\"" } + ["\"\""]
        let models = plan.kernels.map { KernelCostModel.polynomials($0, plan: plan) }
        let flopRows = [SizePolynomial.constant(0)] + models.map(\.flops) + [SizePolynomial.constant(0)]
        let byteRows = [KernelCostModel.copyBytes(plan.inputShape, plan: plan)] + models.map(\.bytes)
            + [KernelCostModel.copyBytes(plan.outputShape, plan: plan)]
        func table(_ rows: [SizePolynomial]) -> String {
            rows.map { "{" + $0.coefficients.map { "\($0)" }.joined(separator: ", ") + "}" }.joined(separator: ",\n    ")
        }
        ops = ops.map { "\"\($0)\"" }
        let inRank = plan.inputShape.count, outRank = plan.outputShape.count
        let maxShape = { (s: SymbolicShape) in s.map { String($0.value(h8: plan.maxH8, w8: plan.maxW8)) } }
        let pin = planes(plan.inputShape), pout = planes(plan.outputShape)

        var s = """
        /* model.c: generated by hybridc from \(source) for target \(plan.target.name).
         * \(plan.kernels.count) kernels, \(plan.constants.count) constants (\(plan.blobBytes) bytes of weights),
         * workspace \(plan.workspaceFloats * 4) bytes at the maximum size (largest live set \(plan.lowerBoundFloats * 4) bytes)
         * plus \(plan.scratchFloatsPerThread * 4) bytes of scratch per thread.
         * Every kernel splits fixed tiles of its output among the threads, so results do not depend on the thread count.
         */
        /* GCC (seen with 12.2, x86-64 and aarch64, -O2 and -O3): after induction-variable optimisation a store can
         * take the form MEM[(float *)0B + base + iv*4], whose base is the null pointer; the late pure/const and
         * mod/ref analyses then miss the store and may declare a kernel that only writes through such stores pure,
         * and a direct call to it is deleted as dead. Kernels are called through the thread pool, but identical
         * code folding turns a kernel that is the same text as another (the same op at the same shape in two
         * blocks) into a direct call to it, which then vanished: the fused attention's `mix` of every block but
         * the first of a level did nothing. Those two analyses buy nothing here (kernels are reached through
         * function pointers), so they are off for this file. */
        #if defined(__GNUC__) && !defined(__clang__)
        #pragma GCC optimize ("no-ipa-pure-const")
        #if __GNUC__ >= 11
        #pragma GCC optimize ("no-ipa-modref")
        #endif
        #endif
        #include <math.h>
        #include <stdint.h>
        #include <stdlib.h>
        #include <string.h>
        #include "hc_runtime.h"
        #include "hc_simd.h"
        #include "hc_math.h"
        #include "model.h"
        \(plan.kernels.contains { $0.openBLAS } ? "#include <cblas.h>\nvoid openblas_set_num_threads(int); /* --gemm openblas: one BLAS thread per pool thread */\n" : "")
        #define MODEL_IMAGE \(plan.imageMode ? 1 : 0)
        #define MODEL_MAX_H8 \(plan.maxH8)
        #define MODEL_MAX_W8 \(plan.maxW8)
        #define MODEL_WORKSPACE_FLOATS \(plan.workspaceFloats)L
        #define MODEL_SCRATCH_FLOATS \(plan.scratchFloatsPerThread)L
        #define MODEL_BLOB_BYTES \(plan.blobBytes)UL
        #define MODEL_BLOB_HASH 0x\(String(hash, radix: 16))ULL
        #define MODEL_KERNELS \(nk)

        /* Arguments of every kernel: operand pointers, the output, the image size in units of 8 pixels, and for
         * kernels that need one, per-thread scratch (thread tid owns scratch + tid * scratch_floats). */
        typedef struct { const float *in[\(max(1, plan.kernels.map { $0.operands.count }.max() ?? 1))]; float *out; long h8, w8; float *scratch; long scratch_floats; float *thread_scratch; } hc_kargs;

        /* Arguments of the copy-in / copy-out kernels: (C, H, W) planes, the source size and the destination size. */
        typedef struct { const float *src; float *dst; long c, h, w, dh, dw; } hc_copyargs;

        /* Index i of an axis of length n reflected into range (period 2(n-1), the edge pixel not repeated). */
        static long hc_reflect(long i, long n) {
            if (n <= 1) return 0;
            const long period = 2 * (n - 1), r = i % period;
            return r < n ? r : period - r;
        }

        /* k0: the input (c, h, w) into a (c, dh, dw) buffer, reflect-padding the bottom and right edges. */
        static void k0_copy_in(void *argp, int tid, int nt) {
            const hc_copyargs *a = (const hc_copyargs *)argp;
            long b, e;
            hc_split(a->c * a->dh, tid, nt, &b, &e);
            for (long row = b; row < e; row++) {
                const long c = row / a->dh, yy = row % a->dh;
                const float *src = a->src + (c * a->h + hc_reflect(yy, a->h)) * a->w;
                float *dst = a->dst + row * a->dw;
                memcpy(dst, src, (size_t)a->w * sizeof(float));
                for (long x = a->w; x < a->dw; x++) dst[x] = src[hc_reflect(x, a->w)];
            }
        }

        /* The last kernel: the top-left (c, dh, dw) of a (c, h, w) buffer into the output. */
        static void k\(nk - 1)_copy_out(void *argp, int tid, int nt) {
            const hc_copyargs *a = (const hc_copyargs *)argp;
            long b, e;
            hc_split(a->c * a->dh, tid, nt, &b, &e);
            for (long row = b; row < e; row++) {
                const long c = row / a->dh, yy = row % a->dh;
                memcpy(a->dst + row * a->dw, a->src + (c * a->h + yy) * a->w, (size_t)a->dw * sizeof(float));
            }
        }


        """
        for kernel in plan.kernels { s += try KernelEmitter.emit(kernel) + "\n" }

        s += """
        struct model_ctx {
            hc_pool *pool;
            const unsigned char *blob;
            const void *mapped;
            size_t mapped_size;
            int profiling;
            double seconds[MODEL_KERNELS];
            long calls[MODEL_KERNELS];
            double flops[MODEL_KERNELS], bytes[MODEL_KERNELS];
            long h8, w8; /* of the current run, for the profile's counts */
        };

        static const char *const kernel_scopes[MODEL_KERNELS] = {\(scopes.joined(separator: ", "))};
        /* FLOPs and bytes moved per call: sum over i, j < 3 of c[3i+j] * h8^i * w8^j (KernelCostModel.swift). */
        static const double kernel_flops[MODEL_KERNELS][9] = {
            \(table(flopRows))};
        static const double kernel_bytes[MODEL_KERNELS][9] = {
            \(table(byteRows))};

        static double size_poly(const double *c, long h8, long w8) {
            const double h = (double)h8, w = (double)w8;
            return (c[0] + c[1] * w + c[2] * w * w) + h * (c[3] + c[4] * w + c[5] * w * w) + h * h * (c[6] + c[7] * w + c[8] * w * w);
        }

        static void profile_counts(model_ctx *ctx, int i) {
            ctx->flops[i] += size_poly(kernel_flops[i], ctx->h8, ctx->w8);
            ctx->bytes[i] += size_poly(kernel_bytes[i], ctx->h8, ctx->w8);
        }

        static const char *const kernel_names[MODEL_KERNELS] = {\(names.joined(separator: ", "))};
        static const char *const kernel_ops[MODEL_KERNELS] = {\(ops.joined(separator: ", "))};

        void model_get_info(hc_model_info *info) {
            static const int in_shape[] = {\(maxShape(plan.inputShape).joined(separator: ", "))\(inRank == 0 ? "0" : "")};
            static const int out_shape[] = {\(maxShape(plan.outputShape).joined(separator: ", "))\(outRank == 0 ? "0" : "")};
            memset(info, 0, sizeof *info);
            info->image = MODEL_IMAGE;
            info->in_channels = MODEL_IN_CHANNELS;
            info->out_channels = MODEL_OUT_CHANNELS;
            info->max_height = MODEL_MAX_HEIGHT;
            info->max_width = MODEL_MAX_WIDTH;
            info->in_rank = \(inRank);
            info->out_rank = \(outRank);
            for (int i = 0; i < info->in_rank; i++) info->in_shape[i] = in_shape[i];
            for (int i = 0; i < info->out_rank; i++) info->out_shape[i] = out_shape[i];
            info->num_kernels = MODEL_KERNELS;
        }

        static uint64_t read_u64(const unsigned char *p) {
            uint64_t v = 0;
            for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
            return v;
        }

        int model_create(const void *blob, size_t size, int nthreads, model_ctx **out) {
            if (!out) return HC_ERR_ARGUMENT;
            *out = NULL;
            const unsigned char *b = (const unsigned char *)blob;
            if (!b || size < MODEL_BLOB_BYTES || ((uintptr_t)b % 4) != 0 || memcmp(b, "\(blobMagic)", 4) != 0
                || b[4] != \(blobVersion) || b[5] || b[6] || b[7]
                || read_u64(b + 8) != MODEL_BLOB_HASH || read_u64(b + 16) != MODEL_BLOB_BYTES)
                return HC_ERR_BLOB;
            if (nthreads < 1 || nthreads > 256) return HC_ERR_THREADS;
            model_ctx *ctx = (model_ctx *)calloc(1, sizeof *ctx);
            if (!ctx) return HC_ERR_MEMORY;
            if (hc_pool_create(&ctx->pool, nthreads) != 0) {
                free(ctx);
                return HC_ERR_THREADS;
            }
            ctx->blob = b;
            \(plan.kernels.contains { $0.openBLAS } ? "openblas_set_num_threads(1);\n    " : "")*out = ctx;
            return HC_OK;
        }

        int model_create_from_file(const char *path, int nthreads, model_ctx **out) {
            if (!out || !path) return HC_ERR_ARGUMENT;
            *out = NULL;
            const void *data = NULL;
            size_t size = 0;
            if (hc_map_file(path, &data, &size) != 0) return HC_ERR_IO;
            int rc = model_create(data, size, nthreads, out);
            if (rc != HC_OK) {
                hc_unmap_file(data, size);
                return rc;
            }
            (*out)->mapped = data;
            (*out)->mapped_size = size;
            return HC_OK;
        }

        void model_destroy(model_ctx *ctx) {
            if (!ctx) return;
            hc_pool_destroy(ctx->pool);
            if (ctx->mapped) hc_unmap_file(ctx->mapped, ctx->mapped_size);
            free(ctx);
        }

        const char *model_error_message(int code) { return hc_error_string(code); }

        size_t model_workspace_size(const model_ctx *ctx, int height, int width) {
        #if MODEL_IMAGE
            if (height < 1 || width < 1 || height > MODEL_MAX_HEIGHT || width > MODEL_MAX_WIDTH) return 0;
        #else
            if (height != \(pin.h) || width != \(pin.w)) return 0;
        #endif
            /* Offsets are planned at the maximum size; smaller images use the front of each slot. Per-thread scratch
             * follows the arena, one slot per pool thread (run's threads are the pool's: tid < nthreads of create);
             * without a context, enough for the most threads a context can have. */
            const long nthreads = ctx ? hc_pool_threads(ctx->pool) : HC_MAX_THREADS;
            return (size_t)(MODEL_WORKSPACE_FLOATS + nthreads * MODEL_SCRATCH_FLOATS) * sizeof(float);
        }

        void model_set_profiling(model_ctx *ctx, int on) { if (ctx) ctx->profiling = on; }
        int model_kernel_count(void) { return MODEL_KERNELS; }
        const char *model_kernel_name(int i) { return i >= 0 && i < MODEL_KERNELS ? kernel_names[i] : ""; }
        const char *model_kernel_ops(int i) { return i >= 0 && i < MODEL_KERNELS ? kernel_ops[i] : ""; }
        double model_kernel_seconds(const model_ctx *ctx, int i) { return ctx && i >= 0 && i < MODEL_KERNELS ? ctx->seconds[i] : 0.0; }
        long model_kernel_calls(const model_ctx *ctx, int i) { return ctx && i >= 0 && i < MODEL_KERNELS ? ctx->calls[i] : 0; }
        const char *model_kernel_scope(int i) { return i >= 0 && i < MODEL_KERNELS ? kernel_scopes[i] : ""; }
        double model_kernel_flops(int i, int height, int width) {
            return i >= 0 && i < MODEL_KERNELS ? size_poly(kernel_flops[i], MODEL_IMAGE ? (height + 7) / 8 : 0, MODEL_IMAGE ? (width + 7) / 8 : 0) : 0.0;
        }
        double model_kernel_bytes(int i, int height, int width) {
            return i >= 0 && i < MODEL_KERNELS ? size_poly(kernel_bytes[i], MODEL_IMAGE ? (height + 7) / 8 : 0, MODEL_IMAGE ? (width + 7) / 8 : 0) : 0.0;
        }
        double model_kernel_flop_total(const model_ctx *ctx, int i) { return ctx && i >= 0 && i < MODEL_KERNELS ? ctx->flops[i] : 0.0; }
        double model_kernel_byte_total(const model_ctx *ctx, int i) { return ctx && i >= 0 && i < MODEL_KERNELS ? ctx->bytes[i] : 0.0; }
        void model_set_trace(model_ctx *ctx, hc_trace_event *events, long capacity) { if (ctx) hc_pool_set_trace(ctx->pool, events, capacity); }
        long model_trace_count(const model_ctx *ctx) { return ctx ? hc_pool_trace_count(ctx->pool) : 0; }

        \(plan.kernels.contains { $0.phases > 1 } ? runPhases : "")static void run_kernel(model_ctx *ctx, int i, hc_task_fn fn, void *args) {
            if (ctx->profiling) {
                hc_pool_set_tag(ctx->pool, i);
                const double t0 = hc_now();
                hc_pool_run(ctx->pool, fn, args);
                ctx->seconds[i] += hc_now() - t0;
                ctx->calls[i] += 1;
                profile_counts(ctx, i);
            } else {
                hc_pool_run(ctx->pool, fn, args);
            }
        }

        int model_run(model_ctx *ctx, const float *in, float *out, int height, int width, void *workspace) {
            if (!ctx || !in || !out || !workspace) return HC_ERR_ARGUMENT;
        #if MODEL_IMAGE
            if (height < 1 || width < 1 || height > MODEL_MAX_HEIGHT || width > MODEL_MAX_WIDTH) return HC_ERR_SIZE;
            const long h8 = (height + 7) / 8, w8 = (width + 7) / 8;
        #else
            if (height != \(pin.h) || width != \(pin.w)) return HC_ERR_SIZE;
            const long h8 = 0, w8 = 0;
        #endif
            float *ws = (float *)workspace;
            ctx->h8 = h8;
            ctx->w8 = w8;
            hc_copyargs io = {in, ws + \(plan.inputOffset), \(pin.c), height, width, \(pin.h), \(pin.w)};
            run_kernel(ctx, 0, k0_copy_in, &io);
            hc_kargs a;

        """
        for kernel in plan.kernels {
            s += "    memset(&a, 0, sizeof a);\n"
            for (i, operand) in kernel.operands.enumerated() { s += "    a.in[\(i)] = \(pointer(operand.storage));\n" }
            s += "    a.out = \(pointer(kernel.result.storage).replacingOccurrences(of: "(const float *)", with: "(float *)"));\n"
            s += "    a.h8 = h8; a.w8 = w8;\n"
            if let scratch = kernel.scratch { s += "    a.scratch = ws + \(scratch);\n" }
            if kernel.scratchFloats > 0 {
                // Per-thread slots: always in thread_scratch (the GEMM micro-kernel's packing); also in scratch for a
                // kernel without a shared block (fused_feed_forward).
                s += "    a.thread_scratch = ws + MODEL_WORKSPACE_FLOATS; a.scratch_floats = MODEL_SCRATCH_FLOATS;\n"
                if kernel.scratch == nil { s += "    a.scratch = ws + MODEL_WORKSPACE_FLOATS;\n" }
            }
            if kernel.phases > 1 {
                s += "    {\n"
                s += "        static const hc_task_fn phases[\(kernel.phases)] = {\(kernel.functionNames.joined(separator: ", "))};\n"
                s += "        run_phases(ctx, \(kernel.index), phases, \(kernel.phases), &a);\n"
                s += "    }\n"
            } else {
                s += "    run_kernel(ctx, \(kernel.index), \(kernel.name), &a);\n"
            }
            // Debug builds (-DHC_POISON) fill every buffer with NaN after its last reader, so that a memory plan
            // that reuses a slot too early shows up as NaN in the output.
            let lastPhase = kernel.index == plan.kernels.count || plan.kernels[kernel.index].step != kernel.step
            let dead = lastPhase ? plan.buffers.filter { $0.last == kernel.step } : []
            if !dead.isEmpty {
                s += "#ifdef HC_POISON\n"
                for b in dead { s += "    memset(ws + \(b.offset), 0xff, (size_t)\(b.floats) * sizeof(float));\n" }
                s += "#endif\n"
            }
        }
        s += """
            hc_copyargs oa = {\(pointer(plan.outputStorage)), out, \(pout.c), \(pout.h), \(pout.w), height, width};
        #if !MODEL_IMAGE
            oa.dh = oa.h; oa.dw = oa.w;
        #endif
            run_kernel(ctx, MODEL_KERNELS - 1, k\(nk - 1)_copy_out, &oa);
            (void)h8; (void)w8; (void)a;
            return HC_OK;
        }

        """
        return s
    }
}
