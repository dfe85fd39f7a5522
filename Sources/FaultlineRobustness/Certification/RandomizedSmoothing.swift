import FaultlineLinalg
import FaultlineNN
import FaultlineStatistics

/// Randomized smoothing (Cohen, Rosenfeld & Kolter 2019), PREDICT and CERTIFY exactly as the reference
/// `locuslab/smoothing/code/core.py`, for the smoothed classifier g(x) = argmax_c P(f(x + N(0, σ²I)) = c).
///
/// - CERTIFY: ĉ = the most frequent class over `selectionSamples` (n₀) noisy copies; n_A = the count of
///   ĉ over `estimationSamples` (n) fresh copies; p_A = the one-sided (1 − α) Clopper–Pearson lower
///   bound Beta⁻¹(α; n_A, n − n_A + 1). Abstain if p_A < ½, else return ĉ with certified L2 radius
///   σ·Φ⁻¹(p_A).
/// - PREDICT: the top two counts n₁ ≥ n₂ over n copies; abstain when the two-sided binomial test of n₁
///   successes in n₁ + n₂ trials at ½ has p-value > α.
///
/// Noise is added in input space without clipping (as the reference). Copies go through the model
/// `noiseBatch` at a time as one GEMM-sized batch. Every noise value is a Philox normal addressed by
/// (seed, sample index, phase, draw), so results are bit-for-bit reproducible for a seed and do not
/// depend on `noiseBatch`.
public struct RandomizedSmoothing: Sendable {
    /// σ of the Gaussian noise, in input units.
    public var sigma: Float
    /// α: the certificate fails with probability at most α.
    public var alpha: Double = 0.001
    /// n₀: noisy copies that choose the class.
    public var selectionSamples: Int = 100
    /// n: noisy copies that estimate its probability.
    public var estimationSamples: Int = 100_000
    /// Noisy copies per forward batch (results do not depend on it).
    public var noiseBatch: Int = 1000
    /// Seed of the noise (Philox keyed by seed, sample, phase, draw).
    public var seed: UInt64 = 0
    /// The index of the input's first row in a larger data set: row i's noise is keyed by
    /// `sampleOffset + i`, so rows a..<b certified with offset a (a shard of an `mpirun` job) get the
    /// certificates they get inside the whole set. Default 0.
    public var sampleOffset: Int = 0
    /// The GEMM backend (nil: the default).
    public var backend: Backend?

    /// The reference's settings (n₀ = 100, n = 100,000, α = 0.001).
    public init(sigma: Float, selectionSamples: Int = 100, estimationSamples: Int = 100_000, alpha: Double = 0.001) {
        self.sigma = sigma
        self.selectionSamples = selectionSamples
        self.estimationSamples = estimationSamples
        self.alpha = alpha
    }

    /// CERTIFY's answer for one row.
    public struct Certificate: Sendable, Codable, Equatable {
        /// The smoothed prediction (nil: abstain).
        public var prediction: Int?
        /// Certified L2 radius (0 when abstaining).
        public var radius: Double
        /// Lower confidence bound on the top-class probability.
        public var pALower: Double
        /// The class ĉ chosen by the selection samples (reported even when abstaining).
        public var selectedClass: Int
        /// Count of ĉ among the estimation samples.
        public var topCount: Int
    }

    /// The one-sided (1 − α) Clopper–Pearson lower bound on p from `successes` of `trials`
    /// (0 when there are no successes). Accurate to ~1e-12.
    public static func lowerConfidenceBound(successes: Int, trials: Int, alpha: Double) -> Double {
        successes == 0 ? 0 : Distributions.betaQuantile(alpha, Double(successes), Double(trials - successes + 1))
    }

    /// σ·Φ⁻¹(p_A): the certified L2 radius for a lower bound p_A > ½.
    public static func radius(sigma: Double, pALower: Double) -> Double { sigma * Distributions.normalQuantile(pALower) }

