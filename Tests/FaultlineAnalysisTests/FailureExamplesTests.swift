import FaultlineAnalysis
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import _TestSupport

/// The failing examples of the report: which rows are chosen (against a brute-force reference on
/// constructed probabilities), how inputs become tiles or feature tables, and how the report carries
/// and renders them.
@Suite("FailureExamples", .serialized)
struct FailureExamplesTests {
    /// Probabilities over 3 classes with the top class `predicted[i]` at `confidence[i]`, the rest split evenly.
    static func probabilities(_ predicted: [Int], _ confidence: [Float]) throws -> Matrix<Float> {
        try Matrix(predicted.indices.map { i in (0..<3).map { $0 == predicted[i] ? confidence[i] : (1 - confidence[i]) / 2 } })
    }

    /// A deterministic pseudo-random sequence (LCG), so the families below are reproducible.
    struct LCG {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % n
        }
    }

    /// The reference: rows where `keep`, sorted by key descending then index ascending, first `limit`.
    static func reference(_ n: Int, keep: (Int) -> Bool, key: (Int) -> Double, limit: Int) -> [Int] {
        var rows = (0..<n).filter(keep)
        // Insertion sort by (−key, index): a different algorithm from the library's.
        for a in 1..<max(rows.count, 1) {
            var b = a
            while b > 0 && (key(rows[b]) > key(rows[b - 1]) || (key(rows[b]) == key(rows[b - 1]) && rows[b] < rows[b - 1])) {
                rows.swapAt(b, b - 1)
                b -= 1
            }
        }
        return Array(rows.prefix(limit))
    }

    /// Confident errors and flipped rows: for sizes 0…40 with tied confidences (values from a set of five),
    /// the chosen rows are the reference's, `candidates` counts every qualifying row, fewer rows than tiles
    /// give fewer tiles, and the flipped rows carry their adversarial prediction and ‖δ‖∞.
    @Test func testGroupsMatchABruteForceReference() throws {
        var rng = LCG(state: 11)
        let levels: [Float] = [0.5, 0.91, 0.95, 0.95, 0.99]
        for n in [0, 1, 2, 3, 7, 9, 17, 40] {
            let labels = (0..<n).map { _ in rng.next(3) }
            let predicted = (0..<n).map { i in rng.next(2) == 0 ? labels[i] : (labels[i] + 1) % 3 }
            let confidence = (0..<n).map { _ in levels[rng.next(levels.count)] }
            let flipped = (0..<n).map { _ in rng.next(3) == 0 }
            let p = try n == 0 ? Matrix<Float>(rows: 0, columns: 3) : Self.probabilities(predicted, confidence)
            let correct = (0..<n).map { predicted[$0] == labels[$0] }
            let attribution = FailureAttribution(correct: correct, confidence: confidence.map(Double.init), oodScore: [Float](repeating: 0, count: n),
                                                 oodThreshold: 1, confident: 0.9, flipped: flipped, epsilon: 0.1, attack: "PGD")
            let x = Matrix<Float>(rows: n, columns: 4, repeating: 0.5)
            let adversarial = x.map { $0 + 0.1 }
            let flippedTo = try n == 0 ? nil : Self.probabilities(predicted.map { ($0 + 2) % 3 }, [Float](repeating: 0.7, count: n))
            let e = FailureExamples(test: x, labels: labels, probabilities: p, attribution: attribution,
                                    adversarial: flippedTo.map { (adversarial, $0) },
                                    shifted: [], train: x, image: nil, limit: 8)
            let confident = try #require(e.groups(.confidentError).first)
            let expected = Self.reference(n, keep: { !correct[$0] && confidence[$0] >= 0.9 }, key: { Double(confidence[$0]) }, limit: 8)
            #expect(confident.examples.map(\.row) == expected, "n = \(n)")
            #expect(confident.candidates == (0..<n).filter { !correct[$0] && confidence[$0] >= 0.9 }.count)
            #expect(confident.examples.allSatisfy { $0.predicted == predicted[$0.row] && $0.label == labels[$0.row] && $0.confidence == Double(confidence[$0.row]) })
            let fragile = try #require(e.groups(.flipped).first)
            #expect(fragile.examples.map(\.row) == Self.reference(n, keep: { correct[$0] && flipped[$0] }, key: { Double(confidence[$0]) }, limit: 8))
            for f in fragile.examples {
                #expect(f.adversarialPredicted == (predicted[f.row] + 2) % 3 && abs((f.perturbationNorm ?? 0) - 0.1) < 1e-6)
                #expect(f.pixels == nil && f.features?.count == 4)
            }
        }
    }

    /// Ties are broken by the lower row, NaN keys go last, and a limit of 0 or above the count is honoured.
    @Test func rankingIsDeterministic() {
        let keys: [Double] = [0.5, .nan, 0.9, 0.9, 0.1, 0.9]
        #expect(FailureExamples.ranked(Array(0..<6), by: { keys[$0] }, limit: 10) == [2, 3, 5, 0, 4, 1])
        #expect(FailureExamples.ranked(Array(0..<6), by: { keys[$0] }, limit: 2) == [2, 3])
        #expect(FailureExamples.ranked([5, 3, 2], by: { keys[$0] }, limit: 8) == [2, 3, 5])
        #expect(FailureExamples.ranked(Array(0..<6), by: { keys[$0] }, limit: 0).isEmpty)
        #expect(FailureExamples.ranked([], by: { _ in 0 }, limit: 8).isEmpty)
    }

    /// Shifted sets: the most-OOD group is every row by score (ties by row), the silent group the wrong rows
    /// at or below the threshold by confidence; an unlabelled set has no silent group.
    @Test func shiftedGroupsFollowTheScoreAndTheThreshold() throws {
        let labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]
        let predicted = [1, 1, 0, 0, 2, 2, 1, 1, 0, 2, 0]
        let confidence: [Float] = [0.99, 0.8, 0.95, 0.6, 0.95, 0.7, 0.4, 0.9, 0.99, 0.5, 0.95]
        let scores: [Float] = [3, 9, 1, 9, 0.5, 2, 2, 7, 2, 1, 2]
        let p = try Self.probabilities(predicted, confidence)
        let x = Matrix<Float>(rows: 11, columns: 5, repeating: 0.25)
        let attribution = FailureAttribution(correct: [true], confidence: [0.9], oodScore: [0], oodThreshold: 2, confident: 0.9,
                                             flipped: [false], epsilon: 0.1, attack: "PGD")
        let e = FailureExamples(test: Matrix(rows: 1, columns: 5), labels: [0], probabilities: try Self.probabilities([0], [0.9]),
                                attribution: attribution, adversarial: nil,
                                shifted: [.init(name: "noisy", features: x, labels: labels, probabilities: p, oodScores: scores),
                                          .init(name: "unlabelled", features: x, labels: nil, probabilities: p, oodScores: scores)],
                                train: x, image: nil)
        let ood = e.groups(.mostOutOfDistribution)
        #expect(ood.map(\.set) == ["noisy", "unlabelled"])
        #expect(ood[0].examples.map(\.row) == [1, 3, 7, 0, 5, 6, 8, 10])
        #expect(ood[0].examples.map(\.score) == [9, 9, 7, 3, 2, 2, 2, 2])
        let silent = e.groups(.silentUnderShift)
        #expect(silent.map(\.set) == ["noisy"])
        // Wrong: rows 0, 2, 4, 6, 8, 9, 10; at or below the threshold 2: 2, 4, 6, 8, 9, 10.
        #expect(silent[0].candidates == 6 && silent[0].examples.map(\.row) == [8, 2, 4, 10, 9, 6])
        #expect(ood[1].examples.allSatisfy { $0.label == nil })
    }

    /// Zero errors: empty groups (never a grid) and the page says "No confident errors".
    @Test func zeroErrorsGiveASentence() throws {
        let report = try Self.report()
        var perfect = report
        let n = 5
        let attribution = FailureAttribution(correct: [Bool](repeating: true, count: n), confidence: [Double](repeating: 0.99, count: n),
                                             oodScore: [Float](repeating: 0, count: n), oodThreshold: 1, confident: 0.9,
                                             flipped: [Bool](repeating: false, count: n), epsilon: 0.05, attack: "PGD-20")
        perfect.examples = FailureExamples(test: Matrix(rows: n, columns: 64, repeating: 0.5), labels: [0, 1, 2, 0, 1],
                                           probabilities: try Self.probabilities([0, 1, 2, 0, 1], [Float](repeating: 0.99, count: n)),
                                           attribution: attribution, adversarial: nil, shifted: [], train: Matrix(rows: 2, columns: 64),
                                           image: ImageShape(channels: 1, height: 8, width: 8))
        #expect(perfect.examples!.groups.allSatisfy { $0.examples.isEmpty && $0.candidates == 0 })
        let html = String(decoding: try #require(FailureReportRenderer.files(perfect)["report.html"]), as: UTF8.self)
        #expect(html.contains("No confident errors") && html.contains("No flipped rows"))
        #expect(!html.contains("class=\"examples\""))
        #expect(FailureReportRenderer.text(perfect).contains("No confident errors"))
    }

    /// Non-image inputs render as tables of the most deviating features (no PNG tiles), in HTML and text.
    @Test func nonImageRowsRenderAsFeatureTables() throws {
        var report = try Self.report()
        let n = 4, d = 7
        let x = try Matrix<Float>((0..<n).map { i in (0..<d).map { j in Float((i * 3 + j * 5) % 11) / 10 } })
        let attribution = FailureAttribution(correct: [false, true, false, true], confidence: [0.95, 0.99, 0.97, 0.8],
                                             oodScore: [Float](repeating: 0, count: n), oodThreshold: 1, confident: 0.9,
                                             flipped: [false, true, false, false], epsilon: 0.05, attack: "PGD-20")
        report.examples = FailureExamples(test: x, labels: [1, 0, 2, 1], probabilities: try Self.probabilities([0, 0, 1, 1], [0.95, 0.99, 0.97, 0.8]),
                                          attribution: attribution, adversarial: (x.map { min($0 + 0.05, 1) }, try Self.probabilities([2, 2, 2, 2], [0.6, 0.6, 0.6, 0.6])),
                                          shifted: [.init(name: "tabular shift", features: x, labels: [1, 0, 2, 1],
                                                          probabilities: try Self.probabilities([0, 0, 1, 1], [0.95, 0.99, 0.97, 0.8]), oodScores: [4, 0.5, 0.2, 3])],
                                          train: x, image: nil)
        let e = try #require(report.examples)
        #expect(e.image == nil && e.groups(.confidentError)[0].examples.map(\.row) == [2, 0])
        #expect(e.groups(.silentUnderShift)[0].examples.map(\.row) == [2])
        let files = try FailureReportRenderer.files(report)
        let html = String(decoding: try #require(files["report.html"]), as: UTF8.self)
        #expect(XMLParser(data: files["report.html"]!).parse())
        #expect(html.contains("most deviating features: index = value (z)") && !html.contains("data:image/png"))
        #expect(html.contains("The inputs are not images"))
        let text = FailureReportRenderer.text(report)
        #expect(text.contains("most deviating features") && text.contains("Silent under shift (wrong, called in distribution): tabular shift"))
    }

    /// The layout: the model's input shape (a convolution's C×H×W) when it has one, else a square width
    /// as one grey channel, else none (non-square widths become feature tables).
    @Test func imageShapeInference() throws {
        func mlp(_ d: Int) throws -> Sequential { try ModelSpec.build("linear:\(d)-4,relu,linear:4-3") }
        #expect(ImageShape.infer(model: try mlp(64), features: 64) == ImageShape(channels: 1, height: 8, width: 8))
        #expect(ImageShape.infer(model: try mlp(784), features: 784) == ImageShape(channels: 1, height: 28, width: 28))
        let conv = try ModelSpec.build("input:3x32x32,conv2d:3-2-3-2-1,relu,flatten,linear:512-3")
        #expect(ImageShape.infer(model: conv, features: 3072) == ImageShape(channels: 3, height: 32, width: 32))
        for d in [3, 10, 50, 63, 65, 3 * 32 * 31] { #expect(ImageShape.infer(model: try mlp(d), features: d) == nil, "width \(d)") }
        // A non-image width gives feature tables; an image layout gives pixels of its size.
        let x = try Matrix<Float>([(0..<10).map { Float($0) / 10 }])
        let attribution = FailureAttribution(correct: [false], confidence: [0.99], oodScore: [0], oodThreshold: 1, confident: 0.9,
                                             flipped: [false], epsilon: 0.1, attack: "PGD")
        let table = FailureExamples(test: x, labels: [1], probabilities: try Self.probabilities([0], [0.99]), attribution: attribution,
                                    adversarial: nil, shifted: [], train: x, image: nil)
        #expect(table.image == nil && table.groups(.confidentError)[0].examples[0].features?.count == FailureExamples.listedFeatures)
        let rgb = Matrix<Float>(rows: 1, columns: 3072, repeating: 0.5)
        let tiles = FailureExamples(test: rgb, labels: [1], probabilities: try Self.probabilities([0], [0.99]), attribution: attribution,
                                    adversarial: nil, shifted: [], train: rgb, image: ImageShape(channels: 3, height: 32, width: 32))
        #expect(tiles.image == FailureExamples.Layout(channels: 3, height: 32, width: 32, input: "3x32x32", source: "given"))
        let pixels = try #require(tiles.groups(.confidentError)[0].examples[0].pixels)
        #expect(Data(base64Encoded: pixels)?.count == 3072)
        // A layout of the wrong size is refused with a note (rows become features).
        let wrong = FailureExamples(test: x, labels: [1], probabilities: try Self.probabilities([0], [0.99]), attribution: attribution,
                                    adversarial: nil, shifted: [], train: x, image: ImageShape(channels: 1, height: 3, width: 3))
        #expect(wrong.image == nil && wrong.notes.count == 1)
        // Large images are block-averaged to at most maxSide a side.
        let big = Matrix<Float>(rows: 1, columns: 130 * 100, repeating: 1)
        let averaged = FailureExamples(test: big, labels: [1], probabilities: try Self.probabilities([0], [0.99]), attribution: attribution,
                                       adversarial: nil, shifted: [], train: big, image: ImageShape(channels: 1, height: 130, width: 100))
        #expect(averaged.image?.height == 44 && averaged.image?.width == 34)
        // (A constant training set: the range is its value ± 0.5, so every pixel is mid-grey.)
        #expect(Data(base64Encoded: averaged.groups(.confidentError)[0].examples[0].pixels ?? "") == Data(repeating: 128, count: 44 * 34))
    }

    /// Pixels map the box per channel (lower → 0, upper → 255, rounded, clamped); a box far wider than the
    /// training data falls back to the data's per-channel min/max; the perturbation maps 0 to 128 and
    /// ±‖δ‖∞ to 1 and 255 (−‖δ‖∞/2 to 64.5, rounded to 65).
    @Test func pixelMapping() throws {
        let shape = ImageShape(channels: 3, height: 1, width: 2)
        let box = try InputBox(lower: [-1, 0, 0], upper: [1, 2, 4])
        let train = try Matrix<Float>([[-1, 1, 0, 2, 0, 4], [0.5, -0.5, 1, 1, 2, 2]])
        let range = FailureExamples.pixelRange(box: box, train: train, shape: shape)
        #expect(range == FailureExamples.PixelRange(lower: [-1, 0, 0], upper: [1, 2, 4], source: "box"))
        #expect(range.bytes([-1, 1, 0, 1, 1, 5], channels: 3) == [0, 255, 0, 128, 64, 255])
        #expect(range.bytes([0, -2], channels: 3) == [128, 0])
        #expect(range.bytes([0, 1, .nan, 9, 9, 9, 9], channels: 7) == [128, 128, 0, 255, 255, 255, 255], "channels past the box use its last interval")
        #expect(FailureExamples.PixelRange(lower: [], upper: [], source: "box").bytes([0.3, 7], channels: 1) == [128, 128])
        #expect(FailureExamples.PixelRange(lower: [1], upper: [1], source: "box").bytes([0.3, 7], channels: 1) == [128, 128])
        // A loose box: the training data spans 0…1 of −100…100.
        let loose = FailureExamples.pixelRange(box: InputBox(-100...100), train: try Matrix([[0, 1], [0.5, 0.25]]),
                                               shape: ImageShape(channels: 1, height: 1, width: 2))
        #expect(loose == FailureExamples.PixelRange(lower: [0], upper: [1], source: "training data"))
        // The tiles of a report carry exactly these bytes; the perturbation is centred on 128.
        let x = try Matrix<Float>([[-1, 1, 0, 1, 1, 4]])
        let attribution = FailureAttribution(correct: [true], confidence: [0.99], oodScore: [0], oodThreshold: 1, confident: 0.9,
                                             flipped: [true], epsilon: 0.5, attack: "PGD")
        let adversarial = try Matrix<Float>([[-0.5, 1, 0, 0.75, 1, 4]])
        let e = FailureExamples(test: x, labels: [0], probabilities: try Self.probabilities([0], [0.99]), attribution: attribution,
                                adversarial: (adversarial, try Self.probabilities([1], [0.6])), shifted: [], train: train, image: shape, box: box)
        let tile = try #require(e.groups(.flipped).first?.examples.first)
        #expect([UInt8](Data(base64Encoded: tile.pixels ?? "") ?? Data()) == [0, 255, 0, 128, 64, 255])
        #expect([UInt8](Data(base64Encoded: tile.adversarialPixels ?? "") ?? Data()) == [64, 255, 0, 96, 64, 255])
        #expect([UInt8](Data(base64Encoded: tile.perturbationPixels ?? "") ?? Data()) == [255, 128, 128, 65, 128, 128])
        #expect(tile.perturbationNorm == 0.5 && tile.adversarialPredicted == 1)
    }

    /// Non-image rows: z against the training mean and (population) sd, largest |z| first, ties by index;
    /// a feature constant in training that moved ranks first.
    @Test func mostDeviatingFeatures() throws {
        // Columns: 0 ∈ {0, 2} (mean 1, sd 1), 1 ∈ {0, 4} (mean 2, sd 2), 2 constant 5, 3 ∈ {1, 3} (mean 2, sd 1).
        let train = try Matrix<Float>([[0, 0, 5, 1], [2, 4, 5, 3]])
        let m = FailureExamples.moments(train)
        #expect(m.mean == [1, 2, 5, 2] && m.sd == [1, 2, 0, 1])
        let f = FailureExamples.deviations([3, 6, 5, 0], mean: m.mean, sd: m.sd, top: 3)
        #expect(f.map(\.index) == [0, 1, 3] && f.map(\.z) == [2, 2, -2])
        let moved = FailureExamples.deviations([1, 2, 5.5, 2], mean: m.mean, sd: m.sd, top: 2)
        #expect(moved.map(\.index) == [2, 0] && moved[0].z > 1e5 && moved[1].z == 0)
        #expect(FailureExamples.deviations([], mean: [], sd: [], top: 5).isEmpty)
    }

    static func report() throws -> FailureReport {
        let split = FailureReportTests.fixture.split
        let noisy = FailureReport.ShiftedSet.gaussianNoise(split.test.features, sigma: 0.3, seed: 2, labels: split.test.labels)
        return try FailureReport.build(model: FailureReportTests.fixture.model, data: FailureReportTests.data(shifted: [noisy]),
                                       options: FailureReportTests.options())
    }

    /// On a trained digits MLP: the report's groups are the attribution's rows in the stated order, with
    /// 8×8 tiles; report.json round-trips them; the page has the grids as PNG data URIs (valid PNG: CRCs,
    /// header, stored deflate holding the tile's pixels) and still passes the render check, including the
    /// ROC plot with a held-out-class curve.
    @Test func reportCarriesAndRendersTheExamples() throws {
        var report = try Self.report()
        let (model, split) = FailureReportTests.fixture
        let e = try #require(report.examples)
        #expect(e.image == FailureExamples.Layout(channels: 1, height: 8, width: 8, input: "1x8x8", source: "given"))
        #expect(e.groups.map(\.kind) == [.confidentError, .flipped, .mostOutOfDistribution, .silentUnderShift])
        let p = try Linalg.softmaxRows(model.logits(split.test.features))
        let confidence = (0..<p.rows).map { Double(p.row($0).max()!) }
        for (kind, category) in [(FailureExamples.Kind.confidentError, FailureAttribution.Category.confidentError), (.flipped, .fragile)] {
            let expected = Self.reference(split.test.count, keep: { report.attribution.categories[$0] == category }, key: { confidence[$0] }, limit: 8)
            #expect(e.groups(kind)[0].examples.map(\.row) == expected, "\(kind)")
        }
        #expect(e.groups(.flipped)[0].examples.allSatisfy { $0.adversarialPixels != nil && $0.perturbationPixels != nil && $0.adversarialPredicted != nil })
        #expect(!e.groups(.mostOutOfDistribution)[0].examples.isEmpty)

        report.heldOutClass = .init(heldOutClass: 9, mahalanobisAUROC: 0.8, knnAUROC: 0.7, mspAUROC: 0.6, energyAUROC: 0.6,
                                    roc: [[0, 0], [0.1, 0.5], [0.4, 0.8], [1, 1]])
        let files = try FailureReportRenderer.files(report)
        let decoded = try JSONDecoder().decode(FailureReport.self, from: try #require(files["report.json"]))
        #expect(decoded.examples == report.examples && decoded.heldOutClass?.roc == report.heldOutClass?.roc)
        #expect(try FailureReportRenderer.files(decoded)["report.json"] == files["report.json"])
        let json = String(decoding: files["report.json"]!, as: UTF8.self)
        #expect(json.contains("\"confident-error\"") && json.contains("\"silent-under-shift\""))
        let html = String(decoding: try #require(files["report.html"]), as: UTF8.self)
        #expect(XMLParser(data: files["report.html"]!).parse())
        #expect(html.contains("<h2>Failing examples</h2>") && html.contains("class=\"examples\""))
        #expect(html.contains("Confident and wrong (test)") && html.contains("Most out of distribution: Gaussian noise σ = 0.3"))
        // The mild shift's curve: a ROC from (0, 0) to (1, 1), monotone in both rates.
        let mild = try #require(report.plots.roc.first { $0.kind == .mildShift && $0.name == FailureReport.mildShiftName }?.points)
        #expect(mild.first == [0, 0] && mild.last == [1, 1])
        #expect(zip(mild, mild.dropFirst()).allSatisfy { $0[0] <= $1[0] && $0[1] <= $1[1] })
        let roc = try #require(files["roc.svg"])
        #expect(String(decoding: roc, as: UTF8.self).contains("held-out class 9 (inputs)"))
        for svg in SVGRenderCheck.documents(inHTML: html) { #expect(SVGRenderCheck.violations(svg) == [], "\(svg.prefix(300))") }
        #expect(FailureReportRenderer.text(report).contains("Failing examples"))

        // The first tile's PNG: the first confident error's (or, with none, the first flipped row's) pixels.
        let first = try #require(e.groups.first { !$0.examples.isEmpty }?.examples.first?.pixels)
        let start = try #require(html.range(of: "data:image/png;base64,"))
        let uri = html[start.upperBound...].prefix { $0 != "\"" }
        let png = [UInt8](try #require(Data(base64Encoded: String(uri))))
        #expect(try Self.decodeStoredPNG(png) == [UInt8](Data(base64Encoded: first)!))
    }

    /// Three channels become an RGB PNG whose pixels interleave the C×H×W planes.
    @Test func rgbTilesInterleaveTheChannels() throws {
        var report = try Self.report()
        let shape = ImageShape(channels: 3, height: 4, width: 4)
        let x = try Matrix<Float>([(0..<48).map { Float($0) / 47 }])
        let attribution = FailureAttribution(correct: [false], confidence: [0.99], oodScore: [0], oodThreshold: 1, confident: 0.9,
                                             flipped: [false], epsilon: 0.1, attack: "PGD")
        report.examples = FailureExamples(test: x, labels: [1], probabilities: try Self.probabilities([0], [0.99]), attribution: attribution,
                                          adversarial: nil, shifted: [], train: try Matrix([[Float](repeating: 0, count: 48), [Float](repeating: 1, count: 48)]),
                                          image: shape)
        let planar = [UInt8](Data(base64Encoded: try #require(report.examples?.groups[0].examples[0].pixels))!)
        let expected: [UInt8] = (0..<48).map { (k: Int) -> UInt8 in UInt8((Float(k) / 47 * 255).rounded()) }
        #expect(planar == expected)
        let html = String(decoding: try #require(FailureReportRenderer.files(report)["report.html"]), as: UTF8.self)
        let start = try #require(html.range(of: "data:image/png;base64,"))
        let png = [UInt8](try #require(Data(base64Encoded: String(html[start.upperBound...].prefix { $0 != "\"" }))))
        let rgb = try Self.decodeStoredPNG(png, channels: 3, side: 4)
        var interleaved: [UInt8] = []
        for p in 0..<16 { interleaved += [planar[p], planar[16 + p], planar[32 + p]] }
        #expect(rgb == interleaved)
    }

    /// An independent reader of the PNGs the renderer writes (8-bit grey or RGB, one IDAT of stored deflate
    /// blocks): checks the signature, every chunk's CRC (bitwise CRC-32), the header and the zlib
    /// Adler-32, and returns the pixels without the filter bytes.
    static func decodeStoredPNG(_ png: [UInt8], channels: Int = 1, side: Int = 8) throws -> [UInt8] {
        func u32(_ i: Int) -> UInt32 { png[i..<(i + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        func crc(_ bytes: ArraySlice<UInt8>) -> UInt32 {
            var c: UInt32 = 0xffff_ffff
            for b in bytes {
                c ^= UInt32(b)
                for _ in 0..<8 { c = (c >> 1) ^ (c & 1 == 1 ? 0xEDB8_8320 : 0) }
            }
            return ~c
        }
        #expect(Array(png.prefix(8)) == [137, 80, 78, 71, 13, 10, 26, 10])
        var i = 8, idat: [UInt8] = []
        var (width, height) = (0, 0)
        while i + 12 <= png.count {
            let length = Int(u32(i)), type = String(decoding: png[(i + 4)..<(i + 8)], as: UTF8.self)
            let body = png[(i + 8)..<(i + 8 + length)]
            #expect(crc(png[(i + 4)..<(i + 8 + length)]) == u32(i + 8 + length), "CRC of \(type)")
            if type == "IHDR" { (width, height) = (Int(u32(i + 8)), Int(u32(i + 12))); #expect(Array(body.suffix(5)) == [8, channels == 3 ? 2 : 0, 0, 0, 0]) }
            if type == "IDAT" { idat += body }
            i += 12 + length
        }
        #expect(width == side && height == side)
        var raw: [UInt8] = [], k = 2
        while k < idat.count - 4 {
            let final = idat[k] & 1, n = Int(idat[k + 1]) | Int(idat[k + 2]) << 8
            raw += idat[(k + 5)..<(k + 5 + n)]
            k += 5 + n
            if final == 1 { break }
        }
        var (a, b): (UInt32, UInt32) = (1, 0)
        for v in raw { a = (a + UInt32(v)) % 65521; b = (b + a) % 65521 }
        #expect(idat.suffix(4).reduce(0) { $0 << 8 | UInt32($1) } == b << 16 | a)
        let stride_ = width * channels + 1
        return stride(from: 0, to: raw.count, by: stride_).flatMap { raw[($0 + 1)..<min($0 + stride_, raw.count)] }
    }
}
