/// The verifier names the op and says what is wrong with it.
import XCTest
@testable import HybridIR

final class VerifierTests: XCTestCase {
    func verifyError(_ text: String) -> String {
        do {
            try Verifier.verify(try Parser.parse(text))
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testShapeMismatchNamesTheOpAndItsScope() {
        let message = verifyError("""
        graph @g(%0: f32[1,4,8,8]) {
          %1 = weight {name = "w"} : f32[8,3,1,1]
          %2 = conv2d(%0, %1) {groups = 1, padding = 0} : f32[1,8,8,8] loc("encoder_level1.0.attn.qkv")
          return %2
        }
        """)
        XCTAssertTrue(message.contains("conv2d %2 (encoder_level1.0.attn.qkv)"), message)
        XCTAssertTrue(message.contains("must have 4 input channels per group"), message)
    }

    func testDeclaredTypeMustMatch() {
        let message = verifyError("""
        graph @g(%0: f32[2,3]) {
          %1 = transpose(%0) {perm = [1,0]} : f32[2,3]
          return %1
        }
        """)
        XCTAssertTrue(message.contains("declared type f32[2,3] does not match the inferred type f32[3,2]"), message)
    }

    func testMissingAttributeAndBadOperandCount() {
        XCTAssertTrue(verifyError("""
        graph @g(%0: f32[2,3]) {
          %1 = softmax(%0) : f32[2,3]
          return %1
        }
        """).contains("softmax %1: missing attribute 'axis'"))
        XCTAssertTrue(verifyError("""
        graph @g(%0: f32[2,3]) {
          %1 = add(%0) : f32[2,3]
          return %1
        }
        """).contains("add %1: expects 2 operands, got 1"))
    }

    func testTransformerBlockChecksHeadsAndWeights() {
        let message = verifyError("""
        graph @g(%0: f32[1,6,8,8]) {
          %1 = transformer_block(%0) {bias = false, heads = 4, hidden = 12, layer_norm = "WithBias"}
          return %1
        }
        """)
        XCTAssertTrue(message.contains("6 channels are not divisible by 4 heads"), message)
    }

    func testSelectiveScanChecksGroups() {
        let message = verifyError("""
        graph @g(%0: f32[1,6,5], %1: f32[1,6,5], %2: f32[6,2], %3: f32[1,4,2,5]) {
          %4 = selective_scan(%0, %1, %2, %3, %3) {delta_softplus = true, has_D = false, has_delta_bias = false, has_z = false} : f32[1,6,5]
          return %4
        }
        """)
        XCTAssertTrue(message.contains("B must be (6, 2), (1, 2, 5) or (1, G, 2, 5) with G dividing 6"), message)
    }

    func testBlockOpsCanBeForbidden() throws {
        let g = try Parser.parse("""
        graph @g(%0: f32[1,4,8,8], %1: f32[2,4,3,3]) {
          %2 = downsample(%0, %1) : f32[1,8,4,4]
          return %2
        }
        """)
        XCTAssertNoThrow(try Verifier.verify(g))
        XCTAssertThrowsError(try Verifier.verify(g, Verifier.Options(allowBlockOps: false))) { error in
            XCTAssertTrue("\(error)".contains("run expand-blocks"), "\(error)")
        }
    }
}
