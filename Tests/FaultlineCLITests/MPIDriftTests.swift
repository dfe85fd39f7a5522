import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

/// `faultline drift compare` under `mpirun -np 1, 2, 4` prints the one-process report byte for byte (MMD²,
/// its p-value, every KS statistic and p-value, the drifted features, chi-square, BBSE weights), and a bad
/// row on one rank ends the job naming that rank. Uses MPICommandTests' launcher (`MPICommandTests.run`).
@Suite("faultline drift under mpirun", .serialized,
       .enabled(if: mpirun != nil && libmpiInstalled, "Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev, or run scripts/bootstrap)"))
struct MPIDriftTests {
    /// Seeded n×d features (`shift` added to feature 1); `rounded`: on a grid of 0.5 with rows 0..<n/4
    /// copied onto the next n/4 (ties and duplicates); feature `constant` (if any) is 3 throughout.
    static func features(_ n: Int, _ d: Int, seed: UInt64, shift: Float = 0, rounded: Bool = false, constant: Int? = nil) -> Matrix<Float> {
        driftFeatures(n, d, seed: seed, stream: 17, shift: shift, rounded: rounded, constant: constant)
    }

    static func write(_ x: Matrix<Float>, csvHeader: Bool = false) throws -> String {
        if csvHeader {
            let path = MPICommandTests.temporary("x.csv")
            var text = (0..<x.columns).map { "f\($0)" }.joined(separator: ",") + "\n"
            for i in 0..<x.rows { text += (0..<x.columns).map { "\(x[i, $0])" }.joined(separator: ",") + "\n" }
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let path = MPICommandTests.temporary("x.npy")
        try NPY.write(x, to: path)
        return path
    }

    static func labels(_ n: Int, classes: Int, seed: UInt64) throws -> String {
        var rng = Philox(seed: seed, stream: 5)
        let path = MPICommandTests.temporary("y.npy")
        try NPY.write(Tensor(shape: [n], values: (0..<n).map { _ in Int64(rng.uniform() * Double(classes)) }), to: path)
        return path
    }

    /// Three families: odd N with a shift and every label test; ties, duplicates and a constant feature with
    /// the reference a CSV with a header (read whole, sliced per rank); 3 and 2 rows (fewer than 4 ranks).
    /// Each at 1, 2 and 4 ranks against one process, JSON and text, the byte-identical stdout.
    @Test func compareEqualsOneProcess() throws {
        var paths: [String] = []
        defer { for p in paths { MPICommandTests.remove(p) } }
        func keep(_ p: String) -> String { paths.append(p); return p }
        let (vp, vy, tp) = (keep(try Self.labels(151, classes: 3, seed: 1)), keep(try Self.labels(151, classes: 3, seed: 2)), keep(try Self.labels(99, classes: 3, seed: 3)))
        let families: [(String, [String])] = [
            ("odd, shifted, labels", ["--reference", keep(try Self.write(Self.features(101, 5, seed: 1))),
                                      "--current", keep(try Self.write(Self.features(77, 5, seed: 2, shift: 0.8))), "--permutations", "150",
                                      "--reference-labels", keep(try Self.labels(101, classes: 4, seed: 4)), "--current-labels", keep(try Self.labels(77, classes: 4, seed: 5)),
                                      "--validation-predictions", vp, "--validation-labels", vy, "--current-predictions", tp]),
            ("ties, duplicates, constant, CSV", ["--reference", keep(try Self.write(Self.features(63, 4, seed: 3, rounded: true, constant: 2), csvHeader: true)),
                                                "--current", keep(try Self.write(Self.features(58, 4, seed: 4, rounded: true, constant: 2))),
                                                "--permutations", "40", "--mmd-estimator", "biased", "--ks-method", "asymptotic"]),
            ("fewer rows than ranks", ["--reference", keep(try Self.write(Self.features(3, 3, seed: 5))),
                                       "--current", keep(try Self.write(Self.features(2, 3, seed: 6, shift: 1))), "--permutations", "7"]),
        ]
        for (name, arguments) in families {
            for json in [true, false] {
                let command = ["drift", "compare"] + arguments + ["--seed", "3"] + (json ? ["--json"] : [])
                let one = try CLIRunner.run(command)
                #expect(one.status == 0, "\(name): \(one.stderr)")
                if json { #expect(one.stdout.contains("\"mmd\"") && one.stdout.contains("\"ksFeatures\""), "\(name)") }
                for ranks in [1, 2, 4] {
                    let r = try MPICommandTests.run(ranks, command)
                    #expect(r.status == 0, "\(name), \(ranks) ranks: \(r.stderr)")
                    #expect(r.stdout == one.stdout, "\(name), \(ranks) ranks, json \(json)")
                }
            }
        }
        // The constant feature of the second family: D = 0, p = 1.
        let constant = try CLIRunner.run(["drift", "compare"] + families[1].1 + ["--json"])
        struct Report: Decodable { struct Feature: Decodable { var name: String; var statistic: Double; var pValue: Double }; var ksFeatures: [Feature] }
        let f = try JSONDecoder().decode(Report.self, from: Data(constant.stdout.utf8)).ksFeatures[2]
        #expect(f.name == "f2" && f.statistic == 0 && f.pValue == 1)
    }

    /// Communication volume (`FAULTLINE_MPI_STATS=1`, rank 1 of 2): KS sends each rank's rows once to the
    /// feature owners ((N + M)/2 × D float32 in `MPI_Gatherv`); with MMD the all-gather of the samples adds
    /// the same again plus 8 bytes per permutation column rank 1 owns (P = 40: 41 columns in tiles of 16,
    /// rank 1 owns the last tile, 9 columns) and a few bytes of shapes and status; no more.
    @Test func trafficIsTheRowsOnceForKSAndTwiceWithMMD() throws {
        let (n, m, d) = (30, 22, 3)
        let a = try Self.write(Self.features(n, d, seed: 12)), b = try Self.write(Self.features(m, d, seed: 13))
        defer { MPICommandTests.remove(a, b) }
        func bytes(_ permutations: Int) throws -> [String: Int] {
            let r = try CLIRunner.run(["drift", "--reference", a, "--current", b, "--permutations", String(permutations), "--json"],
                                      environment: MPICommandTests.environment.merging(["FAULTLINE_MPI_STATS": "1"]) { $1 },
                                      launcher: ["/usr/bin/timeout", "-k", "5", "60", mpirun!, "--oversubscribe", "--bind-to", "none", "-np", "2"])
            #expect(r.status == 0, "\(r.stderr)")
            let line = try #require(r.stderr.split(separator: "\n").first { $0.hasPrefix("faultline: rank 1 of 2:") })
            var out: [String: Int] = [:]
            for part in line.split(separator: ":", maxSplits: 2).last!.split(separator: ";") {
                let words = part.split(separator: " ")
                if words.count >= 4, let b = Int(words[3]) { out[String(words[0])] = b }
            }
            return out
        }
        let rows = (n - n / 2 + m - m / 2) * d * 4  // rank 1's rows (RowSplit.even: rank 0 takes the extra row)
        let ks = try bytes(0), both = try bytes(40)
        #expect(ks["MPI_Gatherv"] == rows && both["MPI_Gatherv"] == rows, "\(ks) \(both)")
        let gathered = try #require(both["MPI_Allgatherv"]), small = try #require(ks["MPI_Allgatherv"])
        // The samples, 9 statistics, and under 64 bytes of shapes and status bytes.
        #expect(gathered - small >= rows + 9 * 8 && gathered - small < rows + 9 * 8 + 64, "\(ks) \(both)")
    }

    /// --fail-on-drift: every rank exits 1 when drift is found (the report printed once).
    @Test func failOnDriftExitsOne() throws {
        let a = try Self.write(Self.features(40, 2, seed: 7)), b = try Self.write(Self.features(40, 2, seed: 8, shift: 3))
        defer { MPICommandTests.remove(a, b) }
        let r = try MPICommandTests.run(2, ["drift", "--reference", a, "--current", b, "--permutations", "20", "--fail-on-drift"])
        #expect(r.status == 1 && !r.timedOut, "\(r.status) \(r.stderr)")
        #expect(r.stdout.components(separatedBy: "drift detected: yes").count == 2, "\(r.stdout)")
    }

    /// A non-finite value in rank 1's rows: exit 2 with the one-process message, prefixed once by "rank 1
    /// of 2", and nothing on stdout; mismatched widths fail on every rank alike.
    @Test func aBadRowNamesItsRank() throws {
        var x = Self.features(30, 3, seed: 9)
        x[25, 2] = .nan
        let bad = try Self.write(x), good = try Self.write(Self.features(30, 3, seed: 10)), narrow = try Self.write(Self.features(30, 2, seed: 11))
        defer { MPICommandTests.remove(bad, good, narrow) }
        let one = try CLIRunner.run(["drift", "--reference", good, "--current", bad, "--permutations", "10"])
        #expect(one.status == 2 && one.stderr.contains("row 25, column 2"), "\(one.stderr)")
        let r = try MPICommandTests.run(2, ["drift", "--reference", good, "--current", bad, "--permutations", "10"])
        #expect(r.status == 2 && !r.timedOut, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("faultline drift: rank 1 of 2: --current \(bad)") && r.stderr.contains("row 25, column 2"), "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "rank 1 of 2").count == 2 && r.stdout.isEmpty, "\(r.stderr)")
        let wide = try MPICommandTests.run(2, ["drift", "--reference", good, "--current", narrow])
        #expect(wide.status == 2 && wide.stderr.contains("ranks 0, 1 of 2: --reference \(good) has 3 features per row but --current \(narrow) has 2"),
                "\(wide.stderr)")
    }
}
