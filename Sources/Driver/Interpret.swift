/// `hybridc interpret`: runs the reference interpreter on an image, padding to a multiple of 8 and cropping back.
import Frontend
import HybridIR

public enum Interpret {
    /// Accepts (1,C,H,W) or (C,H,W) and returns the output with the same rank.
    public static func run(model: LoadedModel, image: Tensor, source: String) throws -> Tensor {
        let batched: Bool
        switch image.rank {
        case 4 where image.shape[0] == 1: batched = true
        case 3: batched = false
        default:
            throw HybridError("the image must have shape (1, C, H, W) or (C, H, W), got \(image.shape)", at: source)
        }
        let s = Array(image.shape.suffix(3))
        let expected = model.graph.inputs[0].type.shape[1]
        guard s[0] == expected else {
            throw HybridError("the image has \(s[0]) channels but the model takes \(expected)", at: source)
        }
        let lowered = try ModelLoader.lower(model.graph, weights: model.weights)
        let padded = reflectPad(Tensor(shape: [1] + s, data: image.data), toMultipleOf: 8)
        let result = try Interpreter.run(lowered, inputs: [padded], weights: model.weights)[0]
        let cropped = crop(result, height: s[1], width: s[2])
        return batched ? cropped : Tensor(shape: Array(cropped.shape.dropFirst()), data: cropped.data)
    }

    /// Pads the bottom and right edges by reflection (edge pixel not repeated) up to a multiple of `m`.
    public static func reflectPad(_ x: Tensor, toMultipleOf m: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ph, pw) = ((h + m - 1) / m * m, (w + m - 1) / m * m)
        if ph == h && pw == w { return x }
        var out = [Float](repeating: 0, count: n * c * ph * pw)
        for plane in 0..<n * c {
            for y in 0..<ph {
                let sy = reflect(y, h)
                for xx in 0..<pw {
                    out[(plane * ph + y) * pw + xx] = x.data[(plane * h + sy) * w + reflect(xx, w)]
                }
            }
        }
        return Tensor(shape: [n, c, ph, pw], data: out)
    }

    /// Index `i` of an axis of length `n` reflected back into range (period 2(n-1), like NumPy's 'reflect').
    public static func reflect(_ i: Int, _ n: Int) -> Int {
        guard n > 1 else { return 0 }
        let period = 2 * (n - 1)
        let r = i % period
        return r < n ? r : period - r
    }

    public static func crop(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if h == height && w == width { return x }
        var out = [Float](repeating: 0, count: n * c * height * width)
        for plane in 0..<n * c {
            for y in 0..<height {
                for xx in 0..<width { out[(plane * height + y) * width + xx] = x.data[(plane * h + y) * w + xx] }
            }
        }
        return Tensor(shape: [n, c, height, width], data: out)
    }
}
