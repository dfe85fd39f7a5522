import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import _TestSupport

/// Hostile inputs through the real binary: every case must end with exit code 2 (not a trap, not a
/// hang, not exit 0 with garbage), a message naming the option or the file, and no output left behind.
///
/// The fixture files are written byte by byte here (no Python, no library writer), once per run.
@Suite("faultline hostile inputs")
struct HostileInputTests {
    /// One hostile invocation. `arguments` are relative to the fixture directory (`@/` is replaced by
    /// its path); `mentions` must all appear in stderr; `outputs` must not exist afterwards.
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var arguments: [String]
        var mentions: [String]
        var outputs: [String] = []
        var testDescription: String { name }
    }

    // MARK: Fixtures

    /// The fixture directory: x.npy (20×64 float32 in [0, 1]), y.npy (int64 0…9), m.safetensors
    /// (linear:64-10), and one hostile file per case.
    static let directory: String = {
        let dir = TestScratch.root.appendingPathComponent("faultline-hostile-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func write(_ name: String, _ bytes: [UInt8]) { try! Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name)) }
        func f32(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }
        func f64(_ v: [Double]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }
        func i64(_ v: [Int64]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }
        let rows = 20
        write("x.npy", npy("<f4", "(20, 64)", f32((0..<(rows * 64)).map { Float($0 % 97) / 97 })))
        write("y.npy", npy("<i8", "(20,)", i64((0..<rows).map { Int64($0 % 10) })))
        write("m.safetensors", safetensors(spec: "linear:64-10", tensors: [("0.weight", [10, 64]), ("0.bias", [10])]))
        // Labels that trap Int(Double) or size per-class arrays.
        write("y_1e19.npy", npy("<f8", "(20,)", f64([Double](repeating: 1e19, count: rows))))
        write("y_u64max.npy", npy("<u8", "(20,)", [UInt64](repeating: .max, count: rows).withUnsafeBytes { Array($0) }))
        write("y_nan.npy", npy("<f8", "(20,)", f64([.nan] + [Double](repeating: 0, count: rows - 1))))
        write("y_inf.npy", npy("<f8", "(20,)", f64([Double](repeating: 0, count: rows - 1) + [.infinity])))
        write("y_1e9.npy", npy("<i8", "(20,)", i64([1_000_000_000] + [Int64](repeating: 0, count: rows - 1))))
        write("y_1e12.npy", npy("<i8", "(20,)", i64([Int64](repeating: 0, count: rows - 1) + [1_000_000_000_000])))
        write("y_2e62.npy", npy("<i8", "(20,)", i64([1 << 62] + [Int64](repeating: 0, count: rows - 1))))
        write("y_neg.npy", npy("<i8", "(20,)", i64([-1] + [Int64](repeating: 0, count: rows - 1))))
        write("y_half.npy", npy("<f8", "(20,)", f64([0.5] + [Double](repeating: 0, count: rows - 1))))
        write("y_10.npy", npy("<i8", "(20,)", i64([Int64](repeating: 10, count: rows))))
        write("y_rank3.npy", npy("<i8", "(20, 1, 1)", i64([Int64](repeating: 0, count: rows))))
        write("y_nx2.npy", npy("<i8", "(20, 2)", i64([Int64](repeating: 0, count: 2 * rows))))
        write("y_short.npy", npy("<i8", "(19,)", i64([Int64](repeating: 0, count: rows - 1))))
        // Empty and overflowing shapes.
        write("x_empty.npy", npy("<f4", "(0, 64)", []))
        write("y_empty.npy", npy("<i8", "(0,)", []))
        write("x_nocols.npy", npy("<f4", "(20, 0)", []))
        write("x_zero_huge.npy", npy("<f4", "(0, 1099511627776, 1099511627776)", []))
        // A 1 KB weight file whose metadata asks for 10¹⁶ parameters.
        write("huge_spec.safetensors", safetensors(spec: "linear:100000000-100000000", tensors: [("0.weight", [2, 2]), ("0.bias", [2])]))
        write("nan_spec.safetensors", safetensors(spec: "linear:64-10,leakyrelu:nan", tensors: [("0.weight", [10, 64]), ("0.bias", [10])]))
        // CSV with an embedded NUL.
        write("nul.csv", Array("1,2\n3\u{0}9,4\n".utf8))
        // Probabilities with 3 and 4 classes; labels in range for 4 but not for 3.
        write("p3.npy", npy("<f4", "(20, 3)", f32([Float](repeating: 1.0 / 3, count: rows * 3))))
        write("p4.npy", npy("<f4", "(20, 4)", f32([Float](repeating: 0.25, count: rows * 4))))
        write("y3.npy", npy("<i8", "(20,)", i64((0..<rows).map { Int64($0 % 3) })))
        write("y_5.npy", npy("<i8", "(20,)", i64([Int64](repeating: 5, count: rows))))
        // Not regular files.
        try! FileManager.default.createDirectory(atPath: dir + "/adir.npy", withIntermediateDirectories: true)
        _ = mkfifo(dir + "/fifo.npy", 0o644)
        try? FileManager.default.createSymbolicLink(atPath: dir + "/loop_a.npy", withDestinationPath: dir + "/loop_b.npy")
        try? FileManager.default.createSymbolicLink(atPath: dir + "/loop_b.npy", withDestinationPath: dir + "/loop_a.npy")
        write("existing_file", Array("keep me\n".utf8))
        write("x32.npy", npy("<f4", "(20, 32)", f32([Float](repeating: 0.5, count: rows * 32))))
        var withNaN = [Float](repeating: 0.5, count: rows * 64)
        withNaN[3 * 64 + 5] = .nan
        write("x_nan.npy", npy("<f4", "(20, 64)", f32(withNaN)))
        write("x_tall.npy", npy("<f4", "(1400, 2)", f32((0..<2800).map { Float($0 % 13) })))
        // Regression predictions: means, NaN, σ = 0 in row 4, a crossed quantile band in row 2.
        let means = (0..<rows).map { Double($0) / 4 }
        write("reg_mean.npy", npy("<f8", "(20,)", f64(means)))
        write("reg_nan.npy", npy("<f8", "(20,)", f64(means.indices.map { $0 == 3 ? .nan : means[$0] })))
        write("reg_sigma0.npy", npy("<f8", "(20, 2)", f64(means.indices.flatMap { [means[$0], $0 == 4 ? 0 : 1] })))
        write("reg_crossed.npy", npy("<f8", "(20, 2)", f64(means.indices.flatMap { $0 == 2 ? [means[$0] + 1, means[$0] - 1] : [means[$0] - 1, means[$0] + 1] })))
        // A KNN detector on x.npy, for `shift score`.
        let fit = try! CLIRunner.run(["shift", "fit", "--features", dir + "/x.npy", "--detector", "knn", "--k", "3", "--out", dir + "/knn.safetensors"])
        precondition(fit.status == 0, "fixture detector: \(fit.stderr)")
        return dir
    }()

    /// A version-1 .npy file: magic, header dict padded to 64 bytes, payload.
    static func npy(_ descr: String, _ shape: String, _ payload: [UInt8]) -> [UInt8] {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let n = header.utf8.count
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xff), UInt8(n >> 8)] + Array(header.utf8) + payload
    }

    /// A .safetensors file of zero-filled F32 tensors with `faultline_spec` in its metadata.
    static func safetensors(spec: String, tensors: [(String, [Int])]) -> [UInt8] {
        var offset = 0
        var entries: [String] = [#""__metadata__":{"faultline_spec":"\#(spec)"}"#]
        for (name, shape) in tensors {
            let bytes = 4 * shape.reduce(1, *)
            entries.append(#""\#(name)":{"dtype":"F32","shape":[\#(shape.map(String.init).joined(separator: ","))],"data_offsets":[\#(offset),\#(offset + bytes)]}"#)
            offset += bytes
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        let length = UInt64(header.count)
        return (0..<8).map { UInt8((length >> (8 * $0)) & 0xff) } + header + [UInt8](repeating: 0, count: offset)
    }

    // MARK: Cases

    static let model = ["--weights", "@/m.safetensors"]
    static func train(_ extra: [String], y: String = "@/y.npy", out: String) -> [String] {
        ["train", "--x", "@/x.npy", "--y", y, "--spec", "linear:64-10", "--epochs", "1", "--quiet", "--out", "@/\(out)"] + extra
    }
    static func attack(_ extra: [String], x: String = "@/x.npy", y: String = "@/y.npy", out: String) -> [String] {
        ["attack"] + model + ["--x", x, "--y", y, "--steps", "2", "--quiet", "--out", "@/\(out)"] + extra
    }
    static func report(_ extra: [String], trainY: String = "@/y.npy", out: String) -> [String] {
        ["report"] + model + ["--train-x", "@/x.npy", "--train-y", trainY, "--test-x", "@/x.npy", "--test-y", "@/y.npy", "--quiet", "--out", "@/\(out)"] + extra
    }

    static let cases: [Case] = [
        // Trapping conversions of label values.
        Case(name: "train label 1e19", arguments: train([], y: "@/y_1e19.npy", out: "t1.safetensors"), mentions: ["--y", "y_1e19.npy", "index 0"], outputs: ["t1.safetensors"]),
        Case(name: "train label uint64 max", arguments: train([], y: "@/y_u64max.npy", out: "t2.safetensors"), mentions: ["--y", "y_u64max.npy"], outputs: ["t2.safetensors"]),
        Case(name: "attack label NaN", arguments: attack([], y: "@/y_nan.npy", out: "a1.npz"), mentions: ["--y", "y_nan.npy", "nan"], outputs: ["a1.npz"]),
        Case(name: "attack label inf", arguments: attack([], y: "@/y_inf.npy", out: "a2.npz"), mentions: ["--y", "y_inf.npy", "index 19"], outputs: ["a2.npz"]),
        Case(name: "certify label 0.5", arguments: ["certify"] + model + ["--x", "@/x.npy", "--y", "@/y_half.npy", "--quiet"], mentions: ["--y", "y_half.npy"]),
        Case(name: "attack label -1", arguments: attack([], y: "@/y_neg.npy", out: "a3.npz"), mentions: ["--y", "y_neg.npy", "-1"], outputs: ["a3.npz"]),
        // Labels sizing per-class arrays (and hanging train).
        Case(name: "train label 2^62", arguments: train([], y: "@/y_2e62.npy", out: "t3.safetensors"), mentions: ["--y", "y_2e62.npy", "10 classes"], outputs: ["t3.safetensors"]),
        Case(name: "train label = class count", arguments: train([], y: "@/y_10.npy", out: "t4.safetensors"), mentions: ["--y", "y_10.npy", "outside 0..<10"], outputs: ["t4.safetensors"]),
        Case(name: "shift fit label 1e9", arguments: ["shift", "fit", "--features", "@/x.npy", "--labels", "@/y_1e9.npy", "--out", "@/s1.safetensors"],
             mentions: ["--labels", "y_1e9.npy"], outputs: ["s1.safetensors"]),
        Case(name: "drift label 1e12", arguments: ["drift", "--reference-labels", "@/y.npy", "--current-labels", "@/y_1e12.npy"], mentions: ["--current-labels", "y_1e12.npy"]),
        Case(name: "drift BBSE label 1e9", arguments: ["drift", "--validation-predictions", "@/y_1e9.npy", "--validation-labels", "@/y.npy", "--current-predictions", "@/y.npy"],
             mentions: ["--validation-predictions", "y_1e9.npy"]),
        Case(name: "report train label 1e9", arguments: report([], trainY: "@/y_1e9.npy", out: "r1"), mentions: ["--train-y", "y_1e9.npy"], outputs: ["r1"]),
        Case(name: "uncertainty labels out of range", arguments: ["uncertainty", "--member", "@/p3.npy", "--labels", "@/y_5.npy", "--out", "@/u1.npz"],
             mentions: ["--labels", "y_5.npy", "3 classes"], outputs: ["u1.npz"]),
        // Label arrays of the wrong rank, or the wrong length.
        Case(name: "train rank-3 labels", arguments: train([], y: "@/y_rank3.npy", out: "t5.safetensors"), mentions: ["--y", "y_rank3.npy", "[20, 1, 1]"], outputs: ["t5.safetensors"]),
        Case(name: "attack N×2 labels", arguments: attack([], y: "@/y_nx2.npy", out: "a4.npz"), mentions: ["--y", "y_nx2.npy", "[20, 2]"], outputs: ["a4.npz"]),
        Case(name: "corrupt label count mismatch", arguments: ["corrupt"] + model + ["--x", "@/x.npy", "--y", "@/y_short.npy", "--quiet"], mentions: ["--x", "--y", "y_short.npy"]),
        // Training hyper-parameters.
        Case(name: "train --lr nan", arguments: train(["--lr", "nan"], out: "t6.safetensors"), mentions: ["--lr"], outputs: ["t6.safetensors"]),
        Case(name: "train --lr inf", arguments: train(["--lr", "inf"], out: "t7.safetensors"), mentions: ["--lr"], outputs: ["t7.safetensors"]),
        Case(name: "train --lr negative", arguments: train(["--lr=-0.1"], out: "t8.safetensors"), mentions: ["--lr"], outputs: ["t8.safetensors"]),
        Case(name: "train --momentum nan", arguments: train(["--optimizer", "sgd", "--momentum", "nan"], out: "t9.safetensors"), mentions: ["--momentum"], outputs: ["t9.safetensors"]),
        Case(name: "train --weight-decay nan", arguments: train(["--weight-decay", "nan"], out: "t10.safetensors"), mentions: ["--weight-decay"], outputs: ["t10.safetensors"]),
        Case(name: "train --validation-fraction 1.5", arguments: train(["--validation-fraction", "1.5"], out: "t11.safetensors"), mentions: ["--validation-fraction"], outputs: ["t11.safetensors"]),
        Case(name: "train --validation-fraction -0.1", arguments: train(["--validation-fraction=-0.1"], out: "t12.safetensors"), mentions: ["--validation-fraction"], outputs: ["t12.safetensors"]),
        Case(name: "train --epochs 0", arguments: train(["--epochs", "0"], out: "t13.safetensors"), mentions: ["--epochs must be ≥ 1"], outputs: ["t13.safetensors"]),
        Case(name: "train --epochs huge", arguments: train(["--epochs", "1000000000"], out: "t14.safetensors"), mentions: ["--epochs must be ≤"], outputs: ["t14.safetensors"]),
        Case(name: "train --members huge", arguments: train(["--members", "1000000000"], out: "t15.safetensors"), mentions: ["--members must be ≤"], outputs: ["t15.safetensors", "t15_0.safetensors"]),
        Case(name: "train empty input", arguments: ["train", "--x", "@/x_empty.npy", "--y", "@/y_empty.npy", "--spec", "linear:64-10", "--quiet", "--out", "@/t16.safetensors"],
             mentions: ["--x", "x_empty.npy", "no rows"], outputs: ["t16.safetensors"]),
        Case(name: "train --export-split onto a file", arguments: train(["--export-split", "@/existing_file"], out: "t17.safetensors"),
             mentions: ["--export-split", "existing_file"], outputs: ["t17.safetensors"]),
        // Model specs: overflow, huge allocations, NaN parameters.
        Case(name: "spec linear:Int.max-2", arguments: train([], out: "t18.safetensors").map { $0 == "linear:64-10" ? "linear:9223372036854775807-2" : $0 },
             mentions: ["--spec", "linear:9223372036854775807-2"], outputs: ["t18.safetensors"]),
        Case(name: "spec image overflow", arguments: train([], out: "t19.safetensors").map { $0 == "linear:64-10" ? "input:4294967296x4294967296x4,conv2d:4294967296-1-1" : $0 },
             mentions: ["--spec"], outputs: ["t19.safetensors"]),
        Case(name: "spec too many parameters", arguments: train([], out: "t20.safetensors").map { $0 == "linear:64-10" ? "linear:64-100000000,linear:100000000-10" : $0 },
             mentions: ["--spec", "parameters"], outputs: ["t20.safetensors"]),
        Case(name: "spec leakyrelu:nan", arguments: train([], out: "t21.safetensors").map { $0 == "linear:64-10" ? "linear:64-10,leakyrelu:nan" : $0 },
             mentions: ["--spec", "leakyrelu:nan"], outputs: ["t21.safetensors"]),
        Case(name: "weights metadata asks for 10^16 parameters", arguments: attack([], out: "a5.npz").map { $0 == "@/m.safetensors" ? "@/huge_spec.safetensors" : $0 },
             mentions: ["huge_spec.safetensors"], outputs: ["a5.npz"]),
        Case(name: "weights metadata leakyrelu:nan", arguments: attack([], out: "a6.npz").map { $0 == "@/m.safetensors" ? "@/nan_spec.safetensors" : $0 },
             mentions: ["--weights", "nan_spec.safetensors"], outputs: ["a6.npz"]),
        // Shapes.
        Case(name: "corrupt --shape overflow", arguments: ["corrupt"] + model + ["--x", "@/x.npy", "--y", "@/y.npy", "--shape", "4294967296x4294967296x1", "--quiet", "--out", "@/c1.npz"],
             mentions: ["--shape"], outputs: ["c1.npz"]),
        Case(name: "corrupt --shape 0x8x8", arguments: ["corrupt"] + model + ["--x", "@/x.npy", "--y", "@/y.npy", "--shape", "0x8x8", "--quiet"], mentions: ["--shape"]),
        Case(name: "zero-size array with huge dimensions", arguments: attack([], x: "@/x_zero_huge.npy", out: "a7.npz"), mentions: ["--x", "x_zero_huge.npy", "overflow"], outputs: ["a7.npz"]),
        Case(name: "features with no columns", arguments: ["shift", "fit", "--features", "@/x_nocols.npy", "--detector", "knn", "--out", "@/s2.safetensors"],
             mentions: ["--features", "x_nocols.npy"], outputs: ["s2.safetensors"]),
        // Empty inputs.
        Case(name: "attack empty input", arguments: attack([], x: "@/x_empty.npy", y: "@/y_empty.npy", out: "a8.npz"), mentions: ["--x", "x_empty.npy", "no rows"], outputs: ["a8.npz"]),
        Case(name: "certify empty input", arguments: ["certify"] + model + ["--x", "@/x_empty.npy", "--y", "@/y_empty.npy", "--quiet"], mentions: ["--x", "x_empty.npy"]),
        Case(name: "corrupt empty input", arguments: ["corrupt"] + model + ["--x", "@/x_empty.npy", "--y", "@/y_empty.npy", "--quiet", "--out", "@/c2.npz"],
             mentions: ["--x", "x_empty.npy"], outputs: ["c2.npz"]),
        // Option values: silent coercions and unbounded counts.
        Case(name: "attack --steps 0", arguments: attack(["--steps", "0"], out: "a9.npz"), mentions: ["--steps must be ≥ 1"], outputs: ["a9.npz"]),
        Case(name: "attack --steps huge", arguments: attack(["--steps", "1000000000"], out: "a10.npz"), mentions: ["--steps must be ≤"], outputs: ["a10.npz"]),
        Case(name: "attack --eps empty", arguments: attack(["--eps", ""], out: "a11.npz"), mentions: ["--eps"], outputs: ["a11.npz"]),
        Case(name: "attack --eps empty item", arguments: attack(["--eps", "0.1,,0.2"], out: "a12.npz"), mentions: ["--eps"], outputs: ["a12.npz"]),
        Case(name: "attack --eps nan", arguments: attack(["--eps", "nan"], out: "a13.npz"), mentions: ["--eps", "nan"], outputs: ["a13.npz"]),
        Case(name: "attack --min-accuracy nan", arguments: attack(["--min-accuracy", "nan"], out: "a14.npz"), mentions: ["--min-accuracy"], outputs: ["a14.npz"]),
        Case(name: "attack --box reversed", arguments: attack(["--box", "1,0"], out: "a15.npz"), mentions: ["--box"], outputs: ["a15.npz"]),
        Case(name: "attack --box channels misfit", arguments: attack(["--box", "0,0,0:1,1,1"], out: "a15b.npz"), mentions: ["--box", "3 channels"], outputs: ["a15b.npz"]),
        Case(name: "attack --box channel counts", arguments: attack(["--box", "0,0:1,1,1"], out: "a15c.npz"), mentions: ["--box", "2 and 3"], outputs: ["a15c.npz"]),
        Case(name: "attack --box empty channel", arguments: attack(["--box", "0,1:1,1"], out: "a15d.npz"), mentions: ["--box", "channel 1"], outputs: ["a15d.npz"]),
        Case(name: "attack --box two colons", arguments: attack(["--box", "0:1:2"], out: "a15e.npz"), mentions: ["--box must be"], outputs: ["a15e.npz"]),
        Case(name: "certify --box channels misfit", arguments: ["certify"] + model + ["--x", "@/x.npy", "--y", "@/y.npy", "--box", "0,0,0:1,1,1", "--quiet"], mentions: ["--box", "3 channels"]),
        Case(name: "report --box channels misfit", arguments: report(["--box", "0,0,0:1,1,1"], out: "r16b"), mentions: ["--box", "3 channels"], outputs: ["r16b"]),
        Case(name: "attack --step-size nan", arguments: attack(["--step-size", "nan"], out: "a16.npz"), mentions: ["--step-size"], outputs: ["a16.npz"]),
        Case(name: "certify --steps -1", arguments: ["certify"] + model + ["--x", "@/x.npy", "--y", "@/y.npy", "--steps=-1", "--quiet"], mentions: ["--steps must be ≥ 0"]),
        Case(name: "certify --n huge", arguments: ["certify"] + model + ["--x", "@/x.npy", "--y", "@/y.npy", "--method", "smoothing", "--n", "100000000000", "--quiet"], mentions: ["--n must be ≤"]),
        Case(name: "certify --alpha 0", arguments: ["certify"] + model + ["--x", "@/x.npy", "--y", "@/y.npy", "--alpha", "0", "--quiet"], mentions: ["--alpha"]),
        Case(name: "drift --permutations -5", arguments: ["drift", "--reference", "@/x.npy", "--current", "@/x.npy", "--permutations=-5"], mentions: ["--permutations must be ≥ 0"]),
        Case(name: "drift --permutations huge", arguments: ["drift", "--reference", "@/x.npy", "--current", "@/x.npy", "--permutations", "1000000000"], mentions: ["--permutations must be ≤"]),
        Case(name: "drift permutations × rows too many", arguments: ["drift", "--reference", "@/x_tall.npy", "--current", "@/x_tall.npy", "--permutations", "100000"],
             mentions: ["--permutations", "2800 rows"]),
        Case(name: "drift --alpha nan", arguments: ["drift", "--reference", "@/x.npy", "--current", "@/x.npy", "--alpha", "nan"], mentions: ["--alpha"]),
        Case(name: "drift feature count mismatch", arguments: ["drift", "--reference", "@/x.npy", "--current", "@/p3.npy"], mentions: ["--reference", "--current", "p3.npy"]),
        Case(name: "bounds --half-width 1e-10", arguments: ["bounds", "--half-width", "1e-10"], mentions: ["--half-width"]),
        Case(name: "bounds --samples beyond 2^40", arguments: ["bounds", "--errors", "5", "--samples", "9223372036854775807"], mentions: ["--samples must be ≤"]),
        Case(name: "bounds --errors negative", arguments: ["bounds", "--errors=-1", "--samples", "10"], mentions: ["--errors must be ≥ 0"]),
        Case(name: "bounds --max-error nan", arguments: ["bounds", "--errors", "1", "--samples", "10", "--max-error", "nan"], mentions: ["--max-error"]),
        Case(name: "bounds --half-width nan", arguments: ["bounds", "--half-width", "nan"], mentions: ["--half-width"]),
        Case(name: "shift fit --k 0", arguments: ["shift", "fit", "--features", "@/x.npy", "--detector", "knn", "--k", "0", "--out", "@/s3.safetensors"], mentions: ["--k"], outputs: ["s3.safetensors"]),
        Case(name: "shift fit --shrinkage nan", arguments: ["shift", "fit", "--features", "@/x.npy", "--labels", "@/y.npy", "--shrinkage", "nan", "--out", "@/s4.safetensors"],
             mentions: ["--shrinkage"], outputs: ["s4.safetensors"]),
        // Probabilities that disagree.
        Case(name: "conformal class counts differ", arguments: ["conformal", "--calibration-probs", "@/p3.npy", "--calibration-labels", "@/y3.npy", "--probs", "@/p4.npy", "--out", "@/k1.npz"],
             mentions: ["--calibration-probs", "--probs", "p4.npy"], outputs: ["k1.npz"]),
        // report: --out onto a file, malformed --shifted.
        Case(name: "report --out onto a regular file", arguments: report([], out: "existing_file"), mentions: ["--out", "existing_file"]),
        Case(name: "report --shifted NAME=X,Y,Z", arguments: report(["--shifted", "s=@/x.npy,@/y.npy,@/y.npy"], out: "r2"), mentions: ["--shifted"], outputs: ["r2"]),
        Case(name: "report --shifted NAME=,", arguments: report(["--shifted", "s=,"], out: "r3"), mentions: ["--shifted"], outputs: ["r3"]),
        Case(name: "report --shifted =X", arguments: report(["--shifted", "=@/x.npy"], out: "r4"), mentions: ["--shifted"], outputs: ["r4"]),
        // Files that are not regular files, or not data.
        Case(name: "directory as input", arguments: attack([], x: "@/adir.npy", out: "a17.npz"), mentions: ["--x", "adir.npy", "directory"], outputs: ["a17.npz"]),
        Case(name: "FIFO as input", arguments: attack([], x: "@/fifo.npy", out: "a18.npz"), mentions: ["--x", "fifo.npy", "FIFO"], outputs: ["a18.npz"]),
        Case(name: "symbolic-link loop as input", arguments: attack([], x: "@/loop_a.npy", out: "a19.npz"), mentions: ["--x", "loop_a.npy", "symbolic"], outputs: ["a19.npz"]),
        Case(name: "empty path as input", arguments: attack([], x: "", out: "a20.npz"), mentions: ["--x", "empty"], outputs: ["a20.npz"]),
        Case(name: "missing file", arguments: attack([], y: "@/nope.npy", out: "a21.npz"), mentions: ["--y", "nope.npy", "no such file"], outputs: ["a21.npz"]),
        Case(name: "CSV with a NUL byte", arguments: ["shift", "fit", "--features", "@/nul.csv", "--detector", "knn", "--k", "1", "--out", "@/s5.safetensors"],
             mentions: ["--features", "nul.csv", "line 2"], outputs: ["s5.safetensors"]),
        // Library data errors name the option and file; NaN features name their row and column.
        Case(name: "shift score dimension mismatch", arguments: ["shift", "score", "--detector", "@/knn.safetensors", "--features", "@/x32.npy", "--out", "@/s6.npz"],
             mentions: ["--features", "x32.npy", "32"], outputs: ["s6.npz"]),
        Case(name: "shift score --ood dimension mismatch", arguments: ["shift", "score", "--detector", "@/knn.safetensors", "--features", "@/x.npy", "--ood", "@/x32.npy"],
             mentions: ["--ood", "x32.npy"]),
        Case(name: "shift score detector is not a detector", arguments: ["shift", "score", "--detector", "@/x.npy", "--features", "@/x.npy"], mentions: ["--detector", "x.npy"]),
        Case(name: "drift NaN feature", arguments: ["drift", "--reference", "@/x.npy", "--current", "@/x_nan.npy"], mentions: ["--current", "x_nan.npy", "row 3, column 5"]),
        Case(name: "shift fit NaN feature", arguments: ["shift", "fit", "--features", "@/x_nan.npy", "--labels", "@/y.npy", "--out", "@/s7.safetensors"],
             mentions: ["--features", "x_nan.npy", "row 3"], outputs: ["s7.safetensors"]),
        Case(name: "attack NaN input", arguments: attack([], x: "@/x_nan.npy", out: "a26.npz"), mentions: ["--x", "x_nan.npy", "row 3, column 5"], outputs: ["a26.npz"]),
        Case(name: "report NaN shifted set", arguments: report(["--shifted", "noisy=@/x_nan.npy"], out: "r7"), mentions: ["--shifted noisy", "x_nan.npy"], outputs: ["r7"]),
        Case(name: "attack input width differs from the model", arguments: attack([], x: "@/x32.npy", out: "a27.npz"), mentions: ["--x", "x32.npy", "takes 64"], outputs: ["a27.npz"]),
        Case(name: "train input width differs from the spec", arguments: ["train", "--x", "@/x32.npy", "--y", "@/y.npy", "--spec", "linear:64-10", "--quiet", "--out", "@/t25.safetensors"],
             mentions: ["--x", "x32.npy", "takes 64"], outputs: ["t25.safetensors"]),
        Case(name: "report test width differs from the model", arguments: report([], out: "r8") + ["--calibration-x", "@/x32.npy", "--calibration-y", "@/y.npy"],
             mentions: ["--calibration-x", "x32.npy"], outputs: ["r8"]),
        Case(name: "report shifted width differs from the model", arguments: report(["--shifted", "narrow=@/x32.npy"], out: "r9"), mentions: ["--shifted narrow", "x32.npy"], outputs: ["r9"]),
        // Commands the other checks reach through the shared readers.
        Case(name: "calibrate label 1e19", arguments: ["calibrate", "--probs", "@/p3.npy", "--labels", "@/y_1e19.npy"], mentions: ["y_1e19.npy", "index 0"]),
        Case(name: "calibrate empty probabilities", arguments: ["calibrate", "--probs", "@/x_empty.npy", "--labels", "@/y_empty.npy"], mentions: ["x_empty.npy", "no rows"]),
        Case(name: "conformal rank-3 labels", arguments: ["conformal", "--calibration-probs", "@/p3.npy", "--calibration-labels", "@/y_rank3.npy", "--probs", "@/p3.npy"],
             mentions: ["y_rank3.npy", "[20, 1, 1]"]),
        Case(name: "bench io on a directory", arguments: ["bench", "io", "--file", "@/adir.npy"], mentions: ["adir.npy", "directory"]),
        Case(name: "inspect a FIFO", arguments: ["inspect", "@/fifo.npy"], mentions: ["fifo.npy", "FIFO"]),
        Case(name: "demo --out onto a regular file", arguments: ["demo", "--out", "@/existing_file", "--quiet"], mentions: ["--out", "existing_file"]),
        // More option values.
        Case(name: "train --patience negative", arguments: train(["--patience=-1"], out: "t22.safetensors"), mentions: ["--patience"], outputs: ["t22.safetensors"]),
        Case(name: "train --optimizer unknown", arguments: train(["--optimizer", "rmsprop"], out: "t23.safetensors"), mentions: ["--optimizer"], outputs: ["t23.safetensors"]),
        Case(name: "train --batch-size huge", arguments: train(["--batch-size", "100000000000"], out: "t24.safetensors"), mentions: ["--batch-size"], outputs: ["t24.safetensors"]),
        Case(name: "attack --restarts 0", arguments: attack(["--restarts", "0"], out: "a24.npz"), mentions: ["--restarts"], outputs: ["a24.npz"]),
        Case(name: "attack --queries huge", arguments: attack(["--queries", "100000000000"], out: "a25.npz"), mentions: ["--queries"], outputs: ["a25.npz"]),
        Case(name: "certify --sigma 0", arguments: ["certify"] + model + ["--x", "@/x.npy", "--y", "@/y.npy", "--method", "smoothing", "--sigma", "0", "--quiet"], mentions: ["--sigma"]),
        Case(name: "corrupt --severities empty item", arguments: ["corrupt"] + model + ["--x", "@/x.npy", "--y", "@/y.npy", "--severities", "1,,2", "--quiet"], mentions: ["--severities"]),
        Case(name: "report --calibration-x without -y", arguments: report(["--calibration-x", "@/x.npy"], out: "r5"), mentions: ["--calibration-y"], outputs: ["r5"]),
        Case(name: "report --eps nan", arguments: report(["--eps", "0.1,nan"], out: "r6"), mentions: ["--eps"], outputs: ["r6"]),
        // The analysis options of report (checked at parse time, before any file is read).
        Case(name: "report --ood-quantile 0", arguments: report(["--ood-quantile", "0"], out: "r10"), mentions: ["--ood-quantile"], outputs: ["r10"]),
        Case(name: "report --ood-quantile 1.5", arguments: report(["--ood-quantile", "1.5"], out: "r11"), mentions: ["--ood-quantile"], outputs: ["r11"]),
        Case(name: "report --confidence nan", arguments: report(["--confidence", "nan"], out: "r12"), mentions: ["--confidence"], outputs: ["r12"]),
        Case(name: "report --attribution-eps -1", arguments: report(["--attribution-eps=-1"], out: "r13"), mentions: ["--attribution-eps"], outputs: ["r13"]),
        Case(name: "report --attribution-eps inf", arguments: report(["--attribution-eps", "inf"], out: "r14"), mentions: ["--attribution-eps"], outputs: ["r14"]),
        Case(name: "report --robustness-samples 0", arguments: report(["--robustness-samples", "0"], out: "r15"), mentions: ["--robustness-samples"], outputs: ["r15"]),
        Case(name: "report --box 1,0", arguments: report(["--box", "1,0"], out: "r16"), mentions: ["--box"], outputs: ["r16"]),
        // regress: shapes, NaN, σ ≤ 0, α outside (0, 1), lower > upper, unpaired options.
        Case(name: "regress rows differ", arguments: ["regress", "--pred", "@/reg_mean.npy", "--y", "@/y_short.npy"], mentions: ["--pred", "--y", "y_short.npy", "19"]),
        Case(name: "regress NaN prediction", arguments: ["regress", "--pred", "@/reg_nan.npy", "--y", "@/reg_mean.npy"], mentions: ["--pred", "reg_nan.npy", "row 3"]),
        Case(name: "regress NaN calibration target", arguments: ["regress", "--pred", "@/reg_mean.npy", "--y", "@/reg_mean.npy", "--calibration-pred", "@/reg_mean.npy",
                                                                 "--calibration-y", "@/y_nan.npy"], mentions: ["--calibration-y", "y_nan.npy", "row 0"]),
        Case(name: "regress sigma 0", arguments: ["regress", "--pred", "@/reg_sigma0.npy", "--y", "@/reg_mean.npy"], mentions: ["--pred", "reg_sigma0.npy", "row 4", "> 0"]),
        Case(name: "regress lower > upper", arguments: ["regress", "--pred", "@/reg_crossed.npy", "--y", "@/reg_mean.npy", "--columns", "lower-upper"],
             mentions: ["--pred", "reg_crossed.npy", "row 2", "lower"]),
        Case(name: "regress 64 columns", arguments: ["regress", "--pred", "@/x.npy", "--y", "@/reg_mean.npy"], mentions: ["--pred", "x.npy", "64 columns"]),
        Case(name: "regress --alpha 1", arguments: ["regress", "--pred", "@/reg_mean.npy", "--y", "@/reg_mean.npy", "--alpha", "1"], mentions: ["--alpha"]),
        Case(name: "regress --alpha 0", arguments: ["regress", "--pred", "@/reg_mean.npy", "--y", "@/reg_mean.npy", "--alpha", "0"], mentions: ["--alpha"]),
        Case(name: "regress --calibration-pred alone", arguments: ["regress", "--pred", "@/reg_mean.npy", "--y", "@/reg_mean.npy", "--calibration-pred", "@/reg_mean.npy"],
             mentions: ["--calibration-y"]),
        Case(name: "regress --levels 1.5", arguments: ["regress", "--pred", "@/reg_mean.npy", "--y", "@/reg_mean.npy", "--levels", "0.5,1.5"], mentions: ["--levels", "1.5"]),
        Case(name: "regress --levels empty item", arguments: ["regress", "--pred", "@/reg_mean.npy", "--y", "@/reg_mean.npy", "--levels", "0.5,,0.9"], mentions: ["--levels"]),
        Case(name: "regress --method unknown", arguments: ["regress", "--pred", "@/reg_mean.npy", "--y", "@/reg_mean.npy", "--method", "jackknife"], mentions: ["--method"]),
        Case(name: "regress normalized without sigma", arguments: ["regress", "--pred", "@/reg_mean.npy", "--y", "@/reg_mean.npy", "--calibration-pred", "@/reg_mean.npy",
                                                                   "--calibration-y", "@/reg_mean.npy", "--method", "normalized", "--out", "@/g1.json"],
             mentions: ["--method normalized", "σ"], outputs: ["g1.json"]),
        // Usage errors exit 2, not ArgumentParser's 64.
        Case(name: "unknown option", arguments: attack(["--bogus"], out: "a23.npz"), mentions: ["--bogus"], outputs: ["a23.npz"]),
        Case(name: "missing required option", arguments: ["bounds", "--errors"], mentions: ["--errors"]),
        Case(name: "non-integer count", arguments: attack(["--steps", "many"], out: "a22.npz"), mentions: ["--steps"], outputs: ["a22.npz"]),
        Case(name: "unknown subcommand", arguments: ["frobnicate"], mentions: ["frobnicate"]),
    ]

    @Test(arguments: cases)
    func hostileInputExitsWith2(_ c: Case) throws {
        let dir = Self.directory
        let arguments = c.arguments.map { $0.replacingOccurrences(of: "@/", with: dir + "/") }
        let r = try CLIRunner.run(arguments, timeout: 60)
        #expect(!r.timedOut, "\(c.name): still running after 60 s (a hang)")
        #expect(!r.signaled, "\(c.name): killed by signal \(r.status)\n\(r.stderr)")
        #expect(r.status == 2, "\(c.name): exit \(r.status)\n\(r.stderr)")
        for m in c.mentions { #expect(r.stderr.contains(m), "\(c.name): stderr does not mention '\(m)':\n\(r.stderr)") }
        #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("Fatal error"), "\(c.name): \(r.stderr)")
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        for output in c.outputs {
            #expect(!FileManager.default.fileExists(atPath: dir + "/" + output), "\(c.name): \(output) was written")
            #expect(!entries.contains { $0.hasPrefix("." + output) }, "\(c.name): a temporary of \(output) was left behind")
        }
    }

    // MARK: The generated corpus

    /// Every malformed file of the IO fixtures (66 files: truncated, bad magic, overflowing or lying
    /// shapes, bad dtypes, zip and gzip bombs, ragged and non-numeric CSV, …) fed to every command slot
    /// that reads an array: 5 slots × 66 files = 330 cases, run under a 60 s timeout and a 4 GiB
    /// address-space cap. Each must exit 2 naming the file, never trap, hang or allocate what the file
    /// claims.
    static let malformedFiles: [String] = {
        let bad = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FaultlineIOTests/Fixtures/bad").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: bad)) ?? []).filter { $0 != "cases.json" }.sorted().map { bad + "/" + $0 }
    }()

    static let slots: [(name: String, arguments: @Sendable (String) -> [String])] = [
        ("inspect", { ["inspect", $0] }),
        ("shift score --features", { ["shift", "score", "--detector", "@/knn.safetensors", "--features", $0] }),
        ("calibrate --logits", { ["calibrate", "--logits", $0, "--labels", "@/y.npy"] }),
        ("drift --current", { ["drift", "--reference", "@/x.npy", "--current", $0, "--permutations", "10"] }),
        ("attack --x", { ["attack", "--weights", "@/m.safetensors", "--x", $0, "--y", "@/y.npy", "--attack", "fgsm", "--eps", "0.1"] }),
    ]

    static let corpus: [Case] = malformedCorpus(slots)

    /// Every malformed file in every array slot (`@/` in the arguments stands for the suite's directory).
    static func malformedCorpus(_ slots: [(name: String, arguments: @Sendable (String) -> [String])]) -> [Case] {
        slots.flatMap { slot in
            malformedFiles.map { file in
                let name = URL(fileURLWithPath: file).lastPathComponent
                return Case(name: "\(slot.name) \(name)", arguments: slot.arguments(file), mentions: [name])
            }
        }
    }

    /// Runs a malformed-file case with `@/` resolved in `directory`: it must exit 2 naming the file,
    /// within 60 s and 4 GiB, with no signal and no trap.
    static func expectMalformedFileRefused(_ c: Case, directory: String) throws {
        let arguments = c.arguments.map { $0.replacingOccurrences(of: "@/", with: directory + "/") }
        let r = try CLIRunner.run(arguments, timeout: 60, memoryLimit: 4 << 30)
        #expect(!r.timedOut, "\(c.name): still running after 60 s (a hang)")
        #expect(!r.signaled, "\(c.name): killed by signal \(r.status)\n\(r.stderr)")
        #expect(r.status == 2, "\(c.name): exit \(r.status)\n\(r.stderr)")
        for m in c.mentions { #expect(r.stderr.contains(m), "\(c.name): stderr does not name the file:\n\(r.stderr)") }
        #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("Fatal error"), "\(c.name): \(r.stderr)")
    }

    @Test func theCorpusCoversEveryMalformedFile() {
        #expect(Self.malformedFiles.count >= 60 && Self.corpus.count >= 300, "\(Self.malformedFiles.count) files, \(Self.corpus.count) cases")
    }

    @Test(arguments: corpus)
    func malformedFileExitsWith2(_ c: Case) throws { try Self.expectMalformedFileRefused(c, directory: Self.directory) }

    /// `report --out` onto a regular file refuses and leaves the file as it was.
    @Test func reportDoesNotReplaceAFile() throws {
        let dir = Self.directory
        _ = try CLIRunner.run(Self.report([], out: "existing_file").map { $0.replacingOccurrences(of: "@/", with: dir + "/") })
        #expect(try String(contentsOfFile: dir + "/existing_file", encoding: .utf8) == "keep me\n")
    }

    /// Help still exits 0 after the usage-error mapping.
    @Test func helpExitsZero() throws {
        for arguments in [["--help"], ["attack", "--help"], ["help", "train"]] {
            let r = try CLIRunner.run(arguments)
            #expect(r.status == 0 && !r.signaled, "\(arguments): \(r.status) \(r.stderr)")
            #expect(r.stdout.contains("USAGE"), "\(arguments)")
        }
    }

    /// The positive side of the checks: in-range values still work (a one-epoch model, a short drift run).
    @Test func validInputsStillWork() throws {
        let dir = Self.directory
        let out = dir + "/ok-\(UUID().uuidString).safetensors"
        let train = try CLIRunner.run(["train", "--x", dir + "/x.npy", "--y", dir + "/y.npy", "--spec", "linear:64-10", "--epochs", "1",
                                       "--validation-fraction", "0", "--quiet", "--out", out])
        #expect(train.status == 0, "\(train.stderr)")
        let drift = try CLIRunner.run(["drift", "--reference-labels", dir + "/y.npy", "--current-labels", dir + "/y3.npy"])
        #expect(drift.status == 0, "\(drift.stderr)")
        let attack = try CLIRunner.run(["attack", "--weights", out, "--x", dir + "/x.npy", "--y", dir + "/y.npy", "--steps", "1", "--eps", "0.1", "--quiet"])
        #expect(attack.status == 0, "\(attack.stderr)")
        // Counts above 2³¹ print as themselves (a %d format printed 2⁶³ − 1 samples as -1).
        let bounds = try CLIRunner.run(["bounds", "--errors", "5", "--samples", "5000000000"])
        #expect(bounds.status == 0 && bounds.stdout.contains("5 errors in 5000000000 samples"), "\(bounds.stdout)")
    }
}
