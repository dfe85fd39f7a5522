import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

/// `faultline corrupt` under `mpirun -np K` (with --oversubscribe, and as root the OMPI_ALLOW_RUN_AS_ROOT
/// variables of `MPICommandTests.environment`): the table, the JSON and the corrupted copies of --out equal
/// the one-process run bit for bit, for an odd N, N < K (ranks without rows) and a CSV holding its labels;
/// a rank's bad row ends the job naming it, with no output.
@Suite("faultline corrupt under mpirun", .serialized,
       .enabled(if: mpirun != nil && libmpiInstalled, "Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev, or run scripts/bootstrap)"))
struct MPICorruptTests {
    static let mlp = "\(MPICommandTests.fixtures)/digits_mlp.onnx"
    /// Every corruption at severities 1, 3, 5 (noise, salt and pepper, rotation and translation draw random numbers).
    static let common = ["--model", mlp, "--severities", "1,3,5", "--seed", "3", "--quiet"]

    /// 17 digits rows (odd) on 1, 2 and 4 ranks, 3 rows on 4 ranks (one rank without rows): the JSON and the
    /// --out arrays (one per corruption and severity) are the one-process ones bit for bit; the text table
    /// on 2 ranks too.
    @Test func corruptEqualsOneProcess() throws {
        let digits = try BundledDatasets.digits().stratifiedSplit(seed: 0).test
        let ((dx, dy), (x3, y3)) = (try MPICommandTests.digitsRows(digits, 17), try MPICommandTests.digitsRows(digits, 3))
        let (outOne, outMany) = (MPICommandTests.temporary("one.npz"), MPICommandTests.temporary("many.npz"))
        defer { MPICommandTests.remove(dx, dy, x3, y3, outOne, outMany) }
        for (x, y, counts) in [(dx, dy, [1, 2, 4]), (x3, y3, [4])] {
            let arguments = ["corrupt"] + Self.common + ["--x", x, "--y", y, "--json"]
            let one = try CLIRunner.run(arguments + ["--out", outOne])
            #expect(one.status == 0 && one.stdout.contains("cleanAccuracy"), "\(one.stderr)")
            let expected = try NPZ.read(outOne)
            #expect(expected.count == 8 * 3)
            for ranks in counts {
                try? FileManager.default.removeItem(atPath: outMany)
                let r = try MPICommandTests.run(ranks, arguments + ["--out", outMany])
                #expect(r.status == 0, "\(ranks) ranks: \(r.stderr)")
                #expect(r.stdout == one.stdout, "\(ranks) ranks, \(x):\n\(r.stdout)\nvs\n\(one.stdout)")
                let gathered = try NPZ.read(outMany)
                #expect(gathered.map(\.name) == expected.map(\.name))
                for (a, b) in zip(gathered, expected) {
                    #expect(a.tensor.shape == b.tensor.shape && a.tensor == b.tensor, "\(ranks) ranks, \(x): --out \(a.name)")
                }
            }
        }
        // The informative case: the corruptions move the accuracy (so equal tables are not trivially equal).
        struct Table: Decodable { var cleanAccuracy: Double; struct Cell: Decodable { var accuracy: Double }; var cells: [Cell] }
        let table = try JSONDecoder().decode(Table.self, from: Data(try CLIRunner.run(["corrupt"] + Self.common + ["--x", dx, "--y", dy, "--json"]).stdout.utf8))
        #expect(table.cells.count == 24 && Set(table.cells.map(\.accuracy)).count > 1)
        let text = try CLIRunner.run(["corrupt"] + Self.common + ["--x", dx, "--y", dy])
        let text2 = try MPICommandTests.run(2, ["corrupt"] + Self.common + ["--x", dx, "--y", dy])
        #expect(text.status == 0 && text2.status == 0 && text2.stdout == text.stdout && text.stdout.contains("mean corruption accuracy"), "\(text2.stderr)")
    }

    /// A CSV holding its labels (read whole and sliced on every rank), 3 ranks, one corruption.
    @Test func csvWithItsLabelsEqualsOneProcess() throws {
        let digits = try BundledDatasets.digits().stratifiedSplit(seed: 0).test.subset(Array(0..<11))
        let csv = MPICommandTests.temporary("d.csv")
        defer { MPICommandTests.remove(csv) }
        try (["label," + (0..<64).map { "f\($0)" }.joined(separator: ",")] + (0..<11).map { i in
            "\(digits.labels[i]),\(digits.features.row(i).map { "\($0)" }.joined(separator: ","))"
        }).joined(separator: "\n").write(toFile: csv, atomically: true, encoding: .utf8)
        let arguments = ["corrupt", "--model", Self.mlp, "--x", csv, "--label-column", "label", "--corruptions", "gaussian-noise,rotation",
                         "--seed", "9", "--json", "--quiet"]
        let one = try CLIRunner.run(arguments)
        let r = try MPICommandTests.run(3, arguments)
        #expect(one.status == 0 && r.status == 0 && r.stdout == one.stdout, "\(r.stderr)\n\(r.stdout)\nvs\n\(one.stdout)")
    }

    /// A pixel outside [0, 1] in rank 1's rows: exit 2, rank 0 names rank 1 and the row of --x once, no --out.
    @Test func aBadRowEndsTheJobWithoutOutput() throws {
        let digits = try BundledDatasets.digits().stratifiedSplit(seed: 0).test
        let (x, y) = try MPICommandTests.digitsRows(digits, 17)
        var bad = try NPY.readMatrix(x, as: Float.self)
        bad[14, 5] = 1.5
        let badPath = MPICommandTests.temporary("bad.npy"), out = MPICommandTests.temporary("bad.npz")
        try NPY.write(bad, to: badPath)
        defer { MPICommandTests.remove(x, y, badPath, out) }
        let r = try MPICommandTests.run(2, ["corrupt", "--model", Self.mlp, "--x", badPath, "--y", y, "--out", out, "--quiet"])
        #expect(r.status == 2 && !r.timedOut, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("faultline corrupt: rank 1 of 2: --x \(badPath): row 14 column 5 is 1.5, outside [0, 1]"), "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "rank 1 of 2").count == 2)
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
