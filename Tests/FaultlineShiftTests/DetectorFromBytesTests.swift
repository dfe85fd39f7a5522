import FaultlineIO
import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing
import _TestSupport

/// `DetectorFile.load(SafeTensors.File, name:)` is what `load(path)` runs after reading the file: the
/// same detector (equal scores) from the bytes of saved detectors of every kind and of the committed
/// fuzzing seeds, and for hostile bytes the same typed error, naming the source it is given.
@Suite("detector files from bytes")
struct DetectorFromBytesTests {
    static let seeds = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/Corpus/WeightFiles").path

    static func temporaryDirectory() throws -> String {
        let dir = TestScratch.root.appendingPathComponent("faultline-detector-bytes-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// One detector of each kind, fitted on Gaussian data of dimension `d` with `classes` classes.
    static func detectors(dimension d: Int, classes: Int) throws -> [DetectorFile.Detector] {
        var rng = Philox(seed: UInt64(d * 10 + classes))
        let n = 30 * classes + d
        let x = rng.matrix(rows: n, columns: d, .normal(mean: 0, sd: 1), as: Float.self)
        let y = (0..<n).map { $0 % classes }
        var fit = GaussianFit(dimension: d, classes: classes, perClassCovariance: true)
        try fit.update(x, labels: y)
        return [
            .mahalanobis(try MahalanobisDetector.oas(fit)),
            .perClassMahalanobis(try PerClassMahalanobisDetector(fit, shrinkage: 0.01, includeLogDeterminant: true)),
            .relativeMahalanobis(try RelativeMahalanobisDetector(fit, shrinkage: 0.01)),
            .knn(try KNNDetector(reference: x, k: 3)),
            .vim(try ViMDetector(features: x, weight: rng.matrix(rows: classes, columns: d, as: Float.self),
                                 bias: [Float](repeating: 0.1, count: classes), principal: d - 1)),
        ]
    }

    static func dimension(_ detector: DetectorFile.Detector) -> Int {
        switch detector {
        case .mahalanobis(let d): return d.dimension
        case .perClassMahalanobis(let d): return d.dimension
        case .relativeMahalanobis(let d): return d.classes.dimension
        case .knn(let d): return d.dimension
        case .vim(let d): return d.weight.columns
        }
    }

    /// Both routes, given the same name: equal scores on a batch, or errors of the same type and text.
    static func expectAgree(bytes: [UInt8], path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let fromFile = Result { try DetectorFile.load(path) }
        let fromBytes = Result { try DetectorFile.load(SafeTensors.decode(bytes, name: path), name: path) }
        switch (fromFile, fromBytes) {
        case (.success(let a), .success(let b)):
            var rng = Philox(seed: 3)
            let x = rng.matrix(rows: 4, columns: dimension(a), as: Float.self)
            #expect(dimension(a) == dimension(b))
            #expect(try a.score(x) == b.score(x))
        case (.failure(let a), .failure(let b)):
            #expect((a is IOError || a is ShiftError) && type(of: a) == type(of: b) && "\(a)" == "\(b)")
        default: Issue.record("\(path): the file gives \(fromFile), its bytes \(fromBytes)")
        }
    }

    @Test(arguments: [(2, 2), (5, 3), (12, 4)])
    func savedDetectorBytesLoadAsTheFile(_ d: Int, _ classes: Int) throws {
        let dir = try Self.temporaryDirectory()
        for (k, detector) in try Self.detectors(dimension: d, classes: classes).enumerated() {
            let path = dir + "/d\(k).safetensors"
            try DetectorFile.save(detector, to: path)
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            var rng = Philox(seed: 9)
            let x = rng.matrix(rows: 5, columns: d, as: Float.self)
            #expect(try DetectorFile.load(SafeTensors.decode(bytes, name: "upload"), name: "upload").score(x) == detector.score(x), "detector \(k)")
            try Self.expectAgree(bytes: bytes, path: path)
        }
    }

    @Test func committedFuzzSeedsLoadAndScoreBothWays() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.seeds).filter { $0.hasPrefix("detector_") }.sorted()
        #expect(names.count == 5)
        for name in names {
            let path = Self.seeds + "/" + name
            let detector = try DetectorFile.load(path)
            #expect(try detector.score(Matrix(rows: 2, columns: Self.dimension(detector))).allSatisfy(\.isFinite), "\(name)")
            let dir = try Self.temporaryDirectory()
            try Self.expectAgree(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))), path: dir + "/" + name)
        }
    }

    @Test func hostileBytesGiveTheFilesTypedError() throws {
        let dir = try Self.temporaryDirectory()
        for (k, detector) in try Self.detectors(dimension: 3, classes: 2).enumerated() {
            try DetectorFile.save(detector, to: dir + "/good.safetensors")
            let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/good.safetensors")))
            for length in Set(Array(0..<24) + Array(stride(from: 24, to: good.count, by: 61)) + [good.count - 1]) {
                try Self.expectAgree(bytes: Array(good.prefix(length)), path: dir + "/cut.safetensors")
            }
            let file = try SafeTensors.decode(good)
            func expectRefused(_ change: (inout SafeTensors.File) -> Void, _ what: String) throws {
                var f = file
                change(&f)
                let bytes = try SafeTensors.encode(f)
                try Self.expectAgree(bytes: bytes, path: dir + "/v.safetensors")
                let error = try #require(throws: ShiftError.self, "detector \(k): \(what)") {
                    try DetectorFile.load(SafeTensors.decode(bytes), name: "hostile-\(k)")
                }
                #expect(error.description.contains("hostile-\(k)"), "detector \(k): \(what)")
            }
            try expectRefused({ $0.metadata["faultline_detector"] = nil }, "no kind")
            try expectRefused({ $0.metadata["faultline_detector"] = "gaussian" }, "unknown kind")
            for t in file.tensors.indices {
                // A NaN in each tensor; each tensor removed (centres may be absent: files predating them).
                try expectRefused({ f in
                    var values = f.tensors[t].tensor.values(as: Double.self)
                    if !values.isEmpty { values[values.count / 2] = .nan }
                    let nan = values.isEmpty ? Tensor(shape: [2], values: [Float.nan, 0]) : f.tensors[t].tensor.dtype == .float64
                        ? Tensor(shape: f.tensors[t].tensor.shape, values: values) : Tensor(shape: f.tensors[t].tensor.shape, values: values.map(Float.init))
                    f.tensors[t].tensor = nan
                }, "NaN in \(file.tensors[t].name)")
                if !file.tensors[t].name.hasSuffix("centre") && file.tensors[t].name != "centres" {
                    try expectRefused({ $0.tensors.remove(at: t) }, "no \(file.tensors[t].name)")
                }
            }
            if case .knn = detector {
                for bad in ["nan", "inf", "-inf", "1e300", "0", "-1", "2.5", "100000", "", "three"] {
                    try expectRefused({ $0.metadata["k"] = bad }, "k = \(bad)")
                }
            }
        }
    }
}
