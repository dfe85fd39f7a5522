import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

/// `faultline report` under mpirun: every rank reads the inputs, the attacks, certificates, minimal ε and
/// the attribution's attack are split by rows, and rank 0 writes the one-process report.json (one thread
/// per process on both sides, so the repeated sections round alike); bad input ends the job once, with no
/// report directory.
@Suite("faultline report under mpirun", .serialized,
       .enabled(if: mpirun != nil && libmpiInstalled, "Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev, or run scripts/bootstrap)"))
struct MPIReportTests {
    /// report.json without what legitimately differs between runs (timings, the machine and job).
    static func comparable(_ directory: String) throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/report.json"))
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["setup"] = nil
        return try object.mapValues { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self) }
    }

    @Test func rankZeroWritesTheOneProcessReport() throws {
        let split = try BundledDatasets.digits().stratifiedSplit(seed: 0)
        let (trainX, trainY) = try MPICommandTests.digitsRows(split.train, 300)
        let (testX, testY) = try MPICommandTests.digitsRows(split.test, 61)
        let (one, many) = (MPICommandTests.temporary("one"), MPICommandTests.temporary("many"))
        defer { MPICommandTests.remove(trainX, trainY, testX, testY, one, many) }
        let common = ["report", "--model", "\(MPICommandTests.fixtures)/digits_mlp.onnx", "--train-x", trainX, "--train-y", trainY,
                      "--test-x", testX, "--test-y", testY, "--eps", "0.05,0,0.1", "--robustness-samples", "23", "--shape", "1x8x8",
                      "--seed", "4", "--quiet"]
        let r1 = try CLIRunner.run(common + ["--out", one], environment: ["FAULTLINE_THREADS": "1"])
        #expect(r1.status == 0, "\(r1.stderr)")
        let expected = try Self.comparable(one)
        #expect(expected["robustness"]?.contains("certifiedCROWN") == true)
        for ranks in [2, 3] {
            try? FileManager.default.removeItem(atPath: many)
            let r = try MPICommandTests.run(ranks, common + ["--out", many])
            #expect(r.status == 0 && r.stdout.components(separatedBy: "wrote ").count == 2, "\(ranks) ranks: \(r.stderr)\n\(r.stdout)")
            let got = try Self.comparable(many)
            #expect(got.keys.sorted() == expected.keys.sorted())
            for key in expected.keys.sorted() { #expect(got[key] == expected[key], "\(ranks) ranks: \(key) differs") }
        }
        // A label out of range: exit 2 once, naming the file, and no report directory.
        let bad = MPICommandTests.temporary("bad.npy"), out = MPICommandTests.temporary("never")
        defer { MPICommandTests.remove(bad) }
        try NPY.write(Tensor(shape: [61], values: [Int64](repeating: 12, count: 61)), to: bad)
        let r = try MPICommandTests.run(2, Array(common.dropLast()) + ["--test-y", bad, "--out", out])
        #expect(r.status == 2 && r.stderr.contains(bad) && !FileManager.default.fileExists(atPath: out), "\(r.stderr)")
    }
}
