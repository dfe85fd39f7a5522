import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

/// BCTS against its stationarity conditions, a planted temperature and bias, and temperature scaling
/// (which it nests).
@Suite("bias-corrected temperature scaling")
struct BiasCorrectedTemperatureTests {
    /// Labels drawn from softmax(u); the observed logits are z = T·(u − b) (overconfident and biased).
    static func data(_ n: Int, temperature: Double, bias: [Double], seed: UInt64) -> (Matrix<Float>, [Int]) {
        var rng = Philox(seed: seed)
        var rows: [[Float]] = [], labels: [Int] = []
        for _ in 0..<n {
            let u = bias.indices.map { _ in 1.5 * rng.normal() }
            let m = u.max()!, e = u.map { Foundation.exp($0 - m) }, s = e.reduce(0, +)
            var r = rng.uniform() * s, y = 0
            while y < e.count - 1 && r > e[y] { r -= e[y]; y += 1 }
            labels.append(y)
            rows.append(zip(u, bias).map { Float(temperature * ($0 - $1)) })
        }
        return (try! Matrix(rows), labels)
    }

    @Test func recoversAPlantedTemperatureAndBias() throws {
        let bias = [0.4, -0.1, -0.3]
        let (z, y) = Self.data(20_000, temperature: 2.5, bias: bias, seed: 1)
        let fit = try BiasCorrectedTemperatureScaling(logits: z, labels: y)
        #expect(abs(fit.temperature - 2.5) <= 0.1, "\(fit.temperature)")
        for (b, truth) in zip(fit.bias, bias) { #expect(abs(b - truth) <= 0.06, "\(fit.bias)") }
        #expect(fit.nllAfter < fit.nllBefore)
        // It nests temperature scaling.
        let ts = try TemperatureScaling.fit(logits: z, labels: y)
        #expect(fit.nllAfter <= ts.nllAfter + 1e-9)
    }

    @Test(arguments: [40, 101, 501])
    func meanCalibratedProbabilityEqualsLabelFrequency(_ n: Int) throws {
        let (z, y) = Self.data(n, temperature: 0.7, bias: [0, 1, -1, 0.5], seed: UInt64(n))
        let fit = try BiasCorrectedTemperatureScaling(logits: z, labels: y)
        let p = try Linalg.softmaxRows(fit.apply(z).converted(to: Double.self))
        var gradientT = 0.0
        for c in 0..<4 {
            let mean = (0..<n).reduce(0.0) { $0 + p[$1, c] } / Double(n)
            let frequency = Double(y.filter { $0 == c }.count) / Double(n)
            // Stationarity in b (the 1e-9 ridge and float32 logits limit it).
            #expect(abs(mean - frequency) <= 1e-6, "n=\(n) class \(c): \(mean) vs \(frequency)")
            for i in 0..<n { gradientT += (p[i, c] - (y[i] == c ? 1 : 0)) * Double(z[i, c]) / Double(n) }
        }
        #expect(abs(gradientT) <= 1e-6, "n=\(n): ∂NLL/∂(1/T) = \(gradientT)")
        #expect(abs(fit.bias.reduce(0, +)) <= 1e-12)
    }

    /// One, two, three rows (classes missing, separable): a fit or a typed error, never a trap or NaN.
    @Test(arguments: [1, 2, 3])
    func tinyInputsDoNotTrap(_ n: Int) throws {
        let (z, y) = Self.data(n, temperature: 1, bias: [0, 0, 0], seed: 9)
        do {
            let fit = try BiasCorrectedTemperatureScaling(logits: z, labels: y)
            #expect(fit.temperature > 0 && fit.temperature.isFinite && fit.bias.allSatisfy(\.isFinite) && fit.nllAfter <= fit.nllBefore)
        } catch is ReliabilityError {}
    }

    @Test func badInputs() throws {
        #expect(throws: ReliabilityError.self) { try BiasCorrectedTemperatureScaling(logits: try Matrix<Float>([[0, .nan]]), labels: [0]) }
        #expect(throws: ReliabilityError.self) { try BiasCorrectedTemperatureScaling(logits: try Matrix<Float>([[0, 1]]), labels: [2]) }
        #expect(throws: ReliabilityError.self) { try BiasCorrectedTemperatureScaling(logits: Matrix<Float>(rows: 0, columns: 2), labels: []) }
        // Logits that rank the labels below chance.
        let z = try Matrix<Float>((0..<40).map { i in i % 2 == 0 ? [2, 0] : [0, 2] })
        let wrong = (0..<40).map { i in (i % 2 == 0 ? 1 : 0) + 0 * i }
        let noisy = wrong.enumerated().map { $0.offset % 5 == 0 ? 1 - $0.element : $0.element }
        #expect(throws: ReliabilityError.self) { try BiasCorrectedTemperatureScaling(logits: z, labels: noisy) }
    }
}
