import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// `CorruptionAugmentation`: closed forms for the deterministic corruptions, the share of rows
/// corrupted, determinism per step, and refusals.
@Suite("corruption augmentation")
struct CorruptionAugmentationTests {
    static let model = try! ModelSpec.build("linear:64-10", seed: 0)
    static let x = try! BundledDatasets.digits().features.sliceRows(0..<200)
    static let shape = ImageShape(channels: 1, height: 8, width: 8)

    static func augmented(_ a: CorruptionAugmentation, step: UInt64 = 0) throws -> Matrix<Float> {
        var rows = x
        let labels = [Int](repeating: 0, count: x.rows)
        try rows.withUnsafeMutableBufferPointer { p in
            try labels.withUnsafeBufferPointer { l in
                try a.augment(model, rows: MutableMatrixPointer(p.baseAddress!, rows: x.rows, columns: 64), labels: l.baseAddress!, step: step, epoch: 0)
            }
        }
        return rows
    }

    /// Brightness on one channel adds its parameter (0.15 at severity 3) and clips; contrast at severity 1
    /// scales the distance to the image mean by 0.75 — on every row when the probability is 1.
    @Test func deterministicCorruptionsFollowTheirClosedForms() throws {
        let bright = try Self.augmented(try CorruptionAugmentation([.brightness], severities: [3], shape: Self.shape, probability: 1))
        for i in 0..<Self.x.rows {
            for j in 0..<64 { #expect(bright[i, j] == Float(min(max(Double(Self.x[i, j]) + 0.15, 0), 1)), "row \(i) feature \(j)") }
        }
        let contrast = try Self.augmented(try CorruptionAugmentation([.contrast], severities: [1], shape: Self.shape, probability: 1))
        for i in 0..<Self.x.rows {
            let mean = (0..<64).map { Double(Self.x[i, $0]) }.reduce(0, +) / 64
            for j in 0..<64 { #expect(abs(Double(contrast[i, j]) - min(max((Double(Self.x[i, j]) - mean) * 0.75 + mean, 0), 1)) < 1e-6) }
        }
    }

    @Test func shareOfRowsAndDeterminism() throws {
        let a = try CorruptionAugmentation(shape: Self.shape, probability: 0.3, seed: 4)
        let once = try Self.augmented(a, step: 7)
        let changed = (0..<Self.x.rows).filter { i in (0..<64).contains { once[i, $0] != Self.x[i, $0] } }.count
        #expect(abs(Double(changed) / Double(Self.x.rows) - 0.3) < 0.1, "\(changed) of \(Self.x.rows) rows corrupted")
        #expect(try Self.augmented(a, step: 7).elements == once.elements)
        #expect(try Self.augmented(a, step: 8).elements != once.elements)
        #expect(once.elements.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(try Self.augmented(try CorruptionAugmentation(shape: Self.shape, probability: 0)).elements == Self.x.elements)
    }

    @Test func refusals() throws {
        #expect(throws: AttackError.self) { try CorruptionAugmentation([], shape: Self.shape) }
        #expect(throws: AttackError.self) { try CorruptionAugmentation(severities: [0, 6], shape: Self.shape) }
        #expect(throws: AttackError.self) { try CorruptionAugmentation(shape: Self.shape, probability: 1.5) }
        #expect(throws: AttackError.self) { try Self.augmented(try CorruptionAugmentation(shape: ImageShape(channels: 1, height: 4, width: 4))) }
    }
}