    func validate(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, needsSelection: Bool) throws {
        guard sigma.isFinite, sigma > 0 else { throw CertificationError.invalidParameter("σ = \(sigma) must be finite and > 0") }
        guard alpha > 0, alpha < 1 else { throw CertificationError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        guard estimationSamples >= 1, noiseBatch >= 1 else { throw CertificationError.invalidParameter("need n ≥ 1 and a noise batch ≥ 1") }
        if needsSelection {
            guard selectionSamples >= 1, selectionSamples < estimationSamples else {
                throw CertificationError.invalidParameter("need 1 ≤ n0 (\(selectionSamples)) < n (\(estimationSamples))")
            }
        }
        guard x.columns == model.inputFeatures else {
            throw CertificationError.invalidInput("x has \(x.columns) features, the model takes \(model.inputFeatures)")
        }
        guard x.isFinite else { throw CertificationError.invalidInput("x contains NaN or infinite values") }
    }

    /// CERTIFY for every row of `x`. Cost: (n₀ + n) forward passes per row. `progress(done, total)` counts rows.
    public func certify(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, progress: ((Int, Int) -> Void)? = nil) throws -> [Certificate] {
        try validate(model, x, needsSelection: true)
        let sampler = NoiseSampler(model: model, smoothing: self)
        var out: [Certificate] = []
        for i in 0..<x.rows {
            let selection = sampler.counts(x, row: i, phase: 0, samples: selectionSamples)
            let chosen = selection.indices.max { selection[$0] < selection[$1] || (selection[$0] == selection[$1] && $0 > $1) }!
            let counts = sampler.counts(x, row: i, phase: 1, samples: estimationSamples)
            let pA = Self.lowerConfidenceBound(successes: counts[chosen], trials: estimationSamples, alpha: alpha)
            out.append(pA < 0.5 ? Certificate(prediction: nil, radius: 0, pALower: pA, selectedClass: chosen, topCount: counts[chosen])
                                : Certificate(prediction: chosen, radius: Self.radius(sigma: Double(sigma), pALower: pA), pALower: pA,
                                              selectedClass: chosen, topCount: counts[chosen]))
            progress?(i + 1, x.rows)
        }
        return out
    }

    /// PREDICT for every row of `x` with `estimationSamples` copies (nil: abstain).
    public func predict(_ model: some DifferentiableClassifier, _ x: Matrix<Float>) throws -> [Int?] {
        try validate(model, x, needsSelection: false)
        let sampler = NoiseSampler(model: model, smoothing: self)
        return (0..<x.rows).map { i in
            let counts = sampler.counts(x, row: i, phase: 2, samples: estimationSamples)
            let order = counts.indices.sorted { counts[$0] > counts[$1] || (counts[$0] == counts[$1] && $0 < $1) }
            let (n1, n2) = (counts[order[0]], order.count > 1 ? counts[order[1]] : 0)
            return Distributions.binomialTestPValue(successes: n1, trials: n1 + n2) > alpha ? nil : order[0]
        }
    }

    /// Certified accuracy at each radius: the share of rows whose certificate predicts the true label
    /// with radius ≥ r (r = 0 counts every correct, non-abstaining certificate).
    public static func certifiedAccuracy(_ certificates: [Certificate], labels: [Int], radii: [Double]) -> [(radius: Double, accuracy: Double)] {
        radii.map { r in
            let hits = zip(certificates, labels).filter { $0.prediction == $1 && $0.radius >= r }.count
            return (r, Double(hits) / Double(max(labels.count, 1)))
        }
    }
}

/// Class histograms of the base classifier under Gaussian noise, one noise batch at a time.
final class NoiseSampler<Model: DifferentiableClassifier> {
    let model: Model
    let smoothing: RandomizedSmoothing
    let workspace: Model.Workspace
    let batch: AlignedBuffer<Float>

    init(model: Model, smoothing: RandomizedSmoothing) {
        self.model = model
        self.smoothing = smoothing
        let rows = min(smoothing.noiseBatch, max(smoothing.estimationSamples, smoothing.selectionSamples))
        workspace = model.makeWorkspace(capacity: rows)
        batch = AlignedBuffer(uninitializedCount: rows * model.inputFeatures)
    }

    /// Counts of argmax f(x_row + σ·z_j) over draws j < samples of (row, phase).
    func counts(_ x: Matrix<Float>, row: Int, phase: UInt64, samples: Int) -> [Int] {
        let d = model.inputFeatures, c = model.outputFeatures, sigma = smoothing.sigma
        var counts = [Int](repeating: 0, count: c)
        let stream = UInt64(truncatingIfNeeded: smoothing.sampleOffset &+ row) << 2 | phase, tier = Linalg.kernelTier(smoothing.backend)
        x.withUnsafeBufferPointer { px in
            let x0 = px.baseAddress! + row * d
            for first in stride(from: 0, to: samples, by: workspace.capacity) {
                let rows = min(workspace.capacity, samples - first)
                // Noise in blocks of 32 rows over both cores, each block turned into x + σz while cache-hot.
                let blocks = (rows + 31) / 32
                Linalg.parallelForEach(blocks) { b in
                    let lo = b * 32, hi = min(rows, lo + 32)
                    Philox.fillNormals(batch.pointer + lo * d, start: (first + lo) * d, count: (hi - lo) * d, seed: smoothing.seed, stream: stream, tier: tier)
                    for r in lo..<hi {
                        let p = batch.pointer + r * d
                        for j in 0..<d { p[j] = x0[j] + sigma * p[j] }
                    }
                }
                let z = model.logits(batch.pointer, rows: rows, workspace: workspace, context: ForwardContext(backend: smoothing.backend))
                for r in 0..<rows {
                    let logits = z.base + r * z.rowStride
                    var best = 0
                    for j in 1..<c where logits[j] > logits[best] { best = j }
                    counts[best] += 1
                }
            }
        }
        return counts
    }
}
