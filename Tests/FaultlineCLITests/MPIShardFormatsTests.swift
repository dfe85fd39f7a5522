import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

/// Each rank reads its own rows of a `.safetensors` tensor (`SafeTensors.readRows` through
/// `Inputs.featureShard`), as it does of a `.npy`: `attack` on a tensor inside a file of several, on 1 and 3
/// ranks, gives the `.npy` run's result on as many ranks, and a missing tensor is a clear error from rank 0.
@Suite("faultline under mpirun: .safetensors shards", .serialized,
       .enabled(if: mpirun != nil && libmpiInstalled, "Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev, or run scripts/bootstrap)"))
struct MPIShardFormatsTests {
    @Test func attackOnASafetensorsTensorEqualsTheNpyRun() throws {
        let digits = try BundledDatasets.digits().stratifiedSplit(seed: 0).test
        let (x, y) = try MPICommandTests.digitsRows(digits, 13)
        let file = MPICommandTests.temporary("x.safetensors"), one = MPICommandTests.temporary("one.npz")
        defer { MPICommandTests.remove(x, y, file, one) }
        // The inputs as the second of three tensors, in float64 (converted on read, as a whole read converts).
        let noise = Tensor(shape: [3, 2], dtype: .float32, bytes: [UInt8](repeating: 0, count: 24))
        try SafeTensors.write(SafeTensors.File(tensors: [("a", noise), ("inputs", Tensor(try NPY.readMatrix(x, as: Double.self))), ("z", noise)]),
                              to: file)
        let common = ["attack", "--model", "\(MPICommandTests.fixtures)/digits_mlp.onnx", "--box=0,1", "--eps", "0.05", "--steps", "5",
                      "--attack", "pgd", "--seed", "2", "--y", y, "--quiet"]
        // The same ranks on the .npy and on the tensor shard the rows alike: bit-identical outputs on every backend.
        for ranks in [1, 3] {
            let out = MPICommandTests.temporary("k.npz")
            defer { MPICommandTests.remove(out) }
            let npy = try MPICommandTests.run(ranks, common + ["--x", x, "--out", one])
            let r = try MPICommandTests.run(ranks, common + ["--x", file + ":inputs", "--out", out])
            #expect(npy.status == 0 && r.status == 0, "\(npy.stderr) \(r.stderr)")
            let (got, expected) = (try NPZ.read(out), try NPZ.read(one))
            #expect(got.map(\.name) == expected.map(\.name) && got.map(\.tensor) == expected.map(\.tensor), "\(ranks) ranks")
            #expect(got.first.map { $0.tensor.shape.first == 13 } == true)
        }
        let bad = try MPICommandTests.run(2, common + ["--x", file + ":nope", "--out", MPICommandTests.temporary("bad.npz")])
        #expect(bad.status == 2 && bad.stderr.contains("--x") && bad.stderr.contains("no tensor 'nope'") && bad.stderr.contains("inputs"), "\(bad.stderr)")
    }

    /// predict --per-rank on 3 ranks writes three parts; data concat joins them into the gathered output.
    @Test func perRankPartsJoinToTheGatheredOutput() throws {
        let model = "\(MPICommandTests.fixtures)/mlp_dynamo.onnx", x = "\(MPICommandTests.fixtures)/mlp_dynamo_x.npy"
        let gathered = MPICommandTests.temporary("g.npz"), out = MPICommandTests.temporary("p.npz"), joined = MPICommandTests.temporary("j.npz")
        let parts = (0..<3).map { RowParts.partPath(out, rank: $0, size: 3) }
        defer { MPICommandTests.remove(gathered, out, joined); for p in parts { MPICommandTests.remove(p) } }
        let r1 = try MPICommandTests.run(3, ["predict", "--model", model, "--x", x, "--out", gathered, "--block-rows", "4", "--quiet"])
        let r2 = try MPICommandTests.run(3, ["predict", "--model", model, "--x", x, "--out", out, "--block-rows", "4", "--per-rank", "--quiet"])
        #expect(r1.status == 0 && r2.status == 0, "\(r1.stderr) \(r2.stderr)")
        #expect(parts.allSatisfy { FileManager.default.fileExists(atPath: $0) } && !FileManager.default.fileExists(atPath: out))
        let c = try CLIRunner.run(["data", "concat", "--out", joined] + parts.reversed())
        #expect(c.status == 0 && c.stdout.contains("joined 3 parts"), "\(c.stderr)")
        let (a, b) = (try NPZ.read(joined), try NPZ.read(gathered))
        #expect(a.map(\.name) == b.map(\.name) && a.map(\.tensor) == b.map(\.tensor))
        let missing = try CLIRunner.run(["data", "concat", "--out", joined + "2", parts[0], parts[2]])
        #expect(missing.status == 2 && missing.stderr.contains("a part is missing") && !FileManager.default.fileExists(atPath: joined + "2"), "\(missing.stderr)")
    }
}
