/// Parses `CxHxW` image sizes given on the command line.
import HybridIR

public struct InputSize: Equatable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    public init(parsing text: String) throws {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 3, let c = parts[0], let h = parts[1], let w = parts[2], c > 0, h > 0, w > 0 else {
            throw HybridError("input size '\(text)' must be CxHxW with positive integers, e.g. 3x256x256")
        }
        self.init(channels: c, height: h, width: w)
    }

    public var description: String { "\(channels)x\(height)x\(width)" }

    /// Height and width rounded up to the next multiple of 8, as the network needs.
    public var padded: InputSize {
        InputSize(channels: channels, height: (height + 7) / 8 * 8, width: (width + 7) / 8 * 8)
    }
}
