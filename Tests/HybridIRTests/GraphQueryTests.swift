/// Graph queries the passes share: who reads a value and which op defines it.
import XCTest
@testable import HybridIR

final class GraphQueryTests: XCTestCase {
    func testReadersCountOperandSlotsAndGraphOutputs() throws {
        let graph = try Parser.parse("""
        graph @g(%0: f32[1,4]) {
          %1 = softmax(%0) {axis = 1} : f32[1,4]
          %2 = add(%1, %1) : f32[1,4]
          %3 = add(%2, %0) : f32[1,4]
          return %3, %1
        }
        """)
        let readers = graph.readers()
        XCTAssertEqual(readers[0], [0, 2])
        // Both operand slots of the first add, then -1 for being a graph output.
        XCTAssertEqual(readers[1], [1, 1, -1])
        XCTAssertEqual(readers[2], [2])
        XCTAssertEqual(readers[3], [-1])
        // Counting only some ops: outputs still count.
        let some = graph.readers(including: { $0.kind == .softmax })
        XCTAssertEqual(some[0], [0])
        XCTAssertEqual(some[1], [-1])
        XCTAssertNil(some[2])
        XCTAssertEqual(graph.definers(), [1: 0, 2: 1, 3: 2])
    }
}
