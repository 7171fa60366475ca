/// Static types of graph values: an element type and a shape.
public enum ElementType: String, CaseIterable {
    case f32
    case f16

    public var byteSize: Int { self == .f32 ? 4 : 2 }
}

public struct TensorType: Equatable, CustomStringConvertible {
    public var elementType: ElementType
    public var shape: [Int]

    public init(_ elementType: ElementType = .f32, _ shape: [Int]) {
        self.elementType = elementType
        self.shape = shape
    }

    public var rank: Int { shape.count }
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteSize: Int { elementCount * elementType.byteSize }

    /// `f32[1,48,256,256]`, the form used in the text IR.
    public var description: String {
        "\(elementType.rawValue)[\(shape.map(String.init).joined(separator: ","))]"
    }
}
