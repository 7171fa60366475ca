/// The one error type of hybridc: a message a user can act on, with where it came from.
public struct HybridError: Error, CustomStringConvertible, Equatable {
    /// Where the problem is: a file (and line), an op, or a weight key. Empty when there is nothing to point at.
    public var location: String
    public var message: String

    public init(_ message: String, at location: String = "") {
        self.message = message
        self.location = location
    }

    public var description: String {
        location.isEmpty ? message : "\(location): \(message)"
    }
}
